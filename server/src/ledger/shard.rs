//! A shard's state: its records, their versions, its Merkle log, and the applied index, all in
//! the storage engine and all changed by one atomic write batch per applied Raft entry.
//!
//! Applying is deterministic: the outcome of a command depends only on the state and the entry
//! (the commit time comes in the entry), so every replica that applies the same entries holds the
//! same records and the same tree.
//!
//! # Keys in the storage engine (shard `s`, u32 big-endian)
//!
//! | key                                      | value                                    |
//! |------------------------------------------|------------------------------------------|
//! | `"R" ‖ s ‖ esc(key) ‖ version (u64 BE)`  | log index (u64 BE) ‖ value               |
//! | `"V" ‖ s ‖ key`                          | latest version (u64 BE)                  |
//! | `"E" ‖ s ‖ log index (u64 BE)`           | the leaf bytes (verifier's leaf format)  |
//! | `"A" ‖ s`                                | applied Raft index ‖ tree size ‖ block height (u64 BE each) |
//! | `"B" ‖ s ‖ height (u64 BE)`              | the block (verifier's block format)      |
//! | `"L" ‖ s ‖ ...`                          | Merkle log tiles ([`crate::ledger::tree`]) |
//!
//! `esc(key)` writes each 0x00 byte of the key as 0x00 0xFF and ends with 0x00 0x00, so that
//! records sort by key, then version, whatever the keys' lengths: a key's history is one
//! contiguous range, and a range scan over keys is one scan.

use blockdb_verifier::block::GENESIS_PREV_HASH;
use blockdb_verifier::checkpoint::shard_origin;
use blockdb_verifier::{
    Block, Checkpoint, Hash, Leaf, LogIndex, ProofBundle, ShardId, TreeSize, TxnId,
    root_of_leaf_hashes,
};

use crate::ledger::node_key::NodeKey;
use crate::ledger::tree::{MerkleLog, TreeError};
use crate::ledger::txn::{self, Stage, TxnCommand, TxnIndex, TxnOutcome};
use crate::ledger::view::ShardView;
use crate::storage::{Engine, StorageError, WriteBatch};

/// A write command, as a Raft entry carries it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// Create `key` at version 1; refused if the key has any version.
    Insert {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Add the next version of `key`; if `expected_version` is given, only when the key's
    /// current version is exactly that (0 for a key with no version yet).
    Append {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// The version the key must be at.
        expected_version: Option<u64>,
    },
    /// A step of a transaction ([`crate::ledger::txn`]).
    Txn(TxnCommand),
}

/// The outcome of one command.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// The record was committed at `version`, as leaf `log_index`.
    Committed {
        /// The record's version.
        version: u64,
        /// Its leaf's position in the shard's log.
        log_index: LogIndex,
    },
    /// Refused: the key's current version is `current` (0: no version).
    Conflict {
        /// The key's version when the command was applied.
        current: u64,
    },
    /// Refused: a prepared transaction holds a lock on the key.
    Locked {
        /// The transaction.
        holder: TxnId,
    },
    /// What a transaction command produced.
    Txn(TxnOutcome),
}

/// Why a shard operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The Merkle log failed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// Stored state that does not decode: corruption.
    #[error("corrupt shard state under key {key}: {reason}")]
    Corrupt {
        /// The key, hex.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The record asked for does not exist.
    #[error("no such record")]
    NotFound,
    /// A command's key or value breaks the leaf format's limits.
    #[error("invalid record: {0}")]
    Invalid(String),
}

/// One Raft entry to apply.
#[derive(Debug, Clone, Copy)]
pub struct EntryInput<'a> {
    /// Its Raft index.
    pub raft_index: u64,
    /// The leader's time for it.
    pub commit_time_ms: u64,
    /// Its commands.
    pub commands: &'a [Command],
}

/// The shard as it will be once the entries being applied are written.
struct Pending {
    log: MerkleLog,
    last_block: Option<Block>,
    applied_index: Option<u64>,
    versions: Vec<(Vec<u8>, u64)>,
    /// The open transactions, once a transaction command changed them.
    txns: Option<TxnIndex>,
    /// Transaction state written by earlier commands of this write.
    txn_state: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>>,
}

/// A shard's state on one node.
#[derive(Debug)]
pub struct Shard {
    id: ShardId,
    origin: String,
    log: MerkleLog,
    /// The last applied Raft index; `None` before the first (Raft's first entry has index 0).
    applied_index: Option<u64>,
    last_block: Option<Block>,
    txns: std::sync::Arc<TxnIndex>,
}

