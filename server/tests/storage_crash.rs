//! Crash test: a child process writes batches from several threads and reports each batch it
//! had acknowledged; the parent kills it with SIGKILL at a random moment, reopens the store, and
//! checks that every acknowledged batch is there, whole, and that no batch is there in part. Many
//! rounds, on the same store, so each recovery starts from the previous one's result.
//!
//! `BLOCKDB_CRASH_ROUNDS` sets the number of rounds (default 12, a short fixed-seed run for CI);
//! `BLOCKDB_CRASH_SEED` the seed. A failure prints both.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blockdb_server::storage::{Engine, Options, WriteBatch};
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "BLOCKDB_CRASH_CHILD_DIR";
const THREADS: u64 = 4;

fn options() -> Options {
    Options { memtable_bytes: 64 * 1024, l0_compaction_trigger: 2, ..Options::small_for_tests() }
}

/// Batch `id` writes `ops(id)` keys `b<id>/<j>` and a marker `m<id>`.
fn ops(id: u64) -> u64 {
    1 + id % 9
}

fn batch(id: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    for j in 0..ops(id) {
        b.put(
            format!("b{id:08}/{j}"),
            format!("value of {id}/{j} {}", "v".repeat((id % 50) as usize)),
        );
    }
    b.put(format!("m{id:08}"), id.to_le_bytes().to_vec());
    b
}

/// The child: writes batches forever, printing `ack <id>` after each write returns.
fn child(dir: &Path, first_id: u64) {
    let engine = Arc::new(Engine::open(dir, options()).expect("child opens the store"));
    println!("ready");
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut id = first_id + t;
                loop {
                    engine.write(batch(id)).expect("child write");
                    println!("ack {id}");
                    id += THREADS;
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// The parent's check: acknowledged batches whole, every batch whole or absent.
fn check(dir: &Path, acked: &BTreeSet<u64>) -> BTreeSet<u64> {
    let engine = Engine::open(dir, options()).expect("recovery opens the store");
    let mut present = BTreeSet::new();
    for kv in engine.scan_prefix(b"m") {
        let (k, v) = kv.expect("scan");
        let id: u64 = std::str::from_utf8(&k[1..]).expect("utf8").parse().expect("id");
        assert_eq!(v, id.to_le_bytes(), "marker of batch {id}");
        present.insert(id);
    }
    for &id in acked {
        assert!(present.contains(&id), "acknowledged batch {id} is missing after recovery");
    }
    // Every batch's keys are present exactly when its marker is.
    let mut keys_of = std::collections::BTreeMap::<u64, u64>::new();
    for kv in engine.scan_prefix(b"b") {
        let (k, v) = kv.expect("scan");
        let k = std::str::from_utf8(&k).expect("utf8");
        let (id, j) = k[1..].split_once('/').expect("b<id>/<j>");
        let (id, j): (u64, u64) = (id.parse().expect("id"), j.parse().expect("j"));
        assert!(v.starts_with(format!("value of {id}/{j} ").as_bytes()), "value of {k}");
        *keys_of.entry(id).or_default() += 1;
    }
    for (&id, &n) in &keys_of {
        assert!(present.contains(&id), "batch {id} is partly present: keys without its marker");
        assert_eq!(n, ops(id), "batch {id} is partly present: {n} of {} keys", ops(id));
    }
    for &id in &present {
        assert!(keys_of.contains_key(&id), "batch {id} has its marker but no keys");
    }
    present
}

#[test]
fn acknowledged_batches_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let first: u64 =
            std::env::var("BLOCKDB_CRASH_FIRST_ID").expect("first id").parse().expect("n");
        child(Path::new(&dir), first);
        return;
    }
    let rounds: u32 =
        std::env::var("BLOCKDB_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let seed: u64 =
        std::env::var("BLOCKDB_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed);
    eprintln!(
        "crash test: {rounds} rounds, seed {seed} (BLOCKDB_CRASH_ROUNDS, BLOCKDB_CRASH_SEED)"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut all_acked = BTreeSet::new();
    let mut next_id = 0u64;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "acknowledged_batches_survive_sigkill",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("BLOCKDB_CRASH_FIRST_ID", next_id.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let kill_after = Duration::from_millis(rng.random_range(20..400));
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the child to have opened the store (recovery done), then let it write.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let line =
                rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_else(
                    |e| panic!("round {round} (seed {seed}): child never got ready: {e}"),
                );
            // libtest prints "test <name> ... " before the output on the same line.
            if line.ends_with("ready") {
                break;
            }
        }
        std::thread::sleep(kill_after);
        child.kill().expect("SIGKILL the child");
        let _ = child.wait();
        let _ = reader.join();
        let mut acked_now = 0;
        for line in rx.try_iter() {
            if let Some(id) = line.strip_prefix("ack ") {
                all_acked.insert(id.parse::<u64>().expect("id"));
                acked_now += 1;
            }
        }
        let present = check(dir.path(), &all_acked);
        eprintln!(
            "round {round}: killed after {kill_after:?}, {acked_now} acks, {} batches present",
            present.len()
        );
        next_id = present.iter().chain(&all_acked).max().map_or(0, |m| m + 1) + THREADS;
    }
    assert!(!all_acked.is_empty(), "the child acknowledged nothing: the test checked nothing");
}
