//! Group commit: concurrent writers share one log write and one fsync.
//!
//! Writers queue up. The writer at the front is the leader: it takes the batches queued behind
//! it (up to `group_commit_bytes`), gives them consecutive sequence numbers, appends them to the
//! write-ahead log as one record, inserts them into the memtable, publishes the last sequence
//! number, and wakes the others with their results. Then the next writer in the queue leads.
//! Only the leader touches the log and freezes memtables, so neither needs more locking.
//!
//! The fsync is not part of leading: a writer that asked for durability waits, after its group
//! is appended, until an fsync covers it ([`crate::storage::sync`]), while the next groups are
//! appended. Writers that wait at once share one fsync, and a write that did not ask for
//! durability is never held up by another's. So a durable write is visible to reads a moment
//! before it is durable — as every non-durable write is — but returns only once it is; and since
//! the log is replayed in order, a crash can lose only a suffix of the writes that had not
//! returned.
//!
//! A failed log write or fsync stops all writes: after a failed fsync the kernel may have dropped
//! the dirty pages, so what the file holds is unknown, and carrying on could acknowledge a write
//! that a crash then loses. Reopening recovers from what is on disk.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

use crate::storage::batch::WriteBatch;
use crate::storage::engine::{Inner, SuperVersion};
use crate::storage::error::{Result, StorageError};
use crate::storage::key::SeqNo;
use crate::storage::memtable::MemTable;
use crate::storage::sync::Position;
use crate::storage::wal::{self, WalWriter};

/// The log writer and sequence counter, used by the leader only.
#[derive(Debug)]
pub(crate) struct LeaderState {
    pub(crate) wal: WalWriter,
    pub(crate) last_seqno: SeqNo,
}

#[derive(Debug)]
enum Op {
    Write(WriteBatch, bool),
    /// Freeze the memtable (for `flush` and `checkpoint`).
    Rotate,
}

/// What the leader did with a slot's write: its last sequence number, and where the log ended
/// after the group that held it (what an fsync must cover for it to be durable).
type Written = (SeqNo, Position);

#[derive(Debug)]
struct Slot {
    op: Op,
    result: Mutex<Option<Result<Written>>>,
}

/// The queue of waiting writers.
#[derive(Debug)]
pub(crate) struct WriteQueue {
    slots: Mutex<VecDeque<Arc<Slot>>>,
    cv: Condvar,
}

impl WriteQueue {
    pub(crate) fn new() -> WriteQueue {
        WriteQueue { slots: Mutex::new(VecDeque::new()), cv: Condvar::new() }
    }
}

/// Writes `batch` through the group commit; see the module docs.
pub(crate) fn write(inner: &Inner, batch: WriteBatch, sync: bool) -> Result<SeqNo> {
    submit(inner, Op::Write(batch, sync))
}

/// Freezes the current memtable (if it holds anything) so that it gets flushed.
pub(crate) fn rotate(inner: &Inner) -> Result<()> {
    submit(inner, Op::Rotate).map(|_| ())
}

fn submit(inner: &Inner, op: Op) -> Result<SeqNo> {
    let sync = matches!(op, Op::Write(_, true));
    let (seqno, end) = write_in_group(inner, op)?;
    if sync {
        match inner.syncer.sync_through(end) {
            Ok(synced) => inner.lock_state().stats.wal_syncs += u64::from(synced),
            Err(e) => {
                stop(inner, &e);
                return Err(e);
            }
        }
    }
    Ok(seqno)
}

/// Queues `op`, leads its group if it comes to the front, and returns what was written.
fn write_in_group(inner: &Inner, op: Op) -> Result<Written> {
    let slot = Arc::new(Slot { op, result: Mutex::new(None) });
    let q = &inner.queue;
    let mut slots = q.slots.lock().unwrap_or_else(|p| p.into_inner());
    slots.push_back(slot.clone());
    loop {
        if let Some(r) = slot.result.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return r;
        }
        if slots.front().is_some_and(|f| Arc::ptr_eq(f, &slot)) {
            break;
        }
        slots = q.cv.wait(slots).unwrap_or_else(|p| p.into_inner());
    }
    let group = take_group(&slots, inner.options.group_commit_bytes);
    drop(slots);

    let result = lead(inner, &group);

    let mut slots = q.slots.lock().unwrap_or_else(|p| p.into_inner());
    let own = match result {
        Ok(written) => {
            for (s, w) in group.iter().zip(&written).skip(1) {
                *s.result.lock().unwrap_or_else(|p| p.into_inner()) = Some(Ok(*w));
            }
            Ok(written[0])
        }
        Err(e) => {
            let message = e.to_string();
            for s in group.iter().skip(1) {
                *s.result.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Err(StorageError::Poisoned(message.clone())));
            }
            Err(e)
        }
    };
    for _ in 0..group.len() {
        slots.pop_front();
    }
    q.cv.notify_all();
    own
}

/// The leader's group: itself, and the writes queued behind it up to `bytes_max`. A rotation is
/// always a group of its own.
fn take_group(slots: &VecDeque<Arc<Slot>>, bytes_max: usize) -> Vec<Arc<Slot>> {
    let first = slots.front().expect("the leader is in the queue").clone();
    if matches!(first.op, Op::Rotate) {
        return vec![first];
    }
    let mut bytes = 0;
    let mut group = Vec::new();
    for s in slots {
        match &s.op {
            Op::Write(b, _) if group.is_empty() || bytes + b.encoded_len() <= bytes_max => {
                bytes += b.encoded_len();
                group.push(s.clone());
            }
            _ => break,
        }
    }
    group
}

