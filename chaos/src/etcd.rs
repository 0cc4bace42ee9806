//! etcd on loopback, for the benchmarks: one node or a cluster of real `etcd` processes (Debian's
//! `etcd-server`), each with its own data directory and log, with etcd's defaults — among them
//! an fsync of its WAL before every acknowledged write, as BlockDB's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::cluster::ClusterError;

/// Running etcd processes.
#[derive(Debug)]
pub struct Etcd {
    children: Vec<Child>,
    endpoints: Vec<String>,
    logs: Vec<PathBuf>,
}

fn free_addr() -> Result<SocketAddr, ClusterError> {
    Ok(SocketAddr::from(([127, 0, 0, 1], crate::cluster::free_port()?)))
}

impl Etcd {
    /// Starts `nodes` etcd members from `binary` under `dir` and waits until the cluster
    /// answers a write.
    ///
    /// # Errors
    /// [`ClusterError`] when a process cannot start or the cluster is not ready in 60 s.
    pub async fn start(binary: &Path, nodes: u64, dir: &Path) -> Result<Etcd, ClusterError> {
        if !(1..=9).contains(&nodes) {
            return Err(ClusterError::Invalid(format!("{nodes} etcd nodes: 1 to 9 are possible")));
        }
        let mut addrs = Vec::new();
        for _ in 0..nodes {
            addrs.push((free_addr()?, free_addr()?));
        }
        let initial: Vec<String> =
            addrs.iter().enumerate().map(|(i, (_, peer))| format!("e{i}=http://{peer}")).collect();
        let io = |what: String| move |source| ClusterError::Io { what, source };
        let mut etcd = Etcd { children: Vec::new(), endpoints: Vec::new(), logs: Vec::new() };
        for (i, (client, peer)) in addrs.iter().enumerate() {
            let data = dir.join(format!("etcd-{i}"));
            std::fs::create_dir_all(&data).map_err(io(format!("create {}", data.display())))?;
            let log_path = dir.join(format!("etcd-{i}.log"));
            let log = std::fs::File::create(&log_path)
                .map_err(io(format!("create {}", log_path.display())))?;
            let child = Command::new(binary)
                .arg("--name")
                .arg(format!("e{i}"))
                .arg("--data-dir")
                .arg(&data)
                .arg(format!("--listen-client-urls=http://{client}"))
                .arg(format!("--advertise-client-urls=http://{client}"))
                .arg(format!("--listen-peer-urls=http://{peer}"))
                .arg(format!("--initial-advertise-peer-urls=http://{peer}"))
                .arg(format!("--initial-cluster={}", initial.join(",")))
                .args(["--initial-cluster-state=new", "--initial-cluster-token=blockdb-bench"])
                .arg("--log-level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .map_err(io(format!("start etcd ({})", binary.display())))?;
            etcd.children.push(child);
            etcd.endpoints.push(format!("http://{client}"));
            etcd.logs.push(log_path);
        }
        etcd.wait_ready(Duration::from_secs(60)).await?;
        Ok(etcd)
    }

    async fn wait_ready(&mut self, within: Duration) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            for (i, child) in self.children.iter_mut().enumerate() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(&self.logs[i]).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(3).collect();
                    return Err(ClusterError::Invalid(format!(
                        "etcd member {i} exited ({status}): {}",
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    )));
                }
            }
            let attempt = async {
                let mut c = etcd_client::Client::connect(&self.endpoints, None).await?;
                c.put("blockdb-bench-ready", "1", None).await
            };
            let last = match tokio::time::timeout(Duration::from_secs(3), attempt).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "a write did not finish within 3 s".into(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::NotReady(within, last));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The members' client URLs.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Stops every member with SIGTERM, waiting up to 10 s each.
    pub async fn stop(&mut self) {
        for mut child in self.children.drain(..) {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }
}
