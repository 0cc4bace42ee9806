//! A quick benchmark of a real `blockdb` process on loopback: durable appends per second with 1
//! and 64 concurrent clients (each append is acknowledged only once fsynced), and verified reads
//! per second (each response's proof bundle checked with the verifier against the node's key,
//! as a client does) — over gRPC (async clients multiplexed on a few HTTP/2 connections) and over
//! REST (one blocking HTTP/1.1 client per thread).
//!
//! Each workload runs `RUNS` times for `SECONDS` seconds; the median run is reported, with the
//! median and 99th-percentile latency of that run. The clients share the machine with the node,
//! so on a small machine the numbers are a floor. `BLOCKDB_BENCH_SECONDS` and
//! `BLOCKDB_BENCH_RUNS` change the defaults (3 s, 3 runs).
//!
//!     cargo bench -p blockdb-server --bench node_quick

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blockdb_verifier::{ProofBundle, TrustPolicy, VerifierKey, verify_bundle};

struct Node {
    child: Child,
    addr: String,
    key: String,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockdb"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-level", "warn", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn blockdb");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut addr, mut key) = (String::new(), String::new());
    while addr.is_empty() || key.is_empty() {
        let line = lines.next().expect("ready line").expect("read");
        if let Some(rest) = line.strip_prefix("blockdb listening on http://") {
            addr = rest.split_whitespace().next().expect("addr").to_owned();
        }
        if let Some(rest) = line.strip_prefix("verifier key: ") {
            key = rest.trim().to_owned();
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Node { child, addr, key, _dir: dir }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(30))).build().into()
}

struct Run {
    ops_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Runs `op` from `clients` threads for `seconds`; `op(client, i)` does one operation.
fn run(clients: usize, seconds: f64, op: &(dyn Fn(&ureq::Agent, u64, u64) + Sync)) -> Run {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let mut latencies: Vec<Duration> = Vec::new();
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients as u64)
            .map(|c| {
                let (stop, done) = (&stop, &done);
                s.spawn(move || {
                    let agent = agent();
                    let mut lat = Vec::new();
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        op(&agent, c, i);
                        lat.push(t.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                        i += 1;
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
    Run {
        ops_per_s: done.load(Ordering::Relaxed) as f64 / elapsed,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    }
}

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s));
    let all: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.ops_per_s)).collect();
    println!("    runs (ops/s): {}", all.join(", "));
    runs.swap_remove(runs.len() / 2)
}

fn report(name: &str, r: &Run) {
    println!(
        "{name:<40} {:>9.0} ops/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        r.ops_per_s, r.p50_ms, r.p99_ms
    );
}

mod grpc {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use blockdb_proto::v1::ledger_client::LedgerClient;
    use blockdb_proto::v1::{AppendRequest, GetRequest};
    use blockdb_verifier::{
        Hash, Leaf, ProofBundle, Record, SignedCheckpoint, TrustPolicy, verify_bundle,
    };
    use tonic::transport::Channel;

    use super::Run;

    /// Connections the clients share.
    const CONNECTIONS: usize = 4;

    pub async fn channels(addr: &str) -> Vec<Channel> {
        let mut out = Vec::new();
        for _ in 0..CONNECTIONS {
            let ch = Channel::from_shared(format!("http://{addr}")).expect("uri");
            out.push(ch.connect().await.expect("connect"));
        }
        out
    }

    fn to_bundle(b: &blockdb_proto::v1::ProofBundle) -> ProofBundle {
        let record = b.record.as_ref().expect("record");
        let hashes = |v: &[Vec<u8>]| -> Vec<Hash> {
            v.iter().map(|h| Hash::from_slice(h).expect("32 bytes")).collect()
        };
        ProofBundle {
            record: Record {
                key: record.key.clone(),
                version: record.version,
                value: record.value.clone(),
            },
            leaf: Leaf::decode(&b.leaf).expect("leaf"),
            inclusion_proof: hashes(&b.inclusion_proof),
            checkpoint: SignedCheckpoint::parse(b.checkpoint.as_bytes()).expect("checkpoint"),
            consistency_proof: None,
        }
    }

