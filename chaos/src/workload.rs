//! Workloads: what the harness's client processes do, and how each outcome is recorded.
//!
//! Every process is a sequential client bound to one node (process `p` to node `p mod N`, as
//! Jepsen binds clients), running one operation at a time through the verifying client
//! ([`blockdb_client::Client`]): every answer's proofs and checkpoint are checked before it is
//! recorded, and an answer that fails verification is recorded as such and fails the run.
//!
//! Outcomes map to the history ([`crate::history`]) as follows: a committed write or a read is
//! `ok`; a refusal that certainly changed nothing (`version_mismatch`, `already_exists`,
//! `not_leader`, bad input) is `fail`; anything after which a write's outcome is unknown (a
//! timeout, the node gone, the cluster unavailable) is `info`. Reads change nothing, so a read
//! that did not complete is `fail`.
//!
//! | workload   | operations |
//! |------------|------------|
//! | `register` | per key of a few, which every process moves on from together after a while (`key_lifetime`, so that no key's history grows too long to check): `read`, `append` (a blind write) and compare-and-append (`append` with `expected_version` = the version this process last saw); checked for linearizability per key with [`crate::model::versioned`] |
//! | `set`      | `add` of unique elements (inserts), then one final `read-all`; checked for lost and unexpected elements |
//! | `list-append` | transactions of appends of unique elements and reads over a few keys; checked for G0, G1a/b/c, G-single, G2 and real-time anomalies ([`crate::txn_workload`], [`crate::txn_check`]) |
//! | `bank`     | transfers between accounts of different shards (compare-and-set of two balances in one transaction) and reads of every balance in one transaction; the total never changes and no balance goes negative |
//! | `ledger`   | `insert` of unique keys (the answer's shard, log index and checkpoint recorded), `read` of inserted keys, `checkpoint` of a shard from the process's node; every answer's proofs verified; at the end every checkpoint seen must be consistent with the final tree of its shard, and every acknowledged insert must be in its shard's log at the index it was given |

use std::time::Duration;

use blockdb_client::{Client, ClientError, Consistency};
use rand::Rng;
use serde_json::{Value, json};

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Reads and (compare-and-)appends on a few keys.
    Register,
    /// Inserts of unique elements, then a final read of all.
    Set,
    /// Inserts, reads and checkpoints, every proof verified; the log checked at the end.
    Ledger,
    /// Transactions of appends and reads over a few keys.
    ListAppend,
    /// Transfers between accounts and reads of every balance.
    Bank,
}

impl Workload {
    /// The workload's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Set => "set",
            Workload::Ledger => "ledger",
            Workload::ListAppend => "list-append",
            Workload::Bank => "bank",
        }
    }
}

impl std::str::FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Workload, String> {
        match s {
            "register" => Ok(Workload::Register),
            "set" => Ok(Workload::Set),
            "ledger" => Ok(Workload::Ledger),
            "list-append" => Ok(Workload::ListAppend),
            "bank" => Ok(Workload::Bank),
            other => Err(format!(
                "unknown workload {other:?}; known: register, set, ledger, list-append, bank"
            )),
        }
    }
}

/// One operation to run: its history `f`, key and invoke value.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// The history's `f`.
    pub f: &'static str,
    /// The key.
    pub key: String,
    /// The invoke's value.
    pub value: Option<Value>,
}

/// How an operation ended, for the history.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It took effect (or read), with this result.
    Ok(Option<Value>),
    /// It certainly did not take effect.
    Fail(String, Option<Value>),
    /// Its outcome is unknown.
    Info(String),
    /// The answer failed verification: a safety violation in itself.
    Unverified(String),
}

/// The register workload's keys.
pub fn register_key(i: usize) -> String {
    format!("r{i}")
}

/// The next register operation of a process on the keys `base .. base + keys`: a read half the
/// time, else an append, a compare-and-append against `last_seen` (indexed from `base`) when the
/// process has seen the key.
pub fn next_register_op(
    rng: &mut impl Rng,
    base: usize,
    keys: usize,
    counter: u64,
    last_seen: &[Option<u64>],
) -> Op {
    let k = rng.random_range(0..keys.max(1));
    let key = register_key(base + k);
    if rng.random_bool(0.5) {
        return Op { f: "read", key, value: None };
    }
    let v = format!("v{counter}");
    let expected = last_seen.get(k).copied().flatten();
    let value = match expected {
        Some(e) if rng.random_bool(0.7) => json!({ "value": v, "expected_version": e }),
        _ => json!({ "value": v }),
    };
    Op { f: "append", key, value: Some(value) }
}

/// The next ledger operation of process `p`: mostly inserts of new keys, some reads of keys it
/// inserted, some checkpoints.
pub fn next_ledger_op(
    rng: &mut impl Rng,
    p: usize,
    counter: u64,
    shards: u32,
    inserted: &[String],
) -> Op {
    let roll: f64 = rng.random();
    if roll < 0.2 && !inserted.is_empty() {
        let key = inserted[rng.random_range(0..inserted.len())].clone();
        return Op { f: "read", key, value: None };
    }
    if roll < 0.3 {
        let shard = rng.random_range(0..shards.max(1));
        return Op {
            f: "checkpoint",
            key: format!("shard-{shard}"),
            value: Some(json!({ "shard": shard })),
        };
    }
    Op { f: "insert", key: format!("l{p}-{counter}"), value: None }
}

