//! The state machine of one shard: openraft's view of [`Shard`].
//!
//! Applying a batch of committed entries writes, per entry, the shard's changes and this
//! module's metadata (the entry's log id and the membership) in one atomic write batch, so the
//! applied index on disk always describes the state beside it. After the batch, one checkpoint
//! is signed and a new [`ShardView`] is published to readers: checkpoints are per applied batch,
//! not per write.
//!
//! Metadata key of shard `s`: `"M" ‖ s (u32 BE)` → JSON `{"last_applied": .., "membership": ..}`.
//!
//! Every normal entry carries the proposing leader's root at some earlier tree size
//! ([`crate::raft::RootCheck`]); after applying a batch, the replica compares its own root at the
//! largest such size. A difference means this replica's log diverged from the leader's: the
//! replica records the corruption (status shows it), logs it, and fails the apply, which stops
//! the shard's Raft instance on this node. It never serves the diverged state as the shard's.
//!
//! Snapshots are the shard's whole state (every key under its prefixes), built from a storage
//! snapshot at one applied index and sent to a follower in chunks when it needs entries the log
//! no longer holds. A snapshot is built in memory, up to [`SNAPSHOT_BYTES_MAX`].

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, BasicNode, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder,
    Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use blockdb_verifier::ShardId;

use crate::ledger::shard::EntryInput;
use crate::ledger::{NodeKey, Outcome, Shard, ShardError, ShardView};
use crate::raft::{Entry, NodeId, Response, RootCheck, TypeConfig};
use crate::storage::{Engine, WriteBatch};

/// The key prefixes of a shard's state (see [`crate::ledger::shard`] and this module).
const STATE_TAGS: [u8; 7] = [b'A', b'B', b'E', b'L', b'M', b'R', b'V'];
/// Longest snapshot this node builds or installs in one piece.
pub const SNAPSHOT_BYTES_MAX: usize = 512 * 1024 * 1024;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

/// The state machine of one shard.
#[derive(Debug)]
pub struct StateMachine {
    engine: Arc<Engine>,
    cluster_origin: String,
    shard: Shard,
    node_key: Arc<NodeKey>,
    meta: Meta,
    views: watch::Sender<Arc<ShardView>>,
    current_snapshot: Option<(SnapshotMeta<NodeId, BasicNode>, Vec<u8>)>,
    corruption: Arc<std::sync::OnceLock<String>>,
}

impl StateMachine {
    /// Opens shard `id` from `engine` and returns it with the receiver of its views. A diverged
    /// replica's reason is set in `corruption`.
    ///
    /// # Errors
    /// Storage errors and corruption of the stored state.
    pub fn open(
        engine: Arc<Engine>,
        cluster_origin: &str,
        id: ShardId,
        node_key: Arc<NodeKey>,
        corruption: Arc<std::sync::OnceLock<String>>,
    ) -> Result<(StateMachine, watch::Receiver<Arc<ShardView>>), ShardError> {
        let shard = Shard::open(&engine, cluster_origin, id)?;
        let meta = read_meta(&engine, id)?;
        let (views, rx) = watch::channel(Arc::new(shard.view(&engine, &node_key)));
        let sm = StateMachine {
            engine,
            cluster_origin: cluster_origin.to_owned(),
            shard,
            node_key,
            meta,
            views,
            current_snapshot: None,
            corruption,
        };
        Ok((sm, rx))
    }

    fn publish(&self) -> Arc<ShardView> {
        let view = Arc::new(self.shard.view(&self.engine, &self.node_key));
        self.views.send_replace(Arc::clone(&view));
        view
    }

    fn meta_batch(&self) -> WriteBatch {
        let mut batch = WriteBatch::new();
        let json = serde_json::to_vec(&self.meta).expect("metadata serializes to JSON");
        batch.put(meta_key(self.shard.id()), json);
        batch
    }

