//! A cluster of real `blockdb` processes on loopback, for end-to-end tests.
#![allow(dead_code, reason = "each test file uses a different part of this module")]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed step fails the test, and the panic names the line"
)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use blockdb_verifier::{TrustPolicy, VerifierKey};
use serde_json::Value;
use tempfile::TempDir;

use super::Server;

/// A loopback port nothing listens on, for a node to bind a moment later.
///
/// Taken from below the kernel's ephemeral range: a port `bind(0)` handed out is free again once
/// its listener closes, and the next outgoing connection may take it as its local port before
/// the node binds it. Below the range only explicit binds take ports, and this process never
/// hands out one twice.
pub fn free_port() -> u16 {
    use rand::Rng as _;
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let below: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut rng = rand::rng();
    for _ in 0..1_000 {
        let port = if below > 11_000 { rng.random_range(10_000..below) } else { 0 };
        if given.contains(&port) {
            continue;
        }
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            let port = l.local_addr().unwrap().port();
            given.insert(port);
            return port;
        }
    }
    panic!("no free loopback port below {below}");
}

/// Nodes of one cluster, by node id; a killed node's slot is `None` until it restarts.
pub struct Cluster {
    pub dir: TempDir,
    pub peers: BTreeMap<u64, String>,
    pub shards: u32,
    pub extra: Vec<String>,
    pub nodes: BTreeMap<u64, Option<Server>>,
}

impl Cluster {
    pub fn start(n: u64, shards: u32, extra: &[&str]) -> Cluster {
        let peers: BTreeMap<u64, String> =
            (1..=n).map(|i| (i, format!("127.0.0.1:{}", free_port()))).collect();
        let mut c = Cluster {
            dir: tempfile::tempdir().unwrap(),
            peers,
            shards,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            nodes: BTreeMap::new(),
        };
        for i in 1..=n {
            c.start_node(i);
        }
        c.wait_ready(Duration::from_secs(30));
        c
    }

    pub fn peer_list(&self) -> String {
        self.peers.iter().map(|(i, a)| format!("{i}={a}")).collect::<Vec<_>>().join(",")
    }

    pub fn start_node(&mut self, id: u64) {
        let data = self.dir.path().join(format!("node-{id}"));
        let (peers, shards) = (self.peer_list(), self.shards.to_string());
        let id_arg = id.to_string();
        let mut args = vec!["--node-id", &id_arg, "--peers", &peers, "--shards", &shards];
        args.extend(self.extra.iter().map(String::as_str));
        let server = Server::must_start(&data, &args);
        self.nodes.insert(id, Some(server));
    }

    pub fn node(&self, id: u64) -> &Server {
        self.nodes[&id].as_ref().expect("the node runs")
    }

    pub fn live(&self) -> Vec<&Server> {
        self.nodes.values().flatten().collect()
    }

    pub fn policy(&self) -> TrustPolicy {
        let keys: Vec<VerifierKey> =
            self.live().iter().map(|s| s.verifier_key.parse().unwrap()).collect();
        TrustPolicy::new(keys, 1).unwrap()
    }

    /// Every running node's own status of every shard, from `/v1/cluster` asked of `via`.
    pub fn status(&self, via: u64) -> Value {
        let (code, body) = self.node(via).get("/v1/cluster");
        assert_eq!(code, 200, "{body}");
        body
    }

    /// The leader of `shard` that every running node agrees on, waiting for one.
    pub fn leader(&self, shard: u32, deadline: Duration) -> u64 {
        let until = Instant::now() + deadline;
        loop {
            let mut seen = Vec::new();
            for s in self.live() {
                let (code, body) = s.get("/v1/cluster");
                if code != 200 {
                    continue;
                }
                let me = body["answered_by"].as_u64().unwrap();
                let mine = body["nodes"].as_array().unwrap().iter().find(|n| n["node_id"] == me);
                seen.push(mine.and_then(|n| n["shards"][shard as usize]["leader"].as_u64()));
            }
            if let Some(Some(l)) = seen.first()
                && seen.iter().all(|x| *x == Some(*l))
                && self.nodes.get(l).is_some_and(Option::is_some)
            {
                return *l;
            }
            assert!(Instant::now() < until, "no agreed leader of shard {shard}: {seen:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_ready(&self, deadline: Duration) {
        let until = Instant::now() + deadline;
        for s in self.live() {
            loop {
                if s.get("/readyz").0 == 200 {
                    break;
                }
                assert!(Instant::now() < until, "{} never became ready", s.addr);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Waits until every running node holds the same tree size and root for every shard, and
    /// returns them.
    pub fn converged(&self, deadline: Duration) -> Vec<(u64, String)> {
        let until = Instant::now() + deadline;
        loop {
            let per_node: Vec<Vec<(u64, String)>> = self
                .live()
                .iter()
                .map(|s| (0..self.shards).map(|sh| stale_checkpoint(s, sh)).collect())
                .collect();
            if per_node.windows(2).all(|w| w[0] == w[1]) {
                return per_node[0].clone();
            }
            assert!(Instant::now() < until, "replicas did not converge: {per_node:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A node's own view of a shard's checkpoint (no read barrier): (tree size, root).
pub fn stale_checkpoint(s: &Server, shard: u32) -> (u64, String) {
    let (code, body) = s.get(&format!("/v1/shards/{shard}/checkpoint?consistency=stale"));
    assert_eq!(code, 200, "{body}");
    (body["tree_size"].as_u64().unwrap(), body["root"].as_str().unwrap().to_owned())
}
