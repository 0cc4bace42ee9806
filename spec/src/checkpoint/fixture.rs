//! The logs of the checkpoint model, built once: real BlockDB leaves, real RFC 6962 trees, real
//! signed checkpoints and real consistency proofs, so that the model's clients run the verifier
//! on the same bytes a server would send.
//!
//! There are two histories of one origin: branch A, which an honest log serves, and branch B,
//! which agrees with A on the first `fork_at` leaves and then differs; a malicious log signs
//! checkpoints of both. Beside them: an impostor's checkpoint (the right origin, signed by a key
//! the clients do not trust) and a checkpoint of another shard, signed by the log's own key.
//!
//! Consistency proofs are made here by the RFC 9162 §2.1.4.1 recursion over the leaf hashes,
//! for any pair of sizes on either branch. (The server makes them from stored tiles; this one is
//! over a few leaves in memory, which is all the model needs.)

use std::collections::HashMap;

use blockdb_verifier::checkpoint::shard_origin;
use blockdb_verifier::{
    Checkpoint, ConsistencyProof, Hash, Leaf, LogIndex, NoteSigner, PolicyError, ShardId,
    SignedCheckpoint, TreeSize, TrustPolicy, TxnId, leaf_hash, root_of_leaf_hashes,
};

/// The cluster origin of the model's logs.
pub const CLUSTER_ORIGIN: &str = "blockdb.local/spec";
/// The name of the log's key (and of the impostor's).
const KEY_NAME: &str = "blockdb.local/spec/node-1";

/// One of the two histories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Branch {
    /// The honest history.
    A,
    /// The fork: A's first `fork_at` leaves, then others.
    B,
}

/// A signed checkpoint of the model, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckpointId {
    /// The log's checkpoint of `size` leaves of `branch`. Sizes up to `fork_at` are named on
    /// branch A only, since both branches have the same tree there.
    Log {
        /// The history.
        branch: Branch,
        /// The tree size.
        size: u8,
    },
    /// The right origin, signed by a key that is not in the trust policy.
    Impostor,
    /// The log's key, the tree of another shard.
    OtherOrigin,
}

/// The logs, checkpoints and proofs of the checkpoint model.
#[derive(Debug)]
pub struct Fixture {
    origin: String,
    policy: TrustPolicy,
    fork_at: u8,
    size_max: u8,
    /// Leaf hashes of branch A and branch B, `size_max` each.
    leaves: [Vec<Hash>; 2],
    signed: HashMap<CheckpointId, SignedCheckpoint>,
    /// [`TrustPolicy::verify`] of each signed checkpoint: a pure function of the policy and the
    /// note's bytes, so it is run once here rather than in every transition (where an Ed25519
    /// verification per step would dominate the check's time).
    verified: HashMap<CheckpointId, Result<Checkpoint, PolicyError>>,
    /// The checkpoints of the tracked origin by tree, to name what a client trusts.
    by_tree: HashMap<(TreeSize, Hash), CheckpointId>,
    /// `proofs[(branch, from, to)]` for `0 <= from <= to <= size_max`.
    proofs: HashMap<(Branch, u8, u8), ConsistencyProof>,
}

