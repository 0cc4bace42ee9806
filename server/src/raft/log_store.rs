//! The Raft log of one shard, kept in the node's storage engine.
//!
//! # Keys (shard `s`, u32 big-endian)
//!
//! | key                         | value                                         |
//! |-----------------------------|-----------------------------------------------|
//! | `"G" ‖ s ‖ index (u64 BE)`  | the entry ([`crate::raft::codec`])            |
//! | `"H" ‖ s ‖ "v"`             | the vote, JSON                                |
//! | `"H" ‖ s ‖ "l"`             | the last log id, term ‖ index                 |
//! | `"H" ‖ s ‖ "p"`             | the last purged log id, term ‖ index          |
//!
//! Every change is one synced write batch: entries with the new last log id, a truncation with
//! its new last log id, a purge with its purged log id. So an append is reported flushed to
//! openraft only once it is fsynced — that is the durability promise — and after a crash the
//! stored last log id always names the last stored entry.
//!
//! ```text
//!   append ──► pending (in memory, readable at once) ──► writer thread: one synced write
//!                                                          for every job queued, in order
//!                                                          ──► callbacks: flushed
//! ```
//!
//! openraft wants `append` to return at once and report the flush through its callback. A
//! dedicated thread per shard writes the queued jobs in submission order, merging whatever is
//! queued into one write and one fsync (group commit across appends), while openraft goes on
//! accepting new entries. Until their write lands, entries are served to readers from memory, so
//! the log has no hole at any time.
//!
//! [`LogProgress`] counts the appends made and those whose write ended; the shard's proposer
//! watches it to close each entry when the log is ready for it (see `node::proposer`).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, LogId, LogState, RaftLogReader, StorageError,
    StorageIOError, Vote,
};

use blockdb_verifier::ShardId;

use crate::raft::codec::{decode_entry, decode_log_id, encode_entry, encode_log_id};
use crate::raft::{Entry, NodeId, TypeConfig};
use crate::storage::{Engine, WriteBatch};

/// Jobs queued for the writer thread, at most; `append` waits for room beyond that.
const QUEUE_MAX: usize = 1024;

/// Work for the writer thread.
enum Job {
    /// Entries `[first, last]`, already in `pending`.
    Append { batch: WriteBatch, first: u64, last: LogId<NodeId>, callback: LogFlushed<TypeConfig> },
    /// Any other change, reported back when durable.
    Write { batch: WriteBatch, done: tokio::sync::oneshot::Sender<std::io::Result<()>> },
}

type Pending = Arc<Mutex<BTreeMap<u64, Entry>>>;

/// How far the log's appends have got: openraft's append calls, and those whose write is done
/// (flushed or failed). A proposer watches it to close its next entry when the log is ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogProgress {
    /// Appends called.
    pub appended: u64,
    /// Appends whose write ended.
    pub flushed: u64,
}

impl LogProgress {
    /// No append is being written.
    pub fn idle(self) -> bool {
        self.appended == self.flushed
    }
}

/// The Raft log of one shard. Clones share the engine, the pending entries and the writer;
/// openraft uses a clone as its reader.
#[derive(Clone)]
pub struct LogStore {
    engine: Arc<Engine>,
    shard: ShardId,
    pending: Pending,
    writer: std::sync::mpsc::SyncSender<Job>,
    progress: Arc<tokio::sync::watch::Sender<LogProgress>>,
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").field("shard", &self.shard).finish_non_exhaustive()
    }
}

impl LogStore {
    /// The log of `shard` in `engine`, with its writer thread (which ends when every clone of
    /// the store is gone).
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn new(engine: Arc<Engine>, shard: ShardId) -> std::io::Result<LogStore> {
        let (writer, jobs) = std::sync::mpsc::sync_channel(QUEUE_MAX);
        let pending: Pending = Arc::default();
        let progress = Arc::new(tokio::sync::watch::Sender::new(LogProgress::default()));
        let (e, p, g) = (Arc::clone(&engine), Arc::clone(&pending), Arc::clone(&progress));
        std::thread::Builder::new()
            .name(format!("raft-log-{}", shard.0))
            .spawn(move || write_jobs(&e, &p, &g, &jobs))?;
        Ok(LogStore { engine, shard, pending, writer, progress })
    }

