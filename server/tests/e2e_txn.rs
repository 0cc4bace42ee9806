//! Transactions on a cluster of real `blockdb` processes: commits across shards with receipts,
//! aborts that change nothing, bad input, deadlocks, a bank under leader kills, a list-append
//! history checked for anomalies, and the coordinator killed at each step of two-phase commit.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed step fails the test, and the panic names the line"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blockdb_chaos::txn_check::{
    BankConfig, BankRead, FinalState, MicroOp, TxnOutcome, TxnRecord, check_bank, check_list_append,
};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blockdb_verifier::{Receipt, ShardId, TrustPolicy, verify_receipt};
use common::cluster::Cluster;
use common::{Server, enc};
use serde_json::{Value, json};

/// Keys `prefix-N`, the first `n` of them whose shard (of `shards`) is `shard`.
fn keys_in(prefix: &str, shard: u32, shards: u32, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|k| ShardId::for_key(k.as_bytes(), shards) == Some(ShardId(shard)))
        .take(n)
        .collect()
}

fn b64(text: &str) -> String {
    STANDARD.encode(text.as_bytes())
}

fn read(key: &str) -> Value {
    json!({"op": "read", "key": b64(key)})
}

fn insert(key: &str, value: &str) -> Value {
    json!({"op": "insert", "key": b64(key), "value": b64(value)})
}

fn append(key: &str, value: &str, expected: Option<u64>) -> Value {
    let mut op = json!({"op": "append", "key": b64(key), "value": b64(value)});
    if let Some(v) = expected {
        op["expected_version"] = json!(v);
    }
    op
}

fn check(key: &str, version: u64) -> Value {
    json!({"op": "check", "key": b64(key), "version": version})
}

fn txn(s: &Server, ops: &[Value]) -> (u16, Value) {
    s.send("POST", "/v1/txn", &json!({ "ops": ops }).to_string())
}

fn value_of(read: &Value) -> Option<String> {
    read["value"].as_str().map(|v| String::from_utf8(STANDARD.decode(v).unwrap()).unwrap())
}

fn must_verify_receipt(body: &Value, policy: &TrustPolicy) -> blockdb_verifier::VerifiedReceipt {
    let receipt = Receipt::from_json(body["receipt"].to_string().as_bytes()).unwrap();
    verify_receipt(&receipt, policy).unwrap()
}

/// Every node's tree size of every shard, once they agree.
fn sizes(c: &Cluster) -> Vec<u64> {
    c.converged(Duration::from_secs(20)).into_iter().map(|(size, _)| size).collect()
}

