//! Damaged files: every test flips or cuts bytes in one file of a closed store, and checks that
//! opening or reading gives a clear error naming that file (or, for a torn log tail, a clean
//! recovery), and never wrong data. Directories that are not stores are refused untouched.

use std::fs;
use std::path::{Path, PathBuf};

use blockdb_server::storage::{Engine, Options, StorageError, WriteBatch};

fn options() -> Options {
    Options::small_for_tests()
}

fn files_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn value(i: u32) -> Vec<u8> {
    format!("value {i:05} {}", "x".repeat(80)).into_bytes()
}

/// A store with tables (flushed) and a log with several records (not flushed).
fn build(dir: &Path, flushed: u32, logged: u32) {
    let e = Engine::open(dir, options()).expect("open");
    for i in 0..flushed {
        e.put(format!("t{i:05}").as_bytes(), &value(i)).expect("put");
    }
    e.flush().expect("flush");
    for i in 0..logged {
        let mut b = WriteBatch::new();
        b.put(format!("w{i:05}"), value(i));
        e.write(b).expect("write");
    }
}

/// Offsets of the records of a log segment (length-prefixed frames, then zeros).
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut pos = 0;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        if len == 0 {
            break;
        }
        offsets.push(pos);
        pos += 8 + len;
    }
    offsets.push(pos);
    offsets
}

fn must_corruption_naming(r: Result<impl std::fmt::Debug, StorageError>, file: &Path) {
    match r {
        Err(StorageError::Corruption { path, .. }) => assert_eq!(path, file),
        other => panic!("expected corruption in {}, got {other:?}", file.display()),
    }
}

#[test]
fn a_flipped_byte_in_the_middle_of_the_log_stops_open_with_its_file_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), 0, 20);
    let wal = files_with(dir.path(), ".wal").pop().expect("a log segment");
    let mut bytes = fs::read(&wal).expect("read");
    let records = record_offsets(&bytes);
    assert_eq!(records.len(), 21, "20 records and the end");
    // Damage the third record's payload: records before and after it are whole.
    bytes[records[2] + 12] ^= 0x40;
    fs::write(&wal, &bytes).expect("write");
    let before = fs::read(&wal).expect("read");
    match Engine::open(dir.path(), options()) {
        Err(StorageError::Corruption { path, offset, .. }) => {
            assert_eq!(path, wal);
            assert_eq!(offset, records[2] as u64);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert_eq!(fs::read(&wal).expect("read"), before, "a failed open changes nothing");
}

#[test]
fn a_torn_log_tail_is_cut_and_every_whole_record_recovered() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), 0, 20);
    let wal = files_with(dir.path(), ".wal").pop().expect("a log segment");
    let bytes = fs::read(&wal).expect("read");
    let records = record_offsets(&bytes);
    // Cut inside the last record, then zeros to the end (preallocated, never written).
    let mut torn = bytes[..records[19] + 20].to_vec();
    torn.resize(bytes.len(), 0);
    fs::write(&wal, &torn).expect("write");
    let e = Engine::open(dir.path(), options()).expect("a torn tail recovers");
    for i in 0..19 {
        assert_eq!(e.get(format!("w{i:05}").as_bytes()).expect("get"), Some(value(i)));
    }
    assert_eq!(e.get(b"w00019").expect("get"), None, "the torn record is gone, not garbled");
}

#[test]
fn a_damaged_table_block_is_an_error_on_read_never_wrong_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), 300, 0);
    let table = files_with(dir.path(), ".sst").pop().expect("a table");
    let mut bytes = fs::read(&table).expect("read");
    bytes[100] ^= 0x01; // inside the first data block
    fs::write(&table, &bytes).expect("write");
    let opened = Engine::open(dir.path(), options());
    let e = match opened {
        Ok(e) => e,
        Err(err) => return must_corruption_naming(Err::<(), _>(err), &table),
    };
    // Every read either returns the right value or a corruption error naming the table.
    let mut errors = 0;
    for i in 0..300 {
        match e.get(format!("t{i:05}").as_bytes()) {
            Ok(v) => assert_eq!(v, Some(value(i)), "key {i}"),
            Err(err) => {
                must_corruption_naming(Err::<(), _>(err), &table);
                errors += 1;
            }
        }
    }
    assert!(errors > 0, "the damaged block was read");
    let scanned: Result<Vec<_>, _> = e.scan(..).collect();
    must_corruption_naming(scanned, &table);
}

