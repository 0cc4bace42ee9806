//! Damaged table files: every damage is reported as an error naming the file, never as wrong
//! data or a panic.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::{Rng, RngCore, SeedableRng};

use super::format::{BlockHandle, FOOTER_LEN, Footer, block_checksum};
use super::test_util::*;
use super::{Table, TableOptions};
use crate::storage::StorageError;
use crate::storage::cache::BlockCache;
use crate::storage::key::SeqNo;

/// A table of a few blocks (keys `k000`.. `k149`, two versions each) in a fresh directory.
fn must_small_table() -> (tempfile::TempDir, PathBuf, Model) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = Model::new();
    for i in 0..150u32 {
        let user_key = format!("k{i:03}");
        model_add(&mut model, user_key.as_bytes(), 2, Some(format!("value {i}").as_bytes()));
        model_add(&mut model, user_key.as_bytes(), 1, None);
    }
    let options = TableOptions { block_size_bytes: 512, ..TableOptions::default() };
    let (path, _) = must_write(dir.path(), "t.sst", &options, &model);
    (dir, path, model)
}

fn open(path: &Path) -> Result<Table, StorageError> {
    Table::open(path, 1, Arc::new(BlockCache::new(1 << 20)))
}

fn must_footer(path: &Path) -> Footer {
    let bytes = std::fs::read(path).expect("read");
    let footer: [u8; FOOTER_LEN] = bytes[bytes.len() - FOOTER_LEN..].try_into().expect("footer");
    Footer::decode(&footer).expect("valid footer")
}

fn flip(path: &Path, offset: u64) {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).expect("open");
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).expect("read");
    file.write_all_at(&[byte[0] ^ 0x10], offset).expect("write");
}

/// Replaces the contents of the block at `handle` by `contents` (same length) and writes the
/// matching checksum: damage the checksum cannot see.
fn rewrite_block(path: &Path, handle: BlockHandle, contents: &[u8]) {
    assert_eq!(contents.len(), handle.size as usize);
    let file = std::fs::OpenOptions::new().write(true).open(path).expect("open");
    file.write_all_at(contents, handle.offset).expect("write");
    let trailer = block_checksum(contents).to_le_bytes();
    file.write_all_at(&trailer, handle.offset + u64::from(handle.size)).expect("write");
}

fn must_read_block(path: &Path, handle: BlockHandle) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("read");
    bytes[handle.offset as usize..][..handle.size as usize].to_vec()
}

#[test]
fn flipped_byte_in_a_data_block_fails_reads_of_that_block_only() {
    let (_dir, path, model) = must_small_table();
    let table = Arc::new(open(&path).expect("data blocks are read on demand"));
    let second_block = table.index().handle(1);
    assert!(table.index().len() >= 3);
    flip(&path, second_block.offset + 5);
    let table = Arc::new(open(&path).expect("open"));

    // Phase 1: point reads of keys in the damaged block fail, naming the file and the block.
    let in_block_1 = model
        .keys()
        .find(|k| k.encode().as_slice() == table.index().last_key(1))
        .expect("a key of block 1");
    let error = table.get(&in_block_1.user_key, SeqNo(5)).expect_err("corrupt");
    assert_eq!(must_be_corruption(&error, &path), second_block.offset);

    // Phase 2: reads elsewhere still work; a scan fails when it reaches the block.
    assert_eq!(table.get(b"k000", SeqNo(5)).expect("block 0"), model_get(&model, b"k000", 5));
    let error = scan(&table).expect_err("scan reaches the damaged block");
    must_be_corruption(&error, &path);
}

#[test]
fn every_flipped_byte_is_detected() {
    // Every byte of a table is under a checksum, so any single flipped byte must make opening
    // or reading fail; a table that opens and reads back unchanged would be silent corruption.
    let (_dir, path, model) = must_small_table();
    let len = std::fs::metadata(&path).expect("stat").len();
    let pristine = std::fs::read(&path).expect("read");
    for offset in 0..len {
        flip(&path, offset);
        let outcome = open(&path).map(Arc::new).and_then(|table| scan(&table).map(|_| ()));
        match outcome {
            Err(StorageError::Corruption { path: p, .. }) => assert_eq!(p, path),
            Err(StorageError::UnsupportedVersion { found, .. }) => {
                assert!(offset >= len - 12, "version field only, offset {offset}, found {found}")
            }
            other => panic!("byte {offset} of {len} flipped: {other:?}"),
        }
        std::fs::write(&path, &pristine).expect("restore");
    }
    let table = Arc::new(open(&path).expect("restored"));
    assert_eq!(scan(&table).expect("scan"), model_entries(&model));
}

