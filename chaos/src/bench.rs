//! `blockdb-chaos bench`: BlockDB and etcd side by side, on the same machine in one run, with
//! the same client shape (one client object of each system's Rust library, shared by
//! `concurrency` tasks in a closed loop over gRPC), the same values and the same durability (both
//! fsync before acknowledging a write).
//!
//! For each topology (one node; three nodes; and for BlockDB three nodes with four shards, which
//! is compared with etcd's three nodes), each system is started fresh, then every workload runs
//! at every concurrency `runs` times; a cell reports the median run by throughput, with that
//! run's p50, p99 and p999 latency. Both clients run with their defaults: BlockDB's sends the
//! calls its tasks make while earlier ones are on their way together in one `Batch` message (each
//! still answered and verified on its own), etcd's sends one request per call. Workloads:
//!
//! | workload | BlockDB | etcd |
//! |---|---|---|
//! | `append` | `insert` of a new key (durable, receipt's key and signed checkpoint verified) | `Put` of a new key |
//! | `verified-read` | linearizable `get` of a random preloaded key, proof verified | linearizable `Range` of it |
//! | `read` | the same `Get` over raw gRPC, one request per call, the proof not checked | linearizable `Range` |
//! | `mix` | half `append`, half `verified-read` | half `Put`, half `Range` |
//! | `stale-spread` | stale `get`s, verified, each task bound to one of the 3 nodes in turn | serializable `Range`s, the same |
//! | `stale-one` | the same reads, every task on node 1 | the same |
//!
//! The two stale workloads (three-node topologies only) show read scaling. Keys read are
//! preloaded (`preload` keys) before the read workloads, not timed. Results go to
//! `OUT/bench-<unix time>/`: `results.json`, `results.md` (one table per workload with the
//! ratio BlockDB / etcd) and `bench.svg` (throughput and p99 against concurrency).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blockdb_client::{Client, ClientConfig, ClusterAdmin, Consistency, MemoryStore};
use blockdb_proto::v1 as pb;
use blockdb_verifier::TrustPolicy;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;

use crate::cluster::{Cluster, ClusterSpec};
use crate::etcd::Etcd;

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// BlockDB.
    Blockdb,
    /// etcd.
    Etcd,
}

impl System {
    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            System::Blockdb => "BlockDB",
            System::Etcd => "etcd",
        }
    }
}

impl std::str::FromStr for System {
    type Err = String;
    fn from_str(s: &str) -> Result<System, String> {
        match s {
            "blockdb" => Ok(System::Blockdb),
            "etcd" => Ok(System::Etcd),
            other => Err(format!("unknown system {other:?}; known: blockdb, etcd")),
        }
    }
}

/// Nodes and shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Topology {
    /// One node.
    #[serde(rename = "1")]
    One,
    /// Three nodes, one shard.
    #[serde(rename = "3")]
    Three,
    /// Three nodes, four shards (BlockDB; etcd runs its three nodes).
    #[serde(rename = "3x4")]
    ThreeSharded,
}

impl Topology {
    /// The name in tables and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Topology::One => "1",
            Topology::Three => "3",
            Topology::ThreeSharded => "3x4",
        }
    }

    fn nodes(self) -> u64 {
        if self == Topology::One { 1 } else { 3 }
    }

    fn shards(self) -> u32 {
        if self == Topology::ThreeSharded { 4 } else { 1 }
    }
}

impl std::str::FromStr for Topology {
    type Err = String;
    fn from_str(s: &str) -> Result<Topology, String> {
        match s {
            "1" => Ok(Topology::One),
            "3" => Ok(Topology::Three),
            "3x4" => Ok(Topology::ThreeSharded),
            other => Err(format!("unknown topology {other:?}; known: 1, 3, 3x4")),
        }
    }
}

