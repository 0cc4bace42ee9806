//! A read-only view of a shard at one applied batch: the signed checkpoint of that batch and a
//! storage snapshot taken right after it, so that every read answers from one state and proves
//! against that checkpoint.
//!
//! Records and versions are read through the snapshot (a key's latest version changes as new
//! batches apply). Tiles are read from the engine as it is now: a tile only ever grows, and the
//! log clone in the view cuts it to the width the view's tree size has, so newer tiles prove
//! older trees exactly (see [`crate::ledger::tree`]).

use blockdb_verifier::{
    Block, Checkpoint, ConsistencyProof, Hash, Leaf, LogIndex, ProofBundle, Record, ShardId,
    SignedCheckpoint, TreeSize,
};

use crate::ledger::shard::{
    ShardError, corrupt, entry_key, read_block, record_key, split_u64, version_key,
};
use crate::ledger::tree::{MerkleLog, TILE_WIDTH};
use crate::storage::{Engine, Snapshot};

/// A shard as of one applied batch.
#[derive(Debug)]
pub struct ShardView {
    pub(crate) id: ShardId,
    pub(crate) log: MerkleLog,
    pub(crate) snapshot: Snapshot,
    pub(crate) applied_index: u64,
    pub(crate) signed: SignedCheckpoint,
    pub(crate) last_block: Option<Block>,
    pub(crate) txns: std::sync::Arc<crate::ledger::txn::TxnIndex>,
}

/// A leaf of the log with its proofs.
#[derive(Debug, Clone)]
pub struct EntryProof {
    /// The leaf's position.
    pub log_index: LogIndex,
    /// The leaf bytes (the verifier's leaf format).
    pub leaf: Vec<u8>,
    /// The inclusion proof of the leaf in the checkpoint's tree.
    pub inclusion_proof: Vec<Hash>,
    /// The checkpoint proven against.
    pub checkpoint: SignedCheckpoint,
    /// The consistency proof from the caller's `known_size`, if one was asked for.
    pub consistency_proof: Option<ConsistencyProof>,
}

impl ShardView {
    /// The open transactions as of this view: prepared participants, their locks, undecided
    /// records.
    pub fn txns(&self) -> &crate::ledger::txn::TxnIndex {
        &self.txns
    }

    /// The shard.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// The last Raft index applied in this view.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The signed checkpoint every read of this view proves against.
    pub fn signed_checkpoint(&self) -> &SignedCheckpoint {
        &self.signed
    }

    /// The checkpoint (origin, size, root).
    pub fn checkpoint(&self) -> &Checkpoint {
        self.signed.checkpoint()
    }

    /// The tree size.
    pub fn tree_size(&self) -> TreeSize {
        self.log.size()
    }

    /// The key's latest version in this view (0 if it has none).
    ///
    /// # Errors
    /// Storage errors and corruption.
    pub fn latest_version(&self, key: &[u8]) -> Result<u64, ShardError> {
        let k = version_key(self.id, key);
        match self.snapshot.get(&k)? {
            None => Ok(0),
            Some(v) => match split_u64(&v) {
                Some((version, [])) => Ok(version),
                _ => Err(corrupt(&k, "version")),
            },
        }
    }

    /// The consistency proof from `known_size` to this view's tree, when the caller knows a
    /// non-empty tree (a proof from the empty tree proves nothing).
    ///
    /// # Errors
    /// Out of range for a `known_size` beyond this tree; storage errors.
    pub fn consistency_from(
        &self,
        engine: &Engine,
        known_size: Option<TreeSize>,
    ) -> Result<Option<ConsistencyProof>, ShardError> {
        match known_size {
            Some(from) if from.0 > 0 => {
                Ok(Some(self.log.consistency_proof(engine, from, self.tree_size())?))
            }
            _ => Ok(None),
        }
    }

    /// The consistency proof between two sizes this view's tree has reached.
    ///
    /// # Errors
    /// Out of range unless `0 < from <= to <= tree size`; storage errors.
    pub fn consistency(
        &self,
        engine: &Engine,
        from: TreeSize,
        to: TreeSize,
    ) -> Result<ConsistencyProof, ShardError> {
        Ok(self.log.consistency_proof(engine, from, to)?)
    }

    /// The proof bundle of `key` at `version` (the latest if `None`).
    ///
    /// # Errors
    /// [`ShardError::NotFound`] when the record does not exist in this view; out of range for a
    /// `known_size` beyond the tree; storage errors and corruption.
    pub fn bundle(
        &self,
        engine: &Engine,
        key: &[u8],
        version: Option<u64>,
        known_size: Option<TreeSize>,
    ) -> Result<ProofBundle, ShardError> {
        let consistency_proof = self.consistency_from(engine, known_size)?;
        let latest = self.latest_version(key)?;
        let version = version.unwrap_or(latest);
        if version == 0 || version > latest {
            return Err(ShardError::NotFound);
        }
        let rk = record_key(self.id, key, version);
        let record = self.snapshot.get(&rk)?.ok_or_else(|| corrupt(&rk, "record missing"))?;
        let (log_index, value) = split_u64(&record).ok_or_else(|| corrupt(&rk, "log index"))?;
        let entry = self.entry(engine, LogIndex(log_index), None)?;
        let leaf = Leaf::decode(&entry.leaf).map_err(|e| corrupt(&rk, &e.to_string()))?;
        Ok(ProofBundle {
            record: Record { key: key.to_vec(), version, value: Some(value.to_vec()) },
            leaf,
            inclusion_proof: entry.inclusion_proof,
            checkpoint: entry.checkpoint,
            consistency_proof,
        })
    }

