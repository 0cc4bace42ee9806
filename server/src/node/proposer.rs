//! The proposer of a shard: it gathers the writes that arrive while earlier proposals are in
//! flight into one Raft entry, so that many writes share one entry, one apply and one
//! checkpoint.
//!
//! openraft 0.9 writes one entry at a time: it hands an entry to the log, waits for its flush,
//! and only then takes the next. So the proposer closes an entry when the log is ready for it:
//! once the log has no write under way ([`LogProgress::idle`]), it takes every write queued
//! (at most `batch_records_max` commands and about `batch_bytes_max` bytes) into one entry, and
//! waits until openraft has handed that entry to the log before it closes the next. The writes
//! that arrive during a flush thus go out together in the entry after it, instead of queueing as
//! entries of their own behind it. Under light load the log is idle, an entry holds one write and
//! goes out at once, so batching adds no latency. At most [`IN_FLIGHT_MAX`] entries are proposed
//! and not yet applied; both waits on the log are bounded by [`GATE_WAIT_MAX`], so a log that
//! never reports only slows the proposer down.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use blockdb_verifier::{LogIndex, ShardId};

use crate::error::{ErrorCode, RequestError};
use crate::ledger::{Command, Outcome, ShardView};
use crate::raft::log_store::LogProgress;
use crate::raft::{Raft, Request, RootCheck};

/// Entries proposed and not yet applied, at most.
///
/// Measured on 2 cores, one node, 64 and 256 clients: closing entries at the log's pace (above)
/// raised appends from about 10,600 and 14,900/s (four entries in flight, closed as soon as a
/// slot was free, so that they queued at openraft one behind the other) to about 15,000 and
/// 18,000/s.
pub const IN_FLIGHT_MAX: usize = 8;

/// The longest the proposer waits for the log before it proposes anyway.
pub const GATE_WAIT_MAX: std::time::Duration = std::time::Duration::from_millis(10);

/// A committed write.
#[derive(Debug, Clone)]
pub struct WriteResult {
    /// The shard.
    pub shard: ShardId,
    /// The record's version.
    pub version: u64,
    /// The record's leaf position.
    pub log_index: LogIndex,
    /// The tree size after the batch that committed it.
    pub tree_size: u64,
    /// The signed checkpoint of that tree (note text).
    pub checkpoint: String,
}

impl WriteResult {
    /// The result of a single write from its applied outcome.
    ///
    /// # Errors
    /// `already_exists` (`insert`) or `version_mismatch` for a conflict, `locked` when a
    /// prepared transaction holds the key, `internal` for an outcome a single write cannot have.
    pub fn from_applied(applied: Applied, insert: bool) -> Result<WriteResult, RequestError> {
        match applied.outcome {
            Outcome::Committed { version, log_index } => Ok(WriteResult {
                shard: applied.shard,
                version,
                log_index,
                tree_size: applied.tree_size,
                checkpoint: applied.checkpoint,
            }),
            Outcome::Conflict { current } => Err(conflict(insert, current)),
            Outcome::Locked { holder } => Err(RequestError::new(
                ErrorCode::Locked,
                format!("the key is locked by prepared transaction {holder}; retry"),
            )),
            Outcome::Txn(t) => Err(RequestError::new(
                ErrorCode::Internal,
                format!("a single write had a transaction's outcome: {t:?}"),
            )),
        }
    }
}

/// A command applied: its outcome and the checkpoint of the batch that applied it.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The shard.
    pub shard: ShardId,
    /// The command's outcome.
    pub outcome: Outcome,
    /// The tree size after the batch that applied it.
    pub tree_size: u64,
    /// The signed checkpoint of that tree (note text).
    pub checkpoint: String,
}

/// A command waiting for its entry.
#[derive(Debug)]
pub struct Pending {
    /// The command.
    pub command: Command,
    /// Where its result goes.
    pub reply: oneshot::Sender<Result<Applied, RequestError>>,
}

/// Limits of one entry.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Commands per entry, at most.
    pub records_max: usize,
    /// Bytes of keys and values per entry, about (an entry ends once it passes this).
    pub bytes_max: usize,
    /// Added to this node's clock for commit times (a test setting: see `--clock-skew-ms`).
    pub clock_skew_ms: i64,
}

