//! Iterators that combine sources: a merge of sorted sources, a level read table by table, and the
//! user-facing scan that turns internal entries into the visible `(key, value)` pairs of a
//! snapshot.
//!
//! ```text
//!  memtable ─┐
//!  frozen   ─┤
//!  L0 table ─┼─► MergeIter ─► ScanIter (snapshot, bounds, newest version, no tombstones)
//!  L1 level ─┤  (LevelIter over the level's tables)
//!  ...      ─┘
//! ```

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

use crate::storage::error::{Result, corruption};
use crate::storage::iter::InternalIterator;
use crate::storage::key::{self, SeqNo, ValueKind};
use crate::storage::sstable::TableIter;
use crate::storage::version::TableHandle;

/// A boxed source of entries.
pub(crate) type BoxedIter = Box<dyn InternalIterator + Send>;

/// The merge of several sorted sources. Sources are given newest first; two entries with equal
/// keys (which the engine never writes) would come out newest source first.
pub(crate) struct MergeIter {
    children: Vec<BoxedIter>,
    current: Option<usize>,
}

impl std::fmt::Debug for MergeIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MergeIter({} sources)", self.children.len())
    }
}

impl MergeIter {
    pub(crate) fn new(children: Vec<BoxedIter>) -> MergeIter {
        MergeIter { children, current: None }
    }

    /// Picks the child with the smallest key. The engine merges a handful of sources (memtables,
    /// level-0 tables, one iterator per deeper level), so a linear scan beats a heap.
    fn pick(&mut self) {
        let mut best: Option<usize> = None;
        for (i, c) in self.children.iter().enumerate() {
            if !c.valid() {
                continue;
            }
            best = match best {
                Some(b) if key::compare(self.children[b].key(), c.key()) != Ordering::Greater => {
                    Some(b)
                }
                _ => Some(i),
            };
        }
        self.current = best;
    }
}

impl InternalIterator for MergeIter {
    fn seek_to_first(&mut self) -> Result<()> {
        for c in &mut self.children {
            c.seek_to_first()?;
        }
        self.pick();
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        for c in &mut self.children {
            c.seek(target)?;
        }
        self.pick();
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let i = self.current.expect("next requires a valid iterator");
        self.children[i].next()?;
        self.pick();
        Ok(())
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        self.children[self.current.expect("valid")].key()
    }

    fn value(&self) -> &[u8] {
        self.children[self.current.expect("valid")].value()
    }
}

/// The tables of one sorted, non-overlapping level, read one after the other; a table is opened
/// for iteration only when the scan reaches it.
pub(crate) struct LevelIter {
    tables: Vec<Arc<TableHandle>>,
    index: usize,
    current: Option<TableIter>,
}

impl std::fmt::Debug for LevelIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LevelIter({} tables, at {})", self.tables.len(), self.index)
    }
}

impl LevelIter {
    pub(crate) fn new(tables: Vec<Arc<TableHandle>>) -> LevelIter {
        LevelIter { tables, index: 0, current: None }
    }

    /// Moves on to later tables while the current one is exhausted.
    fn skip_exhausted(&mut self) -> Result<()> {
        while self.current.as_ref().is_some_and(|c| !c.valid()) {
            self.index += 1;
            match self.tables.get(self.index) {
                Some(t) => {
                    let mut it = t.table.iter();
                    it.seek_to_first()?;
                    self.current = Some(it);
                }
                None => self.current = None,
            }
        }
        Ok(())
    }

    fn open_at(&mut self, index: usize) -> Option<&mut TableIter> {
        self.index = index;
        self.current = self.tables.get(index).map(|t| t.table.iter());
        self.current.as_mut()
    }
}

impl InternalIterator for LevelIter {
    fn seek_to_first(&mut self) -> Result<()> {
        if let Some(it) = self.open_at(0) {
            it.seek_to_first()?;
        }
        self.skip_exhausted()
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let i = self
            .tables
            .partition_point(|t| key::compare(&t.meta.largest, target) == Ordering::Less);
        if let Some(it) = self.open_at(i) {
            it.seek(target)?;
        }
        self.skip_exhausted()
    }

    fn next(&mut self) -> Result<()> {
        self.current.as_mut().expect("next requires a valid iterator").next()?;
        self.skip_exhausted()
    }

    fn valid(&self) -> bool {
        self.current.as_ref().is_some_and(|c| c.valid())
    }

    fn key(&self) -> &[u8] {
        self.current.as_ref().expect("valid").key()
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().expect("valid").value()
    }
}

/// The visible records of a snapshot in a key range: for each user key its newest version at
/// the snapshot, tombstones left out. It holds what it reads (memtables, tables) alive.
pub struct ScanIter {
    inner: MergeIter,
    snapshot: SeqNo,
    end: Bound<Vec<u8>>,
    started: bool,
    start: Bound<Vec<u8>>,
    done: bool,
    /// Keeps the sources (and the registered snapshot, if any) alive while the scan runs.
    _pins: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for ScanIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScanIter(snapshot {}, {:?})", self.snapshot, self.inner)
    }
}

impl ScanIter {
    pub(crate) fn new(
        inner: MergeIter,
        snapshot: SeqNo,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        pins: Vec<Box<dyn std::any::Any + Send + Sync>>,
    ) -> ScanIter {
        ScanIter { inner, snapshot, end, started: false, start, done: false, _pins: pins }
    }

    fn position(&mut self) -> Result<()> {
        match &self.start {
            Bound::Unbounded => self.inner.seek_to_first(),
            Bound::Included(k) => self.inner.seek(&key::seek_key(k, key::SEQNO_MAX)),
            Bound::Excluded(k) => {
                // Seek past every version of `k`: version 0 with the smallest kind sorts last.
                let last = key::encode(k, SeqNo(0), ValueKind::Delete);
                self.inner.seek(&last)?;
                if self.inner.valid() && key::compare(self.inner.key(), &last) == Ordering::Equal {
                    self.inner.next()?;
                }
                Ok(())
            }
        }
    }

    fn past_end(&self, user_key: &[u8]) -> bool {
        match &self.end {
            Bound::Unbounded => false,
            Bound::Included(e) => user_key > e.as_slice(),
            Bound::Excluded(e) => user_key >= e.as_slice(),
        }
    }

    fn step(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if !self.started {
            self.started = true;
            self.position()?;
        }
        while self.inner.valid() {
            let parsed = key::parse(self.inner.key())
                .ok_or_else(|| corruption("<scan>", 0, "an entry has a malformed internal key"))?;
            if self.past_end(parsed.user_key) {
                return Ok(None);
            }
            if parsed.seqno > self.snapshot {
                self.inner.next()?;
                continue;
            }
            let user_key = parsed.user_key.to_vec();
            let kind = parsed.kind;
            let value = (kind == ValueKind::Put).then(|| self.inner.value().to_vec());
            // Skip the older versions of this key.
            self.inner.next()?;
            while self.inner.valid() && key::user_key(self.inner.key()) == user_key.as_slice() {
                self.inner.next()?;
            }
            if let Some(value) = value {
                return Ok(Some((user_key, value)));
            }
        }
        Ok(None)
    }
}

impl Iterator for ScanIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(kv)) => Some(Ok(kv)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
