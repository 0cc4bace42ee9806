//! Inclusion and consistency proof verification, as RFC 9162 §2.1.3.2 and §2.1.4.2 give the
//! algorithms.
//!
//! Both functions first check the shape of the proof (indices, sizes, number of hashes) and only
//! then hash, so a wrong proof is reported as precisely as it can be: an index out of range, a
//! proof of the wrong length, or a root that does not match.
//!
//! # Policy: consistency from tree size 0
//!
//! A consistency proof from the empty tree is refused with [`ProofError::ConsistencyFromEmptyTree`]
//! for every `size2`, `(0, 0)` included. Every tree extends the empty tree, so such a "proof"
//! carries no information, and a caller that asks for one has confused "I trust nothing yet" with
//! "I trust the empty tree". A BlockDB client that has no trusted checkpoint for an origin asks
//! for no consistency proof at all (see [`crate::verify_bundle`]). This is also the policy of
//! transparency-dev/merkle today.
//!
//! # Policy: hash lengths
//!
//! Every hash is a 32-byte SHA-256 output; the [`Hash`](struct@Hash) type cannot hold anything else, so roots
//! or proof nodes of other lengths are refused when they are decoded.

use serde::{Deserialize, Serialize};

use crate::hash::{Hash, node_hash};
use crate::ids::{LogIndex, TreeSize};

/// Longest inclusion proof for any tree of at most `2^64 - 1` leaves.
pub const INCLUSION_PROOF_LEN_MAX: usize = 64;
/// Longest consistency proof for any two trees of at most `2^64 - 1` leaves.
pub const CONSISTENCY_PROOF_LEN_MAX: usize = 2 * 64;

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// The leaf index of the proof.
        index: u64,
        /// The tree size of the proof.
        size: u64,
    },
    /// The proof has more or fewer hashes than the index and sizes call for.
    #[error("wrong proof length: expected {expected} hashes, got {got}")]
    WrongProofLength {
        /// Hashes the algorithm consumes for these indices and sizes.
        expected: usize,
        /// Hashes in the proof.
        got: usize,
    },
    /// The root computed from the proof differs from the expected root.
    #[error("root mismatch: the proof gives {computed}, expected {expected}")]
    RootMismatch {
        /// Root computed from the proof.
        computed: Hash,
        /// Root the caller expected.
        expected: Hash,
    },
    /// The old root computed from a consistency proof differs from the old root given.
    #[error("old root mismatch: the proof gives {computed} at size {size}, expected {expected}")]
    OldRootMismatch {
        /// The old tree size.
        size: u64,
        /// Old root computed from the proof.
        computed: Hash,
        /// Old root the caller gave.
        expected: Hash,
    },
    /// A consistency proof from the empty tree (see the module docs for why it is refused).
    #[error("consistency from tree size 0 is refused: every tree extends the empty tree")]
    ConsistencyFromEmptyTree,
    /// A consistency proof whose old size is larger than its new size.
    #[error("old tree size {size1} is larger than new tree size {size2}")]
    SizesOutOfOrder {
        /// The old tree size.
        size1: u64,
        /// The new tree size.
        size2: u64,
    },
}

/// A consistency proof between two sizes of one log, as carried in bundles and chains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// The size of the older tree (the one the client already trusts).
    pub from_size: TreeSize,
    /// The size of the newer tree.
    pub to_size: TreeSize,
    /// The proof nodes, as RFC 9162 §2.1.4.1 orders them.
    #[serde(with = "crate::serde_hex::hashes")]
    pub hashes: Vec<Hash>,
}

impl ConsistencyProof {
    /// Verifies the proof between `old_root` and `new_root`; see [`verify_consistency`].
    ///
    /// # Errors
    /// As [`verify_consistency`].
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), ProofError> {
        verify_consistency(self.from_size, self.to_size, old_root, new_root, &self.hashes)
    }
}

