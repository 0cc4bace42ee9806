//! The engine: open and recover a store, read, scan, snapshot and checkpoint it. Writes are in
//! [`crate::storage::write`], flushes and compactions in [`crate::storage::background`].
//!
//! # State and who changes it
//!
//! - `current` ([`SuperVersion`]): the memtable, the frozen memtables and the table set that
//!   reads use. Readers clone the `Arc` under a short read lock. The group-commit leader swaps in
//!   a new memtable; the background thread removes flushed memtables and installs new table sets.
//! - `visible`: the last sequence number whose whole group is in the memtable. Reads default to
//!   it, so a reader never sees part of a batch.
//! - `state` (a mutex): the durable manifest's contents, the file-number counter, registered
//!   snapshots, and the error that stopped writes, if any.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use std::thread::JoinHandle;

use crate::storage::batch::WriteBatch;
use crate::storage::cache::BlockCache;
use crate::storage::error::{IoContext, Result, StorageError};
use crate::storage::key::{SeqNo, ValueKind};
use crate::storage::manifest::{self, ManifestState, TableMeta};
use crate::storage::memtable::{MemTable, MemTableIter};
use crate::storage::merge::{BoxedIter, LevelIter, MergeIter, ScanIter};
use crate::storage::options::Options;
use crate::storage::sstable::{TableInfo, TableWriter};
use crate::storage::sync::Syncer;
use crate::storage::version::Version;
use crate::storage::wal;
use crate::storage::write::{LeaderState, WriteQueue};

/// What reads see: the memtable, the frozen memtables (newest first) and the table set.
#[derive(Debug)]
pub(crate) struct SuperVersion {
    pub(crate) mem: Arc<MemTable>,
    pub(crate) imm: Vec<Arc<MemTable>>,
    pub(crate) version: Arc<Version>,
}

/// Mutable engine state behind one mutex.
#[derive(Debug)]
pub(crate) struct State {
    /// The manifest as last written.
    pub(crate) manifest: ManifestState,
    pub(crate) next_file_number: u64,
    /// Why writes stopped (a failed WAL write or fsync, a failed flush or compaction).
    pub(crate) stopped: Option<String>,
    pub(crate) closing: bool,
    /// Registered snapshots and how many handles each has.
    pub(crate) snapshots: BTreeMap<SeqNo, usize>,
    /// Per level, the largest user key of the last compaction's input, to rotate through a level.
    pub(crate) compact_pointer: Vec<Vec<u8>>,
    pub(crate) stats: Stats,
}

impl State {
    pub(crate) fn allocate_file_number(&mut self) -> u64 {
        let n = self.next_file_number;
        self.next_file_number += 1;
        n
    }
}

/// Counters for write and space amplification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes of batches written by users (keys and values).
    pub user_bytes: u64,
    /// Bytes appended to the write-ahead log.
    pub wal_bytes: u64,
    /// Group commits that fsynced the write-ahead log.
    pub wal_syncs: u64,
    /// Bytes held by the active memtable (filled in by [`Engine::stats`]).
    pub memtable_bytes: u64,
    /// Bytes of tables written by flushes.
    pub flush_bytes: u64,
    /// Bytes of tables written by compactions.
    pub compaction_bytes: u64,
    /// Number of flushes.
    pub flushes: u64,
    /// Number of compactions.
    pub compactions: u64,
}

/// Shared by the engine handle, its snapshots and scans, and the background thread.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) cache: Arc<BlockCache>,
    pub(crate) current: ArcSwap<SuperVersion>,
    /// Held by whoever replaces `current` (the leader freezing a memtable, the background thread
    /// installing tables), so that each replacement starts from the latest one.
    pub(crate) current_lock: Mutex<()>,
    pub(crate) visible: AtomicU64,
    pub(crate) queue: WriteQueue,
    pub(crate) leader: Mutex<LeaderState>,
    pub(crate) syncer: Syncer,
    pub(crate) state: Mutex<State>,
    /// Signalled when the background thread has work or has made progress.
    pub(crate) state_cv: Condvar,
    _lock: File,
}

impl Inner {
    pub(crate) fn current(&self) -> Arc<SuperVersion> {
        self.current.load_full()
    }

    /// Serializes replacements of `current`.
    pub(crate) fn lock_current(&self) -> MutexGuard<'_, ()> {
        self.current_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn visible(&self) -> SeqNo {
        SeqNo(self.visible.load(Ordering::Acquire))
    }

    pub(crate) fn table_path(&self, id: u64) -> PathBuf {
        table_path(&self.dir, id)
    }

