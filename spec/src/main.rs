//! `blockdb-spec`: explore a model in stateright's web explorer, or check it from the shell.
//!
//! ```text
//! blockdb-spec explore <model> [--bug <name>] [--ci] [--addr <host:port>]
//! blockdb-spec check <model|all> [--bug <name>] [--explore-bounds]
//! blockdb-spec list
//! ```

use std::fmt::Debug;
use std::hash::Hash;
use std::net::TcpListener;
use std::process::ExitCode;

use blockdb_spec::catalog::{self, AnyModel, Bounds, MODEL_NAMES};
use blockdb_spec::check;
use stateright::Model;

const USAGE: &str = "usage:
  blockdb-spec explore <model> [--bug <name>] [--ci] [--addr <host:port>]
      serve stateright's explorer for the model (explore bounds unless --ci);
      the default address is localhost:3000
  blockdb-spec check <model|all> [--bug <name>] [--explore-bounds]
      check the model at its CI bounds and print what held and the state count
  blockdb-spec list
      the models and their broken variants";

struct Args {
    command: String,
    model: Option<String>,
    bug: Option<String>,
    addr: String,
    bounds: Option<Bounds>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let command = argv.next().ok_or("no command")?;
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        return Err(String::new());
    }
    let mut args =
        Args { command, model: None, bug: None, addr: "localhost:3000".into(), bounds: None };
    while let Some(a) = argv.next() {
        match a.as_str() {
            "--bug" => args.bug = Some(argv.next().ok_or("--bug needs a name")?),
            "--addr" => args.addr = argv.next().ok_or("--addr needs host:port")?,
            "--ci" => args.bounds = Some(Bounds::Ci),
            "--explore-bounds" => args.bounds = Some(Bounds::Explore),
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other if args.model.is_none() => args.model = Some(other.to_owned()),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    Ok(args)
}

fn explore<M>(model: M, name: &str, addr: &str)
where
    M: Model + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync,
    M::Action: Clone + Debug + PartialEq + Send + Sync,
{
    // stateright's server panics if the address is taken: find out first, and say so plainly.
    if let Err(e) = TcpListener::bind(addr) {
        eprintln!("blockdb-spec: cannot listen on {addr}: {e}");
        std::process::exit(1);
    }
    println!("exploring {name}: open http://{addr}/ (Ctrl-C stops)");
    let _checker = model.checker().serve(addr);
}

fn run_check<M>(model: M, name: &str) -> bool
where
    M: Model + Clone + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync,
    M::Action: Clone + Debug + PartialEq,
{
    let report = check::check(name, model.clone());
    let failures = report.failures();
    if failures.is_empty() {
        print!("{}", report.explain());
    } else {
        // The full search's paths need not be shortest: search again for each failure.
        println!("{report}");
        for property in failures {
            print!("{}", check::find(name, model.clone(), property).explain());
        }
    }
    report.all_hold()
}

fn run(args: Args) -> Result<bool, String> {
    let bug = args.bug.as_deref();
    match args.command.as_str() {
        "list" => {
            for m in MODEL_NAMES {
                println!("{m}: broken variants {}", catalog::bug_names(m).join(", "));
            }
            Ok(true)
        }
        "explore" => {
            let name = args.model.ok_or("explore which model?")?;
            let bounds = args.bounds.unwrap_or(Bounds::Explore);
            let label =
                format!("{name}{}", bug.map(|b| format!(" with bug {b}")).unwrap_or_default());
            match catalog::build(&name, bounds, bug).map_err(|e| e.to_string())? {
                AnyModel::TwoPc(m) => explore(m, &label, &args.addr),
                AnyModel::Checkpoint(m) => explore(m, &label, &args.addr),
                AnyModel::Durability(m) => explore(m, &label, &args.addr),
            }
            Ok(true)
        }
        "check" => {
            let name = args.model.ok_or("check which model?")?;
            let names: Vec<&str> = if name == "all" { MODEL_NAMES.to_vec() } else { vec![&name] };
            let bounds = args.bounds.unwrap_or(Bounds::Ci);
            let mut ok = true;
            for n in names {
                ok &= match catalog::build(n, bounds, bug).map_err(|e| e.to_string())? {
                    AnyModel::TwoPc(m) => run_check(m, n),
                    AnyModel::Checkpoint(m) => run_check(m, n),
                    AnyModel::Durability(m) => run_check(m, n),
                };
            }
            Ok(ok)
        }
        other => Err(format!("unknown command {other}")),
    }
}

fn main() -> ExitCode {
    let result = parse(std::env::args().skip(1)).and_then(run);
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("blockdb-spec: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
