//! Interactive transactions: [`Client::begin`], then reads and writes one call at a time, then
//! [`Transaction::commit`] or [`Transaction::abort`].
//!
//! The transaction lives on the node that began it, so every call of it goes to that node's
//! endpoint and no other (`Connection::call_on`); a node that answered is never asked again.
//! Which failures are sent again, and only to that node (or, for begin, to the next endpoint):
//!
//! - begin: when no answer came; a transaction begun but never used holds nothing and ends at
//!   its deadline.
//! - read: when it did not arrive or no answer came; a repeated read locks the same key again,
//!   and the commit checks the version the first one read.
//! - write and commit: only when it certainly did not arrive; a key is written once per
//!   transaction, and a commit sent twice could not be told from one that failed.
//! - abort: when it did not arrive or no answer came; aborting twice ends it all the same.
//!
//! Each answer is checked before it is believed. A read's value is proven by a linearizable
//! Get of the version read, as [`Client::transact`] proves its reads; the commit's answer goes
//! through the very checks of `transact` ([`crate::txn`]: the receipt verified under the trust
//! policy, each write proven as it was asked), and its checkpoints move the trusted state.
//!
//! A write whose outcome is unknown (no answer came) leaves the transaction's writes unknown to
//! the client, so its commit could not be checked: [`Transaction::commit`] then aborts it rather
//! than commit writes it cannot account for.

use std::time::{Duration, Instant};

use blockdb_proto::v1 as pb;
use blockdb_verifier::TxnId;

use crate::client::{Client, TXN_ANSWER_BYTES_MAX};
use crate::connection::{Effect, EndpointId};
use crate::error::{ClientError, VerifyError};
use crate::txn::{self, TxnOp, TxnRead, TxnResult};

/// The longest time a server may give a transaction that the client believes: a day. Bounds the
/// time limits derived from it.
const TXN_TIMEOUT_MAX: Duration = Duration::from_secs(24 * 60 * 60);

/// An open interactive transaction, bound to the node that began it.
///
/// Calls are made one at a time (the methods take `&mut self`); [`Transaction::commit`] and
/// [`Transaction::abort`] end it. Reads and writes lock their keys on the shards' leaders until
/// it ends: a transaction dropped without either holds them until its deadline, when the node
/// aborts it. After a read or write fails with `deadlock` ([`ClientError::is_txn_conflict`]),
/// or with [`ClientError::Unavailable`] while waiting for a lock, the node has aborted it: run
/// it again as a new transaction.
#[derive(Debug)]
#[must_use = "a transaction holds its locks until it is committed, aborted or times out"]
pub struct Transaction<'c> {
    client: &'c Client,
    endpoint: EndpointId,
    txn_id: TxnId,
    /// When the node aborts it, at the latest (measured from before the begin was sent).
    deadline: Instant,
    /// The writes and checks the node took, in order: what its commit answers for.
    ops: Vec<TxnOp>,
    /// The reads, proven, in order.
    reads: Vec<TxnRead>,
    /// The key of a write whose outcome is unknown.
    in_doubt: Option<Vec<u8>>,
}

