//! Internal keys: a user key with the sequence number and kind of one write.
//!
//! Every write gets a sequence number ([`SeqNo`]) from one counter; a write batch gets consecutive
//! numbers, and a reader that sees number `s` sees every write up to `s` and none after. Several
//! versions of a user key live side by side, ordered newest first, so that a read at snapshot `s`
//! takes the first entry of its key with a sequence number at most `s`.
//!
//! # Encoding
//!
//! ```text
//! user key (n bytes) ‖ trailer: u64 big-endian = seqno << 8 | kind
//! ```
//!
//! Encoded keys are ordered by [`compare`]: user key ascending (bytewise), then trailer
//! descending, so the newest version of a key comes first. Plain bytewise order of the encoded
//! form would be wrong when one user key is a prefix of another; always use [`compare`].

use std::cmp::Ordering;

/// Length of the trailer after the user key.
pub const TRAILER_LEN: usize = 8;
/// Largest sequence number: 56 bits, the rest of the trailer holds the kind.
pub const SEQNO_MAX: SeqNo = SeqNo((1 << 56) - 1);

/// The position of a write in the engine's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SeqNo(pub u64);

impl std::fmt::Display for SeqNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a write did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// The key was removed (a tombstone).
    Delete = 0,
    /// The key was given a value.
    Put = 1,
}

impl ValueKind {
    /// The kind of a trailer's low byte, or `None` for a byte no kind has.
    pub fn from_byte(b: u8) -> Option<ValueKind> {
        match b {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            _ => None,
        }
    }
}

/// Appends the encoded internal key of (`user_key`, `seqno`, `kind`) to `out`.
pub fn encode_into(out: &mut Vec<u8>, user_key: &[u8], seqno: SeqNo, kind: ValueKind) {
    debug_assert!(seqno <= SEQNO_MAX, "sequence numbers have 56 bits");
    out.extend_from_slice(user_key);
    out.extend_from_slice(&((seqno.0 << 8) | kind as u64).to_be_bytes());
}

/// The encoded internal key of (`user_key`, `seqno`, `kind`).
pub fn encode(user_key: &[u8], seqno: SeqNo, kind: ValueKind) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    encode_into(&mut out, user_key, seqno, kind);
    out
}

/// The key to seek to for the newest version of `user_key` visible at `snapshot`: it sorts before
/// every version with a sequence number at most `snapshot` and after every newer one.
pub fn seek_key(user_key: &[u8], snapshot: SeqNo) -> Vec<u8> {
    // Put is the largest kind, so (snapshot, Put) sorts first among the entries at `snapshot`.
    encode(user_key, snapshot, ValueKind::Put)
}

/// A decoded view of an encoded internal key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The user key.
    pub user_key: &'a [u8],
    /// The write's sequence number.
    pub seqno: SeqNo,
    /// The write's kind.
    pub kind: ValueKind,
}

/// Splits an encoded internal key, or `None` if it is too short or its kind byte is unknown
/// (the caller turns that into a corruption error naming the file).
pub fn parse(encoded: &[u8]) -> Option<ParsedKey<'_>> {
    let split = encoded.len().checked_sub(TRAILER_LEN)?;
    let (user_key, trailer) = encoded.split_at(split);
    let trailer = u64::from_be_bytes(trailer.try_into().ok()?);
    let kind = ValueKind::from_byte((trailer & 0xff) as u8)?;
    Some(ParsedKey { user_key, seqno: SeqNo(trailer >> 8), kind })
}

/// The user key of an encoded internal key (all of it if it is shorter than a trailer).
pub fn user_key(encoded: &[u8]) -> &[u8] {
    &encoded[..encoded.len().saturating_sub(TRAILER_LEN)]
}

/// The order of encoded internal keys: user key ascending, then sequence number and kind
/// descending (newest first).
pub fn compare(a: &[u8], b: &[u8]) -> Ordering {
    if a.len() >= TRAILER_LEN && b.len() >= TRAILER_LEN {
        let (user_a, trailer_a) = a.split_at(a.len() - TRAILER_LEN);
        let (user_b, trailer_b) = b.split_at(b.len() - TRAILER_LEN);
        let t = |b: &[u8]| u64::from_be_bytes(b.try_into().expect("a trailer is 8 bytes"));
        return user_a.cmp(user_b).then_with(|| t(trailer_b).cmp(&t(trailer_a)));
    }
    // A key shorter than a trailer is malformed; order it as if zero-padded, consistently.
    user_key(a).cmp(user_key(b)).then_with(|| trailer(b).cmp(&trailer(a)))
}

fn trailer(encoded: &[u8]) -> u64 {
    let split = encoded.len().saturating_sub(TRAILER_LEN);
    let mut t = [0u8; 8];
    let tail = &encoded[split..];
    t[TRAILER_LEN - tail.len()..].copy_from_slice(tail);
    u64::from_be_bytes(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_version_first_and_prefix_keys_ordered_by_user_key() {
        let a5 = encode(b"a", SeqNo(5), ValueKind::Put);
        let a7 = encode(b"a", SeqNo(7), ValueKind::Put);
        let a7d = encode(b"a", SeqNo(7), ValueKind::Delete);
        let ab1 = encode(b"ab", SeqNo(1), ValueKind::Put);
        assert_eq!(compare(&a7, &a5), Ordering::Less);
        assert_eq!(compare(&a7, &a7d), Ordering::Less);
        assert_eq!(compare(&a5, &ab1), Ordering::Less);
        // Bytewise order of the encoded form would put "ab" before "a"@5's trailer here.
        let a_big = encode(b"a", SeqNo(0x62_0000), ValueKind::Put);
        assert_eq!(compare(&a_big, &ab1), Ordering::Less);
        let p = parse(&a7d).expect("parses");
        assert_eq!((p.user_key, p.seqno, p.kind), (&b"a"[..], SeqNo(7), ValueKind::Delete));
        assert!(parse(b"short").is_none());
        assert!(parse(&[0, 0, 0, 0, 0, 0, 0, 9]).is_none(), "unknown kind");
    }

    #[test]
    fn seek_key_lands_on_the_newest_visible_version() {
        let seek = seek_key(b"k", SeqNo(6));
        assert_eq!(compare(&seek, &encode(b"k", SeqNo(7), ValueKind::Put)), Ordering::Greater);
        assert_eq!(compare(&seek, &encode(b"k", SeqNo(6), ValueKind::Put)), Ordering::Equal);
        assert_eq!(compare(&seek, &encode(b"k", SeqNo(6), ValueKind::Delete)), Ordering::Less);
        assert_eq!(compare(&seek, &encode(b"k", SeqNo(5), ValueKind::Put)), Ordering::Less);
    }
}
