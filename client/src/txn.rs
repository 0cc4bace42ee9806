//! Transactions: the typed operations ([`TxnOp`]), what a committed transaction returns
//! ([`TxnResult`]), and the checks of a Transact answer that need no I/O.
//!
//! [`crate::Client::transact`] sends the operations once and checks the answer here before it
//! believes any of it:
//!
//! ```text
//!  answer ─► check: the txn id, one read per Read and one write per Insert/Append, in order
//!          ─► the receipt (required when the transaction wrote): converted, its txn id the
//!             answer's, verify_receipt under the trust policy (signatures, decision = commit,
//!             every write proven, none left out or added)
//!          ─► each write: the receipt proves it in the key's shard, at the version the answer
//!             names (1 for an insert, expected + 1 for a compare-and-append) and with the value
//!             the operation wrote
//!  then (Client::transact, with I/O): the receipt's checkpoints against the trusted ones, and
//!  each read proven by a Get of the version it names
//! ```
//!
//! An interactive transaction's commit ([`crate::Transaction::commit`]) is checked by the same
//! `check`, with the writes and checks the transaction sent as its operations: the answer has
//! no reads (each was proven when it was answered).
//!
//! What a receipt does not prove: that a read saw the latest version when the transaction ran,
//! or that a key read as absent (version 0) had no version. Ledger proofs show what is in a log,
//! not what is missing from it; the reads that found a version are proven to be that version's
//! record.

use blockdb_proto::v1 as pb;
use blockdb_verifier::{
    Checkpoint, LogIndex, Receipt, ShardId, TrustPolicy, TxnId, verify_receipt,
};

use crate::client::VerifiedRead;
use crate::convert;
use crate::error::{ClientError, VerifyError};

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Read the key's latest version, as of before the transaction's own writes.
    Read {
        /// The key.
        key: Vec<u8>,
    },
    /// Create the key at version 1; the transaction aborts if the key has a version.
    Insert {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Add the key's next version; with `expected_version`, only if the key is at that version
    /// (0: it has none), else the transaction aborts.
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
    /// A read of `key`.
    pub fn read(key: impl Into<Vec<u8>>) -> TxnOp {
        TxnOp::Read { key: key.into() }
    }

    /// An insert of `key` at version 1.
    pub fn insert(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> TxnOp {
        TxnOp::Insert { key: key.into(), value: value.into() }
    }

    /// An append to `key`, only at `expected_version` if given.
    pub fn append(
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        expected_version: Option<u64>,
    ) -> TxnOp {
        TxnOp::Append { key: key.into(), value: value.into(), expected_version }
    }

    /// A check that `key` is at `version` (0: absent).
    pub fn check(key: impl Into<Vec<u8>>, version: u64) -> TxnOp {
        TxnOp::Check { key: key.into(), version }
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        match self {
            TxnOp::Read { key }
            | TxnOp::Insert { key, .. }
            | TxnOp::Append { key, .. }
            | TxnOp::Check { key, .. } => key,
        }
    }

    pub(crate) fn to_proto(&self) -> pb::TxnOp {
        use pb::txn_op::Op;
        let op = match self.clone() {
            TxnOp::Read { key } => Op::Read(pb::TxnRead { key }),
            TxnOp::Insert { key, value } => Op::Insert(pb::TxnInsert { key, value }),
            TxnOp::Append { key, value, expected_version } => {
                Op::Append(pb::TxnAppend { key, value, expected_version })
            }
            TxnOp::Check { key, version } => Op::Check(pb::TxnCheck { key, version }),
        };
        pb::TxnOp { op: Some(op) }
    }

    /// The op of an interactive transaction's TxnWrite; `None` for a read, which TxnRead asks.
    pub(crate) fn to_write_proto(&self) -> Option<pb::txn_write_request::Op> {
        use pb::txn_write_request::Op;
        Some(match self.clone() {
            TxnOp::Read { .. } => return None,
            TxnOp::Insert { key, value } => Op::Insert(pb::TxnInsert { key, value }),
            TxnOp::Append { key, value, expected_version } => {
                Op::Append(pb::TxnAppend { key, value, expected_version })
            }
            TxnOp::Check { key, version } => Op::Check(pb::TxnCheck { key, version }),
        })
    }

    /// The value and the version it must be written at (when that is known), for a write.
    fn write(&self) -> Option<(&[u8], Option<u64>)> {
        match self {
            TxnOp::Insert { value, .. } => Some((value, Some(1))),
            TxnOp::Append { value, expected_version, .. } => {
                Some((value, expected_version.and_then(|v| v.checked_add(1))))
            }
            TxnOp::Read { .. } | TxnOp::Check { .. } => None,
        }
    }
}

/// What a committed transaction read.
#[derive(Debug, Clone)]
pub struct TxnRead {
    /// The key.
    pub key: Vec<u8>,
    /// Its latest version when the transaction read it; 0: it had none.
    pub version: u64,
    /// The value of that version; `None` for version 0 (or a redacted value).
    pub value: Option<Vec<u8>>,
    /// The proof that `version` of the key holds `value`; `None` for version 0, which no proof
    /// covers (a log proves what it holds, not what it lacks).
    pub proof: Option<VerifiedRead>,
}

/// A record a committed transaction wrote, as its verified receipt proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnWrite {
    /// The key.
    pub key: Vec<u8>,
    /// The key's shard.
    pub shard: ShardId,
    /// The version written.
    pub version: u64,
    /// The record's leaf in the shard's log.
    pub log_index: LogIndex,
}

