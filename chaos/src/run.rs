//! One chaos run: start a cluster, run a workload's client processes while a nemesis injects
//! faults, heal, read the final state, check the history, and leave everything in one folder.
//!
//! ```text
//!  Cluster::start ──► processes (workload, bounded rate) ──► history.jsonl
//!        │                      ▲
//!        └── nemesis: healthy interval, fault, healthy interval, fault, ... ──► nemesis.jsonl
//!  end: stop processes, heal everything, final reads, checkers ──► results.json, plots
//! ```
//!
//! The run folder holds `history.jsonl`, `nemesis.jsonl`, `results.json` (the seed, the settings,
//! counts, and one verdict per checker), the nodes' data directories and logs, and the plots. A
//! run is valid only when every checker passes; the seed fixes every random choice of the
//! harness (which faults, which nodes, which operations), though not the cluster's timing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blockdb_client::{Client, ClientConfig, ClusterAdmin, MemoryStore};
use blockdb_verifier::{ShardId, TrustPolicy};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng, SeedableRng as _};
use serde_json::{Value, json};

use crate::cluster::{Cluster, ClusterSpec};
use crate::history::{Event, EventType, History};
use crate::linearizability::{Budget, Status, check_history};
use crate::model::versioned::VersionedRegister;
use crate::nemesis::{self, Network as _, Shape};
use crate::proxy::NodeId;
use crate::timeline::Timeline;
use crate::workload::{self, Op, Outcome, Workload};

/// A fault the nemesis may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A network partition of some shape.
    Partition,
    /// `kill -9` of a node (restarted when healed).
    Kill,
    /// SIGSTOP of a node (resumed when healed).
    Pause,
    /// Every peer link delayed by 50 to 250 ms each way.
    Delay,
    /// Every link into and out of one node stalled: connections stay open, nothing moves.
    Stall,
    /// A follower is killed, one of its WAL or table files damaged (a flipped bit or a
    /// truncation), and restarted: it must refuse to start with a clear error, or serve only
    /// correct data and catch up. The next disk fault (or the final heal) replaces it: removed
    /// from the cluster, emptied, joined again, caught up from its peers.
    Disk,
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        match s {
            "partition" => Ok(Fault::Partition),
            "kill" => Ok(Fault::Kill),
            "pause" => Ok(Fault::Pause),
            "delay" => Ok(Fault::Delay),
            "stall" => Ok(Fault::Stall),
            "disk" => Ok(Fault::Disk),
            other => Err(format!(
                "unknown nemesis {other:?}; known: partition, kill, pause, delay, stall, disk"
            )),
        }
    }
}

/// The settings of a run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Nodes (3 or 5).
    pub nodes: u64,
    /// Shards.
    pub shards: u32,
    /// The workload.
    pub workload: Workload,
    /// The faults to choose from; none: a run without faults.
    pub faults: Vec<Fault>,
    /// How long the workload runs.
    pub time: Duration,
    /// The seed of every random choice.
    pub seed: u64,
    /// Client processes running at once.
    pub concurrency: usize,
    /// Operations per second over all processes, at most.
    pub rate: f64,
    /// Keys of the register workload in use at once.
    pub keys: usize,
    /// How long the register workload uses a set of keys before every process moves on to
    /// fresh ones (short histories per key keep the linearizability check small).
    pub key_lifetime: Duration,
    /// How long each fault lasts, and each healthy stretch between faults.
    pub fault_interval: Duration,
    /// Where the run's folder is made.
    pub out_dir: PathBuf,
    /// The `blockdb` binary.
    pub blockdb: PathBuf,
    /// More `blockdb serve` flags for every node.
    pub node_args: Vec<String>,
    /// Skew each node's clock by a random amount up to this, either way (`--clock-skew-ms`):
    /// commit times come from whichever node leads, and no checker may notice.
    pub clock_skew: Option<Duration>,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The run's folder.
    pub dir: PathBuf,
    /// Whether every checker passed.
    pub valid: bool,
    /// One line for people.
    pub summary: String,
}

