//! `blockctl txn`: one transaction, from a JSON file or from flags, run and verified by
//! [`blockdb_client::Client::transact`] (receipt, writes, reads) before anything is printed.
//!
//! The flags keep the order they were given in, across kinds (`--read a --insert b=1 --read c`
//! is read, insert, read): clap gives each value's position on the command line, and the
//! operations are sorted by it. The file is the REST API's `POST /v1/txn` body (or its `ops`
//! array alone), with keys and values as text — or base64 with `--base64`, as everywhere in
//! blockctl.
//!
//! Splitting a flag's value: `KEY=VALUE` at the first `=` (with `--base64`, after the run of
//! `=` that pads the key); `@N` at the end of `--append` and `--check` is the version when N is
//! decimal digits. A key with `=`, or an append of a value that ends in `@` and digits, goes in
//! the file.

use std::path::{Path, PathBuf};

use blockdb_client::{TxnOp, TxnResult};
use clap::ArgMatches;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Cli, Failure, bytes_arg, connect, show_bytes};

/// The operations of `blockctl txn`, and where to save its receipt.
#[derive(Debug, clap::Args)]
pub struct TxnArgs {
    /// A JSON file of operations (`-`: standard input): `{"ops": [...]}` as `POST /v1/txn` takes
    /// it, or the array alone; each `{"op": "read|insert|append|check", "key": ..., "value": ...,
    /// "expected_version": ..., "version": ...}`, keys and values as text (base64 with --base64).
    #[arg(long, conflicts_with_all = ["read", "insert", "append", "check"])]
    file: Option<PathBuf>,
    /// Read KEY's latest version.
    #[arg(long, value_name = "KEY")]
    read: Vec<String>,
    /// Create KEY at version 1 with VALUE (the transaction aborts if KEY exists).
    #[arg(long, value_name = "KEY=VALUE")]
    insert: Vec<String>,
    /// Add KEY's next version; with @EXPECTED, only if KEY is at that version now.
    #[arg(long, value_name = "KEY=VALUE[@EXPECTED]")]
    append: Vec<String>,
    /// Abort the transaction unless KEY is at VERSION (0: KEY has no version).
    #[arg(long, value_name = "KEY@VERSION")]
    check: Vec<String>,
    /// Save the verified receipt (blockdb-txn-receipt/v1 JSON) to this file, for offline checks.
    #[arg(long, value_name = "FILE")]
    receipt_out: Option<PathBuf>,
}

pub async fn run(cli: &Cli, args: &TxnArgs, matches: &ArgMatches) -> Result<(), Failure> {
    let ops = match &args.file {
        Some(path) => file_ops(cli, path)?,
        None => flag_ops(cli, args, matches)?,
    };
    if ops.is_empty() {
        return Err(Failure::Usage(
            "no operations: give --file, or --read, --insert, --append and --check".into(),
        ));
    }
    let c = connect(cli).await?;
    let result = c.transact(&ops).await?;
    print_result(cli, &result);
    if let Some(out) = &args.receipt_out {
        save_receipt(&result, out)?;
    }
    Ok(())
}

/// One operation as the file has it: the REST body's shape, keys and values as text or base64.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum OpJson {
    Read { key: String },
    Insert { key: String, value: String },
    Append { key: String, value: String, expected_version: Option<u64> },
    Check { key: String, version: u64 },
}

fn file_ops(cli: &Cli, path: &Path) -> Result<Vec<TxnOp>, Failure> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
    parse_file(cli, path, &text)
}

