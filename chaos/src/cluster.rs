//! Cluster control: N real `blockdb` processes on loopback, each with its own data directory and
//! log, their peer traffic through the harness's fault-injecting proxies ([`crate::proxy`]).
//!
//! Node `i` listens for clients on its API address, for peers on a private address that only
//! its proxy dials, and connects to its peers from `127.0.0.<10+i>`. The cluster's member list
//! names the proxies, so every message between two nodes crosses the proxy in front of its
//! receiver, which knows the sender by its source address.
//!
//! Process faults: [`Cluster::kill`] (SIGKILL), [`Cluster::restart`] (with the node's data),
//! [`Cluster::pause`] and [`Cluster::resume`] (SIGSTOP, SIGCONT). Disk faults:
//! [`Cluster::corrupt`] damages a stopped node's storage, and [`Cluster::replace`] does what an
//! operator does about it (remove the node, empty its data directory, let it join again and
//! catch up from its peers). Every node's stderr goes to
//! `node-<i>/blockdb.log`; [`Cluster::log_tail`] shows its end when something fails.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use blockdb_client::ClusterAdmin;
use tokio::process::{Child, Command};

use crate::proxy::{Links, NodeId, Proxy, source_ip};

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Number of nodes (1 to 9).
    pub nodes: u64,
    /// Number of shards.
    pub shards: u32,
    /// The `blockdb` binary.
    pub binary: PathBuf,
    /// Where the nodes' data directories and logs go.
    pub dir: PathBuf,
    /// More `blockdb serve` flags for every node.
    pub extra_args: Vec<String>,
    /// More flags for some nodes only.
    pub node_args: BTreeMap<NodeId, Vec<String>>,
    /// Peer links without the harness's proxies (the member list names the nodes' own peer
    /// addresses): no network faults, no proxy on the path, as benchmarks want.
    pub direct: bool,
}

/// Why the cluster could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// An I/O error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The cluster did not become ready.
    #[error("the cluster was not ready within {0:?}: {1}")]
    NotReady(Duration, String),
    /// A bad request of the harness.
    #[error("{0}")]
    Invalid(String),
}

struct NodeProc {
    child: Option<Child>,
    api: SocketAddr,
    peer: SocketAddr,
    data_dir: PathBuf,
    log: PathBuf,
}

/// A running cluster.
pub struct Cluster {
    spec: ClusterSpec,
    nodes: BTreeMap<NodeId, NodeProc>,
    members: BTreeMap<NodeId, SocketAddr>,
    links: Links,
    /// Nodes whose storage [`Cluster::corrupt`] damaged and that were not replaced since.
    damaged: BTreeSet<NodeId>,
    _proxies: Vec<Proxy>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("spec", &self.spec).finish_non_exhaustive()
    }
}

/// A loopback port that nothing listens on, for a node to bind a moment later.
///
/// It comes from below the kernel's ephemeral range (`ip_local_port_range`), never from it: a
/// port the kernel hands out for `bind(0)` is free again once its listener closes, and the very
/// next outgoing connection on the machine may take it as its local port before the node binds
/// it (the node then fails to start with "address in use"). Ports below the range are taken only
/// by explicit binds, and this process never hands out the same one twice.
///
/// # Errors
/// [`ClusterError::Io`] when no port could be found.
pub fn free_port() -> Result<u16, ClusterError> {
    use rand::Rng as _;
    static GIVEN: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());
    let io = |source| ClusterError::Io { what: "find a free port".into(), source };
    let below = ephemeral_low().unwrap_or(32_768);
    let range = 10_000..below;
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if range.len() >= 1_000 {
        let mut rng = rand::rng();
        for _ in 0..1_000 {
            let port = rng.random_range(range.clone());
            if given.contains(&port) {
                continue;
            }
            if std::net::TcpListener::bind(loopback(port)).is_ok() {
                given.insert(port);
                return Ok(port);
            }
        }
    }
    // The machine leaves no room below its ephemeral range: take the kernel's choice.
    let l = std::net::TcpListener::bind(loopback(0)).map_err(io)?;
    let port = l.local_addr().map_err(io)?.port();
    given.insert(port);
    Ok(port)
}

