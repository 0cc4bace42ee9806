//! A shard's state on the storage engine: applying commands, conflicts, replay and restart, and
//! every read's proof bundle checked with the verifier.

use blockdb_server::ledger::{Command, NodeKey, Outcome, Shard, ShardError};
use blockdb_server::storage::{Engine, Options};
use blockdb_verifier::{
    ConsistencyStatus, LogIndex, ShardId, TreeSize, TrustPolicy, verify_bundle,
};
use sha2::{Digest, Sha256};

const CLUSTER: &str = "blockdb.test/c1";

fn node_key(dir: &std::path::Path) -> NodeKey {
    NodeKey::load_or_create(&dir.join("node.key"), "blockdb.test/n1", || {
        Sha256::digest(b"shard test key").into()
    })
    .expect("node key")
}

fn append(key: &str, value: &str, expected: Option<u64>) -> Command {
    Command::Append { key: key.into(), value: value.into(), expected_version: expected }
}

#[test]
fn every_read_bundle_verifies_and_known_size_gives_a_consistency_proof() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path().join("data"), Options::default()).expect("open");
    let key = node_key(dir.path());
    let policy = TrustPolicy::new(vec![key.verifier_key().clone()], 1).expect("policy");
    let mut shard = Shard::open(&engine, CLUSTER, ShardId(0)).expect("shard");

    // Phase 1: entries of several commands, including a conflict.
    let out = shard
        .apply(
            &engine,
            1,
            1_000,
            &[
                Command::Insert { key: b"alice".to_vec(), value: b"v1".to_vec() },
                append("bob", "b1", None),
                Command::Insert { key: b"alice".to_vec(), value: b"again".to_vec() },
            ],
        )
        .expect("apply 1");
    assert_eq!(out[0], Outcome::Committed { version: 1, log_index: LogIndex(0) });
    assert_eq!(out[1], Outcome::Committed { version: 1, log_index: LogIndex(1) });
    assert_eq!(out[2], Outcome::Conflict { current: 1 });
    let first = shard.checkpoint();
    let out = shard
        .apply(
            &engine,
            2,
            2_000,
            &[
                append("alice", "v2", Some(1)),
                append("alice", "v3", Some(1)),
                append("alice", "v3", Some(2)),
            ],
        )
        .expect("apply 2");
    assert_eq!(out[0], Outcome::Committed { version: 2, log_index: LogIndex(2) });
    assert_eq!(out[1], Outcome::Conflict { current: 2 });
    assert_eq!(out[2], Outcome::Committed { version: 3, log_index: LogIndex(3) });

    // Phase 2: bundles of every version verify, with and without a trusted checkpoint.
    for (version, value) in [(1, "v1"), (2, "v2"), (3, "v3")] {
        let b = shard.bundle(&engine, b"alice", Some(version), &key, None).expect("bundle");
        let v = verify_bundle(&b, &policy, None).expect("verifies");
        assert_eq!(v.record.value.as_deref(), Some(value.as_bytes()));
        let b = shard.bundle(&engine, b"alice", Some(version), &key, Some(first.size)).expect("b");
        let v = verify_bundle(&b, &policy, Some(&first)).expect("verifies against the trusted");
        assert_eq!(v.consistency, ConsistencyStatus::Proven { from: first.size });
    }
    let latest = shard.bundle(&engine, b"alice", None, &key, None).expect("latest");
    assert_eq!(latest.record.version, 3);
    assert!(matches!(
        shard.bundle(&engine, b"nobody", None, &key, None),
        Err(ShardError::NotFound)
    ));
    assert!(matches!(
        shard.bundle(&engine, b"alice", Some(4), &key, None),
        Err(ShardError::NotFound)
    ));
    assert!(shard.bundle(&engine, b"alice", None, &key, Some(TreeSize(99))).is_err());
}

