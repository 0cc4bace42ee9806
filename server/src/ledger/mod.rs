//! The ledger: what a shard commits to and proves.
//!
//! - [`tree`]: the shard's Merkle log, stored as tlog-tiles in the storage engine, with proofs.

pub mod tree;

pub use tree::{MerkleLog, TreeError};