    fn apply_entries(&mut self, entries: &[Entry]) -> Result<Vec<Vec<Outcome>>, ShardError> {
        let Some(last) = entries.last().map(|e| e.log_id) else { return Ok(Vec::new()) };
        let mut inputs = Vec::with_capacity(entries.len());
        for entry in entries {
            match &entry.payload {
                EntryPayload::Normal(request) => inputs.push(EntryInput {
                    raft_index: entry.log_id.index,
                    commit_time_ms: request.commit_time_ms,
                    commands: &request.commands,
                }),
                EntryPayload::Membership(m) => {
                    self.meta.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    inputs.push(EntryInput {
                        raft_index: entry.log_id.index,
                        commit_time_ms: 0,
                        commands: &[],
                    });
                }
                EntryPayload::Blank => {
                    inputs.push(EntryInput {
                        raft_index: entry.log_id.index,
                        commit_time_ms: 0,
                        commands: &[],
                    });
                }
            }
        }
        self.meta.last_applied = Some(last);
        // One write for the whole batch, not synced: the entries are durable in the Raft log,
        // which replays them after a crash.
        let batch = self.meta_batch();
        let outcomes = self.shard.apply_entries(&self.engine, &inputs, batch, false)?;
        let check = entries
            .iter()
            .filter_map(|e| match &e.payload {
                EntryPayload::Normal(r) => r.check,
                _ => None,
            })
            .max_by_key(|c| c.tree_size);
        if let Some(check) = check {
            self.check_root(check, last)?;
        }
        Ok(outcomes)
    }

    fn check_root(&self, check: RootCheck, at: LogId<NodeId>) -> Result<(), ShardError> {
        let size = self.shard.checkpoint().size;
        let mine = if check.tree_size <= size.0 {
            Some(self.shard.root_at(&self.engine, blockdb_verifier::TreeSize(check.tree_size))?)
        } else {
            None
        };
        if mine.is_some_and(|m| m.0 == check.root) {
            return Ok(());
        }
        let reason = format!(
            "replica diverged: at tree size {} the leader's root is {} but this replica's is {}              (found applying raft entry {at}); the shard stopped on this node",
            check.tree_size,
            hex::encode(check.root),
            mine.map_or_else(
                || format!("missing (its tree has {} leaves)", size.0),
                |m| m.to_string()
            ),
        );
        tracing::error!(shard = self.shard.id().0, "{reason}");
        let _ = self.corruption.set(reason.clone());
        Err(ShardError::Corrupt { key: format!("shard {} root", self.shard.id().0), reason })
    }

    #[expect(clippy::result_large_err, reason = "openraft's storage trait errors are this type")]
    fn state_pairs(&self) -> Result<Vec<u8>, StorageError<NodeId>> {
        let snapshot = self.engine.snapshot();
        let mut out = Vec::new();
        for tag in STATE_TAGS {
            let prefix = tagged(tag, self.shard.id());
            let mut end = prefix.clone();
            end.push(0xff);
            end.extend_from_slice(&[0xff; 8]);
            for item in snapshot.scan(prefix..end) {
                let (k, v) = item.map_err(sm_err(ErrorVerb::Read))?;
                if out.len() + k.len() + v.len() + 8 > SNAPSHOT_BYTES_MAX {
                    return Err(sm_err(ErrorVerb::Read)(std::io::Error::other(
                        "the shard is too large for a snapshot in one piece",
                    )));
                }
                put_bytes(&mut out, &k);
                put_bytes(&mut out, &v);
            }
        }
        Ok(out)
    }
}

/// Runs `f`, which blocks, without stalling the runtime's other tasks where the runtime allows
/// it (a multi-threaded one); on a current-thread runtime it just runs.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn tagged(tag: u8, shard: ShardId) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(&shard.0.to_be_bytes());
    k
}

fn meta_key(shard: ShardId) -> Vec<u8> {
    tagged(b'M', shard)
}

fn read_meta(engine: &Engine, shard: ShardId) -> Result<Meta, ShardError> {
    match engine.get(&meta_key(shard))? {
        None => Ok(Meta::default()),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| ShardError::Corrupt { key: format!("M{shard}"), reason: e.to_string() }),
    }
}