    /// `clients` tasks appending (or, with `policy`, reading and verifying) for `seconds`.
    pub async fn run(
        channels: &[Channel],
        clients: usize,
        seconds: f64,
        policy: Option<Arc<TrustPolicy>>,
    ) -> Run {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..clients as u64)
            .map(|c| {
                let mut client = LedgerClient::new(channels[c as usize % channels.len()].clone());
                let (stop, done, policy) = (Arc::clone(&stop), Arc::clone(&done), policy.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        match &policy {
                            None => {
                                let key = format!("g{clients}-{c}-{i}").into_bytes();
                                let req = AppendRequest {
                                    key,
                                    value: vec![0xab; 256],
                                    expected_version: None,
                                };
                                client.append(req).await.expect("append");
                            }
                            Some(policy) => {
                                let key = format!("g64-{}-{}", (c + i) % 64, i % 50).into_bytes();
                                let req = GetRequest { key, ..GetRequest::default() };
                                let b = client.get(req).await.expect("get").into_inner();
                                verify_bundle(&to_bundle(&b), policy, None).expect("verifies");
                            }
                        }
                        lat.push(t.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                    lat
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await.expect("task"));
        }
        super::summarize(latencies, done.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
    }
}

fn summarize(mut latencies: Vec<Duration>, done: u64, elapsed: f64) -> Run {
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    Run { ops_per_s: done as f64 / elapsed, p50_ms: pct(0.5), p99_ms: pct(0.99) }
}

fn main() {
    let seconds: f64 =
        std::env::var("BLOCKDB_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let runs: usize =
        std::env::var("BLOCKDB_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("blockdb quick benchmark: {cores} cores, {runs} runs of {seconds} s each, medians");
    let node = start();
    let policy =
        TrustPolicy::new(vec![node.key.parse::<VerifierKey>().expect("key")], 1).expect("policy");

    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let channels = grpc::channels(&node.addr).await;
        for clients in [1usize, 64] {
            let mut rs = Vec::new();
            for _ in 0..runs {
                rs.push(grpc::run(&channels, clients, seconds, None).await);
            }
            report(&format!("gRPC durable appends, 256 B, {clients} clients"), &median(rs));
        }
        let policy = std::sync::Arc::new(policy.clone());
        for clients in [8usize, 64] {
            let mut rs = Vec::new();
            for _ in 0..runs {
                rs.push(
                    grpc::run(&channels, clients, seconds, Some(std::sync::Arc::clone(&policy)))
                        .await,
                );
            }
            report(&format!("gRPC verified reads, {clients} clients"), &median(rs));
        }
    });

    let value = STANDARD.encode(vec![0xabu8; 256]);
    let url = format!("http://{}", node.addr);

    for clients in [1usize, 64] {
        let append = |agent: &ureq::Agent, c: u64, i: u64| {
            let key = STANDARD.encode(format!("c{clients}-{c}-{i}"));
            let body = format!("{{\"key\":\"{key}\",\"value\":\"{value}\"}}");
            agent
                .post(format!("{url}/v1/append"))
                .header("content-type", "application/json")
                .send(&body)
                .expect("append");
        };
        let r = median((0..runs).map(|_| run(clients, seconds, &append)).collect());
        report(&format!("REST durable appends, 256 B, {clients} clients"), &r);
    }

    // Reads of keys written above, each verified.
    let policy =
        TrustPolicy::new(vec![node.key.parse::<VerifierKey>().expect("key")], 1).expect("policy");
    for clients in [8usize, 64] {
        let read = |agent: &ureq::Agent, c: u64, i: u64| {
            let key = STANDARD.encode(format!("c64-{}-{}", (c + i) % 64, i % 50));
            let key = key.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
            let text = agent
                .get(format!("{url}/v1/records?key={key}"))
                .call()
                .expect("read")
                .body_mut()
                .read_to_string()
                .expect("body");
            let bundle = ProofBundle::from_json(text.as_bytes()).expect("bundle");
            verify_bundle(&bundle, &policy, None).expect("verifies");
        };
        let r = median((0..runs).map(|_| run(clients, seconds, &read)).collect());
        report(&format!("REST verified reads, {clients} clients"), &r);
    }
}
