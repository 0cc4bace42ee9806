//! Leveled compaction: which tables to merge, and the merge.
//!
//! # Why leveled
//!
//! Level 0 holds flushed memtables, which may overlap; every deeper level is one sorted run of
//! non-overlapping tables, each level `level_multiplier` (10) times the size of the one above. A
//! point read then looks at the memtables, the few level-0 tables, and at most one table per
//! deeper level, most of them skipped by their Bloom filter; and space amplification stays near
//! 1.1×, because at most a tenth of the data can be old versions waiting in upper levels. The cost
//! is write amplification (a record is rewritten about once per level), which a ledger accepts:
//! it is read and proven far more than it is written, and it must keep its disk footprint
//! predictable. Size-tiered compaction would write less but let reads probe many overlapping runs
//! and let space grow to twice the data between merges.
//!
//! # Choosing
//!
//! Level 0 is compacted into level 1 (all of it, with the level-1 tables it overlaps) once it has
//! `l0_compaction_trigger` tables. Otherwise the deeper level most over its target size gives one
//! table, taken round-robin through its key space, to be merged with the tables it overlaps in
//! the next level.
//!
//! # Merging
//!
//! The merge keeps, for each user key, every version that some snapshot can still see: a version
//! is dropped only when a newer version of the same key is visible to every live snapshot. A
//! tombstone is dropped when every snapshot sees it and no deeper level holds the key's range.
//! Output tables are cut only between user keys, so that a key's versions never straddle two
//! tables of a level (levels must not overlap in user keys).

use std::cmp::Ordering;
use std::sync::Arc;

use crate::storage::engine::{Inner, State, meta_of, table_path};
use crate::storage::error::{Result, StorageError, corruption};
use crate::storage::iter::InternalIterator;
use crate::storage::key::{self, SeqNo, ValueKind};
use crate::storage::merge::{BoxedIter, LevelIter, MergeIter};
use crate::storage::options::Options;
use crate::storage::sstable::{Table, TableWriter};
use crate::storage::version::{TableHandle, Version};

/// A chosen compaction: `inputs` from `level` merged with `next_inputs` from `level + 1`.
#[derive(Debug)]
pub(crate) struct Compaction {
    pub(crate) level: usize,
    pub(crate) inputs: Vec<Arc<TableHandle>>,
    pub(crate) next_inputs: Vec<Arc<TableHandle>>,
    /// No level below `level + 1` holds any key in the compaction's range.
    pub(crate) bottommost: bool,
}

/// The compaction due now, if any.
pub(crate) fn pick(version: &Version, options: &Options, state: &State) -> Option<Compaction> {
    let levels = &version.levels;
    let last = levels.len().checked_sub(1)?;
    let (level, inputs) = if levels[0].len() >= options.l0_compaction_trigger && last >= 1 {
        (0, levels[0].clone())
    } else {
        let (level, score) = (1..last)
            .map(|l| (l, version.level_bytes(l) as f64 / options.level_target_bytes(l) as f64))
            .max_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(Ordering::Equal))?;
        if score <= 1.0 {
            return None;
        }
        let pointer = state.compact_pointer.get(level).map_or(&[][..], Vec::as_slice);
        let tables = &levels[level];
        let t = tables
            .iter()
            .find(|t| t.largest_user_key() > pointer)
            .or_else(|| tables.first())?
            .clone();
        (level, vec![t])
    };
    let begin = inputs.iter().map(|t| t.smallest_user_key()).min()?.to_vec();
    let end = inputs.iter().map(|t| t.largest_user_key()).max()?.to_vec();
    let next_inputs: Vec<_> =
        levels[level + 1].iter().filter(|t| t.overlaps(&begin, &end)).cloned().collect();
    let bottommost = levels[level + 2..].iter().flatten().all(|t| !t.overlaps(&begin, &end));
    Some(Compaction { level, inputs, next_inputs, bottommost })
}

/// Merges the compaction's tables into new tables for `level + 1`.
pub(crate) fn run(
    inner: &Inner,
    c: &Compaction,
    smallest_snapshot: SeqNo,
) -> Result<Vec<Arc<TableHandle>>> {
    let mut children: Vec<BoxedIter> = Vec::new();
    if c.level == 0 {
        for t in &c.inputs {
            children.push(Box::new(t.table.iter()));
        }
    } else {
        children.push(Box::new(LevelIter::new(c.inputs.clone())));
    }
    children.push(Box::new(LevelIter::new(c.next_inputs.clone())));
    let mut merged = MergeIter::new(children);
    merged.seek_to_first()?;

    let mut out = Output { inner, outputs: Vec::new(), writer: None };
    let result = merge_into(inner, &mut merged, &mut out, c.bottommost, smallest_snapshot);
    match result.and_then(|()| out.finish_current()) {
        Ok(()) => Ok(out.outputs),
        Err(e) => {
            // Leave no partial output behind: nothing names these files yet.
            out.abandon();
            Err(e)
        }
    }
}

