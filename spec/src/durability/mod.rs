//! Model of the state machine's durability: Raft log writes, apply, memtable flush, persistence
//! of the applied index, a crash at any step, and Raft replay (DESIGN.md, "Storage engine";
//! `server/src/raft/log_store.rs`, `server/src/raft/state_machine.rs`,
//! `server/src/ledger/shard.rs`).
//!
//! # Actors and state
//!
//! One node, one shard; the node's Raft log and its state machine share one storage
//! [`engine`]. What the model follows from the server:
//!
//! - The Raft log store writes each append as one **fsynced** batch, and only then reports it
//!   flushed; the entry is then committed (one node is a majority of itself).
//! - The state machine applies committed entries in order. Each entry's records, the applied
//!   index and the tree size go into **one batch, not fsynced**: the entry is durable in the Raft
//!   log, so losing the batch in a crash only means replaying the entry.
//! - The client is answered after the apply ([`DurabilityState::acked`]).
//! - The memtable is frozen (its segment fsynced first) and flushed to a table in two steps (the
//!   table, then the manifest that names it).
//! - A crash keeps each log segment up to some point at or after its fsynced prefix (see
//!   [`engine`]); recovery replays the log; the state machine opens at the applied index it
//!   finds in the engine; a new leader appends a blank entry; Raft replays the committed entries
//!   above the applied index.
//!
//! What is left out: replication to other nodes and log truncation by a new leader (openraft's
//! part, checked by its authors), snapshots and log purging, compaction (it does not change what
//! the tables hold).
//!
//! # Actions
//!
//! [`Submit`](DurabilityAction::Submit) (the leader appends a client's write to its log in
//! memory), [`WriteLog`](DurabilityAction::WriteLog) (the log store writes the oldest pending
//! entry), [`Apply`](DurabilityAction::Apply) (the state machine applies the next committed
//! entry and answers its client), [`Freeze`](DurabilityAction::Freeze),
//! [`WriteTable`](DurabilityAction::WriteTable), [`InstallTable`](DurabilityAction::InstallTable)
//! (a flush, step by step), and [`Crash`](DurabilityAction::Crash) with every choice of what the
//! log segments keep, followed by recovery and the restart.
//!
//! # Properties
//!
//! - `always` **after recovery the state equals applying exactly the committed prefix**: at every
//!   step (between applies), the shard state in the engine equals the [`shard::reference`] state
//!   of the Raft log's entries `1..=applied`, where `applied` is the index the state machine
//!   reports, and the engine's own applied index is that one too.
//! - `always` **no acknowledged write is lost**: every write the client was answered for is in
//!   the Raft log, and once applied again its record is in the state as the client was told.
//! - `always` **replay completes (bounded liveness)**: in every state where nothing more can
//!   happen (every path of this finite model ends in one), every entry of the Raft log is applied
//!   and no entry waits to be written.
//! - `sometimes`: a write is acknowledged; a crash cuts an unsynced tail; a crash loses an
//!   applied entry that Raft replays; a crash recovers from a flushed table; an acknowledged write
//!   survives a crash and is applied again; and, when the writes include one that conflicts, a
//!   write is refused by a conflict.
//!
//! # Bounds
//!
//! [`DurabilityConfig::ci`]: two client writes (an insert and a compare-and-append), two crashes
//! (about 55 000 states); [`DurabilityConfig::ci_conflict`]: a third write, which conflicts, and
//! one crash (about 40 000). [`DurabilityConfig::explore`]: three writes, two crashes (about
//! 490 000).
//!
//! # Broken variants ([`DurabilityBug`])
//!
//! - [`DurabilityBug::AppliedIndexBeforeState`]: the applied index is written in its own batch
//!   before the records. A crash between the two leaves an applied index that describes records
//!   the engine does not hold: **the state equals the committed prefix** fails.
//! - [`DurabilityBug::ReplaySkips`]: after a restart the state machine takes the Raft log's last
//!   index as its applied index, skipping the replay of entries whose apply was lost: **the state
//!   equals the committed prefix** fails.
//! - [`DurabilityBug::AckBeforeLogSync`]: the log store reports an append flushed without an
//!   fsync: a crash loses an answered write: **no acknowledged write is lost** fails.
//! - [`DurabilityBug::FreezeWithoutSync`]: freezing the memtable does not fsync the old segment,
//!   so a crash can cut the old segment's tail while a later batch in the new segment survives:
//!   **the state equals the committed prefix** fails.
//!
//! # Exploring
//!
//! `cargo run -p blockdb-spec -- explore durability` (add `--bug replay-skips` to see a
//! counterexample).

