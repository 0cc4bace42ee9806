//! The gRPC API end to end: a real node in-process, its gRPC router served by axum on a port from
//! the OS, and the generated clients. Every proof the server returns is checked with the
//! verifier against the node's published key (a transaction's receipt with `verify_receipt`);
//! every error carries its stable code in the `blockdb-error-code` metadata; bad input changes
//! nothing.
//!
//! Longer than the ~500-line soft limit on purpose: it is the gRPC contract in one place, one
//! test per group of RPCs over the shared helpers of `common::grpc`. Interactive transactions
//! are in `grpc_txn.rs`.

mod common;

use blockdb_proto::v1 as pb;
use blockdb_verifier::block::verify_against_checkpoint;
use blockdb_verifier::{
    Block, Checkpoint, Leaf, LogIndex, ShardId, TreeSize, TrustPolicy, VerifierKey, leaf_hash,
    verify_inclusion, verify_receipt,
};
use common::grpc::{
    DEADLINE, Served, get, key_in, must_append, must_checkpoint, must_consistency, must_fail,
    must_hashes, must_insert, must_receipt, must_serve, must_serve_with, must_tree_size,
    must_tree_sizes, must_trusted, must_verify, t_append, t_check, t_insert, t_read, txn,
};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

/// Writes alice (versions 1 to 3), bob, carol and dave (log indexes 0 to 5), checking the write
/// responses, and returns the verified checkpoint of size 1 that the reads prove growth from.
async fn must_seed(served: &Served) -> Checkpoint {
    let mut client = served.client.clone();
    let first = must_insert(&mut client, b"alice", b"a1").await;
    assert_eq!((first.shard, first.version, first.log_index, first.tree_size), (0, 1, 0, 1));
    let signed = must_checkpoint(&first.checkpoint);
    let trusted = served.policy.verify(&signed).expect("the write's checkpoint verifies");
    assert_eq!(trusted.checkpoint.size, TreeSize(1));
    must_append(&mut client, b"alice", b"a2").await;
    let third = must_append(&mut client, b"alice", b"").await;
    assert_eq!((third.version, third.log_index, third.tree_size), (3, 2, 3));
    for key in [&b"bob"[..], b"carol", b"dave"] {
        must_insert(&mut client, key, key).await;
    }
    assert_eq!(must_tree_size(&mut client).await, 6);
    trusted.checkpoint
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_returns_bundles_that_verify() {
    let served = must_serve().await;
    let trusted = must_seed(&served).await;
    let (mut client, policy) = (served.client.clone(), &served.policy);

    // Phase 1: the latest version, then an older one with a consistency proof from size 1.
    let latest = client.get(get(b"alice")).await.expect("get").into_inner();
    let record = must_verify(policy, &latest, None);
    assert_eq!((record.version, record.value), (3, Some(Vec::new())));
    let req = pb::GetRequest { version: Some(1), known_size: Some(1), ..get(b"alice") };
    let v1 = client.get(req).await.expect("get v1").into_inner();
    assert_eq!(must_verify(policy, &v1, Some(&trusted)).value, Some(b"a1".to_vec()));

    // Phase 2: a stale read proves just as well.
    let req = pb::GetRequest { consistency: pb::Consistency::Stale as i32, ..get(b"bob") };
    let bob = client.get(req).await.expect("stale get").into_inner();
    assert_eq!(must_verify(policy, &bob, None).value, Some(b"bob".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_scan_pages_verify_and_cover_everything_once() {
    let served = must_serve().await;
    let trusted = must_seed(&served).await;
    let (mut client, policy) = (served.client.clone(), &served.policy);

    // Phase 1: History in pages of 2, each bundle proven from size 1.
    let mut versions = Vec::new();
    let mut from_version = 0;
    for page_number in 0..2 {
        let req = pb::HistoryRequest {
            key: b"alice".to_vec(),
            limit: 2,
            known_size: Some(1),
            from_version,
        };
        let page = client.history(req).await.expect("history").into_inner();
        versions
            .extend(page.bundles.iter().map(|b| must_verify(policy, b, Some(&trusted)).version));
        assert_eq!(page.next_version, [Some(3), None][page_number]);
        from_version = page.next_version.unwrap_or_default();
    }
    assert_eq!(versions, [1, 2, 3]);

    // Phase 2: Scan in pages of 3 returns every key once, in order.
    let mut keys = Vec::new();
    let mut start = Vec::new();
    for _ in 0..10 {
        let req = pb::ScanRequest { start, limit: 3, known_size: Some(1), ..Default::default() };
        let page = client.scan(req).await.expect("scan").into_inner();
        assert!(page.bundles.len() <= 3);
        keys.extend(page.bundles.iter().map(|b| must_verify(policy, b, Some(&trusted)).key));
        if page.next_key.is_empty() {
            break;
        }
        start = page.next_key;
    }
    assert_eq!(keys, [&b"alice"[..], b"bob", b"carol", b"dave"]);

    // Phase 3: a bounded range, and an empty one.
    let req = pb::ScanRequest { start: b"b".to_vec(), end: b"c".to_vec(), ..Default::default() };
    let page = client.scan(req).await.expect("bounded scan").into_inner();
    assert_eq!((page.bundles.len(), page.next_key.is_empty()), (1, true));
    let req = pb::ScanRequest { start: b"b".to_vec(), end: b"b".to_vec(), ..Default::default() };
    assert!(client.scan(req).await.expect("empty scan").into_inner().bundles.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_checkpoints_and_consistency_proofs_verify() {
    let served = must_serve().await;
    let trusted = must_seed(&served).await;
    let (mut client, policy) = (served.client.clone(), &served.policy);

    // Phase 1: GetCheckpoint's fields are the signed checkpoint's.
    let req = pb::GetCheckpointRequest { shard: 0 };
    let checkpoint = client.get_checkpoint(req).await.expect("checkpoint").into_inner();
    let current = must_trusted(policy, &checkpoint.checkpoint);
    assert_eq!(
        (current.origin.as_str(), current.size.0, current.root.0.to_vec()),
        (checkpoint.origin.as_str(), checkpoint.tree_size, checkpoint.root.clone())
    );

    // Phase 2: GetEntry proves a leaf and the growth from size 1.
    let req = pb::GetEntryRequest { shard: 0, log_index: 4, known_size: Some(1) };
    let entry = client.get_entry(req).await.expect("entry").into_inner();
    let leaf = Leaf::decode(&entry.leaf).expect("leaf");
    assert_eq!((leaf.log_index, leaf.key.as_slice()), (LogIndex(4), &b"carol"[..]));
    let signed = must_trusted(policy, &entry.checkpoint);
    let path = must_hashes(&entry.inclusion_proof);
    verify_inclusion(&leaf_hash(&entry.leaf), LogIndex(4), signed.size, &path, &signed.root)
        .expect("the inclusion proof verifies");
    let proof = must_consistency(entry.consistency_proof.as_ref().expect("asked for"));
    proof.verify(&trusted.root, &signed.root).expect("consistency from size 1");

    // Phase 3: GetConsistency to the latest checkpoint, and from the empty tree.
    let req = pb::GetConsistencyRequest { shard: 0, from_size: 1, to_size: None };
    let c = client.get_consistency(req).await.expect("consistency").into_inner();
    let to = must_trusted(policy, &c.checkpoint);
    let proof = must_consistency(c.proof.as_ref().expect("a proof"));
    assert_eq!((proof.from_size, proof.to_size), (TreeSize(1), to.size));
    proof.verify(&trusted.root, &to.root).expect("the consistency proof verifies");
    let req = pb::GetConsistencyRequest { shard: 0, from_size: 0, to_size: Some(3) };
    let empty = client.get_consistency(req).await.expect("from the empty tree").into_inner();
    assert!(empty.proof.expect("a proof").hashes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_and_node_info_match_the_log() {
    let served = must_serve_with(2, |r| r).await;
    let (node, mut client, policy) = (&served.node, served.client.clone(), &served.policy);
    for i in 0..6u8 {
        must_insert(&mut client, &[b'k', i], b"v").await;
    }

    // Phase 1: NodeInfo names the key that signs the checkpoints, and every shard.
    let info = client.node_info(pb::NodeInfoRequest {}).await.expect("node info").into_inner();
    let key: VerifierKey = info.verifier_key.parse().expect("a verifier key");
    assert_eq!(&key, node.verifier_key());
    assert_eq!((info.node_name.as_str(), info.shards, info.shards_info.len()), (key.name(), 2, 2));
    let sizes: u64 = info.shards_info.iter().map(|s| s.tree_size).sum();
    assert_eq!(sizes, 6, "every write is in one shard's log");
    for (i, s) in info.shards_info.iter().enumerate() {
        assert_eq!(s.shard as usize, i);
        assert!(s.origin.ends_with(&format!("/shard/{i}")), "{}", s.origin);
        assert!(s.applied_index > 0);
    }

    // Phase 2: the latest block and block 1 decode, hash and prove against the checkpoint.
    let shard = info.shards_info.iter().find(|s| s.tree_size > 0).expect("a shard with records");
    let req = pb::GetBlockRequest { shard: shard.shard, height: None };
    let latest = client.get_block(req).await.expect("latest block").into_inner();
    let block = Block::decode(&latest.encoded).expect("the block decodes");
    assert_eq!(block.hash().0.to_vec(), latest.hash);
    assert_eq!(
        (block.height, block.tree_size.0, block.tree_root.0.to_vec()),
        (latest.height, latest.tree_size, latest.tree_root.clone())
    );
    let req = pb::GetCheckpointRequest { shard: shard.shard };
    let cp = client.get_checkpoint(req).await.expect("checkpoint").into_inner();
    let cp = policy.verify(&must_checkpoint(&cp.checkpoint)).expect("verifies").checkpoint;
    verify_against_checkpoint(&block, &cp, None)
        .expect("the latest block is the checkpoint's tree");
    let req = pb::GetBlockRequest { shard: shard.shard, height: Some(1) };
    let first = client.get_block(req).await.expect("block 1").into_inner();
    assert_eq!((first.height, first.prev_hash.as_slice()), (1, &[0u8; 32][..]));
    let req = pb::GetBlockRequest { shard: shard.shard, height: Some(latest.height + 1) };
    must_fail(client.get_block(req).await, Code::NotFound, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_fail_with_their_codes_and_current_version() {
    let served = must_serve().await;
    let mut client = served.client.clone();
    must_insert(&mut client, b"k", b"v1").await;

    // Phase 1: a second insert is ALREADY_EXISTS, with the current version.
    let req = pb::InsertRequest { key: b"k".to_vec(), value: b"v2".to_vec() };
    let status = must_fail(client.insert(req).await, Code::AlreadyExists, "already_exists");
    let current = status.metadata().get("blockdb-current-version").and_then(|v| v.to_str().ok());
    assert_eq!(current, Some("1"));

    // Phase 2: compare-and-append with a wrong version is FAILED_PRECONDITION.
    let req =
        pb::AppendRequest { key: b"k".to_vec(), value: b"x".to_vec(), expected_version: Some(5) };
    let status = must_fail(client.append(req).await, Code::FailedPrecondition, "version_mismatch");
    let current = status.metadata().get("blockdb-current-version").and_then(|v| v.to_str().ok());
    assert_eq!(current, Some("1"));

    // Phase 3: the right version, and 0 for a new key, commit.
    let req =
        pb::AppendRequest { key: b"k".to_vec(), value: b"v2".to_vec(), expected_version: Some(1) };
    assert_eq!(client.append(req).await.expect("append").into_inner().version, 2);
    let req =
        pb::AppendRequest { key: b"new".to_vec(), value: b"n".to_vec(), expected_version: Some(0) };
    assert_eq!(client.append(req).await.expect("append").into_inner().version, 1);
    assert_eq!(must_tree_size(&mut client).await, 3, "the refused writes left no leaf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transact_commits_in_one_and_two_shards_with_receipts_that_verify() {
    let served = must_serve_with(2, |r| r).await;
    let (mut client, policy) = (served.client.clone(), &served.policy);
    let (a, a2, b) = (key_in(0, "a"), key_in(0, "c"), key_in(1, "b"));
    must_insert(&mut client, &a, b"a1").await;

    // Phase 1: one shard. The read sees the state before the transaction's writes; the receipt
    // holds both writes and verifies; a Get proves the new version, written by this transaction.
    let ops = vec![t_read(&a), t_append(&a, b"a2", Some(1)), t_insert(&a2, b"x")];
    let out = client.transact(txn(ops)).await.expect("one-shard transaction").into_inner();
    let read = pb::TxnReadResult { key: a.clone(), version: 1, value: Some(b"a1".to_vec()) };
    assert_eq!(out.reads, [read]);
    let writes: Vec<(&[u8], u32, u64)> =
        out.writes.iter().map(|w| (&w.key[..], w.shard, w.version)).collect();
    assert_eq!(writes, [(&a[..], 0, 2), (&a2[..], 0, 1)]);
    let receipt = must_receipt(out.receipt.as_ref().expect("a transaction that wrote has one"));
    assert_eq!(receipt.txn_id.0.to_vec(), out.txn_id);
    let verified = verify_receipt(&receipt, policy).expect("the receipt verifies");
    assert_eq!(verified.coordinator, ShardId(0));
    let mut proven: Vec<(Vec<u8>, u64, u64)> =
        verified.writes.iter().map(|w| (w.key.clone(), w.version, w.log_index.0)).collect();
    proven.sort();
    let mut answered: Vec<(Vec<u8>, u64, u64)> =
        out.writes.iter().map(|w| (w.key.clone(), w.version, w.log_index)).collect();
    answered.sort();
    assert_eq!(proven, answered, "the receipt proves exactly the writes answered");
    let got = client.get(get(&a)).await.expect("get").into_inner();
    assert_eq!(Leaf::decode(&got.leaf).expect("leaf").txn_id, receipt.txn_id);
    assert_eq!(must_verify(policy, &got, None).value, Some(b"a2".to_vec()));

    // Phase 2: two shards, by two-phase commit: a check and an append in shard 0, a read of a
    // missing key and its insert in shard 1.
    let ops = vec![t_check(&a, 2), t_read(&b), t_insert(&b, b"b1"), t_append(&a, b"a3", None)];
    let out = client.transact(txn(ops)).await.expect("two-shard transaction").into_inner();
    assert_eq!(out.reads, [pb::TxnReadResult { key: b.clone(), version: 0, value: None }]);
    let writes: Vec<(&[u8], u32, u64)> =
        out.writes.iter().map(|w| (&w.key[..], w.shard, w.version)).collect();
    assert_eq!(writes, [(&b[..], 1, 1), (&a[..], 0, 3)]);
    let receipt = must_receipt(out.receipt.as_ref().expect("a receipt"));
    let verified = verify_receipt(&receipt, policy).expect("the receipt verifies");
    assert_eq!(verified.decision.participants.len(), 2);
    assert_eq!(verified.checkpoints.keys().copied().collect::<Vec<_>>(), [ShardId(0), ShardId(1)]);
    let got = client.get(get(&b)).await.expect("get").into_inner();
    assert_eq!(must_verify(policy, &got, None).value, Some(b"b1".to_vec()));

    // Phase 3: a read-only transaction across both shards has no receipt.
    let out = client.transact(txn(vec![t_read(&a), t_read(&b)])).await.expect("reads");
    let out = out.into_inner();
    let versions: Vec<u64> = out.reads.iter().map(|r| r.version).collect();
    assert_eq!((versions, out.writes.len(), out.receipt), (vec![3, 1], 0, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_transactions_are_refused_with_their_codes_and_change_nothing() {
    let served = must_serve_with(2, |r| r).await;
    let c = &mut served.client.clone();
    let (a, b) = (key_in(0, "a"), key_in(1, "b"));
    must_insert(c, &a, b"a1").await;
    let before = must_tree_sizes(c, 2).await;

    // Phase 1: a failed check aborts, in one shard and across two; so does an insert of a key
    // that exists and an append at another version.
    let aborts = [
        vec![t_check(&a, 2), t_append(&a, b"x", None)],
        vec![t_check(&a, 2), t_insert(&b, b"x")],
        vec![t_insert(&b, b"x"), t_insert(&a, b"x")],
        vec![t_append(&b, b"x", None), t_append(&a, b"x", Some(7))],
    ];
    for ops in aborts {
        must_fail(c.transact(txn(ops)).await, Code::Aborted, "aborted");
    }

    // Phase 2: bad input is INVALID_ARGUMENT: no operation, an operation without its op, a key
    // written twice, contradicting checks, reserved keys, an empty key.
    must_fail(c.transact(txn(vec![])).await, BAD, "invalid_argument");
    let no_op = pb::TransactRequest { ops: vec![pb::TxnOp { op: None }] };
    must_fail(c.transact(no_op).await, BAD, "invalid_argument");
    let twice = txn(vec![t_insert(&b, b"1"), t_append(&b, b"2", None)]);
    must_fail(c.transact(twice).await, BAD, "invalid_argument");
    let contradicting = txn(vec![t_check(&a, 1), t_append(&a, b"x", Some(2))]);
    must_fail(c.transact(contradicting).await, BAD, "invalid_argument");
    let reserved = b"\x00blockdb/txn/anything";
    must_fail(c.transact(txn(vec![t_insert(reserved, b"x")])).await, BAD, "invalid_argument");
    let reserved = txn(vec![t_insert(&b, b"x"), t_append(b"\x00blockdb/x", b"x", None)]);
    must_fail(c.transact(reserved).await, BAD, "invalid_argument");
    must_fail(c.transact(txn(vec![t_read(b"")])).await, BAD, "key_too_large");

    // Nothing was written in either shard, and the keys are as they were.
    assert_eq!(must_tree_sizes(c, 2).await, before);
    must_fail(c.get(get(&b)).await, MISSING, "not_found");
    let bundle = c.get(get(&a)).await.expect("get").into_inner();
    assert_eq!(bundle.record.expect("record").version, 1);
}

const BAD: Code = Code::InvalidArgument;
const OUT: Code = Code::OutOfRange;
const MISSING: Code = Code::NotFound;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_writes_are_refused_and_change_nothing() {
    let served = must_serve().await;
    let c = &mut served.client.clone();
    must_insert(c, b"k", b"v").await;
    let long_key = vec![b'k'; 1025];
    let long_value = vec![0; (1 << 20) + 1];
    let insert =
        |key: &[u8], value: &[u8]| pb::InsertRequest { key: key.into(), value: value.into() };
    let append = |key: &[u8], value: &[u8]| pb::AppendRequest {
        key: key.into(),
        value: value.into(),
        expected_version: None,
    };

    must_fail(c.insert(insert(b"", b"v")).await, BAD, "key_too_large");
    must_fail(c.insert(insert(&long_key, b"v")).await, BAD, "key_too_large");
    must_fail(c.insert(insert(b"k2", &long_value)).await, BAD, "value_too_large");
    must_fail(c.append(append(b"", b"v")).await, BAD, "key_too_large");
    must_fail(c.append(append(&long_key, b"v")).await, BAD, "key_too_large");
    must_fail(c.append(append(b"k", &long_value)).await, BAD, "value_too_large");

    // Nothing was written, and the server still answers.
    assert_eq!(must_tree_size(c).await, 1);
    let bundle = c.get(get(b"k")).await.expect("get").into_inner();
    assert_eq!(bundle.record.expect("record").version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reads_are_refused_and_change_nothing() {
    let served = must_serve().await;
    let c = &mut served.client.clone();
    must_insert(c, b"k", b"v").await;
    let with = |f: fn(&mut pb::GetRequest)| {
        let mut req = get(b"k");
        f(&mut req);
        req
    };
    must_fail(c.get(get(b"")).await, BAD, "key_too_large");
    must_fail(c.get(get(&[b'k'; 1025])).await, BAD, "key_too_large");
    must_fail(c.get(with(|r| r.version = Some(0))).await, BAD, "invalid_argument");
    must_fail(c.get(with(|r| r.consistency = 7)).await, BAD, "invalid_argument");
    must_fail(c.get(with(|r| r.version = Some(2))).await, MISSING, "not_found");
    must_fail(c.get(get(b"missing")).await, MISSING, "not_found");
    must_fail(c.get(with(|r| r.known_size = Some(99))).await, OUT, "out_of_range");

    let history = |key: &[u8], known_size| pb::HistoryRequest {
        key: key.into(),
        known_size,
        ..Default::default()
    };
    must_fail(c.history(history(b"missing", None)).await, MISSING, "not_found");
    must_fail(c.history(history(b"k", Some(2))).await, OUT, "out_of_range");
    let scan = pb::ScanRequest { start: b"b".to_vec(), end: b"a".to_vec(), ..Default::default() };
    must_fail(c.scan(scan).await, BAD, "invalid_argument");
    let scan = pb::ScanRequest { shard: 7, ..Default::default() };
    must_fail(c.scan(scan).await, MISSING, "not_found");

    let entry = |shard, log_index, known_size| pb::GetEntryRequest { shard, log_index, known_size };
    must_fail(c.get_entry(entry(0, 1, None)).await, MISSING, "not_found");
    must_fail(c.get_entry(entry(0, u64::MAX, None)).await, MISSING, "not_found");
    must_fail(c.get_entry(entry(7, 0, None)).await, MISSING, "not_found");
    must_fail(c.get_entry(entry(0, 0, Some(5))).await, OUT, "out_of_range");
    let checkpoint = pb::GetCheckpointRequest { shard: u32::MAX };
    must_fail(c.get_checkpoint(checkpoint).await, MISSING, "not_found");

    let consistency =
        |from_size, to_size| pb::GetConsistencyRequest { shard: 0, from_size, to_size };
    must_fail(c.get_consistency(consistency(2, Some(1))).await, BAD, "invalid_argument");
    must_fail(c.get_consistency(consistency(5, None)).await, OUT, "out_of_range");
    must_fail(c.get_consistency(consistency(1, Some(u64::MAX))).await, OUT, "out_of_range");
    let block = |height| pb::GetBlockRequest { shard: 0, height };
    must_fail(c.get_block(block(Some(0))).await, BAD, "invalid_argument");
    must_fail(c.get_block(block(Some(u64::MAX))).await, MISSING, "not_found");
    let watch = |shard, from_log_index| pb::WatchRequest { shard, from_log_index };
    must_fail(c.watch(watch(0, u64::MAX)).await, OUT, "out_of_range");
    must_fail(c.watch(watch(9, 0)).await, MISSING, "not_found");

    // Nothing changed, and the server still answers.
    assert_eq!(must_tree_size(c).await, 1);
    let bundle = c.get(get(b"k")).await.expect("get").into_inner();
    assert_eq!(bundle.record.expect("record").version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stop_below_the_message_limit() {
    let served = must_serve().await;
    let (mut client, policy) = (served.client.clone(), &served.policy);
    let value = vec![7u8; 1 << 20];
    for _ in 0..5 {
        must_append(&mut client, b"big", &value).await;
    }

    // Each page fits the client's default 4 MiB limit, so it holds at most two 1 MiB values;
    // following next_version still returns every version once.
    let mut versions = Vec::new();
    let mut from_version = 0;
    for _ in 0..10 {
        let req = pb::HistoryRequest {
            key: b"big".to_vec(),
            from_version,
            limit: 1000,
            ..Default::default()
        };
        let page = client.history(req).await.expect("history page").into_inner();
        assert!((1..=2).contains(&page.bundles.len()), "{} bundles", page.bundles.len());
        versions.extend(page.bundles.iter().map(|b| must_verify(policy, b, None).version));
        match page.next_version {
            Some(v) => from_version = v,
            None => break,
        }
    }
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    let page = client.scan(pb::ScanRequest::default()).await.expect("scan").into_inner();
    assert_eq!(must_verify(policy, &page.bundles[0], None).value, Some(value));
}

/// The next event of a Watch stream, within the deadline.
async fn must_next(stream: &mut tonic::Streaming<pb::WatchEvent>) -> pb::watch_event::Event {
    let next = tokio::time::timeout(DEADLINE, stream.next()).await.expect("an event in time");
    next.expect("the stream goes on").expect("not an error").event.expect("an event")
}

/// Reads events until a checkpoint of at least `size`, checking order and returning the log
/// indexes of the entries seen.
async fn must_follow(
    policy: &TrustPolicy,
    stream: &mut tonic::Streaming<pb::WatchEvent>,
    size: u64,
) -> Vec<u64> {
    let mut seen = Vec::new();
    loop {
        match must_next(stream).await {
            pb::watch_event::Event::Entry(e) => {
                let leaf = Leaf::decode(&e.leaf).expect("the leaf decodes");
                assert_eq!(leaf.log_index.0, e.log_index);
                seen.push(e.log_index);
            }
            pb::watch_event::Event::Checkpoint(c) => {
                let cp =
                    policy.verify(&must_checkpoint(&c.checkpoint)).expect("verifies").checkpoint;
                assert_eq!(cp.size.0, c.tree_size);
                assert!(seen.last().is_none_or(|&i| i < c.tree_size));
                if c.tree_size >= size {
                    return seen;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sends_old_and_new_entries_then_checkpoints() {
    let served = must_serve().await;
    let (mut client, policy) = (served.client.clone(), &served.policy);
    for i in 0..3u8 {
        must_insert(&mut client, &[b'a', i], b"v").await;
    }

    // Phase 1: from log index 1, the entries already there, then their checkpoint.
    let req = pb::WatchRequest { shard: 0, from_log_index: 1 };
    let mut stream = client.watch(req).await.expect("watch").into_inner();
    assert_eq!(must_follow(policy, &mut stream, 3).await, [1, 2]);

    // Phase 2: entries written after subscribing arrive in order, each once.
    let mut writer = client.clone();
    let writes = tokio::spawn(async move {
        for i in 0..300u16 {
            must_insert(&mut writer, format!("b{i}").as_bytes(), b"v").await;
        }
    });
    let seen = must_follow(policy, &mut stream, 303).await;
    writes.await.expect("the writer finishes");
    assert_eq!(seen, (3..303).collect::<Vec<_>>());

    // Phase 3: a watch from the tree size starts with the current checkpoint; a new client
    // from 0 reads across the entry bundle boundary at 256.
    let req = pb::WatchRequest { shard: 0, from_log_index: 303 };
    let mut at_end = client.watch(req).await.expect("watch").into_inner();
    match must_next(&mut at_end).await {
        pb::watch_event::Event::Checkpoint(c) => assert_eq!(c.tree_size, 303),
        other => panic!("expected a checkpoint, got {other:?}"),
    }
    let req = pb::WatchRequest { shard: 0, from_log_index: 0 };
    let mut from_start = client.watch(req).await.expect("watch").into_inner();
    assert_eq!(must_follow(policy, &mut from_start, 303).await, (0..303).collect::<Vec<_>>());

    // Phase 4: dropping the streams leaves the server answering.
    drop((stream, at_end, from_start));
    assert_eq!(must_tree_size(&mut client).await, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_when_merged_with_a_fallback_router() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    // Served as the REST layer serves it: merged into a router that has its own fallback.
    let served = must_serve_with(1, |grpc| {
        axum::Router::new()
            .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "rest") })
            .merge(grpc)
    })
    .await;

    // Phase 1: health is SERVING for the server and the Ledger, NOT_FOUND for others.
    let mut health = HealthClient::new(served.channel.clone());
    for service in ["", "blockdb.v1.Ledger"] {
        let req = HealthCheckRequest { service: service.into() };
        let status = health.check(req).await.expect("check").into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let req = HealthCheckRequest { service: "nope.Service".into() };
    assert_eq!(health.check(req).await.expect_err("unknown").code(), Code::NotFound);
    let req = HealthCheckRequest { service: String::new() };
    let mut watch = health.watch(req).await.expect("health watch").into_inner();
    let first = tokio::time::timeout(DEADLINE, watch.next()).await.expect("in time");
    assert_eq!(first.expect("a message").expect("ok").status, ServingStatus::Serving as i32);

    // Phase 2: reflection v1 and v1alpha list the services.
    let v1 = must_list_v1(served.channel.clone()).await;
    let v1alpha = must_list_v1alpha(served.channel.clone()).await;
    for services in [&v1, &v1alpha] {
        assert!(services.iter().any(|s| s == "blockdb.v1.Ledger"), "{services:?}");
        assert!(services.iter().any(|s| s == "grpc.health.v1.Health"), "{services:?}");
    }

    // Phase 3: the Ledger answers through the merged router.
    let mut client = served.client.clone();
    assert_eq!(must_tree_size(&mut client).await, 0);
}

/// `must_list_v1` and `must_list_v1alpha`: the services that reflection lists. The two
/// versions have the same messages in different modules.
macro_rules! must_list {
    ($name:ident, $version:ident) => {
        async fn $name(channel: Channel) -> Vec<String> {
            use tonic_reflection::pb::$version::ServerReflectionRequest;
            use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
            let list = Some(MessageRequest::ListServices(String::new()));
            let req = ServerReflectionRequest { host: String::new(), message_request: list };
            let mut client = ServerReflectionClient::new(channel);
            let answers = client.server_reflection_info(tokio_stream::iter([req])).await;
            let mut answers = answers.expect("reflection answers").into_inner();
            let answer = tokio::time::timeout(DEADLINE, answers.next()).await.expect("in time");
            match answer.expect("an answer").expect("ok").message_response {
                Some(MessageResponse::ListServicesResponse(l)) => {
                    l.service.into_iter().map(|s| s.name).collect()
                }
                other => panic!("expected a service list, got {other:?}"),
            }
        }
    };
}

must_list!(must_list_v1, v1);
must_list!(must_list_v1alpha, v1alpha);
