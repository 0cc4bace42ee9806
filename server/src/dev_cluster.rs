//! `blockdb dev-cluster`: a cluster of N nodes on loopback, started and stopped with one command,
//! for trying BlockDB out and for local development.
//!
//! ```text
//!  blockdb dev-cluster ──spawns──▶ blockdb serve --node-id 1 …  data DIR/node-1, stderr → DIR/node-1/blockdb.log
//!        │              ├────────▶ blockdb serve --node-id 2 …  data DIR/node-2, …
//!        │              └────────▶ blockdb serve --node-id 3 …  data DIR/node-3, …
//!        │ reads each node's `verifier key:` line, then polls its GET /readyz
//!        ▼
//!  prints one table of the nodes; waits for Ctrl-C or SIGTERM (stop every node, exit 0)
//!  a node that fails to start: show its log's tail, stop the others, exit non-zero
//!  a node that exits later (kill -9 it to try failover): say so, print the command that
//!  brings it back, keep the others running
//! ```
//!
//! Node `i` (from 1) serves clients on `base_port + 2(i-1)` and peers on the port after. Every
//! node is started with the same `--peers` list and `--shards`, so the nodes bootstrap one
//! cluster (see [`crate::node`]); each data directory records its cluster the first time, so
//! running the command again with the same flags and data directory restarts the same cluster.
//! The flags are used only when the directories are new: other ports or another node count for
//! existing directories make nodes that look for their peers at the old addresses.
//!
//! The nodes are this executable (`serve`) in their own process group, so that a Ctrl-C at the
//! terminal reaches only this process, which then stops every node with SIGTERM: one place
//! decides how the cluster stops, and a node stopping is never mistaken for a node failing. If
//! this process is killed with SIGKILL, the nodes keep running.
//!
//! Every wait is bounded: [`READY_TIMEOUT_MS`](crate::dev_cluster::READY_TIMEOUT_MS) for the
//! cluster to be ready, [`STOP_TIMEOUT_MS`](crate::dev_cluster::STOP_TIMEOUT_MS) for the nodes
//! to stop, after which they are killed.

// Over the ~500-line soft limit with its unit tests: planning the nodes, supervising their
// processes and reporting on them are one small job that reads best in one place.

use std::fmt::Write as _;
use std::future::Future;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep, timeout, timeout_at};

use crate::config::{ServeArgs, ServeConfig};
use crate::raft::NodeId;

/// How long the nodes have to start and find a leader for every shard.
pub const READY_TIMEOUT_MS: u64 = 60_000;
/// How long the nodes have to stop after SIGTERM before they are killed.
pub const STOP_TIMEOUT_MS: u64 = 15_000;
/// The most nodes a dev cluster has (node ids are one digit in the table and in directories).
pub const NODES_MAX: u32 = 9;
/// How often the nodes are checked: for readiness while starting, for an exit while running.
const POLL_MS: u64 = 100;
/// The line of `blockdb serve`'s output (main.rs) that gives the node's verifier key.
const VERIFIER_KEY_LINE: &str = "verifier key: ";
/// The line written to a node's log before each start, where a log's tail for this run begins.
const START_MARK: &str = "--- blockdb dev-cluster: starting this node\n";
/// Settings of `blockdb serve` that name one node; they are not passed on from the environment.
const NODE_ENV_VARS: [&str; 4] =
    ["BLOCKDB_CONFIG", "BLOCKDB_NODE_NAME", "BLOCKDB_PEER_LISTEN", "BLOCKDB_JOIN"];

/// Flags of `blockdb dev-cluster`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevClusterArgs {
    /// Nodes in the cluster, 1 to 9.
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// Shards of the cluster (of new data directories).
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Node i (from 1) serves clients on BASE_PORT+2(i-1) and peers on the port after that.
    #[arg(long, default_value_t = 7070)]
    pub base_port: u16,
    /// Node i keeps its data and its log (blockdb.log) in DATA_DIR/node-i.
    #[arg(long, default_value = "./blockdb-dev")]
    pub data_dir: PathBuf,
    /// Every node's log filter, as tracing's EnvFilter reads it [default: the node's].
    #[arg(long)]
    pub log_level: Option<String>,
}

/// A planned dev cluster: every node's addresses and files.
#[derive(Debug, Clone)]
pub struct DevCluster {
    /// Shards of the cluster.
    pub shards: u32,
    /// Every node's log filter, if given.
    pub log_level: Option<String>,
    /// The nodes, by id from 1.
    pub nodes: Vec<DevNode>,
}

