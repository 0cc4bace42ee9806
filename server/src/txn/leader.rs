//! The steps of a transaction that run on a shard's leader ([`Step`]), whoever coordinates it:
//! locks, reads, proposals, and the proofs the coordinator needs for the receipt. The
//! coordinator calls them here when this node leads the shard, else over the peer network
//! ([`route`]).
//!
//! Every step is safe to repeat: each names its transaction, and the shard's state machine
//! answers a repeated `Prepare`, `Finish`, `Begin` or `Decide` with the state it already has.
//! A repeated `Apply` finds the transaction decided and says so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use blockdb_proto::peer::v1 as pb;
use blockdb_twopc::Decision;
use blockdb_verifier::{ShardId, TxnId};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, RequestError};
use crate::ledger::txn::{Check, Refusal, TxnCommand, TxnOutcome};
use crate::ledger::{Command, Outcome, ShardView};
use crate::node::cluster::{Attempt, at_leader, leader_of};
use crate::node::{Consistency, Node};
use crate::raft::network::PeerError;
use crate::txn::Part;
use crate::txn::locks::{LockError, Mode, Request};

/// A step of a transaction at a shard's leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// A single-shard transaction, in one round.
    Apply {
        /// The transaction.
        txn: TxnId,
        /// Its operations.
        part: Part,
    },
    /// Lock, read and replicate `Prepare`; answer with the vote and the values read.
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// The coordinator's shard.
        coordinator: ShardId,
        /// This shard's part.
        part: Part,
    },
    /// Apply the decision. `keys` are the prepared writes' keys in order (for their proofs; may
    /// be empty when no proofs are wanted).
    Finish {
        /// The transaction.
        txn: TxnId,
        /// The decision.
        decision: Decision,
        /// The written keys, in the prepared order.
        keys: Vec<Vec<u8>>,
    },
    /// Propose `Begin` or `Decide` in the coordinator's shard.
    Record {
        /// The command.
        command: TxnCommand,
    },
    /// The decision of a transaction, deciding abort if there is none yet (recovery).
    Resolve {
        /// The transaction.
        txn: TxnId,
    },
    /// An interactive transaction's lock on `key` (exclusive for a write), held until the
    /// transaction ends; with `read`, the key's latest value too.
    Lock {
        /// The transaction.
        txn: TxnId,
        /// The key.
        key: Vec<u8>,
        /// Exclusive (a write) or shared.
        exclusive: bool,
        /// Read the value under the lock.
        read: bool,
        /// How long the transaction has left, ms (the wait's bound and the lock's lease).
        deadline_ms: u64,
    },
    /// Releases an interactive transaction's locks in this shard.
    Release {
        /// The transaction.
        txn: TxnId,
    },
    /// For the deadlock detector (the leader of shard 0): `waiter` waits in `shard` for
    /// `blockers`.
    Detect {
        /// The waiting transaction.
        waiter: TxnId,
        /// Where it waits.
        shard: ShardId,
        /// The transactions it waits for.
        blockers: Vec<TxnId>,
    },
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Apply { .. } => "apply",
            Step::Prepare { .. } => "prepare",
            Step::Finish { .. } => "finish",
            Step::Record { .. } => "record",
            Step::Resolve { .. } => "resolve",
            Step::Detect { .. } => "detect",
            Step::Lock { .. } => "lock",
            Step::Release { .. } => "release",
        }
    }
}

/// A value read: its version (0: none) and bytes.
pub type Read = (u64, Option<Vec<u8>>);

