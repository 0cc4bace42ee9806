//! Blocks: the hash-chained view over a shard's log.
//!
//! The records of one applied Raft entry of a shard form a block. A block commits to the Merkle
//! root of its own records, to the shard's tree (size and root) right after it, and to the hash of
//! the block before it, so the blocks of a shard form a hash chain:
//!
//! ```text
//!  height 1                 height 2                 height 3
//! ┌───────────────────┐    ┌───────────────────┐    ┌───────────────────┐
//! │ prev_hash = 0…0   │◄───┤ prev_hash         │◄───┤ prev_hash         │
//! │ records [0, 3)    │    │ records [3, 4)    │    │ records [4, 9)    │
//! │ tree (3, root₃)   │    │ tree (4, root₄)   │    │ tree (9, root₉)   │
//! └───────────────────┘    └───────────────────┘    └───────────────────┘
//! ```
//!
//! Blocks are a view over the log, never a second source of truth: everything a block says can be
//! re-derived from the log's leaves ([`verify_against_leaves`]) or proven against a signed
//! checkpoint ([`verify_against_checkpoint`]), and the links between blocks are checked by
//! [`verify_link`] and [`verify_chain`].
//!
//! # Fields and invariants
//!
//! - `height` counts from 1, the shard's first block with records; each block's height is one
//!   more than its predecessor's.
//! - `prev_hash` is [`Block::hash`] of the block at `height - 1`, and 32 zero bytes
//!   ([`GENESIS_PREV_HASH`]) at height 1.
//! - `record_count >= 1`: an entry without records (a membership change, a blank entry) makes
//!   no block.
//! - The block's records are the leaves `[tree_size - record_count, tree_size)` of the shard's
//!   log, so `record_count <= tree_size`, and at height 1 `tree_size == record_count`.
//! - `records_root` is the RFC 6962 root over the leaf hashes of the block's records, as a tree of
//!   its own (so a reader can check a block's records without the rest of the log).
//! - `(tree_size, tree_root)` is the shard's tree right after the block: the same pair a
//!   checkpoint of that size would carry.
//! - `commit_time_ms` is the commit time of the block's Raft entry, ms since the Unix epoch (the
//!   same value as in the leaves of its records).
//!
//! [`Block::decode`] and [`Block::validate`] refuse a block that breaks any invariant that can
//! be seen on the block alone; the others need its neighbours or the log.
//!
//! # Binary encoding, version 1
//!
//! All integers are big-endian; offsets are in bytes. The encoding is [`BLOCK_LEN`] = 133 bytes
//! long, and nothing may follow it.
//!
//! | offset | size | field            | meaning                                                  |
//! |-------:|-----:|------------------|----------------------------------------------------------|
//! | 0      | 1    | `format`         | `0x01`, the format version                                |
//! | 1      | 4    | `shard`          | the shard whose log the block is a view of                |
//! | 5      | 8    | `height`         | position in the shard's chain of blocks, from 1           |
//! | 13     | 32   | `prev_hash`      | hash of the block at `height - 1`; zero at height 1        |
//! | 45     | 8    | `record_count`   | number of records in the block, at least 1                |
//! | 53     | 32   | `records_root`   | RFC 6962 root over the leaf hashes of the block's records |
//! | 85     | 8    | `tree_size`      | the shard's tree size right after the block               |
//! | 93     | 32   | `tree_root`      | the shard's tree root at `tree_size`                      |
//! | 125    | 8    | `commit_time_ms` | commit time of the Raft entry, ms since the Unix epoch    |
//!
//! The encoding is canonical: `encode(decode(b)) == b` for every `b` that decodes. A new format
//! gets a new `format` byte; the decoder refuses formats it does not know.
//!
//! # Block hash
//!
//! `hash = SHA-256(0x02 ‖ encoding)`. RFC 6962 hashes leaves with the prefix `0x00` and inner
//! nodes with `0x01`; the block hash takes the next byte, so the input of a block hash is never
//! the input of a leaf or node hash, and a block hash can never be confused with (or substituted
//! for) a leaf hash, a node hash or a tree root, even where a block's bytes were also logged as a
//! leaf.
//!
//! # JSON form
//!
//! [`Block`] implements serde's `Serialize` and `Deserialize` with this form (hashes as 64
//! lowercase hex digits, integers as JSON numbers):
//!
//! ```json
//! {
//!   "shard": 0,
//!   "height": 2,
//!   "prev_hash": "<64 hex digits>",
//!   "record_count": 1,
//!   "records_root": "<64 hex digits>",
//!   "tree_size": 4,
//!   "tree_root": "<64 hex digits>",
//!   "commit_time_ms": 1700000000003,
//!   "hash": "<64 hex digits>"
//! }
//! ```
//!
//! `hash` is [`Block::hash`], written for the reader's convenience; it is not part of the block.
//! Deserializing requires it, recomputes it from the other fields and refuses the block when they
//! differ ([`BlockError::HashMismatch`]), and applies [`Block::validate`]. Unknown fields are
//! refused. The JSON form carries no format version of its own: it is a view of the version 1
//! binary encoding, which is what the hash covers.

