//! Interactive transactions: begin, then reads and writes one request at a time, then commit or
//! abort. The node that began the transaction keeps its session; each read takes a shared lock
//! at the key's shard leader and returns the value, each write takes an exclusive lock there and
//! is kept until commit. Commit runs the writes with the versions read as checks, through the
//! same paths as a one-shot transaction ([`super::coordinator`]), under the same id, so the
//! locks taken along the way are the transaction's own.
//!
//! A session ends at commit, at abort, when one of its lock requests is refused (`deadlock` or a
//! wait that timed out: the transaction is aborted and its locks released at once, so others
//! can go on), or at its deadline (the sweeper aborts it). Locks at leaders also carry a lease,
//! so a coordinator that vanished does not hold them for longer than the transaction's time.
//!
//! The locks taken along the way live in the leaders' memory, and single writes do not wait for
//! them: they make transactions wait for each other and find deadlocks. Serializability does not
//! rest on them: the commit checks every version the transaction read (in its `Prepare` or
//! `Apply` entry), so a write that got in between — or a leader change that lost the locks —
//! aborts the transaction rather than let it commit on a stale read.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blockdb_verifier::{ShardId, TxnId};

use crate::error::{ErrorCode, RequestError};
use crate::node::Node;
use crate::txn::leader::{Step, StepReply, route};
use crate::txn::locks::Mode;
use crate::txn::{ReadResult, TxnOp, TxnOutput, coordinator, new_txn_id};

/// An open interactive transaction.
#[derive(Debug)]
struct Session {
    deadline: Instant,
    /// Versions read, as checks for the commit.
    reads: Vec<(Vec<u8>, u64)>,
    /// Writes and checks asked for, in order.
    ops: Vec<TxnOp>,
    /// Shards where it holds locks.
    shards: BTreeSet<ShardId>,
    /// A request of this session is running (one at a time).
    busy: bool,
}

/// The interactive transactions this node coordinates.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<TxnId, Session>>,
}

/// A session taken by one request; freed when dropped.
struct Busy<'a> {
    sessions: &'a Sessions,
    txn: TxnId,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.sessions.lock().get_mut(&self.txn) {
            s.busy = false;
        }
    }
}

/// Open interactive transactions per node, at most.
pub const SESSIONS_MAX: usize = 10_000;

fn unknown(txn: TxnId) -> RequestError {
    RequestError::new(
        ErrorCode::NotFound,
        format!(
            "no open transaction {txn} on this node: it was never begun here, or it was \
             committed, aborted or timed out (interactive transactions are served by the node \
             that began them)"
        ),
    )
}

