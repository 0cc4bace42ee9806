//! `blockdb dev-cluster` end to end: it starts a real three-node cluster of child processes,
//! the cluster replicates a write, SIGTERM stops every node, and a second run on the same data
//! directory restarts the same cluster.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blockdb_verifier::{ProofBundle, TrustPolicy, VerifierKey, verify_bundle};
use rand::Rng as _;
use serde_json::Value;

const NODES: u16 = 3;

/// A running `blockdb dev-cluster` and what its table said.
struct DevCluster {
    child: Child,
    base_port: u16,
    /// Each node's verifier key, by node id from 1.
    keys: Vec<String>,
}

impl DevCluster {
    /// Starts `blockdb dev-cluster` and waits for its table, checking each row.
    fn must_start(data_dir: &Path, base_port: u16) -> DevCluster {
        let mut child = Command::new(env!("CARGO_BIN_EXE_blockdb"))
            .arg("dev-cluster")
            .args(["--nodes", &NODES.to_string(), "--shards", "2"])
            .args(["--base-port", &base_port.to_string(), "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn blockdb dev-cluster");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Debug builds on a busy machine start slowly; the command's own bound is 60 s.
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut table = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.starts_with("Ctrl-C stops every node") => break,
                Ok(line) => table.push(line),
                Err(e) => {
                    let status = child.try_wait().expect("try_wait");
                    let _ = child.kill();
                    panic!("no table from dev-cluster ({e}, exit {status:?}); got {table:#?}");
                }
            }
        }
        let mut cluster = DevCluster { child, base_port, keys: Vec::new() };
        cluster.must_check_table(&table, data_dir);
        cluster
    }

    fn must_check_table(&mut self, table: &[String], data_dir: &Path) {
        assert!(table[0].starts_with("node  client"), "{table:#?}");
        let rows: Vec<Vec<&str>> = table[1..]
            .iter()
            .take_while(|l| !l.is_empty())
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows.len(), usize::from(NODES), "{table:#?}");
        for (i, row) in (1..=NODES).zip(&rows) {
            let [id, client, peer, key, log] = row[..] else { panic!("row {row:?}") };
            assert_eq!(id, i.to_string());
            assert_eq!(client, format!("http://{}", self.addr(i)));
            assert_eq!(peer, format!("127.0.0.1:{}", self.base_port + 2 * (i - 1) + 1));
            let parsed: VerifierKey = key.parse().expect("the verifier key parses");
            assert!(key.starts_with(&format!("blockdb-node-{i}+")), "{parsed:?}");
            assert_eq!(Path::new(log), data_dir.join(format!("node-{i}/blockdb.log")));
            assert!(Path::new(log).is_file(), "{log}");
            self.keys.push(key.to_owned());
        }
        let hint = format!("curl http://{}/v1/cluster", self.addr(1));
        assert!(table.iter().any(|l| l.contains(&hint)), "{table:#?}");
    }

    fn addr(&self, id: u16) -> SocketAddr {
        client_addr(self.base_port, id)
    }

    /// Sends SIGTERM and waits (20 s at most) for the exit.
    fn must_stop(mut self) -> ExitStatus {
        let status = self.terminate();
        status.expect("dev-cluster exits within 20 s of SIGTERM")
    }

    /// Sends SIGTERM and waits for the exit, 20 s at most.
    fn terminate(&mut self) -> Option<ExitStatus> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        // Only after a failed assertion. SIGTERM, not SIGKILL: the nodes run in their own
        // process group and only the command can stop them.
        if self.child.try_wait().ok().flatten().is_none() && self.terminate().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Node `id`'s client address in a dev cluster from `base_port`.
