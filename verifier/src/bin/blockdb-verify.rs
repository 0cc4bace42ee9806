//! `blockdb-verify`: checks BlockDB proof bundles, checkpoints, consistency proofs, checkpoint
//! chains, blocks responses and whole-log exports offline, trusting nothing but the verifier keys
//! it is given.
//!
//! Exit codes: 0 valid, 1 invalid (well-formed input that does not verify), 2 unusable input
//! (unreadable or malformed file, bad key, bad arguments).

// This file is over the ~500-line soft limit: it is one argument definition and one short `run_*`
// function per subcommand, each independent of the others; the checks themselves are in the
// library. Kept in one file so that the whole command line, and its help, read in one place.

use std::fs::File;
use std::io::{self, IsTerminal as _, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blockdb_verifier::block_range::BLOCK_RANGE_BYTES_MAX;
use blockdb_verifier::bundle::BUNDLE_LEN_MAX;
use blockdb_verifier::export::{AuditReport, ExportError, audit_export};
use blockdb_verifier::note::NOTE_LEN_MAX;
use blockdb_verifier::{
    Block, BlockRange, BlockRangeError, BundleError, CheckpointChain, ConsistencyProof,
    ConsistencyStatus, ProofBundle, SignedCheckpoint, TrustPolicy, VerifiedCheckpoint, VerifierKey,
    verify_bundle, verify_extends,
};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

/// Largest export `audit` reads. The audit holds the file in memory; at about 165 bytes an entry
/// this is some 100 million entries.
const EXPORT_BYTES_MAX: usize = 16 << 30;

const TRUST_HELP: &str = "\
Trust: give the verifier keys of the log's nodes with --key (repeatable) or --keys-file (one key
per line, '#' comments), and how many of them must have signed with --threshold (default 1).

Exit codes: 0 valid, 1 invalid (the input is well-formed but does not verify), 2 unusable input
(a file that cannot be read or parsed, a malformed key, bad arguments).";

/// Verify BlockDB proofs offline.
#[derive(Debug, Parser)]
#[command(name = "blockdb-verify", version, after_long_help = TRUST_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Trust {
    /// A trusted verifier key, `name+keyid+base64`. Repeatable.
    #[arg(long = "key", value_name = "VKEY")]
    keys: Vec<String>,
    /// A file of trusted verifier keys, one per line; empty lines and `#` comments are skipped.
    #[arg(long, value_name = "FILE")]
    keys_file: Option<PathBuf>,
    /// How many of the trusted keys must have signed a checkpoint.
    #[arg(long, default_value_t = 1, value_name = "K")]
    threshold: usize,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a proof bundle (JSON or binary form): checkpoint signatures, record against leaf,
    /// inclusion proof, and consistency with a trusted checkpoint if one is given.
    #[command(after_long_help = "\
Example:
  blockdb-verify bundle record.json --key 'blockdb.local/c1/node1+1a2b3c4d+AXb...' \\
      --trusted last-checkpoint.txt

With --trusted, the bundle's checkpoint must extend the trusted one: the same tree, or a larger
tree with the bundle's consistency proof from the trusted size.")]
    Bundle {
        /// The bundle file, or `-` for stdin.
        file: PathBuf,
        /// A signed checkpoint already trusted for this origin.
        #[arg(long, value_name = "CHECKPOINT")]
        trusted: Option<PathBuf>,
        #[command(flatten)]
        trust: Trust,
    },
    /// Verify a transaction receipt: the decision record says commit, and every record the
    /// transaction wrote is there, each proven in its shard's log against a trusted checkpoint.
    #[command(after_long_help = "\
Example:
  curl -s -X POST http://127.0.0.1:7070/v1/txn -d @ops.json | jq .receipt > receipt.json
  blockdb-verify receipt receipt.json --keys-file nodes.vkeys

FILE is the `blockdb-txn-receipt/v1` JSON (a whole `POST /v1/txn` answer is accepted too: its
`receipt` is checked).")]
    Receipt {
        /// The receipt file, or `-` for stdin.
        file: PathBuf,
        #[command(flatten)]
        trust: Trust,
    },
    /// Verify a signed checkpoint's signatures and print it.
    #[command(after_long_help = "\
Example:
  blockdb-verify checkpoint checkpoint.txt --keys-file nodes.vkeys --threshold 2")]
    Checkpoint {
        /// The signed checkpoint note, or `-` for stdin.
        file: PathBuf,
        #[command(flatten)]
        trust: Trust,
    },
    /// Verify that NEW extends OLD: both signed by trusted keys, same origin, and PROOF (a JSON
    /// consistency proof) verifies between their roots.
    #[command(after_long_help = "\
