//! `blockdb-chaos scale`: how a node's proofs, memory, disk and recovery grow with its log.
//!
//! One real `blockdb` node (one shard) is filled through its gRPC API with 256-byte records, in
//! one-shot transactions of `batch` inserts from `concurrency` tasks, until its tree reaches each
//! of the sizes asked for (10^3 to 10^7 by default). At each size, with the fill stopped:
//!
//! - **proof latency**, one request at a time: `GetEntry` of a random log index with its
//!   inclusion proof (the server's proof generation, the answer not checked) and a verified `get`
//!   of a random key through the client (proof generated, sent and checked);
//! - **proof size**: hashes in the inclusion proof, and the encoded size of a whole proof bundle
//!   (record, leaf, proof, signed checkpoint);
//! - **resident memory** of the node (`VmRSS`) and the **disk** its data directory takes (blocks
//!   allocated, so the WAL's sparse preallocation is not counted), also per million records.
//!
//! After the last size the node is killed with SIGKILL and restarted on its data: **recovery
//! time** is from the restart until a shard leader is ready and until the first verified read
//! answers. Results go to `OUT/scale-<unix time>/` as `results.json` and `results.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blockdb_client::{Client, ClientConfig, ClusterAdmin, Consistency, MemoryStore};
use blockdb_proto::v1 as pb;
use blockdb_verifier::{ShardId, TrustPolicy};
use prost::Message as _;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;
use tonic::transport::Channel;

use crate::bench::percentile_ms;
use crate::cluster::{Cluster, ClusterSpec};

/// What to measure.
#[derive(Debug, Clone)]
pub struct ScaleConfig {
    /// Tree sizes to measure at, ascending.
    pub sizes: Vec<u64>,
    /// Requests of each kind timed at each size.
    pub reads: usize,
    /// Filling tasks at once.
    pub concurrency: usize,
    /// Inserts per filling transaction (at most 1024).
    pub batch: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// The `blockdb` binary.
    pub blockdb: PathBuf,
    /// Where the result folders go.
    pub out: PathBuf,
}

/// Latency percentiles of one kind of request, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

impl Latency {
    fn of(mut micros: Vec<u64>) -> Latency {
        micros.sort_unstable();
        Latency { p50_ms: percentile_ms(&micros, 0.5), p99_ms: percentile_ms(&micros, 0.99) }
    }
}

/// The measurements at one tree size.
#[derive(Debug, Clone, Serialize)]
pub struct SizePoint {
    /// The shard's tree size when measured.
    pub tree_size: u64,
    /// Records inserted so far.
    pub records: u64,
    /// Records per second of the fill up to this size (since the previous one).
    pub fill_records_per_s: f64,
    /// `GetEntry` with an inclusion proof, not checked.
    pub entry: Latency,
    /// Verified `get` through the client.
    pub verified_get: Latency,
    /// Hashes in an inclusion proof (the median over the entries read).
    pub proof_hashes: usize,
    /// Bytes of an encoded proof bundle (the median over the keys read).
    pub bundle_bytes: usize,
    /// The node's resident memory.
    pub rss_bytes: u64,
    /// Disk blocks of the node's data directory.
    pub disk_bytes: u64,
}

/// A restart after SIGKILL.
#[derive(Debug, Clone, Serialize)]
pub struct Recovery {
    /// The tree size before the kill.
    pub tree_size: u64,
    /// From the restart until the node reports a leader for its shard.
    pub ready_s: f64,
    /// From the restart until the first verified read answered.
    pub first_read_s: f64,
    /// The tree size after the restart: every acknowledged record is still there.
    pub tree_size_after: u64,
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct ScaleReport {
    /// Cores of the machine.
    pub cores: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Requests timed at each size.
    pub reads: usize,
    /// One point per size.
    pub points: Vec<SizePoint>,
    /// The restart after the last size.
    pub recovery: Option<Recovery>,
    /// The folder of the results.
    #[serde(skip)]
    pub dir: PathBuf,
}

fn key(i: u64) -> Vec<u8> {
    format!("scale/{i:010}").into_bytes()
}

struct Node {
    cluster: Cluster,
    policy: TrustPolicy,
    raw: pb::ledger_client::LedgerClient<Channel>,
    client: Client,
    data_dir: PathBuf,
}

impl Node {
    async fn start(spec: ClusterSpec) -> anyhow::Result<Node> {
        let cluster = Cluster::start(spec).await?;
        let admin = ClusterAdmin::new(&cluster.endpoints(), SECONDS_10)?;
        let policy = TrustPolicy::new(admin.cluster_status().await?.verifier_keys(), 1)?;
        let data_dir =
            cluster.data_dir(1).map(Path::to_path_buf).ok_or_else(|| anyhow::anyhow!("no node"))?;
        let (client, raw) = Node::clients(&cluster, &policy).await?;
        Ok(Node { cluster, policy, raw, client, data_dir })
    }