#[test]
fn flipped_bytes_in_footer_index_filter_and_meta_fail_open() {
    let (_dir, path, _) = must_small_table();
    let pristine = std::fs::read(&path).expect("read");
    let footer = must_footer(&path);
    let footer_start = pristine.len() as u64 - FOOTER_LEN as u64;
    for (what, offset) in [
        ("filter", footer.filter.offset + 3),
        ("index", footer.index.offset + 3),
        ("meta", footer.meta.offset + 3),
        ("index trailer", footer.meta.offset - 1),
        ("footer handle", footer_start + 13),
        ("footer checksum", footer_start + 37),
        ("magic", footer_start + 50),
    ] {
        flip(&path, offset);
        let error = open(&path).expect_err(what);
        let reported = must_be_corruption(&error, &path);
        assert!(
            reported <= offset,
            "{what}: reported offset {reported} is past the damage at {offset}"
        );
        std::fs::write(&path, &pristine).expect("restore");
    }
}

#[test]
fn newer_format_version_is_unsupported() {
    let (_dir, path, _) = must_small_table();
    let footer_start = std::fs::metadata(&path).expect("stat").len() - FOOTER_LEN as u64;
    let file = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
    file.write_all_at(&2u32.to_le_bytes(), footer_start + 40).expect("write version");
    match open(&path).expect_err("version 2") {
        StorageError::UnsupportedVersion { path: p, found: 2, supported: 1 } => assert_eq!(p, path),
        other => panic!("expected unsupported version, got {other}"),
    }
    file.write_all_at(&0u32.to_le_bytes(), footer_start + 40).expect("write version");
    must_be_corruption(&open(&path).expect_err("version 0"), &path);
}

#[test]
fn truncated_files_fail_to_open() {
    let (_dir, path, _) = must_small_table();
    let pristine = std::fs::read(&path).expect("read");
    let len = pristine.len();
    for cut in [
        0,
        1,
        FOOTER_LEN - 1,
        FOOTER_LEN,
        FOOTER_LEN + 1,
        len / 2,
        len - FOOTER_LEN,
        len - 8,
        len - 1,
    ] {
        std::fs::write(&path, &pristine[..cut]).expect("write truncated");
        must_be_corruption(&open(&path).expect_err("truncated"), &path);
    }
}

#[test]
fn random_bytes_fail_to_open() {
    let seed = 0x0bad_f11e;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("random.sst");
    for round in 0..200 {
        let len = rng.random_range(0..5000);
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        if round % 2 == 0 && len >= FOOTER_LEN {
            // Half of the files end like a table, so that the checks after the magic run too.
            bytes[len - 12..len - 8].copy_from_slice(&1u32.to_le_bytes());
            bytes[len - 8..].copy_from_slice(b"BlkDBsst");
        }
        std::fs::write(&path, &bytes).expect("write");
        let error = open(&path).expect_err("random bytes are not a table");
        assert!(
            matches!(error, StorageError::Corruption { .. }),
            "seed {seed:#x} round {round}: {error}"
        );
    }
}

#[test]
fn index_that_does_not_tile_the_data_is_refused_even_with_a_valid_checksum() {
    let (_dir, path, _) = must_small_table();
    let footer = must_footer(&path);
    let mut index = must_read_block(&path, footer.index);
    // The first entry is `0, key_len, 12, key, handle`; move the first handle's offset by one.
    let key_len = usize::from(index[1]);
    index[3 + key_len] ^= 1;
    rewrite_block(&path, footer.index, &index);
    let error = open(&path).expect_err("bad handle");
    assert_eq!(must_be_corruption(&error, &path), footer.index.offset);
}

#[test]
fn garbage_with_valid_checksums_never_panics() {
    // Damage a checksum cannot see (a bug in a writer, or a malicious file) may give wrong data,
    // but must never make a reader panic or loop.
    let seed = 0x5eed_0002;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (_dir, path, _) = must_small_table();
    let pristine = std::fs::read(&path).expect("read");
    let footer = must_footer(&path);
    let table = open(&path).expect("open");
    let mut handles = vec![footer.filter, footer.index, footer.meta];
    handles.extend((0..table.index().len()).map(|i| table.index().handle(i)));
    for round in 0..300 {
        let handle = handles[round % handles.len()];
        let mut contents = must_read_block(&path, handle);
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(0..contents.len());
            contents[at] = rng.random();
        }
        rewrite_block(&path, handle, &contents);
        if let Ok(table) = open(&path).map(Arc::new) {
            let _ = scan(&table);
            for user_key in [&b"k000"[..], b"k075", b"k149", b"zzz"] {
                let _ = table.get(user_key, SeqNo(9));
            }
        }
        std::fs::write(&path, &pristine).expect("restore");
    }
}