/// A step's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepReply {
    /// `Apply` committed.
    Applied {
        /// The values read, in the part's order.
        reads: Vec<Read>,
        /// (version, leaf index) of each write.
        writes: Vec<(u64, u64)>,
        /// The proof bundles (JSON) of the writes, then of the decision record.
        bundles: Vec<String>,
    },
    /// `Prepare`'s vote.
    Vote {
        /// Yes: prepared.
        yes: bool,
        /// The values read (for a yes).
        reads: Vec<Read>,
        /// Why not (for a no).
        reason: Option<String>,
        /// The error code a no comes from (`aborted`, `locked`, `deadlock`, `timeout`).
        code: Option<ErrorCode>,
    },
    /// `Finish` applied.
    Finished {
        /// The participant's decision.
        decision: Decision,
        /// (version, leaf index) of each write applied now.
        writes: Vec<(u64, u64)>,
        /// The proof bundles (JSON) of the writes, when their keys were given.
        bundles: Vec<String>,
    },
    /// `Record` or `Resolve`: the record's decision after it, and the decision record's proof
    /// bundle (JSON) for a commit.
    Record {
        /// The decision (`None`: undecided).
        decision: Option<Decision>,
        /// The decision record's bundle.
        bundle: Option<String>,
    },
    /// `Lock`: granted; the value read, if asked.
    Locked {
        /// The version and value.
        read: Option<Read>,
    },
    /// `Release`: done.
    Released,
    /// `Detect`: the cycle the waiter's edges close, if any (the waiter is the victim).
    Detected {
        /// The cycle.
        cycle: Option<Vec<TxnId>>,
    },
}

/// Runs `step` for `shard` on this node, which must lead it.
///
/// # Errors
/// `not_leader` when this node does not lead the shard (nothing was done); `aborted`, `locked`,
/// `deadlock` for an `Apply` that did not commit; `unavailable`, `timeout`.
pub async fn run(
    node: &Node,
    shard: ShardId,
    step: Step,
    deadline: Instant,
) -> Result<StepReply, RequestError> {
    let wanted = if matches!(step, Step::Detect { .. }) { DETECTOR_SHARD } else { shard };
    if leader_of(node, wanted).is_none_or(|(l, _)| l != node.id()) {
        // Nothing is done (no lock taken, nothing proposed): the caller tries the leader.
        return Err(RequestError::new(
            ErrorCode::NotLeader,
            format!("this node does not lead shard {}", wanted.0),
        ));
    }
    match step {
        Step::Apply { txn, part } => apply(node, shard, txn, part, deadline).await,
        Step::Prepare { txn, coordinator, part } => {
            prepare(node, shard, txn, coordinator, part, deadline).await
        }
        Step::Finish { txn, decision, keys } => {
            let out = propose(node, shard, TxnCommand::Finish { txn, decision }, deadline).await?;
            match out {
                TxnOutcome::Finished { decision, writes } => {
                    let mut bundles = Vec::new();
                    let mut writes: Vec<(u64, u64)> =
                        writes.into_iter().map(|(v, i)| (v, i.0)).collect();
                    if decision == Decision::Commit && !keys.is_empty() {
                        let view = node.view(shard, Consistency::Stale).await?;
                        if writes.is_empty() {
                            // A repeat (the first answer was lost, or recovery finished it
                            // first): find the records the transaction wrote.
                            for key in &keys {
                                let (version, index) = written_by(node, &view, key, txn)?;
                                writes.push((version, index));
                            }
                        }
                        if keys.len() == writes.len() {
                            for (key, (version, _)) in keys.iter().zip(&writes) {
                                bundles.push(bundle(node, &view, key, *version)?);
                            }
                        }
                    }
                    Ok(StepReply::Finished { decision, writes, bundles })
                }
                other => Err(unexpected(&other)),
            }
        }
        Step::Record { command } => record(node, shard, command, deadline).await,
        Step::Lock { txn, key, exclusive, read, deadline_ms } => {
            let left = Duration::from_millis(deadline_ms);
            let deadline = deadline.min(Instant::now() + left);
            let mode = crate::txn::session::mode(exclusive);
            lock_key(node, shard, txn, &key, mode, deadline, left + LEASE_MARGIN).await?;
            let read = if read {
                let view = node.view(shard, Consistency::Linearizable).await?;
                let version = view.latest_version(&key).map_err(internal)?;
                Some(read_at(node, &view, &key, version)?)
            } else {
                None
            };
            Ok(StepReply::Locked { read })
        }
        Step::Release { txn } => {
            node.locks().release_in(txn, shard);
            Ok(StepReply::Released)
        }
        Step::Detect { waiter, shard, blockers } => {
            Ok(StepReply::Detected { cycle: node.detector().report(waiter, shard, blockers) })
        }
        Step::Resolve { txn } => {
            // The first decision wins: if the record is decided this changes nothing and
            // answers with its decision; if not (or if there is no record), it aborts.
            let command = TxnCommand::Decide { txn, decision: Decision::Abort, writes: Vec::new() };
            record(node, shard, command, deadline).await
        }
    }
}

