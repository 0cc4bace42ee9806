//! `blockdb`: runs a BlockDB node.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use blockdb_server::config::{LogFormat, ServeArgs, ServeConfig};
use blockdb_server::dev_cluster::DevClusterArgs;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// BlockDB: a replicated, append-only, verifiable ledger database.
///
/// `blockdb serve` with no arguments runs a single node with its data in ./blockdb-data and
/// its client address (REST, gRPC and tlog-tiles) on 127.0.0.1:7070. It prints where it
/// listens and the verifier key that clients and auditors trust to check its checkpoints.
/// Every setting can come from a flag, a BLOCKDB_* environment variable or a TOML file
/// (--config); flags win over the environment, which wins over the file.
///
/// Writes are acknowledged only once fsynced. Every read returns a proof bundle that
/// `blockdb-verify bundle` checks offline. API docs: http://127.0.0.1:7070/docs.
#[derive(Debug, Parser)]
#[command(name = "blockdb", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(clippy::large_enum_variant, reason = "one value, parsed once at start")]
enum Command {
    /// Run a node until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Run a cluster of N nodes on loopback (child processes) until SIGINT or SIGTERM.
    ///
    /// Node i (from 1) serves clients on BASE_PORT+2(i-1) and peers on the next port, and keeps
    /// its data and its log in DATA_DIR/node-i. Once every shard has a leader it prints a table
    /// of the nodes and their verifier keys. Running it again with the same flags and data
    /// directory restarts the same cluster.
    #[command(verbatim_doc_comment)]
    DevCluster(DevClusterArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::DevCluster(args) => dev_cluster(&args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match ServeConfig::resolve(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("blockdb: {e}");
            return ExitCode::from(2);
        }
    };
    init_logs(&config);
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(blockdb_server::serve::serve(
        config.clone(),
        |addr, node| {
            println!(
                "blockdb listening on http://{addr} (REST /v1, gRPC, tlog-tiles /tlog/<shard>)"
            );
            println!("data directory: {}", config.node.data_dir.display());
            println!(
                "node {} of cluster {} ({} shards); peer address: {}",
                node.id(),
                node.cluster_id(),
                node.shard_count(),
                node.config().peer_addr.as_deref().unwrap_or("none")
            );
            println!("verifier key: {}", node.verifier_key());
            println!("API docs: http://{addr}/docs");
        },
        shutdown_signal(),
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blockdb: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dev_cluster(args: &DevClusterArgs) -> ExitCode {
    let cluster = match args.plan() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("blockdb dev-cluster: {e}");
            return ExitCode::from(2);
        }
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("blockdb dev-cluster: cannot find this program to start the nodes: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(cluster.run(&exe, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blockdb dev-cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("blockdb: cannot start the async runtime: {e}");
            None
        }
    }
}

fn init_logs(config: &ServeConfig) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|e| {
        eprintln!("blockdb: log filter {:?}: {e}; using \"info\"", config.log_level);
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