impl Fixture {
    /// Builds the logs: `size_max` leaves per branch, forking after `fork_at`.
    ///
    /// # Panics
    /// Unless `fork_at < size_max`.
    pub fn new(size_max: u8, fork_at: u8) -> Fixture {
        assert!(fork_at < size_max, "the branches must differ somewhere");
        let log_key = signer(1);
        let impostor = signer(2);
        let signer = log_key;
        let policy =
            TrustPolicy::new(vec![signer.verifier_key().clone()], 1).expect("one key, threshold 1");
        let origin = shard_origin(CLUSTER_ORIGIN, ShardId(0));
        let leaves_of = |shard: u32, tag: &str, from: u8| -> Vec<Hash> {
            (0..size_max)
                .map(|i| {
                    let t = if i < from { "a" } else { tag };
                    let key = format!("key-{t}{i}").into_bytes();
                    let leaf = Leaf::for_value(
                        ShardId(shard),
                        LogIndex(u64::from(i)),
                        1,
                        1_000 + u64::from(i),
                        TxnId::NONE,
                        key,
                        format!("value-{t}{i}").as_bytes(),
                    );
                    leaf_hash(&leaf.encode().expect("a small leaf encodes"))
                })
                .collect()
        };
        let leaves = [leaves_of(0, "a", size_max), leaves_of(0, "b", fork_at)];
        let checkpoint = |origin: &str, hashes: &[Hash]| Checkpoint {
            origin: origin.to_owned(),
            size: TreeSize(hashes.len() as u64),
            root: root_of_leaf_hashes(hashes),
            extensions: Vec::new(),
        };
        let sign = |c: &Checkpoint, by: &NoteSigner| c.sign(&[by]).expect("a valid checkpoint");
        let mut signed = HashMap::new();
        for size in 0..=size_max {
            let a = &leaves[0][..usize::from(size)];
            signed.insert(
                CheckpointId::Log { branch: Branch::A, size },
                sign(&checkpoint(&origin, a), &signer),
            );
            if size > fork_at {
                let b = &leaves[1][..usize::from(size)];
                signed.insert(
                    CheckpointId::Log { branch: Branch::B, size },
                    sign(&checkpoint(&origin, b), &signer),
                );
            }
        }
        let c_leaves = leaves_of(0, "c", 0);
        signed.insert(CheckpointId::Impostor, sign(&checkpoint(&origin, &c_leaves), &impostor));
        let other = shard_origin(CLUSTER_ORIGIN, ShardId(1));
        signed.insert(
            CheckpointId::OtherOrigin,
            sign(&checkpoint(&other, &leaves_of(1, "a", size_max)), &signer),
        );
        let verified =
            signed.iter().map(|(id, s)| (*id, policy.verify(s).map(|v| v.checkpoint))).collect();
        let by_tree = signed
            .iter()
            .map(|(id, s)| (*id, s.checkpoint()))
            .filter(|(_, c)| c.origin == origin)
            .map(|(id, c)| ((c.size, c.root), id))
            .collect();
        let mut proofs = HashMap::new();
        for (branch, hashes) in [(Branch::A, &leaves[0]), (Branch::B, &leaves[1])] {
            for to in 0..=size_max {
                for from in 0..=to {
                    let d = &hashes[..usize::from(to)];
                    let proof = ConsistencyProof {
                        from_size: TreeSize(u64::from(from)),
                        to_size: TreeSize(u64::from(to)),
                        hashes: consistency_proof(usize::from(from), d),
                    };
                    proofs.insert((branch, from, to), proof);
                }
            }
        }
        Fixture { origin, policy, fork_at, size_max, leaves, signed, verified, by_tree, proofs }
    }

    /// The origin the clients track.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The clients' trust policy: the log's key, threshold 1.
    pub fn policy(&self) -> &TrustPolicy {
        &self.policy
    }

    /// The largest tree size.
    pub fn size_max(&self) -> u8 {
        self.size_max
    }

    /// The number of leaves both branches share.
    pub fn fork_at(&self) -> u8 {
        self.fork_at
    }

    /// The id of the checkpoint of `size` leaves of `branch` (named on branch A where the
    /// branches agree).
    pub fn log_checkpoint(&self, branch: Branch, size: u8) -> CheckpointId {
        let branch = if size <= self.fork_at { Branch::A } else { branch };
        CheckpointId::Log { branch, size }
    }

    /// Every checkpoint id, log checkpoints first in size order.
    pub fn ids(&self) -> Vec<CheckpointId> {
        let mut ids: Vec<CheckpointId> = self.signed.keys().copied().collect();
        ids.sort();
        ids
    }

    /// The signed checkpoint.
    pub fn signed(&self, id: CheckpointId) -> &SignedCheckpoint {
        self.signed.get(&id).expect("every id has a signed checkpoint")
    }

    /// The checkpoint, unverified.
    pub fn checkpoint(&self, id: CheckpointId) -> &Checkpoint {
        self.signed(id).checkpoint()
    }

    /// [`TrustPolicy::verify`] of the signed checkpoint under the clients' policy (the
    /// checkpoint, or why its signatures do not satisfy the policy).
    pub fn verified(&self, id: CheckpointId) -> &Result<Checkpoint, PolicyError> {
        self.verified.get(&id).expect("every id was verified")
    }

    /// The id of a checkpoint of the tracked origin (one the model signed).
    ///
    /// # Panics
    /// If the model did not sign it.
    pub fn id_of(&self, checkpoint: &Checkpoint) -> CheckpointId {
        assert_eq!(checkpoint.origin, self.origin, "a checkpoint of the tracked origin");
        *self.by_tree.get(&(checkpoint.size, checkpoint.root)).expect("a checkpoint of the model")
    }

