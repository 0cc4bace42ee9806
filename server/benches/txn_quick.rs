//! Transaction throughput and abort rate on a 3-node cluster of real `blockdb` processes on
//! loopback (4 shards), at low and high contention, over REST.
//!
//! The workload is a bank transfer: a one-shot read of two accounts, then a one-shot
//! transaction appending both new balances with their versions checked (an optimistic
//! read-modify-write, so a transfer aborts when another one changed an account in between).
//! *Low contention* spreads transfers over 10,000 accounts, *high* over 8. Transfers are
//! between accounts of different shards (two-phase commit) or of one shard (one round).
//! Reported per workload: committed transfers per second, the share that aborted, and the
//! median and 99th-percentile latency of the transfer transaction itself (not the read).
//!
//! Each workload runs `RUNS` times for `SECONDS` seconds (`BLOCKDB_BENCH_RUNS`,
//! `BLOCKDB_BENCH_SECONDS`; default 3 runs of 5 s); the median run is reported. The clients
//! share the machine with the three nodes.
//!
//!     cargo bench -p blockdb-server --bench txn_quick

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blockdb_verifier::ShardId;
use serde_json::{Value, json};

const SHARDS: u32 = 4;
const CLIENTS: usize = 16;

struct Node {
    child: Child,
    addr: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Three nodes, `SHARDS` shards, data under `dir`.
fn start_cluster(dir: &std::path::Path) -> Vec<Node> {
    let peers: Vec<String> = (1..=3).map(|i| format!("{i}=127.0.0.1:{}", free_port())).collect();
    let peers = peers.join(",");
    let nodes: Vec<Node> = (1..=3)
        .map(|id| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_blockdb"))
                .args(["serve", "--listen", "127.0.0.1:0", "--log-level", "warn"])
                .args(["--node-id", &id.to_string(), "--peers", &peers])
                .args(["--shards", &SHARDS.to_string(), "--data-dir"])
                .arg(dir.join(format!("node-{id}")))
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn blockdb");
            let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            let addr = loop {
                let line = lines.next().expect("ready line").expect("read");
                if let Some(rest) = line.strip_prefix("blockdb listening on http://") {
                    break rest.split_whitespace().next().expect("addr").to_owned();
                }
            };
            std::thread::spawn(move || for _ in lines {});
            Node { child, addr }
        })
        .collect();
    for n in &nodes {
        let until = Instant::now() + Duration::from_secs(30);
        while agent().get(format!("http://{}/readyz", n.addr)).call().is_err() {
            assert!(Instant::now() < until, "{} never became ready", n.addr);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    nodes
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn post(agent: &ureq::Agent, addr: &str, ops: &[Value]) -> (u16, Value) {
    let body = json!({ "ops": ops }).to_string();
    let mut r = agent
        .post(format!("http://{addr}/v1/txn"))
        .header("content-type", "application/json")
        .send(&body)
        .expect("a transaction request");
    let code = r.status().as_u16();
    let text = r.body_mut().read_to_string().expect("body");
    (code, serde_json::from_str(&text).expect("JSON"))
}

fn b64(s: &str) -> String {
    STANDARD.encode(s.as_bytes())
}

/// `n` accounts, each in the shard wanted: for cross-shard transfers, pairs (2i, 2i+1) are in
/// different shards; for single-shard ones, in the same shard.
fn accounts(n: usize, cross: bool) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0u64;
    let shard = |k: &str| ShardId::for_key(k.as_bytes(), SHARDS).expect("shards > 0");
    while out.len() < n {
        let k = format!("acct-{cross}-{n}-{i}");
        i += 1;
        if out.len() % 2 == 1 {
            let prev: &String = &out[out.len() - 1];
            if (shard(prev) != shard(&k)) != cross {
                continue;
            }
        }
        out.push(k);
    }
    out
}

struct Run {
    committed_per_s: f64,
    abort_pct: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn run(nodes: &[Node], accounts: &[String], seconds: f64) -> Run {
    let stop = AtomicBool::new(false);
    let (committed, aborted) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut latencies = Vec::new();
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (stop, committed, aborted) = (&stop, &committed, &aborted);
                s.spawn(move || {
                    let agent = agent();
                    let mut lat = Vec::new();
                    let mut i = c as u64 * 7919;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let pair = (i as usize * 31) % (accounts.len() / 2);
                        let (from, to) = (&accounts[2 * pair], &accounts[2 * pair + 1]);
                        let addr = &nodes[i as usize % nodes.len()].addr;
                        let reads =
                            [json!({"op": "read", "key": b64(from)}), json!({"op": "read", "key": b64(to)})];
                        let (code, body) = post(&agent, addr, &reads);
                        assert_eq!(code, 200, "{body}");
                        let balance = |j: usize| -> (u64, i64) {
                            let r = &body["reads"][j];
                            let v = r["version"].as_u64().expect("version");
                            let b = r["value"].as_str().map_or(0, |x| {
                                String::from_utf8(STANDARD.decode(x).expect("b64"))
                                    .expect("utf8")
                                    .parse()
                                    .expect("number")
                            });
                            (v, b)
                        };
                        let ((vf, bf), (vt, bt)) = (balance(0), balance(1));
                        let op = |k: &str, v: u64, b: i64| {
                            json!({"op": "append", "key": b64(k), "value": b64(&b.to_string()), "expected_version": v})
                        };
                        let t = Instant::now();
                        let (code, body) = post(&agent, addr, &[op(from, vf, bf - 1), op(to, vt, bt + 1)]);
                        lat.push(t.elapsed());
                        match code {
                            200 => committed.fetch_add(1, Ordering::Relaxed),
                            409 => aborted.fetch_add(1, Ordering::Relaxed),
                            _ => panic!("transfer failed: {code} {body}"),
                        };
                    }
                    lat
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            latencies.extend(h.join().expect("client thread"));
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    let (c, a) = (committed.load(Ordering::Relaxed) as f64, aborted.load(Ordering::Relaxed) as f64);
    Run {
        committed_per_s: c / elapsed,
        abort_pct: if c + a > 0.0 { 100.0 * a / (c + a) } else { 0.0 },
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    }
}

fn main() {
    let seconds: f64 =
        std::env::var("BLOCKDB_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let runs: usize =
        std::env::var("BLOCKDB_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = start_cluster(dir.path());
    println!(
        "3 nodes, {SHARDS} shards, {CLIENTS} clients, {} cores; {runs} runs of {seconds} s, median",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (name, n, cross) in [
        ("cross-shard, low contention (10,000 accounts)", 10_000, true),
        ("cross-shard, high contention (8 accounts)", 8, true),
        ("single-shard, low contention (10,000 accounts)", 10_000, false),
        ("single-shard, high contention (8 accounts)", 8, false),
    ] {
        let accts = accounts(n, cross);
        let mut results: Vec<Run> = (0..runs).map(|_| run(&nodes, &accts, seconds)).collect();
        results.sort_by(|a, b| a.committed_per_s.total_cmp(&b.committed_per_s));
        let all: Vec<String> =
            results.iter().map(|r| format!("{:.0}", r.committed_per_s)).collect();
        let r = &results[results.len() / 2];
        println!(
            "{name:<48} {:>7.0} committed/s   aborted {:>5.1}%   p50 {:>7.2} ms   p99 {:>7.2} ms   (runs: {})",
            r.committed_per_s,
            r.abort_pct,
            r.p50_ms,
            r.p99_ms,
            all.join(", ")
        );
    }
}
