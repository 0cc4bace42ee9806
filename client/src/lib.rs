//! A BlockDB client that never trusts the server.
//!
//! Every answer is checked before anything from it is returned: checkpoints against the trust
//! policy (k of the cluster's verifier keys), records against their leaves and inclusion proofs,
//! and every checkpoint against the one the client already trusts for that log, through a
//! consistency proof ([`trust`]). A server that shows a forked or rolled-back history is caught
//! and reported as a [`VerifyError`], kept apart from refusals and unavailability
//! ([`ClientError`]).
//!
//! - [`client`]: the gRPC client, with timeouts, bounded retries and verification.
//! - [`cluster`]: the cluster's status and membership changes — operational, unverified — and
//!   [`ClusterAdmin`], which calls them without a trust policy.
//! - `connection`: the channels, time limits and retries both share.
//! - [`trust`]: the trusted state and its transitions (no I/O).
//! - [`txn`]: transactions' operations and results, and the checks of an answer (no I/O).
//! - [`transaction`]: interactive transactions ([`Client::begin`]), pinned to the node that
//!   began them.
//! - [`store`]: where the trusted state is kept between runs.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use blockdb_client::{Client, ClientConfig, Consistency, MemoryStore};
//! use blockdb_verifier::{TrustPolicy, VerifierKey};
//!
//! let key: VerifierKey = "blockdb-node-1+d740e9c6+AVfLFsb9a+bc8IKYCx5tXT/60o6qpbKfOAKwiAOKEYvo".parse()?;
//! let policy = TrustPolicy::new(vec![key], 1)?;
//! let config = ClientConfig::new(vec!["http://127.0.0.1:7070".into()], policy);
//! let client = Client::connect(config, Arc::new(MemoryStore::default())).await?;
//! client.insert(b"alice", b"hello").await?;
//! let read = client.get(b"alice", None, Consistency::Linearizable).await?;
//! assert_eq!(read.record.value.as_deref(), Some(&b"hello"[..]));
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod batch;
pub mod client;
pub mod cluster;
mod connection;
mod convert;
pub mod error;
mod recent;
pub mod store;
pub mod transaction;
pub mod trust;
pub mod txn;

pub use client::{
    Client, ClientConfig, Consistency, NodeIdentity, VerifiedEntry, VerifiedRead, WriteReceipt,
    node_identity,
};
pub use cluster::{
    ClusterAdmin, ClusterStatus, NodeStatus, ReplicationLag, Role, ShardMembership, ShardStatus,
};
pub use error::{ClientError, VerifyError};
pub use store::{FileStore, MemoryStore, StoreError, TrustStore};
pub use transaction::Transaction;
pub use trust::{Observation, TrustedState};
pub use txn::{TxnOp, TxnRead, TxnResult, TxnWrite};
