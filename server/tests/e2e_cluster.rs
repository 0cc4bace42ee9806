//! A replicated cluster of real `blockdb` processes: failover under load, catch-up after a
//! restart, a node joining through a snapshot, a node leaving, linearizable reads across
//! nodes and leader changes, and peers that send what they should not.
//!
//! The failover test prints how long each shard took to take writes again after its leader was
//! killed; `BLOCKDB_FAILOVER_ROUNDS=N` repeats the kills N times per shard and prints the median
//! (`make bench-failover` runs it on a release build). `BLOCKDB_E2E_JOIN_RECORDS` sets how many
//! records the cluster holds before a node joins it (default 3,000).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed step fails the test, and the panic names the line"
)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blockdb_verifier::{ProofBundle, verify_bundle};
use common::cluster::{Cluster, free_port};
use common::{Server, enc};
use serde_json::Value;

/// An acknowledged insert: key, shard, log index.
#[derive(Debug, Clone)]
struct Acked {
    key: Vec<u8>,
    shard: u32,
    log_index: u64,
}

/// Writers inserting unique keys through every live node in turn until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addrs: Arc<Mutex<Vec<String>>>, writers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..writers)
            .map(|w| {
                let (stop, acked, addrs) = (stop.clone(), acked.clone(), addrs.clone());
                std::thread::spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(15)))
                        .build()
                        .into();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let addr = {
                            let a = addrs.lock().unwrap();
                            a[(i as usize + w) % a.len()].clone()
                        };
                        let key = format!("w{w}-{i}").into_bytes();
                        i += 1;
                        let body = serde_json::json!({
                            "key": STANDARD.encode(&key), "value": STANDARD.encode(b"v"),
                        });
                        let Ok(mut r) = agent
                            .post(format!("http://{addr}/v1/insert"))
                            .header("content-type", "application/json")
                            .send(body.to_string())
                        else {
                            continue; // unreachable or cut off: not acknowledged
                        };
                        if r.status().as_u16() != 201 {
                            continue;
                        }
                        let v: Value =
                            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                        acked.lock().unwrap().push(Acked {
                            key,
                            shard: v["shard"].as_u64().unwrap() as u32,
                            log_index: v["log_index"].as_u64().unwrap(),
                        });
                    }
                })
            })
            .collect();
        Load { stop, acked, threads }
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn finish(self) -> Vec<Acked> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}

