//! End to end: concurrent `insert` of one key — exactly one wins, the rest get 409
//! `already_exists`; concurrent compare-and-append — no two appends succeed on one version;
//! concurrent linearizable reads share read barriers and miss no acknowledged write.

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

/// Linearizable reads that arrive together share read barrier rounds (one heartbeat round and
/// apply wait answers many), and each still sees every write acknowledged before it.
#[test]
fn concurrent_linearizable_reads_share_barriers_and_see_every_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::must_start(dir.path(), &[]);
    let counts = |server: &Server| {
        let (code, text) = server.get_bytes("/metrics");
        assert_eq!(code, 200);
        let text = String::from_utf8(text).expect("utf-8");
        let value = |what: &str| {
            let series = format!("blockdb_raft{{shard=\"0\",what=\"{what}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&series))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        };
        (value("read_barrier_rounds"), value("read_barrier_reads"))
    };
    let before = counts(&server);

    // Each thread appends to its own key and reads it back: the read sees the append.
    std::thread::scope(|s| {
        for t in 0..16u32 {
            let server = &server;
            s.spawn(move || {
                let key = format!("reader-{t}");
                for v in 1..=20u64 {
                    let (code, body) = server.append(key.as_bytes(), b"x", Some(v - 1));
                    assert_eq!(code, 200, "{body}");
                    let (code, body) =
                        server.get(&format!("/v1/records?key={}", common::enc(key.as_bytes())));
                    assert_eq!(code, 200, "{body}");
                    assert_eq!(body["record"]["version"].as_u64(), Some(v), "{key}: {body}");
                }
            });
        }
    });
    // Reads alone, 32 at a time.
    std::thread::scope(|s| {
        for t in 0..32u32 {
            let server = &server;
            s.spawn(move || {
                let key = format!("reader-{}", t % 16);
                for _ in 0..40 {
                    let (code, body) =
                        server.get(&format!("/v1/records?key={}", common::enc(key.as_bytes())));
                    assert_eq!(code, 200, "{body}");
                    assert_eq!(body["record"]["version"].as_u64(), Some(20), "{key}: {body}");
                }
            });
        }
    });
    let after = counts(&server);
    let (rounds, reads) = (after.0 - before.0, after.1 - before.1);
    assert!(reads >= 16 * 20 + 32 * 40, "every read took a barrier: {reads}");
    assert!(
        rounds < reads,
        "reads that arrived together shared rounds: {rounds} rounds, {reads} reads"
    );
    println!("{reads} linearizable reads in {rounds} read barrier rounds");
    server.must_stop();
}
