//! Table round trips against a `BTreeMap` model: point reads at several snapshots, full scans
//! and seeks; the block cache as tables use it.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use proptest::prelude::*;

use super::test_util::*;
use super::{Table, TableOptions, TableWriter};
use crate::storage::StorageError;
use crate::storage::cache::BlockCache;
use crate::storage::iter::InternalIterator;
use crate::storage::key::{self, SeqNo, ValueKind};

fn must_cache() -> Arc<BlockCache> {
    Arc::new(BlockCache::new(8 << 20))
}

/// Checks every read of `table` against `model`: `get` of every user key in the model (and of
/// `absent` keys) at each of `snapshots`, the full scan, and a seek to each of `targets`.
fn must_match_model(
    table: &Arc<Table>,
    model: &Model,
    snapshots: &[u64],
    absent: &[&[u8]],
    targets: &[Vec<u8>],
) {
    let mut user_keys: Vec<&[u8]> = model.keys().map(|k| k.user_key.as_slice()).collect();
    user_keys.dedup();
    user_keys.extend_from_slice(absent);
    for &user_key in &user_keys {
        for &snapshot in snapshots {
            let got = table.get(user_key, SeqNo(snapshot)).expect("get");
            assert_eq!(got, model_get(model, user_key, snapshot), "get {user_key:?} @ {snapshot}");
        }
    }
    assert_eq!(scan(table).expect("scan"), model_entries(model), "full scan");
    let mut iter = table.iter();
    for target in targets {
        iter.seek(target).expect("seek");
        assert_eq!(
            scan_rest(&mut iter).expect("scan"),
            model_from(model, target),
            "seek {target:?}"
        );
    }
}

#[test]
fn single_entry_table_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = Model::new();
    model_add(&mut model, b"only", 7, Some(b"value"));
    let (path, info) = must_write(dir.path(), "1.sst", &TableOptions::default(), &model);

    // Phase 1: the summary written is the summary read, and matches the file.
    let table = must_open(&path, 1, &must_cache());
    assert_eq!(table.info(), &info);
    assert_eq!(info.file_size, std::fs::metadata(&path).expect("stat").len());
    assert_eq!((info.entry_count, info.min_seqno, info.max_seqno), (1, SeqNo(7), SeqNo(7)));
    assert_eq!(info.smallest_key, key::encode(b"only", SeqNo(7), ValueKind::Put));
    assert_eq!(info.largest_key, info.smallest_key);
    assert_eq!((table.id(), table.path()), (1, path.as_path()));

    // Phase 2: reads before, at and after the entry's sequence number, and seeks around it.
    let targets = [
        key::seek_key(b"a", SeqNo(0)),
        key::seek_key(b"only", SeqNo(8)),
        key::seek_key(b"only", SeqNo(7)),
        key::encode(b"only", SeqNo(7), ValueKind::Delete),
        key::seek_key(b"z", SeqNo(0)),
    ];
    must_match_model(&table, &model, &[0, 6, 7, 8, u64::MAX], &[b"on", b"onlyx", b"a"], &targets);
    assert_eq!(table.get(b"only", SeqNo(6)).expect("get"), None, "too old a snapshot");
}

#[test]
fn thousands_of_entries_across_many_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = Model::new();
    for i in 0..3000u64 {
        let user_key = format!("account/{:06}", i * 7);
        model_add(
            &mut model,
            user_key.as_bytes(),
            10 + i % 50,
            Some(format!("balance {i}").as_bytes()),
        );
        if i % 3 == 0 {
            model_add(&mut model, user_key.as_bytes(), 100 + i % 50, None);
        }
        if i % 5 == 0 {
            model_add(&mut model, user_key.as_bytes(), 200 + i, Some(&[i as u8; 40]));
        }
    }
    let (path, info) = must_write(dir.path(), "2.sst", &TableOptions::default(), &model);
    let table = must_open(&path, 2, &must_cache());
    assert!(table.index().len() > 20, "{} data blocks", table.index().len());
    assert_eq!(info.entry_count, model.len() as u64);

    let targets: Vec<Vec<u8>> = [0u64, 1, 7, 700, 20_993, 20_994, 99_999]
        .iter()
        .flat_map(|&n| {
            let user_key = format!("account/{n:06}");
            [
                key::seek_key(user_key.as_bytes(), SeqNo(0)),
                key::seek_key(user_key.as_bytes(), SeqNo(150)),
            ]
        })
        .chain([b"a".to_vec(), b"account/".to_vec(), b"b".to_vec()])
        .collect();
    must_match_model(
        &table,
        &model,
        &[0, 10, 59, 99, 149, 1000, 5000],
        &[b"account/000001", b"zz"],
        &targets,
    );
}

