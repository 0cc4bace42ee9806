//! The memtable: recent writes, in memory, in internal-key order.
//!
//! A lock-free skip list (`crossbeam-skiplist`), so that readers never wait for the writer: the
//! group-commit leader inserts a whole group, then publishes the group's last sequence number;
//! readers read at a published sequence number and so never see part of a batch. When the
//! memtable reaches its size bound it is frozen (no more inserts) and flushed to a table while a
//! new one takes writes.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};

use crossbeam_skiplist::SkipMap;

use crate::storage::error::Result;
use crate::storage::iter::InternalIterator;
use crate::storage::key::{self, SeqNo, ValueKind};

/// Per-entry bytes counted on top of key and value: skip-list node and allocation overhead.
const ENTRY_OVERHEAD: usize = 64;
/// Entries an iterator copies out of the skip list at a time.
const ITER_CHUNK: usize = 64;

/// An encoded internal key ordered by [`key::compare`], with the first 8 bytes of its user key
/// kept beside it as a number.
///
/// Most comparisons in the skip list are decided by `head` alone, without following the pointer
/// to the key's bytes: a cache miss saved at every node a search passes, which is most of the
/// cost of an insert. `head` orders like the bytes: the user key's first 8 bytes, big-endian,
/// zero-padded; when two heads differ, the first differing byte decides both orders the same way
/// (a zero pad against a nonzero byte is a shorter key against a longer one), and equal heads
/// fall back to the full comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemKey {
    head: u64,
    key: Vec<u8>,
}

impl MemKey {
    fn new(encoded: Vec<u8>) -> MemKey {
        MemKey { head: head_of(key::user_key(&encoded)), key: encoded }
    }

    /// Replaces the key, reusing its buffer.
    fn set(&mut self, user_key: &[u8], seqno: SeqNo, kind: ValueKind) {
        self.key.clear();
        key::encode_into(&mut self.key, user_key, seqno, kind);
        self.head = head_of(user_key);
    }
}

fn head_of(user_key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = user_key.len().min(8);
    b[..n].copy_from_slice(&user_key[..n]);
    u64::from_be_bytes(b)
}

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.head.cmp(&other.head).then_with(|| key::compare(&self.key, &other.key))
    }
}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A key and value copied out of the memtable.
type Entry = (Vec<u8>, Box<[u8]>);

thread_local! {
    /// The seek key of [`MemTable::get`], reused so that a lookup allocates nothing.
    static SEEK_KEY: RefCell<MemKey> = const { RefCell::new(MemKey { head: 0, key: Vec::new() }) };
}

/// Recent writes in memory.
#[derive(Debug)]
pub(crate) struct MemTable {
    map: SkipMap<MemKey, Box<[u8]>>,
    approximate_bytes: AtomicUsize,
    max_seqno: AtomicU64,
    /// The WAL segment that holds this memtable's writes.
    wal_number: u64,
}

impl MemTable {
    /// An empty memtable whose writes are logged in WAL segment `wal_number`.
    pub(crate) fn new(wal_number: u64) -> MemTable {
        MemTable {
            map: SkipMap::new(),
            approximate_bytes: AtomicUsize::new(0),
            max_seqno: AtomicU64::new(0),
            wal_number,
        }
    }

    /// The WAL segment holding this memtable's writes.
    pub(crate) fn wal_number(&self) -> u64 {
        self.wal_number
    }

    /// Inserts one write. Each (key, seqno) is inserted once.
    pub(crate) fn insert(&self, user_key: &[u8], seqno: SeqNo, kind: ValueKind, value: &[u8]) {
        let k = key::encode(user_key, seqno, kind);
        self.approximate_bytes
            .fetch_add(k.len() + value.len() + ENTRY_OVERHEAD, AtomicOrdering::Relaxed);
        self.max_seqno.fetch_max(seqno.0, AtomicOrdering::Relaxed);
        self.map.insert(MemKey::new(k), value.into());
    }

    /// The largest sequence number inserted (0 for an empty memtable).
    pub(crate) fn max_seqno(&self) -> SeqNo {
        SeqNo(self.max_seqno.load(AtomicOrdering::Relaxed))
    }

    /// Memory used, approximately.
    pub(crate) fn approximate_bytes(&self) -> usize {
        self.approximate_bytes.load(AtomicOrdering::Relaxed)
    }

    /// Whether nothing was inserted.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The newest entry of `user_key` with a sequence number at most `snapshot`.
    pub(crate) fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Option<(ValueKind, Vec<u8>)> {
        if self.map.is_empty() {
            return None;
        }
        SEEK_KEY.with(|seek| {
            let mut seek = seek.borrow_mut();
            seek.set(user_key, snapshot, ValueKind::Put);
            let entry = self.map.lower_bound(Bound::Included(&*seek))?;
            let parsed = key::parse(&entry.key().key).expect("memtable keys are encoded by insert");
            (parsed.user_key == user_key).then(|| (parsed.kind, entry.value().to_vec()))
        })
    }

