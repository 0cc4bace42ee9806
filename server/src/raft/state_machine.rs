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
//! Snapshots are the shard's whole state (every key under its prefixes) at one applied index,
//! streamed from a storage-engine snapshot into a file ([`super::snapshot`]) and sent to a
//! follower in chunks when it needs entries the log no longer holds. Installing one streams the
//! checked file into the engine in bounded batches: first the metadata is marked
//! `installing` (synced), then the old state is deleted and the snapshot's written, and last the
//! snapshot's own metadata replaces the mark (synced). A node that crashes in between finds the
//! mark when it restarts and installs the same file again before it serves the shard.

use std::path::PathBuf;
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
use crate::raft::snapshot::{self, SnapshotDir};
use crate::raft::{Entry, NodeId, Response, RootCheck, TypeConfig};
use crate::storage::{Engine, WriteBatch};

/// The key prefixes of a shard's state (see [`crate::ledger::shard`] and this module).
const STATE_TAGS: [u8; 8] = [b'A', b'B', b'E', b'L', b'M', b'R', b'T', b'V'];
/// Bytes of keys and values per write batch while installing a snapshot, about.
const INSTALL_BATCH_BYTES: usize = 4 << 20;

/// A snapshot's data as openraft moves it: a file.
pub type SnapshotData = tokio::fs::File;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    /// Set while a snapshot is being installed: its file, to install again after a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    installing: Option<PathBuf>,
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
    snapshots: SnapshotDir,
    /// The file the latest snapshot being received is written to.
    receiving: Option<PathBuf>,
    corruption: Arc<std::sync::OnceLock<String>>,
}

