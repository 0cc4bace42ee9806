//! Checkpoints and readers across compactions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use blockdb_server::storage::{Engine, Options, WriteBatch};

fn options() -> Options {
    Options { l0_compaction_trigger: 2, ..Options::small_for_tests() }
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("{round}:{i}:{}", "v".repeat((i % 7) as usize * 30)).into_bytes()
}

#[test]
fn a_checkpoint_is_a_consistent_store_of_its_own_while_writes_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(Engine::open(dir.path().join("store"), options()).expect("open"));
    let mut model = BTreeMap::new();
    for round in 0..5u32 {
        let mut b = WriteBatch::new();
        for i in 0..200u32 {
            b.put(format!("k{i:04}"), value(i, round));
            model.insert(format!("k{i:04}").into_bytes(), value(i, round));
        }
        engine.write(b).expect("write");
    }

    // Phase 1: a writer keeps writing a second key space while the checkpoint is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (engine, stop) = (engine.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mut b = WriteBatch::new();
                b.put(format!("w{n:06}"), b"during".to_vec())
                    .put(format!("x{n:06}"), b"pair".to_vec());
                engine.write(b).expect("concurrent write");
                n += 1;
            }
            n
        })
    };
    let copy = dir.path().join("copy");
    engine.checkpoint(&copy).expect("checkpoint");
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer");
    assert!(written > 0);

    // Phase 2: the copy opens on its own and holds every write made before the checkpoint, and
    // of the concurrent batches, each whole or not at all.
    let c = Engine::open(&copy, options()).expect("the checkpoint opens");
    for (k, v) in &model {
        assert_eq!(c.get(k).expect("get").as_ref(), Some(v), "key {}", String::from_utf8_lossy(k));
    }
    let w: Vec<_> = c.scan_prefix(b"w").map(|r| r.expect("scan").0).collect();
    let x: Vec<_> = c.scan_prefix(b"x").map(|r| r.expect("scan").0).collect();
    assert_eq!(w.len(), x.len(), "concurrent batches are whole in the checkpoint");
    for (a, b) in w.iter().zip(&x) {
        assert_eq!(a[1..], b[1..]);
    }

    // Phase 3: the two stores are independent.
    c.put(b"only-in-copy", b"1").expect("put");
    assert_eq!(engine.get(b"only-in-copy").expect("get"), None);
    engine.put(b"only-in-original", b"1").expect("put");
    assert_eq!(c.get(b"only-in-original").expect("get"), None);
    assert!(engine.checkpoint(&copy).is_err(), "an existing directory is refused");
}

#[test]
fn a_scan_started_before_compactions_reads_its_snapshot_to_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), options()).expect("open");
    let mut want = Vec::new();
    for i in 0..2000u32 {
        engine.put(format!("k{i:05}").as_bytes(), &value(i, 0)).expect("put");
        want.push((format!("k{i:05}").into_bytes(), value(i, 0)));
    }
    engine.flush().expect("flush");
    let mut scan = engine.scan(..);
    let first = scan.next().expect("one entry").expect("read");
    assert_eq!(first, want[0]);
    // Rewrite everything and compact: the tables the scan reads become obsolete.
    for i in 0..2000u32 {
        engine.put(format!("k{i:05}").as_bytes(), &value(i, 1)).expect("put");
    }
    engine.flush().expect("flush");
    engine.wait_for_compactions().expect("compactions");
    assert!(engine.stats().compactions > 0);
    let rest: Vec<_> = scan.map(|r| r.expect("read after compaction")).collect();
    assert_eq!(rest, want[1..], "the scan sees its own snapshot, whole");
    assert_eq!(engine.get(b"k00000").expect("get"), Some(value(0, 1)));
}

#[test]
fn concurrent_readers_never_see_a_value_go_back_or_vanish_across_flushes_and_compactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(Engine::open(dir.path(), options()).expect("open"));
    engine.put(b"counter", &0u64.to_be_bytes()).expect("put");
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (engine, done) = (engine.clone(), done.clone());
            std::thread::spawn(move || {
                let (mut last, mut reads) = (0u64, 0u64);
                while !done.load(Ordering::Relaxed) {
                    let v =
                        engine.get(b"counter").expect("get").expect("the counter is never absent");
                    let n = u64::from_be_bytes(v.as_slice().try_into().expect("8 bytes"));
                    assert!(n >= last, "the counter went back from {last} to {n}");
                    last = n;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    // Each write moves the counter and adds filler, so memtables fill, flush and compact.
    for n in 1..=3000u64 {
        let mut b = WriteBatch::new();
        b.put(b"counter".to_vec(), n.to_be_bytes().to_vec());
        b.put(format!("filler{:05}", n % 500), vec![n as u8; 100]);
        engine.write(b).expect("write");
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader") > 0);
    }
    assert!(
        engine.stats().compactions > 0,
        "compactions ran during the reads: {:?}",
        engine.stats()
    );
}
