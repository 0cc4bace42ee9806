//! A BlockDB node: the storage engine, the node's key, and one Raft group per shard, with the
//! operations the APIs expose. The REST and gRPC layers are adapters over [`Node`].
//!
//! Writes go through the shard's proposer into Raft and return once the entry is fsynced and
//! applied. Reads pick a [`ShardView`] — after a linearizable read barrier by default — and
//! answer from it with proofs against its signed checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Config, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use blockdb_verifier::{ShardId, VerifierKey};

use crate::error::{ErrorCode, RequestError};
use crate::ledger::node_key::os_random_seed;
use crate::ledger::{Command, NodeKey, ShardView};
use crate::raft::log_store::LogStore;
use crate::raft::network::NoPeers;
use crate::raft::state_machine::StateMachine;
use crate::raft::{NodeId, Raft};
use crate::storage::{Engine, Options};

pub mod proposer;

pub use proposer::WriteResult;
use proposer::{BatchLimits, Pending};

/// What a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where everything is stored.
    pub data_dir: PathBuf,
    /// The node's name in its verifier key and checkpoints' signature lines.
    pub node_name: String,
    /// Shards of a new cluster (1 if `None`); an existing data directory keeps its own, and a
    /// different number given here is refused rather than ignored.
    pub shards: Option<u32>,
    /// Longest key accepted.
    pub key_len_max: usize,
    /// Longest value accepted.
    pub value_len_max: usize,
    /// Writes per Raft entry, at most.
    pub batch_records_max: usize,
    /// How long a write waits for its commit before it answers `timeout`.
    pub write_timeout_ms: u64,
    /// The storage engine's options.
    pub storage: Options,
}

impl NodeConfig {
    /// Defaults for a node storing under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            data_dir: data_dir.into(),
            node_name: "blockdb-node-1".into(),
            shards: None,
            key_len_max: 1024,
            value_len_max: 1024 * 1024,
            batch_records_max: 256,
            write_timeout_ms: 10_000,
            storage: Options::default(),
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A file of the data directory could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The data directory's cluster file is malformed or disagrees with the configuration.
    #[error("cluster file {path}: {reason}")]
    Cluster {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The node key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] crate::ledger::NodeKeyError),
    /// The storage engine could not open.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// A shard's state could not be opened.
    #[error(transparent)]
    Shard(#[from] crate::ledger::ShardError),
    /// Raft failed to start or to elect this node.
    #[error("raft of shard {shard}: {reason}")]
    Raft {
        /// The shard.
        shard: u32,
        /// What failed.
        reason: String,
    },
}

/// The identity of the cluster a data directory belongs to, fixed when it is created.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Random id, 32 hex digits.
    pub cluster_id: String,
    /// Number of shards.
    pub shards: u32,
    /// This node's id.
    pub node_id: NodeId,
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read began (a Raft read barrier).
    #[default]
    Linearizable,
    /// The node's latest applied state, without a barrier; the proof is as valid.
    Stale,
}

struct ShardHandle {
    raft: Raft,
    views: watch::Receiver<Arc<ShardView>>,
    queue: mpsc::Sender<Pending>,
}

/// A running node.
pub struct Node {
    engine: Arc<Engine>,
    key: Arc<NodeKey>,
    cluster: ClusterFile,
    cluster_origin: String,
    shards: Vec<ShardHandle>,
    config: NodeConfig,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("cluster", &self.cluster).finish_non_exhaustive()
    }
}