/// What each operation does (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Durable writes of new keys.
    Append,
    /// Linearizable reads whose proofs the client checks.
    VerifiedRead,
    /// Linearizable reads, the proof not checked.
    Read,
    /// Half appends, half verified reads.
    Mix,
    /// Stale reads spread over the three nodes.
    StaleSpread,
    /// The same stale reads on one node.
    StaleOne,
}

impl Workload {
    /// The name in tables and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Append => "append",
            Workload::VerifiedRead => "verified-read",
            Workload::Read => "read",
            Workload::Mix => "mix",
            Workload::StaleSpread => "stale-spread",
            Workload::StaleOne => "stale-one",
        }
    }

    fn reads(self) -> bool {
        self != Workload::Append
    }

    fn stale(self) -> bool {
        matches!(self, Workload::StaleSpread | Workload::StaleOne)
    }
}

impl std::str::FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Workload, String> {
        [
            Workload::Append,
            Workload::VerifiedRead,
            Workload::Read,
            Workload::Mix,
            Workload::StaleSpread,
            Workload::StaleOne,
        ]
        .into_iter()
        .find(|w| w.name() == s)
        .ok_or_else(|| {
            format!(
                "unknown workload {s:?}; known: append, verified-read, read, mix, stale-spread, \
                 stale-one"
            )
        })
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The systems.
    pub systems: Vec<System>,
    /// The topologies.
    pub topologies: Vec<Topology>,
    /// The workloads, in this order (appends first fill nothing the reads need: reads use the
    /// preloaded keys).
    pub workloads: Vec<Workload>,
    /// Client tasks at once.
    pub concurrency: Vec<usize>,
    /// Measured time of each run.
    pub time: Duration,
    /// Time before each run's measurement starts.
    pub warmup: Duration,
    /// Runs of each cell; the median is reported.
    pub runs: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Keys written before the read workloads.
    pub preload: usize,
    /// The `blockdb` binary.
    pub blockdb: PathBuf,
    /// The `etcd` binary.
    pub etcd: PathBuf,
    /// Where the result folders go.
    pub out: PathBuf,
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct RunStats {
    /// Completed operations per second.
    pub ops_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// 99.9th percentile latency, ms.
    pub p999_ms: f64,
    /// Operations that failed.
    pub errors: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

/// A cell of the tables: the median of its runs.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The system.
    pub system: System,
    /// The topology.
    pub topology: Topology,
    /// The workload.
    pub workload: Workload,
    /// Client tasks.
    pub concurrency: usize,
    /// The median run by throughput.
    pub median: RunStats,
    /// Every run's throughput.
    pub runs_ops_per_s: Vec<f64>,
}

/// Every cell of a benchmark run, and where it was saved.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Cores of the machine.
    pub cores: usize,
    /// Measured seconds per run.
    pub seconds_per_run: f64,
    /// Runs per cell.
    pub runs: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// The cells.
    pub cells: Vec<Cell>,
    /// The folder of the results.
    #[serde(skip)]
    pub dir: PathBuf,
}

/// A started system and the clients of every workload.
enum Target {
    Blockdb {
        cluster: Box<Cluster>,
        client: Arc<Client>,
        per_node: Vec<Arc<Client>>,
        raw: pb::ledger_client::LedgerClient<tonic::transport::Channel>,
    },
    Etcd {
        etcd: Etcd,
        client: Box<etcd_client::Client>,
        per_node: Vec<etcd_client::Client>,
    },
}

