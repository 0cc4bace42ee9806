//! Opening a store: checking what the directory holds, reading the manifest and the log, and
//! turning them back into a running engine's state.
//!
//! Recovery reads everything first and changes nothing until it has found the store whole; then
//! it deletes the files no manifest names (unfinished flushes and compactions), replays the log
//! into one level-0 table, starts a new log segment, and writes a manifest that records it all.
//! Each of those steps is a crash point that the next open repeats safely.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::storage::batch;
use crate::storage::cache::BlockCache;
use crate::storage::engine::{State, Stats, meta_of, table_path, write_memtable};
use crate::storage::error::{IoContext, Result, StorageError, corruption};
use crate::storage::key::SeqNo;
use crate::storage::manifest::{self, ManifestState};
use crate::storage::memtable::MemTable;
use crate::storage::options::Options;
use crate::storage::sstable::Table;
use crate::storage::version::{TableHandle, Version};
use crate::storage::wal::{self, WalWriter};

/// Checks what `dir` holds before anything is written to it: `Ok(true)` for a store of ours,
/// `Ok(false)` for a missing or empty directory (created here), an error for anything else.
pub(crate) fn prepare_dir(dir: &Path) -> Result<bool> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).io("create", dir)?;
            return Ok(false);
        }
        Err(e) => return Err(StorageError::Io { op: "stat", path: dir.to_owned(), source: e }),
        Ok(m) if !m.is_dir() => {
            return Err(StorageError::NotAStore {
                path: dir.to_owned(),
                reason: "it is not a directory".into(),
            });
        }
        Ok(_) => {}
    }
    if manifest::check_marker(dir)? {
        return Ok(true);
    }
    let mut entries = fs::read_dir(dir).io("read", dir)?;
    let other = entries.find_map(|e| {
        let name = e.ok()?.file_name();
        (name != "LOCK").then(|| name.to_string_lossy().into_owned())
    });
    match other {
        None => Ok(false),
        Some(name) => Err(StorageError::NotAStore {
            path: dir.to_owned(),
            reason: format!("it holds {name:?} but no {} marker", manifest::STORE_MARKER),
        }),
    }
}

/// What recovery read from the files, before it changes anything.
pub(crate) struct Recovered {
    manifest: ManifestState,
    /// WAL segments to replay, oldest first, with their records' batches.
    segments: Vec<(u64, PathBuf, wal::SegmentContents)>,
    max_file_number: u64,
    orphans: Vec<PathBuf>,
}

