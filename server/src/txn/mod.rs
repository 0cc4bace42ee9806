//! Transactions across keys and shards: serializable, atomic, durable.
//!
//! A transaction is a list of operations ([`TxnOp`]): reads, inserts, appends (with an optional
//! expected version) and checks ("this key is at this version", 0 for absent). It commits as a
//! whole or not at all. Reads see the state before the transaction's own writes.
//!
//! # How one runs
//!
//! The node that receives the transaction coordinates it ([`coordinator`]). It groups the
//! operations by shard:
//!
//! - **One shard**: one Raft entry. The shard's leader takes the locks, proposes
//!   [`TxnCommand::Apply`] (checks, reads and writes, applied together or refused together), and
//!   releases the locks ([`leader`]).
//! - **Several shards**: two-phase commit, driven by the pure transitions of [`blockdb_twopc`]
//!   (the same functions the model in `spec/` checks). The coordinator's shard is the shard of
//!   the first operation's key; its record is created (`Begin`), each participant's leader takes
//!   its locks, reads, and replicates `Prepare` with the checks (the versions it read are checks
//!   too) and the writes; when every participant voted yes the coordinator's shard records the
//!   commit (`Decide`) — the decision is durable before any participant hears of it — and the
//!   participants apply it (`Finish`). A no vote or a timeout records an abort instead.
//!
//! Locks: the leader's lock manager ([`locks`]) takes shared locks for reads and checks and
//! exclusive ones for writes, in key order, waiting (with deadlock detection and a deadline) for
//! holders; from `Prepare` to `Finish` the replicated locks of the prepared participant hold
//! the keys ([`crate::ledger::txn`]), so no leader change loses them.
//!
//! Recovery ([`recovery`]): each node's sweeper looks at the shards it leads. A participant
//! prepared for longer than the transaction timeout asks the coordinator's shard for the
//! decision, which decides abort if nothing was decided; an undecided record older than the
//! timeout is aborted and its participants told. So no transaction stays undecided while a
//! majority of each of its shards is up.
//!
//! A committed transaction that wrote returns a receipt: the proof of its decision record and of
//! every record it wrote, which [`blockdb_verifier::verify_receipt`] checks offline.

pub mod coordinator;
pub mod leader;
pub mod locks;
pub mod recovery;
pub mod session;

use std::collections::BTreeMap;

use blockdb_twopc::Write;
use blockdb_verifier::{ShardId, TxnId};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, RequestError};
use crate::ledger::txn::Check;
use crate::node::Node;

pub use crate::ledger::txn::TxnCommand;

/// Operations in one transaction, at most.
pub const OPS_MAX: usize = 1024;

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Read the key's latest version (as of before the transaction's writes).
    Read {
        /// The key.
        key: Vec<u8>,
    },
    /// Create the key at version 1; the transaction aborts if the key exists.
    Insert {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Add the key's next version; with `expected_version`, only if the key is at that version.
    Append {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// The version the key must be at.
        expected_version: Option<u64>,
    },
    /// The transaction aborts unless the key is at `version` (0: the key has none).
    Check {
        /// The key.
        key: Vec<u8>,
        /// The version.
        version: u64,
    },
}

impl TxnOp {
    /// The key.
    pub fn key(&self) -> &[u8] {
        match self {
            TxnOp::Read { key }
            | TxnOp::Insert { key, .. }
            | TxnOp::Append { key, .. }
            | TxnOp::Check { key, .. } => key,
        }
    }
}

/// A read's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadResult {
    /// The key.
    pub key: Vec<u8>,
    /// Its latest version (0: none).
    pub version: u64,
    /// The value of that version.
    pub value: Option<Vec<u8>>,
}

/// A write's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteResult {
    /// The key.
    pub key: Vec<u8>,
    /// Its shard.
    pub shard: ShardId,
    /// The version written.
    pub version: u64,
    /// The record's leaf in the shard's log.
    pub log_index: u64,
}