impl Sessions {
    /// No sessions.
    pub fn new() -> Sessions {
        Sessions::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TxnId, Session>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the session for one request: its deadline, and a guard that frees the session
    /// again when the request ends, however it ends (the caller may go away mid-request);
    /// refuses an unknown, expired or busy one.
    fn take(&self, txn: TxnId) -> Result<(Instant, Busy<'_>), RequestError> {
        let mut open = self.lock();
        let s = open.get_mut(&txn).ok_or_else(|| unknown(txn))?;
        if Instant::now() >= s.deadline {
            return Err(unknown(txn));
        }
        if s.busy {
            return Err(RequestError::new(
                ErrorCode::InvalidArgument,
                format!("transaction {txn} is already running a request; send one at a time"),
            ));
        }
        s.busy = true;
        Ok((s.deadline, Busy { sessions: self, txn }))
    }

    fn update(&self, txn: TxnId, f: impl FnOnce(&mut Session)) {
        if let Some(s) = self.lock().get_mut(&txn) {
            f(s);
        }
    }

    fn remove(&self, txn: TxnId) -> Option<Session> {
        self.lock().remove(&txn)
    }

    /// The sessions past their deadline, removed.
    fn expired(&self) -> Vec<(TxnId, Session)> {
        let now = Instant::now();
        let mut open = self.lock();
        let gone: Vec<TxnId> =
            open.iter().filter(|(_, s)| s.deadline <= now && !s.busy).map(|(t, _)| *t).collect();
        gone.into_iter().filter_map(|t| open.remove(&t).map(|s| (t, s))).collect()
    }
}

/// Begins an interactive transaction coordinated by this node; returns its id and how long it
/// may run.
///
/// # Errors
/// `unavailable` when the node has too many open transactions.
pub fn begin(node: &Node) -> Result<(TxnId, Duration), RequestError> {
    let timeout = node.txn_timeout();
    let mut open = node.sessions().lock();
    if open.len() >= SESSIONS_MAX {
        return Err(RequestError::new(
            ErrorCode::Unavailable,
            format!("this node has {SESSIONS_MAX} open transactions; retry later"),
        ));
    }
    let txn = new_txn_id();
    let session = Session {
        deadline: Instant::now() + timeout,
        reads: Vec::new(),
        ops: Vec::new(),
        shards: BTreeSet::new(),
        busy: false,
    };
    open.insert(txn, session);
    Ok((txn, timeout))
}

/// Reads `key` in transaction `txn`, holding a shared lock on it until the end.
///
/// # Errors
/// `not_found` for an unknown or ended transaction; `deadlock` or `timeout` for a lock that
/// could not be taken (the transaction is then aborted); bad keys; `unavailable`.
pub async fn read(node: &Arc<Node>, txn: TxnId, key: Vec<u8>) -> Result<ReadResult, RequestError> {
    node.check_record(&key, None)?;
    let (deadline, _busy) = node.sessions().take(txn)?;
    let shard = node.shard_of(&key);
    let step = Step::Lock {
        txn,
        key: key.clone(),
        exclusive: false,
        read: true,
        deadline_ms: left_ms(deadline),
    };
    match route(node, shard, step, deadline).await {
        Ok(StepReply::Locked { read: Some((version, value)) }) => {
            node.sessions().update(txn, |s| {
                s.shards.insert(shard);
                if !s.reads.iter().any(|(k, _)| *k == key) && !writes(&s.ops, &key) {
                    s.reads.push((key.clone(), version));
                }
            });
            Ok(ReadResult { key, version, value })
        }
        Ok(_) => Err(fail(
            node,
            txn,
            shard,
            RequestError::new(ErrorCode::Internal, "a read without a value"),
        )
        .await),
        Err(e) => Err(fail(node, txn, shard, e).await),
    }
}

fn writes(ops: &[TxnOp], key: &[u8]) -> bool {
    ops.iter().any(|o| matches!(o, TxnOp::Insert { .. } | TxnOp::Append { .. }) && o.key() == key)
}

/// Adds a write or a check to transaction `txn`, holding an exclusive lock on its key (a shared
/// one for a check) until the end.
///
/// # Errors
/// As [`read`]; `invalid_argument` for a read op (use [`read`]) or a key written twice.
pub async fn write(node: &Arc<Node>, txn: TxnId, op: TxnOp) -> Result<(), RequestError> {
    let value = match &op {
        TxnOp::Insert { value, .. } | TxnOp::Append { value, .. } => Some(&value[..]),
        TxnOp::Check { .. } => None,
        TxnOp::Read { .. } => {
            return Err(RequestError::new(ErrorCode::InvalidArgument, "reads go to /read"));
        }
    };
    node.check_record(op.key(), value)?;
    let (deadline, _busy) = node.sessions().take(txn)?;
    let key = op.key().to_vec();
    let exclusive = value.is_some();
    let shard = node.shard_of(&key);
    let step = Step::Lock {
        txn,
        key: key.clone(),
        exclusive,
        read: false,
        deadline_ms: left_ms(deadline),
    };
    match route(node, shard, step, deadline).await {
        Ok(StepReply::Locked { .. }) => {
            let mut refused = None;
            node.sessions().update(txn, |s| {
                s.shards.insert(shard);
                if exclusive && writes(&s.ops, &key) {
                    refused = Some(RequestError::new(
                        ErrorCode::InvalidArgument,
                        "this transaction already writes that key; a transaction writes a key once",
                    ));
                } else {
                    s.ops.push(op);
                }
            });
            refused.map_or(Ok(()), Err)
        }
        Ok(_) => {
            Err(fail(node, txn, shard, RequestError::new(ErrorCode::Internal, "no lock")).await)
        }
        Err(e) => Err(fail(node, txn, shard, e).await),
    }
}

fn left_ms(deadline: Instant) -> u64 {
    deadline.saturating_duration_since(Instant::now()).as_millis() as u64
}

/// A lock request failed: the transaction ends (aborted, its locks released) unless the
/// failure was bad input, and the error goes back.
async fn fail(node: &Arc<Node>, txn: TxnId, shard: ShardId, e: RequestError) -> RequestError {
    if e.code == ErrorCode::InvalidArgument {
        return e;
    }
    if let Some(mut s) = node.sessions().remove(txn) {
        s.shards.insert(shard);
        release(node, txn, &s.shards).await;
    }
    RequestError::new(e.code, format!("{}; transaction {txn} was aborted", e.message))
}

async fn release(node: &Arc<Node>, txn: TxnId, shards: &BTreeSet<ShardId>) {
    let deadline = Instant::now() + Duration::from_secs(2);
    for &shard in shards {
        if let Err(e) = route(node, shard, Step::Release { txn }, deadline).await {
            // The lease frees them anyway.
            tracing::warn!(txn = %txn, shard = shard.0, error = %e, "releasing locks failed");
        }
    }
}

/// Commits transaction `txn`: its writes and checks, with every version it read as a check.
///
/// # Errors
/// `not_found` for an unknown or ended transaction; otherwise as a one-shot transaction.
pub async fn commit(node: &Arc<Node>, txn: TxnId) -> Result<TxnOutput, RequestError> {
    let (_, _busy) = node.sessions().take(txn)?;
    let Some(s) = node.sessions().remove(txn) else { return Err(unknown(txn)) };
    let mut ops: Vec<TxnOp> = s
        .reads
        .iter()
        .map(|(key, version)| TxnOp::Check { key: key.clone(), version: *version })
        .collect();
    ops.extend(s.ops);
    if ops.is_empty() {
        // Nothing read or written: nothing to commit.
        return Ok(TxnOutput { txn_id: txn, reads: Vec::new(), writes: Vec::new(), receipt: None });
    }
    let result = coordinator::execute_as(node, txn, &ops).await;
    // The steps released their locks where they ran; shards only locked (a check the commit
    // did not need) are released here.
    release(node, txn, &s.shards).await;
    result
}

/// Aborts transaction `txn` and releases its locks.
///
/// # Errors
/// `not_found` for an unknown or ended transaction.
pub async fn abort(node: &Arc<Node>, txn: TxnId) -> Result<(), RequestError> {
    let (_, _busy) = node.sessions().take(txn)?;
    let s = node.sessions().remove(txn).ok_or_else(|| unknown(txn))?;
    release(node, txn, &s.shards).await;
    Ok(())
}

/// Aborts the sessions past their deadline (the recovery sweeper calls this).
pub async fn expire(node: &Arc<Node>) {
    for (txn, s) in node.sessions().expired() {
        tracing::info!(txn = %txn, "an interactive transaction timed out and was aborted");
        release(node, txn, &s.shards).await;
    }
}

/// The lock mode of an interactive step.
pub(crate) fn mode(exclusive: bool) -> Mode {
    if exclusive { Mode::Exclusive } else { Mode::Shared }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_that_goes_away_frees_its_session() {
        let sessions = Sessions::new();
        let txn = TxnId([7; 16]);
        let session = Session {
            deadline: Instant::now() + Duration::from_secs(60),
            reads: Vec::new(),
            ops: Vec::new(),
            shards: BTreeSet::new(),
            busy: false,
        };
        sessions.lock().insert(txn, session);
        let (_, busy) = sessions.take(txn).expect("free");
        let again = sessions.take(txn).map(|_| ());
        assert_eq!(again.map_err(|e| e.code), Err(ErrorCode::InvalidArgument), "one at a time");
        // The request's future is dropped (the caller went away): the guard frees the session.
        drop(busy);
        assert!(sessions.take(txn).is_ok());
        assert!(sessions.take(TxnId([8; 16])).is_err_and(|e| e.code == ErrorCode::NotFound));
    }
}