Example:
  blockdb-verify consistency old.txt new.txt proof.json --key 'example.com/log+46a7145c+AbQ...'

PROOF is {\"from_size\": N, \"to_size\": M, \"hashes\": [\"<hex>\", ...]}. It may be left out when
both checkpoints have the same size, or OLD is of the empty tree.")]
    Consistency {
        /// The older signed checkpoint.
        old: PathBuf,
        /// The newer signed checkpoint.
        new: PathBuf,
        /// The consistency proof, as JSON.
        proof: Option<PathBuf>,
        #[command(flatten)]
        trust: Trust,
    },
    /// Verify a chain of checkpoints, each linked to the next by a consistency proof.
    #[command(after_long_help = "\
Example:
  blockdb-verify chain audit-chain.json --keys-file nodes.vkeys

The file is {\"format\": \"blockdb-checkpoint-chain/v1\", \"checkpoints\": [\"<note>\", ...],
\"proofs\": [{\"from_size\": ..., \"to_size\": ..., \"hashes\": [...]}, ...]}, one proof fewer
than checkpoints.")]
    Chain {
        /// The chain file, or `-` for stdin.
        file: PathBuf,
        #[command(flatten)]
        trust: Trust,
    },
    /// Verify a blocks response (`GET /v1/blocks`): the blocks' hash chain, every checkpoint's
    /// signatures, and every block's tree against its checkpoint.
    #[command(after_long_help = "\
Example:
  curl -s 'localhost:7070/v1/blocks?limit=1000' > blocks.json && \\
      blockdb-verify blocks blocks.json --keys-file node.vkey

Checks that the blocks form an unbroken hash chain (from height 1, or from --trusted-block), that
every checkpoint is signed by trusted keys and is of the blocks' shard, that every block's tree is
a prefix of its checkpoint's tree (through the block's consistency proof), and that no two
checkpoints give one tree size two roots (a fork, reported as a security finding).

A page that starts past height 1 is checked against the last block of the page before it:
  blockdb-verify blocks blocks.json --keys-file node.vkey --json | jq .last_block > last.json
  curl -s 'localhost:7070/v1/blocks?from_height=1001&limit=1000' > more.json
  blockdb-verify blocks more.json --keys-file node.vkey --trusted-block last.json")]
    Blocks {
        /// The blocks response, as JSON, or `-` for stdin.
        file: PathBuf,
        /// A block verified before (its JSON form, as in a response's `block` field), which the
        /// first block must follow. Without it the blocks must start at height 1.
        #[arg(long, value_name = "BLOCK")]
        trusted_block: Option<PathBuf>,
        #[command(flatten)]
        trust: Trust,
    },
    /// Audit a shard's whole log from an export file (`blockdb-export/v1`): every entry, and the
    /// root at every checkpoint's size re-derived from the entries and compared.
    #[command(after_long_help = "\
Example:
  blockctl export --shard 0 --out shard0.export && blockdb-verify audit shard0.export --keys-file node.vkey

Checks that the file is a well-formed export (a header, exactly tree_size entries in log order,
then signed checkpoints); that every leaf decodes and is of the export's shard and position; that
every checkpoint is of the export's log, signed by trusted keys, and of at most tree_size entries,
one of exactly tree_size; and that the entries give every checkpoint's root. Two trusted
checkpoints that no single log can have signed (one size with two roots, or a smaller checkpoint
whose root the entries vouched for by the largest do not give) are reported as a fork, a security
finding.

A progress bar is shown on stderr when it is a terminal, and never with --json.")]
    Audit {
        /// The export file, or `-` for stdin.
        file: PathBuf,
        #[command(flatten)]
        trust: Trust,
    },
}

/// A run that did not end in "valid".
enum Failure {
    /// Well-formed input that does not verify (exit 1).
    Invalid { reason: String, fork: bool },
    /// Input that cannot be used (exit 2).
    Unusable(String),
}

fn unusable(what: impl std::fmt::Display, error: impl std::fmt::Display) -> Failure {
    Failure::Unusable(format!("{what}: {error}"))
}

fn invalid(reason: impl std::fmt::Display) -> Failure {
    Failure::Invalid { reason: reason.to_string(), fork: false }
}