/// Waits until `n` more writes are acknowledged.
fn wait_for_writes(load: &Load, n: usize, deadline: Duration) {
    let target = load.count() + n;
    let until = Instant::now() + deadline;
    while load.count() < target {
        assert!(Instant::now() < until, "writes stalled at {} (wanted {target})", load.count());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Inserts one key of `shard` through `via` until it succeeds; how long that took.
fn time_to_write(c: &Cluster, via: u64, shard: u32, deadline: Duration) -> Duration {
    let t0 = Instant::now();
    let mut i = 0;
    loop {
        // Find a key of this shard: the answer names the shard the key went to.
        let key = format!("probe-{shard}-{}-{i}", t0.elapsed().as_nanos());
        i += 1;
        if let Some((200, v)) = c.node(via).try_append(key.as_bytes(), b"p")
            && v["shard"].as_u64() == Some(u64::from(shard))
        {
            return t0.elapsed();
        }
        if t0.elapsed() > deadline {
            let (_, status) = c.node(via).get("/v1/cluster");
            let last = c.node(via).try_append(key.as_bytes(), b"p");
            panic!("shard {shard} took no write within {deadline:?}; last: {last:?}; {status:#}");
        }
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn killing_each_shards_leader_loses_nothing_and_replicas_converge() {
    let mut c = Cluster::start(3, 2, &[]);
    let addrs = Arc::new(Mutex::new(c.live().iter().map(|s| s.addr.clone()).collect::<Vec<_>>()));
    let load = Load::start(Arc::clone(&addrs), 6);
    wait_for_writes(&load, 200, Duration::from_secs(60));

    let rounds: usize =
        std::env::var("BLOCKDB_FAILOVER_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let mut failovers = Vec::new();
    for _ in 0..rounds {
        for shard in 0..c.shards {
            let old = c.leader(shard, Duration::from_secs(30));
            let survivor = *c.nodes.keys().find(|&&i| i != old).unwrap();
            let old_addr = c.node(old).addr.clone();
            addrs.lock().unwrap().retain(|a| *a != old_addr);
            c.node(old).kill_now();
            let took = time_to_write(&c, survivor, shard, Duration::from_secs(30));
            c.nodes.insert(old, None);
            failovers.push(took);
            let new = c.leader(shard, Duration::from_secs(30));
            assert_ne!(new, old, "shard {shard} kept its killed leader");
            // Writes go on without the killed node, through both survivors.
            wait_for_writes(&load, 100, Duration::from_secs(60));
            // The killed node comes back with its data and catches up.
            c.start_node(old);
            addrs.lock().unwrap().push(c.node(old).addr.clone());
            wait_for_writes(&load, 100, Duration::from_secs(60));
            eprintln!(
                "shard {shard}: leader {old} killed, node {new} took over; first write after {took:?}"
            );
        }
    }
    let acked = load.finish();
    let ends = c.converged(Duration::from_secs(60));
    eprintln!(
        "failover (kill -9 of a shard leader until the shard takes a write), {} runs: median {:?}, all {:?}",
        failovers.len(),
        median(&mut failovers.clone()),
        failovers
    );

    // Every acknowledged insert is on every replica at the position it was given, with a proof.
    let policy = c.policy();
    assert!(acked.len() > 500, "only {} writes acknowledged", acked.len());
    for (n, a) in acked.iter().enumerate() {
        let s = c.live()[n % 3];
        let (code, body) = s.get(&format!("/v1/records?key={}&consistency=stale", enc(&a.key)));
        assert_eq!(code, 200, "acknowledged {:?} is missing on {}: {body}", a, s.addr);
        let bundle = ProofBundle::from_json(body.to_string().as_bytes()).unwrap();
        let verified = verify_bundle(&bundle, &policy, None).expect("the bundle verifies");
        assert_eq!(verified.shard.0, a.shard);
        assert_eq!(verified.log_index.0, a.log_index, "{a:?} moved");
        assert!(verified.checkpoint.checkpoint.size.0 <= ends[a.shard as usize].0);
    }
    // The status agrees: one leader per shard, every replica at the same applied state.
    let status = c.status(1);
    for shard in 0..c.shards as usize {
        let rows: Vec<&Value> =
            status["nodes"].as_array().unwrap().iter().map(|n| &n["shards"][shard]).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows.iter().filter(|r| r["role"] == "leader").count(), 1, "{status}");
        assert!(rows.iter().all(|r| r["tree_size"] == rows[0]["tree_size"]), "{status}");
        assert!(rows.iter().all(|r| r["root"] == rows[0]["root"]), "{status}");
    }
}

/// Sends `signal` (`STOP`, `CONT`) to the node's process.
fn signal(s: &Server, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(s.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_joining_node_catches_up_through_a_snapshot_and_a_removed_node_leaves() {
    let mut c = Cluster::start(3, 2, &["--snapshot-entries", "100"]);
    let addrs = Arc::new(Mutex::new(c.live().iter().map(|s| s.addr.clone()).collect::<Vec<_>>()));
    let load = Load::start(Arc::clone(&addrs), 6);
    // BLOCKDB_E2E_JOIN_RECORDS makes the cluster the new node joins larger than CI's.
    let records =
        std::env::var("BLOCKDB_E2E_JOIN_RECORDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3000);
    wait_for_writes(&load, records, Duration::from_secs(60 + records as u64 / 20));
    let acked = load.finish();

    // The leaders have purged their logs from the start: a new node can only catch up from a
    // snapshot.
    let status = c.status(1);
    for shard in 0..2usize {
        let leader = c.leader(shard as u32, Duration::from_secs(10));
        let row = status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node_id"] == leader)
            .map(|n| &n["shards"][shard])
            .unwrap();
        assert!(row["purged_index"].as_u64().unwrap_or(0) > 0, "shard {shard} kept its log: {row}");
    }

    let peer4 = format!("127.0.0.1:{}", free_port());
    let data4 = c.dir.path().join("node-4");
    let four = Server::must_start(
        &data4,
        &["--node-id", "4", "--join", &c.peers[&1], "--peer-listen", &peer4],
    );
    // The node named must be the one at that address, and of this cluster.
    let wrong_id = serde_json::json!({ "node_id": 5, "peer_addr": peer4 }).to_string();
    let (code, answer) = c.node(2).send("POST", "/v1/cluster/members", &wrong_id);
    assert_eq!(code, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("is node 4, not node 5"), "{answer}");
    let foreign_peer = format!("127.0.0.1:{}", free_port());
    let foreign = Server::must_start(
        &c.dir.path().join("foreign"),
        &["--node-id", "5", "--peer-listen", &foreign_peer],
    );
    let body = serde_json::json!({ "node_id": 5, "peer_addr": foreign_peer }).to_string();
    let (code, answer) = c.node(2).send("POST", "/v1/cluster/members", &body);
    assert_eq!(code, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("belongs to cluster"), "{answer}");
    // Node 4's data directory now belongs to this cluster: restarted with --join naming the
    // other one, it refuses to start; restarted as it was, it runs.
    four.must_stop();
    let err = common::must_fail_to_start(
        &data4,
        &["--node-id", "4", "--join", &foreign_peer, "--peer-listen", &peer4],
    );
    assert!(err.contains("belongs to cluster"), "{err}");
    foreign.must_stop();
    let four = Server::must_start(
        &data4,
        &["--node-id", "4", "--join", &c.peers[&1], "--peer-listen", &peer4],
    );

    let body = serde_json::json!({ "node_id": 4, "peer_addr": peer4 }).to_string();
    let (code, answer) = c.node(2).send("POST", "/v1/cluster/members", &body);
    assert_eq!(code, 200, "{answer}");
    for shard in answer["shards"].as_array().unwrap() {
        assert_eq!(shard["voters"], serde_json::json!([1, 2, 3, 4]), "{answer}");
    }
    c.peers.insert(4, peer4);
    c.nodes.insert(4, Some(four));
    let ends = c.converged(Duration::from_secs(60));
    assert!(ends.iter().map(|e| e.0).sum::<u64>() >= acked.len() as u64);
    // The new node serves every acknowledged record from its own replica, with a valid proof.
    let policy = c.policy();
    for a in acked.iter().step_by(7) {
        let (code, body) =
            c.node(4).get(&format!("/v1/records?key={}&consistency=stale", enc(&a.key)));
        assert_eq!(code, 200, "{a:?}: {body}");
        let bundle = ProofBundle::from_json(body.to_string().as_bytes()).unwrap();
        assert_eq!(verify_bundle(&bundle, &policy, None).unwrap().log_index.0, a.log_index);
    }
    let mine = &c.status(4)["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == 4)
        .cloned()
        .unwrap()["shards"];
    for shard in mine.as_array().unwrap() {
        assert!(shard["snapshot_index"].as_u64().is_some(), "no snapshot on node 4: {shard}");
        assert_eq!(shard["role"], "follower", "{shard}");
    }

    // Remove the leader of shard 0; the cluster goes on without it.
    let gone = c.leader(0, Duration::from_secs(10));
    let via = *c.nodes.keys().find(|&&i| i != gone).unwrap();
    let (code, answer) = c.node(via).send("DELETE", &format!("/v1/cluster/members/{gone}"), "");
    assert_eq!(code, 200, "{answer}");
    for shard in answer["shards"].as_array().unwrap() {
        let voters: Vec<u64> =
            shard["voters"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert!(!voters.contains(&gone) && voters.len() == 3, "{answer}");
    }
    c.nodes.remove(&gone).flatten().unwrap().must_stop();
    for i in 0..20 {
        let (code, body) = c.node(via).insert(format!("after-removal-{i}").as_bytes(), b"v");
        assert_eq!(code, 201, "{body}");
    }
    c.converged(Duration::from_secs(30));
    let status = c.status(via);
    let ids: Vec<u64> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node_id"].as_u64().unwrap())
        .collect();
    assert!(!ids.contains(&gone), "{status}");
    // Removing a node that is not a member says so and changes nothing.
    let (code, body) = c.node(via).send("DELETE", "/v1/cluster/members/77", "");
    assert_eq!((code, body["code"].as_str()), (404, Some("not_found")), "{body}");
}

#[test]
fn linearizable_reads_never_miss_an_acknowledged_write() {
    let c = Cluster::start(3, 1, &[]);
    let key = b"register";
    let mut version = 0;
    // A write acknowledged by one node is seen by the next read on any other node: followers
    // learn the commit index only with the next heartbeat, so a follower that answered from its
    // own state without the leader's read index would show the older version here.
    for i in 0..60u64 {
        let (code, body) = c.node(i % 3 + 1).append(key, &i.to_be_bytes(), Some(version));
        assert_eq!(code, 200, "{body}");
        version = body["version"].as_u64().unwrap();
        let reader = c.node((i + 1) % 3 + 1);
        let (code, body) = reader.get(&format!("/v1/records?key={}", enc(key)));
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["record"]["version"].as_u64(), Some(version), "read on {}", reader.addr);
    }

    // Each node's metrics show its Raft state; the leader's show its peers' lag.
    let leader = c.leader(0, Duration::from_secs(10));
    for id in 1..=3u64 {
        let (code, text) = c.node(id).get_bytes("/metrics");
        assert_eq!(code, 200);
        let text = String::from_utf8(text).unwrap();
        let is_leader =
            format!("blockdb_raft{{shard=\"0\",what=\"is_leader\"}} {}", u8::from(id == leader));
        assert!(text.contains(&is_leader), "{is_leader} in\n{text}");
        assert!(text.contains(&format!("blockdb_raft{{shard=\"0\",what=\"leader\"}} {leader}")));
        assert!(text.contains("blockdb_raft{shard=\"0\",what=\"voters\"} 3"));
        let lag = text.contains("blockdb_replication_lag_entries{shard=\"0\",peer=");
        assert_eq!(lag, id == leader, "{text}");
    }

    // A stale read says how far behind its replica may be.
    let (code, headers) =
        c.node(2).get_headers(&format!("/v1/records?key={}&consistency=stale", enc(key)));
    assert_eq!(code, 200);
    for h in ["blockdb-applied-index", "blockdb-behind-entries"] {
        assert!(
            headers.iter().any(|(k, v)| k == h && v.parse::<u64>().is_ok()),
            "{h}: {headers:?}"
        );
    }

    // A leader cut off (paused) while the others elect a new one and take a write must not
    // answer a linearizable read from its old state once it runs again.
    let old = c.leader(0, Duration::from_secs(10));
    let others: Vec<u64> = (1..=3).filter(|&i| i != old).collect();
    signal(c.node(old), "STOP");
    let until = Instant::now() + Duration::from_secs(30);
    let mut written = None;
    while written.is_none() {
        assert!(Instant::now() < until, "no write while node {old} was paused");
        if let Some((200, body)) = c.node(others[0]).try_append(key, b"new") {
            written = body["version"].as_u64();
        }
    }
    let written = written.unwrap();
    signal(c.node(old), "CONT");
    let (code, body) = c.node(old).get(&format!("/v1/records?key={}", enc(key)));
    if code == 200 {
        assert!(
            body["record"]["version"].as_u64().unwrap() >= written,
            "the old leader answered version {} after version {written} was acknowledged",
            body["record"]["version"]
        );
    } else {
        assert_eq!(body["code"], "unavailable", "{body}");
    }
    // And it catches up.
    c.converged(Duration::from_secs(30));
}

#[test]
fn peers_that_send_the_wrong_cluster_shard_or_bytes_are_refused_and_change_nothing() {
    use blockdb_proto::peer::v1 as pb;
    use blockdb_proto::peer::v1::peer_client::PeerClient;

    let c = Cluster::start(3, 2, &[]);
    c.leader(0, Duration::from_secs(10));
    c.leader(1, Duration::from_secs(10));
    let (code, _) = c.node(1).insert(b"before", b"v");
    assert_eq!(code, 201);
    let before = c.converged(Duration::from_secs(10));
    let (code, cluster) = c.node(1).get("/v1/cluster");
    assert_eq!(code, 200);
    let cluster_id = cluster["cluster_id"].as_str().unwrap().to_owned();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut peer = PeerClient::connect(format!("http://{}", c.peers[&1])).await.unwrap();
        let header = |cluster: &str, shard: u32| {
            Some(pb::Header { cluster_id: cluster.into(), shard, from: 2 })
        };
        let vote = Some(pb::Vote { term: 1_000, node_id: 2, committed: true });
        let append = |header, entries: Vec<Vec<u8>>| pb::AppendEntriesRequest {
            header,
            vote,
            prev_log_id: None,
            entries,
            leader_commit: None,
        };
        let e = peer.append_entries(append(header("0123", 0), vec![])).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e}");
        let e = peer.append_entries(append(header(&cluster_id, 9), vec![])).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound, "{e}");
        let e = peer.append_entries(append(None, vec![])).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        let garbage = vec![vec![2, 0, 0, 0, 0, 0, 0, 3, 232, 9, 9]];
        let e = peer.append_entries(append(header(&cluster_id, 0), garbage)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        let e = peer
            .forward(pb::ForwardRequest { header: header(&cluster_id, 0), command: vec![1, 2, 3] })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        let e = peer
            .vote(pb::VoteRequest { header: header("other", 0), vote, last_log_id: None })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e}");
    });
    // Nothing changed: no term jumped to 1000 (no election), the trees are as they were, and the
    // cluster takes writes.
    let status = c.status(1);
    for n in status["nodes"].as_array().unwrap() {
        for s in n["shards"].as_array().unwrap() {
            assert!(s["term"].as_u64().unwrap() < 1_000, "{s}");
        }
    }
    assert_eq!(c.converged(Duration::from_secs(10)), before);
    let (code, body) = c.node(3).insert(b"after", b"v");
    assert_eq!(code, 201, "{body}");
}

#[test]
fn a_bad_member_list_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--node-id", "4", "--peers", "1=127.0.0.1:7001,2=127.0.0.1:7002"],
            "node 4 is not in --peers",
        ),
        (&["--node-id", "1", "--peers", "1=127.0.0.1"], "not HOST:PORT"),
        (&["--node-id", "1", "--peers", "1=127.0.0.1:7001,1=127.0.0.1:7002"], "listed twice"),
        (&["--node-id", "0"], "node_id must be 1 or more"),
        (
            &["--node-id", "1", "--peers", "1=127.0.0.1:7001", "--join", "127.0.0.1:7002"],
            "not both",
        ),
    ];
    for (args, says) in cases {
        let err = common::must_fail_to_start(dir.path(), args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Nothing was created for them.
    assert!(!dir.path().join("cluster.json").exists());
    // Joining a cluster nobody serves fails clearly.
    let port = free_port();
    let err = common::must_fail_to_start(
        dir.path(),
        &["--node-id", "2", "--join", &format!("127.0.0.1:{port}"), "--peer-listen", "127.0.0.1:0"],
    );
    assert!(err.contains("cannot join through"), "{err}");
}

#[test]
fn a_replica_whose_tree_diverged_stops_serving_the_shard_and_says_so() {
    use blockdb_server::ledger::tree::tile_key;
    use blockdb_server::storage::{Engine, Options, WriteBatch};
    use blockdb_verifier::ShardId;

    let mut c = Cluster::start(3, 1, &[]);
    for i in 0..20 {
        let (code, body) = c.node(1).insert(format!("k{i}").as_bytes(), b"v");
        assert_eq!(code, 201, "{body}");
    }
    c.converged(Duration::from_secs(30));
    let leader = c.leader(0, Duration::from_secs(10));
    let victim = *c.nodes.keys().find(|&&i| i != leader).unwrap();
    let data = c.node(victim).data_dir.clone();
    c.nodes.remove(&victim).flatten().unwrap().must_stop();

    // Flip one bit of the first leaf hash in the stopped replica's tree.
    {
        let engine = Engine::open(data.join("store"), Options::default()).unwrap();
        let key = tile_key(ShardId(0), 0, 0);
        let mut tile = engine.get(&key).unwrap().expect("the first tile is stored");
        tile[0] ^= 1;
        let mut batch = WriteBatch::new();
        batch.put(key, tile);
        engine.write_with(batch, true).unwrap();
    }
    c.start_node(victim);
    // New entries carry the leader's root; the victim's differs.
    for i in 0..5 {
        let (code, body) = c.node(leader).insert(format!("after{i}").as_bytes(), b"v");
        assert_eq!(code, 201, "{body}");
    }
    let until = Instant::now() + Duration::from_secs(30);
    let reason = loop {
        let status = c.status(victim);
        let me = status["nodes"].as_array().unwrap().iter().find(|n| n["node_id"] == victim);
        if let Some(reason) = me.and_then(|n| n["shards"][0]["corruption"].as_str()) {
            break reason.to_owned();
        }
        assert!(Instant::now() < until, "the diverged replica did not notice: {status}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(reason.contains("diverged"), "{reason}");
    // It serves nothing of that shard, not even stale reads; the others go on.
    for path in ["/v1/records?key=azA%3D&consistency=stale", "/v1/shards/0/checkpoint"] {
        let (code, body) = c.node(victim).get(path);
        assert_eq!(code, 500, "{path}: {body}");
        assert!(body["message"].as_str().unwrap().contains("stopped serving shard 0"), "{body}");
    }
    assert_ne!(c.node(victim).get("/readyz").0, 200);
    let other = *c.nodes.keys().find(|&&i| i != victim && i != leader).unwrap();
    let (code, body) = c.node(other).insert(b"still-fine", b"v");
    assert_eq!(code, 201, "{body}");
}
