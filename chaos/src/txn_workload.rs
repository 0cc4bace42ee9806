//! The transactional workloads, `list-append` and `bank`: their operations through the verifying
//! client ([`blockdb_client::Client::transact`], every receipt and read proven), and how their
//! histories become the inputs of [`crate::txn_check`].
//!
//! **list-append.** Each operation (`f = "txn"`) is a transaction of 1 to 4 micro-operations
//! over a few keys: `["append", key, element]` (a blind append of a unique element: the key's
//! next version) or `["r", key, null]` (a read). An `ok` completion carries the micro-operations
//! with what happened: `["append", key, element, version]`, `["r", key, element or null,
//! version]`. Since versions are immutable, a read of version `v` observes the list of the first
//! `v` elements; the final event (`f = "final"`) holds every key's whole list, read at the end.
//!
//! **bank.** Accounts `a0`, `a1`, ... start with 100 each (one transaction at the start);
//! `transfer` reads two accounts in one transaction and then moves up to 5 between them in
//! another, with both versions checked (a compare-and-set across shards); `read-all` reads every
//! balance in one transaction. Every `ok` read-all, and the final one, must sum to the total with
//! no negative balance.

use std::collections::BTreeMap;

use blockdb_client::{Client, ClientError, TxnOp};
use rand::Rng;
use serde_json::{Value, json};

use crate::history::{EventType, History};
use crate::txn_check::{BankRead, FinalState, MicroOp, TxnOutcome, TxnRecord};
use crate::workload::{Op, Outcome};

/// Each bank account's balance at the start.
pub const BANK_START: i64 = 100;

/// The list-append workload's keys.
pub fn list_key(i: usize) -> String {
    format!("la{i}")
}

/// The bank's accounts.
pub fn account(i: usize) -> String {
    format!("a{i}")
}

/// The next list-append transaction of process `p`: 1 to 4 micro-operations over `keys` keys,
/// each key appended at most once (elements are unique: `p`, `counter` and the position).
pub fn next_list_append_op(rng: &mut impl Rng, p: usize, counter: u64, keys: usize) -> Op {
    let n = rng.random_range(1..=4);
    let mut micro = Vec::new();
    let mut appended = Vec::new();
    for i in 0..n {
        let key = list_key(rng.random_range(0..keys.max(1)));
        if rng.random_bool(0.5) && !appended.contains(&key) {
            let element = (p as u64 * 1_000_000_000) + counter * 10 + i as u64;
            appended.push(key.clone());
            micro.push(json!(["append", key, element]));
        } else if !appended.contains(&key) {
            micro.push(json!(["r", key, null]));
        }
    }
    Op { f: "txn", key: "txn".into(), value: Some(Value::Array(micro)) }
}

/// The next bank operation: a read of every balance a fifth of the time, else a transfer.
pub fn next_bank_op(rng: &mut impl Rng, accounts: usize) -> Op {
    if rng.random_bool(0.2) || accounts < 2 {
        return Op {
            f: "read-all",
            key: "bank".into(),
            value: Some(json!({ "accounts": accounts })),
        };
    }
    let from = rng.random_range(0..accounts);
    let to = (from + rng.random_range(1..accounts)) % accounts;
    let amount = rng.random_range(1..=5);
    Op {
        f: "transfer",
        key: "bank".into(),
        value: Some(json!({ "from": account(from), "to": account(to), "amount": amount })),
    }
}

fn failure(e: ClientError) -> Outcome {
    match e {
        ClientError::Verification(v) => Outcome::Unverified(v.to_string()),
        // Refused before anything was written: certainly not committed.
        ClientError::Rejected { code, .. }
            if matches!(
                code.as_str(),
                "aborted" | "locked" | "deadlock" | "invalid_argument" | "not_leader"
            ) =>
        {
            Outcome::Fail(code, None)
        }
        ClientError::Rejected { code, .. } => Outcome::Info(code),
        other => Outcome::Info(format!("{other}")),
    }
}