async fn propose(
    node: &Node,
    shard: ShardId,
    command: TxnCommand,
    deadline: Instant,
) -> Result<TxnOutcome, RequestError> {
    let applied = node.propose_local(shard, Command::Txn(command), deadline).await?;
    match applied.outcome {
        Outcome::Txn(t) => Ok(t),
        other => Err(RequestError::new(
            ErrorCode::Internal,
            format!("a transaction step had a single write's outcome: {other:?}"),
        )),
    }
}

fn unexpected(outcome: &TxnOutcome) -> RequestError {
    match outcome {
        TxnOutcome::Contradiction(reason) => RequestError::new(
            ErrorCode::Internal,
            format!("the participant refused a decision its state cannot take: {reason}"),
        ),
        other => RequestError::new(ErrorCode::Internal, format!("unexpected outcome {other:?}")),
    }
}

fn refused(r: &Refusal) -> RequestError {
    match r {
        Refusal::Conflict { key, expected, current } => {
            let mut e = RequestError::new(
                ErrorCode::Aborted,
                format!(
                    "the transaction needs key {} at version {expected} but it is at {current}",
                    show(key)
                ),
            );
            e.current_version = Some(*current);
            e
        }
        Refusal::Locked { key, holder } => RequestError::new(
            ErrorCode::Locked,
            format!("key {} is locked by prepared transaction {holder}; retry", show(key)),
        ),
    }
}

fn lock_error(e: LockError) -> RequestError {
    match e {
        LockError::Deadlock { .. } => RequestError::new(ErrorCode::Deadlock, e.to_string()),
        LockError::Timeout { .. } => RequestError::new(ErrorCode::Timeout, e.to_string()),
    }
}

/// A key for messages: UTF-8 if it is, else hex.
fn show(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => format!("0x{}", hex::encode(key)),
    }
}

/// Releases a transaction's in-memory locks in one shard when dropped.
struct Held<'a> {
    node: &'a Node,
    txn: TxnId,
    shard: ShardId,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.node.locks().release_in(self.txn, self.shard);
    }
}

/// Takes the locks of `part` for `txn`, in key order: exclusive for writes, shared for the rest.
async fn lock(
    node: &Node,
    shard: ShardId,
    txn: TxnId,
    part: &Part,
    deadline: Instant,
) -> Result<(), RequestError> {
    let mut keys: Vec<(&[u8], Mode)> = part
        .reads
        .iter()
        .map(|k| (&k[..], Mode::Shared))
        .chain(part.checks.iter().map(|c| (&c.key[..], Mode::Shared)))
        .chain(part.writes.iter().map(|w| (&w.key[..], Mode::Exclusive)))
        .collect();
    // Exclusive sorts after shared for the same key, and wins in the dedup below.
    keys.sort_by(|a, b| a.0.cmp(b.0).then((a.1 == Mode::Exclusive).cmp(&(b.1 == Mode::Exclusive))));
    keys.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1 = if later.1 == Mode::Exclusive { Mode::Exclusive } else { earlier.1 };
            true
        } else {
            false
        }
    });
    let lease = node.txn_timeout() * 2;
    for (key, mode) in keys {
        lock_key(node, shard, txn, key, mode, deadline, lease).await?;
    }
    Ok(())
}