// This file is over the ~500-line soft limit: a third of it is the one error enum, whose typed
// fields are each documented. The format and the four checks share those variants, and are kept
// in one file so that what a block is and what is checked of it read in one place.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::codec::{DecodeError, Reader, Writer};
use crate::frontier::Frontier;
use crate::hash::{Hash, root_of_leaf_hashes};
use crate::ids::{ShardId, TreeSize};
use crate::proof::{ConsistencyProof, ProofError, verify_consistency};

/// The block format this code writes.
pub const FORMAT_V1: u8 = 0x01;
/// Length of a version 1 block encoding.
pub const BLOCK_LEN: usize = 133;
/// The domain byte that precedes a block's encoding in its hash (RFC 6962 uses `0x00` for leaves
/// and `0x01` for nodes).
pub const BLOCK_HASH_PREFIX: u8 = 0x02;
/// The `prev_hash` of the block at height 1: 32 zero bytes.
pub const GENESIS_PREV_HASH: Hash = Hash([0; 32]);

/// One block: the records of one applied Raft entry of a shard. See the module docs for the
/// invariants; [`Block::validate`] checks those that need no other block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BlockJson", into = "BlockJson")]
pub struct Block {
    /// The shard whose log the block is a view of.
    pub shard: ShardId,
    /// Position in the shard's chain of blocks, from 1.
    pub height: u64,
    /// [`Block::hash`] of the block at `height - 1`, or [`GENESIS_PREV_HASH`] at height 1.
    pub prev_hash: Hash,
    /// Number of records in the block, at least 1.
    pub record_count: u64,
    /// RFC 6962 root over the leaf hashes of the block's records.
    pub records_root: Hash,
    /// The shard's tree size right after the block; the block's records are the leaves
    /// `[tree_size - record_count, tree_size)`.
    pub tree_size: TreeSize,
    /// The shard's tree root at `tree_size`.
    pub tree_root: Hash,
    /// Commit time of the block's Raft entry, in milliseconds since the Unix epoch.
    pub commit_time_ms: u64,
}

