//! Request errors: what a caller did wrong or what it may retry, with a stable code that REST,
//! gRPC and the client share. Fatal errors (corruption, a failed fsync) are not request errors:
//! they stop the shard's Raft group, and requests then fail as `unavailable`.

use serde::{Deserialize, Serialize};

/// The stable error codes of the API. The REST body's `code` and the gRPC status's
/// `blockdb-error-code` metadata carry these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed input: bad JSON, bad base64, an unknown field, an invalid parameter.
    InvalidArgument,
    /// A key longer than the node's limit, or empty.
    KeyTooLarge,
    /// A value longer than the node's limit.
    ValueTooLarge,
    /// A request body longer than the node accepts.
    PayloadTooLarge,
    /// The record, entry, block or route does not exist.
    NotFound,
    /// `insert` of a key that already has a version.
    AlreadyExists,
    /// `append` whose `expected_version` is not the key's current version.
    VersionMismatch,
    /// A size or index beyond the tree (for example a `known_size` larger than the tree).
    OutOfRange,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// This node does not lead the shard; retry at the leader.
    NotLeader,
    /// The shard cannot serve now (stopped, shutting down, overloaded); retry later.
    Unavailable,
    /// The request did not finish in time; a write's outcome is unknown.
    Timeout,
    /// A bug or a fatal error on the node.
    Internal,
    /// A prepared transaction holds a lock on the key; retry.
    Locked,
    /// The transaction was aborted (a failed precondition or a conflict); nothing of it was
    /// written. Retry it as a new transaction.
    Aborted,
    /// The transaction was chosen as the victim of a deadlock and aborted; retry it.
    Deadlock,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::InvalidArgument,
        ErrorCode::KeyTooLarge,
        ErrorCode::ValueTooLarge,
        ErrorCode::PayloadTooLarge,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::VersionMismatch,
        ErrorCode::OutOfRange,
        ErrorCode::MethodNotAllowed,
        ErrorCode::NotLeader,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
        ErrorCode::Internal,
        ErrorCode::Locked,
        ErrorCode::Aborted,
        ErrorCode::Deadlock,
    ];

    /// The code named `name` ([`ErrorCode::as_str`]).
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The code's name, as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::KeyTooLarge => "key_too_large",
            ErrorCode::ValueTooLarge => "value_too_large",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::OutOfRange => "out_of_range",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::NotLeader => "not_leader",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Internal => "internal",
            ErrorCode::Locked => "locked",
            ErrorCode::Aborted => "aborted",
            ErrorCode::Deadlock => "deadlock",
        }
    }
}

/// A request that failed, with its code and a message for people.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}", code = code.as_str())]
pub struct RequestError {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, in words.
    pub message: String,
    /// For `already_exists` and `version_mismatch`: the key's current version.
    pub current_version: Option<u64>,
}

impl RequestError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RequestError {
        RequestError { code, message: message.into(), current_version: None }
    }

    /// A malformed-input error.
    pub fn invalid(message: impl Into<String>) -> RequestError {
        RequestError::new(ErrorCode::InvalidArgument, message)
    }
}

impl From<crate::ledger::ShardError> for RequestError {
    fn from(e: crate::ledger::ShardError) -> RequestError {
        use crate::ledger::{ShardError, TreeError};
        match e {
            ShardError::NotFound => RequestError::new(ErrorCode::NotFound, "no such record"),
            ShardError::Tree(TreeError::OutOfRange { .. }) => {
                RequestError::new(ErrorCode::OutOfRange, e.to_string())
            }
            ShardError::Invalid(m) => RequestError::invalid(m),
            other => {
                tracing::error!(error = %other, "a read failed");
                RequestError::new(ErrorCode::Internal, other.to_string())
            }
        }
    }
}
