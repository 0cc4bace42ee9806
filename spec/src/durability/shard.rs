//! A shard's apply step as a pure function over a small state: what `Shard::stage_entry` in
//! `server/src/ledger/shard.rs` puts into its write batch for one Raft entry, with one-byte keys
//! and values and no hashing (the tree is reduced to its size, which is all that recovery has to
//! get right: the leaves themselves are in the batch with the records).
//!
//! This is a transcription, not shared code: the server's apply writes straight into a storage
//! write batch. What it keeps from the server, rule for rule: an entry at or below the applied
//! index is skipped (replay after a crash); `Insert` is an append that expects version 0; a
//! version mismatch is a `Conflict` that writes no record but still moves the applied index; a
//! committed record gets the next version of its key and the next log index; and the applied
//! index is in the same batch as the records it describes.

use std::collections::BTreeMap;

/// A client write, as a Raft entry carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Command {
    /// Create `key` at version 1; refused if the key has a version.
    Insert {
        /// The key.
        key: u8,
        /// The value.
        value: u8,
    },
    /// Add the next version of `key`, only at `expected_version` if given.
    Append {
        /// The key.
        key: u8,
        /// The value.
        value: u8,
        /// The version the key must be at (0: none yet).
        expected_version: Option<u64>,
    },
}

/// What a Raft entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Payload {
    /// The blank entry a new leader appends (openraft does, at every election).
    Blank,
    /// A client write.
    Write(Command),
}

/// The outcome of a write, as the client is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Committed at `version`, as leaf `log_index`.
    Committed {
        /// The record's version.
        version: u64,
        /// Its leaf's position in the log.
        log_index: u64,
    },
    /// Refused: the key was at version `current`.
    Conflict {
        /// The key's version.
        current: u64,
    },
}

/// One key-value write into the storage engine, by what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Put {
    /// A Raft log entry (key `"G" ‖ shard ‖ index`, with the last log id beside it).
    RaftEntry {
        /// Its Raft index (from 1 in the model).
        index: u8,
        /// What it carries.
        payload: Payload,
    },
    /// A record and its leaf (keys `"R"` and `"E"`).
    Record {
        /// The key.
        key: u8,
        /// Its version.
        version: u64,
        /// Its leaf's position in the log.
        log_index: u64,
        /// The value.
        value: u8,
    },
    /// A key's latest version (key `"V"`).
    Latest {
        /// The key.
        key: u8,
        /// The version.
        version: u64,
    },
    /// The applied Raft index and the tree size (key `"A"`, with the state machine's metadata).
    Applied {
        /// The last applied Raft index.
        index: u8,
        /// The tree size after it.
        tree_size: u64,
    },
}

/// The shard's state as read from the engine: what the state machine opens with, and what
/// readers see.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ShardState {
    /// The applied Raft index and tree size, if any entry was applied.
    pub applied: Option<(u8, u64)>,
    /// Records: `(key, version) → (log index, value)`.
    pub records: BTreeMap<(u8, u64), (u64, u8)>,
    /// Latest version of each key.
    pub latest: BTreeMap<u8, u64>,
}

impl ShardState {
    /// The applied Raft index (0: none).
    pub fn applied_index(&self) -> u8 {
        self.applied.map_or(0, |(i, _)| i)
    }

    /// The tree size.
    pub fn tree_size(&self) -> u64 {
        self.applied.map_or(0, |(_, s)| s)
    }

    /// Folds one put into the state (the shard's keys; Raft entries are elsewhere).
    pub fn put(&mut self, put: &Put) {
        match *put {
            Put::RaftEntry { .. } => {}
            Put::Record { key, version, log_index, value } => {
                self.records.insert((key, version), (log_index, value));
            }
            Put::Latest { key, version } => {
                self.latest.insert(key, version);
            }
            Put::Applied { index, tree_size } => self.applied = Some((index, tree_size)),
        }
    }
}

/// The puts that apply Raft entry `index` carrying `payload` to `state`, and the write's outcome
/// (`None` for a blank entry). An entry at or below the applied index gives no puts at all.
pub fn stage_entry(
    state: &ShardState,
    index: u8,
    payload: &Payload,
) -> (Vec<Put>, Option<Outcome>) {
    if index <= state.applied_index() {
        return (Vec::new(), None);
    }
    let mut tree_size = state.tree_size();
    let mut puts = Vec::new();
    let outcome = match *payload {
        Payload::Blank => None,
        Payload::Write(command) => {
            let (key, value, expected) = match command {
                Command::Insert { key, value } => (key, value, Some(0)),
                Command::Append { key, value, expected_version } => (key, value, expected_version),
            };
            let current = state.latest.get(&key).copied().unwrap_or(0);
            if expected.is_some_and(|e| e != current) {
                Some(Outcome::Conflict { current })
            } else {
                let version = current + 1;
                let log_index = tree_size;
                puts.push(Put::Record { key, version, log_index, value });
                puts.push(Put::Latest { key, version });
                tree_size += 1;
                Some(Outcome::Committed { version, log_index })
            }
        }
    };
    puts.push(Put::Applied { index, tree_size });
    (puts, outcome)
}

/// The state after applying Raft entries `1..=upto` of `log` to an empty shard, the reference
/// that recovery must reproduce; `None` if the log lacks one of them.
pub fn reference(log: &BTreeMap<u8, Payload>, upto: u8) -> Option<ShardState> {
    let mut state = ShardState::default();
    for index in 1..=upto {
        let (puts, _) = stage_entry(&state, index, log.get(&index)?);
        puts.iter().for_each(|p| state.put(p));
    }
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_follows_the_servers_rules() {
        let log = BTreeMap::from([
            (1, Payload::Write(Command::Insert { key: 1, value: 10 })),
            (2, Payload::Blank),
            (3, Payload::Write(Command::Insert { key: 1, value: 11 })),
            (4, Payload::Write(Command::Append { key: 1, value: 12, expected_version: Some(1) })),
        ]);
        let s = reference(&log, 4).expect("the log has entries 1..=4");
        assert_eq!(s.applied, Some((4, 2)), "the conflict moved the applied index, not the tree");
        assert_eq!(s.records.get(&(1, 2)), Some(&(1, 12)));
        assert_eq!(s.latest.get(&1), Some(&2));
        let (puts, outcome) = stage_entry(&s, 3, &log[&3]);
        assert!(puts.is_empty() && outcome.is_none(), "replayed entries are skipped");
        let two = reference(&log, 2).expect("entries 1..=2");
        let (_, outcome) = stage_entry(&two, 3, &log[&3]);
        assert_eq!(outcome, Some(Outcome::Conflict { current: 1 }));
        assert_eq!(reference(&log, 5), None);
    }
}
