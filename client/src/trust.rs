//! The client's trusted state: per log origin, the latest checkpoint it has verified. This is
//! the sans-IO heart of fork detection: every checkpoint a server shows must be consistent with
//! the one kept, and only then does the kept one move forward.
//!
//! ```text
//!   observe(new checkpoint, proof?)
//!     no checkpoint kept for the origin ─────────────► keep it (first use)
//!     same size: same root? ─────────────────────────► yes: nothing to do; no: FORK
//!     larger: proof from the kept size verifies? ────► keep the new one
//!                 no proof from the kept size ───────► NeedsProof(kept → new)
//!     smaller: a linearizable answer ────────────────► ROLLBACK
//!              a stale answer ───────────────────────► NeedsProof(new → kept)
//!   prove(older, newer, proof) — the proof the client fetched — settles a NeedsProof.
//!
//!   compare(theirs, proof?) — another client's checkpoint, without changing the state
//!     same size: same root? ─────────────────────────► Consistent / FORK
//!     other size: a proof between the two verifies? ─► Consistent / FORK
//!                 no proof for those sizes ──────────► NeedsProof(older → newer)
//! ```
//!
//! Every checkpoint given here must already have been verified under the trust policy.

use std::collections::BTreeMap;

use blockdb_verifier::{
    Checkpoint, ConsistencyProof, ConsistencyStatus, TreeSize, verify_consistency, verify_extends,
};

use crate::error::VerifyError;

/// What observing a checkpoint requires next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The checkpoint is consistent with the trusted state, which now includes it.
    Accepted,
    /// A consistency proof between these sizes is needed before the checkpoint can be judged:
    /// fetch it and call [`TrustedState::prove`].
    NeedsProof {
        /// The older size.
        from: TreeSize,
        /// The newer size.
        to: TreeSize,
    },
}

/// How another client's checkpoint compares with the kept one ([`TrustedState::compare`]).
#[derive(Debug)]
pub enum Comparison {
    /// No checkpoint of that origin is kept: nothing to compare with.
    Untracked,
    /// Both are of one history: the same tree, or a consistency proof between them verified.
    /// If theirs is the larger, [`TrustedState::observe`] with the same proof takes it.
    Consistent,
    /// Evidence against the log ([`VerifyError::is_fork`]): one size with two roots, or a
    /// consistency proof from the log that fails between two checkpoints it signed.
    Fork(VerifyError),
    /// The sizes differ and no proof between them came: ask the log for one and compare again.
    /// Nothing is proven either way until it answers.
    NeedsProof {
        /// The older size.
        from: TreeSize,
        /// The newer size.
        to: TreeSize,
    },
}

/// What [`TrustedState::settle`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The proof verified; the trusted state holds the larger checkpoint.
    Done,
    /// The kept checkpoint changed while the proof was fetched; observe again.
    Moved,
}

/// The latest verified checkpoint per log origin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TrustedState {
    checkpoints: BTreeMap<String, Checkpoint>,
}

impl TrustedState {
    /// An empty state: the first checkpoint of each origin is taken on first use.
    pub fn new() -> TrustedState {
        TrustedState::default()
    }

    /// The kept checkpoint of `origin`.
    pub fn get(&self, origin: &str) -> Option<&Checkpoint> {
        self.checkpoints.get(origin)
    }

    /// Every kept checkpoint, by origin.
    pub fn checkpoints(&self) -> impl Iterator<Item = &Checkpoint> {
        self.checkpoints.values()
    }

    /// Observes `new` (verified under the policy), which came with `proof` (a consistency proof
    /// from some earlier size, if the answer had one). `allow_older`: whether a smaller tree than
    /// the kept one is acceptable (a stale read) or a rollback (a linearizable read).
    ///
    /// # Errors
    /// [`VerifyError::Extend`] for a fork or a proof that does not verify,
    /// [`VerifyError::Rollback`] for a smaller tree where none is allowed.
    pub fn observe(
        &mut self,
        new: &Checkpoint,
        proof: Option<&ConsistencyProof>,
        allow_older: bool,
    ) -> Result<Observation, VerifyError> {
        let Some(kept) = self.checkpoints.get(&new.origin) else {
            self.checkpoints.insert(new.origin.clone(), new.clone());
            return Ok(Observation::Accepted);
        };
        if new.size < kept.size {
            if !allow_older {
                return Err(VerifyError::Rollback {
                    origin: new.origin.clone(),
                    trusted: kept.size,
                    got: new.size,
                });
            }
            return Ok(Observation::NeedsProof { from: new.size, to: kept.size });
        }
        if new.size > kept.size && proof.is_none_or(|p| p.from_size != kept.size) {
            return Ok(Observation::NeedsProof { from: kept.size, to: new.size });
        }
        let proof = proof.filter(|p| p.from_size == kept.size);
        match verify_extends(kept, new, proof)? {
            ConsistencyStatus::SameTree => {}
            _ => {
                self.checkpoints.insert(new.origin.clone(), new.clone());
            }
        }
        Ok(Observation::Accepted)
    }