impl Shard {
    /// Opens shard `id` of the cluster `cluster_origin` from `engine` (empty if never written).
    ///
    /// # Errors
    /// Storage, tree and corruption errors.
    pub fn open(engine: &Engine, cluster_origin: &str, id: ShardId) -> Result<Shard, ShardError> {
        let ak = applied_key(id);
        let (applied_index, size, height) = match engine.get(&ak)? {
            None => (None, 0, 0),
            Some(v) => {
                let (a, rest) = split_u64(&v).ok_or_else(|| corrupt(&ak, "applied"))?;
                let (s, rest) = split_u64(rest).ok_or_else(|| corrupt(&ak, "size"))?;
                let (h, rest) = split_u64(rest).ok_or_else(|| corrupt(&ak, "height"))?;
                if !rest.is_empty() {
                    return Err(corrupt(&ak, "trailing bytes"));
                }
                (Some(a), s, h)
            }
        };
        let log = MerkleLog::open(engine, id, TreeSize(size))?;
        let last_block = match height {
            0 => None,
            h => {
                Some(read_block(engine, id, h)?.ok_or_else(|| corrupt(&ak, "last block missing"))?)
            }
        };
        let origin = shard_origin(cluster_origin, id);
        let txns = std::sync::Arc::new(TxnIndex::open(engine, id)?);
        Ok(Shard { id, origin, log, applied_index, last_block, txns })
    }

    /// The shard's id.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// The shard's log origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The last applied Raft index.
    pub fn applied_index(&self) -> u64 {
        self.applied_index.unwrap_or(0)
    }