/// Runs a list-append transaction.
pub async fn list_append(client: &Client, op: &Op) -> Outcome {
    let micro = op.value.as_ref().and_then(Value::as_array).cloned().unwrap_or_default();
    let mut ops = Vec::new();
    for m in &micro {
        let key = m[1].as_str().unwrap_or_default().as_bytes().to_vec();
        match m[0].as_str() {
            Some("append") => {
                let element = m[2].as_u64().unwrap_or_default().to_string();
                ops.push(TxnOp::append(key, element.into_bytes(), None));
            }
            _ => ops.push(TxnOp::read(key)),
        }
    }
    let result = match client.transact(&ops).await {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let (mut reads, mut writes) = (result.reads.iter(), result.writes.iter());
    let mut done = Vec::new();
    for m in &micro {
        if m[0].as_str() == Some("append") {
            let version = writes.next().map(|w| w.version);
            done.push(json!(["append", m[1], m[2], version]));
        } else {
            let r = reads.next();
            let element = r
                .and_then(|r| r.value.as_deref())
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok());
            done.push(json!(["r", m[1], element, r.map(|r| r.version)]));
        }
    }
    Outcome::Ok(Some(Value::Array(done)))
}

fn balance(value: Option<&[u8]>) -> Option<i64> {
    std::str::from_utf8(value?).ok()?.parse().ok()
}