/// Why a block is malformed, or does not fit its neighbours, the log or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// The format byte is not one this code knows.
    #[error("unknown block format {got:#04x} (this verifier knows {FORMAT_V1:#04x})")]
    UnknownFormat {
        /// The format byte found.
        got: u8,
    },
    /// The bytes end early or run on.
    #[error("malformed block: {0}")]
    Malformed(#[from] DecodeError),
    /// The height is 0; heights count from 1.
    #[error("block height is 0; heights count from 1")]
    ZeroHeight,
    /// The block has no records.
    #[error("block has no records; a block holds at least one")]
    ZeroRecordCount,
    /// The block has more records than the tree after it has leaves.
    #[error("block has {record_count} records but the tree after it has only {tree_size} leaves")]
    RecordCountExceedsTreeSize {
        /// The block's record count.
        record_count: u64,
        /// The block's tree size.
        tree_size: TreeSize,
    },
    /// A block at height 1 whose previous hash is not 32 zero bytes.
    #[error("block at height 1 has previous hash {got}, not 32 zero bytes")]
    FirstBlockPrevHash {
        /// The block's previous hash.
        got: Hash,
    },
    /// A block at height 1 whose tree holds leaves that are not its records.
    #[error("block at height 1 has {record_count} records but tree size {tree_size}")]
    FirstBlockTreeSize {
        /// The block's record count.
        record_count: u64,
        /// The block's tree size.
        tree_size: TreeSize,
    },
    /// The `hash` field of the JSON form is not the hash of the block.
    #[error("block `hash` field is {got} but the block hashes to {expected}")]
    HashMismatch {
        /// The hash computed from the block's fields.
        expected: Hash,
        /// The `hash` field.
        got: Hash,
    },
    /// Two blocks that should be of one shard are not.
    #[error("block is in shard {got}, expected shard {expected}")]
    ShardMismatch {
        /// The shard of the previous block.
        expected: ShardId,
        /// The block's shard.
        got: ShardId,
    },
    /// The block's height is not one more than the previous block's (0 when there is none).
    #[error("block height {got} does not follow height {prev}")]
    HeightNotNext {
        /// The previous block's height, or 0 at the start of a chain.
        prev: u64,
        /// The block's height.
        got: u64,
    },
    /// The block's previous hash is not the hash of the previous block.
    #[error("block's previous hash is {got}, but the previous block hashes to {expected}")]
    PrevHashMismatch {
        /// The previous block's hash, or [`GENESIS_PREV_HASH`] at the start of a chain.
        expected: Hash,
        /// The block's `prev_hash`.
        got: Hash,
    },
    /// The block's tree size is not the previous tree size plus its records.
    #[error(
        "block tree size {got} is not the previous tree size {prev} plus {record_count} records"
    )]
    TreeSizeNotNext {
        /// The previous block's tree size, or 0 at the start of a chain.
        prev: TreeSize,
        /// The block's record count.
        record_count: u64,
        /// The block's tree size.
        got: TreeSize,
    },
    /// A check over several blocks failed at one of them.
    #[error("block {position} (height {height}): {error}")]
    AtBlock {
        /// The block's position in the slice that was checked, from 0.
        position: usize,
        /// The block's height field.
        height: u64,
        /// What failed.
        error: Box<BlockError>,
    },
    /// The blocks are not in log order.
    #[error(
        "block tree size {got} is below the previous block's {prev}; blocks must be in log order"
    )]
    TreeSizeDecreases {
        /// The previous block's tree size.
        prev: TreeSize,
        /// The block's tree size.
        got: TreeSize,
    },
    /// The leaf hashes given do not reach the block's tree size.
    #[error("block needs the leaves up to tree size {tree_size}, but only {leaves} were given")]
    LeavesMissing {
        /// The block's tree size.
        tree_size: TreeSize,
        /// Number of leaf hashes given.
        leaves: usize,
    },
    /// The block's records root is not the root of its records' leaf hashes.
    #[error("block records root is {got}, but its records hash to {expected}")]
    RecordsRootMismatch {
        /// The root recomputed from the leaves.
        expected: Hash,
        /// The block's `records_root`.
        got: Hash,
    },
    /// The block's tree root is not the root of the log's first `tree_size` leaves.
    #[error("block tree root is {got}, but the log's leaves give {expected}")]
    TreeRootMismatch {
        /// The root recomputed from the leaves.
        expected: Hash,
        /// The block's `tree_root`.
        got: Hash,
    },
    /// The checkpoint's origin is not the log of the block's shard.
    #[error(
        "block is in shard {shard} but the checkpoint's origin {origin:?} is not that shard's log"
    )]
    CheckpointShard {
        /// The block's shard.
        shard: ShardId,
        /// The checkpoint's origin.
        origin: String,
    },
    /// The block's tree is larger than the checkpoint's, so it cannot be proven by it.
    #[error("block tree size {tree_size} is beyond the checkpoint's size {checkpoint_size}")]
    BeyondCheckpoint {
        /// The block's tree size.
        tree_size: TreeSize,
        /// The checkpoint's size.
        checkpoint_size: TreeSize,
    },
    /// The checkpoint is larger than the block's tree but no consistency proof was given.
    #[error("no consistency proof from the block's tree size {from} to the checkpoint's size {to}")]
    MissingProof {
        /// The block's tree size.
        from: TreeSize,
        /// The checkpoint's size.
        to: TreeSize,
    },
    /// The consistency proof is for other sizes than the block's and the checkpoint's.
    #[error(
        "consistency proof is from size {proof_from} to {proof_to}, \
         but the block and the checkpoint are of sizes {from} and {to}"
    )]
    ProofSizes {
        /// The proof's old size.
        proof_from: TreeSize,
        /// The proof's new size.
        proof_to: TreeSize,
        /// The block's tree size.
        from: TreeSize,
        /// The checkpoint's size.
        to: TreeSize,
    },
    /// The block's tree is not a prefix of the checkpoint's tree, or the proof is wrong.
    #[error("block tree (size {from}) is not a prefix of the checkpoint's (size {to}): {error}")]
    NotInCheckpoint {
        /// The block's tree size.
        from: TreeSize,
        /// The checkpoint's size.
        to: TreeSize,
        /// What failed.
        error: ProofError,
    },
}