/// The first port of the kernel's ephemeral range, where Linux says it.
fn ephemeral_low() -> Option<u16> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Cluster {
    /// Starts the proxies and the nodes and waits until every shard has a leader.
    ///
    /// # Errors
    /// [`ClusterError`].
    pub async fn start(spec: ClusterSpec) -> Result<Cluster, ClusterError> {
        if !(1..=9).contains(&spec.nodes) {
            return Err(ClusterError::Invalid(format!(
                "{} nodes: 1 to 9 are possible",
                spec.nodes
            )));
        }
        let links = Links::new();
        let mut nodes = BTreeMap::new();
        let mut members = BTreeMap::new();
        let mut proxies = Vec::new();
        for id in 1..=spec.nodes {
            let (api, peer) = (loopback(free_port()?), loopback(free_port()?));
            if spec.direct {
                members.insert(id, peer);
            } else {
                let proxy =
                    Proxy::start(loopback(0), id, peer, links.clone()).await.map_err(|source| {
                        ClusterError::Io { what: format!("start the proxy of node {id}"), source }
                    })?;
                members.insert(id, proxy.listen);
                proxies.push(proxy);
            }
            let data_dir = spec.dir.join(format!("node-{id}"));
            let log = data_dir.join("blockdb.log");
            nodes.insert(id, NodeProc { child: None, api, peer, data_dir, log });
        }
        let mut cluster =
            Cluster { spec, nodes, members, links, damaged: BTreeSet::new(), _proxies: proxies };
        for id in 1..=cluster.spec.nodes {
            cluster.spawn(id, None)?;
        }
        cluster.wait_ready(Duration::from_secs(60)).await?;
        Ok(cluster)
    }

    /// Starts node `id`: with the member list, or joining through the member at `join` (which
    /// matters only when its data directory is new).
    fn spawn(&mut self, id: NodeId, join: Option<SocketAddr>) -> Result<(), ClusterError> {
        let peers: Vec<String> = self.members.iter().map(|(i, a)| format!("{i}={a}")).collect();
        let cluster_args = match join {
            None => ["--peers".to_owned(), peers.join(",")],
            Some(addr) => ["--join".to_owned(), addr.to_string()],
        };
        let node = self
            .nodes
            .get_mut(&id)
            .ok_or_else(|| ClusterError::Invalid(format!("no node {id}")))?;
        let io = |what: String| move |source| ClusterError::Io { what, source };
        std::fs::create_dir_all(&node.data_dir)
            .map_err(io(format!("create {}", node.data_dir.display())))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(io(format!("open {}", node.log.display())))?;
        let child = Command::new(&self.spec.binary)
            .arg("serve")
            .args(["--node-id", &id.to_string()])
            .args(cluster_args)
            .args(["--peer-listen", &node.peer.to_string()])
            .args(["--peer-source-ip", &source_ip(id).to_string()])
            .args(["--listen", &node.api.to_string(), "--shards", &self.spec.shards.to_string()])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(&self.spec.extra_args)
            .args(self.spec.node_args.get(&id).into_iter().flatten())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("start node {id} ({})", self.spec.binary.display())))?;
        node.child = Some(child);
        Ok(())
    }

    /// Waits until every running node reports a leader for every shard.
    ///
    /// # Errors
    /// [`ClusterError::NotReady`] after `within`, or at once when a node has exited (with the
    /// end of its log).
    pub async fn wait_ready(&mut self, within: Duration) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + within;
        let mut last = String::from("no answer yet");
        loop {
            let mut ready = true;
            for id in self.ids() {
                if let Some(status) = self.exited(id) {
                    let log = self.log_tail(id, 5);
                    return Err(ClusterError::NotReady(
                        within,
                        format!("node {id} exited ({status}): {log}"),
                    ));
                }
                let Some(node) = self.nodes.get(&id).filter(|n| n.child.is_some()) else {
                    continue;
                };
                match ready_at(node.api).await {
                    Ok(true) => {}
                    Ok(false) => {
                        ready = false;
                        last = format!("node {id} has a shard without a leader");
                    }
                    Err(e) => {
                        ready = false;
                        last = format!("node {id}: {e}");
                    }
                }
            }
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::NotReady(within, last));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Node `id`'s client address as a URL for the client library.
    pub fn endpoint(&self, id: NodeId) -> Option<String> {
        self.nodes.get(&id).map(|n| format!("http://{}", n.api))
    }

    /// Every node's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.values().map(|n| format!("http://{}", n.api)).collect()
    }

    /// The network between the nodes.
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// Whether node `id` runs (not killed; it may be paused).
    pub fn is_running(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.child.is_some())
    }

    /// Kills node `id` with SIGKILL and reaps it.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn kill(&mut self, id: NodeId) -> Result<(), ClusterError> {
        let node = self
            .nodes
            .get_mut(&id)
            .ok_or_else(|| ClusterError::Invalid(format!("no node {id}")))?;
        if let Some(mut child) = node.child.take() {
            // A paused process dies of SIGKILL too.
            child
                .kill()
                .await
                .map_err(|source| ClusterError::Io { what: format!("kill node {id}"), source })?;
        }
        Ok(())
    }

    /// Starts node `id` again with its data directory.
    ///
    /// # Errors
    /// I/O errors.
    pub fn restart(&mut self, id: NodeId) -> Result<(), ClusterError> {
        if self.is_running(id) {
            return Ok(());
        }
        self.spawn(id, None)
    }

    /// Stops node `id` with SIGSTOP.
    ///
    /// # Errors
    /// When the signal cannot be sent.
    pub fn pause(&self, id: NodeId) -> Result<(), ClusterError> {
        self.signal(id, nix::sys::signal::Signal::SIGSTOP)
    }

    /// Resumes node `id` with SIGCONT.
    ///
    /// # Errors
    /// When the signal cannot be sent.
    pub fn resume(&self, id: NodeId) -> Result<(), ClusterError> {
        self.signal(id, nix::sys::signal::Signal::SIGCONT)
    }

    fn signal(&self, id: NodeId, signal: nix::sys::signal::Signal) -> Result<(), ClusterError> {
        let pid = self
            .nodes
            .get(&id)
            .and_then(|n| n.child.as_ref())
            .and_then(Child::id)
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| ClusterError::Invalid(format!("node {id} is not running")))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(|e| {
            ClusterError::Io { what: format!("send {signal} to node {id}"), source: e.into() }
        })
    }

    /// If node `id` has exited on its own (it refused to start, say), reaps it and returns how
    /// it ended; it then counts as not running.
    pub fn exited(&mut self, id: NodeId) -> Option<std::process::ExitStatus> {
        let node = self.nodes.get_mut(&id)?;
        let status = node.child.as_mut()?.try_wait().ok()??;
        node.child = None;
        Some(status)
    }

    /// Damages one storage file of node `id`, which must be stopped: flips one bit at a random
    /// offset of a random WAL or table file, or truncates it to a random length, and counts the
    /// node as damaged until [`Cluster::replace`] replaces it. Returns what it did.
    ///
    /// # Errors
    /// [`ClusterError`] when the node runs or has no such file.
    pub fn corrupt(
        &mut self,
        id: NodeId,
        rng: &mut impl rand::Rng,
    ) -> Result<String, ClusterError> {
        if self.is_running(id) {
            return Err(ClusterError::Invalid(format!("node {id} must be stopped first")));
        }
        let store = self
            .data_dir(id)
            .ok_or_else(|| ClusterError::Invalid(format!("no node {id}")))?
            .join("store");
        let io = |what: String| move |source| ClusterError::Io { what, source };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&store)
            .map_err(io(format!("list {}", store.display())))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "wal" || e == "sst")
                    && std::fs::metadata(p).is_ok_and(|m| m.len() > 0)
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ClusterError::Invalid(format!("node {id} has no storage file to damage")));
        }
        let file = &files[rng.random_range(0..files.len())];
        let mut bytes = std::fs::read(file).map_err(io(format!("read {}", file.display())))?;
        let name = file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let what = if rng.random_bool(0.7) {
            let at = rng.random_range(0..bytes.len());
            let bit = rng.random_range(0..8u8);
            bytes[at] ^= 1 << bit;
            format!("flipped bit {bit} of byte {at} of {} bytes in node {id}'s {name}", bytes.len())
        } else {
            let len = rng.random_range(0..bytes.len());
            let before = bytes.len();
            bytes.truncate(len);
            format!("truncated node {id}'s {name} from {before} to {len} bytes")
        };
        std::fs::write(file, &bytes).map_err(io(format!("write {}", file.display())))?;
        self.damaged.insert(id);
        Ok(what)
    }

    /// The nodes whose storage was damaged and that were not replaced since.
    pub fn damaged(&self) -> Vec<NodeId> {
        self.damaged.iter().copied().collect()
    }

    /// Replaces node `id` the way an operator replaces a node whose disk failed: stops it,
    /// removes it from every shard (through the running nodes, which must hold a majority),
    /// empties its data directory but for its signing key (so its checkpoints still verify
    /// against the keys the clients trust) and its log, starts it to join through another
    /// member, and adds it back: it catches up from its peers, from their log or a snapshot,
    /// first as a learner. Returns how long that took.
    ///
    /// # Errors
    /// [`ClusterError`] when a step fails; the node may then be left out of the membership.
    pub async fn replace(&mut self, id: NodeId) -> Result<Duration, ClusterError> {
        let started = tokio::time::Instant::now();
        let failed = |step: &str, e: &dyn std::fmt::Display| {
            ClusterError::Invalid(format!("replace node {id}: {step}: {e}"))
        };
        self.kill(id).await?;
        let others: Vec<NodeId> =
            self.ids().into_iter().filter(|&o| o != id && self.is_running(o)).collect();
        let Some(&via) = others.first() else {
            return Err(failed("no other node runs", &"nothing to join"));
        };
        let endpoints: Vec<String> = others.iter().filter_map(|&o| self.endpoint(o)).collect();
        let admin = ClusterAdmin::new(&endpoints, Duration::from_secs(10))
            .map_err(|e| failed("connect", &e))?
            .with_membership_timeout(Duration::from_secs(60));
        match admin.remove_member(id).await {
            Ok(_) => {}
            // Removed already by an earlier attempt.
            Err(e) if e.code() == Some("not_found") => {}
            Err(e) => return Err(failed("remove it from the cluster", &e)),
        }
        let dir = self.data_dir(id).map(Path::to_path_buf).unwrap_or_default();
        let io = |what: String| move |source| ClusterError::Io { what, source };
        for entry in std::fs::read_dir(&dir).map_err(io(format!("list {}", dir.display())))? {
            let path = entry.map_err(io(format!("list {}", dir.display())))?.path();
            let keep = path.file_name().is_some_and(|n| n == "node.key" || n == "blockdb.log");
            if keep {
                continue;
            }
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(io(format!("remove {}", path.display())))?;
        }
        self.spawn(id, self.members.get(&via).copied())?;
        let addr = self.members.get(&id).map(ToString::to_string).unwrap_or_default();
        // The node needs a moment to listen; until then the cluster cannot check who it is.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            match admin.add_member(id, &addr).await {
                Ok(_) => break,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(failed("add it back", &e));
                }
                Err(e) => {
                    if let Some(status) = self.exited(id) {
                        let log = self.log_tail(id, 3);
                        return Err(failed("start it", &format!("{status}: {log}")));
                    }
                    tracing::debug!(node = id, error = %e, "adding the node back; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        self.damaged.remove(&id);
        Ok(started.elapsed())
    }

    /// Node `id`'s process id, while it runs.
    pub fn pid(&self, id: NodeId) -> Option<u32> {
        self.nodes.get(&id).and_then(|n| n.child.as_ref()).and_then(Child::id)
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: NodeId) -> Option<&Path> {
        self.nodes.get(&id).map(|n| n.data_dir.as_path())
    }

    /// The last `lines` lines of node `id`'s log.
    pub fn log_tail(&self, id: NodeId, lines: usize) -> String {
        let Some(node) = self.nodes.get(&id) else { return String::new() };
        let text = std::fs::read_to_string(&node.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The leader of `shard` as the first answering node reports it.
    pub async fn leader(&self, shard: u32) -> Option<NodeId> {
        for (id, node) in &self.nodes {
            if node.child.is_none() {
                continue;
            }
            let Ok(admin) =
                ClusterAdmin::new(&[format!("http://{}", node.api)], Duration::from_secs(1))
            else {
                continue;
            };
            if let Ok(status) = admin.cluster_status().await
                && let Some(me) = status.node(*id)
                && let Some(s) = me.shards.iter().find(|s| s.shard.0 == shard)
                && let Some(l) = s.leader
            {
                return Some(l);
            }
        }
        None
    }

    /// Stops every node with SIGTERM (resuming paused ones), waiting up to 10 s each.
    pub async fn stop(&mut self) {
        for (id, node) in &mut self.nodes {
            let Some(mut child) = node.child.take() else { continue };
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                tracing::warn!(node = id, "did not stop on SIGTERM; killing it");
                let _ = child.kill().await;
            }
        }
    }
}

/// Whether the node at `api` reports every shard led (`GET /readyz` is 200).
async fn ready_at(api: SocketAddr) -> std::io::Result<bool> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(api))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    s.write_all(
        format!("GET /readyz HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut answer))
        .await
        .map_err(|_| std::io::Error::other("no answer"))??;
    Ok(answer.starts_with(b"HTTP/1.1 200"))
}