/// Verifies that the leaf with hash `leaf_hash` is at `index` in the tree of `size` leaves whose
/// root is `root`.
///
/// Requires `0 <= index < size`; `proof` holds the audit path from the leaf's sibling upwards.
///
/// # Errors
/// [`ProofError::IndexOutOfRange`], [`ProofError::WrongProofLength`] or
/// [`ProofError::RootMismatch`].
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: LogIndex,
    size: TreeSize,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(leaf_hash, index, size, proof)?;
    if computed != *root {
        return Err(ProofError::RootMismatch { computed, expected: *root });
    }
    Ok(())
}

/// The root that an inclusion proof implies for the leaf `leaf_hash` at `index` in a tree of
/// `size` leaves (RFC 9162 §2.1.3.2 without the final comparison).
///
/// # Errors
/// [`ProofError::IndexOutOfRange`] or [`ProofError::WrongProofLength`].
pub fn root_from_inclusion_proof(
    leaf_hash: &Hash,
    index: LogIndex,
    size: TreeSize,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    let (index, size) = (index.0, size.0);
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = path_len(index, size - 1);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength { expected, got: proof.len() });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    debug_assert_eq!(s_n, 0, "path_len counts the iterations that bring s_n to 0");
    Ok(r)
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the tree of `size1` leaves
/// with root `root1`.
///
/// Requires `0 < size1 <= size2`; for `size1 == size2` the proof must be empty and the roots
/// equal. Consistency from size 0 is refused (see the module docs).
///
/// # Errors
/// [`ProofError::ConsistencyFromEmptyTree`], [`ProofError::SizesOutOfOrder`],
/// [`ProofError::WrongProofLength`], [`ProofError::OldRootMismatch`] or
/// [`ProofError::RootMismatch`].
pub fn verify_consistency(
    size1: TreeSize,
    size2: TreeSize,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let (size1, size2) = (size1.0, size2.0);
    if size1 == 0 {
        return Err(ProofError::ConsistencyFromEmptyTree);
    }
    if size1 > size2 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength { expected: 0, got: proof.len() });
        }
        if root1 != root2 {
            return Err(ProofError::RootMismatch { computed: *root1, expected: *root2 });
        }
        return Ok(());
    }

    // Step 2: when size1 is a power of two, the old root is itself the first proof node.
    let prepend = size1.is_power_of_two();
    let (mut f_n, mut s_n) = (size1 - 1, size2 - 1);
    // Step 4: skip the levels where the old tree's last node is a right child.
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let expected = usize::from(!prepend) + path_len(f_n, s_n);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength { expected, got: proof.len() });
    }
    let (first, rest) = if prepend {
        (root1, proof)
    } else {
        proof.split_first().expect("a proof for a non-power-of-two size1 is not empty")
    };

    let (mut f_r, mut s_r) = (*first, *first);
    for c in rest {
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    debug_assert_eq!(s_n, 0, "path_len counts the iterations that bring s_n to 0");
    if f_r != *root1 {
        return Err(ProofError::OldRootMismatch { size: size1, computed: f_r, expected: *root1 });
    }
    if s_r != *root2 {
        return Err(ProofError::RootMismatch { computed: s_r, expected: *root2 });
    }
    Ok(())
}

/// How many proof nodes the RFC 9162 loop consumes from the node pair `(f_n, s_n)`: the loop runs
/// until `s_n` reaches 0, taking one node per iteration.
fn path_len(mut f_n: u64, mut s_n: u64) -> usize {
    let mut n = 0;
    while s_n != 0 {
        if f_n & 1 == 1 || f_n == s_n {
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        }
        f_n >>= 1;
        s_n >>= 1;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_len_matches_the_closed_form() {
        // inner = bit length of (index ^ (size - 1)), border = popcount(index >> inner).
        for size in 1u64..300 {
            for index in 0..size {
                let inner = 64 - (index ^ (size - 1)).leading_zeros();
                let border = (index >> inner).count_ones();
                assert_eq!(path_len(index, size - 1), (inner + border) as usize, "{index}/{size}");
            }
        }
    }

    #[test]
    fn longest_proofs_fit_the_declared_bounds() {
        assert!(path_len(0, u64::MAX - 1) <= INCLUSION_PROOF_LEN_MAX);
        assert!(path_len(u64::MAX - 2, u64::MAX - 1) <= INCLUSION_PROOF_LEN_MAX);
    }
}