/// Runs `op` through `client` within `timeout`.
pub async fn run_op(client: &Client, op: &Op, timeout: Duration) -> Outcome {
    let done = tokio::time::timeout(timeout, perform(client, op)).await;
    match done {
        Ok(outcome) => outcome,
        Err(_) if matches!(op.f, "read" | "checkpoint" | "read-all") => {
            Outcome::Fail("timeout".into(), None)
        }
        Err(_) => Outcome::Info("timeout".into()),
    }
}

async fn perform(client: &Client, op: &Op) -> Outcome {
    let key = op.key.as_bytes();
    match op.f {
        "read" => match client.get(key, None, Consistency::Linearizable).await {
            Ok(r) => Outcome::Ok(Some(json!({
                "version": r.record.version,
                "value": String::from_utf8_lossy(r.record.value.as_deref().unwrap_or_default()),
            }))),
            Err(ClientError::Rejected { code, .. }) if code == "not_found" => Outcome::Ok(None),
            Err(e) => read_failure(e),
        },
        "append" => {
            let v = op.value.as_ref().and_then(|v| v["value"].as_str()).unwrap_or_default();
            let expected = op.value.as_ref().and_then(|v| v["expected_version"].as_u64());
            match client.append(key, v.as_bytes(), expected).await {
                Ok(w) => Outcome::Ok(Some(json!({ "version": w.version }))),
                Err(e) => write_failure(e),
            }
        }
        "add" => match client.insert(key, b"").await {
            Ok(_) => Outcome::Ok(None),
            Err(e) => write_failure(e),
        },
        "insert" => match client.insert(key, b"ledger").await {
            Ok(w) => {
                let c = &w.checkpoint.checkpoint;
                Outcome::Ok(Some(json!({
                    "shard": w.shard.0,
                    "log_index": w.log_index.0,
                    "size": c.size.0,
                    "root": c.root.to_string(),
                })))
            }
            Err(e) => write_failure(e),
        },
        "checkpoint" => {
            let shard = op.value.as_ref().and_then(|v| v["shard"].as_u64()).unwrap_or(0);
            let shard = blockdb_verifier::ShardId(u32::try_from(shard).unwrap_or(0));
            match client.checkpoint(shard).await {
                Ok(c) => Outcome::Ok(Some(json!({
                    "shard": shard.0,
                    "size": c.size.0,
                    "root": c.root.to_string(),
                }))),
                Err(e) => read_failure(e),
            }
        }
        "txn" => crate::txn_workload::list_append(client, op).await,
        "read-all" => {
            let n = op.value.as_ref().and_then(|v| v["accounts"].as_u64()).unwrap_or(0);
            crate::txn_workload::read_all(client, n as usize).await
        }
        "transfer" => crate::txn_workload::transfer(client, op).await,
        other => Outcome::Fail(format!("unknown operation {other}"), None),
    }
}

fn read_failure(e: ClientError) -> Outcome {
    match e {
        ClientError::Verification(v) => Outcome::Unverified(v.to_string()),
        e => Outcome::Fail(error_name(&e), None),
    }
}

fn write_failure(e: ClientError) -> Outcome {
    match e {
        ClientError::Verification(v) => Outcome::Unverified(v.to_string()),
        ClientError::Rejected { code, current_version, .. } => match code.as_str() {
            "timeout" | "unavailable" | "internal" => Outcome::Info(code),
            "version_mismatch" => {
                Outcome::Fail(code, current_version.map(|c| json!({ "current_version": c })))
            }
            _ => Outcome::Fail(code, None),
        },
        // The client retries only what certainly was not sent; anything left is unknown.
        e => Outcome::Info(error_name(&e)),
    }
}

fn error_name(e: &ClientError) -> String {
    match e {
        ClientError::Rejected { code, .. } => code.clone(),
        ClientError::Unavailable(_) => "unavailable".into(),
        ClientError::Verification(_) => "verification".into(),
        ClientError::Store(_) => "store".into(),
        _ => "client".into(),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn register_ops_read_append_and_compare_against_what_was_seen() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let seen = vec![Some(4), None];
        let ops: Vec<Op> = (0..200).map(|i| next_register_op(&mut rng, 0, 2, i, &seen)).collect();
        assert!(ops.iter().any(|o| o.f == "read"));
        assert!(ops.iter().any(
            |o| o.f == "append" && o.value.as_ref().unwrap().get("expected_version").is_none()
        ));
        let cas: Vec<&Op> = ops
            .iter()
            .filter(|o| o.value.as_ref().is_some_and(|v| v.get("expected_version").is_some()))
            .collect();
        assert!(!cas.is_empty());
        assert!(
            cas.iter().all(|o| o.key == "r0" && o.value.as_ref().unwrap()["expected_version"] == 4)
        );
    }

    #[test]
    fn refusals_fail_and_unknown_outcomes_are_info() {
        let rejected = |code: &str| ClientError::Rejected {
            code: code.into(),
            message: String::new(),
            current_version: Some(3),
        };
        assert_eq!(
            write_failure(rejected("version_mismatch")),
            Outcome::Fail("version_mismatch".into(), Some(json!({ "current_version": 3 })))
        );
        assert_eq!(write_failure(rejected("timeout")), Outcome::Info("timeout".into()));
        assert_eq!(
            write_failure(ClientError::Unavailable("x".into())),
            Outcome::Info("unavailable".into())
        );
        assert_eq!(
            read_failure(ClientError::Unavailable("x".into())),
            Outcome::Fail("unavailable".into(), None)
        );
    }
}