/// A committed transaction, verified.
#[derive(Debug, Clone)]
pub struct TxnResult {
    /// The transaction's id, in the leaf of every record it wrote.
    pub txn_id: TxnId,
    /// One per [`TxnOp::Read`], in the order of the operations.
    pub reads: Vec<TxnRead>,
    /// One per [`TxnOp::Insert`] or [`TxnOp::Append`], in the order of the operations.
    pub writes: Vec<TxnWrite>,
    /// The receipt, which verified under the trust policy; `None` when the transaction wrote
    /// nothing. Kept whole so that it can be saved ([`Receipt::to_json`]) and checked offline.
    pub receipt: Option<Receipt>,
}

/// A Transact answer that passed [`check`]: its writes are proven, its reads not yet.
#[derive(Debug)]
pub(crate) struct Checked {
    pub txn_id: TxnId,
    /// Key, version and value of each read, in order.
    pub reads: Vec<(Vec<u8>, u64, Option<Vec<u8>>)>,
    pub writes: Vec<TxnWrite>,
    pub receipt: Option<Receipt>,
}

fn mismatch(message: String) -> ClientError {
    VerifyError::Mismatch(message).into()
}

/// A transaction id from an answer: 16 bytes, not all zero.
pub(crate) fn txn_id(raw: &[u8]) -> Result<TxnId, VerifyError> {
    match <[u8; 16]>::try_from(raw) {
        Ok(id) if !TxnId(id).is_none() => Ok(TxnId(id)),
        _ => Err(VerifyError::Malformed(format!(
            "a transaction id of {} bytes{}",
            raw.len(),
            if raw.len() == 16 { ", all zero" } else { "" }
        ))),
    }
}

fn receipt(r: &pb::TxnReceipt) -> Result<Receipt, VerifyError> {
    let decision = r.decision.as_ref().ok_or_else(|| {
        VerifyError::Malformed("a transaction receipt without its decision bundle".into())
    })?;
    Ok(Receipt {
        txn_id: txn_id(&r.txn_id)?,
        coordinator: ShardId(r.coordinator),
        decision: convert::bundle(decision)?,
        writes: r.writes.iter().map(convert::bundle).collect::<Result<_, _>>()?,
    })
}

