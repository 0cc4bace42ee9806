//! A BlockDB node: the storage engine, the node's key, and one Raft group per shard, with the
//! operations the APIs expose. The REST and gRPC layers are adapters over [`Node`].
//!
//! Every node hosts every shard. Writes go to the shard's leader: through the local proposer
//! when this node leads, otherwise forwarded over the peer network to the leader, which
//! proposes them and answers with the outcome ([`cluster`]). A write returns once its entry is
//! fsynced on a majority of the shard's voters and applied. Reads pick a [`ShardView`] — after a
//! linearizable read barrier by default (on a follower: the leader's read index, then a wait
//! until this replica has applied that far) — and answer from it with proofs against its signed
//! checkpoint.
//!
//! A cluster is created in one of three ways, recorded in the data directory's `cluster.json`
//! the first time the node starts:
//! - alone (no `initial_members`, no `join`): a random cluster id, this node the only member;
//! - bootstrapped (`initial_members`, the same list on every node): the cluster id is derived
//!   from the list, the shard count and the cluster token, so every node computes the same id
//!   without talking, and a node given a different list finds a different id and is refused
//!   by its peers; every node proposes the same initial membership, which is safe;
//! - joined (`join`: the peer address of a member): the node asks the member for the cluster's
//!   identity and waits, uninitialized, until the cluster adds it ([`Node::add_member`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use openraft::{BasicNode, Config, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tokio::sync::{mpsc, oneshot, watch};

use blockdb_verifier::{ShardId, VerifierKey};

use crate::error::{ErrorCode, RequestError};
use crate::ledger::node_key::os_random_seed;
use crate::ledger::{Command, NodeKey, ShardView};
use crate::raft::log_store::LogStore;
use crate::raft::network::{Peers, ShardNetwork};
use crate::raft::state_machine::StateMachine;
use crate::raft::{NodeId, Raft};
use crate::storage::{Engine, Options};

pub mod cluster;
pub mod peer_service;
pub mod proposer;
mod read_barrier;
pub mod status;

pub use proposer::{Applied, WriteResult};
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
    /// This node's id in its cluster (not 0).
    pub node_id: NodeId,
    /// The address the other nodes reach this node's peer service at (`host:port`); `None`
    /// for a node without one, which can only ever be a cluster of one.
    pub peer_addr: Option<String>,
    /// The client address (REST and gRPC) this node reports in the cluster status.
    pub api_addr: Option<String>,
    /// The local address this node's connections to its peers come from (any if `None`); a
    /// fault-injecting proxy between the nodes tells them apart by it.
    pub peer_source_ip: Option<std::net::IpAddr>,
    /// The members of a new cluster, by node id: peer addresses, this node among them. Empty
    /// for a node alone or joining. Used only when the data directory is new.
    pub initial_members: BTreeMap<NodeId, String>,
    /// A member's peer address, for a node joining an existing cluster. Used only when the data
    /// directory is new.
    pub join: Option<String>,
    /// Mixed into the id of a bootstrapped cluster, so that two clusters created from the same
    /// member list (say, one torn down and made again) have different ids.
    pub cluster_token: String,
    /// Raft timing and snapshot settings.
    pub raft: RaftSettings,
    /// **Breaks linearizability on purpose**: followers answer linearizable reads from their own
    /// state without the leader's read index. Only for checking that the chaos harness catches
    /// it; never set otherwise.
    pub unsafe_follower_reads: bool,
    /// Added to this node's clock where it reads the time (commit times, when it leads a
    /// shard). A test setting: nothing safety-related may depend on clocks, and the chaos
    /// harness checks that with skewed nodes.
    pub clock_skew_ms: i64,
    /// How long a transaction may take: its locks' waits, its steps, and how long a prepared
    /// participant or an undecided record waits before recovery aborts or resolves it.
    pub txn_timeout_ms: u64,
    /// A test setting: exit abruptly at this step of two-phase commit when coordinating.
    pub txn_crash_at: Option<TxnCrashPoint>,
    /// Breaks transactions on purpose, for the chaos harness's self-test: their checks (expected
    /// versions, versions read) are dropped before they reach the Raft log.
    pub unsafe_txn_skip_checks: bool,
}

