//! `blockdb-chaos`: check a recorded history for linearizability.
//!
//! ```text
//! blockdb-chaos check HISTORY.jsonl [--model register|blockdb-register] [--budget-ms N] [--steps-max N]
//! blockdb-chaos check --jepsen FILE [--budget-ms N] [--steps-max N]
//! ```
//!
//! Prints each key's verdict and the overall one. Exit code: 0 linearizable, 1 not
//! linearizable, 2 bad input (or bad arguments), 3 unknown (the budget ran out).

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
    // `run` (start a cluster, inject faults, run a workload, record and check its history) is
    // to come here.
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
    /// Wall time for the whole check, in milliseconds; 0 for no limit.
    #[arg(long, value_name = "N", default_value_t = 60_000)]
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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check(args) => check(&args),
    }
}

fn check(args: &CheckArgs) -> ExitCode {
    let budget = Budget {
        time: (args.budget_ms > 0).then(|| Duration::from_millis(args.budget_ms)),
        steps_max: args.steps_max,
    };
    let report = load(args).and_then(|history| match args.model {
        ModelName::Register => run(&Register, &history, &budget),
        ModelName::BlockdbRegister => run(&VersionedRegister, &history, &budget),
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