/// A valid result: lines for people and an object for `--json`.
struct Report {
    lines: Vec<String>,
    json: Value,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = match &cli.command {
        Command::Bundle { trust, .. }
        | Command::Receipt { trust, .. }
        | Command::Checkpoint { trust, .. }
        | Command::Consistency { trust, .. }
        | Command::Chain { trust, .. }
        | Command::Blocks { trust, .. }
        | Command::Audit { trust, .. } => trust.json,
    };
    match run(&cli.command) {
        Ok(report) => {
            if json {
                let mut obj = report.json;
                obj["valid"] = Value::Bool(true);
                println!("{obj}");
            } else {
                for line in report.lines {
                    println!("{line}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(Failure::Invalid { reason, fork }) => {
            if json {
                println!("{}", json!({ "valid": false, "fork": fork, "reason": reason }));
            } else {
                println!("invalid: {reason}");
                if fork {
                    println!(
                        "SECURITY: this is evidence that the log forked; keep the files that show it"
                    );
                }
            }
            ExitCode::from(1)
        }
        Err(Failure::Unusable(message)) => {
            let message = message.replace('\n', " ");
            if json {
                println!("{}", json!({ "valid": false, "error": message }));
            } else {
                eprintln!("blockdb-verify: error: {message}");
            }
            ExitCode::from(2)
        }
    }
}

fn run(command: &Command) -> Result<Report, Failure> {
    match command {
        Command::Bundle { file, trusted, trust } => run_bundle(file, trusted.as_deref(), trust),
        Command::Receipt { file, trust } => run_receipt(file, trust),
        Command::Checkpoint { file, trust } => run_checkpoint(file, trust),
        Command::Consistency { old, new, proof, trust } => {
            run_consistency(old, new, proof.as_deref(), trust)
        }
        Command::Chain { file, trust } => run_chain(file, trust),
        Command::Blocks { file, trusted_block, trust } => {
            run_blocks(file, trusted_block.as_deref(), trust)
        }
        Command::Audit { file, trust } => run_audit(file, trust),
    }
}

/// Reads a whole file (or stdin for `-`), refusing more than `max` bytes.
fn read_input(path: &Path, max: usize) -> Result<Vec<u8>, Failure> {
    let name = path.display();
    // The file's length, when known, so that a large file is read into one allocation.
    let mut len_hint = 0;
    let mut reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(path).map_err(|e| unusable(&name, e))?;
        len_hint = file.metadata().map_or(0, |m| m.len());
        if len_hint > max as u64 {
            return Err(unusable(&name, format!("larger than the limit of {max} bytes")));
        }
        Box::new(file)
    };
    let mut buf = Vec::with_capacity(usize::try_from(len_hint).unwrap_or(max).min(max) + 1);
    reader.by_ref().take(max as u64 + 1).read_to_end(&mut buf).map_err(|e| unusable(&name, e))?;
    if buf.len() > max {
        return Err(unusable(&name, format!("larger than the limit of {max} bytes")));
    }
    Ok(buf)
}

fn policy(trust: &Trust) -> Result<TrustPolicy, Failure> {
    let mut keys = Vec::new();
    for k in &trust.keys {
        let key: VerifierKey = k.parse().map_err(|e| unusable(format!("--key {k:?}"), e))?;
        keys.push(key);
    }
    if let Some(path) = &trust.keys_file {
        let bytes = read_input(path, 1024 * 1024)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| unusable(path.display(), "key file is not UTF-8"))?;
        keys.extend(TrustPolicy::parse_keys(&text).map_err(|e| unusable(path.display(), e))?);
    }
    if keys.is_empty() {
        return Err(Failure::Unusable(
            "no trusted verifier keys: give --key or --keys-file".to_owned(),
        ));
    }
    TrustPolicy::new(keys, trust.threshold).map_err(|e| unusable("trust policy", e))
}

fn read_checkpoint(path: &Path) -> Result<SignedCheckpoint, Failure> {
    let bytes = read_input(path, NOTE_LEN_MAX)?;
    SignedCheckpoint::parse(&bytes).map_err(|e| unusable(path.display(), e))
}

fn verify_checkpoint_file(
    path: &Path,
    policy: &TrustPolicy,
) -> Result<VerifiedCheckpoint, Failure> {
    let signed = read_checkpoint(path)?;
    policy.verify(&signed).map_err(|e| invalid(format!("{}: {e}", path.display())))
}

fn checkpoint_json(v: &VerifiedCheckpoint) -> Value {
    json!({
        "origin": v.checkpoint.origin,
        "size": v.checkpoint.size.0,
        "root": v.checkpoint.root.to_hex(),
        "extensions": v.checkpoint.extensions,
        "signed_by": v.signed_by,
    })
}

fn checkpoint_lines(v: &VerifiedCheckpoint) -> Vec<String> {
    let mut lines = vec![
        format!("  origin:    {}", v.checkpoint.origin),
        format!("  size:      {}", v.checkpoint.size),
        format!("  root:      {}", v.checkpoint.root),
    ];
    lines.extend(v.checkpoint.extensions.iter().map(|e| format!("  extension: {e}")));
    lines.extend(v.signed_by.iter().map(|k| format!("  signed by: {k}")));
    lines
}

fn status_text(status: ConsistencyStatus) -> String {
    match status {
        ConsistencyStatus::NoTrustedState => "not checked (no trusted checkpoint given)".into(),
        ConsistencyStatus::SameTree => "same tree as the trusted checkpoint".into(),
        ConsistencyStatus::FromEmptyTree => "extends the trusted empty tree".into(),
        ConsistencyStatus::Proven { from } => format!("proven from trusted size {from}"),
    }
}

fn status_json(status: ConsistencyStatus) -> Value {
    match status {
        ConsistencyStatus::NoTrustedState => json!({ "status": "no_trusted_state" }),
        ConsistencyStatus::SameTree => json!({ "status": "same_tree" }),
        ConsistencyStatus::FromEmptyTree => json!({ "status": "from_empty_tree" }),
        ConsistencyStatus::Proven { from } => json!({ "status": "proven", "from_size": from.0 }),
    }
}

/// A key for people: quoted if it is printable UTF-8, base64 otherwise.
fn show_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
        _ => format!("base64:{}", STANDARD.encode(key)),
    }
}

