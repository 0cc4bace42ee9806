//! A shard's Merkle log: RFC 6962 leaf hashes stored as C2SP tlog-tiles in the storage engine,
//! the root kept incrementally, and inclusion and consistency proofs for any tree size the log
//! has reached, each in O(log n) reads.
//!
//! # Tiles
//!
//! Tile `(L, N)` holds up to 256 hashes of tree level `8·L`: hash `i` is the root of the complete
//! subtree over leaves `[(256·N + i)·256^L, (256·N + i + 1)·256^L)`. Level-0 tiles hold leaf
//! hashes. A tile with fewer than 256 hashes is the partial tile at the right edge of its level;
//! it only ever grows, because each hash in it is the root of a complete subtree and never
//! changes. So the tile stored now, cut to the width a smaller tree had, is that tree's tile: one
//! stored copy serves every tree size. The bytes are exactly tlog-tiles' (concatenated 32-byte
//! hashes), so the tiles endpoints serve them as they are.
//!
//! Storage key of tile `(L, N)` of shard `s`: `"L" ‖ s (u32 BE) ‖ "t" ‖ L (u8) ‖ N (u64 BE)`.
//!
//! # Writing
//!
//! [`MerkleLog::append`] adds the tiles a batch of leaves changes to the caller's
//! [`WriteBatch`], so that the tree is written atomically with the records and the applied index
//! it belongs to: after a crash, the stored tiles and the stored tree size always agree. The log
//! keeps the partial tile of every level in memory (at most 256 hashes each), so appending reads
//! nothing.
//!
//! # Reading
//!
//! The hash of a complete subtree at tree level `ℓ` comes from one tile of level `⌊ℓ/8⌋`, hashing
//! up at most 255 of its hashes; any other subtree is split, as RFC 6962 splits it, into at most
//! `log n` complete ones. Proofs are built from RFC 6962's recursive definitions over such
//! subtrees.

use blockdb_verifier::{
    ConsistencyProof, Frontier, Hash, LogIndex, ShardId, TreeSize, empty_root, node_hash,
};

use std::sync::Arc;

use crate::storage::{Engine, StorageError, WriteBatch};

/// Why a tree operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// A size or index outside what the log holds.
    #[error("{what} {value} is out of range (must be below {bound})")]
    OutOfRange {
        /// What was out of range.
        what: &'static str,
        /// The value asked for.
        value: u64,
        /// The exclusive upper bound.
        bound: u64,
    },
    /// Reading the tiles failed, or a tile the tree needs is missing or short.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Results of tree operations.
pub type Result<T, E = TreeError> = std::result::Result<T, E>;

/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels one tile level spans.
const TILE_HEIGHT: u32 = 8;

