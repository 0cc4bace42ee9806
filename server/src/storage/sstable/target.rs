//! A search target, compared against keys stored in two pieces.
//!
//! A key in a block is the first `shared` bytes of its anchor's key followed by its own suffix
//! (see the format in `sstable/mod.rs`). Comparing such a key without first copying it into a
//! buffer keeps point reads free of allocations: [`Target::compare_key`] takes the two pieces and
//! gives the same answer as [`key::compare`] on their concatenation.

use std::cmp::Ordering;

use crate::storage::key::{self, SeqNo, TRAILER_LEN, ValueKind};

/// An encoded internal key to search for, held as its user key and its trailer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    user_key: &'a [u8],
    trailer: u64,
}

impl<'a> Target<'a> {
    /// The first key a read of `user_key` at `snapshot` may return: it sorts before every
    /// version with a sequence number at most `snapshot` and after every newer one (as
    /// [`key::seek_key`], without building the key). A snapshot above [`key::SEQNO_MAX`] reads
    /// as `SEQNO_MAX`.
    pub(crate) fn for_read(user_key: &'a [u8], snapshot: SeqNo) -> Target<'a> {
        let seqno = snapshot.min(key::SEQNO_MAX);
        Target { user_key, trailer: (seqno.0 << 8) | ValueKind::Put as u64 }
    }

    /// The target for an encoded internal key. Keys shorter than a trailer are split as
    /// [`key::compare`] splits them, so the order is the same for every input.
    pub(crate) fn from_encoded(encoded: &'a [u8]) -> Target<'a> {
        Target { user_key: key::user_key(encoded), trailer: trailer(encoded, &[]) }
    }

    /// How the key `head ‖ tail` sorts relative to this target, by [`key::compare`].
    pub(crate) fn compare_key(&self, head: &[u8], tail: &[u8]) -> Ordering {
        let (user_head, user_tail) = split_user_key(head, tail);
        compare_concat(user_head, user_tail, self.user_key)
            .then_with(|| self.trailer.cmp(&trailer(head, tail)))
    }
}

/// The user key of the encoded key `head ‖ tail`, as the part of `head` and the part of `tail`
/// it covers (the trailer may straddle the two).
pub(crate) fn split_user_key<'k>(head: &'k [u8], tail: &'k [u8]) -> (&'k [u8], &'k [u8]) {
    let user_len = (head.len() + tail.len()).saturating_sub(TRAILER_LEN);
    let from_head = user_len.min(head.len());
    (&head[..from_head], &tail[..user_len - from_head])
}

/// The trailer of the encoded key `head ‖ tail`: its last eight bytes, big-endian; a key shorter
/// than eight bytes is padded with zeros in front, as [`key::compare`] does.
pub(crate) fn trailer(head: &[u8], tail: &[u8]) -> u64 {
    let mut bytes = [0u8; TRAILER_LEN];
    let len = (head.len() + tail.len()).min(TRAILER_LEN);
    let from_tail = len.min(tail.len());
    let from_head = len - from_tail;
    let start = TRAILER_LEN - len;
    bytes[start..start + from_head].copy_from_slice(&head[head.len() - from_head..]);
    bytes[TRAILER_LEN - from_tail..].copy_from_slice(&tail[tail.len() - from_tail..]);
    u64::from_be_bytes(bytes)
}

/// Bytewise order of `a ‖ b` against `c`.
pub(crate) fn compare_concat(a: &[u8], b: &[u8], c: &[u8]) -> Ordering {
    let n = a.len().min(c.len());
    match a[..n].cmp(&c[..n]) {
        Ordering::Equal if n < a.len() => Ordering::Greater,
        Ordering::Equal => b.cmp(&c[n..]),
        unequal => unequal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sstable::test_util::seeded_config;
    use proptest::prelude::*;

    fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
        // Few distinct byte values, so that equal prefixes and equal trailers are common.
        proptest::collection::vec(0u8..3, 0..14)
    }

    #[test]
    fn for_read_matches_seek_key() {
        for snapshot in [0, 1, 6, 1 << 40] {
            let encoded = key::seek_key(b"k", SeqNo(snapshot));
            let target = Target::for_read(b"k", SeqNo(snapshot));
            let probe = key::encode(b"k", SeqNo(snapshot), ValueKind::Delete);
            assert_eq!(
                target.compare_key(&probe, &[]),
                key::compare(&probe, &encoded),
                "{snapshot}"
            );
            assert_eq!(target.compare_key(&encoded, &[]), Ordering::Equal);
        }
        let beyond = Target::for_read(b"k", SeqNo(u64::MAX));
        let newest = key::encode(b"k", key::SEQNO_MAX, ValueKind::Put);
        assert_eq!(beyond.compare_key(&newest, &[]), Ordering::Equal, "snapshot is clamped");
    }

    proptest! {
        #![proptest_config(seeded_config(512))]

        /// The two-piece comparison agrees with `key::compare` on the whole key, at every split.
        #[test]
        fn compare_key_agrees_with_key_compare(
            a in small_bytes(),
            b in small_bytes(),
            split: usize,
        ) {
            let split = split % (a.len() + 1);
            let target = Target::from_encoded(&b);
            prop_assert_eq!(
                target.compare_key(&a[..split], &a[split..]),
                key::compare(&a, &b),
                "a={:?} b={:?} split={}", a, b, split
            );
            let (user_head, user_tail) = split_user_key(&a[..split], &a[split..]);
            prop_assert_eq!([user_head, user_tail].concat(), key::user_key(&a));
        }

        #[test]
        fn compare_concat_is_bytewise(a in small_bytes(), b in small_bytes(), c in small_bytes()) {
            prop_assert_eq!(compare_concat(&a, &b, &c), [&a[..], &b[..]].concat().cmp(&c));
        }
    }
}