impl Block {
    /// Checks the invariants that need no other block: height and record count at least 1,
    /// record count at most the tree size, and at height 1 the zero previous hash and a tree of
    /// exactly the block's records.
    ///
    /// # Errors
    /// [`BlockError::ZeroHeight`], [`BlockError::ZeroRecordCount`],
    /// [`BlockError::RecordCountExceedsTreeSize`], [`BlockError::FirstBlockPrevHash`] or
    /// [`BlockError::FirstBlockTreeSize`].
    pub fn validate(&self) -> Result<(), BlockError> {
        if self.height == 0 {
            return Err(BlockError::ZeroHeight);
        }
        if self.record_count == 0 {
            return Err(BlockError::ZeroRecordCount);
        }
        if self.record_count > self.tree_size.0 {
            return Err(BlockError::RecordCountExceedsTreeSize {
                record_count: self.record_count,
                tree_size: self.tree_size,
            });
        }
        if self.height == 1 && self.prev_hash != GENESIS_PREV_HASH {
            return Err(BlockError::FirstBlockPrevHash { got: self.prev_hash });
        }
        if self.height == 1 && self.record_count != self.tree_size.0 {
            return Err(BlockError::FirstBlockTreeSize {
                record_count: self.record_count,
                tree_size: self.tree_size,
            });
        }
        Ok(())
    }

