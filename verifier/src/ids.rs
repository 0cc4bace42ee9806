//! Newtypes for the integers that must not mix (see the glossary in DESIGN.md).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Position of a leaf in its shard's Merkle log, counted from 0.
///
/// Not a Raft index: Raft counts membership and blank entries too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogIndex(pub u64);

/// Number of leaves in a Merkle log. Leaves `[0, size)` are in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TreeSize(pub u64);

/// A shard of the keyspace; each shard is one Raft group and one Merkle log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardId(pub u32);

impl ShardId {
    /// The shard that holds `key` in a cluster of `shards` shards: the keyspace is
    /// hash-partitioned by XXH3-64 of the key, modulo the shard count. Servers and clients must
    /// agree on this, so it is defined once, here. `None` for 0 shards (no cluster has none).
    pub fn for_key(key: &[u8], shards: u32) -> Option<ShardId> {
        let shards = u64::from(shards);
        (shards > 0).then(|| ShardId((xxhash_rust::xxh3::xxh3_64(key) % shards) as u32))
    }
}

/// Identifier of a transaction: 16 bytes, all zero for a write outside any transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TxnId(pub [u8; 16]);

impl TxnId {
    /// The id of "no transaction": a single write.
    pub const NONE: TxnId = TxnId([0; 16]);

    /// True for [`TxnId::NONE`].
    pub fn is_none(&self) -> bool {
        *self == Self::NONE
    }
}

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for TreeSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::ShardId;

    #[test]
    fn keys_partition_by_xxh3() {
        // The function is XXH3-64 modulo the count, and every shard gets keys.
        assert_eq!(ShardId::for_key(b"alice", 1), Some(ShardId(0)));
        assert_eq!(ShardId::for_key(b"alice", 0), None);
        let alice = xxhash_rust::xxh3::xxh3_64(b"alice") % 4;
        assert_eq!(ShardId::for_key(b"alice", 4), Some(ShardId(alice as u32)));
        let spread: std::collections::BTreeSet<_> =
            (0..64u32).filter_map(|i| ShardId::for_key(&i.to_be_bytes(), 4)).collect();
        assert_eq!(spread.len(), 4);
    }
}
