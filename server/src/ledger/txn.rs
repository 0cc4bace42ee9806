//! A shard's transaction state: the transaction records it keeps as a coordinator's shard, the
//! participant states it keeps as a participant, and the locks of its prepared transactions.
//!
//! The state changes only by applying Raft entries ([`TxnCommand`]), through the pure transitions
//! of [`blockdb_twopc`] (`apply_record_entry`, `apply_participant_entry`), so every replica holds
//! the same state and the model in `spec/` checks the transitions that run here.
//!
//! # What each command does when applied
//!
//! | command | where | effect |
//! |---|---|---|
//! | [`TxnCommand::Apply`] | the only shard of a single-shard transaction | checks, reads and writes in one entry: committed (records and a decision record written) or refused, nothing written |
//! | [`TxnCommand::Begin`] | the coordinator's shard | creates the transaction record, undecided |
//! | [`TxnCommand::Decide`] | the coordinator's shard | the first decision wins; a commit writes the decision record |
//! | [`TxnCommand::Prepare`] | each participant | checks pass and no prepared transaction holds a conflicting lock: prepared (the write set kept, locks held); otherwise aborted |
//! | [`TxnCommand::Finish`] | each participant | applies the decision: a commit writes the records, an abort drops them; the locks go |
//!
//! A transaction's records carry its id in their leaves. A committed transaction's *decision
//! record* is an ordinary record in the coordinator's shard under the reserved key
//! [`blockdb_verifier::txn::decision_key`], holding a [`DecisionRecord`] (the decision and, per
//! participant shard, how many records the transaction wrote there): its proof, with the proofs of
//! the records, is the transaction's receipt.
//!
//! # Locks held by prepared transactions
//!
//! A prepared participant holds a shared lock on each key it checked (read) and an exclusive lock
//! on each key it writes, until it applies the decision. These locks are part of the replicated
//! state: while they are held, applying a single write or a transaction that needs a conflicting
//! lock refuses it (`locked`), and another transaction's `Prepare` aborts it. This is what makes
//! a transaction's checks still true when its decision is applied, whatever the leaders'
//! in-memory lock tables held (they are lost when a leader changes). The leader's lock manager
//! reads these locks too, so that transactions wait for them instead of failing.
//!
//! # Keys in the storage engine (shard `s`, u32 big-endian; `t` the 16-byte transaction id)
//!
//! | key | value |
//! |---|---|
//! | `"T" ‖ s ‖ 0x01 ‖ t` | the transaction record (coordinator's shard), kept for good |
//! | `"T" ‖ s ‖ 0x02 ‖ t` | the participant state, kept for good (a late `Prepare` must find an abort) |
//! | `"T" ‖ s ‖ 0x03 ‖ t` | present while the participant is prepared: found again at start-up |
//! | `"T" ‖ s ‖ 0x04 ‖ t` | present while the record is undecided: found again at start-up |
//!
//! Record value: state (u8: 1 begun, 2 committed, 3 aborted), begin time (u64 ms), participant
//! count (u16), shards (u32 each). Participant value: state (u8: 1 prepared, 2 committed,
//! 3 aborted), and for a prepared one the coordinator's shard (u32), the prepare time (u64 ms), the
//! checks (u32 count; key bytes, version u64 each) and the writes (u32 count; key bytes, value
//! bytes each); bytes are a u32 length and the bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use blockdb_twopc::{
    Decision, ParticipantEntry, ParticipantState, RecordEntry, TxnRecord, Write,
    apply_participant_entry, apply_record_entry,
};
use blockdb_verifier::txn::{DecisionRecord, Participant, TxnDecision};
use blockdb_verifier::{LogIndex, ShardId, TxnId};

use crate::ledger::shard::{ShardError, corrupt};
use crate::storage::Engine;

/// A key that must be at a version (0: the key has none) for the transaction to go on. A
/// transaction's reads are checks too: the version it read must still be the key's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    /// The key.
    pub key: Vec<u8>,
    /// The version it must be at.
    pub version: u64,
}

