//! The BlockDB node.
//!
//! - [`storage`]: the LSM storage engine that holds every node's state.
//! - [`ledger`]: the Merkle log of each shard, its tiles and proofs.
#![deny(missing_docs)]

pub mod ledger;
pub mod storage;