/// How much longer than its transaction's time an interactive transaction's locks are leased.
const LEASE_MARGIN: Duration = Duration::from_secs(1);

/// Takes one lock for `txn`, waiting for in-memory and prepared holders, with deadlock
/// detection.
async fn lock_key(
    node: &Node,
    shard: ShardId,
    txn: TxnId,
    key: &[u8],
    mode: Mode,
    deadline: Instant,
    lease: Duration,
) -> Result<(), RequestError> {
    let views = node.views(shard)?;
    let durable = || {
        let view = views.borrow();
        view.txns().locks(key).and_then(|l| l.conflict(txn, mode == Mode::Exclusive))
    };
    let request = Request { txn, shard, key, mode, deadline, lease };
    let detect = |blockers| detect(node, txn, shard, blockers);
    node.locks().acquire(request, durable, detect).await.map_err(lock_error)
}

/// The shard whose leader keeps the cluster's deadlock detector.
const DETECTOR_SHARD: ShardId = ShardId(0);

/// Reports that `waiter` waits for `blockers` to the deadlock detector, wherever it runs; the
/// cycle it closes, if any. An unreachable detector finds nothing (the wait deadline remains).
async fn detect(
    node: &Node,
    waiter: TxnId,
    shard: ShardId,
    blockers: Vec<TxnId>,
) -> Option<Vec<TxnId>> {
    match leader_of(node, DETECTOR_SHARD) {
        Some((leader, _)) if leader == node.id() => node.detector().report(waiter, shard, blockers),
        Some((_, addr)) => {
            let deadline = Instant::now() + Duration::from_millis(300);
            let step = Step::Detect { waiter, shard, blockers };
            match call(node, DETECTOR_SHARD, &addr, &step, deadline).await {
                Ok(Ok(StepReply::Detected { cycle })) => cycle,
                _ => None,
            }
        }
        None => None,
    }
}

async fn apply(
    node: &Node,
    shard: ShardId,
    txn: TxnId,
    part: Part,
    deadline: Instant,
) -> Result<StepReply, RequestError> {
    let _held = Held { node, txn, shard };
    lock(node, shard, txn, &part, deadline).await?;
    let keys: Vec<Vec<u8>> = part.writes.iter().map(|w| w.key.clone()).collect();
    let reads = part.reads.clone();
    // The deliberate bug of `--unsafe-txn-skip-checks`.
    let checks = if node.config().unsafe_txn_skip_checks { Vec::new() } else { part.checks };
    let command = TxnCommand::Apply { txn, reads: part.reads, checks, writes: part.writes };
    match propose(node, shard, command, deadline).await? {
        TxnOutcome::Committed { reads: versions, writes, decision } => {
            let view = node.view(shard, Consistency::Stale).await?;
            let mut values = Vec::with_capacity(reads.len());
            for (key, version) in reads.iter().zip(versions) {
                values.push(read_at(node, &view, key, version)?);
            }
            let mut bundles = Vec::with_capacity(writes.len() + 1);
            for (key, (version, _)) in keys.iter().zip(&writes) {
                bundles.push(bundle(node, &view, key, *version)?);
            }
            if decision.is_some() {
                let key = blockdb_verifier::txn::decision_key(shard, txn);
                bundles.push(bundle(node, &view, &key, 1)?);
            }
            let writes = writes.into_iter().map(|(v, i)| (v, i.0)).collect();
            Ok(StepReply::Applied { reads: values, writes, bundles })
        }
        TxnOutcome::Refused(r) => Err(refused(&r)),
        TxnOutcome::AlreadyDecided(Decision::Abort) => {
            Err(RequestError::new(ErrorCode::Aborted, format!("transaction {txn} was aborted")))
        }
        TxnOutcome::AlreadyDecided(Decision::Commit) => Err(RequestError::new(
            ErrorCode::Timeout,
            format!(
                "transaction {txn} committed, but its results were lost on the way; read the keys"
            ),
        )),
        other => Err(unexpected(&other)),
    }
}

