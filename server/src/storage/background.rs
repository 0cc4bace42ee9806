//! The background thread: flushes frozen memtables to level-0 tables, then compacts.
//!
//! One thread does both, flushes first: a flush frees memory that writers may be waiting for, and
//! with one thread no two jobs ever change the table set at once. A job reads an immutable
//! version, writes new tables without holding any lock, and then, holding the state lock, writes
//! the new manifest and publishes the new version. Readers are never blocked; the inputs of a
//! compaction stay readable until the last reader holding them is done.

use std::sync::Arc;

use crate::storage::compaction::{self, Compaction};
use crate::storage::engine::{Inner, SuperVersion, meta_of, write_memtable};
use crate::storage::error::{Result, StorageError};
use crate::storage::manifest;
use crate::storage::sstable::Table;
use crate::storage::version::{TableHandle, Version};
use crate::storage::wal;

enum Job {
    Flush,
    Compact(Compaction),
}

/// The thread's loop; returns when the engine closes.
pub(crate) fn run(inner: &Arc<Inner>) {
    loop {
        let job = {
            let mut st = inner.lock_state();
            loop {
                if st.closing {
                    return;
                }
                if st.stopped.is_none() {
                    let sv = inner.current();
                    if !sv.imm.is_empty() {
                        break Job::Flush;
                    }
                    if let Some(c) = compaction::pick(&sv.version, &inner.options, &st) {
                        break Job::Compact(c);
                    }
                }
                st = inner.state_cv.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        let result = match job {
            Job::Flush => flush_oldest(inner),
            Job::Compact(c) => compact(inner, c),
        };
        match result {
            Ok(()) | Err(StorageError::Closed) => {}
            Err(e) => {
                // A failed flush or compaction (a full disk, say) stops writes; the data is still
                // in the log and the old tables, and reopening the store retries.
                crate::storage::write::stop(inner, &e);
            }
        }
        inner.state_cv.notify_all();
    }
}

/// Writes the oldest frozen memtable to a level-0 table.
fn flush_oldest(inner: &Inner) -> Result<()> {
    let sv = inner.current();
    let mem = sv.imm.last().expect("flush is picked when a frozen memtable exists").clone();
    let id = inner.lock_state().allocate_file_number();
    let written = write_memtable(&inner.dir, &inner.options, id, &mem)?;
    wal::sync_dir(&inner.dir)?;
    // Crash point: the table is complete but no manifest names it; open deletes it as an orphan
    // and replays the memtable's writes from the log.
    let handle = match &written {
        Some(info) => {
            let path = inner.table_path(id);
            let table = Table::open(&path, id, inner.cache.clone())?;
            Some(Arc::new(TableHandle::new(meta_of(id, info), Arc::new(table), path)))
        }
        None => None,
    };
    let mut st = inner.lock_state();
    let _replacing = inner.lock_current();
    let current = inner.current.load_full();
    let mut levels = current.version.levels.clone();
    if let Some(h) = &handle {
        levels[0].insert(0, h.clone());
    }
    let mut imm = current.imm.clone();
    let flushed = imm.pop().expect("only this thread removes frozen memtables");
    debug_assert!(Arc::ptr_eq(&flushed, &mem));
    // Log segments older than the oldest memtable still in memory hold nothing we need.
    let log_number = imm.last().unwrap_or(&current.mem).wal_number();
    let version = Arc::new(Version { levels });
    let mut m = st.manifest.clone();
    m.levels = version.metas();
    m.next_file_number = st.next_file_number;
    m.last_seqno = m.last_seqno.max(mem.max_seqno());
    m.log_number = log_number;
    manifest::write(&inner.dir, &m)?;
    // Crash point: the manifest names the table and a log number past the flushed segment; open
    // deletes that segment if it is still there.
    st.manifest = m;
    st.stats.flushes += 1;
    st.stats.flush_bytes += written.as_ref().map_or(0, |i| i.file_size);
    inner.current.store(Arc::new(SuperVersion { mem: current.mem.clone(), imm, version }));
    drop(_replacing);
    drop(st);
    let old = wal::segment_path(&inner.dir, mem.wal_number());
    if let Err(e) = std::fs::remove_file(&old)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(StorageError::Io { op: "remove", path: old, source: e });
    }
    Ok(())
}

/// Runs a compaction and installs its output.
fn compact(inner: &Inner, c: Compaction) -> Result<()> {
    let smallest_snapshot = {
        let st = inner.lock_state();
        st.snapshots.keys().next().copied().unwrap_or_else(|| inner.visible())
    };
    let outputs = compaction::run(inner, &c, smallest_snapshot)?;
    wal::sync_dir(&inner.dir)?;
    // Crash point: the outputs are complete but no manifest names them; open deletes them as
    // orphans and the inputs are still the live tables.
    let mut st = inner.lock_state();
    let _replacing = inner.lock_current();
    let current = inner.current.load_full();
    let version = compaction::apply(&current.version, &c, &outputs);
    let mut m = st.manifest.clone();
    m.levels = version.metas();
    m.next_file_number = st.next_file_number;
    manifest::write(&inner.dir, &m)?;
    // Crash point: the manifest names the outputs; the inputs are orphans now, deleted below when
    // no reader holds them, or at the next open.
    st.manifest = m;
    st.stats.compactions += 1;
    st.stats.compaction_bytes += outputs.iter().map(|t| t.meta.file_size).sum::<u64>();
    if let Some(last) = c.inputs.iter().map(|t| t.largest_user_key()).max() {
        st.compact_pointer[c.level] = last.to_vec();
    }
    inner.current.store(Arc::new(SuperVersion {
        mem: current.mem.clone(),
        imm: current.imm.clone(),
        version: Arc::new(version),
    }));
    for t in c.inputs.iter().chain(&c.next_inputs) {
        t.mark_obsolete();
    }
    Ok(())
}
