//! The client's checkpoint tracking as pure functions: what a client does with a checkpoint that a
//! server sent ([`observe`]) and with one that another client showed it ([`compare`]). No I/O:
//! the caller fetches checkpoints and proofs and stores the trusted checkpoint. The model in
//! [`crate::checkpoint`] runs these functions on real signed checkpoints and real consistency
//! proofs; the client crate is meant to call the same functions, so that the model checks the
//! code that runs (they use nothing but the verifier, so they can move to it, or to a small crate
//! of their own, without the model checker).
//!
//! Both are built from the verifier's checks: [`TrustPolicy::verify`] for signatures and
//! [`verify_extends`] for consistency. They add what a client needs around them: the checkpoint
//! must be of the origin the client tracks (a node signs the checkpoints of all its shards with
//! one key, so a signature alone does not say which log it is), and errors are sorted into
//! evidence of a fork and everything else.
//!
//! ```text
//!  server's checkpoint ──► verify_signed (policy, origin) ──► advance (verify_extends
//!                                                              from the trusted one)
//!                                                              ──► new trusted checkpoint
//!  peer's checkpoint ───► verify_signed ──► compare: older ⊑ newer, with the log's proof
//!                                             ──► consistent / evidence / unproven
//! ```

use blockdb_verifier::{
    Checkpoint, ConsistencyProof, ConsistencyStatus, ExtendError, PolicyError, SignedCheckpoint,
    TrustPolicy, verify_extends,
};

/// Why a client did not take a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrackError {
    /// The signatures do not satisfy the trust policy.
    Untrusted(PolicyError),
    /// The checkpoint is of another log.
    WrongOrigin {
        /// The origin the client tracks.
        expected: String,
        /// The checkpoint's origin.
        got: String,
    },
    /// The checkpoint does not extend the trusted one.
    Rejected(ExtendError),
}

impl TrackError {
    /// Whether this is evidence against the log, to be reported as a security error: two signed
    /// checkpoints of one size with different roots (a fork), or a consistency proof from the
    /// log that fails between two checkpoints it signed (a fork, or a log that lies about its
    /// proofs; an honest log sends neither). A stale checkpoint or a missing proof is not
    /// evidence: an honest replica that lags, or a request that failed, produce those too.
    pub fn is_evidence(&self) -> bool {
        matches!(
            self,
            TrackError::Rejected(ExtendError::Fork { .. } | ExtendError::Inconsistent { .. })
        )
    }

    /// Whether the checkpoint was refused as older than the trusted one (a rollback).
    pub fn is_stale(&self) -> bool {
        matches!(self, TrackError::Rejected(ExtendError::Stale { .. }))
    }
}

impl std::fmt::Display for TrackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackError::Untrusted(e) => write!(f, "checkpoint not trusted: {e}"),
            TrackError::WrongOrigin { expected, got } => {
                write!(f, "checkpoint of origin {got:?}, expected {expected:?}")
            }
            TrackError::Rejected(e) => write!(f, "checkpoint rejected: {e}"),
        }
    }
}

impl std::error::Error for TrackError {}

/// Checks a signed checkpoint's signatures under `policy` and its origin, and returns the
/// checkpoint it carries.
///
/// # Errors
/// [`TrackError::Untrusted`] or [`TrackError::WrongOrigin`].
pub fn verify_signed(
    policy: &TrustPolicy,
    origin: &str,
    signed: &SignedCheckpoint,
) -> Result<Checkpoint, TrackError> {
    let verified = policy.verify(signed).map_err(TrackError::Untrusted)?;
    if verified.checkpoint.origin != origin {
        return Err(TrackError::WrongOrigin {
            expected: origin.to_owned(),
            got: verified.checkpoint.origin,
        });
    }
    Ok(verified.checkpoint)
}

/// Whether `new` (already checked by [`verify_signed`]) may replace `trusted`: it must extend it,
/// as [`verify_extends`] decides with `proof`. A client with no trusted checkpoint takes any.
/// On success the caller keeps `new` as its trusted checkpoint.
///
/// # Errors
/// [`TrackError::Rejected`] with the reason; see [`TrackError::is_evidence`].
pub fn advance(
    trusted: Option<&Checkpoint>,
    new: &Checkpoint,
    proof: Option<&ConsistencyProof>,
) -> Result<ConsistencyStatus, TrackError> {
    match trusted {
        None => Ok(ConsistencyStatus::NoTrustedState),
        Some(t) => verify_extends(t, new, proof).map_err(TrackError::Rejected),
    }
}

/// [`verify_signed`], then [`advance`]: what a client does with the checkpoint of a response.
///
/// # Errors
/// As those two.
pub fn observe(
    policy: &TrustPolicy,
    origin: &str,
    trusted: Option<&Checkpoint>,
    signed: &SignedCheckpoint,
    proof: Option<&ConsistencyProof>,
) -> Result<(Checkpoint, ConsistencyStatus), TrackError> {
    let new = verify_signed(policy, origin, signed)?;
    let status = advance(trusted, &new, proof)?;
    Ok((new, status))
}

/// The outcome of comparing two clients' checkpoints of one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// The newer extends the older (proven); the client may take the newer.
    Consistent {
        /// The larger of the two.
        newer: Checkpoint,
    },
    /// Evidence against the log: one size with two roots, or a consistency proof from the log
    /// that fails (see [`TrackError::is_evidence`]).
    Evidence(ExtendError),
    /// Nothing proven either way: the log gave no usable proof. The client keeps both and asks
    /// again; a log that never proves consistency between two checkpoints it signed is as
    /// suspect as one that forked, but that needs a deadline this function does not have.
    Unproven(ExtendError),
}

/// Compares the client's trusted checkpoint `mine` with `theirs` (already checked by
/// [`verify_signed`]), using a consistency proof from the older size to the newer one that the
/// log supplied (`None` if it did not). Checkpoints of one size need no proof: equal roots are
/// consistent and different roots are a fork. The log is asked for the proof, not the peer, so a
/// proof that fails is evidence against the log.
pub fn compare(
    mine: &Checkpoint,
    theirs: &Checkpoint,
    proof: Option<&ConsistencyProof>,
) -> Comparison {
    let (older, newer) = if theirs.size >= mine.size { (mine, theirs) } else { (theirs, mine) };
    match verify_extends(older, newer, proof) {
        Ok(_) => Comparison::Consistent { newer: newer.clone() },
        Err(e @ (ExtendError::Fork { .. } | ExtendError::Inconsistent { .. })) => {
            Comparison::Evidence(e)
        }
        Err(e) => Comparison::Unproven(e),
    }
}
