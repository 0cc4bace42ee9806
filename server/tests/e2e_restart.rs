//! End to end: a node keeps every acknowledged record, its tree size and its root across a
//! clean restart (SIGTERM) and across SIGKILL under write load, and its checkpoints after the
//! restart are consistent with those it signed before.

mod common;

use std::sync::Mutex;

use blockdb_verifier::{Checkpoint, verify_bundle};
use common::Server;

fn seed() -> u64 {
    std::env::var("BLOCKDB_E2E_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7)
}

#[test]
fn a_clean_restart_keeps_records_size_and_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::must_start(dir.path(), &[]);
    for i in 0..50u32 {
        assert_eq!(server.insert(format!("k{i}").as_bytes(), &i.to_le_bytes()).0, 201);
    }
    for i in 0..10u32 {
        assert_eq!(server.append(b"k0", &i.to_le_bytes(), None).0, 200);
    }
    let before = server.checkpoint(0);
    let key = server.verifier_key.clone();
    server.must_stop();

    let server = Server::must_start(dir.path(), &[]);
    assert_eq!(server.verifier_key, key, "the node keeps its key");
    assert_eq!(server.checkpoint(0), before, "same tree size and root");
    for i in 0..50u32 {
        let b = server.must_get_verified(format!("k{i}").as_bytes(), Some(1));
        assert_eq!(b.record.value.as_deref(), Some(&i.to_le_bytes()[..]));
    }
    assert_eq!(server.must_get_verified(b"k0", None).record.version, 11);
    // The log goes on from where it was.
    let (s, body) = server.insert(b"after", b"restart");
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["log_index"].as_u64(), Some(before.0));
    server.must_stop();
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rounds =
        std::env::var("BLOCKDB_E2E_KILL_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let seed = seed();
    println!("seed {seed}, {rounds} rounds (BLOCKDB_E2E_SEED, BLOCKDB_E2E_KILL_ROUNDS)");
    let acked: Mutex<Vec<(String, u64, Vec<u8>)>> = Mutex::new(Vec::new());
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    let mut key = None;
    for round in 0..rounds {
        let server = Server::must_start(dir.path(), &[]);
        if let Some(k) = &key {
            assert_eq!(&server.verifier_key, k);
        }
        key = Some(server.verifier_key.clone());
        // Every record acknowledged before any kill is there, with its value, proven.
        for (k, version, value) in acked.lock().expect("lock").iter() {
            let b = server.must_get_verified(k.as_bytes(), Some(*version));
            assert_eq!(b.record.value.as_ref(), Some(value), "{k} v{version}");
        }
        // Every checkpoint seen before is a prefix of today's tree.
        for old in &checkpoints {
            let path = format!(
                "/v1/records?key={}&known_size={}",
                common::enc(acked.lock().expect("lock")[0].0.as_bytes()),
                old.size.0
            );
            let (s, body) = server.get(&path);
            assert_eq!(s, 200, "{body}");
            let b = blockdb_verifier::ProofBundle::from_json(body.to_string().as_bytes())
                .expect("bundle");
            verify_bundle(&b, &server.policy(), Some(old))
                .expect("consistent with a checkpoint from before the kill");
        }
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let (server, acked) = (&server, &acked);
                s.spawn(move || {
                    for i in 0u64.. {
                        let k = format!("r{round}-t{t}-{}", i % 5);
                        let value = format!("{seed}-{round}-{t}-{i}").into_bytes();
                        match server.try_append(k.as_bytes(), &value) {
                            Some((200, body)) => {
                                let v = body["version"].as_u64().expect("version");
                                acked.lock().expect("lock").push((k, v, value));
                            }
                            Some((status, body)) => panic!("append answered {status}: {body}"),
                            // Killed: this write's outcome is unknown, and it was never acked.
                            None => return,
                        }
                    }
                });
            }
            // Kill once enough writes are acknowledged, while the writers keep writing.
            let target = acked.lock().expect("lock").len() + 150 + (seed as usize % 50);
            while acked.lock().expect("lock").len() < target {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            let first = acked.lock().expect("lock")[0].0.clone();
            let b = server.must_get_verified(first.as_bytes(), None);
            checkpoints.push(b.checkpoint.checkpoint().clone());
            server.kill_now();
        });
        drop(server);
    }
    let server = Server::must_start(dir.path(), &[]);
    let all = acked.lock().expect("lock");
    for (k, version, value) in all.iter() {
        let b = server.must_get_verified(k.as_bytes(), Some(*version));
        assert_eq!(b.record.value.as_ref(), Some(value), "{k} v{version}");
    }
    let (size, _) = server.checkpoint(0);
    assert!(size >= all.len() as u64, "tree size {size} < {} acknowledged", all.len());
    println!("{} acknowledged records survived {rounds} SIGKILLs; tree size {size}", all.len());
    server.must_stop();
}

#[test]
fn a_restart_keeps_its_shards_and_refuses_another_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::must_start(dir.path(), &["--shards", "3"]);
    let (s, node) = server.get("/v1/node");
    assert_eq!(s, 200);
    assert_eq!(node["shards"], 3);
    for i in 0..30u32 {
        assert_eq!(server.insert(format!("s{i}").as_bytes(), b"v").0, 201);
    }
    let sizes: Vec<_> = (0..3).map(|s| server.checkpoint(s)).collect();
    assert!(sizes.iter().all(|(n, _)| *n > 0), "keys spread over every shard: {sizes:?}");
    server.must_stop();

    let err = common::must_fail_to_start(dir.path(), &["--shards", "2"]);
    assert!(err.contains("holds 3 shards"), "{err}");
    let server = Server::must_start(dir.path(), &[]);
    assert_eq!((0..3).map(|s| server.checkpoint(s)).collect::<Vec<_>>(), sizes);
    for i in 0..30u32 {
        server.must_get_verified(format!("s{i}").as_bytes(), None);
    }
    server.must_stop();
}