impl Node {
    /// Opens (or creates) the node's data directory, starts one Raft group per shard and waits
    /// until this node leads each of them.
    ///
    /// # Errors
    /// [`StartError`] for an unusable data directory, key or stored state.
    pub async fn start(config: NodeConfig) -> Result<Node, StartError> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|source| StartError::Io {
            what: "create",
            path: dir.clone(),
            source,
        })?;
        let cluster = load_or_create_cluster(&dir.join("cluster.json"), config.shards)?;
        let key_path = dir.join("node.key");
        let mut seed_error = None;
        let key = NodeKey::load_or_create(&key_path, &config.node_name, || {
            os_random_seed().unwrap_or_else(|e| {
                seed_error = Some(e);
                [0; 32]
            })
        });
        if let Some(source) = seed_error {
            // Never keep a key made from a failed random source.
            let _ = std::fs::remove_file(&key_path);
            return Err(StartError::Io { what: "read randomness for", path: key_path, source });
        }
        let key = Arc::new(key?);
        let engine = Arc::new(Engine::open(dir.join("store"), config.storage.clone())?);
        let cluster_origin = format!("blockdb.local/{}", cluster.cluster_id);
        let mut shards = Vec::new();
        for s in 0..cluster.shards {
            shards.push(start_shard(&engine, &cluster_origin, ShardId(s), &key, &config).await?);
        }
        Ok(Node { engine, key, cluster, cluster_origin, shards, config })
    }

    /// The storage engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The key that signs this node's checkpoints.
    pub fn verifier_key(&self) -> &VerifierKey {
        self.key.verifier_key()
    }

    /// The cluster's origin prefix (`blockdb.local/<cluster id>`).
    pub fn cluster_origin(&self) -> &str {
        &self.cluster_origin
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Number of shards.
    pub fn shard_count(&self) -> u32 {
        self.cluster.shards
    }

    /// The shard that holds `key`.
    pub fn shard_of(&self, key: &[u8]) -> ShardId {
        ShardId::for_key(key, self.cluster.shards).expect("a cluster file has 1 to 1024 shards")
    }

    fn handle(&self, shard: ShardId) -> Result<&ShardHandle, RequestError> {
        self.shards.get(shard.0 as usize).ok_or_else(|| {
            RequestError::new(
                ErrorCode::NotFound,
                format!("no shard {}; this cluster has {}", shard.0, self.cluster.shards),
            )
        })
    }

    /// Checks a key and value against the node's limits.
    ///
    /// # Errors
    /// `key_too_large` for an empty or long key, `value_too_large` for a long value.
    pub fn check_record(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), RequestError> {
        if key.is_empty() || key.len() > self.config.key_len_max {
            return Err(RequestError::new(
                ErrorCode::KeyTooLarge,
                format!(
                    "a key must have 1 to {} bytes; this one has {}",
                    self.config.key_len_max,
                    key.len()
                ),
            ));
        }
        if let Some(v) = value.filter(|v| v.len() > self.config.value_len_max) {
            return Err(RequestError::new(
                ErrorCode::ValueTooLarge,
                format!(
                    "a value may have at most {} bytes; this one has {}",
                    self.config.value_len_max,
                    v.len()
                ),
            ));
        }
        Ok(())
    }

    /// Inserts `key` at version 1.
    ///
    /// # Errors
    /// `already_exists` when the key has a version; limits; `unavailable`, `timeout`.
    pub async fn insert(&self, key: Vec<u8>, value: Vec<u8>) -> Result<WriteResult, RequestError> {
        self.check_record(&key, Some(&value))?;
        self.write(Command::Insert { key, value }).await
    }

    /// Appends the next version of `key`, only at `expected_version` if given.
    ///
    /// # Errors
    /// `version_mismatch`; limits; `unavailable`, `timeout`.
    pub async fn append(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
        expected_version: Option<u64>,
    ) -> Result<WriteResult, RequestError> {
        self.check_record(&key, Some(&value))?;
        self.write(Command::Append { key, value, expected_version }).await
    }

    async fn write(&self, command: Command) -> Result<WriteResult, RequestError> {
        let key = match &command {
            Command::Insert { key, .. } | Command::Append { key, .. } => key,
        };
        let handle = self.handle(self.shard_of(key))?;
        let (reply, rx) = oneshot::channel();
        handle.queue.try_send(Pending { command, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                RequestError::new(ErrorCode::Unavailable, "too many writes are queued; retry")
            }
            mpsc::error::TrySendError::Closed(_) => {
                RequestError::new(ErrorCode::Unavailable, "the node is shutting down")
            }
        })?;
        let timeout = Duration::from_millis(self.config.write_timeout_ms);
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RequestError::new(ErrorCode::Unavailable, "the shard stopped")),
            Err(_) => Err(RequestError::new(
                ErrorCode::Timeout,
                "the write was not committed in time; its outcome is unknown",
            )),
        }
    }

    /// The view of `shard` to read from: after a read barrier for linearizable reads.
    ///
    /// # Errors
    /// `not_found` for an unknown shard; `not_leader`/`unavailable` when the barrier fails.
    pub async fn view(
        &self,
        shard: ShardId,
        consistency: Consistency,
    ) -> Result<Arc<ShardView>, RequestError> {
        let handle = self.handle(shard)?;
        if consistency == Consistency::Linearizable {
            let read_index = handle.raft.ensure_linearizable().await.map_err(|e| {
                RequestError::new(ErrorCode::Unavailable, format!("read barrier failed: {e}"))
            })?;
            let wanted = read_index.map_or(0, |l| l.index);
            let mut views = handle.views.clone();
            // ensure_linearizable waits for the apply; the view is published in the same apply
            // call, so this wait ends at once unless a newer view is already in.
            views
                .wait_for(|v| v.applied_index() >= wanted)
                .await
                .map_err(|_| RequestError::new(ErrorCode::Unavailable, "the shard stopped"))?;
        }
        Ok(Arc::clone(&handle.views.borrow()))
    }

    /// A receiver of `shard`'s views, one per applied batch.
    ///
    /// # Errors
    /// `not_found` for an unknown shard.
    pub fn subscribe(
        &self,
        shard: ShardId,
    ) -> Result<watch::Receiver<Arc<ShardView>>, RequestError> {
        Ok(self.handle(shard)?.views.clone())
    }

    /// Raft metrics of `shard`.
    ///
    /// # Errors
    /// `not_found` for an unknown shard.
    pub fn raft_metrics(
        &self,
        shard: ShardId,
    ) -> Result<openraft::RaftMetrics<NodeId, BasicNode>, RequestError> {
        Ok(self.handle(shard)?.raft.metrics().borrow().clone())
    }

    /// Whether every shard has a leader (this node) and can take writes.
    pub fn is_ready(&self) -> bool {
        self.shards.iter().all(|h| {
            let m = h.raft.metrics();
            let m = m.borrow();
            m.current_leader == Some(m.id) && m.running_state.is_ok()
        })
    }

    /// Stops every shard's Raft group: no write is accepted after it. The storage engine closes
    /// when the last reference to the node goes; nothing needs flushing, as every acknowledged
    /// write is in the fsynced Raft log.
    pub async fn shutdown(&self) {
        for h in &self.shards {
            if let Err(e) = h.raft.shutdown().await {
                tracing::warn!(error = %e, "a raft group did not stop cleanly");
            }
        }
    }
}

