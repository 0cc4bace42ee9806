//! The storage engine's errors.
//!
//! Operating errors (I/O, a full disk, corruption found in a file) are errors, returned to the
//! caller with the file and offset they concern; broken invariants of our own are assertions.

use std::io;
use std::path::PathBuf;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O operation on a file failed (a full disk surfaces here).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done: `open`, `write`, `fsync`, `rename`, ...
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file's contents are not what was written: a checksum, length or format check failed.
    #[error("corruption in {path} at offset {offset}: {reason}")]
    Corruption {
        /// The corrupt file.
        path: PathBuf,
        /// Where in the file the bad bytes start.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// The directory holds something that is not a BlockDB store.
    #[error("{path} is not a BlockDB store: {reason}")]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// The store was written by a newer format version than this binary reads.
    #[error("{path} has store format version {found}; this binary reads up to {supported}")]
    UnsupportedVersion {
        /// The file holding the version.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The newest version this binary reads.
        supported: u32,
    },
    /// A key or value is larger than the engine accepts.
    #[error("{what} is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// `key`, `value` or `batch`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An earlier write failed in a way that leaves the in-memory state unknown (for example a
    /// failed fsync); the engine refuses further writes until it is reopened.
    #[error("the engine stopped accepting writes after an earlier failure: {0}")]
    Poisoned(String),
    /// The engine is closed.
    #[error("the engine is closed")]
    Closed,
}

/// Results of the storage engine.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Attaches an operation and a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| StorageError::Io { op, path: path.into(), source })
    }
}

/// A corruption error for `path` at `offset`.
pub(crate) fn corruption(
    path: impl Into<PathBuf>,
    offset: u64,
    reason: impl Into<String>,
) -> StorageError {
    StorageError::Corruption { path: path.into(), offset, reason: reason.into() }
}
