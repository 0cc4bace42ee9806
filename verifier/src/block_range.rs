//! The blocks response: a range of one shard's blocks, each with the signed checkpoint it is
//! proven against and the consistency proof from the block's tree to that checkpoint's tree, as
//! `GET /v1/blocks` returns it; and [`verify_block_range`], which checks all of it.
//!
//! ```text
//!  trusted block (optional)
//!      ▲ prev_hash
//!  blocks[0] ──consistency_proof──► checkpoint ◄── signed by k of the trusted keys
//!      ▲ prev_hash
//!  blocks[1] ──consistency_proof──► checkpoint
//!      ▲ ...
//! ```
//!
//! # JSON form ("blocks response, JSON")
//!
//! ```json
//! {
//!   "blocks": [
//!     {
//!       "block": { "shard": 0, "height": 1, "...": "the JSON form of a block", "hash": "..." },
//!       "consistency_proof": { "from_size": 3, "to_size": 20, "hashes": ["<64 hex digits>"] },
//!       "checkpoint": "<the signed checkpoint note, newlines included>"
//!     }
//!   ],
//!   "next_height": 7
//! }
//! ```
//!
//! - `blocks` holds at most [`BLOCK_RANGE_LEN_MAX`] items, by height; it may be empty (a shard
//!   without blocks, or a `from_height` past the latest block).
//! - `block` is the JSON form of [`Block`] (see [`crate::block`]), its `hash` field checked.
//! - `consistency_proof` goes from the block's `tree_size` to the checkpoint's size, with at most
//!   [`CONSISTENCY_PROOF_LEN_MAX`] hashes; it is `null` (or left out) when the two sizes are equal.
//! - `checkpoint` is a signed checkpoint note of at most [`crate::note::NOTE_LEN_MAX`] bytes. The
//!   server proves every block of one response against the same checkpoint, its latest; the
//!   format allows one per block.
//! - `next_height` is the height to ask for next, or `null` (or left out) when the response reaches
//!   the latest block.
//!
//! Unknown fields are refused at every level. The response carries no format string of its own:
//! it is versioned by its path (`/v1/`), and its parts are the versioned block encoding and signed
//! checkpoints.
//!
//! # What is checked
//!
//! [`verify_block_range`] checks that the blocks are an unbroken piece of one shard's chain,
//! that every checkpoint satisfies the trust policy and is of that shard's log, that every block's
//! tree is a prefix of its checkpoint's tree, and that no two tree heads the response vouches for
//! disagree. `next_height`, a paging hint that no signature covers, must follow the last block; a
//! client that pages passes the last verified block as the trusted block of the next call, so a
//! wrong hint cannot hide a gap.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::block::{Block, BlockError, verify_against_checkpoint, verify_chain};
use crate::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::hash::Hash;
use crate::ids::TreeSize;
use crate::policy::{PolicyError, TrustPolicy, VerifiedCheckpoint};
use crate::proof::{CONSISTENCY_PROOF_LEN_MAX, ConsistencyProof};

/// Most blocks one response may hold (the server sends at most 1000).
pub const BLOCK_RANGE_LEN_MAX: usize = 10_000;
/// Longest JSON document [`BlockRange::from_json`] accepts.
pub const BLOCK_RANGE_BYTES_MAX: usize = 128 * 1024 * 1024;

/// A blocks response: a range of one shard's blocks, each proven against a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRange {
    /// The blocks, by height.
    pub blocks: Vec<ProvenBlock>,
    /// The height to ask for next, if there are more blocks.
    pub next_height: Option<u64>,
}

/// One block of a [`BlockRange`], with what proves it against its shard's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenBlock {
    /// The block.
    pub block: Block,
    /// The consistency proof from the block's tree size to the checkpoint's size; `None` when
    /// they are equal.
    pub consistency_proof: Option<ConsistencyProof>,
    /// The signed checkpoint the block is proven against.
    pub checkpoint: SignedCheckpoint,
}