async fn prepare(
    node: &Node,
    shard: ShardId,
    txn: TxnId,
    coordinator: ShardId,
    part: Part,
    deadline: Instant,
) -> Result<StepReply, RequestError> {
    let no = |e: RequestError| StepReply::Vote {
        yes: false,
        reads: Vec::new(),
        reason: Some(e.message),
        code: Some(e.code),
    };
    let _held = Held { node, txn, shard };
    if let Err(e) = lock(node, shard, txn, &part, deadline).await {
        // Nothing is held in the shard: a no needs no record (the protocol's `on_prepare` of
        // a participant that cannot take the write set).
        return Ok(no(e));
    }
    // Reads are at the leader's latest committed state (a read barrier). A part without reads
    // needs none: its checks are checked when its Prepare entry is applied.
    let consistency =
        if part.reads.is_empty() { Consistency::Stale } else { Consistency::Linearizable };
    let view = node.view(shard, consistency).await?;
    let mut reads = Vec::with_capacity(part.reads.len());
    let mut checks = part.checks.clone();
    for key in &part.reads {
        let version = view.latest_version(key).map_err(internal)?;
        reads.push(read_at(node, &view, key, version)?);
        match checks.iter().find(|c| c.key == *key) {
            Some(c) if c.version != version => {
                let r =
                    Refusal::Conflict { key: key.clone(), expected: c.version, current: version };
                return Ok(no(refused(&r)));
            }
            Some(_) => {}
            None => checks.push(Check { key: key.clone(), version }),
        }
    }
    drop(view);
    if node.config().unsafe_txn_skip_checks {
        // The deliberate bug of `--unsafe-txn-skip-checks`.
        checks.clear();
    }
    let command = TxnCommand::Prepare { txn, coordinator, checks, writes: part.writes };
    match propose(node, shard, command, deadline).await? {
        TxnOutcome::Prepared(true) => {
            Ok(StepReply::Vote { yes: true, reads, reason: None, code: None })
        }
        TxnOutcome::Prepared(false) => Ok(no(RequestError::new(
            ErrorCode::Aborted,
            format!("transaction {txn} was already aborted in shard {}", shard.0),
        ))),
        TxnOutcome::Refused(r) => Ok(no(refused(&r))),
        other => Err(unexpected(&other)),
    }
}

async fn record(
    node: &Node,
    shard: ShardId,
    command: TxnCommand,
    deadline: Instant,
) -> Result<StepReply, RequestError> {
    let txn = command.txn();
    match propose(node, shard, command, deadline).await? {
        TxnOutcome::Record(decision) => {
            let bundle = match decision {
                Some(Decision::Commit) => {
                    let view = node.view(shard, Consistency::Stale).await?;
                    let key = blockdb_verifier::txn::decision_key(shard, txn);
                    // A decision recorded by another path may carry no decision record (an
                    // older format never does); the receipt then has none.
                    Some(bundle(node, &view, &key, 1)?)
                }
                _ => None,
            };
            Ok(StepReply::Record { decision, bundle })
        }
        other => Err(unexpected(&other)),
    }
}

fn internal(e: impl std::fmt::Display) -> RequestError {
    RequestError::new(ErrorCode::Internal, e.to_string())
}

fn read_at(node: &Node, view: &ShardView, key: &[u8], version: u64) -> Result<Read, RequestError> {
    if version == 0 {
        return Ok((0, None));
    }
    let b = view.bundle(node.engine(), key, Some(version), None).map_err(internal)?;
    Ok((version, b.record.value))
}

/// The version and leaf of `key` that transaction `txn` wrote: the newest version whose leaf
/// carries its id (later versions are few: the key was locked until the commit applied).
fn written_by(
    node: &Node,
    view: &ShardView,
    key: &[u8],
    txn: TxnId,
) -> Result<(u64, u64), RequestError> {
    let latest = view.latest_version(key).map_err(internal)?;
    for version in (1..=latest).rev() {
        let b = view.bundle(node.engine(), key, Some(version), None).map_err(internal)?;
        if b.leaf.txn_id == txn {
            return Ok((version, b.leaf.log_index.0));
        }
    }
    Err(RequestError::new(
        ErrorCode::Internal,
        format!("transaction {txn} committed but no version of {} carries it", show(key)),
    ))
}

