//! The storage engine as the durability model sees it (`server/src/storage`): a write-ahead log
//! in segments, memtables that are frozen and flushed to tables, and what survives a crash.
//!
//! ```text
//!  write(batch, sync) ──► active segment (+ memtable)   synced prefix: durable
//!                             │ freeze: fsync the segment, start a new one
//!                             ▼
//!                         frozen segment (+ frozen memtable)
//!                             │ write table (an orphan until the manifest names it)
//!                             │ install: manifest names the table, the segment is deleted
//!                             ▼
//!                         tables
//! ```
//!
//! A batch is written whole or not at all, and readers see it as soon as it is written (it is in
//! the memtable), fsynced or not. A crash keeps the tables, every fsynced batch, and possibly
//! some of the batches written after the last fsync — the kernel may have written them back —
//! but always a prefix of each segment: the log is cut at the first torn record. Recovery then
//! replays what the log kept (the server replays into one table and writes a manifest; in the
//! model the kept batches simply join the tables). A table written but not named by a manifest
//! is deleted at open, so the model keeps only a flag for it.
//!
//! Compaction rewrites tables without changing what they hold, so it is not modelled.

use crate::durability::shard::{Payload, Put, ShardState};
use std::collections::BTreeMap;

/// One atomic write.
pub type Batch = Vec<Put>;

/// A log segment: its batches and how many of them are fsynced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Segment {
    /// Batches, oldest first.
    pub batches: Vec<Batch>,
    /// Batches `[0, synced)` are durable.
    pub synced: usize,
}

/// What the engine holds, as readers see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Contents {
    /// The Raft log: index → payload.
    pub raft_log: BTreeMap<u8, Payload>,
    /// The shard's state.
    pub shard: ShardState,
}

impl Contents {
    /// The last Raft index in the log (0: empty).
    pub fn last_raft_index(&self) -> u8 {
        self.raft_log.keys().next_back().copied().unwrap_or(0)
    }
}

/// The engine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Engine {
    /// Batches in tables that a manifest names, oldest first.
    pub tables: Vec<Batch>,
    /// The frozen memtable's segment, if one is waiting to be flushed.
    pub frozen: Option<Segment>,
    /// The frozen memtable's table is written but no manifest names it yet.
    pub table_written: bool,
    /// The segment being written.
    pub active: Segment,
}

impl Engine {
    /// Appends `batch` to the active segment; with `sync`, fsyncs the segment (every batch in it
    /// becomes durable).
    pub fn write(&mut self, batch: Batch, sync: bool) {
        self.active.batches.push(batch);
        if sync {
            self.active.synced = self.active.batches.len();
        }
    }

    /// Everything written, in order: what readers see.
    pub fn contents(&self) -> Contents {
        let mut c = Contents::default();
        let frozen = self.frozen.iter().flat_map(|s| &s.batches);
        for put in self.tables.iter().chain(frozen).chain(&self.active.batches).flatten() {
            if let Put::RaftEntry { index, payload } = put {
                c.raft_log.insert(*index, *payload);
            }
            c.shard.put(put);
        }
        c
    }

    /// Freezes the memtable: the active segment becomes the frozen one and a new segment starts.
    /// `sync_old` fsyncs the old segment first, as the server does ("so that only the newest
    /// segment can end in a torn write"). Returns `false` (and does nothing) when there is
    /// nothing to freeze or a frozen memtable is still waiting.
    pub fn freeze(&mut self, sync_old: bool) -> bool {
        if self.active.batches.is_empty() || self.frozen.is_some() {
            return false;
        }
        let mut old = std::mem::take(&mut self.active);
        if sync_old {
            old.synced = old.batches.len();
        }
        self.frozen = Some(old);
        true
    }

    /// Writes the frozen memtable's table (not yet named by the manifest). Returns `false` when
    /// there is nothing to write.
    pub fn write_table(&mut self) -> bool {
        if self.frozen.is_none() || self.table_written {
            return false;
        }
        self.table_written = true;
        true
    }

    /// Writes the manifest that names the written table; the frozen segment is deleted. Returns
    /// `false` when no table is written.
    pub fn install_table(&mut self) -> bool {
        if !self.table_written {
            return false;
        }
        let frozen = self.frozen.take().expect("a written table has a frozen memtable");
        self.tables.extend(frozen.batches);
        self.table_written = false;
        true
    }

    /// What a crash may keep: pairs (batches kept of the frozen segment, batches kept of the
    /// active one), each from its synced prefix up to everything written.
    pub fn crash_outcomes(&self) -> Vec<(usize, usize)> {
        let frozen = self.frozen.as_ref().map_or(0..=0, |s| s.synced..=s.batches.len());
        let active = self.active.synced..=self.active.batches.len();
        frozen.flat_map(|f| active.clone().map(move |a| (f, a))).collect()
    }

    /// The engine after a crash that kept `frozen_kept` and `active_kept` batches (one of
    /// [`Engine::crash_outcomes`]) and the recovery that follows: everything kept is in tables.
    pub fn recover(&self, frozen_kept: usize, active_kept: usize) -> Engine {
        let mut tables = self.tables.clone();
        if let Some(f) = &self.frozen {
            tables.extend(f.batches[..frozen_kept].iter().cloned());
        }
        tables.extend(self.active.batches[..active_kept].iter().cloned());
        Engine { tables, frozen: None, table_written: false, active: Segment::default() }
    }
}