#[test]
fn restart_keeps_records_tree_and_applied_index_and_replay_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let key = node_key(dir.path());
    let (root, size) = {
        let engine = Engine::open(&data, Options::default()).expect("open");
        let mut shard = Shard::open(&engine, CLUSTER, ShardId(2)).expect("shard");
        for entry in 1..=300u64 {
            let cmds: Vec<Command> = (0..7)
                .map(|i| {
                    append(&format!("k{}", (entry * 7 + i) % 50), &format!("{entry}/{i}"), None)
                })
                .collect();
            shard.apply(&engine, entry, entry * 10, &cmds).expect("apply");
        }
        let c = shard.checkpoint();
        (c.root, c.size)
    };
    assert_eq!(size, TreeSize(2100));
    let engine = Engine::open(&data, Options::default()).expect("reopen");
    let mut shard = Shard::open(&engine, CLUSTER, ShardId(2)).expect("reopen shard");
    assert_eq!(shard.applied_index(), 300);
    assert_eq!(shard.checkpoint().root, root);
    assert_eq!(shard.root_at(&engine, TreeSize(700)).expect("old root").0.len(), 32);
    // Replaying an applied entry changes nothing.
    let out = shard.apply(&engine, 300, 3000, &[append("k1", "replayed", None)]).expect("replay");
    assert!(out.is_empty());
    assert_eq!(shard.checkpoint().size, size);
    // Every key's latest record still proves.
    let policy = TrustPolicy::new(vec![key.verifier_key().clone()], 1).expect("policy");
    for k in 0..50 {
        let b =
            shard.bundle(&engine, format!("k{k}").as_bytes(), None, &key, None).expect("bundle");
        verify_bundle(&b, &policy, None).expect("verifies after restart");
        assert_eq!(
            b.record.version,
            shard.latest_version(&engine, format!("k{k}").as_bytes()).expect("v")
        );
    }
}

#[test]
fn several_entries_apply_in_one_write_as_one_block_each() {
    use blockdb_server::ledger::shard::EntryInput;
    use blockdb_server::storage::WriteBatch;
    use blockdb_verifier::block::verify_chain;

    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path().join("data"), Options::default()).expect("open");
    let key = node_key(dir.path());
    let mut shard = Shard::open(&engine, CLUSTER, ShardId(3)).expect("shard");
    let first = [append("k", "1", Some(0)), append("k", "2", Some(1))];
    let second = [append("k", "3", Some(1)), append("k", "3", Some(2))];
    let empty: [Command; 0] = [];
    let entries = [
        EntryInput { raft_index: 0, commit_time_ms: 10, commands: &first },
        EntryInput { raft_index: 1, commit_time_ms: 11, commands: &empty },
        EntryInput { raft_index: 2, commit_time_ms: 12, commands: &second },
    ];
    let out = shard.apply_entries(&engine, &entries, WriteBatch::new(), true).expect("apply");
    // Versions seen across entries of one write: the first append of entry 3 conflicts with
    // the version entry 1 wrote, the second commits.
    assert_eq!(out[0][1], Outcome::Committed { version: 2, log_index: LogIndex(1) });
    assert!(out[1].is_empty());
    assert_eq!(out[2][0], Outcome::Conflict { current: 2 });
    assert_eq!(out[2][1], Outcome::Committed { version: 3, log_index: LogIndex(2) });
    assert_eq!(shard.applied_index(), 2);

    // Two blocks (the empty entry makes none), chained, each at its entry's tree.
    let view = shard.view(&engine, &key);
    let blocks: Vec<_> =
        (1..=2).map(|h| view.block(&engine, Some(h)).expect("read").expect("block")).collect();
    assert_eq!(view.block(&engine, Some(3)).expect("read"), None);
    verify_chain(None, &blocks).expect("chain");
    assert_eq!((blocks[0].tree_size, blocks[1].tree_size), (TreeSize(2), TreeSize(3)));
    assert_eq!(blocks[1].commit_time_ms, 12);

    // The same entries again (a replay after a crash) change nothing.
    let again = shard.apply_entries(&engine, &entries, WriteBatch::new(), true).expect("replay");
    assert!(again.iter().all(Vec::is_empty));
    let reopened = Shard::open(&engine, CLUSTER, ShardId(3)).expect("reopen");
    assert_eq!(reopened.checkpoint(), shard.checkpoint());
    assert_eq!(reopened.applied_index(), 2);
}