fn bundle(node: &Node, view: &ShardView, key: &[u8], version: u64) -> Result<String, RequestError> {
    let b = view.bundle(node.engine(), key, Some(version), None).map_err(internal)?;
    b.to_json().map_err(internal)
}

/// Runs `step` at `shard`'s leader, wherever it is, until it has an answer or `deadline`. A
/// step the leader may have received is sent again (at the new leader) only if it is safe to
/// repeat — every step but `Apply`, whose repeat cannot give back its reads.
///
/// # Errors
/// The step's errors; `unavailable` without a leader; `timeout` when an `Apply`'s outcome is
/// unknown.
pub async fn route(
    node: &Arc<Node>,
    shard: ShardId,
    step: Step,
    deadline: Instant,
) -> Result<StepReply, RequestError> {
    let repeatable = !matches!(step, Step::Apply { .. });
    let step = &step;
    let local = move || async move {
        match run(node, shard, step.clone(), deadline).await {
            Err(e) if e.code == ErrorCode::NotLeader => Attempt::Retry(e.message),
            Err(e) if repeatable && e.code == ErrorCode::Timeout => Attempt::Retry(e.message),
            result => Attempt::Done(result),
        }
    };
    let remote = move |leader, addr: String| async move {
        match call(node, shard, &addr, step, deadline).await {
            Ok(Err(e)) if e.code == ErrorCode::NotLeader => Attempt::Retry(e.message),
            Ok(Err(e)) if repeatable && e.code == ErrorCode::Timeout => Attempt::Retry(e.message),
            Ok(result) => Attempt::Done(result),
            Err(e) if e.not_sent() || repeatable => Attempt::Retry(e.to_string()),
            Err(e) => {
                tracing::warn!(shard = shard.0, leader, error = %e, "a transaction step failed");
                Attempt::Done(Err(RequestError::new(
                    ErrorCode::Timeout,
                    format!(
                        "the {} step at the leader of shard {} failed: {e}; the transaction's \
                         outcome is unknown",
                        step.name(),
                        shard.0
                    ),
                )))
            }
        }
    };
    // Boxed: a transaction's steps nest this future deep inside the gRPC handler's, past the
    // compiler's default depth for computing its layout.
    Box::pin(at_leader(node, shard, deadline, local, remote)).await.unwrap_or_else(|last| {
        Err(RequestError::new(
            ErrorCode::Timeout,
            format!(
                "the {} step at shard {} did not finish in time{}",
                step.name(),
                shard.0,
                last.map_or_else(String::new, |l| format!(": {l}"))
            ),
        ))
    })
}

async fn call(
    node: &Node,
    shard: ShardId,
    addr: &str,
    step: &Step,
    deadline: Instant,
) -> Result<Result<StepReply, RequestError>, PeerError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let request = pb::TxnRequest {
        header: Some(node.peers().header(shard)),
        step: serde_json::to_vec(step).expect("a step serializes to JSON"),
        timeout_ms: left.as_millis() as u64,
    };
    let answer = node.peers().call(addr, left, |mut c| async move { c.txn(request).await }).await?;
    Ok(match answer.result {
        Some(pb::txn_response::Result::Reply(bytes)) => serde_json::from_slice(&bytes)
            .map_err(|e| RequestError::new(ErrorCode::Internal, format!("a bad step reply: {e}"))),
        Some(pb::txn_response::Result::Error(e)) => {
            let mut err = RequestError::new(
                ErrorCode::from_name(&e.code).unwrap_or(ErrorCode::Internal),
                e.message,
            );
            err.current_version = e.current_version;
            Err(err)
        }
        None => Err(RequestError::new(ErrorCode::Timeout, "the leader's answer was empty")),
    })
}