/// A step of two-phase commit at which `--txn-crash-at` makes the coordinator's node exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TxnCrashPoint {
    /// The record is created; no participant was asked to prepare.
    AfterBegin,
    /// The first participant voted yes; others may be preparing.
    AfterFirstPrepare,
    /// The commit is recorded; no participant has heard of it.
    AfterDecide,
}

/// Raft timing and snapshot settings of every shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftSettings {
    /// How often a leader sends heartbeats, in milliseconds.
    pub heartbeat_ms: u64,
    /// The shortest election timeout, in milliseconds; the longest is 1.5 times this. A follower
    /// that knows a leader waits out the leader's lease (the longest timeout) and then a random
    /// timeout before it starts an election, so a dead leader is replaced 2.5 to 3 times this
    /// after its last heartbeat.
    pub election_timeout_ms: u64,
    /// Applied entries after which a shard takes a snapshot and purges its log behind it.
    pub snapshot_entries: u64,
}

impl Default for RaftSettings {
    fn default() -> RaftSettings {
        RaftSettings { heartbeat_ms: 100, election_timeout_ms: 250, snapshot_entries: 20_000 }
    }
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
            node_id: 1,
            peer_addr: None,
            api_addr: None,
            peer_source_ip: None,
            initial_members: BTreeMap::new(),
            join: None,
            cluster_token: DEFAULT_CLUSTER_TOKEN.into(),
            raft: RaftSettings::default(),
            unsafe_follower_reads: false,
            clock_skew_ms: 0,
            txn_timeout_ms: 10_000,
            txn_crash_at: None,
            unsafe_txn_skip_checks: false,
        }
    }
}

/// The cluster token of a bootstrapped cluster unless one is given.
pub const DEFAULT_CLUSTER_TOKEN: &str = "blockdb";

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
    /// The configuration cannot make a cluster (a member list without this node, ...).
    #[error("{0}")]
    Config(String),
    /// The cluster to join could not be asked for its identity.
    #[error("cannot join through {addr}: {reason}")]
    Join {
        /// The member's peer address.
        addr: String,
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
    corruption: Arc<OnceLock<String>>,
    contact: LeaderContact,
    /// Read barriers shared by the linearizable reads that wait at once.
    reads: Arc<read_barrier::ReadBarrier>,
}

/// What a follower last heard from its leader: when, and the leader's commit index then.
#[derive(Debug, Default)]
struct LeaderContact {
    /// Milliseconds since the node started, plus 1; 0: never.
    at_ms: AtomicU64,
    /// The leader's commit index plus 1; 0: none.
    leader_commit: AtomicU64,
}