/// Checks the answer `r` to the transaction `ops` in a cluster of `shards` shards: see the
/// module docs. Returns the writes the receipt proves, in the order of the operations.
///
/// # Errors
/// A [`VerifyError`] when the answer is malformed, does not match `ops` or its receipt does not
/// verify; [`ClientError::Unavailable`] when the transaction wrote but the answer has no receipt
/// (the server says it committed, and nothing proves it yet).
pub(crate) fn check(
    ops: &[TxnOp],
    r: pb::TransactResponse,
    policy: &TrustPolicy,
    shards: u32,
) -> Result<Checked, ClientError> {
    let txn_id = txn_id(&r.txn_id)?;
    let read_keys: Vec<&[u8]> =
        ops.iter().filter(|op| matches!(op, TxnOp::Read { .. })).map(TxnOp::key).collect();
    let write_ops: Vec<(&[u8], &[u8], Option<u64>)> = ops
        .iter()
        .filter_map(|op| op.write().map(|(value, version)| (op.key(), value, version)))
        .collect();
    if r.reads.len() != read_keys.len() || r.writes.len() != write_ops.len() {
        return Err(mismatch(format!(
            "transaction {txn_id}: {} reads and {} writes answered for {} and {}",
            r.reads.len(),
            r.writes.len(),
            read_keys.len(),
            write_ops.len()
        )));
    }
    let mut reads = Vec::with_capacity(r.reads.len());
    for (read, key) in r.reads.into_iter().zip(read_keys) {
        if read.key != key || (read.version == 0 && read.value.is_some()) {
            return Err(mismatch(format!("transaction {txn_id}: a read of another key or shape")));
        }
        reads.push((read.key, read.version, read.value));
    }
    let Some(pb_receipt) = r.receipt else {
        if !write_ops.is_empty() {
            return Err(ClientError::Unavailable(format!(
                "transaction {txn_id}: the server reports a commit but sent no receipt (a shard \
                 had not applied it yet), so nothing proves it; read the keys to see its outcome"
            )));
        }
        return Ok(Checked { txn_id, reads, writes: Vec::new(), receipt: None });
    };
    if write_ops.is_empty() {
        return Err(mismatch(format!("transaction {txn_id}: a receipt, though it wrote nothing")));
    }
    let receipt = receipt(&pb_receipt)?;
    if receipt.txn_id != txn_id || receipt.coordinator.0 >= shards {
        return Err(mismatch(format!(
            "transaction {txn_id}: a receipt of transaction {} coordinated by shard {}",
            receipt.txn_id, receipt.coordinator.0
        )));
    }
    let verified = verify_receipt(&receipt, policy).map_err(VerifyError::from)?;
    if verified.writes.len() != write_ops.len() {
        return Err(mismatch(format!(
            "transaction {txn_id}: the receipt proves {} writes of {}",
            verified.writes.len(),
            write_ops.len()
        )));
    }
    let mut writes = Vec::with_capacity(write_ops.len());
    for ((key, value, version), answered) in write_ops.into_iter().zip(&r.writes) {
        // verify_receipt refuses two bundles of one key and holds as many as the decision
        // counts; keys are written once per transaction, so this pairs them one to one.
        let position = verified.writes.iter().position(|w| w.key == key);
        let found = position.and_then(|i| Some((verified.writes.get(i)?, receipt.writes.get(i)?)));
        let Some((proven, bundle)) = found else {
            return Err(mismatch(format!(
                "transaction {txn_id}: the receipt does not prove the write of \"{}\"",
                key.escape_ascii()
            )));
        };
        let write = TxnWrite {
            key: proven.key.clone(),
            shard: proven.shard,
            version: proven.version,
            log_index: proven.log_index,
        };
        let as_answered = answered.key == write.key
            && answered.shard == write.shard.0
            && answered.version == write.version
            && answered.log_index == write.log_index.0;
        let as_asked = ShardId::for_key(&write.key, shards) == Some(write.shard)
            && version.is_none_or(|v| v == write.version)
            && bundle.record.value.as_deref() == Some(value);
        if !as_answered || !as_asked {
            return Err(mismatch(format!(
                "transaction {txn_id}: the receipt's record of \"{}\" (shard {} version {}) is \
                 not the write answered or asked for",
                write.key.escape_ascii(),
                write.shard.0,
                write.version
            )));
        }
        writes.push(write);
    }
    Ok(Checked { txn_id, reads, writes, receipt: Some(receipt) })
}