/// The history as it is recorded: events appended under one lock, so line order is real-time
/// order.
struct Recorder {
    start: Instant,
    history: Mutex<History>,
    broken: Mutex<Vec<String>>,
}

impl Recorder {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn invoke(&self, process: u64, op: &Op) -> Event {
        let mut h = self.history.lock().expect("no panic holding the lock");
        let e = Event::invoke(process, op.f, Some(&op.key), op.value.clone(), self.now_ns());
        self.push(&mut h, e.clone());
        e
    }

    fn complete(&self, invoke: &Event, outcome: &Outcome) {
        let mut h = self.history.lock().expect("no panic holding the lock");
        let t = self.now_ns();
        let e = match outcome {
            Outcome::Ok(v) => Event::complete(invoke, EventType::Ok, v.clone(), None, t),
            Outcome::Fail(why, v) => {
                Event::complete(invoke, EventType::Fail, v.clone(), Some(why), t)
            }
            Outcome::Info(why) => Event::complete(invoke, EventType::Info, None, Some(why), t),
            Outcome::Unverified(why) => {
                self.broken.lock().expect("no panic").push(format!("verification failed: {why}"));
                Event::complete(invoke, EventType::Info, None, Some("verification"), t)
            }
        };
        self.push(&mut h, e);
    }

    fn push(&self, h: &mut History, e: Event) {
        if let Err(err) = h.push(e) {
            self.broken.lock().expect("no panic").push(format!("recorder: {err}"));
        }
    }
}

