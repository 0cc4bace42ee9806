//! Interactive transactions over gRPC end to end: a real node in-process, its gRPC router served
//! on a loopback port, and the generated client. TxnBegin, TxnRead, TxnWrite, TxnCommit and
//! TxnAbort across shards, the committed transaction's receipt checked with `verify_receipt`,
//! locks released by an abort, and every refusal with its gRPC code and its stable
//! `blockdb-error-code`.

mod common;

use std::time::{Duration, Instant};

use blockdb_proto::v1 as pb;
use blockdb_proto::v1::ledger_client::LedgerClient;
use blockdb_server::node::NodeConfig;
use blockdb_verifier::{Leaf, ShardId, verify_receipt};
use common::grpc::{
    DEADLINE, get, key_in, must_fail, must_insert, must_receipt, must_serve_configured,
    must_serve_with, must_tree_sizes, must_verify,
};
use tonic::Code;
use tonic::transport::Channel;

/// A transaction timeout far longer than any wait the tests accept: a lock that is only freed
/// when its transaction times out makes them fail rather than pass slowly.
const LONG_TXN_TIMEOUT_MS: u64 = 60_000;

/// Begins a transaction; its 16-byte id.
async fn must_begin(c: &mut LedgerClient<Channel>) -> Vec<u8> {
    let begun = c.txn_begin(pb::TxnBeginRequest {}).await.expect("begin").into_inner();
    assert_eq!(begun.txn_id.len(), 16, "{begun:?}");
    assert!(begun.timeout_ms > 0, "{begun:?}");
    begun.txn_id
}

fn read(txn: &[u8], key: &[u8]) -> pb::TxnReadRequest {
    pb::TxnReadRequest { txn_id: txn.to_vec(), key: key.to_vec() }
}

fn write(txn: &[u8], op: pb::txn_write_request::Op) -> pb::TxnWriteRequest {
    pb::TxnWriteRequest { txn_id: txn.to_vec(), op: Some(op) }
}

fn insert(key: &[u8], value: &[u8]) -> pb::txn_write_request::Op {
    pb::txn_write_request::Op::Insert(pb::TxnInsert { key: key.to_vec(), value: value.to_vec() })
}

fn append(key: &[u8], value: &[u8], expected_version: Option<u64>) -> pb::txn_write_request::Op {
    let (key, value) = (key.to_vec(), value.to_vec());
    pb::txn_write_request::Op::Append(pb::TxnAppend { key, value, expected_version })
}

fn check(key: &[u8], version: u64) -> pb::txn_write_request::Op {
    pb::txn_write_request::Op::Check(pb::TxnCheck { key: key.to_vec(), version })
}

fn commit(txn: &[u8]) -> pb::TxnCommitRequest {
    pb::TxnCommitRequest { txn_id: txn.to_vec() }
}