/// Each distinct checkpoint of the receipt's bundles, with its shard: every one verified under
/// the policy by [`verify_receipt`], none yet compared with the trusted state.
pub(crate) fn checkpoints(receipt: &Receipt) -> Vec<(ShardId, Checkpoint)> {
    let mut out: Vec<(ShardId, Checkpoint)> = Vec::new();
    for b in std::iter::once(&receipt.decision).chain(&receipt.writes) {
        let seen = (b.leaf.shard, b.checkpoint.checkpoint().clone());
        if !out.contains(&seen) {
            out.push(seen);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_know_the_version_they_must_get() {
        assert_eq!(TxnOp::insert("k", "v").write(), Some((&b"v"[..], Some(1))));
        assert_eq!(TxnOp::append("k", "v", Some(4)).write(), Some((&b"v"[..], Some(5))));
        assert_eq!(TxnOp::append("k", "v", None).write(), Some((&b"v"[..], None)));
        assert_eq!(TxnOp::append("k", "v", Some(u64::MAX)).write(), Some((&b"v"[..], None)));
        assert_eq!(TxnOp::read("k").write(), None);
        assert_eq!(TxnOp::check("k", 0).write(), None);
    }

    #[test]
    fn an_answer_that_does_not_match_the_operations_is_refused() {
        let policy = TrustPolicy::new(
            vec![
                "blockdb-node-1+d740e9c6+AVfLFsb9a+bc8IKYCx5tXT/60o6qpbKfOAKwiAOKEYvo"
                    .parse()
                    .expect("a key"),
            ],
            1,
        )
        .expect("a policy");
        let ops = [TxnOp::read("a"), TxnOp::insert("b", "v")];
        let answer = |id: Vec<u8>, reads: Vec<pb::TxnReadResult>| pb::TransactResponse {
            txn_id: id,
            reads,
            writes: vec![pb::TxnWriteResult {
                key: b"b".to_vec(),
                shard: 0,
                version: 1,
                log_index: 0,
            }],
            receipt: None,
        };
        let read = |key: &[u8], version, value: Option<&[u8]>| pb::TxnReadResult {
            key: key.to_vec(),
            version,
            value: value.map(<[u8]>::to_vec),
        };
        let cases = [
            ("no id", answer(Vec::new(), vec![read(b"a", 1, Some(b"x"))])),
            ("zero id", answer(vec![0; 16], vec![read(b"a", 1, Some(b"x"))])),
            ("no read", answer(vec![1; 16], Vec::new())),
            ("another key", answer(vec![1; 16], vec![read(b"z", 1, Some(b"x"))])),
            ("a value at version 0", answer(vec![1; 16], vec![read(b"a", 0, Some(b"x"))])),
        ];
        for (what, r) in cases {
            let e = check(&ops, r, &policy, 1).expect_err(what);
            assert!(e.is_verification(), "{what}: {e}");
        }
        // Well formed, but a write with no receipt: unproven, not evidence of a lie.
        let r = answer(vec![1; 16], vec![read(b"a", 1, Some(b"x"))]);
        let e = check(&ops, r, &policy, 1).expect_err("no receipt");
        assert!(matches!(e, ClientError::Unavailable(_)), "{e}");
        // A transaction that wrote nothing needs none.
        let r = pb::TransactResponse { writes: Vec::new(), ..answer(vec![1; 16], Vec::new()) };
        let checked = check(&[], r, &policy, 1).expect("nothing to prove");
        assert!(checked.receipt.is_none() && checked.writes.is_empty());
    }
}