/// What a committed transaction returns.
#[derive(Debug, Clone)]
pub struct TxnOutput {
    /// The transaction's id (in every leaf it wrote).
    pub txn_id: TxnId,
    /// One per read, in the order of the operations.
    pub reads: Vec<ReadResult>,
    /// One per insert or append, in the order of the operations.
    pub writes: Vec<WriteResult>,
    /// The receipt, for a transaction that wrote.
    pub receipt: Option<blockdb_verifier::Receipt>,
}

/// A shard's part of a transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Keys to read.
    pub reads: Vec<Vec<u8>>,
    /// Preconditions.
    pub checks: Vec<Check>,
    /// Writes, one per key.
    pub writes: Vec<Write>,
}

/// A transaction checked and split by shard.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The coordinator's shard: the first operation's.
    pub coordinator: ShardId,
    /// The parts, by shard.
    pub parts: BTreeMap<ShardId, Part>,
    /// For each read operation, in order: its shard and position among that part's reads.
    pub read_slots: Vec<(ShardId, usize)>,
    /// For each write operation, in order: its shard and position among that part's writes.
    pub write_slots: Vec<(ShardId, usize)>,
}

/// Checks a transaction's operations and splits them by shard.
///
/// # Errors
/// `invalid_argument` for an empty transaction, more than [`OPS_MAX`] operations, a key written
/// twice, contradicting checks (or an insert of a key also checked at another version), a reserved
/// key; `key_too_large`/`value_too_large` for keys and values over the node's limits.
pub fn plan(node: &Node, ops: &[TxnOp]) -> Result<Plan, RequestError> {
    let bad = |m: String| RequestError::new(ErrorCode::InvalidArgument, m);
    if ops.is_empty() {
        return Err(bad("a transaction needs at least one operation".into()));
    }
    if ops.len() > OPS_MAX {
        return Err(bad(format!(
            "a transaction may have at most {OPS_MAX} operations; this one has {}",
            ops.len()
        )));
    }
    let mut parts: BTreeMap<ShardId, Part> = BTreeMap::new();
    let mut read_slots = Vec::new();
    let mut write_slots = Vec::new();
    let mut written: BTreeMap<&[u8], usize> = BTreeMap::new();
    let mut checked: BTreeMap<&[u8], (u64, usize)> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let key = op.key();
        let value = match op {
            TxnOp::Insert { value, .. } | TxnOp::Append { value, .. } => Some(&value[..]),
            _ => None,
        };
        node.check_record(key, value).map_err(|mut e| {
            e.message = format!("operation {i}: {}", e.message);
            e
        })?;
        let shard = node.shard_of(key);
        let part = parts.entry(shard).or_default();
        let check = match op {
            TxnOp::Insert { .. } => Some(0),
            TxnOp::Append { expected_version, .. } => *expected_version,
            TxnOp::Check { version, .. } => Some(*version),
            TxnOp::Read { .. } => None,
        };
        if let Some(version) = check {
            match checked.get(key) {
                Some((v, j)) if *v != version => {
                    return Err(bad(format!(
                        "operations {j} and {i} need the same key at versions {v} and {version}"
                    )));
                }
                Some(_) => {}
                None => {
                    checked.insert(key, (version, i));
                    part.checks.push(Check { key: key.to_vec(), version });
                }
            }
        }
        match op {
            TxnOp::Read { .. } => {
                read_slots.push((shard, part.reads.len()));
                part.reads.push(key.to_vec());
            }
            TxnOp::Insert { value, .. } | TxnOp::Append { value, .. } => {
                if let Some(j) = written.insert(key, i) {
                    return Err(bad(format!(
                        "operations {j} and {i} both write the same key; a transaction writes a \
                         key once"
                    )));
                }
                write_slots.push((shard, part.writes.len()));
                part.writes.push(Write { key: key.to_vec(), value: value.clone() });
            }
            TxnOp::Check { .. } => {}
        }
    }
    let coordinator = node.shard_of(ops[0].key());
    Ok(Plan { coordinator, parts, read_slots, write_slots })
}

/// A new transaction id: 16 random bytes (never all zero).
pub fn new_txn_id() -> TxnId {
    loop {
        let id = TxnId(rand::random());
        if !id.is_none() {
            return id;
        }
    }
}
