//! The right edge of an RFC 6962 tree: one hash per complete subtree on the way from the last leaf
//! to the root (a "compact range" that starts at leaf 0).
//!
//! A tree of size `n` is the concatenation of complete subtrees, one for each set bit of `n`,
//! largest first. The frontier keeps exactly those roots, so appending a leaf costs amortised O(1)
//! hashes and the root costs O(log n), with O(log n) memory. The server keeps its root this way
//! as leaves are applied; auditors use it to re-derive every root of an export.

use crate::hash::{Hash, empty_root, node_hash};
use crate::ids::TreeSize;

/// Roots of the complete subtrees that make up a tree, largest (leftmost) first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `nodes[i]` covers `2^h` leaves, where `h` is the i-th set bit of `size` from the top.
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// The frontier of a tree of `size` leaves from the roots of its complete subtrees, largest
    /// (leftmost) first: one per set bit of `size`. `None` when the count does not match.
    pub fn from_nodes(size: TreeSize, nodes: Vec<Hash>) -> Option<Frontier> {
        (nodes.len() == size.0.count_ones() as usize).then_some(Frontier { size: size.0, nodes })
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> TreeSize {
        TreeSize(self.size)
    }

    /// Appends one leaf, given its leaf hash.
    ///
    /// # Panics
    /// When the tree already holds `u64::MAX` leaves, which no log can reach.
    pub fn push(&mut self, leaf_hash: Hash) {
        let mut node = leaf_hash;
        // Each trailing one bit of the old size is a complete subtree of the same height as the
        // carry: merge them, right to left, as binary addition does.
        let mut carry = self.size;
        while carry & 1 == 1 {
            let left = self.nodes.pop().expect("a set bit of size has a node in the frontier");
            node = node_hash(&left, &node);
            carry >>= 1;
        }
        self.nodes.push(node);
        self.size = self.size.checked_add(1).expect("tree size overflows u64");
        debug_assert_eq!(self.nodes.len(), self.size.count_ones() as usize);
    }

    /// The RFC 6962 root of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |right, left| node_hash(left, &right))
    }
}