impl Target {
    async fn start(
        system: System,
        topology: Topology,
        config: &BenchConfig,
        dir: &Path,
    ) -> anyhow::Result<Target> {
        match system {
            System::Blockdb => {
                let spec = ClusterSpec {
                    nodes: topology.nodes(),
                    shards: topology.shards(),
                    binary: config.blockdb.clone(),
                    dir: dir.to_owned(),
                    extra_args: vec!["--log-level".into(), "warn".into()],
                    node_args: BTreeMap::new(),
                    direct: true,
                };
                let cluster = Cluster::start(spec).await?;
                let endpoints = cluster.endpoints();
                let admin = ClusterAdmin::new(&endpoints, Duration::from_secs(5))?;
                let policy = TrustPolicy::new(admin.cluster_status().await?.verifier_keys(), 1)?;
                let connect = |endpoints: Vec<String>| {
                    let mut c = ClientConfig::new(endpoints, policy.clone());
                    c.timeout = Duration::from_secs(30);
                    Client::connect(c, Arc::new(MemoryStore::default()))
                };
                let client = Arc::new(connect(endpoints.clone()).await?);
                let mut per_node = Vec::new();
                for e in &endpoints {
                    per_node.push(Arc::new(connect(vec![e.clone()]).await?));
                }
                let raw = pb::ledger_client::LedgerClient::connect(endpoints[0].clone()).await?;
                Ok(Target::Blockdb { cluster: Box::new(cluster), client, per_node, raw })
            }
            System::Etcd => {
                let etcd = Etcd::start(&config.etcd, topology.nodes(), dir).await?;
                let client = Box::new(etcd_client::Client::connect(etcd.endpoints(), None).await?);
                let mut per_node = Vec::new();
                for e in etcd.endpoints() {
                    per_node.push(etcd_client::Client::connect([e], None).await?);
                }
                Ok(Target::Etcd { etcd, client, per_node })
            }
        }
    }

    async fn stop(self) {
        match self {
            Target::Blockdb { mut cluster, .. } => cluster.stop().await,
            Target::Etcd { mut etcd, .. } => etcd.stop().await,
        }
    }

    /// One operation of `workload` by task `task`: a write of `key` (new) when `write`, else a
    /// read of it, checked to return a value as long as `value`.
    async fn op(
        &self,
        workload: Workload,
        task: usize,
        key: &[u8],
        value: &[u8],
        write: bool,
    ) -> Result<(), String> {
        let node = task % 3;
        match self {
            Target::Blockdb { client, per_node, raw, .. } => {
                if write {
                    return client.insert(key, value).await.map(drop).map_err(|e| e.to_string());
                }
                let (client, consistency) = match workload {
                    Workload::StaleSpread => (&per_node[node % per_node.len()], Consistency::Stale),
                    Workload::StaleOne => (&per_node[0], Consistency::Stale),
                    _ => (client, Consistency::Linearizable),
                };
                if workload == Workload::Read {
                    let req = pb::GetRequest {
                        key: key.to_vec(),
                        version: None,
                        known_size: None,
                        consistency: pb::Consistency::Linearizable as i32,
                    };
                    let bundle = raw.clone().get(req).await.map_err(|e| e.to_string())?;
                    let got =
                        bundle.into_inner().record.and_then(|r| r.value).map_or(0, |v| v.len());
                    return check_len(got, value);
                }
                let read = client.get(key, None, consistency).await.map_err(|e| e.to_string())?;
                check_len(read.record.value.as_ref().map_or(0, Vec::len), value)
            }
            Target::Etcd { client, per_node, .. } => {
                if write {
                    return client
                        .kv_client()
                        .put(key, value, None)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string());
                }
                let (mut kv, options) = match workload {
                    Workload::StaleSpread => (
                        per_node[node % per_node.len()].kv_client(),
                        Some(etcd_client::GetOptions::new().with_serializable()),
                    ),
                    Workload::StaleOne => (
                        per_node[0].kv_client(),
                        Some(etcd_client::GetOptions::new().with_serializable()),
                    ),
                    _ => (client.kv_client(), None),
                };
                let answer = kv.get(key, options).await.map_err(|e| e.to_string())?;
                check_len(answer.kvs().first().map_or(0, |kv| kv.value().len()), value)
            }
        }
    }
}

fn check_len(got: usize, value: &[u8]) -> Result<(), String> {
    if got == value.len() {
        Ok(())
    } else {
        Err(format!("read a value of {got} bytes, expected {}", value.len()))
    }
}

fn preload_key(i: usize) -> Vec<u8> {
    format!("pre/{i:08}").into_bytes()
}

