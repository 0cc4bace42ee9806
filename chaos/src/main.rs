//! `blockdb-chaos`: run a local cluster under faults and check what its clients saw, or check a
//! recorded history again.
//!
//! ```text
//! blockdb-chaos run --nodes 3 --workload register --nemesis partition,kill --time 60s --seed 7
//! blockdb-chaos check HISTORY.jsonl [--model register|blockdb-register|list-append|bank] [--budget-ms N] [--steps-max N]
//! blockdb-chaos check --jepsen FILE [--budget-ms N] [--steps-max N]
//! blockdb-chaos bench [--systems blockdb,etcd] [--topologies 1,3,3x4] [--concurrency 1,8,64,256]
//! blockdb-chaos scale [--sizes 1000,10000,100000,1000000,10000000]
//! ```
//!
//! `run` leaves a folder per run (history, nemesis timeline, results.json, the nodes' logs) and
//! prints one summary line; exit code 0 only when every checker passed (1 otherwise, 2 when the
//! run could not be made). `check` prints each key's verdict and the overall one. Exit code: 0
//! linearizable, 1 not linearizable, 2 bad input (or bad arguments), 3 unknown (the budget ran
//! out).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use blockdb_chaos::history::History;
use blockdb_chaos::jepsen;
use blockdb_chaos::linearizability::{Budget, Report, STEPS_MAX_DEFAULT, Status, check_history};
use blockdb_chaos::model::HistoryModel;
use blockdb_chaos::model::register::Register;
use blockdb_chaos::model::versioned::VersionedRegister;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_NOT_LINEARIZABLE: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;
const EXIT_UNKNOWN: u8 = 3;

/// BlockDB's chaos harness.
#[derive(Debug, Parser)]
#[command(name = "blockdb-chaos", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a saved history for linearizability, key by key.
    ///
    /// Exit code: 0 linearizable, 1 not linearizable, 2 bad input, 3 unknown (out of budget).
    Check(CheckArgs),
    /// Start a cluster, run a workload while a nemesis injects faults, then check the history.
    ///
    /// Exit code: 0 every checker passed, 1 some did not, 2 the run could not be made.
    Run(RunArgs),
    /// Measure BlockDB and etcd side by side: throughput and p50/p99/p999 latency of each
    /// workload at each concurrency, with the ratio; saved as JSON, Markdown and SVG.
    ///
    /// Exit code: 0 measured, 2 a system could not be started or measured.
    Bench(BenchArgs),
    /// Grow one node's log to each size and measure proof latency and size, memory and disk
    /// there; then kill it and time its recovery. Saved as JSON and Markdown.
    ///
    /// Exit code: 0 measured, 2 the node could not be started or measured.
    Scale(ScaleArgs),
}

