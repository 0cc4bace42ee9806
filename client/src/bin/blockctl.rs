//! `blockctl`: talk to a BlockDB cluster from the shell, verifying every answer.
//!
//! `blockctl cluster status|add|remove` are the exception: they show and change how the cluster
//! runs (members, Raft roles, indexes, lag), which no signature covers, so they need no pinned
//! keys and show what the nodes say. `cluster status` prints a table of members (reachable or
//! why not) and one row per shard per member; an unreachable member is reported, not an error.
//! `trust init` pins every member's key (any one member's signature then suffices, as each node
//! signs the checkpoints it serves), except those of members that did not answer.
//!
//! Exit codes: 0 done; 1 an answer failed verification (a bad proof or signature, a fork, a
//! rollback — evidence against the server, never retried); 2 bad usage or unusable local files;
//! 3 the server refused (conflict, not found, bad input; a transaction that did not commit:
//! `aborted`, `locked`, `deadlock`); 4 the cluster was unavailable (a write's or transaction's
//! outcome is then unknown).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blockdb_client::{
    Client, ClientConfig, ClientError, ClusterAdmin, Consistency, FileStore, VerifiedRead,
    node_identity,
};
use blockdb_verifier::{Checkpoint, ShardId, TrustPolicy, VerifierKey};
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::json;

// A crate root's modules live beside it, and a file there would be a binary of its own.
#[path = "blockctl/cluster.rs"]
mod cluster;
#[path = "blockctl/txn.rs"]
mod txn;

