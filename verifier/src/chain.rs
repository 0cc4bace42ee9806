//! Checkpoints that extend one another: the check a client makes when a new checkpoint replaces
//! the one it trusts ([`verify_extends`]), and a chain of checkpoints linked by consistency proofs,
//! which an auditor keeps to show that a log never forked ([`CheckpointChain`]).
//!
//! # The chain's JSON form, version 1
//!
//! ```json
//! {
//!   "format": "blockdb-checkpoint-chain/v1",
//!   "checkpoints": ["<signed checkpoint note>", "..."],
//!   "proofs": [{ "from_size": 3, "to_size": 8, "hashes": ["<64 hex digits>", "..."] }]
//! }
//! ```
//!
//! `proofs[i]` links `checkpoints[i]` to `checkpoints[i + 1]`, so there is one proof fewer than
//! checkpoints. All checkpoints have one origin and sizes that never decrease. Unknown fields are
//! refused. A link between two checkpoints of the same size has an empty proof and equal roots;
//! a link from a checkpoint of size 0 has an empty proof (every tree extends the empty tree, see
//! [`crate::proof`]).

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::hash::{Hash, empty_root};
use crate::ids::TreeSize;
use crate::policy::{PolicyError, TrustPolicy, VerifiedCheckpoint};
use crate::proof::{CONSISTENCY_PROOF_LEN_MAX, ConsistencyProof, ProofError};

/// The `format` value of the chain's JSON form.
pub const CHAIN_FORMAT: &str = "blockdb-checkpoint-chain/v1";
/// Most checkpoints one chain document may hold.
pub const CHAIN_LEN_MAX: usize = 100_000;

/// How a newer checkpoint relates to a trusted older one, once [`verify_extends`] accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsistencyStatus {
    /// There was no trusted checkpoint to compare with.
    NoTrustedState,
    /// The new checkpoint has the trusted size and root.
    SameTree,
    /// The trusted checkpoint was of the empty tree, which every tree extends.
    FromEmptyTree,
    /// A consistency proof from the trusted size verified.
    Proven {
        /// The trusted size the proof starts from.
        from: TreeSize,
    },
}

/// Why a checkpoint does not extend a trusted one. [`ExtendError::Fork`] and
/// [`ExtendError::Inconsistent`] are evidence against the log; the others may be a stale server or
/// a missing proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtendError {
    /// The two checkpoints are of different logs.
    #[error("origin {got:?} is not the trusted origin {trusted:?}")]
    OriginMismatch {
        /// The trusted origin.
        trusted: String,
        /// The new checkpoint's origin.
        got: String,
    },
    /// The new checkpoint is older than the trusted one.
    #[error("checkpoint size {got} is smaller than the trusted size {trusted}: stale checkpoint")]
    Stale {
        /// The trusted size.
        trusted: TreeSize,
        /// The new checkpoint's size.
        got: TreeSize,
    },
    /// Two signed checkpoints of one size with different roots.
    #[error("fork: two checkpoints of size {size} have roots {trusted_root} and {got_root}")]
    Fork {
        /// The size of both.
        size: TreeSize,
        /// The trusted root.
        trusted_root: Hash,
        /// The new root.
        got_root: Hash,
    },
    /// A trusted checkpoint of size 0 whose root is not the empty root.
    #[error("checkpoint of size 0 has root {0}, not the empty root")]
    BadEmptyRoot(Hash),
    /// The new checkpoint is larger but no consistency proof came with it.
    #[error("no consistency proof from the trusted size {from} to size {to}")]
    MissingProof {
        /// The trusted size.
        from: TreeSize,
        /// The new size.
        to: TreeSize,
    },
    /// The consistency proof is for other sizes than the two checkpoints'.
    #[error(
        "consistency proof is from size {proof_from} to {proof_to}, \
         but the checkpoints are of sizes {from} and {to}"
    )]
    ProofSizes {
        /// The proof's old size.
        proof_from: TreeSize,
        /// The proof's new size.
        proof_to: TreeSize,
        /// The trusted size.
        from: TreeSize,
        /// The new size.
        to: TreeSize,
    },
    /// The consistency proof does not verify: the new tree does not extend the trusted one, or the
    /// proof is wrong.
    #[error("consistency proof from size {from} to {to} does not verify: {error}")]
    Inconsistent {
        /// The trusted size.
        from: TreeSize,
        /// The new size.
        to: TreeSize,
        /// What failed.
        error: ProofError,
    },
}