pub mod engine;
pub mod shard;

use std::collections::{BTreeMap, BTreeSet};

use stateright::{Model, Property};

use crate::check::is_quiescent;
use engine::{Batch, Engine};
use shard::{Command, Outcome, Payload, Put, reference, stage_entry};

/// A deliberate bug, to show that the checker finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DurabilityBug {
    /// The applied index is written in a batch of its own, before the records.
    AppliedIndexBeforeState,
    /// A restarted state machine starts at the Raft log's last index instead of its own applied
    /// index.
    ReplaySkips,
    /// The Raft log store reports an append flushed before it is fsynced.
    AckBeforeLogSync,
    /// Freezing the memtable does not fsync the old log segment.
    FreezeWithoutSync,
}

/// The bounds and variant of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurabilityConfig {
    /// The client's writes, submitted in order.
    pub writes: Vec<Command>,
    /// Crashes.
    pub crashes: u8,
    /// A deliberate bug, or `None` for the server as written.
    pub bug: Option<DurabilityBug>,
}

impl DurabilityConfig {
    /// The bounds checked in `cargo test`.
    pub fn ci() -> DurabilityConfig {
        DurabilityConfig {
            writes: vec![
                Command::Insert { key: 1, value: 1 },
                Command::Append { key: 1, value: 2, expected_version: Some(1) },
            ],
            crashes: 2,
            bug: None,
        }
    }

    /// The second bounds checked in `cargo test`: a third write, which conflicts, and one crash.
    pub fn ci_conflict() -> DurabilityConfig {
        DurabilityConfig { crashes: 1, ..DurabilityConfig::explore() }
    }

    /// Larger bounds for the explorer: a third write, which conflicts.
    pub fn explore() -> DurabilityConfig {
        let mut c = DurabilityConfig::ci();
        c.writes.push(Command::Insert { key: 1, value: 3 });
        c
    }
}

/// The durability model.
#[derive(Clone, Debug)]
pub struct Durability {
    config: DurabilityConfig,
}

impl Durability {
    /// The model with these bounds.
    pub fn new(config: DurabilityConfig) -> Durability {
        Durability { config }
    }

    /// The configuration.
    pub fn config(&self) -> &DurabilityConfig {
        &self.config
    }
}

/// History for the properties; no actor sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// The highest Raft index ever applied.
    pub high_water: u8,
    /// An entry was applied a second time, after a crash lost its first apply.
    pub replayed: bool,
    /// A crash cut batches that were written but not fsynced.
    pub torn: bool,
    /// A crash happened with a flushed table in the engine.
    pub recovered_from_table: bool,
    /// A crash happened after a write was acknowledged.
    pub crashed_after_ack: bool,
}

/// A state of the durability model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DurabilityState {
    /// The storage engine (durable in parts, see [`engine`]).
    pub engine: Engine,
    /// Writes submitted by the client so far (it does not resubmit after a crash).
    pub submitted: u8,
    /// Entries appended to the Raft log in memory, not yet written (volatile).
    pub pending: Vec<(u8, Payload)>,
    /// The state machine's applied index (volatile; read from the engine at open).
    pub applied: u8,
    /// With [`DurabilityBug::AppliedIndexBeforeState`]: the second half of an apply, not yet
    /// written (volatile).
    pub unfinished: Option<(u8, Batch)>,
    /// Raft indexes of writes whose client waits for an answer (volatile: a crash drops the
    /// connection, and the client is left not knowing).
    pub waiting: BTreeSet<u8>,
    /// Writes the client was answered for: Raft index → what it was told.
    pub acked: BTreeMap<u8, Outcome>,
    /// Crashes so far.
    pub crashes: u8,
    /// History.
    pub ghost: Ghost,
}

impl DurabilityState {
    /// The last index of the Raft log, written or pending.
    pub fn last_raft_index(&self) -> u8 {
        let written = self.engine.contents().last_raft_index();
        self.pending.last().map_or(written, |(i, _)| (*i).max(written))
    }
}