    /// The canonical version 1 encoding, [`BLOCK_LEN`] bytes.
    ///
    /// Every block has an encoding; [`Block::decode`] accepts it back only when the block passes
    /// [`Block::validate`].
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(BLOCK_LEN);
        w.u8(FORMAT_V1);
        w.u32(self.shard.0);
        w.u64(self.height);
        w.put(&self.prev_hash.0);
        w.u64(self.record_count);
        w.put(&self.records_root.0);
        w.u64(self.tree_size.0);
        w.put(&self.tree_root.0);
        w.u64(self.commit_time_ms);
        debug_assert_eq!(w.buf.len(), BLOCK_LEN);
        w.buf
    }

    /// Decodes a canonical version 1 encoding and checks [`Block::validate`].
    ///
    /// # Errors
    /// [`BlockError::UnknownFormat`], [`BlockError::Malformed`] for short input or trailing bytes,
    /// or a [`Block::validate`] error. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Block, BlockError> {
        let mut r = Reader::new(bytes);
        let format = r.u8("format")?;
        if format != FORMAT_V1 {
            return Err(BlockError::UnknownFormat { got: format });
        }
        let block = Block {
            shard: ShardId(r.u32("shard")?),
            height: r.u64("height")?,
            prev_hash: r.hash("prev_hash")?,
            record_count: r.u64("record_count")?,
            records_root: r.hash("records_root")?,
            tree_size: TreeSize(r.u64("tree_size")?),
            tree_root: r.hash("tree_root")?,
            commit_time_ms: r.u64("commit_time_ms")?,
        };
        r.finish()?;
        block.validate()?;
        Ok(block)
    }

    /// `SHA-256(0x02 ‖ encoding)`: the hash the next block's `prev_hash` holds.
    pub fn hash(&self) -> Hash {
        let mut h = Sha256::new();
        h.update([BLOCK_HASH_PREFIX]);
        h.update(self.encode());
        Hash(h.finalize().into())
    }
}

/// The JSON form (see the module docs).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockJson {
    shard: ShardId,
    height: u64,
    #[serde(with = "crate::serde_hex::hash")]
    prev_hash: Hash,
    record_count: u64,
    #[serde(with = "crate::serde_hex::hash")]
    records_root: Hash,
    tree_size: TreeSize,
    #[serde(with = "crate::serde_hex::hash")]
    tree_root: Hash,
    commit_time_ms: u64,
    #[serde(with = "crate::serde_hex::hash")]
    hash: Hash,
}

impl From<Block> for BlockJson {
    fn from(b: Block) -> BlockJson {
        BlockJson {
            hash: b.hash(),
            shard: b.shard,
            height: b.height,
            prev_hash: b.prev_hash,
            record_count: b.record_count,
            records_root: b.records_root,
            tree_size: b.tree_size,
            tree_root: b.tree_root,
            commit_time_ms: b.commit_time_ms,
        }
    }
}

impl TryFrom<BlockJson> for Block {
    type Error = BlockError;

    fn try_from(j: BlockJson) -> Result<Block, BlockError> {
        let block = Block {
            shard: j.shard,
            height: j.height,
            prev_hash: j.prev_hash,
            record_count: j.record_count,
            records_root: j.records_root,
            tree_size: j.tree_size,
            tree_root: j.tree_root,
            commit_time_ms: j.commit_time_ms,
        };
        block.validate()?;
        let expected = block.hash();
        if j.hash != expected {
            return Err(BlockError::HashMismatch { expected, got: j.hash });
        }
        Ok(block)
    }
}

/// Checks that `next` directly follows `prev` in one shard's chain: same shard, height one more,
/// `next.prev_hash == prev.hash()`, and `next.tree_size == prev.tree_size + next.record_count`.
/// Both blocks must also pass [`Block::validate`].
///
/// Requires nothing of the roots: a link says nothing about whether the blocks match the log;
/// see [`verify_against_leaves`] and [`verify_against_checkpoint`] for that.
///
/// # Errors
/// A [`Block::validate`] error of either block, [`BlockError::ShardMismatch`],
/// [`BlockError::HeightNotNext`], [`BlockError::PrevHashMismatch`] or
/// [`BlockError::TreeSizeNotNext`].
pub fn verify_link(prev: &Block, next: &Block) -> Result<(), BlockError> {
    prev.validate()?;
    next.validate()?;
    if next.shard != prev.shard {
        return Err(BlockError::ShardMismatch { expected: prev.shard, got: next.shard });
    }
    verify_follows(next, prev.height, prev.hash(), prev.tree_size)
}