fn run_bundle(path: &Path, trusted: Option<&Path>, trust: &Trust) -> Result<Report, Failure> {
    let policy = policy(trust)?;
    let bytes = read_input(path, BUNDLE_LEN_MAX)?;
    let bundle = ProofBundle::parse(&bytes).map_err(|e| unusable(path.display(), e))?;
    let trusted = match trusted {
        None => None,
        Some(t) => Some(verify_checkpoint_file(t, &policy)?),
    };
    let verified = verify_bundle(&bundle, &policy, trusted.as_ref().map(|t| &t.checkpoint))
        .map_err(|e: BundleError| Failure::Invalid { fork: e.is_fork(), reason: e.to_string() })?;
    let record = &verified.record;
    let value_text = match &record.value {
        Some(v) => format!("{} bytes", v.len()),
        None => "redacted".to_owned(),
    };
    let mut lines = vec![
        format!(
            "valid: record {} version {} ({value_text}, sha256 {})",
            show_key(&record.key),
            record.version,
            verified.leaf.value_sha256
        ),
        format!("  shard {}, log index {}", verified.shard, verified.log_index),
    ];
    lines.extend(checkpoint_lines(&verified.checkpoint));
    lines.push(format!("  consistency: {}", status_text(verified.consistency)));
    let json = json!({
        "kind": "bundle",
        "record": {
            "key": STANDARD.encode(&record.key),
            "version": record.version,
            "value": record.value.as_ref().map(|v| STANDARD.encode(v)),
            "value_sha256": verified.leaf.value_sha256.to_hex(),
        },
        "shard": verified.shard.0,
        "log_index": verified.log_index.0,
        "checkpoint": checkpoint_json(&verified.checkpoint),
        "consistency": status_json(verified.consistency),
    });
    Ok(Report { lines, json })
}

