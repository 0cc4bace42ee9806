//! The signed checkpoints a client verified last, so that the same note seen again is not
//! verified again.
//!
//! Every read between two writes of a shard carries the same signed checkpoint, and every write
//! of one batch too; checking its signatures (Ed25519) again each time would cost more than the
//! rest of the read's verification. A note that is equal, byte for byte with its signatures, to
//! one that satisfied the client's trust policy satisfies it again, so its earlier result is
//! reused. Anything else — a new tree size, another signature — is verified in full. The cache
//! holds [`RECENT_MAX`] notes, the most recently seen first.

use std::collections::VecDeque;
use std::sync::Mutex;

use blockdb_verifier::{PolicyError, SignedCheckpoint, TrustPolicy, VerifiedCheckpoint};

/// Signed checkpoints remembered.
pub(crate) const RECENT_MAX: usize = 16;

/// Checkpoints verified under one trust policy (the client's, which never changes).
#[derive(Debug, Default)]
pub(crate) struct RecentCheckpoints {
    recent: Mutex<VecDeque<(SignedCheckpoint, VerifiedCheckpoint)>>,
}

impl RecentCheckpoints {
    /// `policy.verify(signed)`, or its result for an equal note verified before.
    ///
    /// # Errors
    /// As [`TrustPolicy::verify`]; a note that failed is not remembered.
    pub(crate) fn verify(
        &self,
        policy: &TrustPolicy,
        signed: &SignedCheckpoint,
    ) -> Result<VerifiedCheckpoint, PolicyError> {
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = recent.iter().position(|(s, _)| s == signed) {
                let hit = recent.remove(i).expect("the position is in range");
                let verified = hit.1.clone();
                recent.push_front(hit);
                return Ok(verified);
            }
        }
        // Outside the lock: verification takes a while, and others may verify meanwhile.
        let verified = policy.verify(signed)?;
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if !recent.iter().any(|(s, _)| s == signed) {
            recent.push_front((signed.clone(), verified.clone()));
            recent.truncate(RECENT_MAX);
        }
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use blockdb_verifier::{Checkpoint, Hash, NoteSigner, TreeSize};

    use super::*;

    fn signer(name: &str, seed: u8) -> NoteSigner {
        NoteSigner::from_seed(name, &[seed; 32]).expect("a signer")
    }

    fn signed(signer: &NoteSigner, size: u64) -> SignedCheckpoint {
        let cp = Checkpoint {
            origin: "o/shard/0".into(),
            size: TreeSize(size),
            root: Hash([size as u8; 32]),
            extensions: Vec::new(),
        };
        cp.sign(&[signer]).expect("signs")
    }

    #[test]
    fn a_note_seen_again_is_not_verified_again_and_nothing_else_slips_through() {
        let (good, other) = (signer("node-1", 1), signer("node-1", 2));
        let policy = TrustPolicy::new(vec![good.verifier_key().clone()], 1).expect("policy");
        let recent = RecentCheckpoints::default();
        let a = signed(&good, 5);
        let first = recent.verify(&policy, &a).expect("verifies");
        assert_eq!(recent.verify(&policy, &a).expect("remembered"), first);
        // The same checkpoint signed by an untrusted key with the same name: not the same note.
        let forged = signed(&other, 5);
        assert!(recent.verify(&policy, &forged).is_err());
        assert!(recent.verify(&policy, &forged).is_err(), "a failure is not remembered");
        // Only RECENT_MAX notes are kept, the most recently seen first.
        for size in 6..6 + RECENT_MAX as u64 {
            recent.verify(&policy, &signed(&good, size)).expect("verifies");
        }
        let kept = recent.recent.lock().expect("lock");
        assert_eq!(kept.len(), RECENT_MAX);
        assert!(kept.iter().all(|(s, _)| s != &a), "the oldest went");
    }
}