/// The link checks shared by [`verify_link`] and the start of [`verify_chain`], where the
/// "previous block" is height 0 with [`GENESIS_PREV_HASH`] and the empty tree.
fn verify_follows(
    next: &Block,
    prev_height: u64,
    prev_hash: Hash,
    prev_size: TreeSize,
) -> Result<(), BlockError> {
    if next.height.checked_sub(1) != Some(prev_height) {
        return Err(BlockError::HeightNotNext { prev: prev_height, got: next.height });
    }
    if next.prev_hash != prev_hash {
        return Err(BlockError::PrevHashMismatch { expected: prev_hash, got: next.prev_hash });
    }
    if prev_size.0.checked_add(next.record_count) != Some(next.tree_size.0) {
        return Err(BlockError::TreeSizeNotNext {
            prev: prev_size,
            record_count: next.record_count,
            got: next.tree_size,
        });
    }
    Ok(())
}

fn at_block(position: usize, block: &Block, error: BlockError) -> BlockError {
    BlockError::AtBlock { position, height: block.height, error: Box::new(error) }
}

/// Checks that `blocks` is an unbroken piece of one shard's chain.
///
/// With `trusted = Some(t)`, `blocks[0]` must follow `t` ([`verify_link`]); `t` is a block the
/// caller already verified, for example the last block of an earlier call. With `trusted = None`,
/// the chain must start at the beginning: `blocks[0]` at height 1 with [`GENESIS_PREV_HASH`] and
/// `tree_size == record_count`. Then every block must follow the one before it. An empty slice
/// verifies.
///
/// # Errors
/// [`BlockError::AtBlock`] with the position of the first block that fails, wrapping the error of
/// [`verify_link`] or of the start-of-chain checks (which use the same variants, with a previous
/// height of 0 and a previous tree size of 0); or, unwrapped, a [`Block::validate`] error of
/// `trusted`.
pub fn verify_chain(trusted: Option<&Block>, blocks: &[Block]) -> Result<(), BlockError> {
    if let Some(t) = trusted {
        t.validate()?;
    }
    let mut prev = trusted;
    for (position, block) in blocks.iter().enumerate() {
        let linked = match prev {
            Some(p) => verify_link(p, block),
            None => block
                .validate()
                .and_then(|()| verify_follows(block, 0, GENESIS_PREV_HASH, TreeSize(0))),
        };
        linked.map_err(|e| at_block(position, block, e))?;
        prev = Some(block);
    }
    Ok(())
}

/// The offline auditor's re-derivation: checks each block's `records_root` and `tree_root`
/// against the shard's leaf hashes.
///
/// `leaf_hashes` are the shard's leaf hashes from log index 0 (at least up to the last block's
/// tree size). `blocks` must be in log order (tree sizes never decrease), as a chain that passed
/// [`verify_chain`] is; they need not start at height 1. The roots are recomputed with a
/// [`Frontier`] in one pass: O(leaves) hashing overall.
///
/// This checks roots only; check the links with [`verify_chain`]. Leaves after the last block's
/// tree size are not looked at.
///
/// # Errors
/// [`BlockError::AtBlock`] with the position of the first block that fails, wrapping a
/// [`Block::validate`] error, [`BlockError::TreeSizeDecreases`], [`BlockError::LeavesMissing`],
/// [`BlockError::RecordsRootMismatch`] or [`BlockError::TreeRootMismatch`].
pub fn verify_against_leaves(blocks: &[Block], leaf_hashes: &[Hash]) -> Result<(), BlockError> {
    let mut frontier = Frontier::new();
    for (position, block) in blocks.iter().enumerate() {
        check_roots(block, leaf_hashes, &mut frontier).map_err(|e| at_block(position, block, e))?;
    }
    Ok(())
}