/// Runs the proposer of `shard` until the queue's senders are gone.
/// Every entry carries the root of the latest applied tree ([`RootCheck`]), which each replica
/// compares with its own when it applies the entry.
pub async fn run(
    shard: ShardId,
    raft: Raft,
    views: watch::Receiver<Arc<ShardView>>,
    mut queue: mpsc::Receiver<Pending>,
    limits: BatchLimits,
    mut log: watch::Receiver<LogProgress>,
) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let mut last_time_ms = 0u64;
    while let Some(first) = queue.recv().await {
        // Close the entry only once the log has no write under way, so that the writes that
        // arrive during a flush go out together in the entry after it.
        let _ = tokio::time::timeout(GATE_WAIT_MAX, log.wait_for(|p| p.idle())).await;
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else { break };
        let mut bytes = command_bytes(&first.command);
        let mut batch = vec![first];
        while batch.len() < limits.records_max && bytes < limits.bytes_max {
            match queue.try_recv() {
                Ok(p) => {
                    bytes += command_bytes(&p.command);
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        // Commit times never go backwards within a leader's term, even if its clock does.
        last_time_ms = last_time_ms.max(now_ms().saturating_add_signed(limits.clock_skew_ms));
        let commit_time_ms = last_time_ms;
        let check = {
            let view = views.borrow();
            let c = view.checkpoint();
            RootCheck { tree_size: c.size.0, root: c.root.0 }
        };
        let appended = log.borrow_and_update().appended;
        let (ended, mut ended_rx) = oneshot::channel::<()>();
        let raft = raft.clone();
        tokio::spawn(async move {
            let _permit = permit;
            propose(
                shard,
                &raft,
                Request { commit_time_ms, check: Some(check), commands: Vec::new() },
                batch,
            )
            .await;
            drop(ended);
        });
        // Then wait until openraft has taken the entry into its log (or the proposal ended, as
        // it does at once when this node does not lead), so that the gate above sees its write.
        tokio::select! {
            _ = tokio::time::timeout(GATE_WAIT_MAX, log.wait_for(|p| p.appended > appended)) => {}
            _ = &mut ended_rx => {}
        }
    }
}

async fn propose(shard: ShardId, raft: &Raft, mut request: Request, batch: Vec<Pending>) {
    let (commands, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|p| (p.command, p.reply)).unzip();
    request.commands = commands;
    match raft.client_write(request).await {
        Ok(written) => {
            let response = written.data;
            for (reply, outcome) in replies.into_iter().zip(response.outcomes) {
                let applied = Applied {
                    shard,
                    outcome,
                    tree_size: response.tree_size,
                    checkpoint: response.checkpoint.clone(),
                };
                // The caller may have timed out and gone; the write stands either way.
                let _ = reply.send(Ok(applied));
            }
        }
        Err(e) => {
            let err = match &e {
                openraft::error::RaftError::APIError(
                    openraft::error::ClientWriteError::ForwardToLeader(f),
                ) => RequestError::new(
                    ErrorCode::NotLeader,
                    format!("this node does not lead shard {}; leader: {:?}", shard.0, f.leader_id),
                ),
                _ => {
                    tracing::error!(shard = shard.0, error = %e, "a proposal failed");
                    RequestError::new(ErrorCode::Unavailable, format!("shard {}: {e}", shard.0))
                }
            };
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

fn conflict(insert: bool, current: u64) -> RequestError {
    let mut e = if insert {
        RequestError::new(
            ErrorCode::AlreadyExists,
            format!("the key already exists (current version {current})"),
        )
    } else {
        RequestError::new(
            ErrorCode::VersionMismatch,
            format!("expected_version does not match the current version {current}"),
        )
    };
    e.current_version = Some(current);
    e
}

fn command_bytes(c: &Command) -> usize {
    match c {
        Command::Insert { key, value } | Command::Append { key, value, .. } => {
            key.len() + value.len() + 32
        }
        Command::Txn(t) => t.bytes(),
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