/// One node of a dev cluster.
#[derive(Debug, Clone)]
pub struct DevNode {
    /// The node id.
    pub id: NodeId,
    /// Its client address (REST, gRPC, tlog-tiles).
    pub client_addr: SocketAddr,
    /// Its peer address.
    pub peer_addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The file its stderr (its log) is appended to.
    pub log_file: PathBuf,
}

/// Why a dev cluster did not start or stopped by itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevClusterError {
    /// The flags do not describe a usable cluster.
    #[error("{0}")]
    Invalid(String),
    /// A file, directory or port could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A node exited while the cluster was meant to run.
    #[error("node {node} exited ({status}); the end of {}:\n{tail}", log_file.display())]
    Exited {
        /// The node.
        node: NodeId,
        /// How it exited.
        status: ExitStatus,
        /// Its log.
        log_file: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// Some node was not ready in time.
    #[error("not ready after {timeout_ms} ms: {waiting}; see their logs")]
    NotReady {
        /// How long the wait was.
        timeout_ms: u64,
        /// Which nodes were not ready, and why.
        waiting: String,
    },
}

impl DevClusterArgs {
    /// The cluster these flags describe, checked as `blockdb serve` would check each node.
    ///
    /// # Errors
    /// [`DevClusterError::Invalid`] for a node count outside 1 to [`NODES_MAX`], ports past
    /// 65535, or a setting `blockdb serve` refuses.
    pub fn plan(&self) -> Result<DevCluster, DevClusterError> {
        let bad = |m: String| Err(DevClusterError::Invalid(m));
        if !(1..=NODES_MAX).contains(&self.nodes) {
            return bad(format!("--nodes must be 1 to {NODES_MAX}, not {}", self.nodes));
        }
        let last_port = u32::from(self.base_port) + 2 * self.nodes - 1;
        if self.base_port == 0 || last_port > u32::from(u16::MAX) {
            return bad(format!(
                "--base-port {} with {} nodes needs ports {}..={last_port}; they must be 1 to \
                 65535",
                self.base_port, self.nodes, self.base_port
            ));
        }
        let loopback = |offset: u32| {
            // Fits: checked against u16::MAX above.
            let port = u16::try_from(u32::from(self.base_port) + offset).unwrap_or(u16::MAX);
            SocketAddr::from((Ipv4Addr::LOCALHOST, port))
        };
        let nodes: Vec<DevNode> = (1..=self.nodes)
            .map(|i| {
                let data_dir = self.data_dir.join(format!("node-{i}"));
                DevNode {
                    id: NodeId::from(i),
                    client_addr: loopback(2 * (i - 1)),
                    peer_addr: loopback(2 * (i - 1) + 1),
                    log_file: data_dir.join("blockdb.log"),
                    data_dir,
                }
            })
            .collect();
        let cluster = DevCluster { shards: self.shards, log_level: self.log_level.clone(), nodes };
        for node in &cluster.nodes {
            ServeConfig::resolve(cluster.serve_args(node))
                .map_err(|e| DevClusterError::Invalid(e.to_string()))?;
        }
        Ok(cluster)
    }
}

impl DevCluster {
    /// The `--peers` list every node is given.
    pub fn peers(&self) -> String {
        let items: Vec<String> =
            self.nodes.iter().map(|n| format!("{}={}", n.id, n.peer_addr)).collect();
        items.join(",")
    }

    /// The settings of `node`'s `blockdb serve`.
    pub fn serve_args(&self, node: &DevNode) -> ServeArgs {
        ServeArgs {
            data_dir: Some(node.data_dir.clone()),
            listen: Some(node.client_addr),
            shards: Some(self.shards),
            log_level: self.log_level.clone(),
            node_id: Some(node.id),
            peers: Some(self.peers()),
            ..ServeArgs::default()
        }
    }