#[test]
fn user_keys_that_are_prefixes_of_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = Model::new();
    let user_keys: [&[u8]; 7] = [b"a", b"ab", b"abc", b"abcd", b"b", b"b\x00", b"b\x00\x00"];
    for (i, user_key) in user_keys.iter().enumerate() {
        // Sequence numbers whose trailer bytes look like key bytes ("b" = 0x62).
        model_add(&mut model, user_key, 0x62_0000 + i as u64, Some(user_key));
        model_add(&mut model, user_key, 0x61, None);
        model_add(&mut model, user_key, 1, Some(b"old"));
    }
    for restart_interval in [1, 2, 16] {
        let options =
            TableOptions { block_size_bytes: 64, restart_interval, ..TableOptions::default() };
        let (path, _) =
            must_write(dir.path(), &format!("{restart_interval}.sst"), &options, &model);
        let table = must_open(&path, restart_interval as u64, &must_cache());
        let targets: Vec<Vec<u8>> = user_keys
            .iter()
            .flat_map(|u| [key::seek_key(u, SeqNo(0x61)), key::seek_key(u, SeqNo(0)), u.to_vec()])
            .collect();
        must_match_model(
            &table,
            &model,
            &[0, 1, 0x60, 0x61, 0x62_0003, u64::MAX],
            &[b"aa", b"abcde", b"c"],
            &targets,
        );
    }
}

#[test]
fn values_larger_than_a_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = Model::new();
    for (i, len) in [0usize, 1, 4095, 4096, 4097, 10_000, 100_000, 3].into_iter().enumerate() {
        let value: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
        model_add(&mut model, format!("big{i}").as_bytes(), 5, Some(&value));
    }
    let (path, _) = must_write(dir.path(), "big.sst", &TableOptions::default(), &model);
    let table = must_open(&path, 1, &must_cache());
    must_match_model(&table, &model, &[4, 5], &[b"big"], &[key::seek_key(b"big4", SeqNo(9))]);
}

#[test]
fn table_without_a_filter_reads_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = Model::new();
    for i in 0..200u32 {
        model_add(&mut model, &i.to_be_bytes(), 3, Some(b"v"));
    }
    let options = TableOptions { bloom_bits_per_key: 0, ..TableOptions::default() };
    let (path, _) = must_write(dir.path(), "nofilter.sst", &options, &model);
    let table = must_open(&path, 1, &must_cache());
    assert!(table.may_contain(b"certainly not there"), "no filter: everything may be present");
    must_match_model(&table, &model, &[2, 3], &[b"x"], &[]);

    let (path, _) = must_write(dir.path(), "filter.sst", &TableOptions::default(), &model);
    let table = must_open(&path, 2, &must_cache());
    assert!((0..200u32).all(|i| table.may_contain(&i.to_be_bytes())), "no false negatives");
    let false_positives = (1000..11_000u32).filter(|i| table.may_contain(&i.to_be_bytes())).count();
    assert!(false_positives < 300, "{false_positives} of 10,000 absent keys pass the filter");
}

#[test]
fn create_refuses_an_existing_file_and_add_refuses_oversized_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("exists.sst");
    std::fs::write(&path, b"something").expect("write");
    let error = TableWriter::create(&path, &TableOptions::default()).expect_err("exists");
    assert!(matches!(error, StorageError::Io { op: "create", .. }), "{error}");

    let mut writer =
        TableWriter::create(&dir.path().join("new.sst"), &TableOptions::default()).expect("create");
    let huge = key::encode(&vec![b'k'; 70_000], SeqNo(1), ValueKind::Put);
    let error = writer.add(&huge, b"").expect_err("too large");
    assert!(matches!(error, StorageError::TooLarge { what: "key", .. }), "{error}");
    writer.add(&key::encode(b"k", SeqNo(1), ValueKind::Put), b"v").expect("add after a refusal");
    writer.finish().expect("finish");
}

#[test]
#[should_panic(expected = "a table holds at least one entry")]
fn finishing_an_empty_table_is_a_programmer_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = TableWriter::create(&dir.path().join("empty.sst"), &TableOptions::default())
        .expect("create");
    let _ = writer.finish();
}

