//! Variable-length `u32`s (LEB128) for the lengths in block entries.
//!
//! Seven bits a byte, least significant group first; the high bit of a byte says another byte
//! follows. A `u32` takes one to five bytes. Entry lengths are nearly always below 128, so an
//! entry header is usually three bytes instead of twelve.

/// The most bytes a `u32` takes.
pub(crate) const MAX_LEN: usize = 5;

/// Appends `value` to `out`.
pub(crate) fn put(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads the varint that starts at `pos` in `bytes`; returns it and the position after it, or
/// `None` if it runs past the end of `bytes`, is longer than five bytes or does not fit a `u32`.
/// Never panics, whatever `bytes` and `pos` are.
pub(crate) fn get(bytes: &[u8], pos: usize) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    for i in 0..MAX_LEN {
        let byte = *bytes.get(pos.checked_add(i)?)?;
        let group = u32::from(byte & 0x7f);
        if i == MAX_LEN - 1 && group > 0x0f {
            // The fifth byte holds the top four bits of a u32; more would overflow.
            return None;
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, pos + i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn boundaries_round_trip_with_expected_lengths() {
        for (value, len) in [(0, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (u32::MAX, 5)] {
            let mut out = vec![0xaa];
            put(&mut out, value);
            assert_eq!(out.len(), 1 + len, "{value}");
            assert_eq!(get(&out, 1), Some((value, 1 + len)));
        }
    }

    #[test]
    fn malformed_input_is_rejected() {
        assert_eq!(get(&[], 0), None, "empty");
        assert_eq!(get(&[0x80], 0), None, "continues past the end");
        assert_eq!(get(&[0x80; 6], 0), None, "six bytes");
        assert_eq!(get(&[0xff, 0xff, 0xff, 0xff, 0x1f], 0), None, "33 bits");
        assert_eq!(get(&[1], usize::MAX), None, "position overflow");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn any_value_round_trips(value: u32) {
            let mut out = Vec::new();
            put(&mut out, value);
            prop_assert_eq!(get(&out, 0), Some((value, out.len())));
        }

        #[test]
        fn any_bytes_decode_without_panic(bytes: Vec<u8>, pos in 0usize..16) {
            if let Some((value, end)) = get(&bytes, pos) {
                prop_assert!(end <= bytes.len());
                let mut out = Vec::new();
                put(&mut out, value);
                prop_assert!(out.len() <= end - pos);
            }
        }
    }
}