    /// Starts every node as a child process of `exe` (this program), waits until all are ready,
    /// prints a table of them, then runs until `shutdown` completes. A node that exits before
    /// the cluster is ready is an error (the others are stopped); one that exits later is
    /// reported with the command that restarts it, and the others go on. Every node still
    /// running is stopped before this returns.
    ///
    /// # Errors
    /// [`DevClusterError`] when a directory, log or port cannot be used, a node cannot be
    /// started, exits, or is not ready within [`READY_TIMEOUT_MS`].
    pub async fn run(
        &self,
        exe: &Path,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), DevClusterError> {
        let mut shutdown = std::pin::pin!(shutdown);
        // Poll the shutdown future once, so that it installs its signal handlers before any
        // node exists: a signal from now on stops the nodes rather than killing this process
        // and leaving them running.
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            () = std::future::ready(()) => {}
        }
        let mut running = Vec::with_capacity(self.nodes.len());
        let outcome = self.start_and_watch(exe, &mut running, shutdown).await;
        stop(&mut running).await;
        outcome
    }

    async fn start_and_watch(
        &self,
        exe: &Path,
        running: &mut Vec<Running>,
        mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<(), DevClusterError> {
        for node in &self.nodes {
            check_port_free(node.client_addr)?;
            check_port_free(node.peer_addr)?;
        }
        eprintln!("starting {} nodes (logs in DATA_DIR/node-ID/blockdb.log)", self.nodes.len());
        for node in &self.nodes {
            running.push(self.spawn(exe, node)?);
        }
        let keys = tokio::select! {
            keys = wait_ready(running) => keys?,
            () = &mut shutdown => return Ok(()),
        };
        print!("{}", self.table(&keys));
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = sleep(Duration::from_millis(POLL_MS)) => self.report_exits(running)?,
            }
        }
    }

    /// Reports each node that exited once the cluster was up, with the command that brings it
    /// back; the others go on, as a real cluster does when a minority fails.
    fn report_exits(&self, running: &mut [Running]) -> Result<(), DevClusterError> {
        for r in running.iter_mut().filter(|r| !r.exit_reported) {
            let status = r.child.try_wait().map_err(|source| DevClusterError::Io {
                what: format!("cannot check on node {}", r.node.id),
                source,
            })?;
            if let Some(status) = status {
                r.exit_reported = true;
                let args = self.serve_command(&r.node);
                eprintln!(
                    "node {} exited ({status}); the other nodes go on. Its log: {}\n\
                     bring it back with:\n  {} {}",
                    r.node.id,
                    r.node.log_file.display(),
                    std::env::current_exe().map_or("blockdb".into(), |p| p.display().to_string()),
                    args.join(" ")
                );
            }
        }
        Ok(())
    }

    /// The arguments of `node`'s `blockdb serve`.
    fn serve_command(&self, node: &DevNode) -> Vec<String> {
        let mut args = vec![
            "serve".to_owned(),
            "--node-id".to_owned(),
            node.id.to_string(),
            "--peers".to_owned(),
            self.peers(),
            "--listen".to_owned(),
            node.client_addr.to_string(),
            "--data-dir".to_owned(),
            node.data_dir.display().to_string(),
            "--shards".to_owned(),
            self.shards.to_string(),
        ];
        if let Some(level) = &self.log_level {
            args.extend(["--log-level".to_owned(), level.clone()]);
        }
        args
    }

    /// Starts `node` with the settings of [`DevCluster::serve_args`] as flags.
    fn spawn(&self, exe: &Path, node: &DevNode) -> Result<Running, DevClusterError> {
        let io = |what: String| move |source| DevClusterError::Io { what, source };
        let dir = &node.data_dir;
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let log_path = &node.log_file;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(io(format!("cannot open {}", log_path.display())))?;
        std::io::Write::write_all(&mut log, START_MARK.as_bytes())
            .map_err(io(format!("cannot write {}", log_path.display())))?;
        let mut command = Command::new(exe);
        command.args(self.serve_command(node));
        for var in NODE_ENV_VARS {
            command.env_remove(var);
        }
        // The log is a file: no colour codes in it.
        command.env("NO_COLOR", "1");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            // Only if this process fails before it stops the node itself.
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("cannot start node {} ({})", node.id, exe.display())))?;
        let (key_tx, key) = oneshot::channel();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(read_stdout(stdout, log_path.clone(), key_tx));
        }
        Ok(Running {
            node: node.clone(),
            child,
            key,
            verifier_key: None,
            ready: false,
            exit_reported: false,
        })
    }

    /// The table printed once the cluster is ready; `keys` are the nodes' verifier keys.
    pub fn table(&self, keys: &[String]) -> String {
        let header = ["node", "client", "peer", "verifier key", "log"];
        let rows: Vec<[String; 5]> = self
            .nodes
            .iter()
            .zip(keys)
            .map(|(n, key)| {
                [
                    n.id.to_string(),
                    format!("http://{}", n.client_addr),
                    n.peer_addr.to_string(),
                    key.clone(),
                    n.log_file.display().to_string(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[&str]| {
            let padded: Vec<String> =
                cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
            let _ = writeln!(out, "{}", padded.join("  ").trim_end());
        };
        line(&header);
        for row in &rows {
            line(&row.each_ref().map(String::as_str));
        }
        let shards = if self.shards == 1 { "shard" } else { "shards" };
        let _ = writeln!(
            out,
            "\n{} nodes, {} {shards}, every shard has a leader.",
            rows.len(),
            self.shards
        );
        if let Some(first) = self.nodes.first() {
            let url = format!("http://{}", first.client_addr);
            let _ = writeln!(out, "try:  blockctl --endpoint {url} cluster status");
            let _ = writeln!(out, "      curl {url}/v1/cluster");
        }
        let _ = writeln!(out, "Ctrl-C stops every node.");
        out
    }
}

/// A started node.
#[derive(Debug)]
struct Running {
    node: DevNode,
    child: Child,
    key: oneshot::Receiver<String>,
    verifier_key: Option<String>,
    ready: bool,
    /// Its exit is the error [`check_running`] returned.
    exit_reported: bool,
}

/// Waits until every node has printed its verifier key and answers 200 to GET /readyz; their
/// keys, in node order.
async fn wait_ready(running: &mut [Running]) -> Result<Vec<String>, DevClusterError> {
    let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
    loop {
        check_running(running)?;
        for r in running.iter_mut() {
            if r.verifier_key.is_none() {
                r.verifier_key = r.key.try_recv().ok();
            }
            // Only once the node printed its key has it bound its address: a ready answer from
            // a port before that could come from another process.
            if r.verifier_key.is_some() && !r.ready {
                r.ready = is_ready(r.node.client_addr).await;
            }
        }
        if running.iter().all(|r| r.ready) {
            return Ok(running.iter().filter_map(|r| r.verifier_key.clone()).collect());
        }
        if Instant::now() >= deadline {
            let waiting: Vec<String> = running
                .iter()
                .filter(|r| !r.ready)
                .map(|r| match r.verifier_key {
                    None => format!("node {} has not started", r.node.id),
                    Some(_) => format!("node {} has no leader for some shard", r.node.id),
                })
                .collect();
            return Err(DevClusterError::NotReady {
                timeout_ms: READY_TIMEOUT_MS,
                waiting: waiting.join(", "),
            });
        }
        sleep(Duration::from_millis(POLL_MS)).await;
    }
}

/// An error for the first node that has exited. Every exit is reaped here (or in [`stop`]), so
/// a node not seen to exit still holds its process id, and signalling it never reaches another
/// process.
fn check_running(running: &mut [Running]) -> Result<(), DevClusterError> {
    for r in running.iter_mut() {
        let status = r.child.try_wait().map_err(|source| DevClusterError::Io {
            what: format!("cannot check on node {}", r.node.id),
            source,
        })?;
        if let Some(status) = status {
            r.exit_reported = true;
            return Err(DevClusterError::Exited {
                node: r.node.id,
                status,
                log_file: r.node.log_file.clone(),
                tail: log_tail(&r.node.log_file),
            });
        }
    }
    Ok(())
}

/// Sends SIGTERM to every node still running, waits for them up to [`STOP_TIMEOUT_MS`], then
/// kills those left. Problems are reported on stderr: the nodes are going away either way.
async fn stop(running: &mut [Running]) {
    if running.is_empty() {
        return;
    }
    let live = running.iter().filter(|r| !r.exit_reported).count();
    eprintln!("stopping {live} nodes");
    for r in running.iter_mut() {
        // `id` is `None` once the exit has been reaped: that node needs no signal.
        let pid = r.child.id().and_then(|id| i32::try_from(id).ok());
        if let Some(pid) = pid {
            let sent = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            if let Err(e) = sent {
                eprintln!("cannot send SIGTERM to node {} (pid {pid}): {e}", r.node.id);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_millis(STOP_TIMEOUT_MS);
    for r in running.iter_mut() {
        let id = r.node.id;
        match timeout_at(deadline, r.child.wait()).await {
            Ok(Ok(status)) if status.success() || r.exit_reported => {}
            Ok(Ok(status)) => {
                eprintln!("node {id} exited ({status}); see {}", r.node.log_file.display())
            }
            Ok(Err(e)) => eprintln!("cannot wait for node {id}: {e}"),
            Err(_) => {
                eprintln!("node {id} did not stop within {STOP_TIMEOUT_MS} ms; killing it");
                if let Err(e) = r.child.kill().await {
                    eprintln!("cannot kill node {id}: {e}");
                }
            }
        }
    }
    eprintln!("stopped");
}

/// Reads a node's stdout to its end, copying it to the node's log and sending the verifier key
/// it prints. Reading to the end matters: a node whose stdout is closed fails when it prints.
async fn read_stdout(stdout: ChildStdout, log_file: PathBuf, key_tx: oneshot::Sender<String>) {
    let mut key_tx = Some(key_tx);
    // The copy is for whoever reads the log later; without it the node still runs.
    let mut log = tokio::fs::OpenOptions::new().append(true).open(&log_file).await.ok();
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(key) = line.strip_prefix(VERIFIER_KEY_LINE)
            && let Some(tx) = key_tx.take()
        {
            // The receiver is gone only when the dev cluster is stopping.
            let _ = tx.send(key.trim().to_owned());
        }
        if let Some(f) = &mut log
            && f.write_all(format!("{line}\n").as_bytes()).await.is_err()
        {
            log = None;
        }
    }
}

/// Whether `addr` answers GET /readyz with 200, asked in plain HTTP/1.1 within a second.
async fn is_ready(addr: SocketAddr) -> bool {
    let ask = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.take(4096).read_to_end(&mut answer).await?;
        Ok::<bool, std::io::Error>(answer.starts_with(b"HTTP/1.1 200 "))
    };
    matches!(timeout(Duration::from_secs(1), ask).await, Ok(Ok(true)))
}

/// An error if `addr` cannot be bound now: better said before any node starts than found in a
/// node's log.
fn check_port_free(addr: SocketAddr) -> Result<(), DevClusterError> {
    std::net::TcpListener::bind(addr).map(drop).map_err(|source| DevClusterError::Io {
        what: format!("address {addr} is not free (another dev cluster?)"),
        source,
    })
}

/// The last lines of a log since the node last started, indented, for an error message.
fn log_tail(path: &Path) -> String {
    const TAIL_BYTES: u64 = 4096;
    const TAIL_LINES: usize = 20;
    let read = || -> std::io::Result<Vec<u8>> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
        let mut bytes = Vec::new();
        file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    match read() {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let text = text.rsplit_once(START_MARK).map_or(&*text, |(_, run)| run);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
            tail.iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
        }
        Err(e) => format!("  (cannot read it: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(nodes: u32, base_port: u16) -> DevClusterArgs {
        DevClusterArgs { nodes, shards: 2, base_port, data_dir: "dev".into(), log_level: None }
    }

    #[test]
    fn node_i_gets_two_consecutive_ports_and_its_own_directory() {
        let c = args(3, 7070).plan().unwrap();
        let ports: Vec<(u64, u16, u16)> =
            c.nodes.iter().map(|n| (n.id, n.client_addr.port(), n.peer_addr.port())).collect();
        assert_eq!(ports, [(1, 7070, 7071), (2, 7072, 7073), (3, 7074, 7075)]);
        assert_eq!(c.peers(), "1=127.0.0.1:7071,2=127.0.0.1:7073,3=127.0.0.1:7075");
        assert_eq!(c.nodes[1].data_dir, Path::new("dev/node-2"));
        assert_eq!(c.nodes[1].log_file, Path::new("dev/node-2/blockdb.log"));
        // The last port may be 65535 itself.
        assert_eq!(args(9, 65535 - 17).plan().unwrap().nodes[8].peer_addr.port(), 65535);
    }

    #[test]
    fn misconfigurations_say_what_is_wrong() {
        for (a, says) in [
            (args(0, 7070), "--nodes must be 1 to 9, not 0"),
            (args(10, 7070), "--nodes must be 1 to 9, not 10"),
            (args(9, 65535 - 16), "needs ports 65519..=65536"),
            (args(1, 0), "must be 1 to 65535"),
            (DevClusterArgs { shards: 0, ..args(3, 7070) }, "shards must be 1 to 1024, not 0"),
        ] {
            let e = a.plan().unwrap_err();
            assert!(matches!(e, DevClusterError::Invalid(_)), "{e:?}");
            assert!(e.to_string().contains(says), "{a:?}: {e}");
        }
    }

    #[test]
    fn the_table_lists_every_node_with_its_key_and_log() {
        let c = args(2, 7070).plan().unwrap();
        let table = c.table(&["key-1".into(), "key-2".into()]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "node  client                 peer            verifier key  log");
        assert_eq!(
            lines[1],
            "1     http://127.0.0.1:7070  127.0.0.1:7071  key-1         dev/node-1/blockdb.log"
        );
        assert!(table.contains("blockctl --endpoint http://127.0.0.1:7070 cluster status"));
        assert!(table.contains("curl http://127.0.0.1:7070/v1/cluster"));
    }
}