    /// A verifying client and a raw gRPC client of the node.
    async fn clients(
        cluster: &Cluster,
        policy: &TrustPolicy,
    ) -> anyhow::Result<(Client, pb::ledger_client::LedgerClient<Channel>)> {
        let mut config = ClientConfig::new(cluster.endpoints(), policy.clone());
        config.timeout = Duration::from_secs(60);
        let client = Client::connect(config, Arc::new(MemoryStore::default())).await?;
        let endpoint = cluster.endpoints().remove(0);
        let raw = pb::ledger_client::LedgerClient::connect(endpoint).await?;
        Ok((client, raw))
    }

    async fn tree_size(&self) -> anyhow::Result<u64> {
        Ok(self.client.checkpoint(ShardId(0)).await?.size.0)
    }
}

const SECONDS_10: Duration = Duration::from_secs(10);

/// Inserts records `from..to` (by key number) in transactions of `batch`, `concurrency` at once.
async fn fill(node: &Node, from: u64, to: u64, config: &ScaleConfig) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(from));
    let batch = config.batch.clamp(1, 1024) as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..config.concurrency.max(1) {
        let (next, mut raw) = (Arc::clone(&next), node.raw.clone());
        let mut rng = rand::rngs::StdRng::seed_from_u64(from ^ t as u64);
        let mut value = vec![0u8; config.value_size];
        tasks.spawn(async move {
            loop {
                let begin = next.fetch_add(batch, Ordering::Relaxed);
                if begin >= to {
                    return Ok::<(), anyhow::Error>(());
                }
                let ops: Vec<pb::TxnOp> = (begin..(begin + batch).min(to))
                    .map(|i| {
                        rng.fill(&mut value[..]);
                        pb::TxnOp {
                            op: Some(pb::txn_op::Op::Insert(pb::TxnInsert {
                                key: key(i),
                                value: value.clone(),
                            })),
                        }
                    })
                    .collect();
                // An aborted transaction is an error status; a committed one names its writes.
                let n = ops.len();
                let answer = raw.transact(pb::TransactRequest { ops }).await?.into_inner();
                if answer.writes.len() != n {
                    anyhow::bail!(
                        "a filling transaction of {n} inserts wrote {}",
                        answer.writes.len()
                    );
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Times `reads` GetEntry calls and verified gets, one at a time, over the first `records`.
async fn measure_proofs(
    node: &Node,
    tree_size: u64,
    records: u64,
    reads: usize,
) -> anyhow::Result<(Latency, Latency, usize, usize)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(tree_size);
    let (mut entry, mut get, mut hashes, mut bytes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut raw = node.raw.clone();
    for _ in 0..reads {
        let log_index = rng.random_range(0..tree_size);
        let t0 = Instant::now();
        let e = raw
            .get_entry(pb::GetEntryRequest { shard: 0, log_index, known_size: None })
            .await?
            .into_inner();
        entry.push(t0.elapsed().as_micros() as u64);
        hashes.push(e.inclusion_proof.len());

        let k = key(rng.random_range(0..records));
        let t0 = Instant::now();
        node.client.get(&k, None, Consistency::Linearizable).await?;
        get.push(t0.elapsed().as_micros() as u64);
    }
    // The size of a whole bundle, measured apart from the timed reads.
    for _ in 0..reads.min(100) {
        let k = key(rng.random_range(0..records));
        let request = pb::GetRequest {
            key: k,
            version: None,
            known_size: None,
            consistency: pb::Consistency::Linearizable as i32,
        };
        bytes.push(raw.get(request).await?.into_inner().encoded_len());
    }
    hashes.sort_unstable();
    bytes.sort_unstable();
    let median = |v: &[usize]| v.get(v.len() / 2).copied().unwrap_or(0);
    Ok((Latency::of(entry), Latency::of(get), median(&hashes), median(&bytes)))
}

/// The resident memory of process `pid`, from `/proc`.
fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))?;
    Ok(kib * 1024)
}

/// Disk blocks allocated under `dir`, in bytes.
fn disk_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    Ok(total)
}

/// Runs the scale measurements and saves them.
///
/// # Errors
/// When the node cannot be started, a request fails, or the results cannot be written.
pub async fn run(config: &ScaleConfig) -> anyhow::Result<ScaleReport> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = config.out.join(format!("scale-{stamp}"));
    std::fs::create_dir_all(&dir)?;
    let spec = ClusterSpec {
        nodes: 1,
        shards: 1,
        binary: config.blockdb.clone(),
        dir: dir.join("node"),
        extra_args: vec!["--log-level".into(), "warn".into()],
        node_args: Default::default(),
        direct: true,
    };
    let mut node = Node::start(spec).await?;
    let mut points = Vec::new();
    let mut records = 0u64;
    for &target in &config.sizes {
        let size = node.tree_size().await?;
        let t0 = Instant::now();
        if target > size {
            fill(&node, records, records + (target - size), config).await?;
            records += target - size;
        }
        let fill_s = t0.elapsed().as_secs_f64();
        let tree_size = node.tree_size().await?;
        let added = tree_size.saturating_sub(size);
        let (entry, verified_get, proof_hashes, bundle_bytes) =
            measure_proofs(&node, tree_size, records.max(1), config.reads).await?;
        let pid = node.cluster.pid(1).ok_or_else(|| anyhow::anyhow!("the node is not running"))?;
        let point = SizePoint {
            tree_size,
            records,
            fill_records_per_s: if fill_s > 0.0 { added as f64 / fill_s } else { 0.0 },
            entry,
            verified_get,
            proof_hashes,
            bundle_bytes,
            rss_bytes: rss_bytes(pid)?,
            disk_bytes: disk_bytes(&node.data_dir)?,
        };
        eprintln!("{}", row(&point));
        points.push(point);
    }
    let recovery = recover(&mut node).await?;
    eprintln!(
        "recovery after SIGKILL at {} leaves: ready in {:.2} s, first verified read in {:.2} s",
        recovery.tree_size, recovery.ready_s, recovery.first_read_s
    );
    node.cluster.stop().await;
    let report = ScaleReport {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        value_size: config.value_size,
        reads: config.reads,
        points,
        recovery: Some(recovery),
        dir: dir.clone(),
    };
    std::fs::write(dir.join("results.json"), serde_json::to_vec_pretty(&report)?)?;
    std::fs::write(dir.join("results.md"), markdown(&report))?;
    // The node's data is the bulk of the folder and not a result.
    let _ = std::fs::remove_dir_all(dir.join("node"));
    Ok(report)
}