/// Writes the keys the read workloads read, 64 at a time.
async fn preload(target: &Arc<Target>, n: usize, value_size: usize) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..64.min(n.max(1)) {
        let target = Arc::clone(target);
        tasks.spawn(async move {
            let value = vec![b'p'; value_size];
            for i in (t..n).step_by(64) {
                target.op(Workload::Append, t, &preload_key(i), &value, true).await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?.map_err(|e| anyhow::anyhow!("preloading failed: {e}"))?;
    }
    Ok(())
}

/// Runs `workload` with `concurrency` tasks: `warmup` unmeasured, then `time` measured.
async fn measure(
    target: &Arc<Target>,
    config: &BenchConfig,
    workload: Workload,
    concurrency: usize,
    tag: &str,
) -> RunStats {
    let start = Instant::now();
    let from = start + config.warmup;
    let until = from + config.time;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..concurrency {
        let target = Arc::clone(target);
        let (tag, value_size, preloaded) = (tag.to_owned(), config.value_size, config.preload);
        tasks.spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(task as u64);
            let mut value = vec![0u8; value_size];
            rng.fill(&mut value[..]);
            let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0u64, None);
            let mut seq = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= until {
                    break;
                }
                let write = match workload {
                    Workload::Append => true,
                    Workload::Mix => rng.random_bool(0.5),
                    _ => false,
                };
                let key = if write {
                    seq += 1;
                    format!("{tag}/{task}/{seq}").into_bytes()
                } else {
                    preload_key(rng.random_range(0..preloaded.max(1)))
                };
                let result = target.op(workload, task, &key, &value, write).await;
                if t0 < from {
                    continue;
                }
                match result {
                    Ok(()) => latencies.push(t0.elapsed().as_micros() as u64),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latencies, errors, first_error)
        });
    }
    let (mut all, mut errors, mut first_error) = (Vec::new(), 0, None);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((l, e, f)) => {
                all.extend(l);
                errors += e;
                if first_error.is_none() {
                    first_error = f;
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(format!("a client task failed: {e}"));
            }
        }
    }
    all.sort_unstable();
    let pct = |q: f64| percentile_ms(&all, q);
    RunStats {
        ops_per_s: all.len() as f64 / config.time.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        p999_ms: pct(0.999),
        errors,
        first_error,
    }
}

/// The `q` quantile (0 to 1, nearest rank) of `sorted_micros`, in milliseconds; 0 for none.
pub(crate) fn percentile_ms(sorted_micros: &[u64], q: f64) -> f64 {
    if sorted_micros.is_empty() {
        return 0.0;
    }
    let n = sorted_micros.len();
    let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    sorted_micros[i] as f64 / 1000.0
}

