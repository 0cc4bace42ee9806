//! The recovery sweeper: every node looks, a few times a second, at the open transactions of the
//! shards it leads, and finishes those left behind by a coordinator that died or lost touch.
//!
//! - A participant prepared for longer than twice the transaction timeout asks the coordinator's
//!   shard for the decision ([`blockdb_twopc::Participant::on_timeout`] → `Resolve`), which
//!   records an abort if nothing was decided, and applies what it gets.
//! - A record still undecided after twice the timeout is aborted (the restarted coordinator's
//!   [`blockdb_twopc::Coordinator::on_timeout`]), and its decision sent to its participants.
//!
//! The coordinator itself gives up after one timeout, so the sweeper only acts on transactions
//! nobody is driving any more. Steps are safe to repeat, and the first decision recorded wins, so
//! a sweeper racing a live coordinator cannot break atomicity, only abort a slow transaction.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blockdb_twopc::{
    Command, Coordinator, Decision, Message, Participant, ParticipantState, Role, TxnRecord,
};
use blockdb_verifier::{ShardId, TxnId};
use tokio::sync::watch;

use crate::node::Node;
use crate::node::cluster::leader_of;
use crate::txn::TxnCommand;
use crate::txn::leader::{Step, StepReply, route};

/// How often the sweeper looks.
const EVERY: Duration = Duration::from_millis(250);

/// Runs the sweeper of `node` until `stop` turns true.
pub async fn run(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let busy: Arc<Mutex<BTreeSet<TxnId>>> = Arc::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        sweep(&node, &busy);
        crate::txn::session::expire(&node).await;
    }
}

/// One look at every shard this node leads; work found is started in the background.
pub fn sweep(node: &Arc<Node>, busy: &Arc<Mutex<BTreeSet<TxnId>>>) {
    let limit = node.txn_timeout().as_millis() as u64 * 2;
    let now = node.now_ms();
    for s in 0..node.shard_count() {
        let shard = ShardId(s);
        if leader_of(node, shard).is_none_or(|(leader, _)| leader != node.id()) {
            continue;
        }
        let Ok(views) = node.views(shard) else { continue };
        let view = Arc::clone(&views.borrow());
        for (txn, p) in view.txns().prepared() {
            if now.saturating_sub(p.time_ms) > limit && claim(busy, *txn) {
                let (node, busy, txn, coordinator) =
                    (Arc::clone(node), Arc::clone(busy), *txn, p.coordinator);
                tokio::spawn(async move {
                    resolve_participant(&node, shard, coordinator, txn).await;
                    release(&busy, txn);
                });
            }
        }
        for (txn, (participants, time)) in view.txns().undecided() {
            if now.saturating_sub(*time) > limit && claim(busy, *txn) {
                let (node, busy, txn, participants) =
                    (Arc::clone(node), Arc::clone(busy), *txn, participants.clone());
                tokio::spawn(async move {
                    abort_record(&node, shard, txn, participants).await;
                    release(&busy, txn);
                });
            }
        }
    }
}

fn claim(busy: &Mutex<BTreeSet<TxnId>>, txn: TxnId) -> bool {
    busy.lock().unwrap_or_else(|p| p.into_inner()).insert(txn)
}

fn release(busy: &Mutex<BTreeSet<TxnId>>, txn: TxnId) {
    busy.lock().unwrap_or_else(|p| p.into_inner()).remove(&txn);
}

/// A participant prepared for too long: `Resolve` at the coordinator's shard, then `Finish`.
async fn resolve_participant(node: &Arc<Node>, shard: ShardId, coordinator: ShardId, txn: TxnId) {
    let deadline = Instant::now() + node.txn_timeout();
    let participant = Participant { shard, coordinator };
    // The protocol's reaction to the timeout: one Resolve to the coordinator's shard.
    let asks = participant.on_timeout(&ParticipantState::Prepared { writes: Vec::new() });
    let mut decision = None;
    for command in asks {
        if let Command::Send { to: Role::Coordinator(c), message: Message::Resolve { .. } } =
            command
        {
            match route(node, c, Step::Resolve { txn }, deadline).await {
                Ok(StepReply::Record { decision: Some(d), .. }) => decision = Some(d),
                Ok(other) => tracing::warn!(txn = %txn, reply = ?other, "resolve gave no decision"),
                Err(e) => {
                    tracing::warn!(txn = %txn, error = %e, "resolve failed; trying again later")
                }
            }
        }
    }
    let Some(decision) = decision else { return };
    tracing::info!(txn = %txn, shard = shard.0, ?decision, "recovery resolved a prepared transaction");
    finish(node, shard, txn, decision, deadline).await;
}

/// A record undecided for too long: the restarted coordinator's timeout aborts it (unless a
/// decision got there first), and every participant is told the decision.
async fn abort_record(node: &Arc<Node>, shard: ShardId, txn: TxnId, participants: Vec<ShardId>) {
    let deadline = Instant::now() + node.txn_timeout();
    let record = TxnRecord::Begun { participants: participants.clone() };
    let (mut coordinator, _) = Coordinator::recover(shard, Some(&record));
    let mut decision = None;
    for command in coordinator.on_timeout() {
        if let Command::ProposeRecord(blockdb_twopc::RecordEntry::Decide { decision: d }) = command
        {
            let step = Step::Record {
                command: TxnCommand::Decide { txn, decision: d, writes: Vec::new() },
            };
            match route(node, shard, step, deadline).await {
                Ok(StepReply::Record { decision: Some(d), .. }) => decision = Some(d),
                Ok(other) => tracing::warn!(txn = %txn, reply = ?other, "decide gave no decision"),
                Err(e) => {
                    tracing::warn!(txn = %txn, error = %e, "decide failed; trying again later")
                }
            }
        }
    }
    let Some(decision) = decision else { return };
    tracing::info!(txn = %txn, shard = shard.0, ?decision, "recovery decided an abandoned transaction");
    let record = TxnRecord::Decided { participants, decision };
    for command in coordinator.on_record_applied(&record) {
        if let Command::Send { to: Role::Participant(p), message: Message::Decision { .. } } =
            command
        {
            finish(node, p, txn, decision, deadline).await;
        }
    }
}

async fn finish(
    node: &Arc<Node>,
    shard: ShardId,
    txn: TxnId,
    decision: Decision,
    deadline: Instant,
) {
    let step = Step::Finish { txn, decision, keys: Vec::new() };
    if let Err(e) = route(node, shard, step, deadline).await {
        tracing::warn!(txn = %txn, shard = shard.0, error = %e, "finish failed; trying again later");
    }
}