fn client_addr(base_port: u16, id: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], base_port + 2 * (id - 1)))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn must_get(agent: &ureq::Agent, url: &str) -> (u16, Value) {
    let mut r = agent.get(url).call().expect("GET");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A base port whose `2 * NODES` consecutive ports are free now.
fn must_pick_base_port() -> u16 {
    let mut rng = rand::rng();
    for _ in 0..100 {
        let base: u16 = rng.random_range(20_000..60_000);
        let free = (0..2 * NODES).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no run of {} free ports found", 2 * NODES);
}

/// The process id of the `blockdb serve` whose data directory is `dir`.
fn node_pid(dir: &Path) -> u32 {
    let want = dir.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> =
            cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.iter().any(|a| a == "serve") && args.contains(&want) {
            return pid;
        }
    }
    panic!("no blockdb serve process for {want}");
}

/// A key or value as a URL query parameter (base64, percent-encoded).
fn enc(bytes: &[u8]) -> String {
    STANDARD.encode(bytes).replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
}

#[test]
fn dev_cluster_replicates_stops_on_sigterm_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("dev");
    let base_port = must_pick_base_port();
    let agent = agent();

    // Phase 1: one command starts three nodes and lists them with their verifier keys.
    let cluster = DevCluster::must_start(&data_dir, base_port);
    let url = |id: u16, path: &str| format!("http://{}{path}", client_addr(base_port, id));

    // Phase 2: a write through node 2 is readable, proven, from node 3.
    let key = b"dev-cluster-key\xff\xfe".as_slice();
    let value = b"written through node 2".as_slice();
    let body = serde_json::json!({ "key": STANDARD.encode(key), "value": STANDARD.encode(value) });
    let mut r = agent
        .post(url(2, "/v1/append"))
        .header("content-type", "application/json")
        .send(body.to_string())
        .expect("POST /v1/append");
    assert_eq!(r.status().as_u16(), 200, "{}", r.body_mut().read_to_string().unwrap_or_default());
    let records = url(3, &format!("/v1/records?key={}", enc(key)));
    let (status, bundle) = must_get(&agent, &records);
    assert_eq!(status, 200, "{bundle}");
    let bundle = ProofBundle::from_json(bundle.to_string().as_bytes()).expect("bundle parses");
    let keys: Vec<VerifierKey> =
        cluster.keys.iter().map(|k| k.parse().expect("verifier key")).collect();
    let policy = TrustPolicy::new(keys, 1).expect("policy");
    let verified = verify_bundle(&bundle, &policy, None).expect("the bundle verifies");
    assert_eq!(verified.record.key, key);
    assert_eq!(verified.record.value.as_deref(), Some(value));

    // Phase 3: the cluster status lists the three nodes, each with both shards and the key the
    // table showed.
    let (status, before) = must_get(&agent, &url(1, "/v1/cluster"));
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["shards"], 2, "{before}");
    let nodes = before["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), usize::from(NODES), "{before}");
    for (id, node) in (1..=NODES).zip(nodes) {
        assert_eq!(node["node_id"], id, "{node}");
        assert_eq!(node["verifier_key"], cluster.keys[usize::from(id - 1)], "{node}");
        assert_eq!(node["shards"].as_array().map(Vec::len), Some(2), "{node}");
    }

    // Phase 3b: a node killed with SIGKILL leaves the others running: dev-cluster goes on,
    // and the cluster still takes writes through the survivors.
    let victim = node_pid(&data_dir.join("node-3"));
    let killed = Command::new("kill").args(["-KILL", &victim.to_string()]).status();
    assert!(killed.expect("kill").success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = serde_json::json!({ "key": STANDARD.encode(b"after-kill"), "value": "" });
        let r = agent
            .post(url(1, "/v1/append"))
            .header("content-type", "application/json")
            .send(body.to_string());
        if r.is_ok_and(|r| r.status().as_u16() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "no write after node 3 was killed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut cluster = cluster;
    assert!(cluster.child.try_wait().expect("try_wait").is_none(), "dev-cluster stopped");

    // Phase 4: SIGTERM stops the command and every node: it exits 0, and no port of the
    // cluster accepts a connection any more.
    let status = cluster.must_stop();
    assert!(status.success(), "dev-cluster exited with {status}");
    for port in base_port..base_port + 2 * NODES {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let connected = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        assert!(connected.is_err(), "port {port} still accepts connections");
    }
    // Each node left running stopped cleanly on the SIGTERM it was sent, rather than being
    // killed (node 3 was killed above).
    for id in 1..NODES {
        let log = std::fs::read_to_string(data_dir.join(format!("node-{id}/blockdb.log")))
            .expect("node log");
        let this_run = log.rsplit("--- blockdb dev-cluster: starting").next().unwrap_or_default();
        assert!(this_run.contains("shutting down"), "node {id}:\n{this_run}");
    }

    // Phase 5: the same command on the same data directory restarts the same cluster, with the
    // same node keys and the record still there.
    let cluster = DevCluster::must_start(&data_dir, base_port);
    let (status, after) = must_get(&agent, &url(1, "/v1/cluster"));
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["cluster_id"], before["cluster_id"]);
    let keys_before: Vec<&Value> = nodes.iter().map(|n| &n["verifier_key"]).collect();
    let keys_after: Vec<&Value> =
        after["nodes"].as_array().expect("nodes").iter().map(|n| &n["verifier_key"]).collect();
    assert_eq!(keys_after, keys_before);
    let (status, bundle) = must_get(&agent, &url(2, &format!("/v1/records?key={}", enc(key))));
    assert_eq!(status, 200, "{bundle}");
    let status = cluster.must_stop();
    assert!(status.success(), "dev-cluster exited with {status}");
}

#[test]
fn misconfigurations_exit_2_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, says) in [
        (&["--nodes", "0"][..], "--nodes must be 1 to 9, not 0"),
        (&["--nodes", "9", "--base-port", "65530"][..], "must be 1 to 65535"),
        (&["--shards", "0"][..], "shards must be 1 to 1024, not 0"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_blockdb"))
            .arg("dev-cluster")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .expect("run blockdb dev-cluster");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} started something");
        assert!(std::fs::read_dir(dir.path()).expect("ls").next().is_none(), "{args:?}");
    }
}

#[test]
fn a_node_that_exits_stops_the_others_and_shows_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("dev");
    // Node 3 cannot start: its data directory's cluster file is not one.
    std::fs::create_dir_all(data_dir.join("node-3")).expect("mkdir");
    std::fs::write(data_dir.join("node-3/cluster.json"), "not a cluster file").expect("write");
    let base_port = must_pick_base_port();
    let stderr_path = dir.path().join("stderr.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockdb"))
        .arg("dev-cluster")
        .args(["--base-port", &base_port.to_string(), "--data-dir"])
        .arg(&data_dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("spawn blockdb dev-cluster");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dev-cluster did not exit when node 3 did");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&stderr_path).expect("stderr");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("node 3 exited (exit status: 1)"), "{stderr}");
    // The tail of node 3's log, which says why.
    assert!(stderr.contains("  | blockdb: cluster file"), "{stderr}");
    // Nodes 1 and 2 were stopped.
    for id in 1..=2 {
        let addr = client_addr(base_port, id);
        let connected = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        assert!(connected.is_err(), "node {id} still accepts connections\n{stderr}");
    }
}