/// Kills the node with SIGKILL, restarts it on its data and times its recovery.
async fn recover(node: &mut Node) -> anyhow::Result<Recovery> {
    let tree_size = node.tree_size().await?;
    node.cluster.kill(1).await?;
    let t0 = Instant::now();
    node.cluster.restart(1)?;
    node.cluster.wait_ready(Duration::from_secs(3600)).await?;
    let ready_s = t0.elapsed().as_secs_f64();
    let deadline = t0 + Duration::from_secs(3600);
    let first_read_s = loop {
        let attempt = async {
            let (client, raw) = Node::clients(&node.cluster, &node.policy).await?;
            client.get(&key(0), None, Consistency::Linearizable).await?;
            anyhow::Ok((client, raw))
        };
        match attempt.await {
            Ok((client, raw)) => {
                (node.client, node.raw) = (client, raw);
                break t0.elapsed().as_secs_f64();
            }
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let tree_size_after = node.tree_size().await?;
    Ok(Recovery { tree_size, ready_s, first_read_s, tree_size_after })
}

/// One size's row of the table.
fn row(p: &SizePoint) -> String {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let millions = p.records as f64 / 1e6;
    // Per million records only where there are a million or so: below that, fixed costs blur it.
    let per = |b: u64| {
        if p.tree_size >= 1_000_000 { format!("{:.0}", mib(b) / millions) } else { "-".into() }
    };
    format!(
        "| {} | {:.3} / {:.3} | {:.3} / {:.3} | {} | {} | {:.1} | {:.1} | {} | {} | {:.0} |",
        p.tree_size,
        p.entry.p50_ms,
        p.entry.p99_ms,
        p.verified_get.p50_ms,
        p.verified_get.p99_ms,
        p.proof_hashes,
        p.bundle_bytes,
        mib(p.rss_bytes),
        mib(p.disk_bytes),
        per(p.rss_bytes),
        per(p.disk_bytes),
        p.fill_records_per_s,
    )
}

/// The table of a scale run.
pub fn markdown(report: &ScaleReport) -> String {
    let mut out = format!(
        "{} cores; {}-byte values; {} requests of each kind per size, one at a time.\n\n\
         | tree size | GetEntry p50 / p99 ms | verified get p50 / p99 ms | proof hashes | bundle \
         bytes | RSS MiB | disk MiB | RSS MiB per 10^6 | disk MiB per 10^6 | fill records/s \
         |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        report.cores, report.value_size, report.reads
    );
    for p in &report.points {
        let _ = writeln!(out, "{}", row(p));
    }
    if let (Some(first), Some(last)) = (report.points.first(), report.points.last())
        && first.entry.p50_ms > 0.0
        && first.verified_get.p50_ms > 0.0
    {
        let _ = writeln!(
            out,
            "\nFrom {} to {} leaves the median GetEntry latency grew {:.2}×, the verified get's \
             {:.2}×.",
            first.tree_size,
            last.tree_size,
            last.entry.p50_ms / first.entry.p50_ms,
            last.verified_get.p50_ms / first.verified_get.p50_ms
        );
    }
    if let Some(r) = &report.recovery {
        let _ = writeln!(
            out,
            "\nRestart after SIGKILL at {} leaves: a leader in {:.2} s, the first verified read \
             in {:.2} s; {} leaves after it.",
            r.tree_size, r.ready_s, r.first_read_s, r.tree_size_after
        );
    }
    out
}