/// Talk to a BlockDB cluster, verifying every answer before showing it.
///
/// Every read is checked against the cluster's verifier keys (pinned once with `blockctl trust
/// init`) and against the checkpoints blockctl already trusts (kept in its state file), so a
/// server that lies — a wrong value, a bad proof, a forked or rolled-back log — is caught and
/// reported (exit code 1), never shown as data.
///
/// `blockctl cluster ...` shows and changes the cluster's membership; what it shows is the
/// nodes' own report, not verified, and it needs no pinned keys.
///
/// Exit codes: 0 done; 1 verification failed; 2 bad usage or local files; 3 the server refused
/// (conflict, not found, bad input; a transaction aborted, locked or deadlocked: nothing
/// written); 4 unavailable (a write's outcome unknown).
#[derive(Debug, Parser)]
#[command(name = "blockctl", version, verbatim_doc_comment)]
struct Cli {
    /// The node to talk to (gRPC), repeatable.
    #[arg(
        long,
        global = true,
        env = "BLOCKCTL_ENDPOINT",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:7070"
    )]
    endpoint: Vec<String>,
    /// The trusted verifier keys, one per line (`trust init` writes it).
    #[arg(long, global = true, env = "BLOCKCTL_KEYS", default_value = "blockctl-keys.txt")]
    keys_file: PathBuf,
    /// How many of the keys must have signed a checkpoint.
    #[arg(long, global = true, default_value_t = 1)]
    threshold: usize,
    /// The checkpoints blockctl trusts, kept between runs.
    #[arg(long, global = true, env = "BLOCKCTL_STATE", default_value = "blockctl-state.json")]
    state_file: PathBuf,
    /// Keys and values given and shown as base64 instead of text.
    #[arg(long, global = true)]
    base64: bool,
    /// One JSON object per result, for scripts.
    #[arg(long, global = true)]
    json: bool,
    /// Limit on each call, in milliseconds.
    #[arg(long, global = true, default_value_t = 10_000)]
    timeout_ms: u64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create KEY at version 1 (refused if it exists).
    Insert { key: String, value: String },
    /// Add the next version of KEY.
    Append {
        key: String,
        value: String,
        /// Only if KEY is at this version now (0: no version yet).
        #[arg(long)]
        expected_version: Option<u64>,
    },
    /// Read KEY (latest version), verified.
    Get {
        key: String,
        /// A given version.
        #[arg(long, conflicts_with = "history")]
        version: Option<u64>,
        /// Every version, oldest first.
        #[arg(long)]
        history: bool,
        /// Read any replica's state without a read barrier (still verified).
        #[arg(long)]
        stale: bool,
    },
    /// The latest version of each key in [START, END) of a shard, verified.
    Scan {
        #[arg(long, default_value = "")]
        start: String,
        #[arg(long, default_value = "")]
        end: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        shard: u32,
    },
    /// The leaf at LOG_INDEX of a shard, with its inclusion proof verified.
    Entry {
        log_index: u64,
        #[arg(long, default_value_t = 0)]
        shard: u32,
    },
    /// A shard's latest checkpoint, verified and proven consistent with the trusted one.
    Checkpoint {
        #[arg(long, default_value_t = 0)]
        shard: u32,
    },
    /// Run a transaction: reads, inserts, appends and checks on keys of any shards, committed
    /// as one or not at all, then verified (its receipt, its writes, its reads).
    ///
    /// The operations come from --file, or from the flags, which keep their order:
    /// `blockctl txn --read alice --append alice=hi@1 --insert bob=hello --check carol@0`.
    /// Reads see the state before the transaction's writes; a read that found a version is
    /// proven by its record's bundle (absence is not provable). A refusal exits 3 and wrote
    /// nothing: `aborted` (a check failed, a key exists, another version), `locked` or
    /// `deadlock` (another transaction held a key: run it again); a timeout exits 4 with the
    /// outcome unknown.
    Txn(txn::TxnArgs),
    /// A verified consistency proof between two tree sizes of a shard.
    Consistency {
        from: u64,
        to: Option<u64>,
        #[arg(long, default_value_t = 0)]
        shard: u32,
    },
    /// Follow a shard's log: print each new entry once its inclusion proof verifies.
    Watch {
        #[arg(long, default_value_t = 0)]
        shard: u32,
        /// First log index to show.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Stop after this many entries (default: follow until interrupted).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Export a shard's whole log, verified, to a file `blockdb-verify audit` checks offline.
    ///
    /// The log is exported up to the shard's latest checkpoint. On a terminal, a progress bar on
    /// stderr shows the entries received and verified of that checkpoint's tree size, the rate
    /// and the time left.
    Export {
        #[arg(long, default_value_t = 0)]
        shard: u32,
        /// The file to write (blockdb-export/v1).
        #[arg(long)]
        out: PathBuf,
    },
    /// The cluster's members: their status, and adding or removing one (unverified).
    Cluster {
        #[command(subcommand)]
        command: ClusterCmd,
    },
    /// Pin the cluster's verifier keys: fetch them, show them, and save them once confirmed.
    Trust {
        #[command(subcommand)]
        command: TrustCmd,
    },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
enum ClusterCmd {
    /// Show every member and, per shard, its role, indexes, tree and lag.
    ///
    /// A table of members (API and peer addresses, reachable or why not), then a row per shard
    /// per member: Raft role, term, leader, committed and applied Raft indexes, tree size, root
    /// (prefix) and the lag the leader sees. `--json` prints every field. An unreachable member
    /// is reported, not an error.
    Status,
    /// Add a node to every shard: a learner until it has caught up, then a voter.
    ///
    /// Start the node with `--join` first. Adding a member again changes nothing.
    Add {
        /// The new node's id.
        id: u64,
        /// Where the other nodes reach its peer service (host:port).
        peer_addr: String,
        /// How long one attempt may wait for the node to catch up, in milliseconds.
        #[arg(long, default_value_t = 300_000)]
        wait_ms: u64,
    },
    /// Remove a node from every shard (refused for a shard's last voter).
    Remove {
        /// The node's id.
        id: u64,
        /// How long the change may take, in milliseconds.
        #[arg(long, default_value_t = 300_000)]
        wait_ms: u64,
    },
}

#[derive(Debug, Subcommand)]
enum TrustCmd {
    /// Fetch each endpoint's verifier key and every cluster member's, show them, and save them
    /// after confirmation: a checkpoint signed by any one of them is then trusted (each node
    /// signs its own). Members that do not answer are reported and not pinned.
    Init {
        /// Save without asking (for scripts that check the keys some other way).
        #[arg(long)]
        yes: bool,
    },
}

/// Failures, with their exit codes.
enum Failure {
    Client(ClientError),
    Usage(String),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        Failure::Client(e)
    }
}

