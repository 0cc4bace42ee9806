//! The real code against a naive recursive RFC 6962 reference (tests/common), and against two
//! independent implementations: `rs_merkle` for roots and `ct-merkle` for proofs.

mod common;

use blockdb_verifier::proof::root_from_inclusion_proof;
use blockdb_verifier::{
    Frontier, Hash, LogIndex, ProofError, TreeSize, node_hash, root_of_leaf_hashes,
    verify_consistency, verify_inclusion,
};
use common::{leaf_hashes, reference};
use proptest::prelude::*;

/// Every check of one tree size `n` and leaf index / old size `m`.
fn check_inclusion(all: &[Hash], m: usize) {
    let n = all.len();
    let root = reference::root(all);
    let proof = reference::inclusion(m, all);
    let (index, size) = (LogIndex(m as u64), TreeSize(n as u64));
    verify_inclusion(&all[m], index, size, &proof, &root).expect("reference proof verifies");
    assert_eq!(root_from_inclusion_proof(&all[m], index, size, &proof), Ok(root));
    // Another leaf, another index, a shorter or longer proof: all refused.
    if n > 1 {
        let other = (m + 1) % n;
        assert!(verify_inclusion(&all[other], index, size, &proof, &root).is_err());
        assert!(verify_inclusion(&all[m], LogIndex(other as u64), size, &proof, &root).is_err());
    }
    let mut longer = proof.clone();
    longer.push(root);
    assert!(matches!(
        verify_inclusion(&all[m], index, size, &longer, &root),
        Err(ProofError::WrongProofLength { .. })
    ));
    if let Some((_, shorter)) = proof.split_last() {
        assert!(matches!(
            verify_inclusion(&all[m], index, size, shorter, &root),
            Err(ProofError::WrongProofLength { .. })
        ));
    }
    assert!(matches!(
        verify_inclusion(&all[m], LogIndex(n as u64), size, &proof, &root),
        Err(ProofError::IndexOutOfRange { .. })
    ));
}

fn check_consistency(all: &[Hash], m: usize) {
    let n = all.len();
    let (old, new) = (reference::root(&all[..m]), reference::root(all));
    let proof = reference::consistency(m, all);
    let (s1, s2) = (TreeSize(m as u64), TreeSize(n as u64));
    verify_consistency(s1, s2, &old, &new, &proof).expect("reference proof verifies");
    if m < n {
        // The old root of another size, or a new root of another tree: refused.
        let wrong_old = reference::root(&all[..m - 1]);
        assert!(verify_consistency(s1, s2, &wrong_old, &new, &proof).is_err());
        let wrong_new = node_hash(&new, &new);
        assert!(verify_consistency(s1, s2, &old, &wrong_new, &proof).is_err());
        assert!(verify_consistency(s2, s1, &new, &old, &proof).is_err());
    }
    let mut longer = proof.clone();
    longer.push(old);
    assert!(verify_consistency(s1, s2, &old, &new, &longer).is_err());
}

fn check_roots(all: &[Hash]) {
    let want = reference::root(all);
    assert_eq!(root_of_leaf_hashes(all), want, "root_of_leaf_hashes at {}", all.len());
    let mut f = Frontier::new();
    for h in all {
        f.push(*h);
    }
    assert_eq!(f.size(), TreeSize(all.len() as u64));
    assert_eq!(f.root(), want, "frontier at {}", all.len());
}