#[derive(Debug, Args)]
struct ScaleArgs {
    /// Tree sizes to measure at, comma-separated, ascending.
    #[arg(long, default_value = "1000,10000,100000,1000000,10000000", value_delimiter = ',')]
    sizes: Vec<u64>,
    /// Requests of each kind timed at each size.
    #[arg(long, default_value_t = 2000)]
    reads: usize,
    /// Filling tasks at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Inserts per filling transaction (1 to 1024).
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Where result folders go.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// The `blockdb` binary [default: the one beside this program].
    #[arg(long)]
    blockdb: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Systems, comma-separated: blockdb, etcd.
    #[arg(long, default_value = "blockdb,etcd", value_delimiter = ',')]
    systems: Vec<blockdb_chaos::bench::System>,
    /// Topologies, comma-separated: 1 (one node), 3 (three nodes), 3x4 (three nodes, four
    /// shards; etcd's three nodes are its peer).
    #[arg(long, default_value = "1,3,3x4", value_delimiter = ',')]
    topologies: Vec<blockdb_chaos::bench::Topology>,
    /// Workloads, comma-separated: append, verified-read, read, mix, stale-spread, stale-one.
    #[arg(
        long,
        default_value = "append,verified-read,read,mix,stale-spread,stale-one",
        value_delimiter = ','
    )]
    workloads: Vec<blockdb_chaos::bench::Workload>,
    /// Client tasks at once, comma-separated.
    #[arg(long, default_value = "1,8,64,256", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Measured time of each run.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    time: Duration,
    /// Unmeasured time before each run's measurement.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Runs of each cell; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Keys written before the read workloads (not timed).
    #[arg(long, default_value_t = 10_000)]
    preload: usize,
    /// Where result folders go.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// The `blockdb` binary [default: the one beside this program].
    #[arg(long)]
    blockdb: Option<PathBuf>,
    /// The `etcd` binary.
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Nodes of the cluster.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Shards of the cluster.
    #[arg(long, default_value_t = 2)]
    shards: u32,
    /// The workload: register, set, ledger, list-append or bank.
    #[arg(long, default_value = "register")]
    workload: blockdb_chaos::workload::Workload,
    /// Faults to choose from, comma-separated: partition, kill, pause, delay, stall, disk; `none` for
    /// none.
    #[arg(long, default_value = "partition,kill")]
    nemesis: String,
    /// How long the workload runs: `60s`, `500ms`, `2m`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    time: Duration,
    /// The seed of every random choice of the harness.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Client processes at once.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Operations per second over all processes, at most.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Keys of the register workload in use at once; keys of list-append; accounts of bank.
    #[arg(long, default_value_t = 5)]
    keys: usize,
    /// How long the register workload uses its keys before moving on to fresh ones.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    key_lifetime: Duration,
    /// How long each fault lasts, and each healthy stretch between faults.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    fault_interval: Duration,
    /// Where run folders go.
    #[arg(long, default_value = "chaos-runs")]
    out: PathBuf,
    /// The `blockdb` binary [default: the one beside this program].
    #[arg(long)]
    blockdb: Option<PathBuf>,
    /// Skew each node's clock by a random amount up to this, either way: `10m`, `30s`.
    #[arg(long, value_parser = parse_duration)]
    clock_skew: Option<Duration>,
    /// A `blockdb serve` flag for every node (repeat for more), e.g. `--node-arg=--unsafe-follower-reads`.
    #[arg(long, allow_hyphen_values = true)]
    node_arg: Vec<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = n.parse().map_err(|_| format!("{s:?} is not a duration like 60s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s:?}: the unit must be ms, s or m")),
    }
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The history: JSON lines of invoke/ok/fail/info events.
    #[arg(
        value_name = "HISTORY.jsonl",
        required_unless_present = "jepsen",
        conflicts_with = "jepsen"
    )]
    history: Option<PathBuf>,
    /// Read a Jepsen etcd register log instead (checked with the register model).
    #[arg(long, value_name = "FILE")]
    jepsen: Option<PathBuf>,
    /// The sequential specification of one key.
    #[arg(long, value_enum, default_value_t = ModelName::Register)]
    model: ModelName,
    /// Wall time for the whole check, in milliseconds; 0 for no limit (the default is what a
    /// run allows its own check).
    #[arg(long, value_name = "N", default_value_t = 600_000)]
    budget_ms: u64,
    /// Search steps per key.
    #[arg(long, value_name = "N", default_value_t = STEPS_MAX_DEFAULT)]
    steps_max: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModelName {
    /// read / write / cas, as in Jepsen's etcd tests.
    Register,
    /// BlockDB keys: append (with an optional expected version) and read.
    BlockdbRegister,
    /// A list-append history: transactions checked for G0, G1a/b/c, G-single, G2 and real-time
    /// anomalies against its final lists.
    ListAppend,
    /// A bank history: every balance read sums to the start total, none negative.
    Bank,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check(args) => check(&args),
        Command::Run(args) => run_chaos(args),
        Command::Bench(args) => bench(args),
        Command::Scale(args) => scale(args),
    }
}