    /// Bundles of `key`'s versions from `from_version` on, at most `limit` of them, and the next
    /// version to ask for if there are more.
    ///
    /// # Errors
    /// As [`ShardView::bundle`].
    pub fn history(
        &self,
        engine: &Engine,
        key: &[u8],
        from_version: u64,
        limit: usize,
        known_size: Option<TreeSize>,
    ) -> Result<(Vec<ProofBundle>, Option<u64>), ShardError> {
        let latest = self.latest_version(key)?;
        if latest == 0 {
            return Err(ShardError::NotFound);
        }
        let first = from_version.max(1);
        if first > latest || limit == 0 {
            return Ok((Vec::new(), (first <= latest).then_some(first)));
        }
        let last = latest.min(first.saturating_add(limit as u64 - 1));
        let mut out = Vec::with_capacity((last - first + 1) as usize);
        for v in first..=last {
            out.push(self.bundle(engine, key, Some(v), known_size)?);
        }
        let next = (last < latest).then_some(last + 1);
        Ok((out, next))
    }

    /// Bundles of the latest version of each key in `[start, end)` (`end` empty: unbounded),
    /// at most `limit`, and the key to continue from if there are more.
    ///
    /// # Errors
    /// As [`ShardView::bundle`].
    pub fn scan(
        &self,
        engine: &Engine,
        start: &[u8],
        end: &[u8],
        limit: usize,
        known_size: Option<TreeSize>,
    ) -> Result<(Vec<ProofBundle>, Option<Vec<u8>>), ShardError> {
        let begin = version_key(self.id, start);
        let stop = if end.is_empty() {
            // The first key past every version key of this shard.
            match self.id.0.checked_add(1) {
                Some(next) => version_key(ShardId(next), b""),
                None => vec![b'W'],
            }
        } else {
            version_key(self.id, end)
        };
        let prefix_len = version_key(self.id, b"").len();
        let mut out = Vec::new();
        for item in self.snapshot.scan(begin..stop) {
            let (k, _) = item?;
            let key = k.get(prefix_len..).unwrap_or_default();
            if out.len() == limit {
                return Ok((out, Some(key.to_vec())));
            }
            out.push(self.bundle(engine, key, None, known_size)?);
        }
        Ok((out, None))
    }

    /// Leaf `log_index` with its inclusion proof against this view's checkpoint.
    ///
    /// # Errors
    /// Out of range for an index at or beyond the tree size; storage errors and corruption.
    pub fn entry(
        &self,
        engine: &Engine,
        log_index: LogIndex,
        known_size: Option<TreeSize>,
    ) -> Result<EntryProof, ShardError> {
        let size = self.tree_size();
        let inclusion_proof = self.log.inclusion_proof(engine, log_index, size)?;
        let consistency_proof = self.consistency_from(engine, known_size)?;
        let ek = entry_key(self.id, log_index);
        let leaf = engine.get(&ek)?.ok_or_else(|| corrupt(&ek, "leaf missing"))?;
        Ok(EntryProof {
            log_index,
            leaf,
            inclusion_proof,
            checkpoint: self.signed.clone(),
            consistency_proof,
        })
    }

    /// Block `height` (the latest if `None`), if the view has it.
    ///
    /// # Errors
    /// Storage errors and corruption.
    pub fn block(&self, engine: &Engine, height: Option<u64>) -> Result<Option<Block>, ShardError> {
        let latest = self.last_block.as_ref().map_or(0, |b| b.height);
        match height {
            None => Ok(self.last_block.clone()),
            Some(h) if h == 0 || h > latest => Ok(None),
            Some(h) => read_block(engine, self.id, h),
        }
    }

    /// The latest block height (0 before the first block).
    pub fn block_height(&self) -> u64 {
        self.last_block.as_ref().map_or(0, |b| b.height)
    }

    /// Tile `(level, index)` of this view's tree, as tlog-tiles serves it; `None` if the tree
    /// has no such tile.
    ///
    /// # Errors
    /// Storage errors and corruption.
    pub fn tile(
        &self,
        engine: &Engine,
        level: u8,
        index: u64,
    ) -> Result<Option<Vec<u8>>, ShardError> {
        Ok(self.log.tile(engine, level, index)?)
    }

    /// The leaves of entry bundle `index` (leaves `[256·index, 256·index + 256)` cut to the tree
    /// size); `None` if the tree has no such bundle.
    ///
    /// # Errors
    /// Storage errors and corruption.
    pub fn entry_leaves(
        &self,
        engine: &Engine,
        index: u64,
    ) -> Result<Option<Vec<Vec<u8>>>, ShardError> {
        let size = self.tree_size().0;
        let Some(first) = index.checked_mul(TILE_WIDTH).filter(|&f| f < size) else {
            return Ok(None);
        };
        let end = size.min(first + TILE_WIDTH);
        let mut leaves = Vec::with_capacity((end - first) as usize);
        for i in first..end {
            let ek = entry_key(self.id, LogIndex(i));
            leaves.push(engine.get(&ek)?.ok_or_else(|| corrupt(&ek, "leaf missing"))?);
        }
        Ok(Some(leaves))
    }
}
