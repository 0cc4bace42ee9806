//! The manifest: which tables are live, at which level, and where the write-ahead log starts.
//!
//! The whole manifest is one small file, `MANIFEST`, rewritten on every change: written to
//! `MANIFEST.tmp`, fsynced, renamed over `MANIFEST`, and the directory fsynced. A rename is atomic,
//! so after a crash the store has either the old manifest or the new one, never a mix; a leftover
//! `MANIFEST.tmp` is an unfinished change and is deleted at open. A store holds a few hundred
//! tables at most, so rewriting the file costs less than a log of edits and needs no replay.
//!
//! The store's directory also holds `BLOCKDB-STORE`, written once when the store is created; it
//! says the directory is a BlockDB store and which format version wrote it.
//!
//! # Format, version 1
//!
//! Little-endian integers.
//!
//! ```text
//! magic "BDBMANIF" (8) | format_version u32 | payload_len u32 | payload | crc32 u32
//! payload: next_file_number u64 | last_seqno u64 | log_number u64 | level_count u32
//!          then per level: table_count u32, then per table:
//!          id u64 | file_size u64 | min_seqno u64 | max_seqno u64
//!          | smallest_len u32 | smallest key | largest_len u32 | largest key
//! ```
//!
//! The CRC covers every byte before it. `last_seqno`: every write up to it is in the tables.
//! `log_number`: WAL segments numbered below it hold nothing the tables lack.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::storage::error::{IoContext, Result, StorageError, corruption};
use crate::storage::key::SeqNo;
use crate::storage::wal::sync_dir;

/// The manifest file's name.
pub(crate) const MANIFEST: &str = "MANIFEST";
/// The name of a manifest being written.
pub(crate) const MANIFEST_TMP: &str = "MANIFEST.tmp";
/// The file that marks a directory as a BlockDB store.
pub(crate) const STORE_MARKER: &str = "BLOCKDB-STORE";
/// The store format this code writes and the newest it reads.
pub(crate) const FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8; 8] = b"BDBMANIF";
const LEVELS_MAX: u32 = 64;
const TABLES_MAX: u32 = 1 << 20;
const KEY_LEN_MAX: u32 = 1 << 20;

/// What the manifest records of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableMeta {
    pub(crate) id: u64,
    pub(crate) file_size: u64,
    pub(crate) min_seqno: SeqNo,
    pub(crate) max_seqno: SeqNo,
    /// Smallest and largest encoded internal keys in the table.
    pub(crate) smallest: Vec<u8>,
    pub(crate) largest: Vec<u8>,
}

/// The durable state of the table set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestState {
    pub(crate) next_file_number: u64,
    pub(crate) last_seqno: SeqNo,
    pub(crate) log_number: u64,
    /// Tables per level. Level 0 newest first (tables may overlap); other levels sorted by key,
    /// not overlapping.
    pub(crate) levels: Vec<Vec<TableMeta>>,
}