impl<'c> Transaction<'c> {
    /// See [`Client::begin`].
    pub(crate) async fn begin(client: &'c Client) -> Result<Transaction<'c>, ClientError> {
        let started = Instant::now();
        let (begun, endpoint) = client
            .conn
            .call_answered(Effect::Repeatable, |mut c| async move {
                c.txn_begin(pb::TxnBeginRequest {}).await
            })
            .await?;
        let txn_id = txn::txn_id(&begun.txn_id)?;
        let timeout = Duration::from_millis(begun.timeout_ms).min(TXN_TIMEOUT_MAX);
        Ok(Transaction {
            client,
            endpoint,
            txn_id,
            deadline: started + timeout,
            ops: Vec::new(),
            reads: Vec::new(),
            in_doubt: None,
        })
    }

    /// The transaction's id: in the leaf of every record it writes.
    pub fn txn_id(&self) -> TxnId {
        self.txn_id
    }

    /// The time limit of a read or a write: a lock may be waited for until the transaction's
    /// deadline, when the node answers `timeout`; cutting the wait short would leave the call's
    /// outcome unknown.
    fn step_timeout(&self) -> Duration {
        self.client.config.timeout + self.deadline.saturating_duration_since(Instant::now())
    }

    /// Reads `key`'s latest version, as of before this transaction's writes, and holds a shared
    /// lock on it until the transaction ends; the commit checks that it is still that version.
    /// The value is proven by its record's bundle before it is returned (a read of version 0 is
    /// not proven: a log proves what it holds, not what it lacks).
    ///
    /// # Errors
    /// `not_found` when the transaction has ended; `deadlock` (the node aborted it); key limits;
    /// [`ClientError::Unavailable`] (after a lock wait or a leader out of reach, the node
    /// aborted it); a [`VerifyError`] when the answer or the value's proof does not verify.
    pub async fn read(&mut self, key: &[u8]) -> Result<TxnRead, ClientError> {
        let req = pb::TxnReadRequest { txn_id: self.txn_id.0.to_vec(), key: key.to_vec() };
        let r = self
            .client
            .conn
            .call_on(self.endpoint, Effect::Repeatable, self.step_timeout(), |mut c| {
                let req = req.clone();
                async move { c.txn_read(req).await }
            })
            .await?;
        if r.key != key || (r.version == 0 && r.value.is_some()) {
            return Err(VerifyError::Mismatch(format!(
                "transaction {}: asked to read \"{}\", got a read of \"{}\" version {}{}",
                self.txn_id,
                key.escape_ascii(),
                r.key.escape_ascii(),
                r.version,
                if r.value.is_some() { " with a value" } else { "" }
            ))
            .into());
        }
        let read = self.client.prove_txn_read(self.txn_id, r.key, r.version, r.value).await?;
        self.reads.push(read.clone());
        Ok(read)
    }

    /// Inserts `key` at version 1 when the transaction commits, which then aborts if the key has
    /// a version; holds an exclusive lock on it until the transaction ends.
    ///
    /// # Errors
    /// As [`Transaction::append`].
    pub async fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<(), ClientError> {
        self.write(TxnOp::insert(key, value)).await
    }

    /// Appends the next version of `key` when the transaction commits, only at
    /// `expected_version` if given (else the commit aborts); holds an exclusive lock on it until
    /// the transaction ends.
    ///
    /// # Errors
    /// `invalid_argument` for a key this transaction already writes, a reserved key, and the key
    /// and value limits (the transaction stays open); `not_found` when the transaction has
    /// ended; `deadlock` (the node aborted it); [`ClientError::Unavailable`], after which the
    /// write's outcome is unknown and [`Transaction::commit`] aborts instead.
    pub async fn append(
        &mut self,
        key: &[u8],
        value: &[u8],
        expected_version: Option<u64>,
    ) -> Result<(), ClientError> {
        self.write(TxnOp::append(key, value, expected_version)).await
    }

    /// Requires `key` to be at `version` (0: no version) when the transaction commits, which
    /// aborts otherwise; holds a shared lock on it until the transaction ends.
    ///
    /// # Errors
    /// As [`Transaction::append`].
    pub async fn check(&mut self, key: &[u8], version: u64) -> Result<(), ClientError> {
        self.write(TxnOp::check(key, version)).await
    }

    async fn write(&mut self, op: TxnOp) -> Result<(), ClientError> {
        let req = pb::TxnWriteRequest { txn_id: self.txn_id.0.to_vec(), op: op.to_write_proto() };
        let r = self
            .client
            .conn
            .call_on(self.endpoint, Effect::Once, self.step_timeout(), |mut c| {
                let req = req.clone();
                async move { c.txn_write(req).await }
            })
            .await;
        match r {
            Ok(pb::TxnWriteResponse {}) => {
                self.ops.push(op);
                Ok(())
            }
            Err(e) => {
                if matches!(e, ClientError::Unavailable(_)) {
                    self.in_doubt = Some(op.key().to_vec());
                }
                Err(e)
            }
        }
    }

    /// Commits the transaction: its writes and checks, provided every key it read is still at
    /// the version read, as one or not at all. Returns it verified as [`Client::transact`]
    /// does (the receipt under the trust policy and against the trusted checkpoints, each write
    /// as it was asked), with its reads as [`Transaction::read`] returned them. Sent once.
    ///
    /// # Errors
    /// `aborted` when a check failed or a key read has another version now; `locked` or
    /// `deadlock` ([`ClientError::is_txn_conflict`]); `not_found` when the transaction had
    /// already ended (the node aborted it, or its deadline passed); [`ClientError::Unavailable`]
    /// when the outcome is unknown, naming the transaction — or, without sending the commit,
    /// after a write whose outcome is unknown (the transaction is then aborted); a
    /// [`VerifyError`] when the answer or its receipt does not verify or is not what was asked.
    pub async fn commit(self) -> Result<TxnResult, ClientError> {
        let txn_id = self.txn_id;
        if let Some(key) = &self.in_doubt {
            let message = format!(
                "transaction {txn_id} was not committed: the outcome of its write of \"{}\" is \
                 unknown, so the commit's answer could not be checked; it was aborted",
                key.escape_ascii()
            );
            // Best effort: the node aborts it at its deadline anyway.
            if let Err(e) = self.abort().await {
                tracing::debug!(%txn_id, error = %e, "aborting a transaction in doubt failed");
            }
            return Err(ClientError::Unavailable(message));
        }
        let req = pb::TxnCommitRequest { txn_id: txn_id.0.to_vec() };
        let timeout = self.client.config.timeout;
        let r =
            self.client
                .conn
                .call_on(self.endpoint, Effect::Once, timeout, |c| {
                    let req = req.clone();
                    async move {
                        c.max_decoding_message_size(TXN_ANSWER_BYTES_MAX).txn_commit(req).await
                    }
                })
                .await
                .map_err(|e| match e {
                    ClientError::Unavailable(m) => ClientError::Unavailable(format!(
                        "transaction {txn_id}: the outcome of its commit is unknown: {m}"
                    )),
                    other => other,
                })?;
        let checked = txn::check(&self.ops, r, &self.client.config.policy, self.client.shards)?;
        if checked.txn_id != txn_id {
            return Err(VerifyError::Mismatch(format!(
                "transaction {txn_id}: its commit answered for transaction {}",
                checked.txn_id
            ))
            .into());
        }
        let mut result = self.client.take_in_txn(checked).await?;
        result.reads = self.reads;
        Ok(result)
    }

    /// Aborts the transaction and releases its locks; nothing it asked for is written. A
    /// transaction that had already ended (the node aborted it, or its deadline passed) is
    /// aborted all the same: it never committed, since only [`Transaction::commit`] commits it.
    ///
    /// # Errors
    /// [`ClientError::Unavailable`] when the node did not answer (it aborts the transaction at
    /// its deadline).
    pub async fn abort(self) -> Result<(), ClientError> {
        let req = pb::TxnAbortRequest { txn_id: self.txn_id.0.to_vec() };
        let r = self
            .client
            .conn
            .call_on(self.endpoint, Effect::Repeatable, self.client.config.timeout, |mut c| {
                let req = req.clone();
                async move { c.txn_abort(req).await }
            })
            .await;
        match r {
            Ok(pb::TxnAbortResponse {}) => Ok(()),
            Err(e) if e.code() == Some("not_found") => Ok(()),
            Err(e) => Err(e),
        }
    }
}