fn run_receipt(path: &Path, trust: &Trust) -> Result<Report, Failure> {
    let policy = policy(trust)?;
    let bytes = read_input(path, blockdb_verifier::txn::receipt::RECEIPT_LEN_MAX)?;
    // A whole `POST /v1/txn` answer holds the receipt under `receipt`.
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| unusable(path.display(), e))?;
    let receipt_json = match value.get("receipt") {
        Some(r) if value.get("format").is_none() => r.to_string().into_bytes(),
        _ => bytes,
    };
    let receipt = blockdb_verifier::Receipt::from_json(&receipt_json)
        .map_err(|e| unusable(path.display(), e))?;
    let verified = blockdb_verifier::verify_receipt(&receipt, &policy)
        .map_err(|e| Failure::Invalid { fork: e.is_fork(), reason: e.to_string() })?;
    let mut lines = vec![
        format!("valid: transaction {} committed", verified.txn_id),
        format!(
            "  decision record in shard {}; {} record(s) written",
            verified.coordinator.0,
            verified.writes.len()
        ),
    ];
    for w in &verified.writes {
        lines.push(format!(
            "  {} version {}: shard {}, log index {}",
            show_key(&w.key),
            w.version,
            w.shard.0,
            w.log_index.0
        ));
    }
    for (shard, c) in &verified.checkpoints {
        lines.push(format!("  shard {}:", shard.0));
        lines.extend(checkpoint_lines(c).into_iter().map(|l| format!("  {l}")));
    }
    let json = json!({
        "kind": "receipt",
        "txn_id": verified.txn_id.to_hex(),
        "coordinator": verified.coordinator.0,
        "writes": verified.writes.iter().map(|w| json!({
            "key": STANDARD.encode(&w.key),
            "version": w.version,
            "shard": w.shard.0,
            "log_index": w.log_index.0,
        })).collect::<Vec<_>>(),
        "checkpoints": verified.checkpoints.values().map(checkpoint_json).collect::<Vec<_>>(),
    });
    Ok(Report { lines, json })
}

fn run_checkpoint(path: &Path, trust: &Trust) -> Result<Report, Failure> {
    let policy = policy(trust)?;
    let verified = verify_checkpoint_file(path, &policy)?;
    let mut lines = vec!["valid: checkpoint".to_owned()];
    lines.extend(checkpoint_lines(&verified));
    let mut json = checkpoint_json(&verified);
    json["kind"] = "checkpoint".into();
    Ok(Report { lines, json })
}

fn run_consistency(
    old: &Path,
    new: &Path,
    proof: Option<&Path>,
    trust: &Trust,
) -> Result<Report, Failure> {
    let policy = policy(trust)?;
    let old_signed = read_checkpoint(old)?;
    let new_signed = read_checkpoint(new)?;
    let proof = match proof {
        None => None,
        Some(p) => {
            let bytes = read_input(p, 1024 * 1024)?;
            let proof: ConsistencyProof =
                serde_json::from_slice(&bytes).map_err(|e| unusable(p.display(), e))?;
            Some(proof)
        }
    };
    let old_v =
        policy.verify(&old_signed).map_err(|e| invalid(format!("{}: {e}", old.display())))?;
    let new_v =
        policy.verify(&new_signed).map_err(|e| invalid(format!("{}: {e}", new.display())))?;
    let status =
        verify_extends(&old_v.checkpoint, &new_v.checkpoint, proof.as_ref()).map_err(|e| {
            let fork = matches!(
                e,
                blockdb_verifier::ExtendError::Fork { .. }
                    | blockdb_verifier::ExtendError::Inconsistent { .. }
            );
            Failure::Invalid { reason: e.to_string(), fork }
        })?;
    let lines = vec![
        format!(
            "valid: size {} extends size {} of {} ({})",
            new_v.checkpoint.size,
            old_v.checkpoint.size,
            old_v.checkpoint.origin,
            status_text(status)
        ),
        format!("  old root: {}", old_v.checkpoint.root),
        format!("  new root: {}", new_v.checkpoint.root),
    ];
    let json = json!({
        "kind": "consistency",
        "old": checkpoint_json(&old_v),
        "new": checkpoint_json(&new_v),
        "consistency": status_json(status),
    });
    Ok(Report { lines, json })
}

fn run_chain(path: &Path, trust: &Trust) -> Result<Report, Failure> {
    let policy = policy(trust)?;
    let bytes = read_input(path, 256 * 1024 * 1024)?;
    let chain = CheckpointChain::from_json(&bytes).map_err(|e| unusable(path.display(), e))?;
    let verified = chain.verify(&policy).map_err(|e| {
        let fork = matches!(
            e,
            blockdb_verifier::ChainError::Link {
                error: blockdb_verifier::ExtendError::Fork { .. }
                    | blockdb_verifier::ExtendError::Inconsistent { .. },
                ..
            }
        );
        Failure::Invalid { reason: e.to_string(), fork }
    })?;
    let (first, last) = match (verified.first(), verified.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(Failure::Unusable("chain holds no checkpoints".to_owned())),
    };
    let lines = vec![
        format!(
            "valid: chain of {} checkpoints of {}, sizes {} to {}",
            verified.len(),
            first.checkpoint.origin,
            first.checkpoint.size,
            last.checkpoint.size
        ),
        format!("  latest root: {}", last.checkpoint.root),
    ];
    let json = json!({
        "kind": "chain",
        "checkpoints": verified.len(),
        "origin": first.checkpoint.origin,
        "first_size": first.checkpoint.size.0,
        "latest": checkpoint_json(last),
    });
    Ok(Report { lines, json })
}

