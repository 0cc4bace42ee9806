//! End to end: concurrent `insert` of one key — exactly one wins, the rest get 409
//! `already_exists`; concurrent compare-and-append — no two appends succeed on one version.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;

use common::Server;

#[test]
fn concurrent_inserts_of_one_key_have_one_winner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::must_start(dir.path(), &[]);
    for round in 0..5 {
        let key = format!("contested-{round}");
        let results = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..24u32 {
                let (server, results, key) = (&server, &results, &key);
                s.spawn(move || {
                    let (status, body) = server.insert(key.as_bytes(), &t.to_be_bytes());
                    results.lock().expect("lock").push((status, body, t));
                });
            }
        });
        let results = results.into_inner().expect("lock");
        let winners: Vec<_> = results.iter().filter(|(s, _, _)| *s == 201).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        for (status, body, _) in &results {
            if *status != 201 {
                assert_eq!(*status, 409, "{body}");
                assert_eq!(body["code"], "already_exists");
                assert_eq!(body["current_version"], 1);
            }
        }
        // The stored value is the winner's, at version 1, and there is no version 2.
        let winner = winners[0].2;
        let b = server.must_get_verified(key.as_bytes(), None);
        assert_eq!(b.record.version, 1);
        assert_eq!(b.record.value.as_deref(), Some(&winner.to_be_bytes()[..]));
    }
    server.must_stop();
}

#[test]
fn compare_and_append_never_lets_two_writers_take_one_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::must_start(dir.path(), &[]);
    let wins: Mutex<BTreeMap<u64, Vec<u32>>> = Mutex::new(BTreeMap::new());
    let conflicts = Mutex::new(0u32);
    std::thread::scope(|s| {
        for t in 0..12u32 {
            let (server, wins, conflicts) = (&server, &wins, &conflicts);
            s.spawn(move || {
                for _ in 0..15 {
                    let (_, latest) =
                        server.get(&format!("/v1/records?key={}", common::enc(b"counter")));
                    let current = latest["record"]["version"].as_u64().unwrap_or(0);
                    let (status, body) = server.append(b"counter", &t.to_be_bytes(), Some(current));
                    match status {
                        200 => {
                            assert_eq!(body["version"].as_u64(), Some(current + 1));
                            wins.lock().expect("lock").entry(current + 1).or_default().push(t);
                        }
                        409 => {
                            assert_eq!(body["code"], "version_mismatch", "{body}");
                            assert!(body["current_version"].as_u64() > Some(current));
                            *conflicts.lock().expect("lock") += 1;
                        }
                        other => panic!("append answered {other}: {body}"),
                    }
                }
            });
        }
    });
    let wins = wins.into_inner().expect("lock");
    for (version, writers) in &wins {
        assert_eq!(writers.len(), 1, "version {version} was taken by {writers:?}");
    }
    // Versions are 1..=n without a gap, and the record at each is its one winner's.
    let n = wins.len() as u64;
    assert_eq!(wins.keys().copied().collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>());
    for (version, writers) in &wins {
        let b = server.must_get_verified(b"counter", Some(*version));
        assert_eq!(b.record.value.as_deref(), Some(&writers[0].to_be_bytes()[..]));
    }
    println!("{n} versions won, {} conflicts", conflicts.into_inner().expect("lock"));
    assert!(n > 0);
    server.must_stop();
}
