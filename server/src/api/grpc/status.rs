//! The one place where gRPC turns a [`RequestError`] into a [`Status`].
//!
//! The gRPC code says what kind of failure it was (see the table in the parent module); the
//! metadata says exactly which, in the words REST uses: `blockdb-error-code` carries
//! [`ErrorCode::as_str`], the same string as the REST error body's `code`, and
//! `blockdb-current-version` carries the key's current version when a conflict reports it.
//! Programs match on the metadata, never on the message, which is for people and may change.

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::error::{ErrorCode, RequestError};

/// The metadata key of the stable error code, on every error status of the Ledger service.
pub const ERROR_CODE_KEY: &str = "blockdb-error-code";

/// The metadata key of the key's current version, on `already_exists` and `version_mismatch`.
pub const CURRENT_VERSION_KEY: &str = "blockdb-current-version";

/// The gRPC code of each error code.
pub fn code_of(code: ErrorCode) -> Code {
    match code {
        ErrorCode::InvalidArgument
        | ErrorCode::KeyTooLarge
        | ErrorCode::ValueTooLarge
        | ErrorCode::PayloadTooLarge => Code::InvalidArgument,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::AlreadyExists => Code::AlreadyExists,
        ErrorCode::VersionMismatch => Code::FailedPrecondition,
        ErrorCode::OutOfRange => Code::OutOfRange,
        ErrorCode::NotLeader | ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::Timeout => Code::DeadlineExceeded,
        ErrorCode::Internal => Code::Internal,
        ErrorCode::MethodNotAllowed => Code::Unimplemented,
        ErrorCode::Locked | ErrorCode::Aborted | ErrorCode::Deadlock => Code::Aborted,
    }
}

/// The status of a failed request: its gRPC code, its message, and its stable code (and current
/// version, if any) in the metadata.
pub fn to_status(e: RequestError) -> Status {
    let mut metadata = MetadataMap::new();
    metadata.insert(ERROR_CODE_KEY, MetadataValue::from_static(e.code.as_str()));
    if let Some(version) = e.current_version {
        metadata.insert(CURRENT_VERSION_KEY, MetadataValue::from(version));
    }
    Status::with_metadata(code_of(e.code), e.message, metadata)
}

/// The request error a status made by [`to_status`] carries (by its metadata; by its gRPC code
/// for a status from elsewhere).
pub fn from_status(status: &Status) -> RequestError {
    let named = status
        .metadata()
        .get(ERROR_CODE_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(ErrorCode::from_name);
    let code = named.unwrap_or(match status.code() {
        Code::InvalidArgument => ErrorCode::InvalidArgument,
        Code::NotFound => ErrorCode::NotFound,
        Code::AlreadyExists => ErrorCode::AlreadyExists,
        Code::FailedPrecondition => ErrorCode::VersionMismatch,
        Code::OutOfRange => ErrorCode::OutOfRange,
        Code::DeadlineExceeded => ErrorCode::Timeout,
        Code::Unavailable => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    });
    let mut e = RequestError::new(code, status.message());
    e.current_version = status
        .metadata()
        .get(CURRENT_VERSION_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_carries_code_and_version() {
        let mut e = RequestError::new(ErrorCode::VersionMismatch, "expected 1, is 2");
        e.current_version = Some(2);
        let s = to_status(e);
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(s.message(), "expected 1, is 2");
        let code = s.metadata().get(ERROR_CODE_KEY).and_then(|v| v.to_str().ok());
        assert_eq!(code, Some("version_mismatch"));
        let version = s.metadata().get(CURRENT_VERSION_KEY).and_then(|v| v.to_str().ok());
        assert_eq!(version, Some("2"));
        let back = from_status(&s);
        assert_eq!((back.code, back.current_version), (ErrorCode::VersionMismatch, Some(2)));
    }

    #[test]
    fn every_code_survives_a_status() {
        for code in ErrorCode::ALL {
            assert_eq!(from_status(&to_status(RequestError::new(code, "m"))).code, code);
        }
    }

    #[test]
    fn limits_are_invalid_argument_with_their_own_code() {
        for code in [ErrorCode::KeyTooLarge, ErrorCode::ValueTooLarge, ErrorCode::PayloadTooLarge] {
            let s = to_status(RequestError::new(code, "too large"));
            assert_eq!(s.code(), Code::InvalidArgument);
            let got = s.metadata().get(ERROR_CODE_KEY).and_then(|v| v.to_str().ok());
            assert_eq!(got, Some(code.as_str()));
            assert!(s.metadata().get(CURRENT_VERSION_KEY).is_none());
        }
    }
}