    /// The current tree size and root.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            origin: self.origin.clone(),
            size: self.log.size(),
            root: self.log.root(),
            extensions: Vec::new(),
        }
    }

    /// Applies the commands of Raft entry `raft_index` (committed at `commit_time_ms`), writing
    /// records, leaves, tiles and the applied index in one atomic, durable batch. Entries at or
    /// below the applied index are skipped (replay after a crash).
    ///
    /// # Errors
    /// Storage errors; [`ShardError::Invalid`] for a key the leaf format cannot hold (the whole
    /// entry is refused before anything is written).
    pub fn apply(
        &mut self,
        engine: &Engine,
        raft_index: u64,
        commit_time_ms: u64,
        commands: &[Command],
    ) -> Result<Vec<Outcome>, ShardError> {
        let entry = EntryInput { raft_index, commit_time_ms, commands };
        let mut out = self.apply_entries(engine, &[entry], WriteBatch::new(), true)?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Applies several Raft entries, in order, in one atomic write (with what the caller put in
    /// `batch`, such as the state machine's own metadata), synced to disk only if `sync` — when
    /// the entries are durable in the Raft log, a crash before the next fsync only makes Raft
    /// replay them; each entry's records form one block. Entries at or below the applied index are
    /// skipped and get no outcomes.
    ///
    /// # Errors
    /// As [`Shard::apply`]; on error nothing is written and the shard is unchanged.
    pub fn apply_entries(
        &mut self,
        engine: &Engine,
        entries: &[EntryInput<'_>],
        mut batch: WriteBatch,
        sync: bool,
    ) -> Result<Vec<Vec<Outcome>>, ShardError> {
        // Work on copies: the shard moves only once the batch is written, so a failed write
        // leaves it as it is on disk.
        let mut next = Pending {
            log: self.log.clone(),
            last_block: self.last_block.clone(),
            applied_index: self.applied_index,
            versions: Vec::new(),
            txns: None,
            txn_state: std::collections::HashMap::new(),
        };
        let mut outcomes = Vec::with_capacity(entries.len());
        for e in entries {
            if next.applied_index.is_some_and(|a| e.raft_index <= a) {
                outcomes.push(Vec::new());
                continue;
            }
            outcomes.push(self.stage_entry(engine, e, &mut next, &mut batch)?);
        }
        let height = next.last_block.as_ref().map_or(0, |b| b.height);
        let Some(applied_index) = next.applied_index else { return Ok(outcomes) };
        let mut applied = applied_index.to_be_bytes().to_vec();
        applied.extend_from_slice(&next.log.size().0.to_be_bytes());
        applied.extend_from_slice(&height.to_be_bytes());
        batch.put(applied_key(self.id), applied);
        engine.write_with(batch, sync)?;
        self.log = next.log;
        self.last_block = next.last_block;
        self.applied_index = next.applied_index;
        if let Some(txns) = next.txns {
            self.txns = std::sync::Arc::new(txns);
        }
        Ok(outcomes)
    }

    /// Puts one entry's records, leaves, tiles and block into `batch` and moves `next` past it.
    fn stage_entry(
        &self,
        engine: &Engine,
        entry: &EntryInput<'_>,
        next: &mut Pending,
        batch: &mut WriteBatch,
    ) -> Result<Vec<Outcome>, ShardError> {
        let mut outcomes = Vec::with_capacity(entry.commands.len());
        let next_index = next.log.size().0;
        let mut stager = Stager {
            shard: self,
            engine,
            next,
            batch,
            leaves: Vec::new(),
            next_index,
            commit_time_ms: entry.commit_time_ms,
        };
        for c in entry.commands {
            let (key, value, expected) = match c {
                Command::Insert { key, value } => (key, value, Some(0)),
                Command::Append { key, value, expected_version } => (key, value, *expected_version),
                Command::Txn(t) => {
                    let mut index = stager.next.txns.take().unwrap_or_else(|| (*self.txns).clone());
                    let result =
                        txn::apply(self.id, t, entry.commit_time_ms, &mut index, &mut stager);
                    stager.next.txns = Some(index);
                    outcomes.push(Outcome::Txn(result?));
                    continue;
                }
            };
            let locks = stager.next.txns.as_ref().unwrap_or(&self.txns);
            if let Some(holder) = locks.locks(key).and_then(|l| l.conflict(TxnId::NONE, true)) {
                outcomes.push(Outcome::Locked { holder });
                continue;
            }
            let current = stager.version(key)?;
            if expected.is_some_and(|e| e != current) {
                outcomes.push(Outcome::Conflict { current });
                continue;
            }
            let (version, log_index) = stager.write(key, value, TxnId::NONE)?;
            outcomes.push(Outcome::Committed { version, log_index });
        }
        let Stager { leaves, next, batch, .. } = stager;
        next.log.append(&leaves, batch);
        if !leaves.is_empty() {
            let block = Block {
                shard: self.id,
                height: next.last_block.as_ref().map_or(1, |b| b.height + 1),
                prev_hash: next.last_block.as_ref().map_or(GENESIS_PREV_HASH, Block::hash),
                record_count: leaves.len() as u64,
                records_root: root_of_leaf_hashes(&leaves),
                tree_size: next.log.size(),
                tree_root: next.log.root(),
                commit_time_ms: entry.commit_time_ms,
            };
            batch.put(block_key(self.id, block.height), block.encode());
            next.last_block = Some(block);
        }
        next.applied_index = Some(entry.raft_index);
        Ok(outcomes)
    }

    /// The open transactions (prepared participants, their locks, undecided records).
    pub fn txns(&self) -> &TxnIndex {
        &self.txns
    }

    /// The key's latest version (0 if it has none).
    ///
    /// # Errors
    /// Storage errors and corruption.
    pub fn latest_version(&self, engine: &Engine, key: &[u8]) -> Result<u64, ShardError> {
        match engine.get(&version_key(self.id, key))? {
            None => Ok(0),
            Some(v) => {
                let k = version_key(self.id, key);
                let (version, rest) = split_u64(&v).ok_or_else(|| corrupt(&k, "version"))?;
                if !rest.is_empty() {
                    return Err(corrupt(&k, "trailing bytes"));
                }
                Ok(version)
            }
        }
    }

    /// The proof bundle of `key` at `version` (the latest if `None`), proven against `signed`
    /// (a checkpoint of this shard that contains the record), with a consistency proof from
    /// `known_size` if given.
    ///
    /// # Errors
    /// [`ShardError::NotFound`] when the record does not exist; tree errors for sizes out of
    /// range; storage errors and corruption.
    pub fn bundle(
        &self,
        engine: &Engine,
        key: &[u8],
        version: Option<u64>,
        node_key: &NodeKey,
        known_size: Option<TreeSize>,
    ) -> Result<ProofBundle, ShardError> {
        self.view(engine, node_key).bundle(engine, key, version, known_size)
    }

    /// A read-only view of the shard as it is now, with its checkpoint signed by `node_key`.
    pub fn view(&self, engine: &Engine, node_key: &NodeKey) -> ShardView {
        ShardView {
            id: self.id,
            log: self.log.clone(),
            snapshot: engine.snapshot(),
            applied_index: self.applied_index(),
            last_block: self.last_block.clone(),
            signed: node_key.sign(&self.checkpoint()),
            txns: std::sync::Arc::clone(&self.txns),
        }
    }

    /// The root of the tree at `size` (for checking stored checkpoints).
    ///
    /// # Errors
    /// Tree errors.
    pub fn root_at(&self, engine: &Engine, size: TreeSize) -> Result<Hash, ShardError> {
        Ok(self.log.root_at(engine, size)?)
    }
}

/// One entry being staged: what [`txn::apply`] and the single writes need.
struct Stager<'a> {
    shard: &'a Shard,
    engine: &'a Engine,
    next: &'a mut Pending,
    batch: &'a mut WriteBatch,
    leaves: Vec<Hash>,
    next_index: u64,
    commit_time_ms: u64,
}

impl Stage for Stager<'_> {
    fn version(&mut self, key: &[u8]) -> Result<u64, ShardError> {
        // Versions changed earlier in this write, which the engine does not hold yet.
        match self.next.versions.iter().rev().find(|(k, _)| k == key) {
            Some((_, v)) => Ok(*v),
            None => self.shard.latest_version(self.engine, key),
        }
    }

    fn write(
        &mut self,
        key: &[u8],
        value: &[u8],
        txn: TxnId,
    ) -> Result<(u64, LogIndex), ShardError> {
        let version = self.version(key)? + 1;
        let log_index = LogIndex(self.next_index);
        let leaf = Leaf::for_value(
            self.shard.id,
            log_index,
            version,
            self.commit_time_ms,
            txn,
            key.to_vec(),
            value,
        );
        let leaf_bytes = leaf.encode().map_err(|e| ShardError::Invalid(e.to_string()))?;
        let mut record = log_index.0.to_be_bytes().to_vec();
        record.extend_from_slice(value);
        self.batch.put(record_key(self.shard.id, key, version), record);
        self.batch.put(version_key(self.shard.id, key), version.to_be_bytes().to_vec());
        self.leaves.push(blockdb_verifier::leaf_hash(&leaf_bytes));
        self.batch.put(entry_key(self.shard.id, log_index), leaf_bytes);
        self.next.versions.push((key.to_vec(), version));
        self.next_index += 1;
        Ok((version, log_index))
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, ShardError> {
        match self.next.txn_state.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.engine.get(key)?),
        }
    }

    fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        match &value {
            Some(v) => {
                self.batch.put(key.clone(), v.clone());
            }
            None => {
                self.batch.delete(key.clone());
            }
        }
        self.next.txn_state.insert(key, value);
    }
}