#[test]
fn transactions_commit_across_shards_with_receipts_and_the_rest_change_nothing() {
    let c = Cluster::start(3, 2, &[]);
    let (a, b) = (&keys_in("acct", 0, 2, 1)[0], &keys_in("acct", 1, 2, 1)[0]);
    let policy = c.policy();
    let via = c.node(2);

    // Two shards, through a node that may lead neither.
    let (code, body) = txn(via, &[insert(a, "a1"), read(b), insert(b, "b1"), read(a)]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["reads"][0]["version"], 0, "reads see the state before the writes");
    assert_eq!(body["reads"][1]["version"], 0);
    let writes = body["writes"].as_array().unwrap();
    assert_eq!(writes.len(), 2);
    assert_eq!((writes[0]["shard"].as_u64(), writes[0]["version"].as_u64()), (Some(0), Some(1)));
    assert_eq!((writes[1]["shard"].as_u64(), writes[1]["version"].as_u64()), (Some(1), Some(1)));
    let verified = must_verify_receipt(&body, &policy);
    assert_eq!(verified.txn_id.to_hex(), body["txn_id"].as_str().unwrap());
    assert_eq!(verified.writes.len(), 2);
    // The records are ordinary records, with the transaction's id in their leaves.
    let bundle = c.node(3).must_get_verified(a.as_bytes(), Some(1));
    assert_eq!(bundle.leaf.txn_id, verified.txn_id);

    // Reads, checks and appends together; the reads come back with values.
    let (code, body) = txn(via, &[check(a, 1), read(a), append(b, "b2", Some(1)), read(b)]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(value_of(&body["reads"][0]).as_deref(), Some("a1"));
    assert_eq!(
        (body["reads"][1]["version"].as_u64(), value_of(&body["reads"][1])),
        (Some(1), Some("b1".into()))
    );
    assert_eq!(body["writes"][0]["version"], 2);
    must_verify_receipt(&body, &policy);

    // One shard: one round, a receipt too.
    let (code, body) = txn(c.node(1), &[append(a, "a2", Some(1)), read(a)]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["receipt"]["coordinator"], 0);
    must_verify_receipt(&body, &policy);
    // Read-only across shards: no receipt, nothing written.
    let before = sizes(&c);
    let (code, body) = txn(c.node(3), &[read(a), read(b)]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["receipt"], Value::Null);
    assert_eq!(
        (value_of(&body["reads"][0]), value_of(&body["reads"][1])),
        (Some("a2".into()), Some("b2".into()))
    );

    // Aborts: a failed check (single- and multi-shard), an insert of an existing key.
    for ops in [
        vec![check(a, 1), append(b, "no", None)],
        vec![append(b, "no", None), append(a, "no", Some(7))],
        vec![insert(a, "no")],
        vec![insert(a, "no"), insert(b, "no")],
    ] {
        let (code, body) = txn(via, &ops);
        assert_eq!((code, body["code"].as_str()), (409, Some("aborted")), "{body}");
    }
    // Bad input.
    let many: Vec<Value> = (0..1025).map(|i| read(&format!("k{i}"))).collect();
    let bad = Some("invalid_argument");
    for (ops, why, expected) in [
        (vec![], "empty", bad),
        (many, "too many operations", bad),
        (vec![append(a, "x", None), append(a, "y", None)], "a key written twice", bad),
        (vec![insert(a, "x"), append(a, "y", None)], "a key written twice", bad),
        (vec![check(a, 1), check(a, 2)], "contradicting checks", bad),
        (vec![check(a, 1), insert(a, "x")], "contradicting checks", bad),
        (vec![insert("\u{0}blockdb/txn/x", "x")], "a reserved key", bad),
        (vec![read("")], "an empty key", Some("key_too_large")),
        (vec![read(&"k".repeat(2000))], "a long key", Some("key_too_large")),
    ] {
        let (code, body) = txn(via, &ops);
        assert_eq!((code, body["code"].as_str()), (400, expected), "{why}: {body}");
    }
    for raw in [
        r#"{"ops":[{"op":"delete","key":"YQ=="}]}"#,
        r#"{"ops":[{"op":"read","key":"YQ==","extra":1}]}"#,
        r#"{"ops":[{"op":"read","key":"%%%"}]}"#,
        r#"{"ops":[{"op":"check","key":"YQ==","version":-1}]}"#,
        r#"{"operations":[]}"#,
        r#"not json"#,
    ] {
        let (code, body) = via.send("POST", "/v1/txn", raw);
        assert_eq!(code, 400, "{raw}: {body}");
    }
    assert_eq!(sizes(&c), before, "nothing was written by the refused transactions");
    let (code, body) = via.get(&format!("/v1/records?key={}", enc(b.as_bytes())));
    assert_eq!((code, body["record"]["version"].as_u64()), (200, Some(2)));
}

/// An HTTP client to every node of a cluster by address, usable from many threads while the
/// cluster's processes are killed and restarted.
#[derive(Clone)]
struct Nodes {
    addrs: std::sync::Arc<Mutex<Vec<String>>>,
    agent: ureq::Agent,
}

impl Nodes {
    fn of(c: &Cluster) -> Nodes {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(15)))
            .build();
        let addrs = c.live().iter().map(|s| s.addr.clone()).collect();
        Nodes { addrs: std::sync::Arc::new(Mutex::new(addrs)), agent: config.into() }
    }

    /// Takes the addresses of the cluster's running nodes again (a restarted node has a new
    /// one).
    fn refresh(&self, c: &Cluster) {
        *self.addrs.lock().unwrap() = c.live().iter().map(|s| s.addr.clone()).collect();
    }

    /// POSTs `body` to `path` on node `i` (mod the node count); `None` when there was no answer.
    fn post(&self, i: usize, path: &str, body: &Value) -> Option<(u16, Value)> {
        let addr = {
            let addrs = self.addrs.lock().unwrap();
            addrs[i % addrs.len()].clone()
        };
        let url = format!("http://{addr}{path}");
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .unwrap();
        let mut r = self.agent.run(req).ok()?;
        let code = r.status().as_u16();
        let text = r.body_mut().read_to_string().ok()?;
        Some((code, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    fn txn(&self, i: usize, ops: &[Value]) -> Option<(u16, Value)> {
        self.post(i, "/v1/txn", &json!({ "ops": ops }))
    }
}

#[test]
fn interactive_transactions_lock_read_write_and_commit_or_abort() {
    let c = Cluster::start(3, 2, &["--txn-timeout-ms", "3000"]);
    let (a, b) = (&keys_in("i", 0, 2, 1)[0], &keys_in("i", 1, 2, 1)[0]);
    let via = c.node(1);
    let (code, body) = txn(via, &[insert(a, "10"), insert(b, "20")]);
    assert_eq!(code, 200, "{body}");

    // begin, read both, write both, commit: a transfer.
    let (code, begun) = via.send("POST", "/v1/txn/begin", "");
    assert_eq!(code, 201, "{begun}");
    let id = begun["txn_id"].as_str().unwrap().to_owned();
    let path = |what: &str| format!("/v1/txn/{id}/{what}");
    let (code, ra) = via.send("POST", &path("read"), &json!({"key": b64(a)}).to_string());
    assert_eq!(
        (code, ra["version"].as_u64(), value_of(&ra).as_deref()),
        (200, Some(1), Some("10"))
    );
    let (code, rb) = via.send("POST", &path("read"), &json!({"key": b64(b)}).to_string());
    assert_eq!((code, value_of(&rb).as_deref()), (200, Some("20")));
    // While it holds a's lock, another transaction's write of a waits; a one-shot read of b
    // (shared) does not.
    let (code, body) = txn(c.node(2), &[read(b)]);
    assert_eq!(code, 200, "{body}");
    for (k, v) in [(a, "5"), (b, "25")] {
        let (code, body) = via.send("POST", &path("write"), &append(k, v, None).to_string());
        assert_eq!(code, 204, "{body}");
    }
    let (code, body) = via.send("POST", &path("commit"), "");
    assert_eq!(code, 200, "{body}");
    must_verify_receipt(&body, &c.policy());
    let (code, body) = txn(c.node(3), &[read(a), read(b)]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (value_of(&body["reads"][0]), value_of(&body["reads"][1])),
        (Some("5".into()), Some("25".into()))
    );

    // Commit, abort or use of an ended or unknown transaction: 404, nothing changes.
    let before = sizes(&c);
    for what in ["commit", "abort", "read", "write"] {
        let body = if what == "read" { json!({"key": b64(a)}) } else { append(a, "x", None) };
        let (code, out) = via.send("POST", &path(what), &body.to_string());
        assert_eq!((code, out["code"].as_str()), (404, Some("not_found")), "{what}: {out}");
    }
    let unknown = "00112233445566778899aabbccddeeff";
    let (code, _) = via.send("POST", &format!("/v1/txn/{unknown}/commit"), "");
    assert_eq!(code, 404);
    let (code, _) = via.send("POST", "/v1/txn/not-an-id/commit", "");
    assert_eq!(code, 400);
    // Another node does not know a transaction begun here.
    let (_, begun) = via.send("POST", "/v1/txn/begin", "");
    let other = begun["txn_id"].as_str().unwrap();
    let (code, _) = c.node(2).send("POST", &format!("/v1/txn/{other}/commit"), "");
    assert_eq!(code, 404);
    // A read after which the key changed: the commit aborts.
    let (code, _) =
        via.send("POST", &format!("/v1/txn/{other}/read"), &json!({"key": b64(a)}).to_string());
    assert_eq!(code, 200);
    let (code, _) =
        via.send("POST", &format!("/v1/txn/{other}/write"), &append(b, "0", None).to_string());
    assert_eq!(code, 204);
    // The plain write does not wait for the transaction's in-memory locks: the commit's checks
    // catch it.
    let (code, body) = via.append(a.as_bytes(), b"6", None);
    assert_eq!(code, 200, "{body}");
    let (code, body) = via.send("POST", &format!("/v1/txn/{other}/commit"), "");
    assert_eq!((code, body["code"].as_str()), (409, Some("aborted")), "{body}");
    let mut after = sizes(&c);
    after[0] -= 1; // the plain append of a
    assert_eq!(after, before);

    // An abort releases the locks at once.
    let (_, begun) = via.send("POST", "/v1/txn/begin", "");
    let t = begun["txn_id"].as_str().unwrap();
    let (code, _) =
        via.send("POST", &format!("/v1/txn/{t}/write"), &append(b, "held", None).to_string());
    assert_eq!(code, 204);
    let (code, _) = via.send("POST", &format!("/v1/txn/{t}/abort"), "");
    assert_eq!(code, 204);
    let started = Instant::now();
    let (code, body) = txn(c.node(2), &[append(b, "free", None)]);
    assert_eq!(code, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // A transaction left open past its timeout is aborted: its locks go, its commit is refused.
    let (_, begun) = via.send("POST", "/v1/txn/begin", "");
    let t = begun["txn_id"].as_str().unwrap();
    let (code, _) =
        via.send("POST", &format!("/v1/txn/{t}/write"), &append(b, "late", None).to_string());
    assert_eq!(code, 204);
    std::thread::sleep(Duration::from_millis(3_500));
    let (code, body) = via.send("POST", &format!("/v1/txn/{t}/commit"), "");
    assert_eq!((code, body["code"].as_str()), (404, Some("not_found")), "{body}");
    let (code, body) = txn(c.node(2), &[read(b), append(b, "after", None)]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(value_of(&body["reads"][0]).as_deref(), Some("free"), "the expired write is gone");
}

#[test]
fn two_transactions_locking_two_keys_in_opposite_orders_one_is_a_deadlock_victim() {
    // The keys are in different shards and the transactions have different coordinators: the
    // cycle is found whichever nodes lead the shards (by the cluster's detector if no one node
    // sees both waits).
    let c = Cluster::start(3, 2, &["--txn-timeout-ms", "30000"]);
    let nodes = Nodes::of(&c);
    for round in 0..3 {
        let x = &keys_in(&format!("dx{round}"), 0, 2, 1)[0];
        let y = &keys_in(&format!("dy{round}"), 1, 2, 1)[0];
        let begin = |i| {
            nodes.post(i, "/v1/txn/begin", &Value::Null).unwrap().1["txn_id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (t1, t2) = (begin(0), begin(1));
        let write = |i: usize, t: &str, k: &str| {
            nodes.post(i, &format!("/v1/txn/{t}/write"), &append(k, t, None)).unwrap()
        };
        assert_eq!(write(0, &t1, x).0, 204);
        assert_eq!(write(1, &t2, y).0, 204);
        let started = Instant::now();
        let (r1, r2) = std::thread::scope(|s| {
            let first = s.spawn(|| write(0, &t1, y));
            std::thread::sleep(Duration::from_millis(300));
            let second = write(1, &t2, x);
            (first.join().unwrap(), second)
        });
        let took = started.elapsed();
        let codes = [r1.0, r2.0];
        let (winner, loser, loser_body) = match codes {
            [204, 409] => (&t1, &t2, &r2.1),
            [409, 204] => (&t2, &t1, &r1.1),
            _ => panic!("round {round}: expected one deadlock: {r1:?} {r2:?}"),
        };
        assert_eq!(loser_body["code"], "deadlock", "{loser_body}");
        assert!(
            took < Duration::from_secs(3),
            "round {round}: found in {took:?}, not by a timeout"
        );
        let node_of = |t: &str| if t == t1 { 0 } else { 1 };
        let (code, body) =
            nodes.post(node_of(winner), &format!("/v1/txn/{winner}/commit"), &Value::Null).unwrap();
        assert_eq!(code, 200, "{body}");
        let (code, _) =
            nodes.post(node_of(loser), &format!("/v1/txn/{loser}/commit"), &Value::Null).unwrap();
        assert_eq!(code, 404, "the victim was aborted");
        println!("round {round}: deadlock found in {took:?}");
    }
}

/// Runs `work` on `threads` threads until `stop`, while `nemesis` runs on this one.
fn load(threads: usize, stop: &AtomicBool, work: impl Fn(usize) + Sync, nemesis: impl FnOnce()) {
    std::thread::scope(|s| {
        for t in 0..threads {
            let work = &work;
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    work(t);
                }
            });
        }
        nemesis();
        stop.store(true, Ordering::Relaxed);
    });
}

/// Kills the leader of each shard in turn (kill -9), lets the cluster go on without it, and
/// restarts it.
fn kill_each_leader(c: &mut Cluster, nodes: &Nodes, pause: Duration) {
    for shard in 0..c.shards {
        std::thread::sleep(pause);
        let leader = c.leader(shard, Duration::from_secs(20));
        c.nodes.get_mut(&leader).unwrap().take().unwrap().kill();
        nodes.refresh(c);
        println!("killed node {leader}, leader of shard {shard}");
        std::thread::sleep(pause);
        c.start_node(leader);
        c.wait_ready(Duration::from_secs(30));
        nodes.refresh(c);
    }
    std::thread::sleep(pause);
}

/// Every value of `key`'s history, oldest first (empty if it has none).
fn history(s: &Server, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let path =
            format!("/v1/history?key={}&from_version={from}&limit=1000", enc(key.as_bytes()));
        let (code, body) = s.get(&path);
        if code == 404 && from == 1 {
            return out;
        }
        assert_eq!(code, 200, "{body}");
        out.extend(
            body["bundles"].as_array().unwrap().iter().map(|b| value_of(&b["record"]).unwrap()),
        );
        match body["next_version"].as_u64() {
            Some(next) => from = next,
            None => return out,
        }
    }
}

/// Waits until no shard on any node holds a prepared participant or an undecided record.
fn all_decided(c: &Cluster, deadline: Duration) {
    let until = Instant::now() + deadline;
    loop {
        let open: Vec<String> = c
            .live()
            .iter()
            .flat_map(|s| {
                let (_, text) = s.get_bytes("/metrics");
                String::from_utf8(text)
                    .unwrap()
                    .lines()
                    .filter(|l| l.starts_with("blockdb_txns{") && !l.ends_with(" 0"))
                    .map(|l| format!("{}: {l}", s.addr))
                    .collect::<Vec<_>>()
            })
            .collect();
        if open.is_empty() {
            return;
        }
        assert!(Instant::now() < until, "transactions left undecided: {open:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_bank_keeps_its_total_while_leaders_are_killed() {
    let mut c = Cluster::start(3, 2, &["--txn-timeout-ms", "2000"]);
    let accounts: Vec<String> = (0..8).map(|i| format!("acct-{i}")).collect();
    let shards: Vec<_> = accounts.iter().map(|a| ShardId::for_key(a.as_bytes(), 2)).collect();
    assert!(shards.contains(&Some(ShardId(0))) && shards.contains(&Some(ShardId(1))));
    let total = 100 * accounts.len() as i64;
    let ops: Vec<Value> = accounts.iter().map(|a| insert(a, "100")).collect();
    let (code, body) = txn(c.node(1), &ops);
    assert_eq!(code, 200, "{body}");

    let nodes = Nodes::of(&c);
    let stop = AtomicBool::new(false);
    let reads: Mutex<Vec<BankRead>> = Mutex::default();
    let counts: Mutex<BTreeMap<String, u64>> = Mutex::default();
    let count = |what: &str| *counts.lock().unwrap().entry(what.into()).or_default() += 1;
    let start = Instant::now();
    let ms = || start.elapsed().as_millis() as u64;
    let read_all: Vec<Value> = accounts.iter().map(|a| read(a)).collect();
    let balances = |body: &Value| -> BTreeMap<String, (u64, i64)> {
        accounts
            .iter()
            .zip(body["reads"].as_array().unwrap())
            .map(|(a, r)| {
                (a.clone(), (r["version"].as_u64().unwrap(), value_of(r).unwrap().parse().unwrap()))
            })
            .collect()
    };
    let seq = AtomicU64::new(0);
    load(
        6,
        &stop,
        |t| {
            let n = seq.fetch_add(1, Ordering::Relaxed) as usize;
            if t < 2 {
                // Readers: every balance in one transaction.
                let invoke_ms = ms();
                if let Some((200, body)) = nodes.txn(n, &read_all) {
                    let b = balances(&body);
                    let balances = b.into_iter().map(|(a, (_, v))| (a, v)).collect();
                    reads.lock().unwrap().push(BankRead {
                        process: t as u64,
                        invoke_ms,
                        complete_ms: ms(),
                        balances,
                    });
                }
                return;
            }
            // Transfers: read two balances, then move up to 30 with both versions checked.
            let (from, to) = (&accounts[n % 8], &accounts[(n / 8 + n + 1) % 8]);
            if from == to {
                return;
            }
            let body = match nodes.txn(n, &[read(from), read(to)]) {
                Some((200, body)) => body,
                Some((code, b)) => {
                    count(&format!("read: {code} {}", b["code"].as_str().unwrap_or("")));
                    return;
                }
                None => {
                    count("read: no answer");
                    return;
                }
            };
            let (vf, bf) = (
                body["reads"][0]["version"].as_u64().unwrap(),
                value_of(&body["reads"][0]).unwrap().parse::<i64>().unwrap(),
            );
            let (vt, bt) = (
                body["reads"][1]["version"].as_u64().unwrap(),
                value_of(&body["reads"][1]).unwrap().parse::<i64>().unwrap(),
            );
            let amount = (n as i64 % 30 + 1).min(bf);
            let ops = [
                append(from, &(bf - amount).to_string(), Some(vf)),
                append(to, &(bt + amount).to_string(), Some(vt)),
            ];
            match nodes.txn(n + 1, &ops) {
                Some((200, _)) => count("committed"),
                Some((409, b)) => count(b["code"].as_str().unwrap_or("409")),
                Some((code, b)) => {
                    eprintln!("transfer {code}: {b}");
                    count(&format!("http {code}"))
                }
                None => count("no answer"),
            }
        },
        || kill_each_leader(&mut c, &nodes, Duration::from_secs(2)),
    );
    all_decided(&c, Duration::from_secs(30));
    let (code, body) = txn(c.node(1), &read_all);
    assert_eq!(code, 200, "{body}");
    let final_balances: BTreeMap<String, i64> =
        balances(&body).into_iter().map(|(a, (_, v))| (a, v)).collect();
    let reads = reads.into_inner().unwrap();
    let report = check_bank(
        &BankConfig { accounts: accounts.clone(), total },
        &reads,
        Some(&final_balances),
    );
    let counts = counts.into_inner().unwrap();
    println!("bank: {} ; transfers {counts:?}", report.summary());
    assert!(report.valid, "{}", serde_json::to_string_pretty(&report).unwrap());
    assert!(counts.get("committed").copied().unwrap_or(0) >= 20, "too few transfers: {counts:?}");
    assert!(reads.len() >= 20, "too few reads: {}", reads.len());
}

#[test]
fn list_append_transactions_show_no_anomaly_while_leaders_are_killed() {
    let mut c = Cluster::start(3, 2, &["--txn-timeout-ms", "2000"]);
    let keys: Vec<String> = (0..6).map(|i| format!("la-{i}")).collect();
    let nodes = Nodes::of(&c);
    let history_of: Mutex<Vec<TxnRecord>> = Mutex::default();
    let next = AtomicU64::new(1);
    let start = Instant::now();
    let ms = || start.elapsed().as_millis() as u64;
    let stop = AtomicBool::new(false);
    load(
        5,
        &stop,
        |t| {
            let n = next.fetch_add(1, Ordering::Relaxed);
            // 1 to 4 micro-operations over 2 of the keys, so transactions overlap often.
            let len = (n % 4 + 1) as usize;
            let mut ops = Vec::new();
            let mut micro = Vec::new();
            let mut written = Vec::new();
            for i in 0..len {
                let key = &keys[((n * 7 + i as u64 * 3) % keys.len() as u64) as usize];
                if (n + i as u64).is_multiple_of(2) && !written.contains(key) {
                    let element = n * 10 + i as u64;
                    ops.push(append(key, &element.to_string(), None));
                    written.push(key.clone());
                    micro.push(MicroOp::Append { key: key.clone(), element, version: None });
                } else if !written.contains(key) {
                    ops.push(read(key));
                    micro.push(MicroOp::Read { key: key.clone(), version: None, element: None });
                }
            }
            if ops.is_empty() {
                return;
            }
            let invoke_ms = ms();
            let answer = nodes.txn(n as usize + t, &ops);
            let complete_ms = Some(ms());
            let outcome = match &answer {
                Some((200, body)) => {
                    let (mut r, mut w) = (0, 0);
                    for m in &mut micro {
                        match m {
                            MicroOp::Read { version, element, .. } => {
                                let read = &body["reads"][r];
                                *version = read["version"].as_u64();
                                *element = value_of(read).map(|v| v.parse().unwrap());
                                r += 1;
                            }
                            MicroOp::Append { version, .. } => {
                                // 0: the shard had not applied the commit when the answer
                                // left (the API says so); the version is then unknown.
                                *version = body["writes"][w]["version"].as_u64().filter(|v| *v > 0);
                                w += 1;
                            }
                        }
                    }
                    TxnOutcome::Ok
                }
                Some((409 | 400, _)) => TxnOutcome::Fail,
                _ => TxnOutcome::Info,
            };
            history_of.lock().unwrap().push(TxnRecord {
                process: t as u64,
                invoke_ms,
                complete_ms,
                outcome,
                ops: micro,
            });
        },
        || kill_each_leader(&mut c, &nodes, Duration::from_secs(2)),
    );
    all_decided(&c, Duration::from_secs(30));
    let mut final_state = FinalState::new();
    for key in &keys {
        let elements = history(c.node(1), key).iter().map(|v| v.parse().unwrap()).collect();
        final_state.insert(key.clone(), elements);
    }
    let recorded = history_of.into_inner().unwrap();
    let report = check_list_append(&recorded, &final_state);
    println!("list-append: {}", report.summary());
    assert!(report.valid, "{}", serde_json::to_string_pretty(&report).unwrap());
    assert!(report.ok >= 50, "too few committed transactions: {}", report.summary());
}

/// The coordinator dies at `point` while a transfer between two shards is on its way; the
/// other nodes' recovery finishes it, on all its shards or on none.
fn coordinator_crash(point: &str, expect_commit: Option<bool>) {
    let mut c = Cluster::start(3, 2, &["--txn-timeout-ms", "1000"]);
    let (a, b) = (&keys_in(point, 0, 2, 1)[0], &keys_in(point, 1, 2, 1)[0]);
    let (code, body) = txn(c.node(1), &[insert(a, "100"), insert(b, "0")]);
    assert_eq!(code, 200, "{body}");
    // Node 3 coordinates, and dies at the point.
    let node3 = c.nodes.get_mut(&3).unwrap().take().unwrap();
    let data = node3.data_dir.clone();
    node3.must_stop();
    let (peers, id) = (c.peer_list(), "3".to_string());
    let crashing = Server::must_start(
        &data,
        &[
            "--node-id",
            &id,
            "--peers",
            &peers,
            "--shards",
            "2",
            "--txn-timeout-ms",
            "1000",
            "--txn-crash-at",
            point,
        ],
    );
    let answer = crashing.try_send(
        "POST",
        "/v1/txn",
        &json!({"ops": [append(a, "40", Some(1)), append(b, "60", Some(1))]}).to_string(),
    );
    assert!(answer.is_none(), "the coordinator answered: {answer:?}");
    crashing.kill();
    // The others finish it: no participant stays prepared, no record undecided.
    all_decided(&c, Duration::from_secs(30));
    let (code, body) = txn(c.node(1), &[read(a), read(b)]);
    assert_eq!(code, 200, "{body}");
    let got = (value_of(&body["reads"][0]).unwrap(), value_of(&body["reads"][1]).unwrap());
    let committed = match (got.0.as_str(), got.1.as_str()) {
        ("40", "60") => true,
        ("100", "0") => false,
        other => panic!("{point}: half a transaction: {other:?}"),
    };
    if let Some(want) = expect_commit {
        assert_eq!(committed, want, "{point}");
    }
    println!("{point}: the transaction {}", if committed { "committed" } else { "aborted" });
    // The node comes back and agrees.
    c.start_node(3);
    c.wait_ready(Duration::from_secs(30));
    c.converged(Duration::from_secs(30));
    all_decided(&c, Duration::from_secs(30));
}

#[test]
fn a_coordinator_killed_after_begin_leaves_nothing_behind() {
    coordinator_crash("after-begin", Some(false));
}

#[test]
fn a_coordinator_killed_after_a_prepare_is_aborted_by_recovery() {
    coordinator_crash("after-first-prepare", Some(false));
}

#[test]
fn a_coordinator_killed_after_the_commit_is_recorded_commits_everywhere() {
    coordinator_crash("after-decide", Some(true));
}

#[test]
fn a_participant_leader_killed_mid_transaction_still_ends_all_or_nothing() {
    let mut c = Cluster::start(3, 2, &["--txn-timeout-ms", "1000"]);
    let accounts: Vec<String> =
        keys_in("p", 0, 2, 2).into_iter().chain(keys_in("p", 1, 2, 2)).collect();
    let ops: Vec<Value> = accounts.iter().map(|a| insert(a, "0")).collect();
    let (code, body) = txn(c.node(1), &ops);
    assert_eq!(code, 200, "{body}");
    let nodes = Nodes::of(&c);
    let stop = AtomicBool::new(false);
    let seq = AtomicU64::new(0);
    let outcomes: Mutex<BTreeMap<String, u64>> = Mutex::default();
    // Each transaction appends the same value to all four keys (two per shard): at the end,
    // every key's history must be the same sequence.
    load(
        4,
        &stop,
        |_| {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let ops: Vec<Value> =
                accounts.iter().map(|a| append(a, &n.to_string(), None)).collect();
            let what = match nodes.txn(n as usize, &ops) {
                Some((code, b)) => format!("{code} {}", b["code"].as_str().unwrap_or("")),
                None => "no answer".into(),
            };
            *outcomes.lock().unwrap().entry(what).or_default() += 1;
        },
        || kill_each_leader(&mut c, &nodes, Duration::from_secs(2)),
    );
    all_decided(&c, Duration::from_secs(30));
    let histories: Vec<Vec<String>> = accounts.iter().map(|a| history(c.node(1), a)).collect();
    println!(
        "outcomes {:?}; {} transactions committed",
        outcomes.lock().unwrap(),
        histories[0].len() - 1
    );
    assert!(
        histories.windows(2).all(|w| w[0] == w[1]),
        "a transaction committed on some shards only: {histories:?}"
    );
    assert!(histories[0].len() > 10);
}