/// A range whose every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBlocks {
    /// The blocks, by height.
    pub blocks: Vec<Block>,
    /// The distinct checkpoints the blocks are proven against, in order of first appearance.
    pub checkpoints: Vec<VerifiedCheckpoint>,
    /// The response's `next_height`, which follows the last block.
    pub next_height: Option<u64>,
}

impl VerifiedBlocks {
    /// The last block: the trusted block to verify the next page with.
    pub fn last(&self) -> Option<&Block> {
        self.blocks.last()
    }

    /// The largest checkpoint (the first of that size), if there are blocks.
    pub fn latest_checkpoint(&self) -> Option<&VerifiedCheckpoint> {
        self.checkpoints.iter().rev().max_by_key(|c| c.checkpoint.size)
    }
}

/// Why a blocks response is unusable or does not verify. [`BlockRangeError::is_malformed`]
/// separates input that cannot be read from a well-formed response that is wrong, and
/// [`BlockRangeError::is_fork`] marks evidence that the log forked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockRangeError {
    /// The input is longer than [`BLOCK_RANGE_BYTES_MAX`].
    #[error("blocks response is {len} bytes, more than the limit of {BLOCK_RANGE_BYTES_MAX}")]
    TooLarge {
        /// The input's length.
        len: usize,
    },
    /// The JSON form is malformed, including a block whose JSON form is refused.
    #[error("malformed blocks response: {0}")]
    Json(String),
    /// More than [`BLOCK_RANGE_LEN_MAX`] blocks.
    #[error("blocks response holds {count} blocks, more than the limit of {BLOCK_RANGE_LEN_MAX}")]
    TooManyBlocks {
        /// Number of blocks.
        count: usize,
    },
    /// A consistency proof with more than [`CONSISTENCY_PROOF_LEN_MAX`] hashes.
    #[error(
        "block {position}: consistency proof has {len} hashes, \
         more than {CONSISTENCY_PROOF_LEN_MAX}"
    )]
    ProofTooLong {
        /// The item's position in `blocks`, from 0.
        position: usize,
        /// Number of hashes.
        len: usize,
    },
    /// A checkpoint is not a signed checkpoint note.
    #[error("block {position}: checkpoint: {error}")]
    Checkpoint {
        /// The item's position in `blocks`, from 0.
        position: usize,
        /// What is wrong with it.
        error: CheckpointError,
    },

    /// The blocks are not an unbroken piece of one shard's chain (from the trusted block, or from
    /// height 1): the [`verify_chain`] error.
    #[error("{0}")]
    Chain(BlockError),
    /// `next_height` does not follow the last block.
    #[error("next_height is {got}, but {}", expected_next(*.last_height))]
    NextHeight {
        /// The last block's height, or `None` when there are no blocks.
        last_height: Option<u64>,
        /// The response's `next_height`.
        got: u64,
    },
    /// A checkpoint's signatures do not satisfy the trust policy.
    #[error("block {position}: checkpoint: {error}")]
    Policy {
        /// The item's position in `blocks`, from 0.
        position: usize,
        /// What failed.
        error: PolicyError,
    },
    /// A block is not proven by its checkpoint: the checkpoint is of another shard's log, the
    /// block's tree is beyond it, or the block's tree is not a prefix of it.
    #[error("block {position} (height {height}): {error}")]
    NotProven {
        /// The item's position in `blocks`, from 0.
        position: usize,
        /// The block's height.
        height: u64,
        /// The [`verify_against_checkpoint`] error.
        error: BlockError,
    },
    /// The checkpoints are not all of one log.
    #[error("block {position}: checkpoint origin {got:?} is not the range's origin {expected:?}")]
    OriginMismatch {
        /// The item's position in `blocks`, from 0.
        position: usize,
        /// The origin of the first checkpoint.
        expected: String,
        /// This checkpoint's origin.
        got: String,
    },
    /// Two tree heads of one size with different roots, each vouched for by a trusted checkpoint
    /// (a checkpoint itself, or a block's tree proven to be a prefix of one).
    #[error(
        "fork: trusted checkpoints give size {size} two roots: {first_root} (checkpoint of \
         block {first}) and {second_root} (checkpoint of block {second})"
    )]
    Fork {
        /// The size of both tree heads.
        size: TreeSize,
        /// The position of the item whose checkpoint vouches for the first root.
        first: usize,
        /// The first root.
        first_root: Hash,
        /// The position of the item whose checkpoint vouches for the second root.
        second: usize,
        /// The second root.
        second_root: Hash,
    },
}

