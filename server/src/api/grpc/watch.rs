//! The Watch stream: a shard's log from a log index on, following the log as it grows.
//!
//! ```text
//!  start: subscribe, view after a read barrier, check from_log_index <= tree size
//!    │
//!    ▼
//!  entries [next, view size) ──► checkpoint of the view ──► wait for a view whose tree size
//!    ▲                                                     is above next ──┐
//!    └─────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! One task per stream reads the leaves (a tile-sized entry bundle at a time, on the blocking
//! pool) and sends the events into a bounded channel that the response stream drains. Every
//! entry goes out once, in log order, with no gaps; a checkpoint goes out after the entries it
//! covers, so its tree size is above every log index sent before it. The first checkpoint is
//! sent even when no entry precedes it, to tell the client the state the stream starts from.
//!
//! The task stops when the client goes away (the channel closes), when the shard stops, or when
//! the client has not taken an event for [`SEND_TIMEOUT`]: then the stream ends with UNAVAILABLE
//! and the client resumes from its last log index plus 1. The task holds the node weakly, so an
//! open stream never keeps a node that is shutting down alive.

use std::sync::{Arc, Weak};
use std::time::Duration;

use blockdb_proto::v1 as pb;
use blockdb_proto::v1::watch_event::Event;
use blockdb_verifier::ShardId;
use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::status::to_status;
use crate::error::{ErrorCode, RequestError};
use crate::ledger::ShardView;
use crate::ledger::tree::TILE_WIDTH;
use crate::node::{Consistency, Node};

/// Events buffered between the task and the client, at most.
const CHANNEL_EVENTS: usize = 256;

/// How long the task waits for the client to take an event before it ends the stream.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

type Item = Result<pb::WatchEvent, Status>;

/// Starts following `shard` from `from_log_index`.
///
/// # Errors
/// `not_found` for an unknown shard, `out_of_range` for a `from_log_index` above the tree size,
/// and the errors of a linearizable [`Node::view`].
pub(super) async fn start(
    node: &Arc<Node>,
    shard: ShardId,
    from_log_index: u64,
) -> Result<ReceiverStream<Item>, RequestError> {
    let views = node.subscribe(shard)?;
    let view = node.view(shard, Consistency::Linearizable).await?;
    let size = view.tree_size().0;
    if from_log_index > size {
        return Err(RequestError::new(
            ErrorCode::OutOfRange,
            format!("from_log_index {from_log_index} is beyond the tree size {size}"),
        ));
    }
    let (tx, rx) = mpsc::channel(CHANNEL_EVENTS);
    let follower = Follower { node: Arc::downgrade(node), shard, next: from_log_index, views, tx };
    tokio::spawn(follower.run(view));
    Ok(ReceiverStream::new(rx))
}

/// Why a stream ends.
enum Stop {
    /// The client cancelled or disconnected: nothing more to say.
    ConsumerGone,
    /// The stream ends with this status.
    Failed(Status),
}

fn failed(code: ErrorCode, message: impl Into<String>) -> Stop {
    Stop::Failed(to_status(RequestError::new(code, message)))
}

struct Follower {
    node: Weak<Node>,
    shard: ShardId,
    /// The log index of the next entry to send.
    next: u64,
    views: watch::Receiver<Arc<ShardView>>,
    tx: mpsc::Sender<Item>,
}

impl Follower {
    async fn run(mut self, first: Arc<ShardView>) {
        if let Err(Stop::Failed(status)) = self.follow(first).await {
            // Bounded like every send; a client that takes nothing more never learns why.
            let _ = self.tx.send_timeout(Err(status), SEND_TIMEOUT).await;
        }
    }

    /// Sends entries and checkpoints until the stream must stop; never returns `Ok`.
    async fn follow(&mut self, mut view: Arc<ShardView>) -> Result<(), Stop> {
        loop {
            self.send_entries(&view).await?;
            let checkpoint = pb::CheckpointEvent {
                checkpoint: view.signed_checkpoint().to_text(),
                tree_size: view.tree_size().0,
            };
            self.send(Event::Checkpoint(checkpoint)).await?;
            view = self.newer_view().await?;
        }
    }

    /// Sends the entries from `next` up to the view's tree size.
    async fn send_entries(&mut self, view: &Arc<ShardView>) -> Result<(), Stop> {
        let size = view.tree_size().0;
        // Each turn sends at least one leaf (read_leaves checks it), so this ends.
        while self.next < size {
            for leaf in self.read_leaves(view).await? {
                let entry = pb::EntryEvent { shard: self.shard.0, log_index: self.next, leaf };
                self.send(Event::Entry(entry)).await?;
                self.next += 1;
            }
        }
        Ok(())
    }

    /// The leaves from `next` to the end of its entry bundle (at most [`TILE_WIDTH`]), as of
    /// `view`. Requires `next` below the view's tree size.
    async fn read_leaves(&self, view: &Arc<ShardView>) -> Result<Vec<Vec<u8>>, Stop> {
        let node = self
            .node
            .upgrade()
            .ok_or_else(|| failed(ErrorCode::Unavailable, "the node is shutting down"))?;
        let (view, next) = (Arc::clone(view), self.next);
        let read = tokio::task::spawn_blocking(move || {
            view.entry_leaves(node.engine(), next / TILE_WIDTH)
        })
        .await
        .map_err(|e| failed(ErrorCode::Internal, format!("reading leaves failed: {e}")))?;
        let leaves = read.map_err(|e| Stop::Failed(to_status(e.into())))?;
        let skip = usize::try_from(next % TILE_WIDTH).expect("below TILE_WIDTH, 256");
        match leaves {
            Some(mut leaves) if leaves.len() > skip => {
                leaves.drain(..skip);
                Ok(leaves)
            }
            _ => Err(failed(
                ErrorCode::Internal,
                format!("shard {} has no leaf {next} below its tree size", self.shard.0),
            )),
        }
    }

    /// The next view whose tree has entries not sent yet.
    async fn newer_view(&mut self) -> Result<Arc<ShardView>, Stop> {
        let next = self.next;
        tokio::select! {
            newer = self.views.wait_for(|v| v.tree_size().0 > next) => match newer {
                Ok(view) => Ok(Arc::clone(&*view)),
                Err(_) => Err(failed(ErrorCode::Unavailable, "the shard stopped")),
            },
            () = self.tx.closed() => Err(Stop::ConsumerGone),
        }
    }

    async fn send(&self, event: Event) -> Result<(), Stop> {
        let item = Ok(pb::WatchEvent { event: Some(event) });
        match self.tx.send_timeout(item, SEND_TIMEOUT).await {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Closed(_)) => Err(Stop::ConsumerGone),
            Err(SendTimeoutError::Timeout(_)) => Err(failed(
                ErrorCode::Unavailable,
                "the client fell behind; resume from the last log index received plus 1",
            )),
        }
    }
}
