//! Read barriers of one shard's leader, shared by the linearizable reads waiting for one.
//!
//! A linearizable read needs a read index: the leader's commit index once a majority confirmed
//! that it still leads (openraft's `ensure_linearizable`, a heartbeat round to the voters, then a
//! wait for the apply). One round per read would make every read pay that round trip and make the
//! Raft core serve each in turn. Instead, as etcd does, reads that arrive while a round is in
//! flight wait for the *next* round, which starts as soon as the current one ends and answers all
//! of them at once:
//!
//! ```text
//!  read a ──┐ round 1 ──────────┐
//!  read b ─────┐ (waits)        └─► a ; round 2 ───────┐
//!  read c ────────┐ (waits)                            └─► b, c
//! ```
//!
//! Linearizable all the same: a read is answered only by a round that began after it arrived, so
//! its read index is at least the commit index of the moment it arrived, which covers every write
//! acknowledged before it.
//!
//! The rounds run in a task of their own (not in a reader's, whose request may be dropped), one
//! at a time; the task ends when no read waits. Each round is bounded by a timeout, and the
//! number of waiting reads by [`WAITING_MAX`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::{ErrorCode, RequestError};
use crate::raft::Raft;

/// Reads that may wait for the next round at once; more are refused as `unavailable`.
pub(crate) const WAITING_MAX: usize = 65_536;

type Answer = Result<u64, RequestError>;

/// The read barriers of one shard on this node.
#[derive(Debug, Default)]
pub(crate) struct ReadBarrier {
    state: Mutex<State>,
    /// Rounds run, and reads they answered: their ratio is how many reads share a round.
    rounds: AtomicU64,
    reads: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// Whether the task that runs rounds is running.
    running: bool,
    /// The reads for the next round.
    waiting: Vec<oneshot::Sender<Answer>>,
}

impl ReadBarrier {
    /// The read index of the shard whose Raft is `raft`: from the first round that begins after
    /// this call, each round bounded by `round_timeout`.
    ///
    /// # Errors
    /// `not_leader` when this node does not lead the shard; `unavailable` when the round failed,
    /// timed out or too many reads wait.
    pub(crate) async fn read_index(
        self: &Arc<Self>,
        raft: &Raft,
        shard: u32,
        round_timeout: Duration,
    ) -> Answer {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.waiting.len() >= WAITING_MAX {
                return Err(RequestError::new(
                    ErrorCode::Unavailable,
                    format!("too many reads of shard {shard} wait for a read barrier; retry"),
                ));
            }
            state.waiting.push(tx);
            !std::mem::replace(&mut state.running, true)
        };
        if start {
            let (barrier, raft) = (Arc::clone(self), raft.clone());
            tokio::spawn(async move { barrier.run(raft, shard, round_timeout).await });
        }
        rx.await.unwrap_or_else(|_| {
            Err(RequestError::new(ErrorCode::Unavailable, "the read barrier stopped"))
        })
    }

    /// Rounds run so far, and reads they answered.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.rounds.load(Ordering::Relaxed), self.reads.load(Ordering::Relaxed))
    }

    /// Runs rounds until no read waits.
    async fn run(self: Arc<Self>, raft: Raft, shard: u32, round_timeout: Duration) {
        loop {
            let readers = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if state.waiting.is_empty() {
                    state.running = false;
                    return;
                }
                std::mem::take(&mut state.waiting)
            };
            // Every reader in `readers` arrived before this round begins.
            let answer = round(&raft, shard, round_timeout).await;
            self.rounds.fetch_add(1, Ordering::Relaxed);
            self.reads.fetch_add(readers.len() as u64, Ordering::Relaxed);
            for reader in readers {
                // A reader that gave up has dropped its receiver; nothing to tell it.
                let _ = reader.send(answer.clone());
            }
        }
    }
}

/// One read barrier: the commit index once a majority confirmed this node's leadership, applied.
async fn round(raft: &Raft, shard: u32, timeout: Duration) -> Answer {
    match tokio::time::timeout(timeout, raft.ensure_linearizable()).await {
        Ok(Ok(read_log_id)) => Ok(read_log_id.map_or(0, |l| l.index)),
        Ok(Err(openraft::error::RaftError::APIError(
            openraft::error::CheckIsLeaderError::ForwardToLeader(f),
        ))) => Err(RequestError::new(
            ErrorCode::NotLeader,
            format!("this node does not lead shard {shard}; leader: {:?}", f.leader_id),
        )),
        Ok(Err(e)) => Err(RequestError::new(
            ErrorCode::Unavailable,
            format!("read barrier of shard {shard} failed: {e}"),
        )),
        Err(_) => Err(RequestError::new(
            ErrorCode::Unavailable,
            format!("read barrier of shard {shard} did not finish within {timeout:?}"),
        )),
    }
}