/// A transaction's Raft entry command.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TxnCommand {
    /// A single-shard transaction in one entry: `checks` must hold, `reads` are read (their
    /// versions are returned), and `writes` append the next version of their keys.
    Apply {
        /// The transaction.
        txn: TxnId,
        /// Keys to read, at the state before the writes.
        reads: Vec<Vec<u8>>,
        /// Preconditions.
        checks: Vec<Check>,
        /// Writes, one per key.
        writes: Vec<Write>,
    },
    /// Create the record of a multi-shard transaction (coordinator's shard).
    Begin {
        /// The transaction.
        txn: TxnId,
        /// Its participant shards, in order.
        participants: Vec<ShardId>,
    },
    /// Decide (coordinator's shard); the first decision wins.
    Decide {
        /// The transaction.
        txn: TxnId,
        /// The decision proposed.
        decision: Decision,
        /// Per participant shard, the records it writes (for the decision record).
        writes: Vec<(ShardId, u32)>,
    },
    /// Prepare this shard's part (participant).
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// The coordinator's shard, which holds the record.
        coordinator: ShardId,
        /// Preconditions and validated reads, locked shared.
        checks: Vec<Check>,
        /// Writes, one per key, locked exclusive.
        writes: Vec<Write>,
    },
    /// Apply the decision (participant).
    Finish {
        /// The transaction.
        txn: TxnId,
        /// The decision.
        decision: Decision,
    },
}

impl TxnCommand {
    /// The transaction.
    pub fn txn(&self) -> TxnId {
        match self {
            TxnCommand::Apply { txn, .. }
            | TxnCommand::Begin { txn, .. }
            | TxnCommand::Decide { txn, .. }
            | TxnCommand::Prepare { txn, .. }
            | TxnCommand::Finish { txn, .. } => *txn,
        }
    }

    /// Bytes of keys and values, about (for batching).
    pub fn bytes(&self) -> usize {
        let checks = |c: &[Check]| c.iter().map(|c| c.key.len() + 8).sum::<usize>();
        let writes = |w: &[Write]| w.iter().map(|w| w.key.len() + w.value.len()).sum::<usize>();
        64 + match self {
            TxnCommand::Apply { reads, checks: c, writes: w, .. } => {
                reads.iter().map(Vec::len).sum::<usize>() + checks(c) + writes(w)
            }
            TxnCommand::Prepare { checks: c, writes: w, .. } => checks(c) + writes(w),
            TxnCommand::Begin { participants, .. } => participants.len() * 4,
            TxnCommand::Decide { writes, .. } => writes.len() * 8,
            TxnCommand::Finish { .. } => 0,
        }
    }
}

/// Why a transaction (or a single write) was refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    /// A key is not at the version the transaction needs.
    Conflict {
        /// The key.
        key: Vec<u8>,
        /// The version needed.
        expected: u64,
        /// The key's version.
        current: u64,
    },
    /// A prepared transaction holds a lock on the key that this one cannot share.
    Locked {
        /// The key.
        key: Vec<u8>,
        /// The transaction holding it.
        holder: TxnId,
    },
}

/// What applying a [`TxnCommand`] produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TxnOutcome {
    /// `Apply` committed: the versions read, the (version, leaf index) of each write, and the
    /// decision record's leaf (none for a transaction that wrote nothing).
    Committed {
        /// Versions read, one per read.
        reads: Vec<u64>,
        /// Per write, its version and leaf.
        writes: Vec<(u64, LogIndex)>,
        /// The decision record's leaf.
        decision: Option<LogIndex>,
    },
    /// `Apply` or `Prepare` refused: nothing written.
    Refused(Refusal),
    /// The command named a transaction this shard had already decided (a repeated `Apply`):
    /// nothing changed.
    AlreadyDecided(Decision),
    /// `Begin` or `Decide`: the record's decision after it (`None`: undecided).
    Record(Option<Decision>),
    /// `Prepare`: the participant is prepared (it votes yes) — or, with `false`, it had been
    /// aborted before (it votes no).
    Prepared(bool),
    /// `Finish`: the participant's decision after it, and for a commit applied now the (version,
    /// leaf index) of each write, in the prepared order (empty for a repeat).
    Finished {
        /// The decision.
        decision: Decision,
        /// The writes.
        writes: Vec<(u64, LogIndex)>,
    },
    /// `Finish` with a decision the participant's state cannot take: a broken protocol
    /// invariant. Nothing changed; the error is logged.
    Contradiction(String),
}

