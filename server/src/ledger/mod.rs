//! The ledger: what a shard commits to and proves.
//!
//! - [`tree`]: the shard's Merkle log, stored as tlog-tiles in the storage engine, with proofs.
//! - [`node_key`]: the node's Ed25519 key, which signs its checkpoints.
//! - [`shard`]: a shard's records, versions, log and applied index, changed by applying entries.
//! - [`txn`]: a shard's transaction records, participant states and prepared locks.
//! - [`view`]: a shard as of one applied batch, and the proofs every read returns.

pub mod node_key;
pub mod shard;
pub mod tree;
pub mod txn;
pub mod view;

pub use node_key::{NodeKey, NodeKeyError};
pub use shard::{Command, Outcome, Shard, ShardError};
pub use tree::{MerkleLog, TreeError};
pub use view::{EntryProof, ShardView};