/// An action of the durability model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DurabilityAction {
    /// The client's next write is appended to the Raft log in memory.
    Submit,
    /// The log store writes the oldest pending entry.
    WriteLog,
    /// The state machine applies the next committed entry.
    Apply,
    /// The second half of a split apply ([`DurabilityBug::AppliedIndexBeforeState`]).
    FinishApply,
    /// The memtable is frozen.
    Freeze,
    /// The frozen memtable's table is written.
    WriteTable,
    /// The manifest naming the table is written.
    InstallTable,
    /// The node crashes; the frozen and active segments keep this many batches; then recovery
    /// and restart.
    Crash {
        /// Batches the frozen segment keeps.
        frozen_kept: usize,
        /// Batches the active segment keeps.
        active_kept: usize,
    },
}

impl Durability {
    /// Whether one of the writes, applied in order, conflicts.
    fn has_conflict(&self) -> bool {
        let log: BTreeMap<u8, Payload> =
            (1..).zip(self.config.writes.iter().map(|w| Payload::Write(*w))).collect();
        let mut state = shard::ShardState::default();
        log.iter().any(|(index, payload)| {
            let (puts, outcome) = stage_entry(&state, *index, payload);
            puts.iter().for_each(|p| state.put(p));
            matches!(outcome, Some(Outcome::Conflict { .. }))
        })
    }

    fn has(&self, bug: DurabilityBug) -> bool {
        self.config.bug == Some(bug)
    }

    fn apply(&self, s: &mut DurabilityState) -> Option<()> {
        if s.unfinished.is_some() {
            return None;
        }
        let contents = s.engine.contents();
        let index = s.applied + 1;
        let payload = contents.raft_log.get(&index)?;
        let (puts, outcome) = stage_entry(&contents.shard, index, payload);
        if self.has(DurabilityBug::AppliedIndexBeforeState) {
            let (applied, records): (Batch, Batch) =
                puts.into_iter().partition(|p| matches!(p, Put::Applied { .. }));
            s.engine.write(applied, false);
            s.unfinished = Some((index, records));
            return Some(());
        }
        // One batch, not fsynced: the entry is durable in the Raft log.
        s.engine.write(puts, false);
        self.applied(s, index, outcome);
        Some(())
    }

    /// The apply of entry `index` is written: the state machine moves and answers the client.
    fn applied(&self, s: &mut DurabilityState, index: u8, outcome: Option<Outcome>) {
        s.applied = index;
        if index <= s.ghost.high_water {
            s.ghost.replayed = true;
        }
        s.ghost.high_water = s.ghost.high_water.max(index);
        if let Some(outcome) = outcome
            && s.waiting.remove(&index)
        {
            s.acked.insert(index, outcome);
        }
    }

    fn crash(&self, s: &mut DurabilityState, frozen_kept: usize, active_kept: usize) {
        s.crashes += 1;
        s.ghost.torn |= active_kept < s.engine.active.batches.len()
            || s.engine.frozen.as_ref().is_some_and(|f| frozen_kept < f.batches.len());
        s.ghost.recovered_from_table |= !s.engine.tables.is_empty();
        s.ghost.crashed_after_ack |= !s.acked.is_empty();
        s.engine = s.engine.recover(frozen_kept, active_kept);
        s.pending.clear();
        s.waiting.clear();
        s.unfinished = None;
        let contents = s.engine.contents();
        s.applied = if self.has(DurabilityBug::ReplaySkips) {
            contents.last_raft_index()
        } else {
            contents.shard.applied_index()
        };
        // The restarted node is elected and appends a blank entry, as openraft's leaders do.
        s.pending.push((contents.last_raft_index() + 1, Payload::Blank));
    }
}

impl Model for Durability {
    type State = DurabilityState;
    type Action = DurabilityAction;

    fn init_states(&self) -> Vec<DurabilityState> {
        vec![DurabilityState {
            engine: Engine::default(),
            submitted: 0,
            pending: Vec::new(),
            applied: 0,
            unfinished: None,
            waiting: BTreeSet::new(),
            acked: BTreeMap::new(),
            crashes: 0,
            ghost: Ghost::default(),
        }]
    }

    fn actions(&self, s: &DurabilityState, actions: &mut Vec<DurabilityAction>) {
        actions.extend([
            DurabilityAction::Submit,
            DurabilityAction::WriteLog,
            DurabilityAction::Apply,
            DurabilityAction::FinishApply,
            DurabilityAction::Freeze,
            DurabilityAction::WriteTable,
            DurabilityAction::InstallTable,
        ]);
        if s.crashes < self.config.crashes {
            for (frozen_kept, active_kept) in s.engine.crash_outcomes() {
                actions.push(DurabilityAction::Crash { frozen_kept, active_kept });
            }
        }
    }