    /// Watches how far the appends have got.
    pub fn progress(&self) -> tokio::sync::watch::Receiver<LogProgress> {
        self.progress.subscribe()
    }

    fn entry_key(&self, index: u64) -> Vec<u8> {
        let mut k = vec![b'G'];
        k.extend_from_slice(&self.shard.0.to_be_bytes());
        k.extend_from_slice(&index.to_be_bytes());
        k
    }

    fn meta_key(&self, what: u8) -> Vec<u8> {
        let mut k = vec![b'H'];
        k.extend_from_slice(&self.shard.0.to_be_bytes());
        k.push(what);
        k
    }

    #[expect(clippy::result_large_err, reason = "openraft's storage trait errors are this type")]
    fn read_log_id(&self, what: u8) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        match self.engine.get(&self.meta_key(what)).map_err(read_err(ErrorSubject::Logs))? {
            None => Ok(None),
            Some(bytes) => decode_log_id(&bytes).map(Some).map_err(read_err(ErrorSubject::Logs)),
        }
    }

    /// Writes `batch` synced, after every job queued before it.
    async fn write_synced(&self, batch: WriteBatch) -> Result<(), std::io::Error> {
        let (done, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Write { batch, done })?;
        rx.await.map_err(|_| std::io::Error::other("the raft log writer stopped"))?
    }

    fn submit(&self, job: Job) -> Result<(), std::io::Error> {
        self.writer.send(job).map_err(|_| std::io::Error::other("the raft log writer stopped"))
    }
}

/// The writer thread: takes every queued job, writes them as one synced batch, then reports.
fn write_jobs(
    engine: &Engine,
    pending: &Pending,
    progress: &tokio::sync::watch::Sender<LogProgress>,
    jobs: &std::sync::mpsc::Receiver<Job>,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < QUEUE_MAX {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut batch = WriteBatch::new();
        for job in &mut group {
            let (Job::Append { batch: b, .. } | Job::Write { batch: b, .. }) = job;
            batch.append(std::mem::take(b));
        }
        // If the process dies before this fsync, none of the group was reported flushed.
        let result = engine.write_with(batch, true).map(|_| ()).map_err(std::io::Error::other);
        for job in group {
            let result =
                result.as_ref().map(|_| ()).map_err(|e| std::io::Error::other(e.to_string()));
            match job {
                Job::Append { first, last, callback, .. } => {
                    if result.is_ok() {
                        let mut p = pending.lock().expect("no panic while holding the lock");
                        // Only the entries this job wrote: a later truncation may have replaced
                        // some of them in memory already.
                        let written: Vec<u64> = p
                            .range(first..=last.index)
                            .filter(|(_, e)| e.log_id.leader_id.term <= last.leader_id.term)
                            .map(|(&i, _)| i)
                            .collect();
                        for i in written {
                            p.remove(&i);
                        }
                    }
                    callback.log_io_completed(result);
                    progress.send_modify(|p| p.flushed += 1);
                }
                Job::Write { done, .. } => {
                    let _ = done.send(result);
                }
            }
        }
    }
}

fn read_err<E: std::error::Error + 'static>(
    subject: ErrorSubject<NodeId>,
) -> impl FnOnce(E) -> StorageError<NodeId> {
    move |e| StorageIOError::new(subject, ErrorVerb::Read, AnyError::new(&e)).into()
}