/// Entries merged between checks that the engine is not closing.
const CLOSE_CHECK_INTERVAL: u64 = 64 * 1024;

fn merge_into(
    inner: &Inner,
    merged: &mut MergeIter,
    out: &mut Output<'_>,
    bottommost: bool,
    smallest_snapshot: SeqNo,
) -> Result<()> {
    let mut current_key: Vec<u8> = Vec::new();
    let mut newer_seqno: Option<SeqNo> = None;
    let mut merged_entries = 0u64;
    while merged.valid() {
        merged_entries += 1;
        if merged_entries.is_multiple_of(CLOSE_CHECK_INTERVAL) && inner.lock_state().closing {
            // A long compaction does not hold up closing: its outputs are abandoned and its
            // inputs stay the live tables.
            return Err(StorageError::Closed);
        }
        let parsed = key::parse(merged.key())
            .ok_or_else(|| corruption("<compaction input>", 0, "malformed internal key"))?;
        if newer_seqno.is_none() || parsed.user_key != current_key.as_slice() {
            current_key.clear();
            current_key.extend_from_slice(parsed.user_key);
            newer_seqno = None;
        }
        // Hidden from every snapshot by a newer version that every snapshot sees.
        let shadowed = newer_seqno.is_some_and(|n| n <= smallest_snapshot);
        let dead_tombstone =
            parsed.kind == ValueKind::Delete && parsed.seqno <= smallest_snapshot && bottommost;
        newer_seqno = Some(parsed.seqno);
        if !shadowed && !dead_tombstone {
            out.add(merged.key(), merged.value(), parsed.user_key)?;
        }
        merged.next()?;
    }
    Ok(())
}

struct Output<'a> {
    inner: &'a Inner,
    outputs: Vec<Arc<TableHandle>>,
    writer: Option<(u64, TableWriter, u64, Vec<u8>)>,
}

impl Output<'_> {
    fn add(&mut self, key: &[u8], value: &[u8], user_key: &[u8]) -> Result<()> {
        let target = self.inner.options.target_table_bytes;
        if let Some((_, _, bytes, last_user_key)) = &self.writer
            && *bytes >= target
            && last_user_key.as_slice() != user_key
        {
            self.finish_current()?;
        }
        if self.writer.is_none() {
            let id = self.inner.lock_state().allocate_file_number();
            let path = table_path(&self.inner.dir, id);
            let w = TableWriter::create(&path, &self.inner.options.table)?;
            self.writer = Some((id, w, 0, Vec::new()));
        }
        let (_, w, bytes, last) = self.writer.as_mut().expect("created above");
        w.add(key, value)?;
        *bytes += (key.len() + value.len()) as u64;
        last.clear();
        last.extend_from_slice(user_key);
        Ok(())
    }

    fn finish_current(&mut self) -> Result<()> {
        let Some((id, w, _, _)) = self.writer.take() else { return Ok(()) };
        let info = w.finish()?;
        let path = table_path(&self.inner.dir, id);
        let table = Table::open(&path, id, self.inner.cache.clone())?;
        self.outputs.push(Arc::new(TableHandle::new(meta_of(id, &info), Arc::new(table), path)));
        Ok(())
    }

    fn abandon(self) {
        if let Some((id, w, _, _)) = self.writer {
            drop(w);
            let _ = std::fs::remove_file(table_path(&self.inner.dir, id));
        }
        for t in &self.outputs {
            t.mark_obsolete();
        }
    }
}

/// The version after the compaction: inputs removed, outputs in `level + 1` in key order.
pub(crate) fn apply(version: &Version, c: &Compaction, outputs: &[Arc<TableHandle>]) -> Version {
    let removed = |t: &Arc<TableHandle>| {
        c.inputs.iter().chain(&c.next_inputs).any(|i| i.meta.id == t.meta.id)
    };
    let mut levels: Vec<Vec<Arc<TableHandle>>> = version
        .levels
        .iter()
        .map(|l| l.iter().filter(|t| !removed(t)).cloned().collect())
        .collect();
    let next = &mut levels[c.level + 1];
    next.extend(outputs.iter().cloned());
    next.sort_by(|a, b| a.smallest_user_key().cmp(b.smallest_user_key()));
    debug_assert!(
        next.windows(2).all(|w| w[0].largest_user_key() < w[1].smallest_user_key()),
        "tables of a level below 0 never overlap"
    );
    Version { levels }
}