    /// Calls `f` with every entry in order, without copying (for a flush).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        for e in self.map.iter() {
            f(&e.key().key, e.value())?;
        }
        Ok(())
    }

    /// Copies up to `ITER_CHUNK` entries from `start` on.
    fn chunk(&self, start: Bound<&MemKey>, out: &mut Vec<Entry>) {
        out.clear();
        let mut range = self.map.range((start, Bound::Unbounded));
        while out.len() < ITER_CHUNK {
            match range.next() {
                Some(e) => out.push((e.key().key.clone(), e.value().clone())),
                None => break,
            }
        }
    }
}

/// A cursor over a memtable. It copies entries out a chunk at a time, so it holds no borrow of
/// the skip list and can live as long as its `Arc`.
#[derive(Debug)]
pub(crate) struct MemTableIter {
    table: std::sync::Arc<MemTable>,
    buf: Vec<Entry>,
    pos: usize,
}

impl MemTableIter {
    pub(crate) fn new(table: std::sync::Arc<MemTable>) -> MemTableIter {
        MemTableIter { table, buf: Vec::new(), pos: 0 }
    }

    fn fill(&mut self, start: Bound<&MemKey>) {
        let mut buf = std::mem::take(&mut self.buf);
        self.table.chunk(start, &mut buf);
        self.buf = buf;
        self.pos = 0;
    }
}

impl InternalIterator for MemTableIter {
    fn seek_to_first(&mut self) -> Result<()> {
        self.fill(Bound::Unbounded);
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let target = MemKey::new(target.to_vec());
        self.fill(Bound::Included(&target));
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        self.pos += 1;
        if self.pos == self.buf.len() && self.buf.len() == ITER_CHUNK {
            let last = MemKey::new(self.buf[ITER_CHUNK - 1].0.clone());
            self.fill(Bound::Excluded(&last));
        }
        Ok(())
    }

    fn valid(&self) -> bool {
        self.pos < self.buf.len()
    }

    fn key(&self) -> &[u8] {
        &self.buf[self.pos].0
    }

    fn value(&self) -> &[u8] {
        &self.buf[self.pos].1
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn get_sees_the_newest_visible_version() {
        let m = MemTable::new(1);
        m.insert(b"k", SeqNo(3), ValueKind::Put, b"three");
        m.insert(b"k", SeqNo(5), ValueKind::Delete, b"");
        m.insert(b"k", SeqNo(8), ValueKind::Put, b"eight");
        m.insert(b"kk", SeqNo(4), ValueKind::Put, b"other");
        assert_eq!(m.get(b"k", SeqNo(2)), None);
        assert_eq!(m.get(b"k", SeqNo(3)), Some((ValueKind::Put, b"three".to_vec())));
        assert_eq!(m.get(b"k", SeqNo(6)), Some((ValueKind::Delete, vec![])));
        assert_eq!(m.get(b"k", SeqNo(100)), Some((ValueKind::Put, b"eight".to_vec())));
        assert_eq!(m.get(b"j", SeqNo(100)), None);
        assert_eq!(m.get(b"kk", SeqNo(3)), None);
    }

    #[test]
    fn head_order_agrees_with_key_compare() {
        let keys: Vec<&[u8]> = vec![
            b"a",
            b"a\0",
            b"a\0\0",
            b"ab",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefghi",
            b"abcdefgg\xff",
            b"\xff",
            b"\0",
            b"\0\0\0\0\0\0\0\0\x01",
            b"b",
        ];
        for a in &keys {
            for b in &keys {
                for (sa, sb) in [(1, 1), (1, 2), (2, 1)] {
                    let ka = key::encode(a, SeqNo(sa), ValueKind::Put);
                    let kb = key::encode(b, SeqNo(sb), ValueKind::Put);
                    let want = key::compare(&ka, &kb);
                    assert_eq!(MemKey::new(ka).cmp(&MemKey::new(kb)), want, "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn iteration_crosses_chunks_in_order() {
        let m = Arc::new(MemTable::new(1));
        for i in 0..500u32 {
            m.insert(&i.to_be_bytes(), SeqNo(u64::from(i) + 1), ValueKind::Put, &i.to_le_bytes());
        }
        let mut it = MemTableIter::new(m.clone());
        it.seek_to_first().expect("seek");
        let mut n = 0u32;
        while it.valid() {
            assert_eq!(key::user_key(it.key()), n.to_be_bytes());
            assert_eq!(it.value(), n.to_le_bytes());
            n += 1;
            it.next().expect("next");
        }
        assert_eq!(n, 500);
        it.seek(&key::seek_key(&250u32.to_be_bytes(), SeqNo(1000))).expect("seek");
        assert_eq!(key::user_key(it.key()), 250u32.to_be_bytes());
    }
}