/// Runs the benchmark, prints each cell as it is measured, and saves the results.
///
/// # Errors
/// When a system cannot be started or the results cannot be written.
pub async fn run(config: &BenchConfig) -> anyhow::Result<BenchReport> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = config.out.join(format!("bench-{stamp}"));
    std::fs::create_dir_all(&dir)?;
    let mut cells = Vec::new();
    for &topology in &config.topologies {
        for &system in &config.systems {
            if system == System::Etcd && topology == Topology::ThreeSharded {
                // etcd has no shards: BlockDB's 3x4 is compared with etcd's three nodes.
                continue;
            }
            let workloads: Vec<Workload> = config
                .workloads
                .iter()
                .copied()
                .filter(|w| !w.stale() || topology.nodes() == 3)
                .collect();
            if workloads.is_empty() {
                continue;
            }
            let data = dir.join(format!("{}-{}", system.name(), topology.name()));
            let target = Arc::new(Target::start(system, topology, config, &data).await?);
            if workloads.iter().any(|w| w.reads()) {
                eprintln!(
                    "{} {}: preloading {} keys",
                    system.name(),
                    topology.name(),
                    config.preload
                );
                preload(&target, config.preload, config.value_size).await?;
            }
            for &workload in &workloads {
                for &concurrency in &config.concurrency {
                    let mut runs = Vec::new();
                    for r in 0..config.runs.max(1) {
                        let tag = format!("{}-{concurrency}-{r}", workload.name());
                        runs.push(measure(&target, config, workload, concurrency, &tag).await);
                    }
                    let mut order: Vec<usize> = (0..runs.len()).collect();
                    order.sort_by(|&a, &b| runs[a].ops_per_s.total_cmp(&runs[b].ops_per_s));
                    let median = runs[order[order.len() / 2]].clone();
                    eprintln!(
                        "{} {} {} c={concurrency}: {:.0} ops/s p50 {:.2} ms p99 {:.2} ms p999 \
                         {:.2} ms{}",
                        system.name(),
                        topology.name(),
                        workload.name(),
                        median.ops_per_s,
                        median.p50_ms,
                        median.p99_ms,
                        median.p999_ms,
                        match &median.first_error {
                            Some(e) => format!(" ({} errors; first: {e})", median.errors),
                            None => String::new(),
                        }
                    );
                    cells.push(Cell {
                        system,
                        topology,
                        workload,
                        concurrency,
                        runs_ops_per_s: runs.iter().map(|r| r.ops_per_s).collect(),
                        median,
                    });
                }
            }
            match Arc::try_unwrap(target) {
                Ok(t) => t.stop().await,
                Err(_) => anyhow::bail!("a client task outlived its run"),
            }
            // The next system starts on an idle machine.
            let _ = std::fs::remove_dir_all(&data);
        }
    }
    let report = BenchReport {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        seconds_per_run: config.time.as_secs_f64(),
        runs: config.runs,
        value_size: config.value_size,
        cells,
        dir: dir.clone(),
    };
    std::fs::write(dir.join("results.json"), serde_json::to_vec_pretty(&report)?)?;
    std::fs::write(dir.join("results.md"), markdown(&report))?;
    plot(&report, &dir.join("bench.svg"))?;
    Ok(report)
}

/// The etcd cell BlockDB's `cell` is compared with.
fn peer<'a>(report: &'a BenchReport, cell: &Cell) -> Option<&'a Cell> {
    let topology =
        if cell.topology == Topology::ThreeSharded { Topology::Three } else { cell.topology };
    report.cells.iter().find(|c| {
        c.system == System::Etcd
            && c.topology == topology
            && c.workload == cell.workload
            && c.concurrency == cell.concurrency
    })
}

/// One table per workload: BlockDB and etcd side by side, and the ratios.
pub fn markdown(report: &BenchReport) -> String {
    let mut out = format!(
        "{} cores; {} s per run, median of {} runs; {}-byte values.\n",
        report.cores, report.seconds_per_run, report.runs, report.value_size
    );
    let mut workloads: Vec<Workload> = report.cells.iter().map(|c| c.workload).collect();
    workloads.sort();
    workloads.dedup();
    let ms = |s: &RunStats| format!("{:.2} / {:.2} / {:.2}", s.p50_ms, s.p99_ms, s.p999_ms);
    for w in workloads {
        let _ = write!(
            out,
            "\n### {}\n\n| nodes | clients | BlockDB ops/s | BlockDB p50 / p99 / p999 ms | etcd \
             ops/s | etcd p50 / p99 / p999 ms | ops ratio | p99 ratio |\n|---|---:|---:|---:|---:|\
             ---:|---:|---:|\n",
            w.name()
        );
        let mut rows: Vec<&Cell> = report.cells.iter().filter(|c| c.workload == w).collect();
        rows.sort_by_key(|c| (c.topology, c.concurrency, c.system));
        for c in rows.iter().filter(|c| c.system == System::Blockdb) {
            let e = peer(report, c);
            let errors = if c.median.errors > 0 {
                format!(" ({} errors)", c.median.errors)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0}{errors} | {} | {} | {} | {} | {} |",
                c.topology.name(),
                c.concurrency,
                c.median.ops_per_s,
                ms(&c.median),
                e.map_or("-".into(), |e| format!("{:.0}", e.median.ops_per_s)),
                e.map_or("-".into(), |e| ms(&e.median)),
                e.filter(|e| e.median.ops_per_s > 0.0).map_or("-".into(), |e| format!(
                    "{:.2}×",
                    c.median.ops_per_s / e.median.ops_per_s
                )),
                e.filter(|e| e.median.p99_ms > 0.0)
                    .map_or("-".into(), |e| format!("{:.2}×", c.median.p99_ms / e.median.p99_ms)),
            );
        }
        for c in rows.iter().filter(|c| c.system == System::Etcd) {
            let blockdb_has_it = rows.iter().any(|b| {
                b.system == System::Blockdb
                    && b.topology == c.topology
                    && b.concurrency == c.concurrency
            });
            if !blockdb_has_it {
                let _ = writeln!(
                    out,
                    "| {} | {} | - | - | {:.0} | {} | - | - |",
                    c.topology.name(),
                    c.concurrency,
                    c.median.ops_per_s,
                    ms(&c.median)
                );
            }
        }
    }
    out
}