#[test]
fn every_tree_up_to_130_leaves() {
    let all = leaf_hashes(130);
    for n in 0..=all.len() {
        let d = &all[..n];
        check_roots(d);
        for m in 0..n {
            check_inclusion(d, m);
        }
        for m in 1..=n {
            check_consistency(d, m);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn trees_up_to_400_leaves(n in 1usize..=400, a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let all = leaf_hashes(n);
        check_roots(&all);
        check_inclusion(&all, a.index(n));
        check_consistency(&all, 1 + b.index(n));
    }

    #[test]
    fn any_single_wrong_proof_node_is_refused(n in 2usize..=300, a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>(), byte in 0usize..32, bit in 0u8..8) {
        let all = leaf_hashes(n);
        let m = a.index(n);
        let mut proof = reference::inclusion(m, &all);
        let i = b.index(proof.len());
        proof[i].0[byte] ^= 1 << bit;
        let root = reference::root(&all);
        prop_assert!(verify_inclusion(&all[m], LogIndex(m as u64), TreeSize(n as u64), &proof, &root).is_err());
    }
}

#[derive(Clone)]
struct Rfc6962Hasher;

impl rs_merkle::Hasher for Rfc6962Hasher {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        common::sha256(data)
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        // RFC 6962's split at the largest power of two equals rs_merkle's bottom-up pairing with
        // the last node promoted; the node hash carries the 0x01 prefix.
        match right {
            Some(r) => {
                let mut buf = [0u8; 65];
                buf[0] = 0x01;
                buf[1..33].copy_from_slice(left);
                buf[33..].copy_from_slice(r);
                common::sha256(&buf)
            }
            None => *left,
        }
    }
}

#[test]
fn roots_agree_with_rs_merkle() {
    let all = leaf_hashes(520);
    for n in 1..=all.len() {
        let raw: Vec<[u8; 32]> = all[..n].iter().map(|h| h.0).collect();
        let tree = rs_merkle::MerkleTree::<Rfc6962Hasher>::from_leaves(&raw);
        assert_eq!(tree.root(), Some(root_of_leaf_hashes(&all[..n]).0), "size {n}");
    }
}

type CtTree = ct_merkle::mem_backed_tree::MemoryBackedTree<sha2::Sha256, Vec<u8>>;

fn split_hashes(bytes: &[u8]) -> Vec<Hash> {
    bytes.chunks(32).map(|c| Hash::from_slice(c).expect("32-byte chunks")).collect()
}

#[test]
fn proofs_agree_with_ct_merkle() {
    let leaves: Vec<Vec<u8>> = (0..150).map(|i| format!("leaf {i}").into_bytes()).collect();
    let all = leaf_hashes(leaves.len());
    let mut tree = CtTree::new();
    for (n, leaf) in leaves.iter().enumerate().map(|(i, l)| (i + 1, l)) {
        tree.push(leaf.clone());
        let d = &all[..n];
        assert_eq!(tree.root().as_bytes().as_slice(), root_of_leaf_hashes(d).0.as_slice());
        for m in 0..n {
            let theirs = split_hashes(tree.prove_inclusion(m).as_bytes());
            assert_eq!(theirs, reference::inclusion(m, d), "inclusion {m} in {n}");
            verify_inclusion(
                &d[m],
                LogIndex(m as u64),
                TreeSize(n as u64),
                &theirs,
                &root_of_leaf_hashes(d),
            )
            .expect("ct-merkle proof verifies");
        }
        for m in 1..=n {
            let theirs = split_hashes(tree.prove_consistency(n - m).as_bytes());
            assert_eq!(theirs, reference::consistency(m, d), "consistency {m} -> {n}");
            verify_consistency(
                TreeSize(m as u64),
                TreeSize(n as u64),
                &root_of_leaf_hashes(&d[..m]),
                &root_of_leaf_hashes(d),
                &theirs,
            )
            .expect("ct-merkle proof verifies");
        }
    }
}

#[test]
fn proofs_at_the_largest_sizes_have_the_expected_length() {
    // A tree of 2^64 - 1 leaves: the proof of the last leaf is 63 hashes long, of the first 64.
    let size = TreeSize(u64::MAX);
    let leaf = common::leaf_hashes(1)[0];
    for (index, len) in [(0u64, 64usize), (u64::MAX - 1, 63)] {
        let err = verify_inclusion(&leaf, LogIndex(index), size, &[], &leaf);
        assert_eq!(err, Err(ProofError::WrongProofLength { expected: len, got: 0 }));
    }
}
