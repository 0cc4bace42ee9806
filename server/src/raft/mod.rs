//! Raft for one shard: openraft's types, the log store and state machine on the storage engine,
//! and the peer network.
//!
//! ```text
//!   client write ──► proposer (batches commands) ──► Raft::client_write
//!                                                        │
//!                       LogStore::append (synced engine write: acknowledged = fsynced)
//!                                                        │  committed
//!                       StateMachine::apply ──► Shard::apply_batch (records, leaves, tiles,
//!                                                        │           applied index: one batch)
//!                       signed checkpoint + new ShardView published to readers
//! ```
//!
//! Every shard is its own Raft group. The log store and the state machine share the node's one
//! storage engine under distinct key prefixes, so one engine WAL and one group commit serve them
//! all. After a crash the state machine reopens at its last applied index (stored with the state
//! it describes) and openraft replays the committed entries after it.
//!
//! openraft is built with `loosen-follower-log-revert`: a follower whose log went back (its disk
//! lost entries it had acknowledged, without the storage engine noticing) makes the leader send
//! it the log again instead of stopping the leader's Raft core with a panic. The storage engine
//! refuses to open the damage it can see (see `storage::wal`), and a node whose store is refused
//! is replaced (removed, emptied, added back), so this is the last line, not the usual path.

use serde::{Deserialize, Serialize};

use crate::ledger::shard::{Command, Outcome};

pub mod codec;
pub mod log_store;
pub mod network;
pub mod snapshot;
pub mod state_machine;
pub mod wire;

/// A node's id within its cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's type configuration for BlockDB shards.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = tokio::fs::File,
);

/// A Raft log entry of BlockDB.
pub type Entry = openraft::Entry<TypeConfig>;
/// A shard's Raft instance.
pub type Raft = openraft::Raft<TypeConfig>;

/// The payload of a normal Raft entry: a batch of commands and the time the leader proposed
/// them. Applying it uses this time, never the replica's clock, so every replica writes the
/// same leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Milliseconds since the Unix epoch, from the leader's clock.
    pub commit_time_ms: u64,
    /// The leader's tree at proposal time, which every replica checks its own against.
    pub check: Option<RootCheck>,
    /// The commands, applied in order.
    pub commands: Vec<Command>,
}

/// A tree size and the root the proposing leader had at that size. The size is at most the
/// tree size before the entry (the leader had applied that much), so every replica applying the
/// entry can compare its own root at that size; a different root means the replicas' logs have
/// diverged, which is corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootCheck {
    /// The tree size.
    pub tree_size: u64,
    /// The leader's root at that size.
    pub root: [u8; 32],
}

/// What applying one entry produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// One outcome per command of the entry, in order.
    pub outcomes: Vec<Outcome>,
    /// The shard's tree size once the whole applied batch was in.
    pub tree_size: u64,
    /// The signed checkpoint (note text) of the tree after the applied batch holding this entry.
    pub checkpoint: String,
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} commands at {} ms", self.commands.len(), self.commit_time_ms)
    }
}