#[test]
fn second_read_of_a_block_comes_from_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = Model::new();
    for i in 0..1000u32 {
        model_add(&mut model, format!("k{i:05}").as_bytes(), 1, Some(&[1; 50]));
    }
    let (path, _) = must_write(dir.path(), "cached.sst", &TableOptions::default(), &model);
    let cache = must_cache();
    let table = must_open(&path, 9, &cache);

    // Phase 1: the first read loads and caches one block.
    let expected = model_get(&model, b"k00000", 1);
    assert_eq!(table.get(b"k00000", SeqNo(1)).expect("get"), expected);
    assert_eq!(cache.block_count(), 1);

    // Phase 2: the block's bytes on disk are now wrong, but the second read does not re-read
    // them: it is served from the cache.
    let file = std::fs::OpenOptions::new().write(true).open(&path).expect("open for write");
    file.write_at(&[0xff; 16], 8).expect("overwrite block 0");
    assert_eq!(table.get(b"k00000", SeqNo(1)).expect("cached get"), expected);
    assert_eq!(
        table.get(b"k00001", SeqNo(1)).expect("same block"),
        model_get(&model, b"k00001", 1)
    );
    assert_eq!(cache.block_count(), 1);

    // Phase 3: a reader without the cached block does read the disk, and sees the damage.
    let uncached = Table::open(&path, 10, Arc::clone(&cache)).expect("open");
    let error = uncached.get(b"k00000", SeqNo(1)).expect_err("corrupt block");
    assert_eq!(must_be_corruption(&error, &path), 0, "block 0 starts at offset 0");
}

#[test]
fn scans_through_a_small_cache_stay_within_its_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = Model::new();
    for i in 0..5000u32 {
        model_add(&mut model, format!("key{i:06}").as_bytes(), 2, Some(&[3; 64]));
    }
    let (path, _) = must_write(dir.path(), "scan.sst", &TableOptions::default(), &model);
    let cache = Arc::new(BlockCache::new(32 << 10));
    let table = must_open(&path, 1, &cache);
    assert!(table.index().len() > 50);
    for _ in 0..2 {
        assert_eq!(scan(&table).expect("scan"), model_entries(&model));
        assert!(cache.used_bytes() <= cache.capacity_bytes(), "{cache:?}");
    }
    assert!(cache.block_count() > 0);
}

#[test]
fn many_threads_read_one_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = Model::new();
    for i in 0..2000u32 {
        model_add(
            &mut model,
            format!("t{i:05}").as_bytes(),
            u64::from(i % 9) + 1,
            Some(&i.to_le_bytes()),
        );
    }
    let (path, _) = must_write(dir.path(), "threads.sst", &TableOptions::default(), &model);
    let table = must_open(&path, 1, &Arc::new(BlockCache::new(16 << 10)));
    std::thread::scope(|scope| {
        for t in 0..4u32 {
            let (table, model) = (&table, &model);
            scope.spawn(move || {
                for i in (t..2000).step_by(3) {
                    let user_key = format!("t{i:05}");
                    let got = table.get(user_key.as_bytes(), SeqNo(9)).expect("get");
                    assert_eq!(got, model_get(model, user_key.as_bytes(), 9));
                }
            });
        }
    });
}

/// Random tables: user keys over a tiny alphabet (shared prefixes, prefix keys, many versions),
/// random options, and random reads.
fn random_model() -> impl Strategy<Value = Model> {
    let entry = (
        proptest::collection::vec(b'a'..b'e', 1..6),
        0u64..40,
        proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..40)),
    );
    proptest::collection::vec(entry, 1..400).prop_map(|entries| {
        let mut model = Model::new();
        for (user_key, seqno, value) in entries {
            model_add(&mut model, &user_key, seqno, value.as_deref());
        }
        model
    })
}

proptest! {
    #![proptest_config(seeded_config(40))]

    #[test]
    fn random_tables_match_the_model(
        model in random_model(),
        block_size_bytes in 16usize..1024,
        restart_interval in 1usize..20,
        bloom_bits_per_key in prop_oneof![Just(0u32), Just(10), 1u32..4],
        snapshots in proptest::collection::vec(0u64..45, 1..6),
        probes in proptest::collection::vec(
            (proptest::collection::vec(b'a'..b'f', 0..7), 0u64..45),
            1..30,
        ),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = TableOptions { block_size_bytes, bloom_bits_per_key, restart_interval };
        let (path, info) = must_write(dir.path(), "p.sst", &options, &model);
        let table = must_open(&path, 1, &Arc::new(BlockCache::new(64 << 10)));
        prop_assert_eq!(table.info(), &info);
        let absent: Vec<&[u8]> = probes.iter().map(|(u, _)| u.as_slice()).collect();
        let targets: Vec<Vec<u8>> =
            probes.iter().map(|(u, s)| key::seek_key(u, SeqNo(*s))).collect();
        must_match_model(&table, &model, &snapshots, &absent, &targets);
    }
}
