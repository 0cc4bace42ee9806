//! The coordinator of a transaction: the node that received it. It splits the transaction by
//! shard ([`super::plan`]), runs a single-shard one in one round, and drives two-phase commit
//! for the rest with [`blockdb_twopc::Coordinator`], carrying out the commands it returns.
//!
//! The coordinator keeps nothing durable of its own: the transaction record is in its shard's
//! Raft log. If this node dies mid-way, the record and the prepared participants are found by
//! the recovery sweepers of the shards' leaders ([`super::recovery`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use blockdb_twopc::{Command, Coordinator, Decision, Message, RecordEntry, Role, TxnRecord, Vote};
use blockdb_verifier::{ProofBundle, Receipt, ShardId, TxnId};
use tokio::task::JoinSet;

use crate::error::{ErrorCode, RequestError};
use crate::node::{Node, TxnCrashPoint};
use crate::txn::leader::{Read, Step, StepReply, route};
use crate::txn::{
    Part, Plan, ReadResult, TxnCommand, TxnOp, TxnOutput, WriteResult, new_txn_id, plan,
};

/// How long a coordinator waits, at least, for the participants of a commit to apply it.
const FINISH_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the transaction `ops` with this node as its coordinator.
///
/// # Errors
/// Bad input as [`super::plan`]; `aborted` (a failed check or conflict), `locked`, `deadlock`
/// when it did not commit; `timeout` when its outcome is unknown; `unavailable`.
pub async fn execute(node: &Arc<Node>, ops: &[TxnOp]) -> Result<TxnOutput, RequestError> {
    execute_as(node, new_txn_id(), ops).await
}

/// Runs the transaction `ops` under the id `txn` (an interactive transaction's commit, whose
/// locks were taken under that id).
///
/// # Errors
/// As [`execute`].
pub async fn execute_as(
    node: &Arc<Node>,
    txn: TxnId,
    ops: &[TxnOp],
) -> Result<TxnOutput, RequestError> {
    let plan = plan(node, ops)?;
    let deadline = Instant::now() + node.txn_timeout();
    if plan.parts.len() == 1 {
        return single(node, txn, plan, deadline).await;
    }
    if plan.parts.values().all(|p| p.writes.is_empty()) {
        return read_only(node, txn, plan, deadline).await;
    }
    two_phase(node, txn, plan, deadline).await
}

/// Exits the process at `point` if the node was told to (`--txn-crash-at`, crash tests only).
fn crash_point(node: &Node, txn: TxnId, point: TxnCrashPoint) {
    if node.config().txn_crash_at == Some(point) {
        eprintln!("blockdb: --txn-crash-at {point:?}: exiting while coordinating {txn}");
        std::process::abort();
    }
}

fn internal(what: &str) -> RequestError {
    RequestError::new(ErrorCode::Internal, format!("unexpected answer to {what}"))
}

fn parse_bundle(json: &str) -> Result<ProofBundle, RequestError> {
    ProofBundle::from_json(json.as_bytes())
        .map_err(|e| RequestError::new(ErrorCode::Internal, format!("a bad proof bundle: {e}")))
}

/// The transaction's output from the per-shard reads and writes.
fn output(
    txn: TxnId,
    plan: &Plan,
    reads: &BTreeMap<ShardId, Vec<Read>>,
    writes: &BTreeMap<ShardId, Vec<(u64, u64)>>,
    receipt: Option<Receipt>,
) -> TxnOutput {
    let reads = plan
        .read_slots
        .iter()
        .map(|(shard, i)| {
            let key = plan.parts[shard].reads[*i].clone();
            let (version, value) =
                reads.get(shard).and_then(|r| r.get(*i)).cloned().unwrap_or((0, None));
            ReadResult { key, version, value }
        })
        .collect();
    let writes = plan
        .write_slots
        .iter()
        .map(|(shard, i)| {
            let key = plan.parts[shard].writes[*i].key.clone();
            let (version, log_index) =
                writes.get(shard).and_then(|w| w.get(*i)).copied().unwrap_or((0, 0));
            WriteResult { key, shard: *shard, version, log_index }
        })
        .collect();
    TxnOutput { txn_id: txn, reads, writes, receipt }
}

