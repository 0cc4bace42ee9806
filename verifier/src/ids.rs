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
