//! Every client operation against a real node: writes, reads of every kind, entries,
//! checkpoints, consistency proofs, transactions (one-shot and interactive); and the trusted
//! state that moves forward and survives a restart of the client through its file store.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use blockdb_client::{Consistency, FileStore, TrustStore, TxnOp};
use blockdb_verifier::{ShardId, verify_receipt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_verifies() {
    let served = common::must_serve(2).await;
    let client = served.client().await;
    assert_eq!(client.shard_count(), 2);

    // Writes: receipts with a checkpoint signed by the node.
    let r = client.insert(b"alice", b"v1").await.expect("insert");
    assert_eq!(r.version, 1);
    let e = client.insert(b"alice", b"again").await.expect_err("conflict");
    assert_eq!(e.code(), Some("already_exists"));
    assert!(!e.is_verification());
    client.append(b"alice", b"v2", Some(1)).await.expect("append at 1");
    let e = client.append(b"alice", b"v3", Some(1)).await.expect_err("stale expected version");
    assert_eq!(e.code(), Some("version_mismatch"));
    for i in 0..20u32 {
        client.insert(format!("k{i:02}").as_bytes(), &i.to_be_bytes()).await.expect("insert");
    }

    // Reads, each verified; the trusted state follows.
    let read = client.get(b"alice", None, Consistency::Linearizable).await.expect("get");
    assert_eq!((read.record.version, read.record.value.as_deref()), (2, Some(&b"v2"[..])));
    let v1 = client.get(b"alice", Some(1), Consistency::Stale).await.expect("get v1");
    assert_eq!(v1.record.value.as_deref(), Some(&b"v1"[..]));
    let e = client.get(b"nobody", None, Consistency::Linearizable).await.expect_err("absent");
    assert_eq!(e.code(), Some("not_found"));
    let history = client.history(b"alice").await.expect("history");
    assert_eq!(history.iter().map(|r| r.record.version).collect::<Vec<_>>(), [1, 2]);

    let shard = client.shard_of(b"k00");
    let (page, next) = client.scan(shard, b"k", b"l", 3).await.expect("scan");
    assert_eq!(page.len(), 3);
    assert!(next.is_some());
    assert!(page.windows(2).all(|w| w[0].record.key < w[1].record.key));

    let entry = client.entry(read.shard, read.log_index.0).await.expect("entry");
    assert_eq!(blockdb_verifier::Leaf::decode(&entry.leaf).expect("leaf").key, b"alice");
    let cp = client.checkpoint(ShardId(0)).await.expect("checkpoint");
    let (proof, latest) = client.consistency(ShardId(0), 1, None).await.expect("consistency");
    assert_eq!(proof.to_size, latest.size);
    assert!(cp.size <= latest.size);
    let trusted = client.trusted().await;
    assert_eq!(trusted.checkpoints().count(), 2, "one per shard's log");
    served.stop().await;
}

/// The first key `prefix<n>` in `shard` of the client's shards.
fn key_in(client: &blockdb_client::Client, shard: u32, prefix: &str) -> Vec<u8> {
    (0..)
        .map(|n| format!("{prefix}{n}").into_bytes())
        .find(|k| client.shard_of(k) == ShardId(shard))
        .expect("some key hashes to every shard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_across_shards_verified_or_abort_and_write_nothing() {
    let served = common::must_serve(2).await;
    let client = served.client().await;
    let (a, b, c) = (key_in(&client, 0, "a"), key_in(&client, 1, "b"), key_in(&client, 1, "c"));
    client.insert(&a, b"a1").await.expect("insert");

    // Phase 1: across both shards. The read is proven by its record's bundle, the writes by the
    // receipt, which the trusted state has taken in for both shards.
    let ops = [
        TxnOp::read(a.clone()),
        TxnOp::append(a.clone(), "a2", Some(1)),
        TxnOp::read(b.clone()),
        TxnOp::insert(b.clone(), "b1"),
        TxnOp::check(c.clone(), 0),
    ];
    let done = client.transact(&ops).await.expect("the transaction commits");
    let [read_a, read_b] = &done.reads[..] else { panic!("two reads: {:?}", done.reads) };
    assert_eq!((&read_a.key, read_a.version, read_a.value.as_deref()), (&a, 1, Some(&b"a1"[..])));
    let proof = read_a.proof.as_ref().expect("a read that found a version is proven");
    assert_eq!((proof.record.version, proof.shard), (1, ShardId(0)));
    assert_eq!((&read_b.key, read_b.version, &read_b.value), (&b, 0, &None));
    assert!(read_b.proof.is_none(), "absence is not proven");
    let writes: Vec<(&[u8], ShardId, u64)> =
        done.writes.iter().map(|w| (&w.key[..], w.shard, w.version)).collect();
    assert_eq!(writes, [(&a[..], ShardId(0), 2), (&b[..], ShardId(1), 1)]);
    let receipt = done.receipt.as_ref().expect("a transaction that wrote has a receipt");
    assert_eq!(receipt.txn_id, done.txn_id);
    let verified = verify_receipt(receipt, &served.policy()).expect("it verifies offline too");
    let trusted = client.trusted().await;
    for (shard, cp) in &verified.checkpoints {
        let kept = trusted.checkpoints().find(|k| k.origin == cp.checkpoint.origin);
        assert!(kept.is_some_and(|k| k.size >= cp.checkpoint.size), "shard {}", shard.0);
    }
    let read = client.get(&b, None, Consistency::Linearizable).await.expect("get");
    assert_eq!((read.record.version, read.record.value.as_deref()), (1, Some(&b"b1"[..])));

    // Phase 2: a failed check aborts, in one shard and across two, and writes nothing.
    for ops in [
        vec![TxnOp::check(a.clone(), 1), TxnOp::append(a.clone(), "x", None)],
        vec![TxnOp::check(a.clone(), 1), TxnOp::insert(c.clone(), "x")],
    ] {
        let e = client.transact(&ops).await.expect_err("a failed check");
        assert_eq!(e.code(), Some("aborted"), "{e}");
        assert!(!e.is_verification() && !e.is_txn_conflict(), "{e}");
    }
    let e = client.get(&c, None, Consistency::Linearizable).await.expect_err("not written");
    assert_eq!(e.code(), Some("not_found"));
    let read = client.get(&a, None, Consistency::Linearizable).await.expect("get");
    assert_eq!(read.record.version, 2);

    // Phase 3: bad input is refused as such; a read-only transaction has no receipt.
    let e = client.transact(&[]).await.expect_err("no operation");
    assert_eq!(e.code(), Some("invalid_argument"));
    let twice = [TxnOp::insert(c.clone(), "1"), TxnOp::append(c.clone(), "2", None)];
    let e = client.transact(&twice).await.expect_err("a key written twice");
    assert_eq!(e.code(), Some("invalid_argument"));
    let reads = client.transact(&[TxnOp::read(a), TxnOp::read(b)]).await.expect("reads only");
    assert!(reads.receipt.is_none() && reads.writes.is_empty());
    assert!(reads.reads.iter().all(|r| r.proof.is_some()));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_transfer_across_shards_commits_verified() {
    let served = common::must_serve(2).await;
    let client = served.client().await;
    let (a, b) = (key_in(&client, 0, "a"), key_in(&client, 1, "b"));
    client.insert(&a, b"100").await.expect("insert a");
    client.insert(&b, b"0").await.expect("insert b");

    // Phase 1: read both balances, each proven by its record's bundle; move 30 from a to b.
    let mut t = client.begin().await.expect("begin");
    let read_a = t.read(&a).await.expect("read a");
    assert_eq!((read_a.version, read_a.value.as_deref()), (1, Some(&b"100"[..])));
    let proof = read_a.proof.as_ref().expect("a read that found a version is proven");
    assert_eq!((proof.record.version, proof.shard), (1, ShardId(0)));
    let read_b = t.read(&b).await.expect("read b");
    assert_eq!((read_b.version, read_b.value.as_deref()), (1, Some(&b"0"[..])));
    assert!(read_b.proof.is_some());
    t.append(&a, b"70", Some(read_a.version)).await.expect("debit a");
    t.append(&b, b"30", Some(read_b.version)).await.expect("credit b");
    let txn_id = t.txn_id();

    // Phase 2: the commit returns the transaction verified: its writes proven by the receipt,
    // which verifies offline too and which the trusted state has taken in, and its reads.
    let done = t.commit().await.expect("the transfer commits");
    assert_eq!(done.txn_id, txn_id);
    let reads: Vec<(&[u8], u64)> = done.reads.iter().map(|r| (&r.key[..], r.version)).collect();
    assert_eq!(reads, [(&a[..], 1), (&b[..], 1)]);
    let writes: Vec<(&[u8], ShardId, u64)> =
        done.writes.iter().map(|w| (&w.key[..], w.shard, w.version)).collect();
    assert_eq!(writes, [(&a[..], ShardId(0), 2), (&b[..], ShardId(1), 2)]);
    let receipt = done.receipt.as_ref().expect("a transaction that wrote has a receipt");
    assert_eq!(receipt.txn_id, txn_id);
    let verified = verify_receipt(receipt, &served.policy()).expect("it verifies offline too");
    assert_eq!(verified.decision.participants.len(), 2);
    let trusted = client.trusted().await;
    for (shard, cp) in &verified.checkpoints {
        let kept = trusted.checkpoints().find(|k| k.origin == cp.checkpoint.origin);
        assert!(kept.is_some_and(|k| k.size >= cp.checkpoint.size), "shard {}", shard.0);
    }
    for (key, value) in [(&a, &b"70"[..]), (&b, b"30")] {
        let read = client.get(key, None, Consistency::Linearizable).await.expect("get");
        assert_eq!((read.record.version, read.record.value.as_deref()), (2, Some(value)));
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_interactive_transaction_writes_nothing_and_frees_its_keys() {
    let served = common::must_serve(2).await;
    let client = served.client().await;
    let (a, b) = (key_in(&client, 0, "a"), key_in(&client, 1, "b"));
    client.insert(&a, b"a1").await.expect("insert");

    // Phase 1: a transaction locks both keys and aborts; nothing is written.
    let mut t = client.begin().await.expect("begin");
    t.append(&a, b"never", Some(1)).await.expect("append a");
    t.insert(&b, b"never").await.expect("insert b");
    t.abort().await.expect("abort");
    let read = client.get(&a, None, Consistency::Linearizable).await.expect("get a");
    assert_eq!(read.record.version, 1);
    let e = client.get(&b, None, Consistency::Linearizable).await.expect_err("b absent");
    assert_eq!(e.code(), Some("not_found"));

    // Phase 2: its locks are gone: another transaction takes both keys at once (a lock left
    // held would make it wait until the first one's deadline) and commits.
    let started = Instant::now();
    let mut t = client.begin().await.expect("begin");
    t.check(&a, 1).await.expect("check a");
    t.insert(&b, b"b1").await.expect("insert b");
    let done = t.commit().await.expect("commit");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(done.writes.len(), 1);
    assert!(done.reads.is_empty());
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_transactions_locking_two_keys_in_opposite_orders_one_is_a_deadlock_victim() {
    let served = common::must_serve(2).await;
    let client = served.client().await;
    let (x, y) = (key_in(&client, 0, "x"), key_in(&client, 1, "y"));

    // Phase 1: t1 holds x and t2 holds y; then t1 asks for y and, once it waits, t2 for x.
    let mut t1 = client.begin().await.expect("begin t1");
    let mut t2 = client.begin().await.expect("begin t2");
    t1.append(&x, b"t1", None).await.expect("t1 takes x");
    t2.append(&y, b"t2", None).await.expect("t2 takes y");
    let started = Instant::now();
    let (r1, r2) = tokio::join!(t1.append(&y, b"t1", None), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        t2.append(&x, b"t2", None).await
    });
    let took = started.elapsed();

    // Phase 2: exactly one is the victim, told `deadlock` at once (not by a lock timeout), a
    // conflict worth running again; the other gets its lock and commits.
    let (winner, victim, e) = match (r1, r2) {
        (Ok(()), Err(e)) => (t1, t2, e),
        (Err(e), Ok(())) => (t2, t1, e),
        (r1, r2) => panic!("expected one deadlock victim: {r1:?} {r2:?}"),
    };
    assert_eq!(e.code(), Some("deadlock"), "{e}");
    assert!(e.is_txn_conflict() && !e.is_verification(), "{e}");
    assert!(took < Duration::from_secs(5), "found in {took:?}: not by a timeout");
    let done = winner.commit().await.expect("the other one commits");
    assert_eq!(done.writes.len(), 2);

    // Phase 3: the node aborted the victim: its commit finds no transaction, and only the
    // winner wrote.
    let victim_id = victim.txn_id();
    let e = victim.commit().await.expect_err("the victim was aborted");
    assert_eq!(e.code(), Some("not_found"), "{e}");
    for key in [&x, &y] {
        let read = client.get(key, None, Consistency::Linearizable).await.expect("get");
        let entry = client.entry(read.shard, read.log_index.0).await.expect("entry");
        let leaf = blockdb_verifier::Leaf::decode(&entry.leaf).expect("leaf");
        assert_eq!((read.record.version, leaf.txn_id), (1, done.txn_id));
        assert_ne!(leaf.txn_id, victim_id);
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trusted_state_moves_forward_and_survives_a_restart() {
    let served = common::must_serve(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(FileStore::new(dir.path().join("trusted.json")));
    let client = served.client_with(store.clone()).await;
    client.insert(b"a", b"1").await.expect("insert");
    let first = client.get(b"a", None, Consistency::Linearizable).await.expect("get").checkpoint;
    for i in 0..10u32 {
        client.insert(format!("b{i}").as_bytes(), b"x").await.expect("insert");
    }
    // The second read's answer carries a proof from the trusted size; the state moves.
    let second = client.get(b"b9", None, Consistency::Linearizable).await.expect("get").checkpoint;
    assert!(second.size > first.size);
    assert_eq!(store.load().expect("load"), vec![second.clone()]);

    // A new client with the same store starts from there and proves the way forward.
    drop(client);
    let client = served.client_with(store.clone()).await;
    assert_eq!(client.trusted().await.get(&second.origin), Some(&second));
    client.insert(b"c", b"1").await.expect("insert");
    let third = client.get(b"c", None, Consistency::Linearizable).await.expect("get").checkpoint;
    assert!(third.size > second.size);
    assert_eq!(store.load().expect("load"), vec![third]);
    served.stop().await;
}

/// One client shared by many tasks: a read answered at a tree smaller than one a concurrent
/// call has trusted since (but not smaller than the trusted one when it was sent) is no rollback;
/// the client proves it a prefix instead, and every call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_and_writes_of_one_client_all_verify() {
    let served = common::must_serve(1).await;
    let client = Arc::new(served.client().await);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16u32 {
        let client = Arc::clone(&client);
        tasks.spawn(async move {
            for i in 0..25u32 {
                let key = format!("t{t}/{i}");
                client.insert(key.as_bytes(), b"v").await.map_err(|e| format!("insert: {e}"))?;
                let read = client
                    .get(key.as_bytes(), None, Consistency::Linearizable)
                    .await
                    .map_err(|e| format!("get {key}: {e}"))?;
                assert_eq!(read.record.version, 1);
            }
            Ok::<(), String>(())
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.expect("task") {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{} tasks failed, first: {}", failures.len(), failures[0]);
    let trusted = client.trusted().await;
    let size = trusted.checkpoints().next().expect("a trusted checkpoint").size.0;
    assert!(size >= 400, "the trusted tree has all 400 inserts: {size}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_log_streams_and_verifies() {
    let served = common::must_serve(1).await;
    let client = served.client().await;
    for i in 0..600u32 {
        client
            .append(format!("k{}", i % 7).as_bytes(), &i.to_be_bytes(), None)
            .await
            .expect("append");
    }
    let mut seen = Vec::new();
    let (leaves, signed) =
        client.fetch_log(ShardId(0), &mut |n, total| seen.push((n, total))).await.expect("fetch");
    assert_eq!(leaves.len(), 600);
    assert_eq!(seen, [(0, 600), (600, 600)], "the total first, then every 1,000 and the end");
    assert_eq!(signed.checkpoint().size.0, 600);
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(blockdb_verifier::Leaf::decode(leaf).expect("leaf").log_index.0, i as u64);
    }
    served.stop().await;
}

/// The log is fetched up to the checkpoint fetched first, whose tree size is the progress
/// total: entries that join the log after it, while the leaves stream, are left out, and the
/// stream is cancelled once the checkpoint's leaves are in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_fetched_up_to_the_checkpoint_fetched_first() {
    let served = common::must_serve(1).await;
    let client = served.client().await;
    let writer = served.client().await;
    for i in 0..50u32 {
        client.append(b"before", &i.to_be_bytes(), None).await.expect("append");
    }
    let runtime = tokio::runtime::Handle::current();
    let mut seen = Vec::new();
    let (leaves, signed) = client
        .fetch_log(ShardId(0), &mut |n, total| {
            if seen.is_empty() {
                // Called once the checkpoint is known, before the stream starts: the node's log
                // grows past the export's checkpoint, and the stream sends those entries too.
                tokio::task::block_in_place(|| {
                    runtime.block_on(async {
                        for i in 0..5u32 {
                            let v = i.to_be_bytes();
                            writer.append(b"after", &v, None).await.expect("append");
                        }
                    });
                });
            }
            seen.push((n, total));
        })
        .await
        .expect("fetch");
    assert_eq!((leaves.len(), signed.checkpoint().size.0), (50, 50));
    assert_eq!(seen, [(0, 50), (50, 50)]);
    assert_eq!(client.checkpoint(ShardId(0)).await.expect("checkpoint").size.0, 55);

    // An empty log: its checkpoint of size 0, no stream.
    let empty = common::must_serve(1).await;
    let mut seen = Vec::new();
    let (leaves, signed) = empty
        .client()
        .await
        .fetch_log(ShardId(0), &mut |n, total| seen.push((n, total)))
        .await
        .expect("fetch");
    assert_eq!((leaves.len(), signed.checkpoint().size.0), (0, 0));
    assert_eq!(seen, [(0, 0), (0, 0)]);
    empty.stop().await;
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_new_entries_verified() {
    let served = common::must_serve(1).await;
    let client = Arc::new(served.client().await);
    for i in 0..3u32 {
        client.insert(format!("old{i}").as_bytes(), b"v").await.expect("insert");
    }
    // Entries written while the watcher follows arrive too, in order, each proven.
    let writer = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            for i in 0..5u32 {
                client.insert(format!("new{i}").as_bytes(), b"v").await.expect("insert");
            }
        })
    };
    let mut seen = Vec::new();
    client
        .watch(ShardId(0), 1, &mut |e| {
            seen.push((e.log_index.0, blockdb_verifier::Leaf::decode(&e.leaf).expect("leaf").key));
            seen.len() < 7
        })
        .await
        .expect("watch");
    writer.await.expect("writer");
    assert_eq!(seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (1..8).collect::<Vec<_>>());
    assert_eq!(seen[0].1, b"old1");
    assert!(seen[6].1.starts_with(b"new"));
    served.stop().await;
}