/// A prepared participant, as the lock manager and recovery see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The coordinator's shard.
    pub coordinator: ShardId,
    /// When it was prepared (the leader's commit time of the entry), ms.
    pub time_ms: u64,
    /// Its checks (shared locks).
    pub checks: Vec<Check>,
    /// Its writes (exclusive locks).
    pub writes: Vec<Write>,
}

/// The locks prepared transactions hold on one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLocks {
    /// The transaction holding it exclusively.
    pub writer: Option<TxnId>,
    /// The transactions holding it shared.
    pub readers: BTreeSet<TxnId>,
}

impl KeyLocks {
    /// A holder other than `txn` that keeps `txn` from taking the lock (`exclusive` or shared).
    pub fn conflict(&self, txn: TxnId, exclusive: bool) -> Option<TxnId> {
        if let Some(w) = self.writer.filter(|w| *w != txn) {
            return Some(w);
        }
        if exclusive {
            return self.readers.iter().find(|r| **r != txn).copied();
        }
        None
    }
}

/// The open transactions of a shard, rebuilt from the engine at start-up; replicas that applied
/// the same entries hold the same.
#[derive(Debug, Clone, Default)]
pub struct TxnIndex {
    prepared: BTreeMap<TxnId, Prepared>,
    locks: HashMap<Vec<u8>, KeyLocks>,
    /// Undecided records: their participants and begin time.
    undecided: BTreeMap<TxnId, (Vec<ShardId>, u64)>,
}

impl TxnIndex {
    /// Reads the open transactions of `shard` from `engine`.
    ///
    /// # Errors
    /// Storage errors and corruption.
    pub fn open(engine: &Engine, shard: ShardId) -> Result<TxnIndex, ShardError> {
        let mut index = TxnIndex::default();
        for item in engine.scan_prefix(&txn_key(shard, SUB_OPEN_PREPARED, &[])) {
            let (k, _) = item?;
            let txn = txn_of(&k)?;
            let state = read_participant(engine, shard, txn)?;
            let ParticipantRecord::Prepared(p) = state else {
                return Err(corrupt(&k, "an open marker for a participant that is not prepared"));
            };
            index.add_prepared(txn, p);
        }
        for item in engine.scan_prefix(&txn_key(shard, SUB_OPEN_RECORD, &[])) {
            let (k, _) = item?;
            let txn = txn_of(&k)?;
            match read_record(engine, shard, txn)? {
                Some((TxnRecord::Begun { participants }, time)) => {
                    index.undecided.insert(txn, (participants, time));
                }
                _ => return Err(corrupt(&k, "an open marker for a record that is not undecided")),
            }
        }
        Ok(index)
    }

    /// The locks prepared transactions hold on `key`.
    pub fn locks(&self, key: &[u8]) -> Option<&KeyLocks> {
        self.locks.get(key)
    }

    /// Whether any prepared transaction holds a lock.
    pub fn is_empty(&self) -> bool {
        self.locks.is_empty()
    }

    /// The prepared transactions.
    pub fn prepared(&self) -> &BTreeMap<TxnId, Prepared> {
        &self.prepared
    }

    /// The undecided records: participants and begin time (ms).
    pub fn undecided(&self) -> &BTreeMap<TxnId, (Vec<ShardId>, u64)> {
        &self.undecided
    }

    fn add_prepared(&mut self, txn: TxnId, p: Prepared) {
        for c in &p.checks {
            self.locks.entry(c.key.clone()).or_default().readers.insert(txn);
        }
        for w in &p.writes {
            self.locks.entry(w.key.clone()).or_default().writer = Some(txn);
        }
        self.prepared.insert(txn, p);
    }

    fn remove_prepared(&mut self, txn: TxnId) -> Option<Prepared> {
        let p = self.prepared.remove(&txn)?;
        let keys = p.checks.iter().map(|c| &c.key).chain(p.writes.iter().map(|w| &w.key));
        for key in keys {
            if let Some(l) = self.locks.get_mut(key) {
                l.readers.remove(&txn);
                if l.writer == Some(txn) {
                    l.writer = None;
                }
                if l.writer.is_none() && l.readers.is_empty() {
                    self.locks.remove(key);
                }
            }
        }
        Some(p)
    }