/// Runs `config` and returns what it found; the folder is written either way.
///
/// # Errors
/// When the cluster cannot be started or the folder written.
pub async fn run(config: RunConfig) -> anyhow::Result<RunResult> {
    let dir = config.out_dir.join(format!(
        "{}-{}-seed{}-{}",
        config.workload.name(),
        config.nodes,
        config.seed,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    ));
    std::fs::create_dir_all(&dir)?;
    let mut skew_rng = StdRng::seed_from_u64(config.seed ^ 0x5eed_c10c);
    let skews: BTreeMap<NodeId, i64> = match config.clock_skew {
        None => BTreeMap::new(),
        Some(max) => {
            let max = max.as_millis() as i64;
            (1..=config.nodes).map(|i| (i, skew_rng.random_range(-max..=max))).collect()
        }
    };
    let spec = ClusterSpec {
        nodes: config.nodes,
        shards: config.shards,
        binary: config.blockdb.clone(),
        dir: dir.join("nodes"),
        extra_args: [
            vec!["--log-level".into(), "info,openraft=error,openraft::replication=off".into()],
            config.node_args.clone(),
        ]
        .concat(),
        node_args: skews
            .iter()
            .map(|(&i, &ms)| (i, vec![format!("--clock-skew-ms={ms}")]))
            .collect(),
        direct: false,
    };
    let cluster = Cluster::start(spec).await?;
    let endpoints = cluster.endpoints();
    let admin = ClusterAdmin::new(&endpoints, Duration::from_secs(2))?;
    let keys = admin.cluster_status().await?.verifier_keys();
    let policy = TrustPolicy::new(keys, 1)?;
    if config.workload == Workload::Bank {
        let mut setup = ClientConfig::new(endpoints.clone(), policy.clone());
        setup.timeout = Duration::from_secs(10);
        let client = Client::connect(setup, Arc::new(MemoryStore::default())).await?;
        crate::txn_workload::bank_setup(&client, config.keys).await.map_err(anyhow::Error::msg)?;
    }
    let cluster = Arc::new(tokio::sync::Mutex::new(cluster));

    let recorder = Arc::new(Recorder {
        start: Instant::now(),
        history: Mutex::new(History::new()),
        broken: Mutex::new(Vec::new()),
    });
    let deadline = Instant::now() + config.time;
    let mut workers = tokio::task::JoinSet::new();
    for p in 0..config.concurrency {
        let endpoint = endpoints[p % endpoints.len()].clone();
        let (recorder, policy, config) = (Arc::clone(&recorder), policy.clone(), config.clone());
        workers
            .spawn(async move { worker(p, endpoint, policy, recorder, &config, deadline).await });
    }
    let mut timeline = Timeline::default();
    nemesis_loop(&config, &cluster, &recorder, &mut timeline, deadline).await;
    while workers.join_next().await.is_some() {}

    // Heal everything and let the cluster settle before the final reads.
    heal_all(&cluster, &recorder, &mut timeline).await;
    cluster.lock().await.wait_ready(Duration::from_secs(60)).await?;
    // The final reads go to a node that runs (one with damaged files may have stayed down).
    let reader = {
        let c = cluster.lock().await;
        c.ids().into_iter().find(|&i| c.is_running(i)).and_then(|i| c.endpoint(i))
    }
    .ok_or_else(|| anyhow::anyhow!("no node runs after healing"))?;
    let final_process = config.concurrency as u64 * 1_000_000;
    final_reads(&config, &reader, &policy, &recorder, final_process).await;

    let history = std::mem::take(&mut *recorder.history.lock().expect("no panic"));
    let broken = std::mem::take(&mut *recorder.broken.lock().expect("no panic"));
    let ledger = match config.workload {
        Workload::Ledger => Some(ledger_check(&history, &reader, &policy, config.shards).await),
        _ => None,
    };
    let mut out = std::fs::File::create(dir.join("history.jsonl"))?;
    history.write_jsonl(&mut out)?;
    timeline.write_jsonl(std::fs::File::create(dir.join("nemesis.jsonl"))?)?;
    for (name, plot) in [
        ("latency.svg", crate::plot::latency_svg as fn(&History, &Timeline, &std::path::Path) -> _),
        ("throughput.svg", crate::plot::throughput_svg),
    ] {
        if let Err(e) = plot(&history, &timeline, &dir.join(name)) {
            tracing::warn!(error = %e, "a plot could not be drawn");
        }
    }
    cluster.lock().await.stop().await;

    let (valid, results, summary) = check(&config, &history, &broken, ledger);
    let results = json!({
        "seed": config.seed,
        "nodes": config.nodes,
        "shards": config.shards,
        "workload": format!("{:?}", config.workload).to_lowercase(),
        "faults": config.faults.iter().map(|f| format!("{f:?}").to_lowercase()).collect::<Vec<_>>(),
        "time_s": config.time.as_secs_f64(),
        "concurrency": config.concurrency,
        "rate": config.rate,
        "valid": valid,
        "checkers": results,
        "faults_injected": timeline.faults.len(),
        "clock_skews_ms": skews,
    });
    std::fs::write(dir.join("results.json"), serde_json::to_vec_pretty(&results)?)?;
    let summary =
        format!("{} {}: {summary}", if valid { "VALID" } else { "INVALID" }, dir.display());
    Ok(RunResult { dir, valid, summary })
}