#[test]
fn a_damaged_table_footer_or_index_fails_open() {
    for from_end in [1usize, 8, 20, 40] {
        let dir = tempfile::tempdir().expect("tempdir");
        build(dir.path(), 300, 0);
        let table = files_with(dir.path(), ".sst").pop().expect("a table");
        let mut bytes = fs::read(&table).expect("read");
        let n = bytes.len();
        bytes[n - from_end] ^= 0x10;
        fs::write(&table, &bytes).expect("write");
        match Engine::open(dir.path(), options()) {
            Err(StorageError::Corruption { path, .. }) => {
                assert_eq!(path, table, "byte -{from_end}")
            }
            Err(StorageError::UnsupportedVersion { path, .. }) => assert_eq!(path, table),
            other => panic!("byte -{from_end}: expected an error naming the table, got {other:?}"),
        }
    }
}

#[test]
fn truncated_tables_and_manifests_fail_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), 300, 0);
    let table = files_with(dir.path(), ".sst").pop().expect("a table");
    let full = fs::read(&table).expect("read");
    for len in [0, 1, full.len() / 2, full.len() - 1] {
        fs::write(&table, &full[..len]).expect("write");
        must_corruption_naming(Engine::open(dir.path(), options()).map(|_| ()), &table);
    }
    fs::write(&table, &full).expect("restore");
    let manifest = dir.path().join("MANIFEST");
    let full = fs::read(&manifest).expect("read");
    for len in [0, 10, full.len() - 1] {
        fs::write(&manifest, &full[..len]).expect("write");
        must_corruption_naming(Engine::open(dir.path(), options()).map(|_| ()), &manifest);
    }
    let mut flipped = full.clone();
    flipped[full.len() / 2] ^= 0x04;
    fs::write(&manifest, &flipped).expect("write");
    must_corruption_naming(Engine::open(dir.path(), options()).map(|_| ()), &manifest);
    fs::write(&manifest, &full).expect("restore");
    let e = Engine::open(dir.path(), options()).expect("the restored store opens");
    assert_eq!(e.get(b"t00299").expect("get"), Some(value(299)));
}

fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .expect("read")
        .map(|e| {
            let p = e.expect("entry").path();
            let bytes = fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn directories_that_are_not_stores_are_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("notes.txt"), "my files").expect("write");
    let before = snapshot_dir(dir.path());
    let err = Engine::open(dir.path(), options()).expect_err("not a store");
    assert!(matches!(err, StorageError::NotAStore { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(snapshot_dir(dir.path()), before);

    let file = dir.path().join("notes.txt");
    assert!(matches!(Engine::open(&file, options()), Err(StorageError::NotAStore { .. })));
}

#[test]
fn a_store_of_a_newer_format_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), 10, 5);
    fs::write(dir.path().join("BLOCKDB-STORE"), "blockdb store\nformat 9\n").expect("write");
    let before = snapshot_dir(dir.path());
    let err = Engine::open(dir.path(), options()).expect_err("newer format");
    assert!(matches!(err, StorageError::UnsupportedVersion { found: 9, .. }), "{err}");
    assert_eq!(snapshot_dir(dir.path()), before);
}

#[test]
fn an_empty_or_missing_directory_becomes_a_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a/b");
    let e = Engine::open(&nested, options()).expect("creates");
    e.put(b"k", b"v").expect("put");
    drop(e);
    let e = Engine::open(&nested, options()).expect("reopens");
    assert_eq!(e.get(b"k").expect("get"), Some(b"v".to_vec()));
    // A second engine on the same store is refused while the first holds it.
    let second = Engine::open(&nested, options());
    assert!(second.is_err(), "the store is locked");
}