fn run_blocks(path: &Path, trusted: Option<&Path>, trust: &Trust) -> Result<Report, Failure> {
    let policy = policy(trust)?;
    let bytes = read_input(path, BLOCK_RANGE_BYTES_MAX)?;
    let range = BlockRange::from_json(&bytes).map_err(|e| unusable(path.display(), e))?;
    let trusted = match trusted {
        None => None,
        Some(t) => {
            let bytes = read_input(t, 64 * 1024)?;
            let block: Block =
                serde_json::from_slice(&bytes).map_err(|e| unusable(t.display(), e))?;
            Some(block)
        }
    };
    let verified =
        blockdb_verifier::verify_block_range(&range, &policy, trusted.as_ref()).map_err(
            |e: BlockRangeError| Failure::Invalid { fork: e.is_fork(), reason: e.to_string() },
        )?;
    let mut lines = match (verified.blocks.first(), verified.last()) {
        (Some(first), Some(last)) => vec![
            format!(
                "valid: {} blocks of shard {}, heights {} to {}, tree sizes {} to {}",
                verified.blocks.len(),
                first.shard,
                first.height,
                last.height,
                first.tree_size,
                last.tree_size
            ),
            match &trusted {
                Some(t) => format!("  chain: follows the trusted block at height {}", t.height),
                None => "  chain: from height 1".to_owned(),
            },
            format!("  last block hash: {}", last.hash()),
        ],
        _ => vec!["valid: no blocks".to_owned()],
    };
    for c in &verified.checkpoints {
        lines.push("  checkpoint:".to_owned());
        lines.extend(checkpoint_lines(c).into_iter().map(|l| format!("  {l}")));
    }
    if !verified.blocks.is_empty() {
        lines.push("  records roots: not checked (that needs the blocks' leaves)".to_owned());
    }
    lines.push(match verified.next_height {
        Some(h) => format!("  next height: {h}"),
        None => "  next height: none (the response reaches the latest block)".to_owned(),
    });
    let json = json!({
        "kind": "blocks",
        "count": verified.blocks.len(),
        "shard": verified.blocks.first().map(|b| b.shard.0),
        "first_height": verified.blocks.first().map(|b| b.height),
        "last_height": verified.last().map(|b| b.height),
        "last_block": verified.last(),
        "checkpoints": verified.checkpoints.iter().map(checkpoint_json).collect::<Vec<_>>(),
        "next_height": verified.next_height,
    });
    Ok(Report { lines, json })
}

fn run_audit(path: &Path, trust: &Trust) -> Result<Report, Failure> {
    let policy = policy(trust)?;
    let bytes = read_input(path, EXPORT_BYTES_MAX)?;
    let bar = progress_bar(!trust.json && io::stderr().is_terminal());
    let result = audit_export(&bytes, &policy, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = result.map_err(|e: ExportError| {
        if e.is_malformed() {
            unusable(path.display(), e)
        } else {
            Failure::Invalid { fork: e.is_fork(), reason: e.to_string() }
        }
    })?;
    Ok(audit_report(&report))
}

/// A bar on stderr, or a hidden one.
fn progress_bar(visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "auditing [{bar:40}] {human_pos}/{human_len} entries, eta {eta}",
    )
    .expect("the template is valid")
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

fn audit_report(report: &AuditReport) -> Report {
    let mut lines = vec![
        format!(
            "valid: export of shard {} with {} entries; every entry checked and every \
             checkpoint's root re-derived from them",
            report.shard, report.tree_size
        ),
        format!("  origin:  {}", report.origin),
        format!("  entries: {}", report.tree_size),
        format!("  root:    {}", report.root),
        format!("  checkpoints checked: {}", report.checkpoints.len()),
    ];
    for c in &report.checkpoints {
        lines.push(format!("    size {}, root {}", c.checkpoint.size, c.checkpoint.root));
        lines.extend(c.signed_by.iter().map(|k| format!("      signed by: {k}")));
    }
    let json = json!({
        "kind": "audit",
        "origin": report.origin,
        "shard": report.shard.0,
        "tree_size": report.tree_size.0,
        "root": report.root.to_hex(),
        "checkpoints": report.checkpoints.iter().map(checkpoint_json).collect::<Vec<_>>(),
    });
    Report { lines, json }
}