fn abort(txn: &[u8]) -> pb::TxnAbortRequest {
    pb::TxnAbortRequest { txn_id: txn.to_vec() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_transaction_across_two_shards_commits_with_a_receipt_that_verifies() {
    let served = must_serve_with(2, |r| r).await;
    let (c, policy) = (&mut served.client.clone(), &served.policy);
    let (a, b, d) = (key_in(0, "a"), key_in(1, "b"), key_in(1, "d"));
    must_insert(c, &a, b"100").await;

    // Phase 1: reads answer the latest version (0 and no value for a missing key), writes and a
    // check are taken; nothing is written before the commit.
    let t = must_begin(c).await;
    let got = c.txn_read(read(&t, &a)).await.expect("read a").into_inner();
    assert_eq!(got, pb::TxnReadResult { key: a.clone(), version: 1, value: Some(b"100".to_vec()) });
    let got = c.txn_read(read(&t, &b)).await.expect("read b").into_inner();
    assert_eq!(got, pb::TxnReadResult { key: b.clone(), version: 0, value: None });
    c.txn_write(write(&t, append(&a, b"70", Some(1)))).await.expect("append a");
    c.txn_write(write(&t, insert(&b, b"30"))).await.expect("insert b");
    c.txn_write(write(&t, check(&d, 0))).await.expect("check d");
    assert_eq!(must_tree_sizes(c, 2).await, [1, 0], "nothing written before the commit");

    // Phase 2: the commit answers like Transact: the writes in order, no reads, and a receipt
    // that verifies and proves exactly those writes, under the transaction's id.
    let out = c.txn_commit(commit(&t)).await.expect("commit").into_inner();
    assert_eq!(out.txn_id, t);
    assert!(out.reads.is_empty(), "{:?}", out.reads);
    let writes: Vec<(&[u8], u32, u64)> =
        out.writes.iter().map(|w| (&w.key[..], w.shard, w.version)).collect();
    assert_eq!(writes, [(&a[..], 0, 2), (&b[..], 1, 1)]);
    let receipt = must_receipt(out.receipt.as_ref().expect("a transaction that wrote has one"));
    assert_eq!(receipt.txn_id.0.to_vec(), t);
    let verified = verify_receipt(&receipt, policy).expect("the receipt verifies");
    assert_eq!(verified.coordinator, ShardId(0), "the first operation's key's shard");
    assert_eq!(verified.decision.participants.len(), 2);
    let mut proven: Vec<(Vec<u8>, u64, u64)> =
        verified.writes.iter().map(|w| (w.key.clone(), w.version, w.log_index.0)).collect();
    proven.sort();
    let mut answered: Vec<(Vec<u8>, u64, u64)> =
        out.writes.iter().map(|w| (w.key.clone(), w.version, w.log_index)).collect();
    answered.sort();
    assert_eq!(proven, answered, "the receipt proves exactly the writes answered");

    // Phase 3: the records are there, written by this transaction; the transaction has ended.
    let bundle = c.get(get(&b)).await.expect("get b").into_inner();
    assert_eq!(Leaf::decode(&bundle.leaf).expect("leaf").txn_id.0.to_vec(), t);
    assert_eq!(must_verify(policy, &bundle, None).value, Some(b"30".to_vec()));
    let bundle = c.get(get(&a)).await.expect("get a").into_inner();
    assert_eq!(must_verify(policy, &bundle, None).value, Some(b"70".to_vec()));
    must_fail(c.txn_commit(commit(&t)).await, Code::NotFound, "not_found");
    must_fail(c.txn_read(read(&t, &a)).await, Code::NotFound, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_releases_the_locks_and_writes_nothing() {
    let served = must_serve_configured(
        2,
        |config| NodeConfig { txn_timeout_ms: LONG_TXN_TIMEOUT_MS, ..config },
        |r| r,
    )
    .await;
    let c = &mut served.client.clone();
    let (a, b) = (key_in(0, "a"), key_in(1, "b"));
    must_insert(c, &a, b"a1").await;

    // Phase 1: t1 locks both keys; t2's write of `a` waits for t1.
    let t1 = must_begin(c).await;
    c.txn_write(write(&t1, append(&a, b"t1", None))).await.expect("t1 appends a");
    c.txn_write(write(&t1, insert(&b, b"t1"))).await.expect("t1 inserts b");
    let t2 = must_begin(c).await;
    let waiting = {
        let (mut c, t2, a) = (c.clone(), t2.clone(), a.clone());
        tokio::spawn(async move { c.txn_write(write(&t2, append(&a, b"t2", Some(1)))).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "t2's write waits for t1's lock");

    // Phase 2: t1 aborts; t2's write gets the lock at once (not when t1 would have timed out),
    // and t2 commits.
    let aborted = Instant::now();
    c.txn_abort(abort(&t1)).await.expect("abort");
    let granted = tokio::time::timeout(DEADLINE, waiting).await.expect("in time");
    granted.expect("the task").expect("t2's write is granted");
    let waited = aborted.elapsed();
    assert!(waited < Duration::from_secs(5), "granted after {waited:?}: not by the abort");
    c.txn_write(write(&t2, insert(&b, b"t2"))).await.expect("t2 inserts b");
    let out = c.txn_commit(commit(&t2)).await.expect("t2 commits").into_inner();
    let versions: Vec<u64> = out.writes.iter().map(|w| w.version).collect();
    assert_eq!(versions, [2, 1], "t1 wrote nothing");

    // Phase 3: t1 has ended.
    must_fail(c.txn_commit(commit(&t1)).await, Code::NotFound, "not_found");
    must_fail(c.txn_abort(abort(&t1)).await, Code::NotFound, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_transactions_and_bad_input_are_refused() {
    let served = must_serve_with(2, |r| r).await;
    let c = &mut served.client.clone();
    let (a, b) = (key_in(0, "a"), key_in(1, "b"));

    // Phase 1: an id of 16 bytes that no TxnBegin returned is NOT_FOUND, on every call.
    let unknown = vec![7; 16];
    must_fail(c.txn_commit(commit(&unknown)).await, Code::NotFound, "not_found");
    must_fail(c.txn_abort(abort(&unknown)).await, Code::NotFound, "not_found");
    must_fail(c.txn_read(read(&unknown, &a)).await, Code::NotFound, "not_found");
    let w = write(&unknown, insert(&a, b"x"));
    must_fail(c.txn_write(w).await, Code::NotFound, "not_found");

    // Phase 2: an id of any other length is INVALID_ARGUMENT, on every call.
    for id in [Vec::new(), vec![7; 15], vec![7; 17]] {
        const BAD: Code = Code::InvalidArgument;
        must_fail(c.txn_commit(commit(&id)).await, BAD, "invalid_argument");
        must_fail(c.txn_abort(abort(&id)).await, BAD, "invalid_argument");
        must_fail(c.txn_read(read(&id, &a)).await, BAD, "invalid_argument");
        must_fail(c.txn_write(write(&id, insert(&a, b"x"))).await, BAD, "invalid_argument");
    }

    // Phase 3: bad input to an open transaction is refused and leaves it open: a write without
    // an op, empty keys, a key written twice. It then commits what it was given.
    let t = must_begin(c).await;
    let no_op = pb::TxnWriteRequest { txn_id: t.clone(), op: None };
    must_fail(c.txn_write(no_op).await, Code::InvalidArgument, "invalid_argument");
    must_fail(c.txn_read(read(&t, b"")).await, Code::InvalidArgument, "key_too_large");
    let w = write(&t, insert(b"", b"x"));
    must_fail(c.txn_write(w).await, Code::InvalidArgument, "key_too_large");
    c.txn_write(write(&t, insert(&b, b"b1"))).await.expect("insert b");
    let w = write(&t, append(&b, b"b2", None));
    must_fail(c.txn_write(w).await, Code::InvalidArgument, "invalid_argument");
    let out = c.txn_commit(commit(&t)).await.expect("commit").into_inner();
    assert_eq!(out.writes.len(), 1);
    assert_eq!(must_tree_sizes(c, 2).await[0], 0, "nothing else was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_after_a_conflicting_write_of_a_key_read_is_aborted_and_writes_nothing() {
    let served = must_serve_with(2, |r| r).await;
    let c = &mut served.client.clone();
    let (a, b) = (key_in(0, "a"), key_in(1, "b"));
    must_insert(c, &a, b"a1").await;

    // Phase 1: the transaction reads `a` at version 1 and means to write `b`.
    let t = must_begin(c).await;
    let got = c.txn_read(read(&t, &a)).await.expect("read").into_inner();
    assert_eq!(got.version, 1);
    c.txn_write(write(&t, insert(&b, b"from a1"))).await.expect("insert b");

    // Phase 2: a single write moves `a` on (single writes do not wait for interactive locks),
    // so the commit, which checks the version read, aborts.
    let moved = pb::AppendRequest { key: a.clone(), value: b"a2".to_vec(), expected_version: None };
    assert_eq!(c.append(moved).await.expect("append").into_inner().version, 2);
    let before = must_tree_sizes(c, 2).await;
    must_fail(c.txn_commit(commit(&t)).await, Code::Aborted, "aborted");

    // Phase 3: nothing was written, and the transaction has ended.
    assert_eq!(must_tree_sizes(c, 2).await, before);
    must_fail(c.get(get(&b)).await, Code::NotFound, "not_found");
    must_fail(c.txn_commit(commit(&t)).await, Code::NotFound, "not_found");
}

/// Regression test: a call that the client gave up on while it waited for a lock cancelled the
/// step with it, and the session stayed marked as running a request: every later call of the
/// transaction was refused until it timed out. The step now runs to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_client_gave_up_on_still_completes_and_the_transaction_goes_on() {
    let served = must_serve_configured(
        1,
        |config| NodeConfig { txn_timeout_ms: LONG_TXN_TIMEOUT_MS, ..config },
        |r| r,
    )
    .await;
    let c = &mut served.client.clone();

    // Phase 1: t2's write of `k` waits for t1's lock; the client gives up on it (the call is
    // cancelled on the wire).
    let t1 = must_begin(c).await;
    c.txn_write(write(&t1, insert(b"k", b"t1"))).await.expect("t1 inserts k");
    let t2 = must_begin(c).await;
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        c.txn_write(write(&t2, insert(b"k", b"t2"))),
    )
    .await;
    assert!(gave_up.is_err(), "the write waited: {gave_up:?}");

    // Phase 2: t1 aborts; t2's write, still running on the node, gets the lock, and t2 then
    // commits it (its commit is refused only while that write is still running).
    c.txn_abort(abort(&t1)).await.expect("abort t1");
    let deadline = Instant::now() + DEADLINE;
    let out = loop {
        match c.txn_commit(commit(&t2)).await {
            Ok(out) => break out.into_inner(),
            Err(s) if s.code() == Code::InvalidArgument && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => panic!("t2's commit failed: {s:?}"),
        }
    };
    let writes: Vec<(&[u8], u64)> = out.writes.iter().map(|w| (&w.key[..], w.version)).collect();
    assert_eq!(writes, [(&b"k"[..], 1)]);
}