pub(crate) fn recover(dir: &Path, options: &Options) -> Result<Recovered> {
    let manifest_state = manifest::read(dir)?;
    let mut tables = Vec::new();
    let mut segments = Vec::new();
    let mut max_file_number = 0;
    let mut others = Vec::new();
    for entry in fs::read_dir(dir).io("read", dir)? {
        let entry = entry.io("read", dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(n) = crate::storage::engine::parse_table_name(&name) {
            tables.push(n);
            max_file_number = max_file_number.max(n);
        } else if let Some(n) = wal::parse_segment_name(&name) {
            segments.push(n);
            max_file_number = max_file_number.max(n);
        } else if name == manifest::MANIFEST_TMP {
            others.push(entry.path());
        }
    }
    let manifest_state = match manifest_state {
        Some(m) => m,
        None if tables.is_empty() && segments.is_empty() => ManifestState::empty(options.levels),
        None => {
            return Err(corruption(
                dir.join(manifest::MANIFEST),
                0,
                "the store has data files but no MANIFEST",
            ));
        }
    };
    let live: std::collections::HashSet<u64> =
        manifest_state.levels.iter().flatten().map(|t| t.id).collect();
    let mut orphans: Vec<PathBuf> =
        tables.iter().filter(|id| !live.contains(id)).map(|&id| table_path(dir, id)).collect();
    orphans.extend(others);
    segments.sort_unstable();
    let mut read = Vec::new();
    let last = segments.last().copied();
    for n in segments {
        let path = wal::segment_path(dir, n);
        if n < manifest_state.log_number {
            orphans.push(path);
            continue;
        }
        let contents = wal::read_segment(&path, wal::PREALLOCATE_BYTES)?;
        if contents.torn_tail && Some(n) != last {
            return Err(corruption(
                &path,
                contents.valid_len,
                "damaged record in a segment that is not the newest",
            ));
        }
        read.push((n, path, contents));
    }
    Ok(Recovered { manifest: manifest_state, segments: read, max_file_number, orphans })
}

impl Recovered {
    /// Opens the tables, replays the log into a table, starts a new log segment, and records it
    /// all in a new manifest.
    pub(crate) fn finish(
        self,
        dir: &Path,
        options: &Options,
        cache: &Arc<BlockCache>,
    ) -> Result<(Arc<Version>, State, WalWriter, SeqNo)> {
        let mut m = self.manifest;
        while m.levels.len() < options.levels {
            m.levels.push(Vec::new());
        }
        let mut levels = Vec::new();
        for level in &m.levels {
            let mut handles = Vec::new();
            for meta in level {
                let path = table_path(dir, meta.id);
                let table = Table::open(&path, meta.id, cache.clone())?;
                if table.info().file_size != meta.file_size {
                    return Err(corruption(
                        &path,
                        0,
                        format!(
                            "table is {} bytes; the manifest says {}",
                            table.info().file_size,
                            meta.file_size
                        ),
                    ));
                }
                handles.push(Arc::new(TableHandle::new(meta.clone(), Arc::new(table), path)));
            }
            levels.push(handles);
        }
        for path in &self.orphans {
            // Crash point: an orphan left undeleted is found and deleted again next time.
            fs::remove_file(path).io("remove", path)?;
        }
        let mut next_file_number = m.next_file_number.max(self.max_file_number + 1);
        // Replay every batch the tables do not hold into one memtable.
        let replay = Arc::new(MemTable::new(0));
        let mut last_seqno = m.last_seqno;
        for (_, path, contents) in &self.segments {
            for record in &contents.records {
                let batches = batch::decode_group(&record.payload)
                    .map_err(|reason| corruption(path, record.offset, reason))?;
                for b in batches {
                    for (i, (kind, key, value)) in b.ops.iter().enumerate() {
                        let seqno = SeqNo(b.first_seqno.0 + i as u64);
                        if seqno > m.last_seqno {
                            replay.insert(key, seqno, *kind, value);
                            last_seqno = last_seqno.max(seqno);
                        }
                    }
                }
            }
        }
        if !replay.is_empty() {
            let id = next_file_number;
            next_file_number += 1;
            if let Some(info) = write_memtable(dir, options, id, &replay)? {
                let path = table_path(dir, id);
                let table = Table::open(&path, id, cache.clone())?;
                let meta = meta_of(id, &info);
                m.levels[0].insert(0, meta.clone());
                levels[0].insert(0, Arc::new(TableHandle::new(meta, Arc::new(table), path)));
            }
        }
        let wal_number = next_file_number;
        next_file_number += 1;
        let wal_writer = WalWriter::create(dir, wal_number, wal::PREALLOCATE_BYTES)?;
        m.next_file_number = next_file_number;
        m.last_seqno = last_seqno;
        m.log_number = wal_number;
        // Crash point: until this manifest is written, the replayed table is an orphan and the old
        // segments still hold its writes; recovery repeats.
        manifest::write(dir, &m)?;
        for (_, path, _) in &self.segments {
            // Crash point: segments below the manifest's log number are deleted at the next open.
            fs::remove_file(path).io("remove", path)?;
        }
        let state = State {
            manifest: m,
            next_file_number,
            stopped: None,
            closing: false,
            snapshots: BTreeMap::new(),
            compact_pointer: vec![Vec::new(); options.levels],
            stats: Stats::default(),
        };
        Ok((Arc::new(Version { levels }), state, wal_writer, last_seqno))
    }
}