/// Throughput and p99 latency against concurrency, one row of two charts per workload, a line
/// per system and topology.
///
/// # Errors
/// When the file cannot be written.
pub fn plot(report: &BenchReport, path: &Path) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let mut workloads: Vec<Workload> = report.cells.iter().map(|c| c.workload).collect();
    workloads.sort();
    workloads.dedup();
    let mut levels: Vec<usize> = report.cells.iter().map(|c| c.concurrency).collect();
    levels.sort_unstable();
    levels.dedup();
    if workloads.is_empty() || levels.is_empty() {
        return Ok(());
    }
    let height = 300 * workloads.len() as u32;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rows = root.split_evenly((workloads.len(), 2));
    let x_of = |c: usize| levels.iter().position(|&l| l == c).unwrap_or(0) as f64;
    let series: Vec<(System, Topology)> = {
        let mut s: Vec<(System, Topology)> =
            report.cells.iter().map(|c| (c.system, c.topology)).collect();
        s.sort();
        s.dedup();
        s
    };
    for (i, w) in workloads.iter().enumerate() {
        for (j, (what, value)) in [
            ("ops/s", (|s: &RunStats| s.ops_per_s) as fn(&RunStats) -> f64),
            ("p99 ms", |s: &RunStats| s.p99_ms),
        ]
        .into_iter()
        .enumerate()
        {
            let area = &rows[i * 2 + j];
            let cells: Vec<&Cell> = report.cells.iter().filter(|c| c.workload == *w).collect();
            let top = cells.iter().map(|c| value(&c.median)).fold(0.0, f64::max).max(1.0) * 1.1;
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{} — {what}", w.name()), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(60)
                .build_cartesian_2d(-0.2..(levels.len() as f64 - 0.8), 0.0..top)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let labels = levels.clone();
            chart
                .configure_mesh()
                .x_labels(levels.len())
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 0.01 && i >= 0.0 {
                        labels.get(i as usize).map_or(String::new(), |c| format!("{c} clients"))
                    } else {
                        String::new()
                    }
                })
                .draw()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for (k, (system, topology)) in series.iter().enumerate() {
                let mut points: Vec<(f64, f64)> = cells
                    .iter()
                    .filter(|c| c.system == *system && c.topology == *topology)
                    .map(|c| (x_of(c.concurrency), value(&c.median)))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                if points.is_empty() {
                    continue;
                }
                let color = Palette99::pick(k).to_rgba();
                let style = if *system == System::Blockdb {
                    color.stroke_width(2)
                } else {
                    color.stroke_width(1)
                };
                chart
                    .draw_series(LineSeries::new(points, style))
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .label(format!("{} {} node(s)", system.name(), topology.name()))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