fn main() -> ExitCode {
    // Parsed through the matches, which `txn` needs to keep its flags' order.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("blockctl: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&cli, &matches)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("blockctl: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Client(e)) => {
            let code = match &e {
                ClientError::Verification(v) => {
                    eprintln!("blockctl: VERIFICATION FAILED: {v}");
                    if v.is_fork() {
                        eprintln!(
                            "blockctl: SECURITY: the server showed a history inconsistent with one it showed before (a fork); keep {} as evidence",
                            cli.state_file.display()
                        );
                    }
                    1
                }
                ClientError::Rejected { .. } if e.is_txn_conflict() => {
                    eprintln!("blockctl: the transaction wrote nothing; run it again to retry it");
                    3
                }
                ClientError::Rejected { .. } => 3,
                ClientError::Unavailable(_) => 4,
                _ => 2,
            };
            if !matches!(e, ClientError::Verification(_)) {
                eprintln!("blockctl: {e}");
            }
            ExitCode::from(code)
        }
    }
}

fn bytes_arg(cli: &Cli, text: &str) -> Result<Vec<u8>, Failure> {
    if cli.base64 {
        STANDARD.decode(text).map_err(|e| Failure::Usage(format!("{text:?} is not base64: {e}")))
    } else {
        Ok(text.as_bytes().to_vec())
    }
}

fn show_bytes(cli: &Cli, bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !cli.base64 => s.to_owned(),
        _ => STANDARD.encode(bytes),
    }
}