async fn worker(
    p: usize,
    endpoint: String,
    policy: TrustPolicy,
    recorder: Arc<Recorder>,
    config: &RunConfig,
    deadline: Instant,
) {
    let mut rng = StdRng::seed_from_u64(config.seed.wrapping_mul(1_000_003).wrapping_add(p as u64));
    let mut client_config = ClientConfig::new(vec![endpoint], policy);
    client_config.timeout = Duration::from_secs(2);
    client_config.retries = 1;
    let client = loop {
        match Client::connect(client_config.clone(), Arc::new(MemoryStore::default())).await {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(_) => return,
        }
    };
    let pause = Duration::from_secs_f64(config.concurrency as f64 / config.rate.max(0.001));
    let mut process = p as u64;
    let mut counter = 0u64;
    let mut last_seen = vec![None; config.keys];
    let mut inserted = Vec::new();
    let mut epoch = 0;
    while Instant::now() < deadline {
        counter += 1;
        let now_epoch = key_epoch(recorder.start.elapsed(), config.key_lifetime);
        if now_epoch != epoch {
            epoch = now_epoch;
            last_seen.iter_mut().for_each(|s| *s = None);
        }
        let base = epoch * config.keys;
        let op = match config.workload {
            Workload::Register => {
                workload::next_register_op(&mut rng, base, config.keys, counter, &last_seen)
            }
            Workload::Set => Op { f: "add", key: format!("e{p}-{counter}"), value: None },
            Workload::Ledger => {
                workload::next_ledger_op(&mut rng, p, counter, config.shards, &inserted)
            }
            Workload::ListAppend => {
                crate::txn_workload::next_list_append_op(&mut rng, p, counter, config.keys)
            }
            Workload::Bank => crate::txn_workload::next_bank_op(&mut rng, config.keys),
        };
        let invoke = recorder.invoke(process, &op);
        let outcome = workload::run_op(&client, &op, Duration::from_secs(5)).await;
        recorder.complete(&invoke, &outcome);
        if let (Outcome::Ok(Some(v)), Some(k)) = (&outcome, op.key.strip_prefix('r'))
            && let (Some(version), Ok(k)) = (v["version"].as_u64(), k.parse::<usize>())
            && let Some(slot) = k.checked_sub(base).and_then(|k| last_seen.get_mut(k))
        {
            *slot = Some(version);
        }
        if op.f == "insert" && matches!(outcome, Outcome::Ok(_)) {
            inserted.push(op.key.clone());
        }
        if matches!(outcome, Outcome::Info(_) | Outcome::Unverified(_)) {
            // The process may still be inside that operation: a new one takes over.
            process += config.concurrency as u64;
        }
        // Rate: each process waits its share, jittered.
        let jitter = rng.random_range(0.5..1.5);
        tokio::time::sleep(pause.mul_f64(jitter)).await;
    }
}

/// Which set of register keys is in use `elapsed` into the run.
fn key_epoch(elapsed: Duration, lifetime: Duration) -> usize {
    if lifetime.is_zero() { 0 } else { (elapsed.as_nanos() / lifetime.as_nanos()) as usize }
}