/// Creates the accounts with [`BANK_START`] each, in one transaction (done once, before the
/// workload; an account that exists already is left as it is).
///
/// # Errors
/// When the transaction neither commits nor finds the accounts there.
pub async fn bank_setup(client: &Client, accounts: usize) -> Result<(), String> {
    let ops: Vec<TxnOp> = (0..accounts)
        .map(|i| TxnOp::insert(account(i), BANK_START.to_string().into_bytes()))
        .collect();
    for _ in 0..20 {
        match client.transact(&ops).await {
            Ok(_) => return Ok(()),
            Err(ClientError::Rejected { code, .. }) if code == "aborted" => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "creating the bank's accounts; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
    Err("the bank's accounts could not be created".into())
}

/// Runs a bank transfer: read both balances, then move the amount with both versions checked.
pub async fn transfer(client: &Client, op: &Op) -> Outcome {
    let v = op.value.clone().unwrap_or_default();
    let (from, to) = (v["from"].as_str().unwrap_or_default(), v["to"].as_str().unwrap_or_default());
    let amount = v["amount"].as_i64().unwrap_or(1);
    let read = [TxnOp::read(from.as_bytes().to_vec()), TxnOp::read(to.as_bytes().to_vec())];
    let r = match client.transact(&read).await {
        Ok(r) => r,
        // Nothing was written yet, whatever happened.
        Err(ClientError::Verification(v)) => return Outcome::Unverified(v.to_string()),
        Err(e) => return Outcome::Fail(format!("read: {e}"), None),
    };
    let (Some(f), Some(t)) = (r.reads.first(), r.reads.get(1)) else {
        return Outcome::Fail("read: short answer".into(), None);
    };
    let (Some(fb), Some(tb)) = (balance(f.value.as_deref()), balance(t.value.as_deref())) else {
        return Outcome::Fail("read: an account without a balance".into(), None);
    };
    if fb < amount {
        return Outcome::Fail("insufficient".into(), None);
    }
    let write = [
        TxnOp::append(
            from.as_bytes().to_vec(),
            (fb - amount).to_string().into_bytes(),
            Some(f.version),
        ),
        TxnOp::append(
            to.as_bytes().to_vec(),
            (tb + amount).to_string().into_bytes(),
            Some(t.version),
        ),
    ];
    match client.transact(&write).await {
        Ok(_) => Outcome::Ok(Some(json!({ "from": fb - amount, "to": tb + amount }))),
        Err(e) => failure(e),
    }
}

/// Reads every balance in one transaction.
pub async fn read_all(client: &Client, accounts: usize) -> Outcome {
    let ops: Vec<TxnOp> = (0..accounts).map(|i| TxnOp::read(account(i).into_bytes())).collect();
    match client.transact(&ops).await {
        Ok(r) => {
            let balances: serde_json::Map<String, Value> = r
                .reads
                .iter()
                .map(|r| {
                    let b = balance(r.value.as_deref());
                    (String::from_utf8_lossy(&r.key).into_owned(), json!(b))
                })
                .collect();
            Outcome::Ok(Some(Value::Object(balances)))
        }
        Err(ClientError::Verification(v)) => Outcome::Unverified(v.to_string()),
        Err(e) => Outcome::Fail(format!("{e}"), None),
    }
}

/// Reads every list-append key's whole list, for the final event.
///
/// # Errors
/// When a key's history cannot be read.
pub async fn final_lists(client: &Client, keys: usize) -> Result<Value, String> {
    let mut out = serde_json::Map::new();
    for i in 0..keys {
        let key = list_key(i);
        let elements: Vec<Value> = match client.history(key.as_bytes()).await {
            Ok(versions) => versions
                .iter()
                .map(|r| {
                    let text = r.record.value.as_deref().and_then(|v| std::str::from_utf8(v).ok());
                    json!(text.and_then(|t| t.parse::<u64>().ok()))
                })
                .collect(),
            Err(ClientError::Rejected { code, .. }) if code == "not_found" => Vec::new(),
            Err(e) => return Err(format!("history of {key}: {e}")),
        };
        out.insert(key, Value::Array(elements));
    }
    Ok(Value::Object(out))
}

/// The list-append history as the checker's transactions, and the final lists (from the last
/// `final` event).
pub fn list_append_inputs(history: &History) -> (Vec<TxnRecord>, Option<FinalState>) {
    let mut records = Vec::new();
    let mut final_state = None;
    for op in history.operations() {
        let invoke = &history.events()[op.invoke];
        let complete = op.completion.map(|i| &history.events()[i]);
        if invoke.f == "final" {
            if let Some(c) = complete.filter(|c| c.kind == EventType::Ok)
                && let Some(map) = c.value.as_ref().and_then(Value::as_object)
            {
                let lists = map
                    .iter()
                    .map(|(k, v)| {
                        let elements = v
                            .as_array()
                            .map(|a| a.iter().map(|e| e.as_u64().unwrap_or(u64::MAX)).collect())
                            .unwrap_or_default();
                        (k.clone(), elements)
                    })
                    .collect();
                final_state = Some(lists);
            }
            continue;
        }
        if invoke.f != "txn" {
            continue;
        }
        let outcome = match complete.map(|c| c.kind) {
            Some(EventType::Ok) => TxnOutcome::Ok,
            Some(EventType::Fail) => TxnOutcome::Fail,
            _ => TxnOutcome::Info,
        };
        let source = match (outcome, complete) {
            (TxnOutcome::Ok, Some(c)) => c.value.as_ref(),
            _ => invoke.value.as_ref(),
        };
        let ops = source
            .and_then(Value::as_array)
            .map(|micro| {
                micro
                    .iter()
                    .map(|m| {
                        let key = m[1].as_str().unwrap_or_default().to_owned();
                        let known = outcome == TxnOutcome::Ok;
                        if m[0].as_str() == Some("append") {
                            MicroOp::Append {
                                key,
                                element: m[2].as_u64().unwrap_or_default(),
                                version: m[3].as_u64().filter(|_| known),
                            }
                        } else {
                            MicroOp::Read {
                                key,
                                version: m[3].as_u64().filter(|_| known),
                                element: m[2].as_u64().filter(|_| known),
                            }
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push(TxnRecord {
            process: invoke.process,
            invoke_ms: invoke.time_ns / 1_000_000,
            complete_ms: complete
                .filter(|c| c.kind != EventType::Info)
                .map(|c| c.time_ns / 1_000_000),
            outcome,
            ops,
        });
    }
    (records, final_state)
}

/// The bank history's balance reads: every `ok` read-all (the last one is the final state).
pub fn bank_reads(history: &History) -> Vec<BankRead> {
    let mut reads = Vec::new();
    for op in history.operations() {
        let invoke = &history.events()[op.invoke];
        let Some(c) = op.completion.map(|i| &history.events()[i]) else { continue };
        if invoke.f != "read-all" || c.kind != EventType::Ok {
            continue;
        }
        let Some(map) = c.value.as_ref().and_then(Value::as_object) else { continue };
        let balances: BTreeMap<String, i64> =
            map.iter().filter_map(|(k, v)| v.as_i64().map(|b| (k.clone(), b))).collect();
        reads.push(BankRead {
            process: invoke.process,
            invoke_ms: invoke.time_ns / 1_000_000,
            complete_ms: c.time_ns / 1_000_000,
            balances,
        });
    }
    reads
}
