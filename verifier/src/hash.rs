//! RFC 6962 / RFC 9162 Merkle tree hashing.
//!
//! - leaf hash: `SHA-256(0x00 ‖ leaf)`
//! - node hash: `SHA-256(0x01 ‖ left ‖ right)`
//! - root of the empty tree: `SHA-256("")`
//! - root of `n > 1` leaves: `node_hash(root(D[0:k]), root(D[k:n]))`, `k` the largest power of
//!   two smaller than `n`.
//!
//! The prefixes keep a leaf from ever being taken for an inner node (second-preimage resistance).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::frontier::Frontier;

/// A SHA-256 output: a leaf hash, a node hash or a root.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

/// Error of [`Hash::from_str`] and [`Hash::from_slice`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a hash is 32 bytes (64 hex digits); got {got_len} {unit}")]
pub struct HashLenError {
    got_len: usize,
    unit: &'static str,
}

impl Hash {
    /// Length of a hash in bytes.
    pub const LEN: usize = 32;

    /// The hash of exactly 32 bytes.
    ///
    /// # Errors
    /// When `bytes` is not 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Hash, HashLenError> {
        <[u8; 32]>::try_from(bytes)
            .map(Hash)
            .map_err(|_| HashLenError { got_len: bytes.len(), unit: "bytes" })
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl FromStr for Hash {
    type Err = HashLenError;

    /// Parses 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Hash, HashLenError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| HashLenError { got_len: s.len(), unit: "characters of hex" })?;
        Ok(Hash(out))
    }
}

/// `SHA-256(0x00 ‖ leaf)`: the hash of a leaf's bytes.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    Hash(h.finalize().into())
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(&left.0);
    buf[33..].copy_from_slice(&right.0);
    Hash(Sha256::digest(buf).into())
}

/// `SHA-256("")`: the root of the empty tree.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// The root of a tree whose leaves have these leaf hashes, in O(n) hashing and O(log n) memory.
pub fn root_of_leaf_hashes(leaf_hashes: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for h in leaf_hashes {
        frontier.push(*h);
    }
    frontier.root()
}

/// The root of a tree with these leaves (raw leaf bytes, hashed with [`leaf_hash`]).
pub fn root_of_leaves<L: AsRef<[u8]>>(leaves: &[L]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(leaf_hash(leaf.as_ref()));
    }
    frontier.root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_bad_lengths() {
        let h = leaf_hash(b"x");
        assert_eq!(h.to_hex().parse::<Hash>(), Ok(h));
        assert!("abcd".parse::<Hash>().is_err());
        assert!("zz".repeat(32).parse::<Hash>().is_err());
        assert!(Hash::from_slice(&[0u8; 31]).is_err());
        assert!(Hash::from_slice(&[0u8; 33]).is_err());
    }
}