fn write_err<E: std::error::Error + 'static>(
    subject: ErrorSubject<NodeId>,
) -> impl FnOnce(E) -> StorageError<NodeId> {
    move |e| StorageIOError::new(subject, ErrorVerb::Write, AnyError::new(&e)).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let begin = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => self.entry_key(i.saturating_add(1)),
            Bound::Excluded(&i) => self.entry_key(i),
            // Above every entry key of this shard: its prefix, then more than eight 0xff bytes.
            Bound::Unbounded => {
                let mut k = self.entry_key(u64::MAX);
                k.push(0xff);
                k
            }
        };
        if begin == u64::MAX || self.entry_key(begin) >= end {
            return Ok(Vec::new());
        }
        let mut entries = Vec::new();
        for item in self.engine.scan(self.entry_key(begin)..end) {
            let (key, value) = item.map_err(read_err(ErrorSubject::Logs))?;
            let entry = decode_entry(&value).map_err(read_err(ErrorSubject::Logs))?;
            // A stored entry sits under its own index; anything else is corruption.
            let index_bytes = key.get(5..13).unwrap_or_default();
            if index_bytes != entry.log_id.index.to_be_bytes() {
                return Err(StorageIOError::new(
                    ErrorSubject::LogIndex(entry.log_id.index),
                    ErrorVerb::Read,
                    AnyError::error("an entry is stored under another index"),
                )
                .into());
            }
            entries.push(entry);
        }
        // Entries not yet written come from memory; they are the newest word on their indexes.
        let pending = self.pending.lock().expect("no panic while holding the lock");
        if !pending.is_empty() {
            let mut all: BTreeMap<u64, Entry> =
                entries.into_iter().map(|e| (e.log_id.index, e)).collect();
            for (&i, e) in pending.range((range.start_bound().cloned(), range.end_bound().cloned()))
            {
                all.insert(i, e.clone());
            }
            entries = all.into_values().collect();
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id = self.read_log_id(b'p')?;
        // A purge may pass the last entry (after a snapshot install); the log then ends there.
        let last_log_id = self.read_log_id(b'l')?.max(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let json = serde_json::to_vec(vote).map_err(write_err(ErrorSubject::Vote))?;
        let mut batch = WriteBatch::new();
        batch.put(self.meta_key(b'v'), json);
        self.write_synced(batch).await.map_err(write_err(ErrorSubject::Vote))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        match self.engine.get(&self.meta_key(b'v')).map_err(read_err(ErrorSubject::Vote))? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes).map(Some).map_err(read_err(ErrorSubject::Vote))
            }
        }
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut batch = WriteBatch::new();
        let mut range: Option<(u64, LogId<NodeId>)> = None;
        let mut in_memory = Vec::new();
        for entry in entries {
            batch.put(self.entry_key(entry.log_id.index), encode_entry(&entry));
            range = Some((range.map_or(entry.log_id.index, |(f, _)| f), entry.log_id));
            in_memory.push(entry);
        }
        let Some((first, last)) = range else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        batch.put(self.meta_key(b'l'), encode_log_id(&last));
        {
            let mut p = self.pending.lock().expect("no panic while holding the lock");
            for e in in_memory {
                p.insert(e.log_id.index, e);
            }
        }
        self.progress.send_modify(|p| p.appended += 1);
        self.submit(Job::Append { batch, first, last, callback })
            .inspect_err(|_| self.progress.send_modify(|p| p.flushed += 1))
            .map_err(write_err(ErrorSubject::Logs))
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // Let queued appends land first, so that the deletes below cover them.
        self.write_synced(WriteBatch::new()).await.map_err(write_err(ErrorSubject::Logs))?;
        self.pending.lock().expect("no panic while holding the lock").split_off(&log_id.index);
        let last = self.read_log_id(b'l')?;
        let mut batch = WriteBatch::new();
        let end = last.map_or(log_id.index, |l| l.index.max(log_id.index));
        for index in log_id.index..=end {
            batch.delete(self.entry_key(index));
        }
        // The entry before the truncated one becomes the last; its id is read back from the log.
        let previous = if log_id.index == 0 {
            None
        } else {
            let mut reader = self.clone();
            let before = reader.try_get_log_entries(log_id.index - 1..log_id.index).await?;
            before.first().map(|e| e.log_id).or(self.read_log_id(b'p')?)
        };
        match previous {
            Some(p) => batch.put(self.meta_key(b'l'), encode_log_id(&p)),
            None => batch.delete(self.meta_key(b'l')),
        };
        self.write_synced(batch).await.map_err(write_err(ErrorSubject::Logs))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let begin = self.read_log_id(b'p')?.map_or(0, |p| p.index + 1);
        let mut batch = WriteBatch::new();
        for index in begin..=log_id.index {
            batch.delete(self.entry_key(index));
        }
        batch.put(self.meta_key(b'p'), encode_log_id(&log_id));
        self.write_synced(batch).await.map_err(write_err(ErrorSubject::Logs))
    }
}