fn expected_next(last_height: Option<u64>) -> String {
    match last_height {
        Some(h) => format!("the last block is at height {h}"),
        None => "the response has no blocks".to_owned(),
    }
}

impl BlockRangeError {
    /// Whether the response could not be read at all, as opposed to read and found invalid.
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            BlockRangeError::TooLarge { .. }
                | BlockRangeError::Json(_)
                | BlockRangeError::TooManyBlocks { .. }
                | BlockRangeError::ProofTooLong { .. }
                | BlockRangeError::Checkpoint { .. }
        )
    }

    /// Whether the error is evidence that the log forked (two signed, incompatible tree heads).
    pub fn is_fork(&self) -> bool {
        matches!(self, BlockRangeError::Fork { .. })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockRangeJson {
    blocks: Vec<ProvenBlockJson>,
    #[serde(default)]
    next_height: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvenBlockJson {
    block: Block,
    #[serde(default)]
    consistency_proof: Option<ConsistencyProof>,
    checkpoint: String,
}

impl BlockRange {
    /// Parses the JSON form (see the module docs).
    ///
    /// # Errors
    /// A malformed-input [`BlockRangeError`]. Never panics.
    pub fn from_json(bytes: &[u8]) -> Result<BlockRange, BlockRangeError> {
        if bytes.len() > BLOCK_RANGE_BYTES_MAX {
            return Err(BlockRangeError::TooLarge { len: bytes.len() });
        }
        let doc: BlockRangeJson =
            serde_json::from_slice(bytes).map_err(|e| BlockRangeError::Json(e.to_string()))?;
        if doc.blocks.len() > BLOCK_RANGE_LEN_MAX {
            return Err(BlockRangeError::TooManyBlocks { count: doc.blocks.len() });
        }
        let blocks = doc
            .blocks
            .into_iter()
            .enumerate()
            .map(|(position, item)| {
                if let Some(p) = &item.consistency_proof
                    && p.hashes.len() > CONSISTENCY_PROOF_LEN_MAX
                {
                    return Err(BlockRangeError::ProofTooLong { position, len: p.hashes.len() });
                }
                let checkpoint = SignedCheckpoint::parse(item.checkpoint.as_bytes())
                    .map_err(|error| BlockRangeError::Checkpoint { position, error })?;
                Ok(ProvenBlock {
                    block: item.block,
                    consistency_proof: item.consistency_proof,
                    checkpoint,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BlockRange { blocks, next_height: doc.next_height })
    }

    /// The JSON form, pretty-printed.
    pub fn to_json(&self) -> String {
        let doc = BlockRangeJson {
            blocks: self
                .blocks
                .iter()
                .map(|b| ProvenBlockJson {
                    block: b.block.clone(),
                    consistency_proof: b.consistency_proof.clone(),
                    checkpoint: b.checkpoint.to_text(),
                })
                .collect(),
            next_height: self.next_height,
        };
        serde_json::to_string_pretty(&doc).expect("a blocks response serializes to JSON")
    }
}

/// The tree heads the response vouches for, by size, each with the position of the item whose
/// checkpoint vouches for it. Two roots for one size are a fork.
#[derive(Default)]
struct TreeHeads(BTreeMap<TreeSize, (Hash, usize)>);

impl TreeHeads {
    fn add(&mut self, size: TreeSize, root: Hash, position: usize) -> Result<(), BlockRangeError> {
        match self.0.entry(size) {
            Entry::Vacant(v) => {
                v.insert((root, position));
                Ok(())
            }
            Entry::Occupied(o) => {
                let &(first_root, first) = o.get();
                if first_root == root {
                    return Ok(());
                }
                Err(BlockRangeError::Fork {
                    size,
                    first,
                    first_root,
                    second: position,
                    second_root: root,
                })
            }
        }
    }
}

/// Verifies a blocks response, in this order:
///
/// 1. the blocks are an unbroken piece of one shard's chain ([`verify_chain`]): `blocks[0]`
///    follows `trusted` when given, and is the block at height 1 otherwise;
/// 2. `next_height`, when present, is one more than the last block's height (and absent when there
///    are no blocks);
/// 3. for each item, in order: its checkpoint satisfies `policy` (a note that repeats an earlier
///    one is verified once); the block's tree is a prefix of the checkpoint's tree, and the
///    checkpoint's origin names the block's shard ([`verify_against_checkpoint`] with the item's
///    consistency proof); the checkpoint has the origin of the first one; and no two tree heads
///    the response vouches for have one size and two roots. The tree heads vouched for are every
///    checkpoint's and every block's `(tree_size, tree_root)`, which its proof binds to its
///    checkpoint.
///
/// Requires `trusted`, when given, to be a block the caller verified before (for example
/// [`VerifiedBlocks::last`] of the previous page). Which cluster the origin is of is the caller's
/// to check, through the keys of `policy`. An empty range verifies, with no blocks.
///
/// This checks each block's `tree_root`, not its `records_root` (that needs the block's leaves;
/// see [`crate::block::verify_against_leaves`]).
///
/// # Errors
/// The first check that fails: [`BlockRangeError::Chain`], [`BlockRangeError::NextHeight`],
/// [`BlockRangeError::Policy`], [`BlockRangeError::NotProven`],
/// [`BlockRangeError::OriginMismatch`] or [`BlockRangeError::Fork`]. Never panics.
pub fn verify_block_range(
    range: &BlockRange,
    policy: &TrustPolicy,
    trusted: Option<&Block>,
) -> Result<VerifiedBlocks, BlockRangeError> {
    let blocks: Vec<Block> = range.blocks.iter().map(|b| b.block.clone()).collect();
    verify_chain(trusted, &blocks).map_err(BlockRangeError::Chain)?;
    if let Some(got) = range.next_height {
        let last_height = blocks.last().map(|b| b.height);
        if last_height.and_then(|h| h.checked_add(1)) != Some(got) {
            return Err(BlockRangeError::NextHeight { last_height, got });
        }
    }

    let mut checkpoints: Vec<VerifiedCheckpoint> = Vec::new();
    // Note text -> index in `checkpoints`: the server sends one checkpoint with every block, and
    // its signatures need checking once, not once per block.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut heads = TreeHeads::default();
    for (position, item) in range.blocks.iter().enumerate() {
        let text = item.checkpoint.to_text();
        let index = match seen.get(&text) {
            Some(&i) => i,
            None => {
                let verified = policy
                    .verify(&item.checkpoint)
                    .map_err(|error| BlockRangeError::Policy { position, error })?;
                checkpoints.push(verified);
                seen.insert(text, checkpoints.len() - 1);
                checkpoints.len() - 1
            }
        };
        let checkpoint = &checkpoints[index].checkpoint;
        let block = &item.block;
        verify_against_checkpoint(block, checkpoint, item.consistency_proof.as_ref()).map_err(
            |error| BlockRangeError::NotProven { position, height: block.height, error },
        )?;
        let origin = &checkpoints[0].checkpoint.origin;
        if checkpoint.origin != *origin {
            return Err(BlockRangeError::OriginMismatch {
                position,
                expected: origin.clone(),
                got: checkpoint.origin.clone(),
            });
        }
        heads.add(checkpoint.size, checkpoint.root, position)?;
        heads.add(block.tree_size, block.tree_root, position)?;
    }
    Ok(VerifiedBlocks { blocks, checkpoints, next_height: range.next_height })
}