impl StateMachine {
    /// Opens shard `id` from `engine`, with its snapshots in `snapshot_dir`, and returns it with
    /// the receiver of its views. A diverged replica's reason is set in `corruption`. An install
    /// that a crash interrupted is finished first.
    ///
    /// # Errors
    /// Storage errors and corruption of the stored state.
    pub fn open(
        engine: Arc<Engine>,
        cluster_origin: &str,
        id: ShardId,
        node_key: Arc<NodeKey>,
        snapshot_dir: PathBuf,
        corruption: Arc<std::sync::OnceLock<String>>,
    ) -> Result<(StateMachine, watch::Receiver<Arc<ShardView>>), ShardError> {
        let snapshots = SnapshotDir::open(snapshot_dir).map_err(|e| ShardError::Corrupt {
            key: format!("shard {id} snapshots"),
            reason: e.to_string(),
        })?;
        let mut meta = read_meta(&engine, id)?;
        if let Some(file) = meta.installing.clone() {
            tracing::warn!(shard = id.0, file = %file.display(), "finishing an interrupted snapshot install");
            write_state_from(&engine, id, &file).map_err(|e| ShardError::Corrupt {
                key: format!("shard {id} snapshot"),
                reason: e.to_string(),
            })?;
            meta = read_meta(&engine, id)?;
        }
        let shard = Shard::open(&engine, cluster_origin, id)?;
        let (views, rx) = watch::channel(Arc::new(shard.view(&engine, &node_key)));
        let sm = StateMachine {
            engine,
            cluster_origin: cluster_origin.to_owned(),
            shard,
            node_key,
            meta,
            views,
            snapshots,
            receiving: None,
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
            "replica diverged: at tree size {} the leader's root is {} but this replica's is {} \
             (found applying raft entry {at}); the shard stopped on this node",
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

/// The keys of shard `id`'s state in an engine snapshot, in order; `M` (metadata) last unless
/// `with_meta` is false.
fn state_keys(
    snapshot: &crate::storage::Snapshot,
    id: ShardId,
    with_meta: bool,
) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), crate::storage::StorageError>> + '_ {
    STATE_TAGS.into_iter().filter(move |&t| with_meta || t != b'M').flat_map(move |tag| {
        let prefix = tagged(tag, id);
        let mut end = prefix.clone();
        end.extend_from_slice(&[0xff; 9]);
        snapshot.scan(prefix..end)
    })
}

/// Whether `file` is the file at `path`.
async fn same_file(file: &tokio::fs::File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata().await, tokio::fs::metadata(path).await) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn in_shard(id: ShardId) -> impl Fn(&[u8]) -> bool {
    move |k| STATE_TAGS.iter().any(|&t| k.starts_with(&tagged(t, id)))
}

/// Replaces shard `id`'s state in `engine` with the checked snapshot file `file`: the old state
/// goes and the file's is written in bounded batches, the file's metadata (`M`) last and synced.
fn write_state_from(
    engine: &Engine,
    id: ShardId,
    file: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let current = engine.snapshot();
    let mut batch = WriteBatch::new();
    let mut bytes = 0usize;
    for item in state_keys(&current, id, false) {
        let (k, _) = item?;
        bytes += k.len() + 16;
        batch.delete(k);
        if bytes > INSTALL_BATCH_BYTES {
            engine.write_with(std::mem::take(&mut batch), false)?;
            bytes = 0;
        }
    }
    let mut meta_value = None;
    for pair in snapshot::pairs(file)? {
        let (k, v) = pair?;
        if k == meta_key(id) {
            meta_value = Some(v);
            continue;
        }
        bytes += k.len() + v.len() + 16;
        batch.put(k, v);
        if bytes > INSTALL_BATCH_BYTES {
            engine.write_with(std::mem::take(&mut batch), false)?;
            bytes = 0;
        }
    }
    let meta_value = meta_value.ok_or("the snapshot has no state machine metadata")?;
    batch.put(meta_key(id), meta_value);
    engine.write_with(batch, true)?;
    Ok(())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineSnapshot {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (snapshots, meta, id) = (self.snapshots.clone(), self.meta.clone(), self.shard);
        let engine_snapshot = self.engine_snapshot.take().ok_or_else(|| {
            sm_err(ErrorVerb::Read)(std::io::Error::other("a snapshot builder builds once"))
        })?;
        let meta_for_file = meta.clone();
        let path = tokio::task::spawn_blocking(move || {
            let pairs = state_keys(&engine_snapshot, id, true);
            let path = snapshots.write(&meta_for_file, pairs)?;
            snapshots.remove_older(&path)?;
            Ok::<_, snapshot::SnapshotFileError>(path)
        })
        .await
        .map_err(sm_err(ErrorVerb::Write))?
        .map_err(|e| {
            tracing::error!(shard = id.0, error = %e, "building a snapshot failed");
            sm_err(ErrorVerb::Write)(e)
        })?;
        let file = tokio::fs::File::open(&path).await.map_err(sm_err(ErrorVerb::Read))?;
        tracing::info!(shard = id.0, snapshot = meta.snapshot_id, "snapshot built");
        Ok(Snapshot { meta, snapshot: Box::new(file) })
    }
}

/// Builds a snapshot from an engine snapshot taken at one applied index.
#[derive(Debug)]
pub struct StateMachineSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    shard: ShardId,
    engine_snapshot: Option<crate::storage::Snapshot>,
    snapshots: SnapshotDir,
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
        // The engine snapshot is taken here, between applies, so it holds exactly the state at
        // the applied index; the file is written later, off this task.
        let last = self.meta.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.meta.membership.clone(),
            snapshot_id: format!("{}-{}", self.shard.id().0, last.map_or(0, |l| l.index)),
        };
        StateMachineSnapshot {
            meta,
            shard: self.shard.id(),
            engine_snapshot: Some(self.engine.snapshot()),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<SnapshotData>, StorageError<NodeId>> {
        let path = self.snapshots.temp_path("recv");
        let file = tokio::fs::File::create(&path).await.map_err(sm_err(ErrorVerb::Write))?;
        if let Some(old) = self.receiving.replace(path) {
            let _ = tokio::fs::remove_file(old).await;
        }
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError<NodeId>> {
        use tokio::io::AsyncWriteExt as _;
        let id = self.shard.id();
        let bad = |reason: String| sm_err(ErrorVerb::Write)(std::io::Error::other(reason));
        let mut file = *snapshot;
        file.flush().await.map_err(sm_err(ErrorVerb::Write))?;
        // Usually the file is the one begin_receiving_snapshot made; any other handle (a
        // snapshot built here, say) is copied into a file of our own first.
        let received = match self.receiving.take() {
            Some(path) if same_file(&file, &path).await => path,
            other => {
                if let Some(old) = other {
                    let _ = tokio::fs::remove_file(old).await;
                }
                use tokio::io::AsyncSeekExt as _;
                let path = self.snapshots.temp_path("copy");
                let mut copy =
                    tokio::fs::File::create(&path).await.map_err(sm_err(ErrorVerb::Write))?;
                file.seek(std::io::SeekFrom::Start(0)).await.map_err(sm_err(ErrorVerb::Read))?;
                tokio::io::copy(&mut file, &mut copy).await.map_err(sm_err(ErrorVerb::Write))?;
                copy.flush().await.map_err(sm_err(ErrorVerb::Write))?;
                file = copy;
                path
            }
        };
        file.sync_all().await.map_err(sm_err(ErrorVerb::Write))?;
        drop(file);
        let (engine, snapshots) = (Arc::clone(&self.engine), self.snapshots.clone());
        let meta_want = meta.clone();
        let mut marked = self.meta.clone();
        // Check the whole file before anything changes; then mark, replace, unmark.
        let installed = tokio::task::spawn_blocking(move || {
            let (file_meta, pairs) = snapshot::verify(&received, in_shard(id))?;
            if file_meta.last_log_id != meta_want.last_log_id
                || file_meta.snapshot_id != meta_want.snapshot_id
            {
                return Err(format!(
                    "the file holds snapshot {} but {} was sent",
                    file_meta.snapshot_id, meta_want.snapshot_id
                )
                .into());
            }
            let path = snapshots.path_of(&file_meta);
            snapshots.commit(&received, &path)?;
            marked.installing = Some(path.clone());
            let mut batch = WriteBatch::new();
            batch.put(meta_key(id), serde_json::to_vec(&marked).expect("metadata serializes"));
            engine.write_with(batch, true)?;
            write_state_from(&engine, id, &path)?;
            snapshots.remove_older(&path)?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(pairs)
        })
        .await
        .map_err(sm_err(ErrorVerb::Write))?;
        let pairs = installed.map_err(|e| {
            tracing::error!(shard = id.0, error = %e, "a received snapshot was refused");
            bad(e.to_string())
        })?;
        self.shard =
            Shard::open(&self.engine, &self.cluster_origin, id).map_err(sm_err(ErrorVerb::Read))?;
        self.meta = read_meta(&self.engine, id).map_err(sm_err(ErrorVerb::Read))?;
        if self.meta.last_applied != meta.last_log_id {
            return Err(bad("the snapshot's state does not match its metadata".into()));
        }
        tracing::info!(shard = id.0, snapshot = meta.snapshot_id, pairs, "snapshot installed");
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let Some((meta, path)) = self.snapshots.latest().map_err(sm_err(ErrorVerb::Read))? else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(&path).await.map_err(sm_err(ErrorVerb::Read))?;
        Ok(Some(Snapshot { meta, snapshot: Box::new(file) }))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::ledger::Command;
    use crate::raft::Request;
    use crate::storage::Options;

    fn must_open(dir: &std::path::Path) -> (Arc<Engine>, StateMachine) {
        let engine = Arc::new(Engine::open(dir.join("store"), Options::small_for_tests()).unwrap());
        let key =
            Arc::new(NodeKey::load_or_create(&dir.join("node.key"), "t", || [3; 32]).unwrap());
        let (sm, _) = StateMachine::open(
            Arc::clone(&engine),
            "blockdb.local/t",
            ShardId(0),
            key,
            dir.join("snapshots"),
            Arc::new(std::sync::OnceLock::new()),
        )
        .unwrap();
        (engine, sm)
    }

    fn entry(index: u64) -> Entry {
        let commands =
            vec![Command::Insert { key: format!("k{index}").into_bytes(), value: b"v".to_vec() }];
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Request { commit_time_ms: 1, check: None, commands }),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_install_cut_short_by_a_crash_is_finished_when_the_node_restarts() {
        let a = tempfile::tempdir().unwrap();
        let (_, mut source) = must_open(a.path());
        source.apply((1..=40).map(entry)).await.unwrap();
        let built = source.get_snapshot_builder().await.build_snapshot().await.unwrap();
        let (path_meta, path) = source.snapshots.latest().unwrap().unwrap();
        assert_eq!(path_meta, built.meta);

        // A replica with other state, stopped right after it marked the install: its metadata
        // names the snapshot file, and its old state is still there.
        let b = tempfile::tempdir().unwrap();
        let (engine, mut stale) = must_open(b.path());
        stale.apply((1..=3).map(entry)).await.unwrap();
        stale.meta.installing = Some(path.clone());
        let mut batch = WriteBatch::new();
        batch.put(meta_key(ShardId(0)), serde_json::to_vec(&stale.meta).unwrap());
        let mut junk = tagged(b'R', ShardId(0));
        junk.extend_from_slice(b"zz-not-in-the-snapshot");
        batch.put(junk.clone(), b"x".to_vec());
        engine.write_with(batch, true).unwrap();
        drop((stale, engine));

        let (engine, restarted) = must_open(b.path());
        assert_eq!(restarted.meta.last_applied, built.meta.last_log_id);
        assert_eq!(restarted.meta.installing, None);
        assert_eq!(restarted.shard.checkpoint(), source.shard.checkpoint());
        assert_eq!(engine.get(&junk).unwrap(), None, "the old state is gone");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_received_snapshot_that_does_not_check_out_changes_nothing() {
        let a = tempfile::tempdir().unwrap();
        let (_, mut source) = must_open(a.path());
        source.apply((1..=10).map(entry)).await.unwrap();
        let built = source.get_snapshot_builder().await.build_snapshot().await.unwrap();
        let (_, path) = source.snapshots.latest().unwrap().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 40;
        bytes[last] ^= 1;

        let b = tempfile::tempdir().unwrap();
        let (_, mut replica) = must_open(b.path());
        replica.apply((1..=2).map(entry)).await.unwrap();
        let before = (replica.meta.last_applied, replica.shard.checkpoint());
        let mut file = replica.begin_receiving_snapshot().await.unwrap();
        use tokio::io::AsyncWriteExt as _;
        file.write_all(&bytes).await.unwrap();
        assert!(replica.install_snapshot(&built.meta, file).await.is_err());
        assert_eq!((replica.meta.last_applied, replica.shard.checkpoint()), before);
        assert_eq!(read_meta(&replica.engine, ShardId(0)).unwrap().installing, None);
    }
}