impl ManifestState {
    /// The state of a new, empty store.
    pub(crate) fn empty(levels: usize) -> ManifestState {
        ManifestState {
            next_file_number: 1,
            last_seqno: SeqNo(0),
            log_number: 0,
            levels: vec![Vec::new(); levels],
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&self.next_file_number.to_le_bytes());
        p.extend_from_slice(&self.last_seqno.0.to_le_bytes());
        p.extend_from_slice(&self.log_number.to_le_bytes());
        p.extend_from_slice(&(self.levels.len() as u32).to_le_bytes());
        for level in &self.levels {
            p.extend_from_slice(&(level.len() as u32).to_le_bytes());
            for t in level {
                for v in [t.id, t.file_size, t.min_seqno.0, t.max_seqno.0] {
                    p.extend_from_slice(&v.to_le_bytes());
                }
                for k in [&t.smallest, &t.largest] {
                    p.extend_from_slice(&(k.len() as u32).to_le_bytes());
                    p.extend_from_slice(k);
                }
            }
        }
        let mut out = Vec::with_capacity(p.len() + 20);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&p);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<ManifestState> {
        let bad = |offset: usize, reason: &str| corruption(path, offset as u64, reason);
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(bad(0, "not a manifest (bad magic or too short)"));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version > FORMAT_VERSION {
            return Err(StorageError::UnsupportedVersion {
                path: path.to_owned(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
        if bytes.len() != 16 + len + 4 {
            return Err(bad(12, "payload length does not match the file size"));
        }
        let crc = u32::from_le_bytes(bytes[16 + len..].try_into().expect("4 bytes"));
        if crc32fast::hash(&bytes[..16 + len]) != crc {
            return Err(bad(16 + len, "checksum mismatch"));
        }
        let mut r = Cursor { bytes: &bytes[16..16 + len], pos: 0 };
        let state = (|| {
            let next_file_number = r.u64()?;
            let last_seqno = SeqNo(r.u64()?);
            let log_number = r.u64()?;
            let level_count = r.u32_max(LEVELS_MAX)?;
            let mut levels = Vec::new();
            for _ in 0..level_count {
                let n = r.u32_max(TABLES_MAX)?;
                let mut tables = Vec::new();
                for _ in 0..n {
                    let (id, file_size) = (r.u64()?, r.u64()?);
                    let (min_seqno, max_seqno) = (SeqNo(r.u64()?), SeqNo(r.u64()?));
                    let smallest = r.bytes()?;
                    let largest = r.bytes()?;
                    tables.push(TableMeta {
                        id,
                        file_size,
                        min_seqno,
                        max_seqno,
                        smallest,
                        largest,
                    });
                }
                levels.push(tables);
            }
            if r.pos != r.bytes.len() {
                return None;
            }
            Some(ManifestState { next_file_number, last_seqno, log_number, levels })
        })();
        state.ok_or_else(|| bad(16 + r.pos, "malformed payload"))
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32_max(&mut self, max: u32) -> Option<u32> {
        let v = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        (v <= max).then_some(v)
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32_max(KEY_LEN_MAX)? as usize;
        Some(self.take(n)?.to_vec())
    }
}

/// Writes `state` as the store's manifest, atomically.
///
/// # Errors
/// I/O errors; after an error the previous manifest is still the store's manifest.
pub(crate) fn write(dir: &Path, state: &ManifestState) -> Result<()> {
    let tmp = dir.join(MANIFEST_TMP);
    let bytes = state.encode();
    let mut f =
        OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).io("create", &tmp)?;
    f.write_all(&bytes).io("write", &tmp)?;
    f.sync_all().io("fsync", &tmp)?;
    drop(f);
    // Crash point: MANIFEST.tmp is complete but not yet the manifest. Recovery uses the old
    // MANIFEST and deletes MANIFEST.tmp; the tables this change added are orphans, deleted at
    // open because no manifest names them.
    let path = dir.join(MANIFEST);
    fs::rename(&tmp, &path).io("rename", &tmp)?;
    // Crash point: the rename may not be durable yet. Recovery finds either manifest, both whole.
    sync_dir(dir)
}

/// Reads the store's manifest, or `None` if there is none.
///
/// # Errors
/// I/O errors, [`StorageError::Corruption`] for a damaged manifest, and
/// [`StorageError::UnsupportedVersion`] for one written by a newer format.
pub(crate) fn read(dir: &Path) -> Result<Option<ManifestState>> {
    let path = dir.join(MANIFEST);
    match fs::read(&path) {
        Ok(bytes) => ManifestState::decode(&path, &bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::Io { op: "read", path, source: e }),
    }
}

/// The contents of the store marker.
pub(crate) fn marker_text() -> String {
    format!("blockdb store\nformat {FORMAT_VERSION}\n")
}

/// Checks the store marker in `dir`: `Ok(true)` for a store this code reads, `Ok(false)` when
/// there is no marker.
///
/// # Errors
/// [`StorageError::NotAStore`] for a marker that is not ours, and
/// [`StorageError::UnsupportedVersion`] for a store of a newer format.
pub(crate) fn check_marker(dir: &Path) -> Result<bool> {
    let path = dir.join(STORE_MARKER);
    let text = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StorageError::Io { op: "read", path, source: e }),
    };
    let not_ours = || StorageError::NotAStore {
        path: dir.to_owned(),
        reason: format!("{STORE_MARKER} is not a BlockDB store marker"),
    };
    let text = std::str::from_utf8(&text).map_err(|_| not_ours())?;
    let version = text
        .strip_prefix("blockdb store\nformat ")
        .and_then(|v| v.strip_suffix('\n'))
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(not_ours)?;
    if version > FORMAT_VERSION {
        return Err(StorageError::UnsupportedVersion {
            path,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ManifestState {
        let mut s = ManifestState::empty(3);
        s.next_file_number = 42;
        s.last_seqno = SeqNo(1000);
        s.log_number = 40;
        s.levels[0].push(TableMeta {
            id: 39,
            file_size: 4096,
            min_seqno: SeqNo(900),
            max_seqno: SeqNo(1000),
            smallest: b"a\0\0\0\0\0\0\0\x01".to_vec(),
            largest: b"z\0\0\0\0\0\0\0\x01".to_vec(),
        });
        s
    }

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read(dir.path()).expect("reads"), None);
        write(dir.path(), &sample()).expect("writes");
        assert_eq!(read(dir.path()).expect("reads"), Some(sample()));
        let mut next = sample();
        next.levels[1] = next.levels[0].split_off(0);
        write(dir.path(), &next).expect("writes");
        assert_eq!(read(dir.path()).expect("reads"), Some(next));
        assert!(!dir.path().join(MANIFEST_TMP).exists());
    }

    #[test]
    fn every_flipped_byte_and_truncation_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = sample().encode();
        let path = dir.path().join(MANIFEST);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            std::fs::write(&path, &bad).expect("write");
            let err = read(dir.path()).expect_err("flipped byte");
            let msg = err.to_string();
            assert!(msg.contains("MANIFEST"), "byte {i}: {msg}");
        }
        for len in 0..bytes.len() {
            std::fs::write(&path, &bytes[..len]).expect("write");
            assert!(read(dir.path()).is_err(), "length {len}");
        }
    }

    #[test]
    fn markers() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!check_marker(dir.path()).expect("no marker"));
        std::fs::write(dir.path().join(STORE_MARKER), marker_text()).expect("write");
        assert!(check_marker(dir.path()).expect("ours"));
        std::fs::write(dir.path().join(STORE_MARKER), "blockdb store\nformat 2\n").expect("write");
        assert!(matches!(
            check_marker(dir.path()),
            Err(StorageError::UnsupportedVersion { found: 2, .. })
        ));
        std::fs::write(dir.path().join(STORE_MARKER), "something else").expect("write");
        assert!(matches!(check_marker(dir.path()), Err(StorageError::NotAStore { .. })));
    }
}