fn scale(args: ScaleArgs) -> ExitCode {
    if args.sizes.is_empty()
        || args.sizes.windows(2).any(|w| w[0] >= w[1])
        || args.sizes[0] == 0
        || args.reads == 0
        || !(1..=1024).contains(&args.batch)
    {
        eprintln!(
            "blockdb-chaos: sizes must be ascending and more than 0, reads more than 0, and the \
             batch 1 to 1024"
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let config = blockdb_chaos::scale::ScaleConfig {
        sizes: args.sizes,
        reads: args.reads,
        concurrency: args.concurrency.max(1),
        batch: args.batch,
        value_size: args.value_size,
        blockdb: args.blockdb.unwrap_or_else(|| beside_this_program("blockdb")),
        out: args.out,
    };
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|r| r.block_on(blockdb_chaos::scale::run(&config)));
    match result {
        Ok(report) => {
            println!("{}", blockdb_chaos::scale::markdown(&report));
            println!("results: {}", report.dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("blockdb-chaos: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn beside_this_program(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn bench(args: BenchArgs) -> ExitCode {
    if args.concurrency.contains(&0) || args.time.is_zero() {
        eprintln!("blockdb-chaos: concurrency and time must be more than 0");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let config = blockdb_chaos::bench::BenchConfig {
        systems: args.systems,
        topologies: args.topologies,
        workloads: args.workloads,
        concurrency: args.concurrency,
        time: args.time,
        warmup: args.warmup,
        runs: args.runs.max(1),
        value_size: args.value_size,
        preload: args.preload.max(1),
        blockdb: args.blockdb.unwrap_or_else(|| beside_this_program("blockdb")),
        etcd: args.etcd,
        out: args.out,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("blockdb-chaos: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    match runtime.block_on(blockdb_chaos::bench::run(&config)) {
        Ok(report) => {
            println!("{}", blockdb_chaos::bench::markdown(&report));
            println!("results: {}", report.dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("blockdb-chaos: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn run_chaos(args: RunArgs) -> ExitCode {
    let faults: Result<Vec<blockdb_chaos::run::Fault>, String> = if args.nemesis == "none" {
        Ok(Vec::new())
    } else {
        args.nemesis.split(',').map(str::parse).collect()
    };
    let faults = match faults {
        Ok(f) => f,
        Err(e) => {
            eprintln!("blockdb-chaos: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let blockdb = args.blockdb.unwrap_or_else(|| beside_this_program("blockdb"));
    let config = blockdb_chaos::run::RunConfig {
        nodes: args.nodes,
        shards: args.shards,
        workload: args.workload,
        faults,
        time: args.time,
        seed: args.seed,
        concurrency: args.concurrency.max(1),
        rate: args.rate,
        keys: args.keys.max(1),
        key_lifetime: args.key_lifetime,
        fault_interval: args.fault_interval,
        out_dir: args.out,
        blockdb,
        node_args: args.node_arg,
        clock_skew: args.clock_skew,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("blockdb-chaos: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    match runtime.block_on(blockdb_chaos::run::run(config)) {
        Ok(result) => {
            println!("{}", result.summary);
            if result.valid { ExitCode::SUCCESS } else { ExitCode::from(EXIT_NOT_LINEARIZABLE) }
        }
        Err(e) => {
            eprintln!("blockdb-chaos: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn check(args: &CheckArgs) -> ExitCode {
    let budget = Budget {
        time: (args.budget_ms > 0).then(|| Duration::from_millis(args.budget_ms)),
        steps_max: args.steps_max,
    };
    if matches!(args.model, ModelName::ListAppend | ModelName::Bank) {
        return check_transactions(args);
    }
    let report = load(args).and_then(|history| match args.model {
        ModelName::Register => run(&Register, &history, &budget),
        _ => run(&VersionedRegister, &history, &budget),
    });
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("blockdb-chaos: {e:#}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    println!("{report}");
    match report.status() {
        Status::Linearizable => ExitCode::SUCCESS,
        Status::NotLinearizable => ExitCode::from(EXIT_NOT_LINEARIZABLE),
        Status::Unknown => ExitCode::from(EXIT_UNKNOWN),
    }
}

/// Checks a list-append or bank history; prints the report as JSON and a summary line.
fn check_transactions(args: &CheckArgs) -> ExitCode {
    use blockdb_chaos::{txn_check, txn_workload};
    let history = match load(args) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("blockdb-chaos: {e:#}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let (valid, json, summary) = if args.model == ModelName::ListAppend {
        let (records, lists) = txn_workload::list_append_inputs(&history);
        let Some(lists) = lists else {
            eprintln!("blockdb-chaos: the history has no `final` event with the final lists");
            return ExitCode::from(EXIT_BAD_INPUT);
        };
        let r = txn_check::check_list_append(&records, &lists);
        (r.valid, serde_json::to_string_pretty(&r), r.summary())
    } else {
        // The last read-all is the final state; the accounts and total are its.
        let mut reads = txn_workload::bank_reads(&history);
        let Some(last) = reads.pop() else {
            eprintln!("blockdb-chaos: the history has no completed read-all");
            return ExitCode::from(EXIT_BAD_INPUT);
        };
        let accounts: Vec<String> = last.balances.keys().cloned().collect();
        let total = txn_workload::BANK_START * accounts.len() as i64;
        let config = txn_check::BankConfig { accounts, total };
        let r = txn_check::check_bank(&config, &reads, Some(&last.balances));
        (r.valid, serde_json::to_string_pretty(&r), r.summary())
    };
    if let Ok(json) = json {
        println!("{json}");
    }
    println!("{summary}");
    if valid { ExitCode::SUCCESS } else { ExitCode::from(EXIT_NOT_LINEARIZABLE) }
}

fn load(args: &CheckArgs) -> anyhow::Result<History> {
    match (&args.jepsen, &args.history) {
        (Some(path), _) => {
            anyhow::ensure!(
                args.model == ModelName::Register,
                "a Jepsen etcd log is a register history: --jepsen needs --model register"
            );
            Ok(jepsen::read_log(path)?)
        }
        (None, Some(path)) => read_history(path),
        (None, None) => anyhow::bail!("no history given"),
    }
}

fn read_history(path: &Path) -> anyhow::Result<History> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    History::read_jsonl(BufReader::new(file)).with_context(|| format!("{}", path.display()))
}

fn run<M: HistoryModel>(model: &M, history: &History, budget: &Budget) -> anyhow::Result<Report> {
    check_history(model, history, budget).with_context(|| format!("model {}", M::NAME))
}