fn sm_err<E: std::error::Error + 'static>(
    verb: ErrorVerb,
) -> impl FnOnce(E) -> StorageError<NodeId> {
    move |e| StorageIOError::new(ErrorSubject::StateMachine, verb, AnyError::new(&e)).into()
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("keys and values are below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn split_bytes(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    (rest.len() >= len).then(|| rest.split_at(len))
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineSnapshot {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let data = std::mem::replace(&mut self.data, Ok(Vec::new()))?;
        Ok(Snapshot { meta: self.meta.clone(), snapshot: Box::new(Cursor::new(data)) })
    }
}

/// A snapshot built from the state at one applied index, or why it could not be.
#[derive(Debug)]
pub struct StateMachineSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Result<Vec<u8>, StorageError<NodeId>>,
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachineSnapshot;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        Ok((self.meta.last_applied, self.meta.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        // Applying writes to the engine, which may wait behind a group commit's fsync: keep that
        // wait off the runtime's other tasks.
        let outcomes = blocking(|| self.apply_entries(&entries)).map_err(|e| {
            let last = entries.last().map(|e| e.log_id).unwrap_or_default();
            StorageIOError::apply(last, AnyError::new(&e))
        })?;
        let view = self.publish();
        let checkpoint = view.signed_checkpoint().to_text();
        let tree_size = view.tree_size().0;
        Ok(outcomes
            .into_iter()
            .map(|outcomes| Response { outcomes, tree_size, checkpoint: checkpoint.clone() })
            .collect())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        #[expect(
            clippy::result_large_err,
            reason = "openraft's storage trait errors are this type"
        )]
        let data = blocking(|| self.state_pairs());
        let last = self.meta.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.meta.membership.clone(),
            snapshot_id: format!("{}-{}", self.shard.id().0, last.map_or(0, |l| l.index)),
        };
        match &data {
            Ok(bytes) => self.current_snapshot = Some((meta.clone(), bytes.clone())),
            // A failed build is reported by build_snapshot; the previous snapshot stays current.
            Err(e) => tracing::error!(shard = self.shard.id().0, error = %e, "snapshot failed"),
        }
        StateMachineSnapshot { meta, data }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let id = self.shard.id();
        let mut batch = WriteBatch::new();
        // Remove this shard's state, then write the snapshot's, in one atomic batch.
        let current = self.engine.snapshot();
        for tag in STATE_TAGS {
            let prefix = tagged(tag, id);
            let mut end = prefix.clone();
            end.extend_from_slice(&[0xff; 9]);
            for item in current.scan(prefix..end) {
                let (k, _) = item.map_err(sm_err(ErrorVerb::Read))?;
                batch.delete(k);
            }
        }
        let mut rest = data.as_slice();
        while !rest.is_empty() {
            let bad = || sm_err(ErrorVerb::Write)(std::io::Error::other("malformed snapshot"));
            let (k, after) = split_bytes(rest).ok_or_else(bad)?;
            let (v, after) = split_bytes(after).ok_or_else(bad)?;
            if !STATE_TAGS.iter().any(|&t| k.starts_with(&tagged(t, id))) {
                return Err(bad());
            }
            batch.put(k.to_vec(), v.to_vec());
            rest = after;
        }
        self.engine.write_with(batch, true).map_err(sm_err(ErrorVerb::Write))?;
        self.shard =
            Shard::open(&self.engine, &self.cluster_origin, id).map_err(sm_err(ErrorVerb::Read))?;
        self.meta = read_meta(&self.engine, id).map_err(sm_err(ErrorVerb::Read))?;
        if self.meta.last_applied != meta.last_log_id {
            return Err(sm_err(ErrorVerb::Write)(std::io::Error::other(
                "the snapshot's state does not match its metadata",
            )));
        }
        self.current_snapshot = Some((meta.clone(), data));
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.current_snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}