async fn start_shard(
    engine: &Arc<Engine>,
    cluster_origin: &str,
    shard: ShardId,
    key: &Arc<NodeKey>,
    config: &NodeConfig,
) -> Result<ShardHandle, StartError> {
    let raft_err = |reason: String| StartError::Raft { shard: shard.0, reason };
    let raft_config = Config {
        cluster_name: format!("{cluster_origin}/shard/{}", shard.0),
        heartbeat_interval: 250,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        snapshot_policy: SnapshotPolicy::Never,
        max_payload_entries: 64,
        ..Config::default()
    }
    .validate()
    .map_err(|e| raft_err(e.to_string()))?;
    let log_store = LogStore::new(Arc::clone(engine), shard).map_err(|source| StartError::Io {
        what: "start the raft log writer for",
        path: config.data_dir.clone(),
        source,
    })?;
    let (sm, views) =
        StateMachine::open(Arc::clone(engine), cluster_origin, shard, Arc::clone(key))?;
    let raft = Raft::new(1, Arc::new(raft_config), NoPeers, log_store, sm)
        .await
        .map_err(|e| raft_err(e.to_string()))?;
    if !raft.is_initialized().await.map_err(|e| raft_err(e.to_string()))? {
        let members = BTreeMap::from([(1, BasicNode::new("local"))]);
        raft.initialize(members).await.map_err(|e| raft_err(e.to_string()))?;
    }
    raft.wait(Some(Duration::from_secs(30)))
        .current_leader(1, "this node leads its one-member group")
        .await
        .map_err(|e| raft_err(format!("no leader: {e}")))?;
    let (queue, rx) = mpsc::channel(8192);
    let limits = BatchLimits { records_max: config.batch_records_max, bytes_max: 4 << 20 };
    tokio::spawn(proposer::run(shard, raft.clone(), rx, limits));
    Ok(ShardHandle { raft, views, queue })
}

fn load_or_create_cluster(path: &Path, asked: Option<u32>) -> Result<ClusterFile, StartError> {
    let bad = |reason: String| StartError::Cluster { path: path.to_owned(), reason };
    match std::fs::read(path) {
        Ok(bytes) => {
            let file: ClusterFile =
                serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
            if file.shards == 0 || file.shards > 1024 {
                return Err(bad(format!("{} shards is not 1 to 1024", file.shards)));
            }
            if let Some(n) = asked.filter(|&n| n != file.shards) {
                return Err(bad(format!(
                    "this data directory holds {} shards; a cluster's shards are fixed when it \
                     is created, so {n} cannot be used",
                    file.shards
                )));
            }
            Ok(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let shards = asked.unwrap_or(1);
            if shards == 0 || shards > 1024 {
                return Err(bad(format!("{shards} shards is not 1 to 1024")));
            }
            let seed = os_random_seed().map_err(|source| StartError::Io {
                what: "read randomness for",
                path: path.to_owned(),
                source,
            })?;
            let cluster_id = hex::encode(&seed[..16]);
            let file = ClusterFile { cluster_id, shards, node_id: 1 };
            let tmp = path.with_extension("json.tmp");
            let io = |what| move |source| StartError::Io { what, path: path.to_owned(), source };
            let json = serde_json::to_vec_pretty(&file).expect("the cluster file serializes");
            std::fs::write(&tmp, json).map_err(io("write"))?;
            std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io("fsync"))?;
            std::fs::rename(&tmp, path).map_err(io("rename"))?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsync"))?;
            }
            Ok(file)
        }
        Err(source) => Err(StartError::Io { what: "read", path: path.to_owned(), source }),
    }
}