/// Appends a group to the log and makes it visible; returns what was written for each slot. The
/// fsync is left to the writers that want one ([`submit`]).
fn lead(inner: &Inner, group: &[Arc<Slot>]) -> Result<Vec<Written>> {
    if let Some(why) = &inner.lock_state().stopped {
        return Err(StorageError::Poisoned(why.clone()));
    }
    let mut leader = inner.leader.lock().unwrap_or_else(|p| p.into_inner());
    let end = |leader: &LeaderState| (leader.wal.number(), leader.wal.len());
    if matches!(group[0].op, Op::Rotate) {
        if !inner.current().mem.is_empty() {
            freeze_memtable(inner, &mut leader)?;
        }
        return Ok(vec![(leader.last_seqno, end(&leader))]);
    }
    make_room(inner, &mut leader)?;

    let mut payload = Vec::new();
    let mut seqnos = Vec::with_capacity(group.len());
    let mut next = leader.last_seqno;
    let mut user_bytes = 0u64;
    for s in group {
        let Op::Write(batch, _) = &s.op else { unreachable!("a rotation is a group alone") };
        if !batch.is_empty() {
            batch.encode_into(SeqNo(next.0 + 1), &mut payload);
            next = SeqNo(next.0 + batch.len() as u64);
            user_bytes += batch.ops().map(|(_, k, v)| (k.len() + v.len()) as u64).sum::<u64>();
        }
        seqnos.push(next);
    }
    if payload.is_empty() {
        let at = end(&leader);
        return Ok(seqnos.into_iter().map(|s| (s, at)).collect());
    }
    let mut framed = Vec::with_capacity(payload.len() + wal::HEADER_LEN);
    wal::frame_into(&mut framed, &payload);
    if let Err(e) = leader.wal.append(&framed) {
        stop(inner, &e);
        return Err(e);
    }
    let at = end(&leader);
    inner.syncer.appended(at);
    // The group is in the log (durable once an fsync covers `at`); now make it visible.
    let mem = inner.current().mem.clone();
    let mut seqno = leader.last_seqno;
    for s in group {
        let Op::Write(batch, _) = &s.op else { continue };
        for (kind, key, value) in batch.ops() {
            seqno = SeqNo(seqno.0 + 1);
            mem.insert(key, seqno, kind, value);
        }
    }
    debug_assert_eq!(seqno, next);
    leader.last_seqno = next;
    inner.visible.store(next.0, std::sync::atomic::Ordering::Release);
    let mut st = inner.lock_state();
    st.stats.user_bytes += user_bytes;
    st.stats.wal_bytes += framed.len() as u64;
    Ok(seqnos.into_iter().map(|s| (s, at)).collect())
}

/// Records the error that stops writes.
pub(crate) fn stop(inner: &Inner, e: &StorageError) {
    let mut st = inner.lock_state();
    if st.stopped.is_none() {
        st.stopped = Some(e.to_string());
    }
    inner.state_cv.notify_all();
}

/// Waits while the engine is behind (too many frozen memtables or level-0 tables), and freezes
/// the memtable when it is full.
fn make_room(inner: &Inner, leader: &mut LeaderState) -> Result<()> {
    let options = &inner.options;
    let mut st = inner.lock_state();
    loop {
        if let Some(why) = &st.stopped {
            return Err(StorageError::Poisoned(why.clone()));
        }
        let sv = inner.current();
        let full = sv.mem.approximate_bytes() >= options.memtable_bytes;
        let l0 = sv.version.levels.first().map_or(0, Vec::len);
        if l0 >= options.l0_stop_writes || (full && sv.imm.len() >= options.max_frozen_memtables) {
            // Bounded: the background thread makes progress or records an error that stops us.
            st = inner.state_cv.wait(st).unwrap_or_else(|p| p.into_inner());
            continue;
        }
        if !full {
            return Ok(());
        }
        drop(st);
        return freeze_memtable(inner, leader);
    }
}

/// Starts a new log segment and memtable; the old memtable joins the frozen ones.
fn freeze_memtable(inner: &Inner, leader: &mut LeaderState) -> Result<()> {
    // The old segment is made durable first, so that only the newest segment can end in a torn
    // write (recovery relies on it), and so that every position in it is durable from now on.
    if let Err(e) = leader.wal.sync() {
        stop(inner, &e);
        return Err(e);
    }
    let old_end = (leader.wal.number(), leader.wal.len());
    let number = inner.lock_state().allocate_file_number();
    let wal = match WalWriter::create(&inner.dir, number, wal::PREALLOCATE_BYTES) {
        Ok(w) => w,
        Err(e) => {
            stop(inner, &e);
            return Err(e);
        }
    };
    // Crash point: the new segment exists but is empty; recovery replays both segments.
    if let Err(e) = inner.syncer.switched(old_end, &wal) {
        stop(inner, &e);
        return Err(e);
    }
    leader.wal = wal;
    {
        let _replacing = inner.lock_current();
        let old = inner.current.load_full();
        let mut imm = Vec::with_capacity(old.imm.len() + 1);
        imm.push(old.mem.clone());
        imm.extend(old.imm.iter().cloned());
        inner.current.store(Arc::new(SuperVersion {
            mem: Arc::new(MemTable::new(number)),
            imm,
            version: old.version.clone(),
        }));
    }
    // Waiters check `current` while holding the state lock. Taking that lock once after the
    // store, before notifying, means every waiter either saw the new memtable or is already
    // waiting and gets the notification; notifying without it lost the wakeup of a background
    // thread that had just found nothing to flush, and `Engine::flush` then waited forever (a
    // hang of the storage model test under CPU contention found it).
    drop(inner.lock_state());
    inner.state_cv.notify_all();
    Ok(())
}