fn load_policy(cli: &Cli) -> Result<TrustPolicy, Failure> {
    let text = std::fs::read_to_string(&cli.keys_file).map_err(|e| {
        Failure::Usage(format!(
            "cannot read the trusted keys {}: {e} (run `blockctl trust init` first)",
            cli.keys_file.display()
        ))
    })?;
    let keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.parse::<VerifierKey>().map_err(|e| Failure::Usage(format!("key {l:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    TrustPolicy::new(keys, cli.threshold).map_err(|e| Failure::Usage(format!("trust policy: {e}")))
}

async fn connect(cli: &Cli) -> Result<Client, Failure> {
    let mut config = ClientConfig::new(cli.endpoint.clone(), load_policy(cli)?);
    config.timeout = Duration::from_millis(cli.timeout_ms);
    let store = Arc::new(FileStore::new(&cli.state_file));
    Ok(Client::connect(config, store).await?)
}

fn print_checkpoint(cli: &Cli, cp: &Checkpoint) {
    if cli.json {
        println!(
            "{}",
            json!({"origin": cp.origin, "tree_size": cp.size.0, "root": hex::encode(cp.root.0)})
        );
    } else {
        println!(
            "origin:    {}\ntree size: {}\nroot:      {}",
            cp.origin,
            cp.size.0,
            hex::encode(cp.root.0)
        );
    }
}

fn print_read(cli: &Cli, r: &VerifiedRead) {
    let value = r.record.value.as_deref().map(|v| show_bytes(cli, v));
    if cli.json {
        println!(
            "{}",
            json!({
                "key": show_bytes(cli, &r.record.key), "version": r.record.version, "value": value,
                "shard": r.shard.0, "log_index": r.log_index.0,
                "checkpoint": {"tree_size": r.checkpoint.size.0, "root": hex::encode(r.checkpoint.root.0)},
                "verified": true,
            })
        );
    } else {
        println!(
            "{} v{} = {} (verified: shard {} leaf {} in tree of size {})",
            show_bytes(cli, &r.record.key),
            r.record.version,
            value.unwrap_or_else(|| "<redacted>".into()),
            r.shard.0,
            r.log_index.0,
            r.checkpoint.size.0
        );
    }
}

async fn run(cli: &Cli, matches: &ArgMatches) -> Result<(), Failure> {
    match &cli.command {
        Cmd::Txn(args) => txn::run(cli, args, matches).await,
        Cmd::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "blockctl",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Cmd::Trust { command: TrustCmd::Init { yes } } => trust_init(cli, *yes).await,
        Cmd::Cluster { command } => cluster::run(cli, command).await,
        Cmd::Insert { key, value } => {
            let c = connect(cli).await?;
            let r = c.insert(&bytes_arg(cli, key)?, &bytes_arg(cli, value)?).await?;
            print_write(cli, key, &r);
            Ok(())
        }
        Cmd::Append { key, value, expected_version } => {
            let c = connect(cli).await?;
            let r =
                c.append(&bytes_arg(cli, key)?, &bytes_arg(cli, value)?, *expected_version).await?;
            print_write(cli, key, &r);
            Ok(())
        }
        Cmd::Get { key, version, history, stale } => {
            let c = connect(cli).await?;
            let key = bytes_arg(cli, key)?;
            if *history {
                for r in c.history(&key).await? {
                    print_read(cli, &r);
                }
            } else {
                let consistency =
                    if *stale { Consistency::Stale } else { Consistency::Linearizable };
                print_read(cli, &c.get(&key, *version, consistency).await?);
            }
            Ok(())
        }
        Cmd::Scan { start, end, limit, shard } => {
            let c = connect(cli).await?;
            let (page, next) = c
                .scan(ShardId(*shard), &bytes_arg(cli, start)?, &bytes_arg(cli, end)?, *limit)
                .await?;
            for r in &page {
                print_read(cli, r);
            }
            if let Some(n) = next {
                eprintln!("more from --start {}", show_bytes(cli, &n));
            }
            Ok(())
        }
        Cmd::Entry { log_index, shard } => {
            let c = connect(cli).await?;
            let e = c.entry(ShardId(*shard), *log_index).await?;
            let leaf = blockdb_verifier::Leaf::decode(&e.leaf).map_err(|err| {
                ClientError::Verification(blockdb_client::VerifyError::Malformed(err.to_string()))
            })?;
            if cli.json {
                println!(
                    "{}",
                    json!({"shard": shard, "log_index": log_index, "key": show_bytes(cli, &leaf.key),
                           "version": leaf.version, "leaf": STANDARD.encode(&e.leaf), "tree_size": e.checkpoint.size.0, "verified": true})
                );
            } else {
                println!(
                    "shard {shard} leaf {log_index}: {} v{} (verified in tree of size {})",
                    show_bytes(cli, &leaf.key),
                    leaf.version,
                    e.checkpoint.size.0
                );
            }
            Ok(())
        }
        Cmd::Export { shard, out } => export(cli, ShardId(*shard), out).await,
        Cmd::Watch { shard, from, count } => {
            let c = connect(cli).await?;
            let mut left = *count;
            let mut failure = None;
            c.watch(ShardId(*shard), *from, &mut |e| {
                match blockdb_verifier::Leaf::decode(&e.leaf) {
                    Ok(leaf) if cli.json => println!(
                        "{}",
                        json!({"shard": e.shard.0, "log_index": e.log_index.0, "key": show_bytes(cli, &leaf.key),
                               "version": leaf.version, "tree_size": e.checkpoint.size.0, "verified": true})
                    ),
                    Ok(leaf) => println!(
                        "shard {} leaf {}: {} v{} (verified in tree of size {})",
                        e.shard.0,
                        e.log_index.0,
                        show_bytes(cli, &leaf.key),
                        leaf.version,
                        e.checkpoint.size.0
                    ),
                    Err(err) => {
                        failure = Some(err.to_string());
                        return false;
                    }
                }
                left = left.map(|n| n.saturating_sub(1));
                left != Some(0)
            })
            .await?;
            match failure {
                Some(f) => {
                    Err(ClientError::Verification(blockdb_client::VerifyError::Malformed(f)).into())
                }
                None => Ok(()),
            }
        }
        Cmd::Checkpoint { shard } => {
            let c = connect(cli).await?;
            print_checkpoint(cli, &c.checkpoint(ShardId(*shard)).await?);
            Ok(())
        }
        Cmd::Consistency { from, to, shard } => {
            let c = connect(cli).await?;
            let (proof, cp) = c.consistency(ShardId(*shard), *from, *to).await?;
            let hashes: Vec<String> = proof.hashes.iter().map(|h| hex::encode(h.0)).collect();
            if cli.json {
                println!(
                    "{}",
                    json!({"from_size": proof.from_size.0, "to_size": proof.to_size.0, "hashes": hashes, "tree_size": cp.size.0})
                );
            } else {
                println!(
                    "consistency proof from {} to {} ({} hashes):",
                    proof.from_size.0,
                    proof.to_size.0,
                    hashes.len()
                );
                for h in hashes {
                    println!("  {h}");
                }
            }
            Ok(())
        }
    }
}

fn print_write(cli: &Cli, key: &str, r: &blockdb_client::WriteReceipt) {
    if cli.json {
        println!(
            "{}",
            json!({"key": key, "version": r.version, "shard": r.shard.0, "log_index": r.log_index.0,
                   "tree_size": r.checkpoint.checkpoint.size.0})
        );
    } else {
        println!(
            "{key} v{} committed: shard {} leaf {} (checkpoint of size {} signed by {})",
            r.version,
            r.shard.0,
            r.log_index.0,
            r.checkpoint.checkpoint.size.0,
            r.checkpoint.signed_by.join(", ")
        );
    }
}

async fn export(cli: &Cli, shard: ShardId, out: &Path) -> Result<(), Failure> {
    use blockdb_verifier::export::{checkpoint_line, entry_line, header_line};

    let c = connect(cli).await?;
    let bar = export_bar(cli);
    let (leaves, signed) = c
        .fetch_log(shard, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
    bar.finish_and_clear();
    let cp = signed.checkpoint();
    let io = |e: std::io::Error| Failure::Usage(format!("cannot write {}: {e}", out.display()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).map_err(io)?);
    file.write_all(header_line(&cp.origin, shard, cp.size).as_bytes()).map_err(io)?;
    for (i, leaf) in leaves.iter().enumerate() {
        file.write_all(entry_line(blockdb_verifier::LogIndex(i as u64), leaf).as_bytes())
            .map_err(io)?;
    }
    file.write_all(checkpoint_line(&signed).as_bytes()).map_err(io)?;
    file.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
    if cli.json {
        println!(
            "{}",
            json!({"file": out.display().to_string(), "origin": cp.origin, "shard": shard.0, "entries": leaves.len(), "root": hex::encode(cp.root.0)})
        );
    } else {
        println!(
            "exported {} verified entries of {} to {} (root {})",
            leaves.len(),
            cp.origin,
            out.display(),
            hex::encode(cp.root.0)
        );
    }
    Ok(())
}

/// What the export's progress bar shows: entries received and verified of the checkpoint's tree
/// size, the rate and the time left.
const EXPORT_BAR: &str =
    "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} entries verified, {rate}, ETA {eta}";

/// The export's progress bar, of unknown length until `fetch_log` reports the tree size. It is
/// drawn on stderr only when that is a terminal (and not with `--json`), so pipes and scripts
/// get clean output.
fn export_bar(cli: &Cli) -> indicatif::ProgressBar {
    use std::io::IsTerminal;

    let target = if cli.json || !std::io::stderr().is_terminal() {
        indicatif::ProgressDrawTarget::hidden()
    } else {
        indicatif::ProgressDrawTarget::stderr()
    };
    let style = indicatif::ProgressStyle::with_template(EXPORT_BAR)
        .expect("EXPORT_BAR is a valid template (a unit test parses it)")
        .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            // The bar's buffer is a String, to which a write cannot fail.
            let _ = write!(w, "{}/s", indicatif::HumanCount(state.per_sec() as u64));
        });
    indicatif::ProgressBar::with_draw_target(None, target).with_style(style)
}

async fn trust_init(cli: &Cli, yes: bool) -> Result<(), Failure> {
    let timeout = Duration::from_millis(cli.timeout_ms);
    let malformed = |err: blockdb_verifier::NoteError| {
        ClientError::Verification(blockdb_client::VerifyError::Malformed(err.to_string()))
    };
    let mut keys = Vec::new();
    for e in &cli.endpoint {
        let id = node_identity(e, timeout).await?;
        id.verifier_key.parse::<VerifierKey>().map_err(malformed)?;
        println!("{e}: node {} signs with\n  {}", id.node_name, id.verifier_key);
        for o in &id.origins {
            println!("  log {o}");
        }
        if !keys.contains(&id.verifier_key) {
            keys.push(id.verifier_key);
        }
    }
    // Each member signs the checkpoints it serves with its own key, and any member may serve a
    // read, so every member's key is pinned and any one signature suffices.
    let status = ClusterAdmin::new(&cli.endpoint, timeout)?.cluster_status().await?;
    pin_members(&status, &mut keys);
    if cli.threshold > 1 && keys.len() > 1 {
        println!(
            "note: each node signs only the checkpoints it serves; with --threshold {} no \
             checkpoint will verify (leave it at 1)",
            cli.threshold
        );
    }
    if !yes {
        print!(
            "Trust these keys (a checkpoint signed by any one of them)? Compare them with the \
             ones the nodes printed at start-up. [y/N] "
        );
        std::io::stdout().flush().map_err(|e| Failure::Usage(e.to_string()))?;
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| Failure::Usage(e.to_string()))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(Failure::Usage("not trusted; nothing saved".into()));
        }
    }
    save_keys(&cli.keys_file, &status.cluster_id, &keys)?;
    println!("saved {} key(s) to {}", keys.len(), cli.keys_file.display());
    Ok(())
}