fn parse_file(cli: &Cli, path: &Path, text: &str) -> Result<Vec<TxnOp>, Failure> {
    let bad = |e: &dyn std::fmt::Display| Failure::Usage(format!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(text).map_err(|e| bad(&e))?;
    let ops = match doc {
        Value::Array(_) => doc,
        Value::Object(mut fields) if fields.len() == 1 && fields.contains_key("ops") => {
            fields.remove("ops").unwrap_or_default()
        }
        _ => return Err(bad(&r#"expected {"ops": [...]} or an array of operations"#)),
    };
    let ops: Vec<OpJson> = serde_json::from_value(ops).map_err(|e| bad(&e))?;
    let bytes = |text: &str| bytes_arg(cli, text);
    ops.into_iter()
        .map(|op| {
            Ok(match op {
                OpJson::Read { key } => TxnOp::read(bytes(&key)?),
                OpJson::Insert { key, value } => TxnOp::insert(bytes(&key)?, bytes(&value)?),
                OpJson::Append { key, value, expected_version } => {
                    TxnOp::append(bytes(&key)?, bytes(&value)?, expected_version)
                }
                OpJson::Check { key, version } => TxnOp::check(bytes(&key)?, version),
            })
        })
        .collect()
}

/// The flags' operations, in the order they were given.
fn flag_ops(cli: &Cli, args: &TxnArgs, matches: &ArgMatches) -> Result<Vec<TxnOp>, Failure> {
    let matches = matches
        .subcommand_matches("txn")
        .ok_or_else(|| Failure::Usage("the txn command's arguments are missing".into()))?;
    let at = |id: &str| -> Vec<usize> {
        matches.indices_of(id).map(Iterator::collect).unwrap_or_default()
    };
    let mut ops: Vec<(usize, TxnOp)> = Vec::new();
    for (i, key) in at("read").into_iter().zip(&args.read) {
        ops.push((i, TxnOp::read(bytes_arg(cli, key)?)));
    }
    for (i, arg) in at("insert").into_iter().zip(&args.insert) {
        let (key, value) =
            split_pair(arg, cli.base64).ok_or_else(|| usage("--insert KEY=VALUE", arg))?;
        ops.push((i, TxnOp::insert(bytes_arg(cli, key)?, bytes_arg(cli, value)?)));
    }
    for (i, arg) in at("append").into_iter().zip(&args.append) {
        let (pair, expected) = match split_version(arg) {
            Some((pair, v)) => (pair, Some(v)),
            None => (arg.as_str(), None),
        };
        let (key, value) = split_pair(pair, cli.base64)
            .ok_or_else(|| usage("--append KEY=VALUE[@EXPECTED]", arg))?;
        ops.push((i, TxnOp::append(bytes_arg(cli, key)?, bytes_arg(cli, value)?, expected)));
    }
    for (i, arg) in at("check").into_iter().zip(&args.check) {
        let (key, version) = split_version(arg).ok_or_else(|| usage("--check KEY@VERSION", arg))?;
        ops.push((i, TxnOp::check(bytes_arg(cli, key)?, version)));
    }
    ops.sort_by_key(|(i, _)| *i);
    Ok(ops.into_iter().map(|(_, op)| op).collect())
}

fn usage(form: &str, arg: &str) -> Failure {
    Failure::Usage(format!("{arg:?} is not {form}"))
}

/// `KEY=VALUE` split at the first `=`; in base64, at the `=` that ends the key's padding.
fn split_pair(arg: &str, base64: bool) -> Option<(&str, &str)> {
    let at = if base64 {
        let b = arg.as_bytes();
        (0..b.len()).find(|&i| b[i] == b'=' && b.get(i + 1) != Some(&b'='))?
    } else {
        arg.find('=')?
    };
    Some((&arg[..at], &arg[at + 1..]))
}

/// `REST@N` with N decimal digits.
fn split_version(arg: &str) -> Option<(&str, u64)> {
    let (rest, n) = arg.rsplit_once('@')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((rest, n.parse().ok()?))
}

fn print_result(cli: &Cli, r: &TxnResult) {
    if cli.json {
        println!("{}", result_json(cli, r));
        return;
    }
    println!("transaction {} committed", r.txn_id);
    for read in &r.reads {
        let key = show_bytes(cli, &read.key);
        match &read.proof {
            None => println!("read  {key}: no version (absence is not proven)"),
            Some(p) => println!(
                "read  {key} v{} = {} (verified: shard {} leaf {} in tree of size {})",
                read.version,
                read.value.as_deref().map_or_else(|| "<redacted>".into(), |v| show_bytes(cli, v)),
                p.shard.0,
                p.log_index.0,
                p.checkpoint.size.0
            ),
        }
    }
    for w in &r.writes {
        let key = show_bytes(cli, &w.key);
        println!("write {key} v{}: shard {} leaf {}", w.version, w.shard.0, w.log_index.0);
    }
    match &r.receipt {
        Some(receipt) => println!(
            "receipt verified: commit decision at shard {} leaf {}, {} write(s) proven",
            receipt.coordinator.0,
            receipt.decision.leaf.log_index.0,
            r.writes.len()
        ),
        None => println!("no receipt: the transaction wrote nothing"),
    }
}

fn result_json(cli: &Cli, r: &TxnResult) -> Value {
    let reads: Vec<Value> = r
        .reads
        .iter()
        .map(|read| {
            json!({
                "key": show_bytes(cli, &read.key), "version": read.version,
                "value": read.value.as_deref().map(|v| show_bytes(cli, v)),
                "shard": read.proof.as_ref().map(|p| p.shard.0),
                "log_index": read.proof.as_ref().map(|p| p.log_index.0),
                "verified": read.proof.is_some(),
            })
        })
        .collect();
    let writes: Vec<Value> = r
        .writes
        .iter()
        .map(|w| {
            json!({"key": show_bytes(cli, &w.key), "shard": w.shard.0, "version": w.version,
                   "log_index": w.log_index.0})
        })
        .collect();
    let receipt = r.receipt.as_ref().map(|receipt| {
        json!({"verified": true, "coordinator": receipt.coordinator.0,
               "decision_log_index": receipt.decision.leaf.log_index.0})
    });
    json!({"txn_id": r.txn_id.to_hex(), "committed": true, "reads": reads, "writes": writes,
           "receipt": receipt})
}

fn save_receipt(r: &TxnResult, out: &Path) -> Result<(), Failure> {
    let Some(receipt) = &r.receipt else {
        eprintln!("blockctl: no receipt to save: the transaction wrote nothing");
        return Ok(());
    };
    let json =
        receipt.to_json().map_err(|e| Failure::Usage(format!("cannot encode the receipt: {e}")))?;
    std::fs::write(out, json + "\n")
        .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", out.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_first_equals_or_after_base64_padding() {
        assert_eq!(split_pair("k=v=w", false), Some(("k", "v=w")));
        assert_eq!(split_pair("k=", false), Some(("k", "")));
        assert_eq!(split_pair("k", false), None);
        // base64: "YQ==" is "a", "Yg==" is "b".
        assert_eq!(split_pair("YQ===Yg==", true), Some(("YQ==", "Yg==")));
        assert_eq!(split_pair("YWJj=dmFs", true), Some(("YWJj", "dmFs")));
        assert_eq!(split_pair("YQ===", true), Some(("YQ==", "")));
        assert_eq!(split_pair("YWJj", true), None);
    }

    #[test]
    fn versions_are_trailing_decimal_digits() {
        assert_eq!(split_version("k=v@3"), Some(("k=v", 3)));
        assert_eq!(split_version("k@0"), Some(("k", 0)));
        assert_eq!(split_version("k=me@example.com"), None);
        assert_eq!(split_version("k@"), None);
        assert_eq!(split_version("k@+3"), None);
        assert_eq!(split_version("k@99999999999999999999999"), None);
    }
}
