//! Real BlockDB nodes served in-process on loopback ports, for the client's tests: one node
//! alone, or the nodes of a cluster.
#![allow(dead_code, reason = "each test file uses a different part of this module")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blockdb_client::{
    Client, ClientConfig, ClusterAdmin, ClusterStatus, MemoryStore, Role, ShardStatus, TrustStore,
};
use blockdb_server::config::{LogFormat, ServeConfig};
use blockdb_server::node::NodeConfig;
use blockdb_server::storage::Options;
use blockdb_verifier::{ShardId, TrustPolicy, VerifierKey};
use tokio::sync::oneshot;

#[derive(Debug)]
pub struct Served {
    pub addr: SocketAddr,
    pub key: VerifierKey,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Served {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn policy(&self) -> TrustPolicy {
        TrustPolicy::new(vec![self.key.clone()], 1).expect("policy")
    }

    pub async fn client(&self) -> Client {
        self.client_with(Arc::new(MemoryStore::default())).await
    }

    pub async fn client_with(&self, store: Arc<dyn TrustStore>) -> Client {
        let config = ClientConfig::new(vec![self.url()], self.policy());
        Client::connect(config, store).await.expect("connect")
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

/// Starts a node with `shards` shards in a temporary directory, with small storage-engine
/// limits (many flushes and compactions even for little data).
pub async fn must_serve(shards: u32) -> Served {
    must_serve_with(shards, Options::small_for_tests()).await
}

/// Starts a node with `shards` shards and these storage-engine options.
pub async fn must_serve_with(shards: u32, storage: Options) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = NodeConfig::new(dir.path());
    node.shards = Some(shards);
    node.storage = storage;
    let config = ServeConfig {
        node,
        listen: ([127, 0, 0, 1], 0).into(),
        peer_listen: None,
        log_format: LogFormat::Text,
        log_level: "warn".into(),
    };
    must_start(config, dir).await
}

/// Serves `config` (whose data directory is in `dir`) and waits until it listens.
async fn must_start(config: ServeConfig, dir: tempfile::TempDir) -> Served {
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let on_ready = move |addr, node: &blockdb_server::node::Node| {
            let _ = ready_tx.send((addr, node.verifier_key().clone()));
        };
        blockdb_server::serve::serve(config, on_ready, async move {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    let (addr, key) = ready_rx.await.expect("the node starts");
    Served { addr, key, dir, stop: Some(stop), task: Some(task) }
}

/// A free loopback port: bound, read and released (the OS does not hand it out again at once).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("a bound address").port()
}

/// In-process nodes of one cluster on loopback, by node id, and their peer addresses.
#[derive(Debug)]
pub struct ServedCluster {
    pub nodes: BTreeMap<u64, Served>,
    pub peers: BTreeMap<u64, String>,
    pub shards: u32,
}

/// Starts nodes `1..=n` of a new cluster with `shards` shards, each with its own temporary
/// directory, client port and peer port, all bootstrapped from the same member list. Returns
/// once every node listens; the shards elect their leaders after that (see
/// [`ServedCluster::must_converge`]).
pub async fn must_serve_cluster(n: u64, shards: u32) -> ServedCluster {
    let peers: BTreeMap<u64, String> =
        (1..=n).map(|id| (id, format!("127.0.0.1:{}", free_port()))).collect();
    // Started together: a bootstrapping node may wait for the others.
    let mut starting = Vec::new();
    for (&id, addr) in &peers {
        let (config, dir) = cluster_node_config(id, shards, addr);
        let mut config = config;
        config.node.initial_members = peers.clone();
        starting.push((id, tokio::spawn(must_start(config, dir))));
    }
    let mut nodes = BTreeMap::new();
    for (id, task) in starting {
        nodes.insert(id, task.await.expect("the node starts"));
    }
    ServedCluster { nodes, peers, shards }
}

/// The configuration of node `id` of a cluster, listening for peers at `peer_addr`, with a new
/// temporary directory; no members and nothing to join yet.
fn cluster_node_config(id: u64, shards: u32, peer_addr: &str) -> (ServeConfig, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = NodeConfig::new(dir.path());
    node.node_id = id;
    node.node_name = format!("blockdb-node-{id}");
    node.shards = Some(shards);
    node.storage = Options::small_for_tests();
    let config = ServeConfig {
        node,
        listen: ([127, 0, 0, 1], 0).into(),
        peer_listen: Some(peer_addr.parse().expect("a socket address")),
        log_format: LogFormat::Text,
        log_level: "warn".into(),
    };
    (config, dir)
}

impl ServedCluster {
    pub fn node(&self, id: u64) -> &Served {
        self.nodes.get(&id).unwrap_or_else(|| panic!("node {id} runs"))
    }

    /// Any one of the running nodes' keys (each node signs the checkpoints it serves).
    pub fn policy(&self) -> TrustPolicy {
        let keys = self.nodes.values().map(|s| s.key.clone()).collect();
        TrustPolicy::new(keys, 1).expect("policy")
    }

    /// A client of node `id` trusting every running node.
    pub async fn client(&self, id: u64) -> Client {
        let config = ClientConfig::new(vec![self.node(id).url()], self.policy());
        Client::connect(config, Arc::new(MemoryStore::default())).await.expect("connect")
    }

    /// The status and membership calls through node `id`.
    pub fn admin(&self, id: u64) -> ClusterAdmin {
        ClusterAdmin::new(&[self.node(id).url()], Duration::from_secs(10)).expect("admin")
    }

    /// Starts node `id`, joining through node 1's peer address; the cluster does not have it as
    /// a member until it is added. Returns its peer address.
    pub async fn must_join(&mut self, id: u64) -> String {
        let addr = format!("127.0.0.1:{}", free_port());
        let (mut config, dir) = cluster_node_config(id, self.shards, &addr);
        config.node.join = Some(self.peers[&1].clone());
        self.nodes.insert(id, must_start(config, dir).await);
        self.peers.insert(id, addr.clone());
        addr
    }

    /// Waits until, as node `via` reports it, the cluster is exactly `members`, every one of
    /// them answering and a voter of every shard; every shard has one leader that every
    /// member follows; and every member holds the same tree size and root of each shard.
    /// Returns that status.
    pub async fn must_converge(
        &self,
        via: u64,
        members: &[u64],
        deadline: Duration,
    ) -> ClusterStatus {
        let admin = self.admin(via);
        let until = Instant::now() + deadline;
        loop {
            let status = admin.cluster_status().await;
            let why = match &status {
                Ok(s) => not_converged(s, self.shards, members),
                Err(e) => Some(e.to_string()),
            };
            match why {
                None => return status.expect("checked"),
                Some(why) if Instant::now() >= until => {
                    panic!("the cluster did not converge in {deadline:?}: {why}\n{status:#?}")
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Stops every node.
    pub async fn stop(self) {
        for (_, node) in self.nodes {
            node.stop().await;
        }
    }
}

/// Why `s` is not yet a converged cluster of `members` (see [`ServedCluster::must_converge`]).
pub fn not_converged(s: &ClusterStatus, shards: u32, members: &[u64]) -> Option<String> {
    let listed: Vec<u64> = s.nodes.iter().map(|n| n.node_id).collect();
    if listed != members {
        return Some(format!("members {listed:?}, expected {members:?}"));
    }
    if let Some(n) = s.nodes.iter().find(|n| !n.is_reachable() || n.shards.len() != shards as usize)
    {
        return Some(format!("node {} did not report every shard: {:?}", n.node_id, n.error));
    }
    for shard in (0..shards).map(ShardId) {
        let views: Vec<&ShardStatus> =
            s.nodes.iter().map(|n| n.shard(shard).expect("every shard reported")).collect();
        let leaders: Vec<u64> = s
            .nodes
            .iter()
            .zip(&views)
            .filter(|(_, v)| v.role == Role::Leader)
            .map(|(n, _)| n.node_id)
            .collect();
        let [leader] = leaders[..] else {
            return Some(format!("shard {}: leaders {leaders:?}", shard.0));
        };
        for v in &views {
            if v.leader != Some(leader) || v.voters != members || !v.learners.is_empty() {
                return Some(format!(
                    "shard {}: a member follows {:?}, voters {:?}, learners {:?}",
                    shard.0, v.leader, v.voters, v.learners
                ));
            }
            if (v.tree_size, v.root) != (views[0].tree_size, views[0].root) {
                return Some(format!("shard {}: replicas at different trees", shard.0));
            }
        }
    }
    None
}