async fn nemesis_loop(
    config: &RunConfig,
    cluster: &Arc<tokio::sync::Mutex<Cluster>>,
    recorder: &Recorder,
    timeline: &mut Timeline,
    deadline: Instant,
) {
    if config.faults.is_empty() {
        tokio::time::sleep_until(deadline.into()).await;
        return;
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    loop {
        let healthy_until = Instant::now() + config.fault_interval;
        if healthy_until + config.fault_interval > deadline {
            tokio::time::sleep_until(deadline.into()).await;
            return;
        }
        tokio::time::sleep_until(healthy_until.into()).await;
        let Some(&fault) = config.faults.choose(&mut rng) else { return };
        let mut c = cluster.lock().await;
        let ids = c.ids();
        let leader = c.leader(0).await;
        let target = if rng.random_bool(0.5) { leader } else { None }
            .unwrap_or_else(|| ids[rng.random_range(0..ids.len())]);
        let (kind, what) = match fault {
            Fault::Partition => {
                let mut shapes = vec![Shape::Isolate(target), Shape::Halves];
                if ids.len() >= 5 {
                    shapes.extend([Shape::Bridge, Shape::MajoritiesRing]);
                }
                let shape = *shapes.choose(&mut rng).unwrap_or(&Shape::Halves);
                let grudge = nemesis::grudge(shape, &ids, &mut rng);
                nemesis::apply(c.links(), &grudge);
                ("partition", format!("{shape}: {}", describe(&nemesis::reachable(&ids, &grudge))))
            }
            Fault::Kill => {
                if let Err(e) = c.kill(target).await {
                    tracing::warn!(error = %e, "kill failed");
                }
                ("kill", format!("kill -9 node {target}"))
            }
            Fault::Pause => {
                if let Err(e) = c.pause(target) {
                    tracing::warn!(error = %e, "pause failed");
                }
                ("pause", format!("SIGSTOP node {target}"))
            }
            Fault::Delay => {
                let ms = rng.random_range(50..=250);
                for &a in &ids {
                    for &b in ids.iter().filter(|&&b| b != a) {
                        c.links().delay(a, b, Duration::from_millis(ms));
                    }
                }
                ("delay", format!("every peer link delayed {ms} ms"))
            }
            Fault::Stall => {
                for &b in ids.iter().filter(|&&b| b != target) {
                    c.links().stall(target, b);
                    c.links().stall(b, target);
                }
                ("stall", format!("every link of node {target} stalled"))
            }
            Fault::Disk => ("disk", disk_fault(&mut c, leader, &mut rng).await),
        };
        let i = timeline.begin(recorder.now_ns(), kind, what);
        drop(c);
        tokio::time::sleep(config.fault_interval).await;
        let mut c = cluster.lock().await;
        match fault {
            Fault::Partition | Fault::Delay | Fault::Stall => c.links().heal(),
            // Nothing to heal: the node runs on its damaged files or has refused to.
            Fault::Disk => {}
            Fault::Kill => {
                if let Err(e) = c.restart(target) {
                    tracing::warn!(error = %e, "restart failed");
                }
            }
            Fault::Pause => {
                if let Err(e) = c.resume(target) {
                    tracing::warn!(error = %e, "resume failed");
                }
            }
        }
        timeline.end(i, recorder.now_ns());
    }
}

fn describe(reach: &BTreeMap<NodeId, std::collections::BTreeSet<NodeId>>) -> String {
    let parts: Vec<String> = reach
        .iter()
        .map(|(n, can)| {
            format!("{n}→{{{}}}", can.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
        })
        .collect();
    parts.join(" ")
}

/// Damages a follower's storage, or replaces a node damaged before, and says what happened.
///
/// At most one node is damaged at a time, so damaged nodes never outnumber a majority: a node
/// damaged by the previous disk fault is replaced (removed, emptied, joined again; it catches up
/// from its peers) before another is damaged. A damaged node is killed, one of its WAL or table
/// files damaged, and restarted: it must refuse to start with a clear error, or run and refuse to
/// serve what it finds damaged — never serve wrong data, which the checkers would see.
async fn disk_fault(c: &mut Cluster, leader: Option<NodeId>, rng: &mut StdRng) -> String {
    if let Some(&damaged) = c.damaged().first() {
        return match c.replace(damaged).await {
            Ok(took) => format!(
                "replaced node {damaged} (removed, emptied, joined again and added back in {} ms)",
                took.as_millis()
            ),
            Err(e) => format!("{e}"),
        };
    }
    let candidates: Vec<NodeId> =
        c.ids().into_iter().filter(|&i| Some(i) != leader && c.is_running(i)).collect();
    let Some(&target) = candidates.choose(rng) else {
        return "no running follower to damage".into();
    };
    if let Err(e) = c.kill(target).await {
        return format!("could not kill node {target}: {e}");
    }
    let what = match c.corrupt(target, rng) {
        Ok(w) => w,
        Err(e) => format!("node {target}: {e}"),
    };
    if let Err(e) = c.restart(target) {
        return format!("{what}; it could not be restarted: {e}");
    }
    // A node that refuses its damaged files stops within moments of starting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    match c.exited(target) {
        Some(status) => {
            let last = c.log_tail(target, 3);
            format!("{what}; it refused to start ({status}): {last}")
        }
        None => format!("{what}; it runs"),
    }
}

async fn heal_all(
    cluster: &Arc<tokio::sync::Mutex<Cluster>>,
    recorder: &Recorder,
    timeline: &mut Timeline,
) {
    let mut c = cluster.lock().await;
    c.links().heal();
    for id in c.ids() {
        if c.is_running(id) {
            let _ = c.resume(id);
        } else if let Err(e) = c.restart(id) {
            tracing::warn!(node = id, error = %e, "restart failed");
        }
    }
    // Damaged nodes are replaced, so that the final reads have every node; a node that still
    // refuses to start stays down.
    for id in c.damaged() {
        match c.replace(id).await {
            Ok(took) => tracing::info!(node = id, ?took, "replaced a damaged node"),
            Err(e) => tracing::warn!(node = id, error = %e, "could not replace a damaged node"),
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in c.ids() {
        if let Some(status) = c.exited(id) {
            tracing::warn!(node = id, %status, "refuses to start; left down");
        }
    }
    timeline.end_all(recorder.now_ns());
}

async fn final_reads(
    config: &RunConfig,
    endpoint: &str,
    policy: &TrustPolicy,
    recorder: &Recorder,
    process: u64,
) {
    let mut client_config = ClientConfig::new(vec![endpoint.to_owned()], policy.clone());
    client_config.timeout = Duration::from_secs(10);
    let Ok(client) = Client::connect(client_config, Arc::new(MemoryStore::default())).await else {
        recorder.broken.lock().expect("no panic").push("the final reads could not connect".into());
        return;
    };
    match config.workload {
        Workload::Register => {
            let epochs = key_epoch(config.time, config.key_lifetime) + 1;
            for k in 0..config.keys * epochs {
                let op = Op { f: "read", key: workload::register_key(k), value: None };
                let invoke = recorder.invoke(process, &op);
                let outcome = workload::run_op(&client, &op, Duration::from_secs(15)).await;
                recorder.complete(&invoke, &outcome);
            }
        }
        Workload::Set => {
            let op = Op { f: "read-all", key: "set".into(), value: None };
            let invoke = recorder.invoke(process, &op);
            let outcome = match read_all(&client, config.shards).await {
                Ok(elements) => Outcome::Ok(Some(Value::from(elements))),
                Err(e) => Outcome::Fail(e, None),
            };
            recorder.complete(&invoke, &outcome);
        }
        // Checked from the history and the final log by `ledger_check`.
        Workload::Ledger => {}
        Workload::ListAppend => {
            let op = Op { f: "final", key: "lists".into(), value: None };
            let invoke = recorder.invoke(process, &op);
            let outcome = match crate::txn_workload::final_lists(&client, config.keys).await {
                Ok(lists) => Outcome::Ok(Some(lists)),
                Err(e) => Outcome::Fail(e, None),
            };
            recorder.complete(&invoke, &outcome);
        }
        Workload::Bank => {
            let accounts = json!({ "accounts": config.keys });
            let op = Op { f: "read-all", key: "bank".into(), value: Some(accounts) };
            let invoke = recorder.invoke(process, &op);
            let outcome = crate::txn_workload::read_all(&client, config.keys).await;
            recorder.complete(&invoke, &outcome);
        }
    }
}

async fn read_all(client: &Client, shards: u32) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for s in 0..shards {
        let mut start = Vec::new();
        loop {
            let (page, next) =
                client.scan(ShardId(s), &start, &[], 1000).await.map_err(|e| e.to_string())?;
            out.extend(page.iter().map(|r| String::from_utf8_lossy(&r.record.key).into_owned()));
            match next {
                Some(n) => start = n,
                None => break,
            }
        }
    }
    Ok(out)
}

/// Runs the workload's checkers: (valid, per-checker results, summary).
fn check(
    config: &RunConfig,
    history: &History,
    broken: &[String],
    ledger: Option<LedgerReport>,
) -> (bool, Value, String) {
    let mut counts = BTreeMap::<&str, usize>::new();
    for e in history.events() {
        *counts.entry(e.kind.as_str()).or_default() += 1;
    }
    let mut results = serde_json::Map::new();
    results.insert(
        "verification".into(),
        json!({ "valid": broken.is_empty(), "problems": broken.iter().take(20).collect::<Vec<_>>() }),
    );
    let mut valid = broken.is_empty();
    let verdict = match config.workload {
        Workload::Register => {
            // The same steps per key as `blockdb-chaos check`, so a re-check agrees.
            let budget = Budget {
                time: Some(Duration::from_secs(600)),
                steps_max: crate::linearizability::STEPS_MAX_DEFAULT,
            };
            match check_history(&VersionedRegister, history, &budget) {
                Ok(report) => {
                    let status = report.status();
                    valid &= status == Status::Linearizable;
                    let keys: Vec<Value> = report
                        .keys
                        .iter()
                        .map(|k| {
                            json!({
                                "key": k.key,
                                "operations": k.operations,
                                "status": format!("{:?}", k.verdict.status()),
                                "explanation": match &k.verdict {
                                    crate::linearizability::Verdict::NotLinearizable(x) => format!("{x:?}"),
                                    _ => String::new(),
                                },
                            })
                        })
                        .collect();
                    results.insert(
                        "linearizability".into(),
                        json!({ "valid": status == Status::Linearizable, "status": format!("{status:?}"), "keys": keys }),
                    );
                    format!("{status:?}")
                }
                Err(e) => {
                    valid = false;
                    results.insert(
                        "linearizability".into(),
                        json!({ "valid": false, "error": e.to_string() }),
                    );
                    format!("check error: {e}")
                }
            }
        }
        Workload::Ledger => {
            let report = ledger.unwrap_or_default();
            valid &= report.valid;
            let v = format!(
                "{} checkpoints consistent with the final logs, {} acknowledged inserts at their \
                 index{}",
                report.checkpoints_checked,
                report.inserts_checked,
                if report.problems.is_empty() {
                    String::new()
                } else {
                    format!("; {} problems", report.problems.len())
                }
            );
            results.insert("ledger".into(), serde_json::to_value(&report).unwrap_or(Value::Null));
            v
        }
        Workload::ListAppend => {
            let (records, final_state) = crate::txn_workload::list_append_inputs(history);
            match final_state {
                Some(lists) => {
                    let report = crate::txn_check::check_list_append(&records, &lists);
                    valid &= report.valid;
                    let v = report.summary();
                    results.insert(
                        "list-append".into(),
                        serde_json::to_value(&report).unwrap_or(Value::Null),
                    );
                    v
                }
                None => {
                    valid = false;
                    results.insert(
                        "list-append".into(),
                        json!({ "valid": false, "error": "the final lists could not be read" }),
                    );
                    "no final state".into()
                }
            }
        }
        Workload::Bank => {
            let mut reads = crate::txn_workload::bank_reads(history);
            let final_process = config.concurrency as u64 * 1_000_000;
            let last = reads.last().filter(|r| r.process == final_process).cloned();
            if last.is_some() {
                reads.pop();
            }
            let accounts = (0..config.keys).map(crate::txn_workload::account).collect();
            let bank = crate::txn_check::BankConfig {
                accounts,
                total: crate::txn_workload::BANK_START * config.keys as i64,
            };
            let report =
                crate::txn_check::check_bank(&bank, &reads, last.as_ref().map(|r| &r.balances));
            let final_read = last.is_some();
            valid &= report.valid && final_read;
            let v = if final_read { report.summary() } else { "no final read".into() };
            results.insert("bank".into(), serde_json::to_value(&report).unwrap_or(Value::Null));
            v
        }
        Workload::Set => {
            let report = crate::set_check::check(history);
            valid &= report.valid;
            let v = if report.valid {
                format!("{} elements added, none lost", report.acknowledged)
            } else {
                report.reasons.join("; ")
            };
            results.insert("set".into(), serde_json::to_value(&report).unwrap_or(Value::Null));
            v
        }
    };
    let summary = format!(
        "{} ok, {} fail, {} info; {verdict}{}",
        counts.get("ok").unwrap_or(&0),
        counts.get("fail").unwrap_or(&0),
        counts.get("info").unwrap_or(&0),
        if broken.is_empty() {
            String::new()
        } else {
            format!("; {} verification problems", broken.len())
        }
    );
    (valid, Value::Object(results), summary)
}

/// What the ledger check found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LedgerReport {
    /// Whether every checkpoint and every acknowledged insert checked out.
    pub valid: bool,
    /// Distinct checkpoints proven consistent with their shard's final tree.
    pub checkpoints_checked: usize,
    /// Acknowledged inserts found at their log index.
    pub inserts_checked: usize,
    /// What did not check out (at most 20 shown).
    pub problems: Vec<String>,
    /// How many problems there were in all.
    pub problem_count: usize,
}

/// The ledger workload's end check, against the healed cluster: every checkpoint a client saw
/// (in an insert's answer or a checkpoint read) must be a prefix of its shard's final tree (a
/// verified consistency proof, or the same root at the same size), and every acknowledged
/// insert must be in its shard's log at the index it was given, with its key, at version 1.
async fn ledger_check(
    history: &History,
    endpoint: &str,
    policy: &TrustPolicy,
    shards: u32,
) -> LedgerReport {
    let mut report = LedgerReport::default();
    let problem = |report: &mut LedgerReport, p: String| {
        report.problem_count += 1;
        if report.problems.len() < 20 {
            report.problems.push(p);
        }
    };
    let mut config = ClientConfig::new(vec![endpoint.to_owned()], policy.clone());
    config.timeout = Duration::from_secs(10);
    let client = match Client::connect(config, Arc::new(MemoryStore::default())).await {
        Ok(c) => c,
        Err(e) => {
            problem(&mut report, format!("cannot connect for the final check: {e}"));
            return report;
        }
    };
    // (shard, size) -> root, and the acknowledged inserts.
    let mut seen = std::collections::BTreeSet::new();
    let mut inserts = Vec::new();
    for e in history.events().iter().filter(|e| e.kind == EventType::Ok) {
        let Some(v) = &e.value else { continue };
        let (Some(shard), Some(size), Some(root)) =
            (v["shard"].as_u64(), v["size"].as_u64(), v["root"].as_str())
        else {
            continue;
        };
        seen.insert((shard as u32, size, root.to_owned()));
        if e.f == "insert"
            && let (Some(key), Some(index)) = (&e.key, v["log_index"].as_u64())
        {
            inserts.push((key.clone(), shard as u32, index));
        }
    }
    for shard in 0..shards {
        let last = match client.checkpoint(ShardId(shard)).await {
            Ok(c) => c,
            Err(e) => {
                problem(&mut report, format!("shard {shard}: no final checkpoint: {e}"));
                continue;
            }
        };
        for (_, size, root) in seen.iter().filter(|(s, size, _)| *s == shard && *size > 0) {
            let Ok(root) = root.parse::<blockdb_verifier::Hash>() else {
                problem(&mut report, format!("shard {shard}: unparsable root {root}"));
                continue;
            };
            let ok = if *size > last.size.0 {
                Err(format!(
                    "a checkpoint of size {size} is beyond the final tree of {}",
                    last.size.0
                ))
            } else if *size == last.size.0 {
                (root == last.root).then_some(()).ok_or_else(|| format!("two roots at size {size}"))
            } else {
                match client.consistency(ShardId(shard), *size, Some(last.size.0)).await {
                    Ok((proof, _)) => blockdb_verifier::verify_consistency(
                        proof.from_size,
                        proof.to_size,
                        &root,
                        &last.root,
                        &proof.hashes,
                    )
                    .map_err(|e| format!("size {size} is not a prefix of the final tree: {e}")),
                    Err(e) => Err(format!("no consistency proof from size {size}: {e}")),
                }
            };
            match ok {
                Ok(()) => report.checkpoints_checked += 1,
                Err(p) => problem(&mut report, format!("shard {shard}: {p}")),
            }
        }
    }
    for (key, shard, index) in inserts {
        let found = client.entry(ShardId(shard), index).await.map_err(|e| e.to_string()).and_then(
            |entry| blockdb_verifier::Leaf::decode(&entry.leaf).map_err(|e| e.to_string()),
        );
        match found {
            Ok(leaf) if leaf.key == key.as_bytes() && leaf.version == 1 => {
                report.inserts_checked += 1
            }
            Ok(leaf) => problem(
                &mut report,
                format!(
                    "{key} was acknowledged at shard {shard} index {index}, which holds {} v{}",
                    String::from_utf8_lossy(&leaf.key),
                    leaf.version
                ),
            ),
            Err(e) => problem(&mut report, format!("{key} at shard {shard} index {index}: {e}")),
        }
    }
    report.valid = report.problem_count == 0;
    report
}
