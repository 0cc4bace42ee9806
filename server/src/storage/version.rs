//! A version: one immutable set of live tables, by level.
//!
//! Flushes and compactions never change a version; they make a new one and publish it. A reader
//! holds an `Arc` of the version it started with, so the tables it reads stay open however the
//! table set changes meanwhile. A table that a change removed is marked obsolete, and its file is
//! deleted when the last version (and so the last reader) holding it is dropped.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::storage::error::Result;
use crate::storage::key::{self, SeqNo, ValueKind};
use crate::storage::manifest::TableMeta;
use crate::storage::sstable::{Table, key_hash};

/// A live table and what the manifest says of it.
#[derive(Debug)]
pub(crate) struct TableHandle {
    pub(crate) meta: TableMeta,
    pub(crate) table: Arc<Table>,
    pub(crate) path: PathBuf,
    obsolete: AtomicBool,
}

impl TableHandle {
    pub(crate) fn new(meta: TableMeta, table: Arc<Table>, path: PathBuf) -> TableHandle {
        TableHandle { meta, table, path, obsolete: AtomicBool::new(false) }
    }

    /// Marks the table for deletion once no version holds it.
    pub(crate) fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    /// The smallest user key in the table.
    pub(crate) fn smallest_user_key(&self) -> &[u8] {
        key::user_key(&self.meta.smallest)
    }

    /// The largest user key in the table.
    pub(crate) fn largest_user_key(&self) -> &[u8] {
        key::user_key(&self.meta.largest)
    }

    /// Whether the table's user-key range meets `[begin, end]` (both inclusive).
    pub(crate) fn overlaps(&self, begin: &[u8], end: &[u8]) -> bool {
        self.smallest_user_key() <= end && self.largest_user_key() >= begin
    }
}

impl Drop for TableHandle {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            // Crash point: if the process dies before or during this, the file is an orphan that
            // no manifest names, and open deletes it. A failed delete leaves the same orphan.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The live tables by level. Level 0 is newest first and its tables may overlap; every other
/// level is sorted by key and its tables do not overlap.
#[derive(Debug, Default)]
pub(crate) struct Version {
    pub(crate) levels: Vec<Vec<Arc<TableHandle>>>,
}

impl Version {
    /// The newest entry of `user_key` visible at `snapshot` in the tables, newest source first.
    pub(crate) fn get(
        &self,
        user_key: &[u8],
        snapshot: SeqNo,
    ) -> Result<Option<(ValueKind, Vec<u8>)>> {
        // One hash for every table's Bloom filter. The filter is checked first: for a key a
        // table does not hold, that is one cache line, and it answers most lookups.
        let hash = key_hash(user_key);
        for (level, tables) in self.levels.iter().enumerate() {
            if level == 0 {
                for t in tables {
                    if t.meta.min_seqno > snapshot
                        || !t.table.may_contain_hash(hash)
                        || !t.overlaps(user_key, user_key)
                    {
                        continue;
                    }
                    if let Some((_, kind, value)) = t.table.get_unfiltered(user_key, snapshot)? {
                        return Ok(Some((kind, value)));
                    }
                }
                continue;
            }
            // The first table whose largest key is at or after the key; levels do not overlap.
            let i = tables.partition_point(|t| t.largest_user_key() < user_key);
            if let Some(t) = tables.get(i)
                && t.table.may_contain_hash(hash)
                && t.smallest_user_key() <= user_key
                && let Some((_, kind, value)) = t.table.get_unfiltered(user_key, snapshot)?
            {
                return Ok(Some((kind, value)));
            }
        }
        Ok(None)
    }

    /// Total file bytes of a level.
    pub(crate) fn level_bytes(&self, level: usize) -> u64 {
        self.levels.get(level).map_or(0, |l| l.iter().map(|t| t.meta.file_size).sum())
    }

    /// The manifest's view of the levels.
    pub(crate) fn metas(&self) -> Vec<Vec<TableMeta>> {
        self.levels.iter().map(|l| l.iter().map(|t| t.meta.clone()).collect()).collect()
    }
}