    /// The tree size of a checkpoint.
    pub fn size(&self, id: CheckpointId) -> u8 {
        match id {
            CheckpointId::Log { size, .. } => size,
            CheckpointId::Impostor | CheckpointId::OtherOrigin => self.size_max,
        }
    }

    /// The consistency proof from `from` to `to` leaves, made in `branch`'s tree.
    ///
    /// Requires `from <= to <= size_max`.
    pub fn proof(&self, branch: Branch, from: u8, to: u8) -> &ConsistencyProof {
        self.proofs.get(&(branch, from, to)).expect("a proof for every pair of sizes")
    }

    /// Whether a proof made in `branch`'s tree is an honest proof for checkpoint `id`: the
    /// branch holds that checkpoint's tree.
    pub fn made_in(&self, branch: Branch, id: CheckpointId) -> bool {
        self.consistent(id, self.log_checkpoint(branch, self.size(id)))
    }

    /// The truth, from the leaves themselves: whether the two checkpoints are of one history
    /// (the smaller tree is a prefix of the larger). Checkpoints of other logs or keys are
    /// consistent with nothing but themselves.
    pub fn consistent(&self, x: CheckpointId, y: CheckpointId) -> bool {
        match (x, y) {
            (
                CheckpointId::Log { branch: bx, size: sx },
                CheckpointId::Log { branch: by, size: sy },
            ) => {
                let n = usize::from(sx.min(sy));
                let of = |b: Branch| &self.leaves[b as usize][..n];
                of(bx) == of(by)
            }
            _ => x == y,
        }
    }
}

fn signer(seed: u8) -> NoteSigner {
    NoteSigner::from_seed(KEY_NAME, &[seed; 32]).expect("a valid key name")
}

/// RFC 9162 §2.1.4.1 PROOF(m, D[n]); empty for `m == 0` (nothing to prove) and `m == n`.
fn consistency_proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    if m == 0 {
        return Vec::new();
    }
    subproof(m, d, true)
}

fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![root_of_leaf_hashes(d)] };
    }
    // k: the largest power of two smaller than n.
    let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
    let (mut proof, sibling) = if m <= k {
        (subproof(m, &d[..k], b), &d[k..])
    } else {
        (subproof(m - k, &d[k..], false), &d[..k])
    };
    proof.push(root_of_leaf_hashes(sibling));
    proof
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proof_verifies_on_its_branch_and_fails_across_the_fork() {
        let f = Fixture::new(5, 2);
        for branch in [Branch::A, Branch::B] {
            for to in 1..=5u8 {
                for from in 1..to {
                    let old = f.checkpoint(f.log_checkpoint(branch, from));
                    let new = f.checkpoint(f.log_checkpoint(branch, to));
                    let p = f.proof(branch, from, to);
                    assert_eq!(p.verify(&old.root, &new.root), Ok(()), "{branch:?} {from}->{to}");
                    // The same proof against the other branch's new root fails once they differ.
                    let other = if branch == Branch::A { Branch::B } else { Branch::A };
                    let forked = f.checkpoint(f.log_checkpoint(other, to));
                    assert_eq!(p.verify(&old.root, &forked.root).is_ok(), to <= 2);
                }
            }
        }
    }

    #[test]
    fn signatures_and_origins_are_checked_once_here() {
        let f = Fixture::new(3, 1);
        assert!(f.verified(f.log_checkpoint(Branch::B, 3)).is_ok());
        assert!(f.verified(CheckpointId::Impostor).is_err());
        // Signed by the log's key: the client must check the origin itself.
        let other = f.verified(CheckpointId::OtherOrigin).as_ref().expect("the log's key");
        assert_ne!(other.origin, f.origin());
        let id = f.log_checkpoint(Branch::B, 3);
        assert_eq!(f.id_of(f.checkpoint(id)), id);
        assert_eq!(f.id_of(f.checkpoint(CheckpointId::Impostor)), CheckpointId::Impostor);
        assert!(f.consistent(f.log_checkpoint(Branch::A, 1), f.log_checkpoint(Branch::B, 3)));
        assert!(!f.consistent(f.log_checkpoint(Branch::A, 2), f.log_checkpoint(Branch::B, 3)));
    }
}