fn prefix(tag: u8, shard: ShardId) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(&shard.0.to_be_bytes());
    k
}

pub(crate) fn record_key(shard: ShardId, key: &[u8], version: u64) -> Vec<u8> {
    let mut k = prefix(b'R', shard);
    for &b in key {
        k.push(b);
        if b == 0 {
            k.push(0xff);
        }
    }
    k.extend_from_slice(&[0, 0]);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

pub(crate) fn version_key(shard: ShardId, key: &[u8]) -> Vec<u8> {
    let mut k = prefix(b'V', shard);
    k.extend_from_slice(key);
    k
}

pub(crate) fn entry_key(shard: ShardId, index: LogIndex) -> Vec<u8> {
    let mut k = prefix(b'E', shard);
    k.extend_from_slice(&index.0.to_be_bytes());
    k
}

fn applied_key(shard: ShardId) -> Vec<u8> {
    prefix(b'A', shard)
}

pub(crate) fn block_key(shard: ShardId, height: u64) -> Vec<u8> {
    let mut k = prefix(b'B', shard);
    k.extend_from_slice(&height.to_be_bytes());
    k
}

/// Block `height` of `shard`, if stored.
pub(crate) fn read_block(
    engine: &Engine,
    shard: ShardId,
    height: u64,
) -> Result<Option<Block>, ShardError> {
    let k = block_key(shard, height);
    match engine.get(&k)? {
        None => Ok(None),
        Some(bytes) => Block::decode(&bytes).map(Some).map_err(|e| corrupt(&k, &e.to_string())),
    }
}

pub(crate) fn split_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*head), rest))
}

pub(crate) fn corrupt(key: &[u8], reason: &str) -> ShardError {
    ShardError::Corrupt { key: hex_of(key), reason: reason.to_owned() }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