    /// Settles a [`Observation::NeedsProof`]: `proof` must show that `older` is a prefix of
    /// `newer` (both checkpoints of one origin, verified under the policy, one of them the kept
    /// one); the kept checkpoint becomes the larger.
    ///
    /// # Errors
    /// [`VerifyError::Consistency`] when the proof does not verify (a fork), or
    /// [`VerifyError::Mismatch`] when the checkpoints are not what the proof is about.
    pub fn prove(
        &mut self,
        older: &Checkpoint,
        newer: &Checkpoint,
        proof: &ConsistencyProof,
    ) -> Result<(), VerifyError> {
        check_prefix(older, newer, proof)?;
        let kept = self.checkpoints.get(&older.origin);
        if kept.is_some_and(|k| k != older && k != newer) {
            return Err(VerifyError::Mismatch("neither checkpoint is the kept one".into()));
        }
        self.checkpoints.insert(newer.origin.clone(), newer.clone());
        Ok(())
    }

    /// Compares `theirs` (another client's checkpoint, verified under the policy) with the kept
    /// checkpoint of its origin, using `proof`, a consistency proof from the smaller size to the
    /// larger that the log supplied (a proof for other sizes is ignored). The state does not
    /// change. The proof comes from the log, not from the peer, so a proof that fails is
    /// evidence against the log.
    pub fn compare(&self, theirs: &Checkpoint, proof: Option<&ConsistencyProof>) -> Comparison {
        let Some(kept) = self.checkpoints.get(&theirs.origin) else {
            return Comparison::Untracked;
        };
        let (older, newer) = if theirs.size < kept.size { (theirs, kept) } else { (kept, theirs) };
        let proof = proof.filter(|p| p.from_size == older.size && p.to_size == newer.size);
        if older.size < newer.size && older.size.0 > 0 && proof.is_none() {
            return Comparison::NeedsProof { from: older.size, to: newer.size };
        }
        match verify_extends(older, newer, proof) {
            Ok(_) => Comparison::Consistent,
            Err(e) => Comparison::Fork(VerifyError::Extend(e)),
        }
    }

    /// Settles the [`Observation::NeedsProof`] that observing `new` returned while `kept` was
    /// the kept checkpoint of its origin, with `proof` — between their sizes — fetched from the
    /// log. If `kept` is still the kept one, the older of the two must be proven a prefix of the
    /// newer ([`TrustedState::prove`]) and the larger is kept. If another answer moved the kept
    /// checkpoint meanwhile: an older `new` proven a prefix of `kept` is settled all the same
    /// (what is kept now was proven to extend `kept`, so it extends `new` too); a newer one is
    /// not ([`Settled::Moved`]: the caller observes it again).
    ///
    /// # Errors
    /// As [`TrustedState::prove`].
    pub fn settle(
        &mut self,
        kept: &Checkpoint,
        new: &Checkpoint,
        proof: &ConsistencyProof,
    ) -> Result<Settled, VerifyError> {
        if self.get(&new.origin) != Some(kept) {
            if new.size < kept.size && new.origin == kept.origin {
                check_prefix(new, kept, proof)?;
                return Ok(Settled::Done);
            }
            return Ok(Settled::Moved);
        }
        let (older, newer) = if new.size < kept.size { (new, kept) } else { (kept, new) };
        self.prove(older, newer, proof)?;
        Ok(Settled::Done)
    }

    /// Sets the kept checkpoint of its origin, as loaded from a store.
    pub fn insert(&mut self, checkpoint: Checkpoint) {
        self.checkpoints.insert(checkpoint.origin.clone(), checkpoint);
    }
}

