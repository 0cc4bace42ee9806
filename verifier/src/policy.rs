//! The trust policy: "a checkpoint is trusted when at least `k` of these verifier keys signed
//! it". Each BlockDB node signs with its own key, so `k = 1` trusts any one node of the cluster and
//! a larger `k` asks that several replicas vouch for the same tree head.

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::note::{NoteError, VerifierKey};

/// Why a trust policy could not be built, or a checkpoint did not satisfy it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy lists no keys.
    #[error("a trust policy needs at least one verifier key")]
    NoKeys,
    /// The threshold is 0 or more than the number of keys.
    #[error("threshold {threshold} is outside 1..={keys}")]
    BadThreshold {
        /// The threshold asked for.
        threshold: usize,
        /// The number of keys.
        keys: usize,
    },
    /// The same key is listed twice.
    #[error("verifier key {0} is listed twice")]
    DuplicateKey(String),
    /// A line of a key file does not parse.
    #[error("key file line {line}: {error}")]
    KeyFileLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        error: NoteError,
    },
    /// Fewer than `k` trusted keys signed.
    #[error("checkpoint is signed by {got} trusted keys, fewer than the {need} the policy asks")]
    NotEnoughSignatures {
        /// Trusted keys whose signatures verified.
        got: usize,
        /// The threshold.
        need: usize,
    },
    /// The note is malformed or a trusted key's signature fails.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// "At least `threshold` of `keys`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    keys: Vec<VerifierKey>,
    threshold: usize,
}

/// A checkpoint whose signatures satisfied a trust policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The trusted keys that signed it, as `name+keyid+key` strings.
    pub signed_by: Vec<String>,
}

impl TrustPolicy {
    /// The policy "at least `threshold` of `keys`".
    ///
    /// # Errors
    /// [`PolicyError::NoKeys`], [`PolicyError::BadThreshold`] or [`PolicyError::DuplicateKey`].
    pub fn new(keys: Vec<VerifierKey>, threshold: usize) -> Result<TrustPolicy, PolicyError> {
        if keys.is_empty() {
            return Err(PolicyError::NoKeys);
        }
        if threshold == 0 || threshold > keys.len() {
            return Err(PolicyError::BadThreshold { threshold, keys: keys.len() });
        }
        for (i, key) in keys.iter().enumerate() {
            let same_id = |k: &&VerifierKey| k.name() == key.name() && k.key_id() == key.key_id();
            if keys[..i].iter().any(|k| same_id(&k)) {
                return Err(PolicyError::DuplicateKey(key.to_string()));
            }
        }
        Ok(TrustPolicy { keys, threshold })
    }

    /// Parses verifier keys, one per line; empty lines and lines starting with `#` are skipped.
    ///
    /// # Errors
    /// [`PolicyError::KeyFileLine`] for the first line that is not a verifier key.
    pub fn parse_keys(text: &str) -> Result<Vec<VerifierKey>, PolicyError> {
        text.lines()
            .enumerate()
            .map(|(i, l)| (i, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .map(|(i, l)| {
                l.parse().map_err(|error| PolicyError::KeyFileLine { line: i + 1, error })
            })
            .collect()
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[VerifierKey] {
        &self.keys
    }

    /// The number of trusted signatures a checkpoint needs.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Checks a signed checkpoint against the policy.
    ///
    /// # Errors
    /// [`PolicyError::Checkpoint`] when a trusted key's signature fails or none signed, and
    /// [`PolicyError::NotEnoughSignatures`] when fewer than the threshold signed.
    pub fn verify(&self, signed: &SignedCheckpoint) -> Result<VerifiedCheckpoint, PolicyError> {
        let keys = signed.note().verify(&self.keys).map_err(CheckpointError::from)?;
        if keys.len() < self.threshold {
            return Err(PolicyError::NotEnoughSignatures { got: keys.len(), need: self.threshold });
        }
        Ok(VerifiedCheckpoint {
            checkpoint: signed.checkpoint().clone(),
            signed_by: keys.iter().map(|k| k.to_string()).collect(),
        })
    }
}