    fn next_state(
        &self,
        last: &DurabilityState,
        action: DurabilityAction,
    ) -> Option<DurabilityState> {
        let mut s = last.clone();
        match action {
            DurabilityAction::Submit => {
                let write = *self.config.writes.get(usize::from(s.submitted))?;
                let index = s.last_raft_index() + 1;
                s.pending.push((index, Payload::Write(write)));
                s.waiting.insert(index);
                s.submitted += 1;
            }
            DurabilityAction::WriteLog => {
                if s.pending.is_empty() {
                    return None;
                }
                let (index, payload) = s.pending.remove(0);
                let sync = !self.has(DurabilityBug::AckBeforeLogSync);
                s.engine.write(vec![Put::RaftEntry { index, payload }], sync);
            }
            DurabilityAction::Apply => self.apply(&mut s)?,
            DurabilityAction::FinishApply => {
                let (index, records) = s.unfinished.take()?;
                let outcome = match records.first() {
                    Some(Put::Record { version, log_index, .. }) => {
                        Some(Outcome::Committed { version: *version, log_index: *log_index })
                    }
                    _ => None,
                };
                s.engine.write(records, false);
                self.applied(&mut s, index, outcome);
            }
            DurabilityAction::Freeze => {
                if !s.engine.freeze(!self.has(DurabilityBug::FreezeWithoutSync)) {
                    return None;
                }
            }
            DurabilityAction::WriteTable => {
                if !s.engine.write_table() {
                    return None;
                }
            }
            DurabilityAction::InstallTable => {
                if !s.engine.install_table() {
                    return None;
                }
            }
            DurabilityAction::Crash { frozen_kept, active_kept } => {
                self.crash(&mut s, frozen_kept, active_kept);
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Durability>> {
        let mut properties = vec![
            Property::always(
                "after recovery the state equals applying exactly the committed prefix",
                |_, s: &DurabilityState| {
                    if s.unfinished.is_some() {
                        return true;
                    }
                    let contents = s.engine.contents();
                    reference(&contents.raft_log, s.applied).is_some_and(|r| r == contents.shard)
                },
            ),
            Property::always(
                "no acknowledged write is lost",
                |m: &Durability, s: &DurabilityState| {
                    let contents = s.engine.contents();
                    s.acked.iter().all(|(index, outcome)| {
                        let Some(Payload::Write(command)) = contents.raft_log.get(index) else {
                            return false;
                        };
                        let submitted = m.config.writes.contains(command);
                        let present = match (command, outcome) {
                            (
                                Command::Insert { key, value } | Command::Append { key, value, .. },
                                Outcome::Committed { version, log_index },
                            ) => {
                                contents.shard.records.get(&(*key, *version))
                                    == Some(&(*log_index, *value))
                            }
                            (_, Outcome::Conflict { .. }) => true,
                        };
                        submitted && (contents.shard.applied_index() < *index || present)
                    })
                },
            ),
            Property::always(
                "replay completes once nothing more can happen (bounded liveness)",
                |m: &Durability, s: &DurabilityState| {
                    !is_quiescent(m, s)
                        || (s.pending.is_empty()
                            && s.applied == s.engine.contents().last_raft_index())
                },
            ),
            Property::sometimes("a write is acknowledged", |_, s: &DurabilityState| {
                s.acked.values().any(|o| matches!(o, Outcome::Committed { .. }))
            }),
            Property::sometimes("a crash cuts an unsynced tail", |_, s: &DurabilityState| {
                s.ghost.torn
            }),
            Property::sometimes(
                "a crash loses an applied entry that Raft replays",
                |_, s: &DurabilityState| s.ghost.replayed,
            ),
            Property::sometimes(
                "a crash recovers from a flushed table",
                |_, s: &DurabilityState| s.ghost.recovered_from_table,
            ),
            Property::sometimes(
                "an acknowledged write survives a crash and is applied again",
                |_, s: &DurabilityState| {
                    s.ghost.crashed_after_ack
                        && s.ghost.replayed
                        && s.acked.keys().all(|i| *i <= s.applied)
                },
            ),
        ];
        if self.has_conflict() {
            properties.push(Property::sometimes(
                "a write is refused by a conflict",
                |_, s: &DurabilityState| {
                    s.acked.values().any(|o| matches!(o, Outcome::Conflict { .. }))
                },
            ));
        }
        properties
    }
}