/// Shows every member of the cluster with its key, adding the keys of those that answered to
/// `keys`; those that did not are reported and left out.
fn pin_members(status: &blockdb_client::ClusterStatus, keys: &mut Vec<String>) {
    println!(
        "cluster {}: {} member(s), answered by node {}",
        status.cluster_id,
        status.nodes.len(),
        status.answered_by
    );
    let mut unpinned = 0;
    for n in &status.nodes {
        let addrs = format!("api {}, peer {}", or_none(&n.api_addr), or_none(&n.peer_addr));
        match (&n.error, &n.verifier_key) {
            (None, Some(key)) => {
                println!("  node {} ({addrs}) signs with\n    {key}", n.node_id);
                let key = key.to_string();
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            (error, _) => {
                unpinned += 1;
                let why = error.as_ref().map_or_else(
                    || "it reported no key".to_owned(),
                    |e| format!("UNREACHABLE: {e}"),
                );
                println!("  node {} ({addrs}): {why}; its key is not pinned", n.node_id);
            }
        }
    }
    if unpinned > 0 {
        println!("run `blockctl trust init` again once every member answers to pin them all");
    }
}

fn or_none(addr: &str) -> &str {
    if addr.is_empty() { "none" } else { addr }
}

fn save_keys(path: &Path, cluster_id: &str, keys: &[String]) -> Result<(), Failure> {
    let mut text = format!(
        "# BlockDB verifier keys trusted by blockctl (name+keyid+base64): the members of \
         cluster {cluster_id}\n# Each node signs the checkpoints it serves, so one signature \
         suffices (--threshold 1).\n"
    );
    for k in keys {
        text.push_str(k);
        text.push('\n');
    }
    std::fs::write(path, text)
        .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_bar_template_parses() {
        indicatif::ProgressStyle::with_template(EXPORT_BAR).expect("a valid template");
    }
}
