//! What can go wrong, kept apart by what the caller should do about it:
//!
//! - [`ClientError::Rejected`]: the server said no (a conflict, not found, bad input, a
//!   transaction that did not commit). Retrying the same request will not help — except a
//!   transaction that lost a lock or a deadlock to another ([`ClientError::is_txn_conflict`]),
//!   which may commit when run again as a new transaction.
//! - [`ClientError::Unavailable`]: the network or the cluster could not answer (after the
//!   client's own bounded retries). The request may be retried later; a write's outcome is then
//!   unknown.
//! - [`ClientError::Verification`]: the answer did not verify — a bad proof, a bad signature, a
//!   fork, a rollback. Nothing from that answer is returned, and the client never retries it
//!   silently: it is evidence against the server.

use blockdb_verifier::{BundleError, ExtendError, PolicyError, ProofError, ReceiptError, TreeSize};

/// A client operation's failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server refused the request; `code` is the API's stable error code.
    #[error("the server refused the request ({code}): {message}")]
    Rejected {
        /// The stable code, e.g. `already_exists`, `version_mismatch`, `not_found`, and for
        /// transactions `aborted`, `locked`, `deadlock`.
        code: String,
        /// The server's message.
        message: String,
        /// For conflicts: the key's current version.
        current_version: Option<u64>,
    },
    /// The server or network could not answer.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The answer failed verification: evidence against the server.
    #[error("verification failed: {0}")]
    Verification(#[from] VerifyError),
    /// The trusted state could not be loaded or saved.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl ClientError {
    /// The server's error code, for a rejection.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the answer failed verification.
    pub fn is_verification(&self) -> bool {
        matches!(self, ClientError::Verification(_))
    }

    /// Whether a transaction did not commit because another one held its keys: a lock it needed
    /// stayed held past the server's wait (`locked`), or it was chosen to break a deadlock
    /// (`deadlock`). Nothing was written; running the operations again, as a new transaction,
    /// may commit. (`aborted` is not one: a failed check fails again.)
    pub fn is_txn_conflict(&self) -> bool {
        matches!(self.code(), Some("locked" | "deadlock"))
    }
}

/// Why an answer failed verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The answer is not well formed (missing fields, bad hashes, undecodable leaf or note).
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// A proof bundle failed verification.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A checkpoint is not signed as the trust policy requires.
    #[error("checkpoint not trusted: {0}")]
    Policy(#[from] PolicyError),
    /// A checkpoint does not extend the one the client trusts — a fork if the sizes allow a
    /// comparison, otherwise an inconsistency; either way, evidence.
    #[error("checkpoint inconsistent with the trusted one: {0}")]
    Extend(#[from] ExtendError),
    /// A transaction's receipt does not verify.
    #[error("transaction receipt: {0}")]
    Receipt(#[from] ReceiptError),
    /// A consistency proof between two checkpoints does not verify.
    #[error("consistency proof from {from} to {to} does not verify: {error}")]
    Consistency {
        /// The older size.
        from: TreeSize,
        /// The newer size.
        to: TreeSize,
        /// What failed.
        error: ProofError,
    },
    /// A linearizable answer came with a smaller tree than the client already trusts.
    #[error(
        "rollback: the server answered with tree size {got} of {origin}, but size {trusted} is already trusted"
    )]
    Rollback {
        /// The log.
        origin: String,
        /// The size the client trusts.
        trusted: TreeSize,
        /// The size the server showed.
        got: TreeSize,
    },
    /// The answer is valid but not for what was asked (another key, version or index).
    #[error("the answer does not match the request: {0}")]
    Mismatch(String),
}

impl VerifyError {
    /// Whether this is evidence of a fork: two signed, incompatible views of one log.
    pub fn is_fork(&self) -> bool {
        match self {
            VerifyError::Bundle(b) => b.is_fork(),
            VerifyError::Receipt(r) => r.is_fork(),
            VerifyError::Extend(e) => {
                matches!(e, ExtendError::Fork { .. } | ExtendError::Inconsistent { .. })
            }
            VerifyError::Consistency { .. } => true,
            _ => false,
        }
    }
}