    /// The first lock that keeps `txn` from checking `checks` and writing `writes`.
    pub fn first_conflict<'a>(
        &self,
        txn: TxnId,
        checks: impl IntoIterator<Item = &'a Vec<u8>>,
        writes: impl IntoIterator<Item = &'a Vec<u8>>,
    ) -> Option<Refusal> {
        if self.locks.is_empty() {
            return None;
        }
        let shared = checks.into_iter().map(|k| (k, false));
        let exclusive = writes.into_iter().map(|k| (k, true));
        for (key, x) in shared.chain(exclusive) {
            if let Some(holder) = self.locks.get(key).and_then(|l| l.conflict(txn, x)) {
                return Some(Refusal::Locked { key: key.to_vec(), holder });
            }
        }
        None
    }
}

/// The participant state as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParticipantRecord {
    /// Never prepared.
    Idle,
    /// Prepared.
    Prepared(Prepared),
    /// Committed.
    Committed,
    /// Aborted.
    Aborted,
}

impl ParticipantRecord {
    fn to_protocol(&self) -> ParticipantState {
        match self {
            ParticipantRecord::Idle => ParticipantState::Idle,
            ParticipantRecord::Prepared(p) => {
                ParticipantState::Prepared { writes: p.writes.clone() }
            }
            ParticipantRecord::Committed => ParticipantState::Committed { writes: Vec::new() },
            ParticipantRecord::Aborted => ParticipantState::Aborted,
        }
    }
}

/// What the shard's apply needs from the rest of the batch being staged: the key versions as
/// they will be, and a way to write a record.
pub(crate) trait Stage {
    /// The key's version as it will be once the staged writes land.
    fn version(&mut self, key: &[u8]) -> Result<u64, ShardError>;
    /// Writes the next version of `key` as a leaf of transaction `txn`; returns (version, leaf).
    fn write(
        &mut self,
        key: &[u8],
        value: &[u8],
        txn: TxnId,
    ) -> Result<(u64, LogIndex), ShardError>;
    /// A value of the transaction state as it will be (staged changes first, then the engine).
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, ShardError>;
    /// Stages a change of the transaction state (`None` deletes).
    fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>);
}

