//! Where the log's durable prefix ends, and the fsyncs that move it on, outside the write queue.
//!
//! The group commit ([`crate::storage::write`]) appends a group to the log and makes it visible,
//! then lets the next group go; the writers that asked for durability then wait here until an
//! fsync covers their bytes. One fsync runs at a time, covering everything appended when it began,
//! so writers that wait together share it, and it overlaps the appends of later groups instead of
//! holding them up: a write that did not ask for durability (the state machine's, whose entries
//! are already durable in the Raft log) never waits for another's fsync.
//!
//! A position is `(segment number, end offset)`; positions compare in that order, and segment
//! numbers only grow. A segment is fsynced whole before the next one is started (see
//! `write::freeze_memtable`), so a position in an older segment is durable once the switch is
//! made.
//!
//! A failed fsync stops the engine's writes (the caller records it) and fails every writer still
//! waiting: after a failed fsync the kernel may have dropped the dirty pages, so no later fsync
//! can be trusted to cover them.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::storage::error::{IoContext as _, Result, StorageError};
use crate::storage::wal::WalWriter;

/// A place in the log: segment number and end offset.
pub(crate) type Position = (u64, u64);

/// The durable prefix of the log and the fsync that extends it.
#[derive(Debug)]
pub(crate) struct Syncer {
    state: Mutex<SyncState>,
    cv: Condvar,
}

#[derive(Debug)]
struct SyncState {
    /// Everything before this is durable.
    durable: Position,
    /// Everything before this is appended.
    written: Position,
    /// The segment being appended to, for fsyncs made without the leader's lock.
    file: Arc<File>,
    path: PathBuf,
    /// An fsync runs.
    syncing: bool,
    /// Why an fsync failed; nothing is durable past `durable` any more.
    failed: Option<String>,
}

impl Syncer {
    /// The syncer of a log whose segment `wal` is durable as far as it goes.
    ///
    /// # Errors
    /// When the segment's file cannot be duplicated.
    pub(crate) fn new(wal: &WalWriter) -> Result<Syncer> {
        let (file, path) = wal.sync_handle()?;
        let at = (wal.number(), wal.len());
        let state =
            SyncState { durable: at, written: at, file, path, syncing: false, failed: None };
        Ok(Syncer { state: Mutex::new(state), cv: Condvar::new() })
    }

    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that the log is appended up to `at` (by the group commit's leader).
    pub(crate) fn appended(&self, at: Position) {
        let mut s = self.lock();
        s.written = s.written.max(at);
    }

    /// Records a switch of segments: everything up to `old_end` was fsynced, and `new` is the
    /// segment appended to from now on (created and fsynced empty).
    ///
    /// # Errors
    /// When the new segment's file cannot be duplicated.
    pub(crate) fn switched(&self, old_end: Position, new: &WalWriter) -> Result<()> {
        let (file, path) = new.sync_handle()?;
        let at = (new.number(), new.len());
        let mut s = self.lock();
        s.durable = s.durable.max(old_end).max(at);
        s.written = s.written.max(at);
        s.file = file;
        s.path = path;
        self.cv.notify_all();
        Ok(())
    }

    /// Returns once everything up to `target` is durable: at once if it is, after the fsync that
    /// runs if that covers it, else after an fsync of its own. Returns whether this call made an
    /// fsync.
    ///
    /// # Errors
    /// The failed fsync's error, here or in an earlier call: the caller stops the engine's writes.
    pub(crate) fn sync_through(&self, target: Position) -> Result<bool> {
        let mut s = self.lock();
        // Bounded: each round ends with a durable prefix that grew, or an error.
        loop {
            if s.durable >= target {
                return Ok(false);
            }
            if let Some(why) = &s.failed {
                return Err(StorageError::Poisoned(why.clone()));
            }
            if s.syncing {
                s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            s.syncing = true;
            let (to, file, path) = (s.written, Arc::clone(&s.file), s.path.clone());
            drop(s);
            // If the process dies during this fsync, none of the writers waiting for it was
            // answered; recovery keeps whatever prefix reached the disk.
            let synced = file.sync_data().io("fsync", &path);
            s = self.lock();
            s.syncing = false;
            self.cv.notify_all();
            match synced {
                Ok(()) => {
                    s.durable = s.durable.max(to);
                    if s.durable >= target {
                        return Ok(true);
                    }
                }
                Err(e) => {
                    s.failed = Some(e.to_string());
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::wal::frame_into;

    fn append(w: &mut WalWriter, syncer: &Syncer, payload: &[u8]) -> Position {
        let mut framed = Vec::new();
        frame_into(&mut framed, payload);
        w.append(&framed).expect("append");
        let at = (w.number(), w.len());
        syncer.appended(at);
        at
    }

    #[test]
    fn writers_waiting_at_once_share_an_fsync_and_a_switch_makes_the_old_segment_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = WalWriter::create(dir.path(), 1, 0).expect("create");
        let syncer = Syncer::new(&w).expect("syncer");
        // Nothing appended: nothing to sync.
        assert!(!syncer.sync_through((1, 0)).expect("durable"));

        let at = append(&mut w, &syncer, b"one");
        assert!(syncer.sync_through(at).expect("synced"), "an fsync was needed");
        assert!(!syncer.sync_through(at).expect("durable"), "and only one");

        // Eight writers appended, then wait at once: one or a few fsyncs serve them all.
        let mut ends = Vec::new();
        for i in 0..8u8 {
            ends.push(append(&mut w, &syncer, &[i; 100]));
        }
        let fsyncs: usize = std::thread::scope(|s| {
            let syncer = &syncer;
            let handles: Vec<_> =
                ends.iter().map(|&end| s.spawn(move || syncer.sync_through(end))).collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().expect("no panic").expect("synced")))
                .sum()
        });
        assert!((1..=8).contains(&fsyncs), "{fsyncs} fsyncs for 8 writers");
        let fsyncs = ends.iter().filter(|&&e| syncer.sync_through(e).expect("durable")).count();
        assert_eq!(fsyncs, 0, "every writer's bytes are durable once it returned");

        // A switch of segments: the old one was fsynced whole, so its positions are durable.
        let old = append(&mut w, &syncer, b"last of segment 1");
        w.sync().expect("fsync");
        let new = WalWriter::create(dir.path(), 2, 0).expect("create");
        syncer.switched(old, &new).expect("switch");
        assert!(!syncer.sync_through(old).expect("durable"), "no fsync needed");
        assert!(!syncer.sync_through((2, 0)).expect("durable"));
    }
}