/// Checks that `new` extends `trusted`: same origin, size not smaller, and either the same tree or
/// a consistency proof `proof` from `trusted.size` to `new.size` that verifies between the roots.
///
/// Both checkpoints must already have been verified under a trust policy; this function only
/// compares trees.
///
/// # Errors
/// An [`ExtendError`] saying which of the conditions failed.
pub fn verify_extends(
    trusted: &Checkpoint,
    new: &Checkpoint,
    proof: Option<&ConsistencyProof>,
) -> Result<ConsistencyStatus, ExtendError> {
    if trusted.origin != new.origin {
        return Err(ExtendError::OriginMismatch {
            trusted: trusted.origin.clone(),
            got: new.origin.clone(),
        });
    }
    let (from, to) = (trusted.size, new.size);
    if to < from {
        return Err(ExtendError::Stale { trusted: from, got: to });
    }
    let check_sizes = |p: &ConsistencyProof| {
        if p.from_size != from || p.to_size != to {
            return Err(ExtendError::ProofSizes {
                proof_from: p.from_size,
                proof_to: p.to_size,
                from,
                to,
            });
        }
        Ok(())
    };
    // Where no proof is needed, one may still be sent; it must then be the empty proof.
    let check_empty_proof = |proof: Option<&ConsistencyProof>| {
        let Some(p) = proof else { return Ok(()) };
        check_sizes(p)?;
        if !p.hashes.is_empty() {
            let error = ProofError::WrongProofLength { expected: 0, got: p.hashes.len() };
            return Err(ExtendError::Inconsistent { from, to, error });
        }
        Ok(())
    };
    if from == to {
        if trusted.root != new.root {
            return Err(ExtendError::Fork {
                size: from,
                trusted_root: trusted.root,
                got_root: new.root,
            });
        }
        check_empty_proof(proof)?;
        return Ok(ConsistencyStatus::SameTree);
    }
    if from.0 == 0 {
        if trusted.root != empty_root() {
            return Err(ExtendError::BadEmptyRoot(trusted.root));
        }
        check_empty_proof(proof)?;
        return Ok(ConsistencyStatus::FromEmptyTree);
    }
    let p = proof.ok_or(ExtendError::MissingProof { from, to })?;
    check_sizes(p)?;
    p.verify(&trusted.root, &new.root).map_err(|error| ExtendError::Inconsistent {
        from,
        to,
        error,
    })?;
    Ok(ConsistencyStatus::Proven { from })
}

/// Why a chain document is unusable or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The document is not the JSON form of a chain.
    #[error("malformed chain: {0}")]
    Json(String),
    /// The `format` field names another format.
    #[error("unknown chain format {0:?} (this verifier knows {CHAIN_FORMAT:?})")]
    UnknownFormat(String),
    /// The chain has no checkpoints, or too many.
    #[error("a chain holds 1..={CHAIN_LEN_MAX} checkpoints; this one holds {0}")]
    Length(usize),
    /// The number of proofs is not one fewer than the number of checkpoints.
    #[error("a chain of {checkpoints} checkpoints needs {} proofs; it has {proofs}", checkpoints - 1)]
    ProofCount {
        /// Number of checkpoints.
        checkpoints: usize,
        /// Number of proofs.
        proofs: usize,
    },
    /// A checkpoint of the chain is malformed.
    #[error("checkpoint {index}: {error}")]
    Checkpoint {
        /// Position in the chain.
        index: usize,
        /// What is wrong with it.
        error: CheckpointError,
    },
    /// A checkpoint's signatures do not satisfy the trust policy.
    #[error("checkpoint {index}: {error}")]
    Policy {
        /// Position in the chain.
        index: usize,
        /// What failed.
        error: PolicyError,
    },
    /// Checkpoint `index + 1` does not extend checkpoint `index`.
    #[error("checkpoint {} does not extend checkpoint {index}: {error}", index + 1)]
    Link {
        /// Position of the older checkpoint.
        index: usize,
        /// What failed.
        error: ExtendError,
    },
}