async fn single(
    node: &Arc<Node>,
    txn: TxnId,
    plan: Plan,
    deadline: Instant,
) -> Result<TxnOutput, RequestError> {
    let (&shard, part) = plan.parts.iter().next().ok_or_else(|| internal("an empty plan"))?;
    let step = Step::Apply { txn, part: part.clone() };
    let StepReply::Applied { reads, writes, bundles } = route(node, shard, step, deadline).await?
    else {
        return Err(internal("apply"));
    };
    let receipt = if writes.is_empty() {
        None
    } else {
        let mut bundles = bundles.iter().map(|b| parse_bundle(b)).collect::<Result<Vec<_>, _>>()?;
        let decision = bundles.pop().ok_or_else(|| internal("apply: no decision record"))?;
        Some(Receipt { txn_id: txn, coordinator: shard, decision, writes: bundles })
    };
    Ok(output(
        txn,
        &plan,
        &BTreeMap::from([(shard, reads)]),
        &BTreeMap::from([(shard, writes)]),
        receipt,
    ))
}

/// Prepares every part (each participant reads and holds its shared locks in its Raft log),
/// then releases them: a transaction that writes nothing needs no record, since there is
/// nothing to make atomic. Once every prepare is applied all its reads hold at once.
async fn read_only(
    node: &Arc<Node>,
    txn: TxnId,
    plan: Plan,
    deadline: Instant,
) -> Result<TxnOutput, RequestError> {
    // One shard at a time, in shard order, as in two-phase commit (no deadlocks between
    // transactions that lock in this order).
    let mut reads = BTreeMap::new();
    let mut refusal = None;
    for (&shard, part) in &plan.parts {
        let (_, vote) =
            prepare(Arc::clone(node), txn, plan.coordinator, shard, part.clone(), deadline).await;
        match vote {
            Ok(r) => {
                reads.insert(shard, r);
            }
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    // Release every participant, prepared or not (an abort is what a release is).
    finish_all(node, txn, &plan, Decision::Abort, false).await;
    match refusal {
        Some(e) => Err(e),
        None => Ok(output(txn, &plan, &reads, &BTreeMap::new(), None)),
    }
}

/// Prepares `part` at `shard`'s leader: its reads if it voted yes, else why not.
async fn prepare(
    node: Arc<Node>,
    txn: TxnId,
    coordinator: ShardId,
    shard: ShardId,
    part: Part,
    deadline: Instant,
) -> (ShardId, Result<Vec<Read>, RequestError>) {
    let step = Step::Prepare { txn, coordinator, part };
    let vote = match route(&node, shard, step, deadline).await {
        Ok(StepReply::Vote { yes: true, reads, .. }) => Ok(reads),
        Ok(StepReply::Vote { yes: false, reason, code, .. }) => Err(RequestError::new(
            code.unwrap_or(ErrorCode::Aborted),
            reason.unwrap_or_else(|| format!("shard {} voted no", shard.0)),
        )),
        Ok(_) => Err(internal("prepare")),
        Err(e) => Err(e),
    };
    (shard, vote)
}

/// Sends `decision` to every participant; returns per shard its writes and their bundles.
async fn finish_all(
    node: &Arc<Node>,
    txn: TxnId,
    plan: &Plan,
    decision: Decision,
    proofs: bool,
) -> BTreeMap<ShardId, Result<(Vec<(u64, u64)>, Vec<String>), RequestError>> {
    let mut finishing = JoinSet::new();
    // The decision is durable: a commit's participants are waited for longer (a leader change
    // takes a second or so), so that the answer can say where every record went.
    let patience = match decision {
        Decision::Commit => node.txn_timeout().max(FINISH_PATIENCE),
        Decision::Abort => node.txn_timeout(),
    };
    let deadline = Instant::now() + patience;
    for (&shard, part) in &plan.parts {
        let keys =
            if proofs { part.writes.iter().map(|w| w.key.clone()).collect() } else { Vec::new() };
        let node = Arc::clone(node);
        finishing.spawn(async move {
            let step = Step::Finish { txn, decision, keys };
            let reply = match route(&node, shard, step, deadline).await {
                Ok(StepReply::Finished { writes, bundles, .. }) => Ok((writes, bundles)),
                Ok(_) => Err(internal("finish")),
                Err(e) => Err(e),
            };
            (shard, reply)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = finishing.join_next().await {
        if let Ok((shard, reply)) = joined {
            if let Err(e) = &reply {
                tracing::warn!(
                    txn = %txn,
                    shard = shard.0,
                    error = %e,
                    "a participant did not apply the decision yet; its recovery will"
                );
            }
            out.insert(shard, reply);
        }
    }
    out
}

async fn two_phase(
    node: &Arc<Node>,
    txn: TxnId,
    plan: Plan,
    deadline: Instant,
) -> Result<TxnOutput, RequestError> {
    let participants: Vec<ShardId> = plan.parts.keys().copied().collect();
    let write_sets = plan.parts.iter().map(|(s, p)| (*s, p.writes.clone())).collect();
    let counts: Vec<(ShardId, u32)> =
        plan.parts.iter().map(|(s, p)| (*s, p.writes.len() as u32)).collect();
    let (mut coordinator, mut commands) = Coordinator::begin(plan.coordinator, write_sets);
    let mut prepares = JoinSet::new();
    // Prepares go out one shard at a time, in shard order (the protocol lets messages be
    // delayed): with keys locked in order within a shard, one-shot transactions then take
    // their locks in one global order and cannot deadlock each other.
    let mut to_prepare: std::collections::VecDeque<ShardId> = Default::default();
    let mut reads: BTreeMap<ShardId, Vec<Read>> = BTreeMap::new();
    let mut refusal: Option<RequestError> = None;
    let mut decided: Option<(Decision, Option<String>)> = None;
    loop {
        for command in std::mem::take(&mut commands) {
            match command {
                Command::ProposeRecord(entry) => {
                    let (command, deciding) = match entry {
                        RecordEntry::Begin { participants } => {
                            (TxnCommand::Begin { txn, participants }, None)
                        }
                        RecordEntry::Decide { decision } => (
                            TxnCommand::Decide { txn, decision, writes: counts.clone() },
                            Some(decision),
                        ),
                    };
                    let reply = route(
                        node,
                        plan.coordinator,
                        Step::Record { command },
                        deadline.max(Instant::now() + node.txn_timeout() / 2),
                    )
                    .await;
                    let (decision, bundle) = match reply {
                        Ok(StepReply::Record { decision, bundle }) => (decision, bundle),
                        Ok(_) => return Err(internal("record")),
                        Err(e) => {
                            prepares.abort_all();
                            return Err(record_failed(txn, deciding, e));
                        }
                    };
                    let record = match decision {
                        None => {
                            crash_point(node, txn, TxnCrashPoint::AfterBegin);
                            TxnRecord::Begun { participants: participants.clone() }
                        }
                        Some(d) => {
                            if deciding == Some(Decision::Commit) {
                                crash_point(node, txn, TxnCrashPoint::AfterDecide);
                            }
                            decided = Some((d, bundle));
                            TxnRecord::Decided { participants: participants.clone(), decision: d }
                        }
                    };
                    commands.extend(coordinator.on_record_applied(&record));
                }
                Command::Send {
                    to: Role::Participant(shard),
                    message: Message::Prepare { .. },
                } => {
                    to_prepare.push_back(shard);
                }
                Command::Send { message: Message::Decision { .. }, .. } => {
                    // The decision is durable: every participant is told below, at once.
                }
                other => {
                    tracing::error!(txn = %txn, command = ?other, "a coordinator command with no meaning here");
                }
            }
        }
        if !commands.is_empty() {
            continue;
        }
        if decided.is_some() {
            break;
        }
        if prepares.is_empty()
            && let Some(shard) = to_prepare.pop_front()
        {
            let part = plan.parts.get(&shard).cloned().unwrap_or_default();
            let node = Arc::clone(node);
            prepares.spawn(prepare(node, txn, plan.coordinator, shard, part, deadline));
        }
        if prepares.is_empty() {
            // No prepares in flight and no decision: the timeout decides.
            commands = coordinator.on_timeout();
            if commands.is_empty() {
                return Err(internal("two-phase commit: nothing left to do"));
            }
            continue;
        }
        match tokio::time::timeout_at(deadline.into(), prepares.join_next()).await {
            Ok(Some(Ok((shard, vote)))) => {
                let vote = match vote {
                    Ok(r) => {
                        crash_point(node, txn, TxnCrashPoint::AfterFirstPrepare);
                        reads.insert(shard, r);
                        Vote::Yes
                    }
                    Err(e) => {
                        refusal.get_or_insert(e);
                        Vote::No
                    }
                };
                commands = coordinator.on_vote(shard, vote);
            }
            Ok(Some(Err(e))) => return Err(RequestError::new(ErrorCode::Internal, e.to_string())),
            Ok(None) => {}
            Err(_) => {
                refusal.get_or_insert(RequestError::new(
                    ErrorCode::Timeout,
                    format!("the participants did not all vote within {:?}", node.txn_timeout()),
                ));
                prepares.abort_all();
                commands = coordinator.on_timeout();
            }
        }
    }
    prepares.abort_all();
    let Some((decision, decision_bundle)) = decided else { return Err(internal("decide")) };
    let finished = finish_all(node, txn, &plan, decision, decision == Decision::Commit).await;
    if decision == Decision::Abort {
        return Err(refusal.unwrap_or_else(|| {
            RequestError::new(
                ErrorCode::Aborted,
                format!("transaction {txn} was aborted by recovery before it could commit"),
            )
        }));
    }
    let mut writes = BTreeMap::new();
    let mut bundles = Vec::new();
    let mut complete = true;
    for (shard, result) in finished {
        let wrote = plan.parts.get(&shard).map_or(0, |p| p.writes.len());
        match result {
            Ok((w, b)) => {
                // The receipt must hold every record the decision record counts.
                complete &= b.len() == wrote && w.len() == wrote;
                writes.insert(shard, w);
                bundles.extend(b);
            }
            Err(_) => complete = false,
        }
    }
    let receipt = match (decision_bundle, complete) {
        (Some(d), true) => {
            let writes = bundles.iter().map(|b| parse_bundle(b)).collect::<Result<Vec<_>, _>>()?;
            Some(Receipt {
                txn_id: txn,
                coordinator: plan.coordinator,
                decision: parse_bundle(&d)?,
                writes,
            })
        }
        _ => None,
    };
    Ok(output(txn, &plan, &reads, &writes, receipt))
}

/// The error for a record step that failed: after a `Begin` or an abort nothing can have
/// committed; after a commit was proposed the outcome is unknown.
fn record_failed(txn: TxnId, deciding: Option<Decision>, e: RequestError) -> RequestError {
    match deciding {
        Some(Decision::Commit) => RequestError::new(
            ErrorCode::Timeout,
            format!("transaction {txn}: recording the commit failed ({e}); its outcome is unknown"),
        ),
        _ => RequestError::new(
            e.code,
            format!(
                "transaction {txn} did not commit: the coordinator's shard failed: {}",
                e.message
            ),
        ),
    }
}