    /// The view a read of the latest state uses: a super-version and a sequence number such that
    /// every write up to that number is in the super-version, and no version a read at that
    /// number needs has been compacted away.
    ///
    /// The super-version is loaded first and the sequence number second, then the super-version
    /// is checked to still be current. If it is, every write up to the number went into its
    /// memtables (a frozen memtable is replaced by a new super-version before any write goes to
    /// the new one), and every compaction it reflects started before the number was read, so it
    /// kept what a read at the number sees. If it is not, a freeze, flush or compaction happened
    /// in between and the read starts over; those are rare and each retry is short.
    fn latest_view(&self) -> (Arc<SuperVersion>, SeqNo) {
        loop {
            let sv = self.current.load_full();
            let seqno = self.visible();
            if Arc::ptr_eq(&sv, &self.current.load()) {
                return (sv, seqno);
            }
        }
    }

    /// The value of `key` at `snapshot`, a registered snapshot's number, or the latest if `None`.
    fn get_at(&self, key: &[u8], snapshot: Option<SeqNo>) -> Result<Option<Vec<u8>>> {
        // As `latest_view`, with guards instead of reference counts: a point read is short, and
        // this keeps concurrent readers from contending on the super-version's counter.
        let (sv, snapshot) = match snapshot {
            Some(s) => (self.current.load(), s),
            None => loop {
                let sv = self.current.load();
                let seqno = self.visible();
                if Arc::ptr_eq(&sv, &self.current.load()) {
                    break (sv, seqno);
                }
            },
        };
        let found = std::iter::once(&sv.mem).chain(&sv.imm).find_map(|m| m.get(key, snapshot));
        let found = match found {
            Some(f) => Some(f),
            None => sv.version.get(key, snapshot)?,
        };
        Ok(match found {
            Some((ValueKind::Put, v)) => Some(v),
            Some((ValueKind::Delete, _)) | None => None,
        })
    }

    /// A scan at `snapshot` (a registered snapshot's number), or of the latest state if `None`.
    fn scan_at(
        &self,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        snapshot: Option<SeqNo>,
    ) -> ScanIter {
        let (sv, snapshot) = match snapshot {
            Some(s) => (self.current.load_full(), s),
            None => self.latest_view(),
        };
        let mut children: Vec<BoxedIter> = Vec::new();
        for m in std::iter::once(&sv.mem).chain(&sv.imm) {
            children.push(Box::new(MemTableIter::new(m.clone())));
        }
        for (level, tables) in sv.version.levels.iter().enumerate() {
            if level == 0 {
                for t in tables {
                    children.push(Box::new(t.table.iter()));
                }
            } else if !tables.is_empty() {
                children.push(Box::new(LevelIter::new(tables.clone())));
            }
        }
        let pins: Vec<Box<dyn std::any::Any + Send + Sync>> = vec![Box::new(sv)];
        ScanIter::new(MergeIter::new(children), snapshot, start, end, pins)
    }
}

/// The path of table `id` in `dir`.
pub(crate) fn table_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:06}.sst"))
}

pub(crate) fn parse_table_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".sst")?;
    (digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())?
}

/// The manifest's record of a table just written.
pub(crate) fn meta_of(id: u64, info: &TableInfo) -> TableMeta {
    TableMeta {
        id,
        file_size: info.file_size,
        min_seqno: info.min_seqno,
        max_seqno: info.max_seqno,
        smallest: info.smallest_key.clone(),
        largest: info.largest_key.clone(),
    }
}

/// Writes every entry of `mem` into a new table `id` in `dir`; `None` for an empty memtable. The
/// one way a memtable becomes a table: flushes and recovery's replay both use it.
pub(crate) fn write_memtable(
    dir: &Path,
    options: &Options,
    id: u64,
    mem: &MemTable,
) -> Result<Option<TableInfo>> {
    if mem.is_empty() {
        return Ok(None);
    }
    let mut w = TableWriter::create(&table_path(dir, id), &options.table)?;
    mem.for_each(|k, v| w.add(k, v))?;
    w.finish().map(Some)
}

/// BlockDB's LSM storage engine. See the [module docs](crate::storage) for the design.
#[derive(Debug)]
pub struct Engine {
    inner: Arc<Inner>,
    background: Mutex<Option<JoinHandle<()>>>,
}