/// The storage key of tile `(level, index)` of `shard`.
pub fn tile_key(shard: ShardId, level: u8, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(15);
    k.push(b'L');
    k.extend_from_slice(&shard.0.to_be_bytes());
    k.push(b't');
    k.push(level);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// A shard's Merkle log.
#[derive(Debug, Clone)]
pub struct MerkleLog {
    shard: ShardId,
    frontier: Frontier,
    /// Per tile level, the hashes of its partial (rightmost, not full) tile.
    edge: Vec<Vec<Hash>>,
    /// Roots of complete subtrees inside tiles, computed for proofs; shared by clones.
    subtrees: Arc<SubtreeCache>,
}

/// Complete subtree roots by (tree level, index).
type SubtreeCache = quick_cache::sync::Cache<(u32, u64), Hash>;

/// Subtree roots the cache keeps: 32 bytes each, about 2 MiB a shard.
const SUBTREE_CACHE_ENTRIES: usize = 64 * 1024;

impl MerkleLog {
    /// An empty log for `shard`.
    pub fn new(shard: ShardId) -> MerkleLog {
        MerkleLog {
            shard,
            frontier: Frontier::new(),
            edge: Vec::new(),
            subtrees: Arc::new(SubtreeCache::new(SUBTREE_CACHE_ENTRIES)),
        }
    }

    /// The log of `shard` at `size` leaves, as stored in `engine` (the size comes from the state
    /// stored with the tiles).
    ///
    /// # Errors
    /// [`TreeError::Storage`]: storage errors, and a corruption error when a tile the size
    /// implies is missing or too short.
    pub fn open(engine: &Engine, shard: ShardId, size: TreeSize) -> Result<MerkleLog> {
        let mut log = MerkleLog::new(shard);
        let mut level = 0u8;
        loop {
            let nodes = level_nodes(size.0, level);
            if nodes == 0 {
                break;
            }
            let width = (nodes % TILE_WIDTH) as usize;
            let tile = if width == 0 {
                Vec::new()
            } else {
                read_tile(engine, shard, level, nodes / TILE_WIDTH, width)?
            };
            log.edge.push(tile);
            level += 1;
        }
        // The frontier: one complete subtree per set bit of the size, largest first.
        let mut nodes = Vec::new();
        let mut start = 0u64;
        for height in (0..64u32).rev() {
            if size.0 & (1 << height) != 0 {
                nodes.push(complete_subtree(engine, shard, height, start >> height)?);
                start += 1 << height;
            }
        }
        log.frontier = Frontier::from_nodes(size, nodes).expect("one node per set bit of the size");
        Ok(log)
    }

    /// Number of leaves.
    pub fn size(&self) -> TreeSize {
        self.frontier.size()
    }

    /// The root of the whole log.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Appends leaves (their RFC 6962 leaf hashes) and puts the tiles they change into `batch`.
    /// The caller writes `batch`, with whatever else belongs to the same state, atomically.
    pub fn append(&mut self, leaf_hashes: &[Hash], batch: &mut WriteBatch) {
        let mut changed = vec![false; self.edge.len()];
        for &leaf in leaf_hashes {
            self.frontier.push(leaf);
            let mut hash = leaf;
            let mut level = 0usize;
            loop {
                if self.edge.len() == level {
                    self.edge.push(Vec::new());
                    changed.push(false);
                }
                self.edge[level].push(hash);
                changed[level] = true;
                if self.edge[level].len() as u64 != TILE_WIDTH {
                    break;
                }
                // A full tile: store it whole; its root is the next level's newest hash.
                let full = std::mem::take(&mut self.edge[level]);
                let nodes = level_nodes(self.frontier.size().0, level as u8);
                let index = nodes / TILE_WIDTH - 1;
                batch.put(tile_key(self.shard, level as u8, index), tile_bytes(&full));
                changed[level] = false;
                hash = perfect_root(&full);
                level += 1;
            }
        }
        let size = self.frontier.size().0;
        for (level, tile) in self.edge.iter().enumerate() {
            if changed[level] && !tile.is_empty() {
                let index = level_nodes(size, level as u8) / TILE_WIDTH;
                batch.put(tile_key(self.shard, level as u8, index), tile_bytes(tile));
            }
        }
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 6962 `PATH`).
    ///
    /// # Errors
    /// [`TreeError::OutOfRange`] for `index >= size` or a size beyond the log; storage errors.
    pub fn inclusion_proof(
        &self,
        engine: &Engine,
        index: LogIndex,
        size: TreeSize,
    ) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        if index.0 >= size.0 {
            return Err(out_of_range("leaf index", index.0, size.0));
        }
        let mut proof = Vec::new();
        self.path(engine, index.0, 0, size.0, &mut proof)?;
        Ok(proof)
    }

    /// The consistency proof from the tree of `from` leaves to the tree of `to` leaves (RFC 6962
    /// `PROOF`). Requires `0 < from <= to <= size()`.
    ///
    /// # Errors
    /// [`TreeError::OutOfRange`] for sizes out of that range; storage errors.
    pub fn consistency_proof(
        &self,
        engine: &Engine,
        from: TreeSize,
        to: TreeSize,
    ) -> Result<ConsistencyProof> {
        self.check_size(to)?;
        if from.0 == 0 || from.0 > to.0 {
            return Err(out_of_range("old tree size", from.0, to.0 + 1));
        }
        let mut hashes = Vec::new();
        self.subproof(engine, from.0, 0, to.0, true, &mut hashes)?;
        Ok(ConsistencyProof { from_size: from, to_size: to, hashes })
    }

    /// The root of the tree of `size` leaves, for any size the log has reached.
    ///
    /// # Errors
    /// [`TreeError::OutOfRange`] for a size beyond the log; storage errors.
    pub fn root_at(&self, engine: &Engine, size: TreeSize) -> Result<Hash> {
        self.check_size(size)?;
        if size.0 == 0 {
            return Ok(empty_root());
        }
        self.subtree(engine, 0, size.0)
    }

    /// The bytes of tile `(level, index)` as the tree of this log's size has it: 256 hashes for a
    /// full tile, fewer for the partial tile at the right edge of its level (C2SP tlog-tiles'
    /// `.p/<W>` tile). `None` when the tree has no such tile.
    ///
    /// # Errors
    /// Storage errors, and corruption when a tile the size implies is missing or short.
    pub fn tile(&self, engine: &Engine, level: u8, index: u64) -> Result<Option<Vec<u8>>> {
        let nodes = level_nodes(self.size().0, level);
        let width = if index < nodes / TILE_WIDTH {
            TILE_WIDTH
        } else if index == nodes / TILE_WIDTH && !nodes.is_multiple_of(TILE_WIDTH) {
            nodes % TILE_WIDTH
        } else {
            return Ok(None);
        };
        let hashes = read_tile(engine, self.shard, level, index, width as usize)?;
        Ok(Some(tile_bytes(&hashes)))
    }

    fn check_size(&self, size: TreeSize) -> Result<()> {
        if size > self.size() {
            return Err(out_of_range("tree size", size.0, self.size().0 + 1));
        }
        Ok(())
    }

    /// RFC 6962 `PATH(m, D[begin:end])`, appended to `out` leaf-side first.
    fn path(
        &self,
        engine: &Engine,
        m: u64,
        begin: u64,
        end: u64,
        out: &mut Vec<Hash>,
    ) -> Result<()> {
        let n = end - begin;
        if n == 1 {
            return Ok(());
        }
        let k = split(n);
        if m < k {
            self.path(engine, m, begin, begin + k, out)?;
            out.push(self.subtree(engine, begin + k, end)?);
        } else {
            self.path(engine, m - k, begin + k, end, out)?;
            out.push(self.subtree(engine, begin, begin + k)?);
        }
        Ok(())
    }

    /// RFC 6962 `SUBPROOF(m, D[begin:end], b)`, appended to `out`.
    fn subproof(
        &self,
        engine: &Engine,
        m: u64,
        begin: u64,
        end: u64,
        b: bool,
        out: &mut Vec<Hash>,
    ) -> Result<()> {
        let n = end - begin;
        if m == n {
            if !b {
                out.push(self.subtree(engine, begin, end)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            self.subproof(engine, m, begin, begin + k, b, out)?;
            out.push(self.subtree(engine, begin + k, end)?);
        } else {
            self.subproof(engine, m - k, begin + k, end, false, out)?;
            out.push(self.subtree(engine, begin, begin + k)?);
        }
        Ok(())
    }

    /// `MTH(D[begin:end])` for a non-empty range that RFC 6962's split produces (so `begin` is a
    /// multiple of the largest power of two below `end - begin`, or the range is complete).
    fn subtree(&self, engine: &Engine, begin: u64, end: u64) -> Result<Hash> {
        let n = end - begin;
        if n.is_power_of_two() && begin.is_multiple_of(n) {
            return self.cached_subtree(engine, n.trailing_zeros(), begin / n);
        }
        let k = split(n);
        let left = self.subtree(engine, begin, begin + k)?;
        let right = self.subtree(engine, begin + k, end)?;
        Ok(node_hash(&left, &right))
    }
}

impl MerkleLog {
    /// A complete subtree's root, from the cache or from its tile. Subtrees whose root needs no
    /// hashing (a tile's own hashes) are not cached; the others are immutable once complete, so
    /// a cached root serves every tree size, and clones of the log share the cache.
    fn cached_subtree(&self, engine: &Engine, height: u32, index: u64) -> Result<Hash> {
        if height.is_multiple_of(TILE_HEIGHT) {
            return complete_subtree(engine, self.shard, height, index);
        }
        if let Some(h) = self.subtrees.get(&(height, index)) {
            return Ok(h);
        }
        let h = complete_subtree(engine, self.shard, height, index)?;
        self.subtrees.insert((height, index), h);
        Ok(h)
    }
}

/// The largest power of two below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Number of complete subtrees of tree level `8·level` in a tree of `size` leaves.
fn level_nodes(size: u64, level: u8) -> u64 {
    size.checked_shr(TILE_HEIGHT * u32::from(level)).unwrap_or(0)
}

fn tile_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}

/// The root of `hashes`, a power-of-two count of sibling subtrees.
fn perfect_root(hashes: &[Hash]) -> Hash {
    debug_assert!(hashes.len().is_power_of_two());
    let mut row = hashes.to_vec();
    while row.len() > 1 {
        row = row.chunks(2).map(|c| node_hash(&c[0], &c[1])).collect();
    }
    row[0]
}

/// The root of the complete subtree at tree level `height`, index `index` (leaves
/// `[index·2^height, (index+1)·2^height)`), from the one tile that holds its bottom row.
fn complete_subtree(engine: &Engine, shard: ShardId, height: u32, index: u64) -> Result<Hash> {
    let level = height / TILE_HEIGHT;
    let rise = height % TILE_HEIGHT;
    let first = index << rise;
    let count = 1usize << rise;
    let tile_index = first / TILE_WIDTH;
    let offset = (first % TILE_WIDTH) as usize;
    let tile = read_tile(engine, shard, level as u8, tile_index, offset + count)?;
    Ok(perfect_root(&tile[offset..offset + count]))
}

/// The first `width` hashes of tile `(level, index)`.
fn read_tile(
    engine: &Engine,
    shard: ShardId,
    level: u8,
    index: u64,
    width: usize,
) -> Result<Vec<Hash>> {
    let key = tile_key(shard, level, index);
    let missing = |reason: String| StorageError::Corruption {
        path: format!("<tile {level}/{index} of shard {shard}>").into(),
        offset: 0,
        reason,
    };
    let bytes = engine.get(&key)?.ok_or_else(|| missing("the tile is missing".into()))?;
    if !bytes.len().is_multiple_of(32) || bytes.len() / 32 < width {
        let reason = format!("the tile holds {} bytes; {width} hashes are needed", bytes.len());
        return Err(missing(reason).into());
    }
    Ok(bytes.chunks(32).take(width).map(|c| Hash::from_slice(c).expect("32-byte chunks")).collect())
}

fn out_of_range(what: &'static str, value: u64, bound: u64) -> TreeError {
    TreeError::OutOfRange { what, value, bound }
}