/// A running node.
pub struct Node {
    engine: Arc<Engine>,
    key: Arc<NodeKey>,
    cluster: ClusterFile,
    cluster_origin: String,
    shards: Vec<ShardHandle>,
    config: NodeConfig,
    peers: Peers,
    started: Instant,
    locks: crate::txn::locks::LockManager,
    detector: crate::txn::locks::Detector,
    sessions: crate::txn::session::Sessions,
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
        check_members(&config)?;
        let cluster = load_or_create_cluster(&dir.join("cluster.json"), &config).await?;
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
        let peers = Peers::with_source_ip(
            cluster.cluster_id.clone(),
            cluster.node_id,
            config.peer_source_ip,
        );
        let mut shards = Vec::new();
        for s in 0..cluster.shards {
            let shard = ShardId(s);
            let network = ShardNetwork::new(peers.clone(), shard);
            shards
                .push(start_shard(&engine, &cluster_origin, shard, &key, &config, network).await?);
        }
        let node = Node {
            engine,
            key,
            cluster,
            cluster_origin,
            shards,
            config,
            peers,
            started: Instant::now(),
            locks: crate::txn::locks::LockManager::new(),
            detector: crate::txn::locks::Detector::new(),
            sessions: crate::txn::session::Sessions::new(),
        };
        node.initialize().await?;
        Ok(node)
    }

    /// Proposes the first membership of every shard that has none: this node alone, or the
    /// initial members. A joining node proposes nothing; the cluster adds it.
    async fn initialize(&self) -> Result<(), StartError> {
        let me = self.cluster.node_id;
        let members: BTreeMap<NodeId, BasicNode> = if self.config.join.is_some() {
            return Ok(());
        } else if self.config.initial_members.is_empty() {
            let addr = self.config.peer_addr.clone().unwrap_or_default();
            BTreeMap::from([(me, BasicNode::new(addr))])
        } else {
            self.config
                .initial_members
                .iter()
                .map(|(&id, addr)| (id, BasicNode::new(addr.clone())))
                .collect()
        };
        for (s, h) in self.shards.iter().enumerate() {
            let raft_err = |reason: String| StartError::Raft { shard: s as u32, reason };
            if !h.raft.is_initialized().await.map_err(|e| raft_err(e.to_string()))? {
                match h.raft.initialize(members.clone()).await {
                    Ok(()) => {}
                    // Another node's initial membership reached this one first: the same one.
                    Err(openraft::error::RaftError::APIError(
                        openraft::error::InitializeError::NotAllowed(_),
                    )) => {}
                    Err(e) => return Err(raft_err(e.to_string())),
                }
            }
            if members.len() == 1 && members.contains_key(&me) {
                h.raft
                    .wait(Some(Duration::from_secs(30)))
                    .current_leader(me, "this node leads its one-member group")
                    .await
                    .map_err(|e| raft_err(format!("no leader: {e}")))?;
            }
        }
        Ok(())
    }

    /// The lock manager of the shards this node leads.
    pub fn locks(&self) -> &crate::txn::locks::LockManager {
        &self.locks
    }

    /// The cluster's deadlock detector, used while this node leads shard 0.
    pub fn detector(&self) -> &crate::txn::locks::Detector {
        &self.detector
    }

    /// The interactive transactions this node coordinates.
    pub fn sessions(&self) -> &crate::txn::session::Sessions {
        &self.sessions
    }

    /// How long a transaction may take ([`NodeConfig::txn_timeout_ms`]).
    pub fn txn_timeout(&self) -> Duration {
        Duration::from_millis(self.config.txn_timeout_ms)
    }

    /// This node's time for transaction timeouts: its clock with the test skew.
    pub fn now_ms(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        now.saturating_add_signed(self.config.clock_skew_ms)
    }

    /// The views of `shard` as they are published.
    ///
    /// # Errors
    /// `not_found` for an unknown shard.
    pub fn views(&self, shard: ShardId) -> Result<watch::Receiver<Arc<ShardView>>, RequestError> {
        Ok(self.handle(shard)?.views.clone())
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cluster.node_id
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster.cluster_id
    }

    /// The connections to the other nodes.
    pub fn peers(&self) -> &Peers {
        &self.peers
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

    /// Refuses requests for a shard whose replica on this node diverged.
    fn healthy(&self, shard: ShardId) -> Result<&ShardHandle, RequestError> {
        let h = self.handle(shard)?;
        match h.corruption.get() {
            None => Ok(h),
            Some(reason) => Err(RequestError::new(
                ErrorCode::Internal,
                format!("this node stopped serving shard {}: {reason}", shard.0),
            )),
        }
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
        if value.is_some() && blockdb_verifier::txn::is_reserved_key(key) {
            return Err(RequestError::new(
                ErrorCode::InvalidArgument,
                "keys starting with \\0blockdb/ are reserved for the system (transaction decision \
                 records); they can be read but not written",
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
            Command::Txn(_) => {
                return Err(RequestError::new(
                    ErrorCode::InvalidArgument,
                    "a transaction step is not a single write",
                ));
            }
        };
        let shard = self.shard_of(key);
        self.healthy(shard)?;
        let deadline = Instant::now() + Duration::from_millis(self.config.write_timeout_ms);
        cluster::route_write(self, shard, command, deadline).await
    }

    /// Proposes `command` through this node's proposer of `shard`, which must lead it; a
    /// `not_leader` answer means the command was not proposed.
    ///
    /// # Errors
    /// As [`Node::append`].
    pub async fn write_local(
        &self,
        shard: ShardId,
        command: Command,
        deadline: Instant,
    ) -> Result<WriteResult, RequestError> {
        let insert = matches!(command, Command::Insert { .. });
        let applied = self.propose_local(shard, command, deadline).await?;
        WriteResult::from_applied(applied, insert)
    }

    /// Proposes `command` through this node's proposer of `shard`, which must lead it, and
    /// returns its applied outcome; a `not_leader` answer means the command was not proposed.
    ///
    /// # Errors
    /// `not_leader`, `unavailable`, `timeout` (outcome unknown).
    pub async fn propose_local(
        &self,
        shard: ShardId,
        command: Command,
        deadline: Instant,
    ) -> Result<Applied, RequestError> {
        let handle = self.healthy(shard)?;
        let (reply, rx) = oneshot::channel();
        handle.queue.try_send(Pending { command, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                RequestError::new(ErrorCode::Unavailable, "too many writes are queued; retry")
            }
            mpsc::error::TrySendError::Closed(_) => {
                RequestError::new(ErrorCode::Unavailable, "the node is shutting down")
            }
        })?;
        match tokio::time::timeout_at(deadline.into(), rx).await {
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
        let handle = self.healthy(shard)?;
        if consistency == Consistency::Linearizable {
            let deadline = Instant::now() + Duration::from_millis(self.config.write_timeout_ms);
            let wanted = cluster::read_index(self, shard, deadline).await?;
            let mut views = handle.views.clone();
            // On the leader, ensure_linearizable waited for the apply, and the view is published
            // in the same apply call; a follower may still be applying.
            tokio::time::timeout_at(
                deadline.into(),
                views.wait_for(|v| v.applied_index() >= wanted),
            )
            .await
            .map_err(|_| {
                RequestError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "this replica of shard {} did not apply up to the read index \
                             {wanted} in time",
                        shard.0
                    ),
                )
            })?
            .map_err(|_| RequestError::new(ErrorCode::Unavailable, "the shard stopped"))?;
        }
        Ok(Arc::clone(&handle.views.borrow()))
    }

    /// The read index of `shard` if this node leads it: its commit index once a majority
    /// confirmed its leadership, in a round that began after this call (shared with the other
    /// reads waiting for one; see `read_barrier`).
    ///
    /// # Errors
    /// `not_leader` when it does not lead; `unavailable`.
    pub async fn leader_read_index(&self, shard: ShardId) -> Result<u64, RequestError> {
        let handle = self.healthy(shard)?;
        let round_timeout = Duration::from_millis(self.config.write_timeout_ms);
        handle.reads.read_index(&handle.raft, shard.0, round_timeout).await
    }

    /// Read barrier rounds this node ran as `shard`'s leader, and the linearizable reads they
    /// answered (many reads share a round when they arrive together).
    pub fn read_barrier_counts(&self, shard: ShardId) -> Option<(u64, u64)> {
        self.shards.get(shard.0 as usize).map(|h| h.reads.counts())
    }

    /// How far this replica of `shard` may be behind: for stale reads.
    ///
    /// # Errors
    /// `not_found` for an unknown shard.
    pub fn staleness(&self, shard: ShardId) -> Result<Staleness, RequestError> {
        let h = self.handle(shard)?;
        let m = h.raft.metrics().borrow().clone();
        let applied = m.last_applied.map_or(0, |l| l.index);
        if m.current_leader == Some(self.id()) {
            return Ok(Staleness {
                applied_index: applied,
                behind: 0,
                millis_since_leader: Some(0),
            });
        }
        let (at, commit) = self.leader_contact(h);
        Ok(Staleness {
            applied_index: applied,
            behind: commit.map_or(0, |c| c.saturating_sub(applied)),
            millis_since_leader: at,
        })
    }

    fn leader_contact(&self, h: &ShardHandle) -> (Option<u64>, Option<u64>) {
        let at = h.contact.at_ms.load(Ordering::Relaxed);
        let commit = h.contact.leader_commit.load(Ordering::Relaxed);
        let now = self.started.elapsed().as_millis() as u64;
        let at = (at > 0).then(|| now.saturating_sub(at - 1));
        (at, commit.checked_sub(1))
    }

    /// Notes that `shard`'s leader was heard from, with its commit index.
    pub(crate) fn heard_from_leader(&self, shard: ShardId, leader_commit: Option<u64>) {
        if let Some(h) = self.shards.get(shard.0 as usize) {
            let now = self.started.elapsed().as_millis() as u64 + 1;
            h.contact.at_ms.store(now, Ordering::Relaxed);
            if let Some(c) = leader_commit {
                h.contact.leader_commit.fetch_max(c + 1, Ordering::Relaxed);
            }
        }
    }

    /// The Raft instance of `shard`.
    ///
    /// # Errors
    /// `not_found` for an unknown shard.
    pub fn raft(&self, shard: ShardId) -> Result<&Raft, RequestError> {
        Ok(&self.handle(shard)?.raft)
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

    /// Whether every shard has a leader, runs on this node and is not diverged: the node can
    /// take writes and reads for every shard.
    pub fn is_ready(&self) -> bool {
        self.shards.iter().all(|h| {
            let m = h.raft.metrics();
            let m = m.borrow();
            m.current_leader.is_some() && m.running_state.is_ok() && h.corruption.get().is_none()
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

/// How stale a replica's state may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staleness {
    /// The last Raft index this replica applied.
    pub applied_index: u64,
    /// Entries the leader had committed, when it last spoke, that this replica has not applied
    /// (0 on the leader).
    pub behind: u64,
    /// Milliseconds since this replica last heard from its leader (0 on the leader; `None`:
    /// never, since it started).
    pub millis_since_leader: Option<u64>,
}

async fn start_shard(
    engine: &Arc<Engine>,
    cluster_origin: &str,
    shard: ShardId,
    key: &Arc<NodeKey>,
    config: &NodeConfig,
    network: ShardNetwork,
) -> Result<ShardHandle, StartError> {
    let raft_err = |reason: String| StartError::Raft { shard: shard.0, reason };
    let settings = config.raft;
    let raft_config = Config {
        cluster_name: format!("{cluster_origin}/shard/{}", shard.0),
        heartbeat_interval: settings.heartbeat_ms,
        election_timeout_min: settings.election_timeout_ms,
        election_timeout_max: settings.election_timeout_ms * 3 / 2,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_entries),
        max_in_snapshot_log_to_keep: settings.snapshot_entries.min(1000),
        max_payload_entries: 32,
        // Replication and heartbeat calls get a deadline of this many heartbeats.
        install_snapshot_timeout: 10_000,
        ..Config::default()
    }
    .validate()
    .map_err(|e| raft_err(e.to_string()))?;
    let log_store = LogStore::new(Arc::clone(engine), shard).map_err(|source| StartError::Io {
        what: "start the raft log writer for",
        path: config.data_dir.clone(),
        source,
    })?;
    let corruption = Arc::new(OnceLock::new());
    let (sm, views) = StateMachine::open(
        Arc::clone(engine),
        cluster_origin,
        shard,
        Arc::clone(key),
        config.data_dir.join("snapshots").join(format!("shard-{}", shard.0)),
        Arc::clone(&corruption),
    )?;
    let me = network.me();
    let log_progress = log_store.progress();
    let raft = Raft::new(me, Arc::new(raft_config), network, log_store, sm)
        .await
        .map_err(|e| raft_err(e.to_string()))?;
    let (queue, rx) = mpsc::channel(8192);
    let limits = BatchLimits {
        records_max: config.batch_records_max,
        bytes_max: 4 << 20,
        clock_skew_ms: config.clock_skew_ms,
    };
    tokio::spawn(proposer::run(shard, raft.clone(), views.clone(), rx, limits, log_progress));
    Ok(ShardHandle {
        raft,
        views,
        queue,
        corruption,
        contact: LeaderContact::default(),
        reads: Arc::default(),
    })
}

/// Checks the node's id and member list before anything is created.
fn check_members(config: &NodeConfig) -> Result<(), StartError> {
    let bad = |m: String| Err(StartError::Config(m));
    if config.node_id == 0 {
        return bad("the node id must not be 0".into());
    }
    if !config.initial_members.is_empty() && config.join.is_some() {
        return bad("give either the initial members (--peers) or a member to join (--join)".into());
    }
    if let Some(addr) = &config.join
        && crate::raft::network::endpoint(addr).is_err()
    {
        return bad(format!("--join {addr:?}: a peer address is host:port"));
    }
    if config.initial_members.is_empty() {
        return Ok(());
    }
    if !config.initial_members.contains_key(&config.node_id) {
        return bad(format!(
            "this node's id {} is not in the member list (--peers names {})",
            config.node_id,
            config.initial_members.keys().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    let mut seen = BTreeSet::new();
    for (id, addr) in &config.initial_members {
        if *id == 0 {
            return bad("node id 0 in the member list; ids start at 1".into());
        }
        if crate::raft::network::endpoint(addr).is_err() {
            return bad(format!("member {id}: peer address {addr:?} is not host:port"));
        }
        if !seen.insert(addr) {
            return bad(format!("peer address {addr} appears twice in the member list"));
        }
    }
    if config.peer_addr.is_none() {
        return bad("a node of a cluster needs a peer address (--peer-listen)".into());
    }
    Ok(())
}

/// The id of a bootstrapped cluster: the same on every node given the same members, shard
/// count and token.
pub fn derived_cluster_id(members: &BTreeMap<NodeId, String>, shards: u32, token: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(format!("blockdb-cluster/v1\n{token}\n{shards}\n"));
    for (id, addr) in members {
        h.update(format!("{id}={addr}\n"));
    }
    hex::encode(&h.finalize()[..16])
}

async fn load_or_create_cluster(
    path: &Path,
    config: &NodeConfig,
) -> Result<ClusterFile, StartError> {
    let asked = config.shards;
    let bad = |reason: String| StartError::Cluster { path: path.to_owned(), reason };
    match std::fs::read(path) {
        Ok(bytes) => {
            let file: ClusterFile =
                serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
            if file.shards == 0 || file.shards > 1024 {
                return Err(bad(format!("{} shards is not 1 to 1024", file.shards)));
            }
            if file.node_id != config.node_id {
                return Err(bad(format!(
                    "this data directory belongs to node {}, not node {}",
                    file.node_id, config.node_id
                )));
            }
            if let Some(addr) = &config.join {
                // Restarted with --join: the member it names must be of this node's cluster. A
                // member that does not answer proves nothing either way; the node starts.
                match cluster::identity_of(addr).await {
                    Ok(identity) if identity.cluster_id != file.cluster_id => {
                        return Err(bad(format!(
                            "this data directory belongs to cluster {}, but the member at {addr} \
                             is of cluster {}",
                            file.cluster_id, identity.cluster_id
                        )));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(addr, error = e, "cannot check the cluster to join"),
                }
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
            let (cluster_id, shards) = if let Some(addr) = &config.join {
                let identity = cluster::identity_of(addr)
                    .await
                    .map_err(|reason| StartError::Join { addr: addr.clone(), reason })?;
                if let Some(n) = asked.filter(|&n| n != identity.shards) {
                    return Err(StartError::Config(format!(
                        "--shards {n}, but the cluster at {addr} has {} shards",
                        identity.shards
                    )));
                }
                (identity.cluster_id, identity.shards)
            } else {
                let shards = asked.unwrap_or(1);
                if shards == 0 || shards > 1024 {
                    return Err(bad(format!("{shards} shards is not 1 to 1024")));
                }
                let id = if config.initial_members.is_empty() {
                    let seed = os_random_seed().map_err(|source| StartError::Io {
                        what: "read randomness for",
                        path: path.to_owned(),
                        source,
                    })?;
                    hex::encode(&seed[..16])
                } else {
                    derived_cluster_id(&config.initial_members, shards, &config.cluster_token)
                };
                (id, shards)
            };
            let file = ClusterFile { cluster_id, shards, node_id: config.node_id };
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