/// Applies one transaction command of shard `shard` at the leader's time `time_ms`. `index` is
/// the shard's open-transaction index as it will be once the batch lands; it is changed along.
pub(crate) fn apply(
    shard: ShardId,
    command: &TxnCommand,
    time_ms: u64,
    index: &mut TxnIndex,
    stage: &mut impl Stage,
) -> Result<TxnOutcome, ShardError> {
    match command {
        TxnCommand::Apply { txn, reads, checks, writes } => {
            apply_one_round(shard, *txn, reads, checks, writes, time_ms, index, stage)
        }
        TxnCommand::Begin { txn, participants } => {
            let before = staged_record(stage, shard, *txn)?;
            let entry = RecordEntry::Begin { participants: participants.clone() };
            let after = apply_record_entry(before.as_ref().map(|(r, _)| r), &entry);
            if before.is_none() {
                store_record(stage, shard, *txn, &after, time_ms);
                if after.decision().is_none() {
                    index.undecided.insert(*txn, (participants.clone(), time_ms));
                }
            }
            Ok(TxnOutcome::Record(after.decision()))
        }
        TxnCommand::Decide { txn, decision, writes } => {
            let before = staged_record(stage, shard, *txn)?;
            let entry = RecordEntry::Decide { decision: *decision };
            let after = apply_record_entry(before.as_ref().map(|(r, _)| r), &entry);
            let newly = before.as_ref().is_none_or(|(r, _)| r.decision().is_none());
            if newly {
                let time = before.as_ref().map_or(time_ms, |(_, t)| *t);
                store_record(stage, shard, *txn, &after, time);
                index.undecided.remove(txn);
                if after.decision() == Some(Decision::Commit) {
                    let participants = writes
                        .iter()
                        .map(|(shard, writes)| Participant { shard: *shard, writes: *writes })
                        .collect();
                    write_decision(stage, shard, *txn, participants)?;
                }
            }
            Ok(TxnOutcome::Record(after.decision()))
        }
        TxnCommand::Prepare { txn, coordinator, checks, writes } => {
            let state = staged_participant(stage, shard, *txn)?;
            if state != ParticipantRecord::Idle {
                // A repeat: the state stays as it is, and says how to vote.
                let yes =
                    matches!(state, ParticipantRecord::Prepared(_) | ParticipantRecord::Committed);
                return Ok(TxnOutcome::Prepared(yes));
            }
            let refusal = match index.first_conflict(
                *txn,
                checks.iter().map(|c| &c.key),
                writes.iter().map(|w| &w.key),
            ) {
                Some(r) => Some(r),
                None => first_failed_check(stage, checks)?,
            };
            if let Some(refusal) = refusal {
                let entry = ParticipantEntry::Decide { decision: Decision::Abort };
                debug_assert_eq!(
                    apply_participant_entry(&ParticipantState::Idle, &entry),
                    Ok(ParticipantState::Aborted)
                );
                store_participant(stage, shard, *txn, &ParticipantRecord::Aborted);
                return Ok(TxnOutcome::Refused(refusal));
            }
            let entry = ParticipantEntry::Prepare { writes: writes.clone() };
            let after = apply_participant_entry(&ParticipantState::Idle, &entry);
            debug_assert!(matches!(after, Ok(ParticipantState::Prepared { .. })));
            let p = Prepared {
                coordinator: *coordinator,
                time_ms,
                checks: checks.clone(),
                writes: writes.clone(),
            };
            let record = ParticipantRecord::Prepared(p.clone());
            store_participant(stage, shard, *txn, &record);
            stage.set(txn_key(shard, SUB_OPEN_PREPARED, &txn.0), Some(Vec::new()));
            index.add_prepared(*txn, p);
            Ok(TxnOutcome::Prepared(true))
        }
        TxnCommand::Finish { txn, decision } => {
            let state = staged_participant(stage, shard, *txn)?;
            let entry = ParticipantEntry::Decide { decision: *decision };
            let after = match apply_participant_entry(&state.to_protocol(), &entry) {
                Ok(after) => after,
                Err(e) => {
                    tracing::error!(shard = shard.0, txn = %txn, "{e}");
                    return Ok(TxnOutcome::Contradiction(e.to_string()));
                }
            };
            let ParticipantRecord::Prepared(p) = state else {
                // A repeat, or an abort of a participant that never prepared (which must now
                // stay aborted even if its Prepare comes later).
                if state == ParticipantRecord::Idle {
                    store_participant(stage, shard, *txn, &ParticipantRecord::Aborted);
                }
                let decision = after.decision().unwrap_or(*decision);
                return Ok(TxnOutcome::Finished { decision, writes: Vec::new() });
            };
            index.remove_prepared(*txn);
            stage.set(txn_key(shard, SUB_OPEN_PREPARED, &txn.0), None);
            let mut positions = Vec::new();
            let record = match decision {
                Decision::Commit => {
                    for w in &p.writes {
                        positions.push(stage.write(&w.key, &w.value, *txn)?);
                    }
                    ParticipantRecord::Committed
                }
                Decision::Abort => ParticipantRecord::Aborted,
            };
            store_participant(stage, shard, *txn, &record);
            Ok(TxnOutcome::Finished { decision: *decision, writes: positions })
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_one_round(
    shard: ShardId,
    txn: TxnId,
    reads: &[Vec<u8>],
    checks: &[Check],
    writes: &[Write],
    time_ms: u64,
    index: &TxnIndex,
    stage: &mut impl Stage,
) -> Result<TxnOutcome, ShardError> {
    if let Some(d) = staged_record(stage, shard, txn)?.and_then(|(r, _)| r.decision()) {
        return Ok(TxnOutcome::AlreadyDecided(d));
    }
    let shared = reads.iter().chain(checks.iter().map(|c| &c.key));
    let refusal = match index.first_conflict(txn, shared, writes.iter().map(|w| &w.key)) {
        Some(r) => Some(r),
        None => first_failed_check(stage, checks)?,
    };
    if let Some(refusal) = refusal {
        if !writes.is_empty() {
            let aborted =
                TxnRecord::Decided { participants: vec![shard], decision: Decision::Abort };
            store_record(stage, shard, txn, &aborted, time_ms);
        }
        return Ok(TxnOutcome::Refused(refusal));
    }
    let mut read_versions = Vec::with_capacity(reads.len());
    for key in reads {
        read_versions.push(stage.version(key)?);
    }
    if writes.is_empty() {
        return Ok(TxnOutcome::Committed {
            reads: read_versions,
            writes: Vec::new(),
            decision: None,
        });
    }
    let mut positions = Vec::with_capacity(writes.len());
    for w in writes {
        positions.push(stage.write(&w.key, &w.value, txn)?);
    }
    let count = u32::try_from(writes.len())
        .map_err(|_| ShardError::Invalid("too many writes in one transaction".into()))?;
    let decision = write_decision(stage, shard, txn, vec![Participant { shard, writes: count }])?;
    let committed = TxnRecord::Decided { participants: vec![shard], decision: Decision::Commit };
    store_record(stage, shard, txn, &committed, time_ms);
    Ok(TxnOutcome::Committed { reads: read_versions, writes: positions, decision: Some(decision) })
}

fn first_failed_check(
    stage: &mut impl Stage,
    checks: &[Check],
) -> Result<Option<Refusal>, ShardError> {
    for c in checks {
        let current = stage.version(&c.key)?;
        if current != c.version {
            return Ok(Some(Refusal::Conflict {
                key: c.key.clone(),
                expected: c.version,
                current,
            }));
        }
    }
    Ok(None)
}

fn write_decision(
    stage: &mut impl Stage,
    shard: ShardId,
    txn: TxnId,
    mut participants: Vec<Participant>,
) -> Result<LogIndex, ShardError> {
    participants.sort_by_key(|p| p.shard);
    let record = DecisionRecord { decision: TxnDecision::Commit, participants };
    let value = record.encode().map_err(|e| ShardError::Invalid(e.to_string()))?;
    let key = blockdb_verifier::txn::decision_key(shard, txn);
    let (version, index) = stage.write(&key, &value, txn)?;
    if version != 1 {
        // Transaction ids are unique and a decision is written once: anything else is a bug.
        return Err(ShardError::Invalid(format!(
            "the decision record of transaction {txn} would be version {version}"
        )));
    }
    Ok(index)
}

const TAG: u8 = b'T';
const SUB_RECORD: u8 = 1;
const SUB_PARTICIPANT: u8 = 2;
const SUB_OPEN_PREPARED: u8 = 3;
const SUB_OPEN_RECORD: u8 = 4;

fn txn_key(shard: ShardId, sub: u8, txn: &[u8]) -> Vec<u8> {
    let mut k = vec![TAG];
    k.extend_from_slice(&shard.0.to_be_bytes());
    k.push(sub);
    k.extend_from_slice(txn);
    k
}

fn txn_of(key: &[u8]) -> Result<TxnId, ShardError> {
    key.get(6..)
        .and_then(|t| <[u8; 16]>::try_from(t).ok())
        .map(TxnId)
        .ok_or_else(|| corrupt(key, "not a transaction key"))
}

/// The record of `txn` in `shard` with its begin time, as stored (staged writes of the same
/// batch included).
fn staged_record(
    stage: &mut impl Stage,
    shard: ShardId,
    txn: TxnId,
) -> Result<Option<(TxnRecord, u64)>, ShardError> {
    let key = txn_key(shard, SUB_RECORD, &txn.0);
    match staged_get(stage, &key)? {
        None => Ok(None),
        Some(v) => decode_record(&v).map(Some).ok_or_else(|| corrupt(&key, "transaction record")),
    }
}

fn staged_participant(
    stage: &mut impl Stage,
    shard: ShardId,
    txn: TxnId,
) -> Result<ParticipantRecord, ShardError> {
    let key = txn_key(shard, SUB_PARTICIPANT, &txn.0);
    match staged_get(stage, &key)? {
        None => Ok(ParticipantRecord::Idle),
        Some(v) => decode_participant(&v).ok_or_else(|| corrupt(&key, "participant state")),
    }
}

fn staged_get(stage: &mut impl Stage, key: &[u8]) -> Result<Option<Vec<u8>>, ShardError> {
    stage.get(key)
}

/// The record of `txn` in `shard` with its begin time.
///
/// # Errors
/// Storage errors and corruption.
pub fn read_record(
    engine: &Engine,
    shard: ShardId,
    txn: TxnId,
) -> Result<Option<(TxnRecord, u64)>, ShardError> {
    let key = txn_key(shard, SUB_RECORD, &txn.0);
    match engine.get(&key)? {
        None => Ok(None),
        Some(v) => decode_record(&v).map(Some).ok_or_else(|| corrupt(&key, "transaction record")),
    }
}

/// The participant state of `txn` in `shard`.
///
/// # Errors
/// Storage errors and corruption.
pub fn read_participant(
    engine: &Engine,
    shard: ShardId,
    txn: TxnId,
) -> Result<ParticipantRecord, ShardError> {
    let key = txn_key(shard, SUB_PARTICIPANT, &txn.0);
    match engine.get(&key)? {
        None => Ok(ParticipantRecord::Idle),
        Some(v) => decode_participant(&v).ok_or_else(|| corrupt(&key, "participant state")),
    }
}

fn store_record(stage: &mut impl Stage, shard: ShardId, txn: TxnId, r: &TxnRecord, time: u64) {
    let state = match r.decision() {
        None => 1u8,
        Some(Decision::Commit) => 2,
        Some(Decision::Abort) => 3,
    };
    let mut v = vec![state];
    v.extend_from_slice(&time.to_be_bytes());
    let count = u16::try_from(r.participants().len()).unwrap_or(u16::MAX);
    v.extend_from_slice(&count.to_be_bytes());
    for s in r.participants().iter().take(usize::from(count)) {
        v.extend_from_slice(&s.0.to_be_bytes());
    }
    stage.set(txn_key(shard, SUB_RECORD, &txn.0), Some(v));
    stage.set(txn_key(shard, SUB_OPEN_RECORD, &txn.0), (state == 1).then(Vec::new));
}

fn decode_record(v: &[u8]) -> Option<(TxnRecord, u64)> {
    let mut r = Reader(v);
    let state = r.u8()?;
    let time = r.u64()?;
    let count = r.u16()?;
    let mut participants = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        participants.push(ShardId(r.u32()?));
    }
    if !r.0.is_empty() {
        return None;
    }
    let record = match state {
        1 => TxnRecord::Begun { participants },
        2 => TxnRecord::Decided { participants, decision: Decision::Commit },
        3 => TxnRecord::Decided { participants, decision: Decision::Abort },
        _ => return None,
    };
    Some((record, time))
}

fn store_participant(stage: &mut impl Stage, shard: ShardId, txn: TxnId, p: &ParticipantRecord) {
    let mut v = Vec::new();
    match p {
        ParticipantRecord::Idle => return,
        ParticipantRecord::Prepared(p) => {
            v.push(1);
            v.extend_from_slice(&p.coordinator.0.to_be_bytes());
            v.extend_from_slice(&p.time_ms.to_be_bytes());
            v.extend_from_slice(&(p.checks.len() as u32).to_be_bytes());
            for c in &p.checks {
                put_bytes(&mut v, &c.key);
                v.extend_from_slice(&c.version.to_be_bytes());
            }
            v.extend_from_slice(&(p.writes.len() as u32).to_be_bytes());
            for w in &p.writes {
                put_bytes(&mut v, &w.key);
                put_bytes(&mut v, &w.value);
            }
        }
        ParticipantRecord::Committed => v.push(2),
        ParticipantRecord::Aborted => v.push(3),
    }
    stage.set(txn_key(shard, SUB_PARTICIPANT, &txn.0), Some(v));
}

fn decode_participant(v: &[u8]) -> Option<ParticipantRecord> {
    let mut r = Reader(v);
    let p = match r.u8()? {
        1 => {
            let coordinator = ShardId(r.u32()?);
            let time_ms = r.u64()?;
            let n = r.u32()?;
            let mut checks = Vec::new();
            for _ in 0..n {
                let key = r.bytes()?.to_vec();
                checks.push(Check { key, version: r.u64()? });
            }
            let n = r.u32()?;
            let mut writes = Vec::new();
            for _ in 0..n {
                let key = r.bytes()?.to_vec();
                writes.push(Write { key, value: r.bytes()?.to_vec() });
            }
            ParticipantRecord::Prepared(Prepared { coordinator, time_ms, checks, writes })
        }
        2 => ParticipantRecord::Committed,
        3 => ParticipantRecord::Aborted,
        _ => return None,
    };
    r.0.is_empty().then_some(p)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}
