//! The engine against a `BTreeMap` model: random sequences of batches, gets, scans, snapshots,
//! flushes, compactions, and close-and-reopen, with sizes small enough that flushes and
//! compactions happen all the time. After every step the engine and the model agree.

use std::collections::BTreeMap;
use std::ops::Bound;

use blockdb_server::storage::{Engine, Options, WriteBatch};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// A batch of (key index, Some(value) = put / None = delete).
    Batch(Vec<(u16, Option<Vec<u8>>)>),
    Get(u16),
    Scan(u16, u16),
    Prefix(u8),
    TakeSnapshot,
    ReadSnapshot(prop::sample::Index, u16),
    DropSnapshot(prop::sample::Index),
    Flush,
    Compact,
    Reopen,
}

fn key(i: u16) -> Vec<u8> {
    // Keys of different lengths, some prefixes of others.
    let mut k = format!("k{:x}", i % 64).into_bytes();
    if i.is_multiple_of(3) {
        k.push(b'/');
        k.extend_from_slice(&i.to_be_bytes());
    }
    k
}

fn op() -> impl Strategy<Value = Op> {
    let value = prop::collection::vec(any::<u8>(), 0..300);
    let entry = (0u16..200, prop::option::weighted(0.85, value));
    prop_oneof![
        30 => prop::collection::vec(entry, 1..20).prop_map(Op::Batch),
        10 => (0u16..200).prop_map(Op::Get),
        5 => (0u16..200, 0u16..200).prop_map(|(a, b)| Op::Scan(a.min(b), a.max(b))),
        3 => (0u8..16).prop_map(Op::Prefix),
        3 => Just(Op::TakeSnapshot),
        5 => (any::<prop::sample::Index>(), 0u16..200).prop_map(|(i, k)| Op::ReadSnapshot(i, k)),
        2 => any::<prop::sample::Index>().prop_map(Op::DropSnapshot),
        3 => Just(Op::Flush),
        2 => Just(Op::Compact),
        2 => Just(Op::Reopen),
    ]
}

fn options() -> Options {
    Options { l0_compaction_trigger: 2, ..Options::small_for_tests() }
}

fn collect(
    iter: impl Iterator<Item = blockdb_server::storage::Result<(Vec<u8>, Vec<u8>)>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    iter.map(|r| r.expect("scan reads")).collect()
}

fn model_range(m: &BTreeMap<Vec<u8>, Vec<u8>>, lo: &[u8], hi: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    m.range::<[u8], _>((Bound::Included(lo), Bound::Excluded(hi)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn check_all(engine: &Engine, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    assert_eq!(
        collect(engine.scan(..)),
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()
    );
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut engine = Some(Engine::open(dir.path(), options()).expect("open"));
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut snapshots = Vec::new();
    for op in ops {
        let e = engine.as_ref().expect("open");
        match op {
            Op::Batch(entries) => {
                let mut b = WriteBatch::new();
                for (k, v) in entries {
                    match v {
                        Some(v) => {
                            b.put(key(k), v.clone());
                            model.insert(key(k), v);
                        }
                        None => {
                            b.delete(key(k));
                            model.remove(&key(k));
                        }
                    }
                }
                e.write(b).expect("write");
            }
            Op::Get(k) => assert_eq!(e.get(&key(k)).expect("get"), model.get(&key(k)).cloned()),
            Op::Scan(a, b) => {
                let (lo, hi) = (key(a), key(b));
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                assert_eq!(collect(e.scan(lo.clone()..hi.clone())), model_range(&model, &lo, &hi));
            }
            Op::Prefix(p) => {
                let prefix = format!("k{p:x}").into_bytes();
                let want: Vec<_> = model
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                assert_eq!(collect(e.scan_prefix(&prefix)), want);
            }
            Op::TakeSnapshot => snapshots.push((e.snapshot(), model.clone())),
            Op::ReadSnapshot(i, k) => {
                if !snapshots.is_empty() {
                    let (s, m) = &snapshots[i.index(snapshots.len())];
                    assert_eq!(s.get(&key(k)).expect("get"), m.get(&key(k)).cloned());
                    let all: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    assert_eq!(collect(s.scan(..)), all);
                }
            }
            Op::DropSnapshot(i) => {
                if !snapshots.is_empty() {
                    snapshots.remove(i.index(snapshots.len()));
                }
            }
            Op::Flush => e.flush().expect("flush"),
            Op::Compact => {
                e.flush().expect("flush");
                e.wait_for_compactions().expect("compactions");
            }
            Op::Reopen => {
                snapshots.clear();
                engine.take().expect("open").close();
                engine = Some(Engine::open(dir.path(), options()).expect("reopen"));
            }
        }
    }
    let e = engine.as_ref().expect("open");
    check_all(e, &model);
    snapshots.clear();
    engine.take().expect("open").close();
    let e = Engine::open(dir.path(), options()).expect("reopen");
    check_all(&e, &model);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_a_btreemap(ops in prop::collection::vec(op(), 1..250)) {
        run(ops);
    }
}

#[test]
fn many_versions_of_few_keys_survive_flushes_compactions_and_snapshots() {
    // A long, fixed sequence: far more data than one memtable, so levels 1 and 2 fill up.
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), options()).expect("open");
    let mut model = BTreeMap::new();
    let mut snaps = Vec::new();
    for round in 0..60u32 {
        let mut b = WriteBatch::new();
        for i in 0..50u32 {
            let k = format!("key{:03}", (i * 7 + round) % 97).into_bytes();
            let v = format!("{round}-{i}-{}", "x".repeat((i % 5) as usize * 40)).into_bytes();
            b.put(k.clone(), v.clone());
            model.insert(k, v);
        }
        if round % 7 == 3 {
            let k = format!("key{:03}", round % 97).into_bytes();
            b.delete(k.clone());
            model.remove(&k);
        }
        e.write(b).expect("write");
        if round % 10 == 0 {
            snaps.push((e.snapshot(), model.clone()));
        }
    }
    e.flush().expect("flush");
    e.wait_for_compactions().expect("compactions");
    assert!(e.stats().compactions > 0, "the test must exercise compaction: {:?}", e.stats());
    assert!(e.level_bytes().iter().skip(1).any(|&b| b > 0));
    check_all(&e, &model);
    for (s, m) in &snaps {
        let all: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(collect(s.scan(..)), all, "snapshot at {}", s.seqno());
    }
}