impl ChainError {
    /// Whether the document itself is unusable (as opposed to well-formed but not valid).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            ChainError::Json(_)
                | ChainError::UnknownFormat(_)
                | ChainError::Length(_)
                | ChainError::ProofCount { .. }
                | ChainError::Checkpoint { .. }
        )
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainJson {
    format: String,
    checkpoints: Vec<String>,
    proofs: Vec<ConsistencyProof>,
}

/// Signed checkpoints of one log, each linked to the next by a consistency proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointChain {
    checkpoints: Vec<SignedCheckpoint>,
    proofs: Vec<ConsistencyProof>,
}

impl CheckpointChain {
    /// A chain from its parts.
    ///
    /// # Errors
    /// [`ChainError::Length`] or [`ChainError::ProofCount`] when the shape is wrong.
    pub fn new(
        checkpoints: Vec<SignedCheckpoint>,
        proofs: Vec<ConsistencyProof>,
    ) -> Result<CheckpointChain, ChainError> {
        if checkpoints.is_empty() || checkpoints.len() > CHAIN_LEN_MAX {
            return Err(ChainError::Length(checkpoints.len()));
        }
        if proofs.len() != checkpoints.len() - 1 {
            return Err(ChainError::ProofCount {
                checkpoints: checkpoints.len(),
                proofs: proofs.len(),
            });
        }
        Ok(CheckpointChain { checkpoints, proofs })
    }

    /// Parses the JSON form.
    ///
    /// # Errors
    /// A malformed-input [`ChainError`]. Never panics.
    pub fn from_json(bytes: &[u8]) -> Result<CheckpointChain, ChainError> {
        let doc: ChainJson =
            serde_json::from_slice(bytes).map_err(|e| ChainError::Json(e.to_string()))?;
        if doc.format != CHAIN_FORMAT {
            return Err(ChainError::UnknownFormat(doc.format));
        }
        if doc.checkpoints.len() > CHAIN_LEN_MAX {
            return Err(ChainError::Length(doc.checkpoints.len()));
        }
        if let Some(p) = doc.proofs.iter().find(|p| p.hashes.len() > CONSISTENCY_PROOF_LEN_MAX) {
            return Err(ChainError::Json(format!(
                "a consistency proof has {} hashes, more than {CONSISTENCY_PROOF_LEN_MAX}",
                p.hashes.len()
            )));
        }
        let checkpoints = doc
            .checkpoints
            .iter()
            .enumerate()
            .map(|(index, text)| {
                SignedCheckpoint::parse(text.as_bytes())
                    .map_err(|error| ChainError::Checkpoint { index, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        CheckpointChain::new(checkpoints, doc.proofs)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        let doc = ChainJson {
            format: CHAIN_FORMAT.to_owned(),
            checkpoints: self.checkpoints.iter().map(SignedCheckpoint::to_text).collect(),
            proofs: self.proofs.clone(),
        };
        serde_json::to_string_pretty(&doc).expect("a chain serializes to JSON")
    }

    /// The checkpoints, oldest first.
    pub fn checkpoints(&self) -> &[SignedCheckpoint] {
        &self.checkpoints
    }

    /// The proofs; `proofs()[i]` links checkpoint `i` to checkpoint `i + 1`.
    pub fn proofs(&self) -> &[ConsistencyProof] {
        &self.proofs
    }

    /// Verifies every checkpoint under `policy` and every link; returns the verified checkpoints.
    ///
    /// # Errors
    /// The first [`ChainError::Policy`] or [`ChainError::Link`] found, oldest first.
    pub fn verify(&self, policy: &TrustPolicy) -> Result<Vec<VerifiedCheckpoint>, ChainError> {
        let verified = self
            .checkpoints
            .iter()
            .enumerate()
            .map(|(index, c)| policy.verify(c).map_err(|error| ChainError::Policy { index, error }))
            .collect::<Result<Vec<_>, _>>()?;
        for (index, proof) in self.proofs.iter().enumerate() {
            verify_extends(
                &verified[index].checkpoint,
                &verified[index + 1].checkpoint,
                Some(proof),
            )
            .map_err(|error| ChainError::Link { index, error })?;
        }
        Ok(verified)
    }
}
