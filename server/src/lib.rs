//! The BlockDB node.
//!
//! - [`storage`]: the LSM storage engine that holds every node's state.
//! - [`ledger`]: the Merkle log of each shard, its tiles, blocks and proofs.
//! - [`raft`]: one openraft group per shard, its log store and state machine on the engine.
//! - [`node`]: a node's shards and the operations the APIs expose.
//! - [`txn`]: transactions across keys and shards: locks, two-phase commit, recovery.
//! - [`api`]: REST (with OpenAPI and tlog-tiles) and gRPC adapters over the node.
//! - [`config`], [`serve`], [`metrics`], [`error`]: running and watching a node.
#![deny(missing_docs)]

pub mod api;
pub mod config;
/// `blockdb dev-cluster`: a local cluster of child `blockdb serve` processes on loopback.
pub mod dev_cluster;
pub mod error;
pub mod ledger;
pub mod metrics;
pub mod node;
pub mod raft;
pub mod serve;
pub mod storage;
pub mod txn;