impl Engine {
    /// Opens the store in `dir`, creating it if `dir` does not exist or is empty, and recovers it:
    /// tables from the manifest, then every complete write in the write-ahead log.
    ///
    /// # Errors
    /// [`StorageError::NotAStore`] for a directory with other contents,
    /// [`StorageError::UnsupportedVersion`] for a store of a newer format (both change nothing),
    /// [`StorageError::Corruption`] naming the damaged file, and I/O errors.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Engine> {
        let dir = dir.as_ref().to_owned();
        let is_store = crate::storage::recovery::prepare_dir(&dir)?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&lock_path)
            .io("open", &lock_path)?;
        lock.try_lock().map_err(|e| StorageError::Io {
            op: "lock (is another process using this store?)",
            path: lock_path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        if !is_store {
            // Crash point: a directory with only LOCK and maybe a partial marker is not yet a
            // store; `prepare_dir` accepts it as empty next time.
            let marker = dir.join(manifest::STORE_MARKER);
            fs::write(&marker, manifest::marker_text()).io("write", &marker)?;
            File::open(&marker).io("open", &marker)?.sync_all().io("fsync", &marker)?;
            wal::sync_dir(&dir)?;
        }
        let recovered = crate::storage::recovery::recover(&dir, &options)?;
        let cache = Arc::new(BlockCache::new(options.block_cache_bytes));
        let (version, state, wal_writer, last_seqno) = recovered.finish(&dir, &options, &cache)?;
        let mem = Arc::new(MemTable::new(wal_writer.number()));
        let syncer = Syncer::new(&wal_writer)?;
        let inner = Arc::new(Inner {
            dir,
            cache,
            current: ArcSwap::from_pointee(SuperVersion { mem, imm: Vec::new(), version }),
            current_lock: Mutex::new(()),
            visible: AtomicU64::new(last_seqno.0),
            queue: WriteQueue::new(),
            leader: Mutex::new(LeaderState { wal: wal_writer, last_seqno }),
            syncer,
            state: Mutex::new(state),
            state_cv: Condvar::new(),
            options,
            _lock: lock,
        });
        let bg = inner.clone();
        let handle = std::thread::Builder::new()
            .name("blockdb-storage-bg".into())
            .spawn(move || crate::storage::background::run(&bg))
            .io("spawn background thread", "<engine>")?;
        Ok(Engine { inner, background: Mutex::new(Some(handle)) })
    }

    /// Applies `batch` atomically and durably: it returns after the batch is in the write-ahead
    /// log and fsynced. Returns the sequence number of the batch's last operation. Reads may see
    /// the batch a moment before it returns, while the fsync that covers it runs (the fsync is
    /// shared with the writers waiting at the same time; see `storage::write`).
    ///
    /// # Errors
    /// [`StorageError::TooLarge`] for keys, values or batches over the limits (nothing is
    /// written); an I/O error (a full disk, a failed fsync) for the write that failed, after which
    /// the engine refuses writes ([`StorageError::Poisoned`]) until it is reopened. A batch whose
    /// write failed may or may not be present after reopening, but never in part.
    pub fn write(&self, batch: WriteBatch) -> Result<SeqNo> {
        self.write_with(batch, true)
    }

    /// As [`Engine::write`], with `sync = false` returning before the fsync: the batch survives a
    /// crash of the process but not necessarily of the machine.
    ///
    /// # Errors
    /// As [`Engine::write`].
    pub fn write_with(&self, batch: WriteBatch, sync: bool) -> Result<SeqNo> {
        batch.validate()?;
        crate::storage::write::write(&self.inner, batch, sync)
    }

    /// Sets one key.
    ///
    /// # Errors
    /// As [`Engine::write`].
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<SeqNo> {
        let mut b = WriteBatch::new();
        b.put(key, value);
        self.write(b)
    }

    /// The newest value of `key`, or `None`.
    ///
    /// # Errors
    /// I/O errors and corruption found while reading.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get_at(key, None)
    }

    /// The visible records with keys in `range`, in key order.
    pub fn scan<R: RangeBounds<Vec<u8>>>(&self, range: R) -> ScanIter {
        let (start, end) = bounds(range);
        self.inner.scan_at(start, end, None)
    }

    /// The visible records whose keys start with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> ScanIter {
        let (start, end) = prefix_bounds(prefix);
        self.inner.scan_at(start, end, None)
    }

    /// A consistent view of the store as it is now; later writes are not seen through it. Old
    /// versions it can see are kept by compaction until it is dropped.
    pub fn snapshot(&self) -> Snapshot {
        let mut st = self.inner.lock_state();
        let seqno = self.inner.visible();
        *st.snapshots.entry(seqno).or_insert(0) += 1;
        Snapshot { inner: self.inner.clone(), seqno }
    }

    /// The sequence number of the last write visible to reads.
    pub fn last_seqno(&self) -> SeqNo {
        self.inner.visible()
    }

    /// Freezes the memtable and waits until it and every older frozen memtable are in tables.
    ///
    /// # Errors
    /// The error that stopped the engine, if a flush failed.
    pub fn flush(&self) -> Result<()> {
        crate::storage::write::rotate(&self.inner)?;
        let sv = self.inner.current();
        let target = sv.imm.first().map(|m| m.wal_number());
        let Some(target) = target else { return Ok(()) };
        let mut st = self.inner.lock_state();
        loop {
            if let Some(why) = &st.stopped {
                return Err(StorageError::Poisoned(why.clone()));
            }
            if self.inner.current().imm.iter().all(|m| m.wal_number() > target) {
                return Ok(());
            }
            st = self.inner.state_cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits until no compaction is due (for tests and benchmarks that measure a settled store).
    ///
    /// # Errors
    /// The error that stopped the engine, if a compaction failed.
    pub fn wait_for_compactions(&self) -> Result<()> {
        let mut st = self.inner.lock_state();
        loop {
            if let Some(why) = &st.stopped {
                return Err(StorageError::Poisoned(why.clone()));
            }
            let sv = self.inner.current();
            if sv.imm.is_empty()
                && crate::storage::compaction::pick(&sv.version, &self.inner.options, &st).is_none()
            {
                return Ok(());
            }
            st = self.inner.state_cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Counters of bytes written, for write amplification.
    pub fn stats(&self) -> Stats {
        let mut stats = self.inner.lock_state().stats;
        stats.memtable_bytes = self.inner.current().mem.approximate_bytes() as u64;
        stats
    }

    /// Bytes of the live tables, per level.
    pub fn level_bytes(&self) -> Vec<u64> {
        let sv = self.inner.current();
        (0..sv.version.levels.len()).map(|l| sv.version.level_bytes(l)).collect()
    }

    /// Writes a consistent copy of the store into `dst` (which must not exist): the tables as
    /// hard links where the file system allows (copies otherwise), and a manifest. The copy holds
    /// every write made before the call and opens as a store of its own.
    ///
    /// # Errors
    /// I/O errors; a failed checkpoint leaves a partial `dst` that is not a store (no marker).
    pub fn checkpoint(&self, dst: impl AsRef<Path>) -> Result<()> {
        let dst = dst.as_ref();
        self.flush()?;
        fs::create_dir(dst).io("create", dst)?;
        let (sv, mut state) = {
            let st = self.inner.lock_state();
            (self.inner.current(), st.manifest.clone())
        };
        for t in sv.version.levels.iter().flatten() {
            let to = table_path(dst, t.meta.id);
            if fs::hard_link(&t.path, &to).is_err() {
                fs::copy(&t.path, &to).io("copy", &t.path)?;
                File::open(&to).io("open", &to)?.sync_all().io("fsync", &to)?;
            }
        }
        state.levels = sv.version.metas();
        state.log_number = state.next_file_number;
        manifest::write(dst, &state)?;
        // The marker is written last: until it exists, `dst` is not a store.
        let marker = dst.join(manifest::STORE_MARKER);
        fs::write(&marker, manifest::marker_text()).io("write", &marker)?;
        File::open(&marker).io("open", &marker)?.sync_all().io("fsync", &marker)?;
        wal::sync_dir(dst)
    }

    /// Stops the background thread and closes the store. Writes already acknowledged are durable;
    /// memtables are not flushed (the write-ahead log holds them).
    pub fn close(self) {
        drop(self);
    }

    fn shutdown(&self) {
        self.inner.lock_state().closing = true;
        self.inner.state_cv.notify_all();
        let handle = self.background.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A consistent view of the store at one sequence number.
#[derive(Debug)]
pub struct Snapshot {
    inner: Arc<Inner>,
    seqno: SeqNo,
}

impl Snapshot {
    /// The sequence number this snapshot reads at.
    pub fn seqno(&self) -> SeqNo {
        self.seqno
    }

    /// The value of `key` as of the snapshot.
    ///
    /// # Errors
    /// I/O errors and corruption found while reading.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get_at(key, Some(self.seqno))
    }

    /// The records with keys in `range` as of the snapshot.
    pub fn scan<R: RangeBounds<Vec<u8>>>(&self, range: R) -> ScanIter {
        let (start, end) = bounds(range);
        self.inner.scan_at(start, end, Some(self.seqno))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let mut st = self.inner.lock_state();
        if let Some(n) = st.snapshots.get_mut(&self.seqno) {
            *n -= 1;
            if *n == 0 {
                st.snapshots.remove(&self.seqno);
            }
        }
    }
}

fn bounds<R: RangeBounds<Vec<u8>>>(range: R) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    (range.start_bound().cloned(), range.end_bound().cloned())
}

/// `[prefix, successor of prefix)`; unbounded above when the prefix is all `0xff`.
fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return (Bound::Included(prefix.to_vec()), Bound::Excluded(end));
        }
    }
    (Bound::Included(prefix.to_vec()), Bound::Unbounded)
}