/// Checks that `proof` shows `older` a prefix of `newer` (same origin, the proof's sizes theirs).
fn check_prefix(
    older: &Checkpoint,
    newer: &Checkpoint,
    proof: &ConsistencyProof,
) -> Result<(), VerifyError> {
    if older.origin != newer.origin || proof.from_size != older.size || proof.to_size != newer.size
    {
        return Err(VerifyError::Mismatch(format!(
            "a proof from {} to {} for checkpoints of sizes {} and {}",
            proof.from_size, proof.to_size, older.size, newer.size
        )));
    }
    if older.size.0 > 0 {
        verify_consistency(older.size, newer.size, &older.root, &newer.root, &proof.hashes)
            .map_err(|error| VerifyError::Consistency {
                from: older.size,
                to: newer.size,
                error,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use blockdb_verifier::{Frontier, Hash, leaf_hash};

    use super::*;

    fn tree(leaves: &[&[u8]]) -> Vec<Hash> {
        leaves.iter().map(|l| leaf_hash(l)).collect()
    }

    fn checkpoint(hashes: &[Hash]) -> Checkpoint {
        let mut f = Frontier::new();
        for h in hashes {
            f.push(*h);
        }
        Checkpoint {
            origin: "o/shard/0".into(),
            size: f.size(),
            root: f.root(),
            extensions: vec![],
        }
    }

    #[test]
    fn first_use_then_same_tree_then_fork() {
        let honest = tree(&[b"a", b"b", b"c"]);
        let forked = tree(&[b"a", b"b", b"X"]);
        let mut t = TrustedState::new();
        assert_eq!(t.observe(&checkpoint(&honest), None, false).unwrap(), Observation::Accepted);
        assert_eq!(t.observe(&checkpoint(&honest), None, false).unwrap(), Observation::Accepted);
        let err = t.observe(&checkpoint(&forked), None, false).unwrap_err();
        assert!(err.is_fork(), "{err}");
        assert_eq!(t.get("o/shard/0"), Some(&checkpoint(&honest)));
    }

    #[test]
    fn a_larger_tree_needs_a_proof_and_a_smaller_one_is_a_rollback_unless_stale() {
        let leaves = tree(&[b"a", b"b", b"c", b"d", b"e"]);
        let mut t = TrustedState::new();
        t.observe(&checkpoint(&leaves[..3]), None, false).unwrap();
        let bigger = checkpoint(&leaves);
        assert_eq!(
            t.observe(&bigger, None, false).unwrap(),
            Observation::NeedsProof { from: TreeSize(3), to: TreeSize(5) }
        );
        let rollback = t.observe(&checkpoint(&leaves[..2]), None, false).unwrap_err();
        assert!(matches!(rollback, VerifyError::Rollback { .. }), "{rollback}");
        assert_eq!(
            t.observe(&checkpoint(&leaves[..2]), None, true).unwrap(),
            Observation::NeedsProof { from: TreeSize(2), to: TreeSize(3) }
        );
    }

    /// The consistency proof from 2 leaves to 4: the old tree is the left subtree, so the
    /// proof is its sibling.
    fn proof_2_to_4(hashes: &[Hash]) -> ConsistencyProof {
        ConsistencyProof {
            from_size: TreeSize(2),
            to_size: TreeSize(4),
            hashes: vec![blockdb_verifier::node_hash(&hashes[2], &hashes[3])],
        }
    }

    #[test]
    fn an_older_answer_settles_against_a_kept_checkpoint_that_moved_on_meanwhile() {
        let honest = tree(&[b"a", b"b", b"c", b"d", b"e", b"f"]);
        let forked = tree(&[b"a", b"X", b"c", b"d"]);
        let kept = checkpoint(&honest[..4]);
        let mut t = TrustedState::new();
        t.insert(kept.clone());
        // A concurrent call moved the kept checkpoint on to 6 leaves.
        let moved = checkpoint(&honest);
        t.insert(moved.clone());
        // An answer at 2 leaves, proven a prefix of the 4 that were kept when it was asked
        // about: settled, and the kept checkpoint stays the larger.
        let older = checkpoint(&honest[..2]);
        assert_eq!(t.settle(&kept, &older, &proof_2_to_4(&honest)).unwrap(), Settled::Done);
        assert_eq!(t.get("o/shard/0"), Some(&moved));
        // A forked one is caught all the same.
        let fork = checkpoint(&forked[..2]);
        let e = t.settle(&kept, &fork, &proof_2_to_4(&honest)).unwrap_err();
        assert!(matches!(e, VerifyError::Consistency { .. }), "{e}");
        // A newer answer is observed again against what is kept now.
        let newer = checkpoint(&honest[..5]);
        let proof =
            ConsistencyProof { from_size: TreeSize(4), to_size: TreeSize(5), hashes: vec![] };
        assert_eq!(t.settle(&kept, &newer, &proof).unwrap(), Settled::Moved);
    }

    #[test]
    fn compare_needs_a_proof_between_sizes_and_finds_forks() {
        let honest = tree(&[b"a", b"b", b"c", b"d"]);
        let forked = tree(&[b"a", b"X", b"c", b"d"]);
        let mut t = TrustedState::new();
        let theirs = checkpoint(&honest);
        assert!(matches!(t.compare(&theirs, None), Comparison::Untracked));
        t.observe(&checkpoint(&honest[..2]), None, false).unwrap();
        assert!(matches!(
            t.compare(&theirs, None),
            Comparison::NeedsProof { from: TreeSize(2), to: TreeSize(4) }
        ));
        let good = proof_2_to_4(&honest);
        assert!(matches!(t.compare(&theirs, Some(&good)), Comparison::Consistent));
        // The same proof does not show the forked tree extends the kept one.
        let bad = proof_2_to_4(&forked);
        match t.compare(&checkpoint(&forked), Some(&bad)) {
            Comparison::Fork(e) => assert!(e.is_fork(), "{e}"),
            other => panic!("{other:?}"),
        }
        // Nothing changed; then one size, two roots.
        t.observe(&theirs, Some(&good), false).unwrap();
        assert!(matches!(t.compare(&theirs, None), Comparison::Consistent));
        assert!(matches!(t.compare(&checkpoint(&forked), None), Comparison::Fork(_)));
    }
}