/// Checks one block's roots, advancing `frontier` (the tree of the leaves before it) to its tree
/// size.
fn check_roots(
    block: &Block,
    leaf_hashes: &[Hash],
    frontier: &mut Frontier,
) -> Result<(), BlockError> {
    block.validate()?;
    if block.tree_size < frontier.size() {
        return Err(BlockError::TreeSizeDecreases { prev: frontier.size(), got: block.tree_size });
    }
    let missing =
        || BlockError::LeavesMissing { tree_size: block.tree_size, leaves: leaf_hashes.len() };
    let end = usize::try_from(block.tree_size.0).map_err(|_| missing())?;
    if end > leaf_hashes.len() {
        return Err(missing());
    }
    // validate() bounds record_count by tree_size, which is at most leaf_hashes.len().
    let begin = end - usize::try_from(block.record_count).expect("record_count <= tree_size");
    let records_root = root_of_leaf_hashes(&leaf_hashes[begin..end]);
    if records_root != block.records_root {
        return Err(BlockError::RecordsRootMismatch {
            expected: records_root,
            got: block.records_root,
        });
    }
    let done = usize::try_from(frontier.size().0).expect("the frontier holds given leaves");
    for h in &leaf_hashes[done..end] {
        frontier.push(*h);
    }
    let tree_root = frontier.root();
    if tree_root != block.tree_root {
        return Err(BlockError::TreeRootMismatch { expected: tree_root, got: block.tree_root });
    }
    Ok(())
}

/// Checks that the block's tree `(tree_size, tree_root)` is a prefix of the checkpoint's tree:
/// the same tree when the sizes are equal, otherwise through `proof`, a consistency proof from
/// `block.tree_size` to `checkpoint.size` (RFC 9162 §2.1.4.2, [`verify_consistency`]).
///
/// Requires a checkpoint the caller has already verified under a trust policy (this function only
/// compares trees). The checkpoint's origin must be the log of the block's shard
/// (`<cluster origin>/shard/<n>`, see [`crate::checkpoint::shard_origin`]); which cluster it
/// belongs to is the caller's to check, as for the checkpoint itself. When the sizes are equal,
/// `proof` may be `None` or an empty proof between those sizes.
///
/// This proves one block's tree, not its neighbours': the hash chain binds earlier blocks to the
/// last one, but not to the log, so a proven last block says nothing about the roots that earlier
/// blocks carry. Check every block whose roots a reader relies on, or re-derive them all with
/// [`verify_against_leaves`]. The block's `records_root` is not checked here (it needs the
/// block's leaves).
///
/// # Errors
/// A [`Block::validate`] error, [`BlockError::CheckpointShard`], [`BlockError::BeyondCheckpoint`],
/// [`BlockError::MissingProof`], [`BlockError::ProofSizes`] or [`BlockError::NotInCheckpoint`].
pub fn verify_against_checkpoint(
    block: &Block,
    checkpoint: &Checkpoint,
    proof: Option<&ConsistencyProof>,
) -> Result<(), BlockError> {
    block.validate()?;
    if checkpoint.shard() != Some(block.shard) {
        return Err(BlockError::CheckpointShard {
            shard: block.shard,
            origin: checkpoint.origin.clone(),
        });
    }
    let (from, to) = (block.tree_size, checkpoint.size);
    if from > to {
        return Err(BlockError::BeyondCheckpoint { tree_size: from, checkpoint_size: to });
    }
    let hashes: &[Hash] = match proof {
        None if from == to => &[],
        None => return Err(BlockError::MissingProof { from, to }),
        Some(p) if p.from_size != from || p.to_size != to => {
            return Err(BlockError::ProofSizes {
                proof_from: p.from_size,
                proof_to: p.to_size,
                from,
                to,
            });
        }
        Some(p) => &p.hashes,
    };
    // from >= record_count >= 1 after validate(), so the proof is never one from the empty tree.
    verify_consistency(from, to, &block.tree_root, &checkpoint.root, hashes)
        .map_err(|error| BlockError::NotInCheckpoint { from, to, error })
}
