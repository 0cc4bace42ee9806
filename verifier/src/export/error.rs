//! [`ExportError`]: why [`super::audit_export`] refused an export, split into a file that is
//! not a well-formed export ([`ExportError::is_malformed`]) and one that does not verify.

use crate::checkpoint::CheckpointError;
use crate::hash::Hash;
use crate::ids::{LogIndex, ShardId, TreeSize};
use crate::leaf::LeafError;
use crate::policy::PolicyError;

use super::{EXPORT_CHECKPOINTS_MAX, EXPORT_FORMAT, EXPORT_LINE_LEN_MAX, EXPORT_TREE_SIZE_MAX};

/// Why an export is unusable or does not verify. Line numbers count from 1, the header's being 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The file is empty.
    #[error("export is empty: it has no header line")]
    Empty,
    /// A line is longer than [`EXPORT_LINE_LEN_MAX`].
    #[error("line {line} is {len} bytes long, more than the limit of {EXPORT_LINE_LEN_MAX}")]
    LineTooLong {
        /// The line's number.
        line: u64,
        /// Its length without the newline.
        len: usize,
    },
    /// A line is not the JSON of the line expected there (empty, not UTF-8, bad JSON, a missing,
    /// repeated or unknown field).
    #[error("line {line}: not {expected}: {error}")]
    Json {
        /// The line's number.
        line: u64,
        /// What was expected: "a header line", "an entry line" or "a checkpoint line".
        expected: &'static str,
        /// What the JSON parser said.
        error: String,
    },
    /// A line parses but is not in canonical form (whitespace, field order, escapes).
    #[error("line {line} is not in canonical form (compact JSON, fields in the format's order)")]
    NotCanonical {
        /// The line's number.
        line: u64,
    },
    /// The header names a format this verifier does not know.
    #[error("unknown export format {0:?} (this verifier knows {EXPORT_FORMAT:?})")]
    UnknownFormat(String),
    /// The header's tree size is more than [`EXPORT_TREE_SIZE_MAX`].
    #[error("header tree_size {0} is more than the limit of {EXPORT_TREE_SIZE_MAX}")]
    TreeSizeTooLarge(u64),
    /// The number of entry lines is not the header's tree size.
    #[error("header says tree_size {tree_size}, but the export has {entries} entry lines")]
    EntryCount {
        /// The header's tree size.
        tree_size: TreeSize,
        /// The entry lines found.
        entries: u64,
    },
    /// An entry line after a checkpoint line.
    #[error("line {line}: an entry line after a checkpoint line")]
    EntryAfterCheckpoint {
        /// The line's number.
        line: u64,
    },
    /// No checkpoint line.
    #[error("export has no checkpoint line")]
    NoCheckpoints,
    /// More than [`EXPORT_CHECKPOINTS_MAX`] checkpoint lines.
    #[error("export has more than {EXPORT_CHECKPOINTS_MAX} checkpoint lines")]
    TooManyCheckpoints,
    /// A checkpoint line's note is not a signed checkpoint.
    #[error("line {line}: checkpoint: {error}")]
    Checkpoint {
        /// The line's number.
        line: u64,
        /// What is wrong with it.
        error: CheckpointError,
    },
    /// An entry's `leaf` is not canonical standard base64.
    #[error("line {line}: leaf is not canonical standard base64")]
    Base64 {
        /// The line's number.
        line: u64,
    },
    /// An entry's leaf does not decode.
    #[error("line {line}: {error}")]
    Leaf {
        /// The line's number.
        line: u64,
        /// What is wrong with it.
        error: LeafError,
    },

    /// The header's origin is not the log of the header's shard.
    #[error("header origin {origin:?} is not the log of shard {shard} (`<cluster>/shard/{shard}`)")]
    OriginShard {
        /// The header's origin.
        origin: String,
        /// The header's shard.
        shard: ShardId,
    },
    /// A checkpoint is of another log than the header's.
    #[error("line {line}: checkpoint origin {got:?} is not the export's origin {expected:?}")]
    OriginMismatch {
        /// The checkpoint line's number.
        line: u64,
        /// The header's origin.
        expected: String,
        /// The checkpoint's origin.
        got: String,
    },
    /// A checkpoint is of a tree larger than the export.
    #[error("line {line}: checkpoint of size {size} is beyond the export's tree_size {tree_size}")]
    CheckpointBeyondExport {
        /// The checkpoint line's number.
        line: u64,
        /// The checkpoint's size.
        size: TreeSize,
        /// The header's tree size.
        tree_size: TreeSize,
    },
    /// A checkpoint's signatures do not satisfy the trust policy.
    #[error("line {line}: checkpoint of size {size}: {error}")]
    Policy {
        /// The checkpoint line's number.
        line: u64,
        /// The checkpoint's size.
        size: TreeSize,
        /// What failed.
        error: PolicyError,
    },
    /// Two trusted checkpoints give one size two roots.
    #[error(
        "fork: trusted checkpoints give size {size} two roots: {first_root} (line {first_line}) \
         and {second_root} (line {second_line})"
    )]
    Fork {
        /// The size of both.
        size: TreeSize,
        /// The first checkpoint's line number.
        first_line: u64,
        /// Its root.
        first_root: Hash,
        /// The second checkpoint's line number.
        second_line: u64,
        /// Its root.
        second_root: Hash,
    },
    /// No checkpoint vouches for all the entries.
    #[error(
        "no checkpoint of the export's tree_size {tree_size} (the largest is of size {largest}), \
         so entries past it are not vouched for"
    )]
    NoCheckpointAtTreeSize {
        /// The header's tree size.
        tree_size: TreeSize,
        /// The largest checkpoint's size.
        largest: TreeSize,
    },
    /// An entry line's `log_index` is not its position.
    #[error("line {line}: entry log_index {got}, expected {expected} (entries are in log order)")]
    EntryIndex {
        /// The line's number.
        line: u64,
        /// The entry's position.
        expected: LogIndex,
        /// The line's `log_index`.
        got: LogIndex,
    },
    /// A leaf's own `log_index` is not its position.
    #[error("line {line}: leaf log_index {got}, expected {expected}")]
    LeafIndex {
        /// The line's number.
        line: u64,
        /// The entry's position.
        expected: LogIndex,
        /// The leaf's `log_index`.
        got: LogIndex,
    },
    /// A leaf is of another shard than the header's.
    #[error("line {line}: leaf of shard {got}, but the export is of shard {expected}")]
    ShardMismatch {
        /// The line's number.
        line: u64,
        /// The header's shard.
        expected: ShardId,
        /// The leaf's shard.
        got: ShardId,
    },
    /// The entries do not give a checkpoint's root: the entries were changed, or the checkpoint
    /// of size `tree_size` does not vouch for them either.
    #[error(
        "line {line}: checkpoint of size {size} has root {checkpoint_root}, but the export's \
         entries give {entries_root}"
    )]
    RootMismatch {
        /// The checkpoint line's number (the smallest size that does not match).
        line: u64,
        /// The checkpoint's size.
        size: TreeSize,
        /// The checkpoint's root.
        checkpoint_root: Hash,
        /// The root of the export's first `size` entries.
        entries_root: Hash,
    },
    /// The entries give the root of the checkpoint of size `tree_size`, but not that of a smaller
    /// trusted checkpoint: the two checkpoints cannot be of one append-only log.
    #[error(
        "fork: checkpoint of size {size} (line {line}) has root {checkpoint_root}, but the \
         entries that the checkpoint of size {tree_size} vouches for give {entries_root}"
    )]
    Inconsistent {
        /// The smaller checkpoint's line number.
        line: u64,
        /// Its size.
        size: TreeSize,
        /// Its root.
        checkpoint_root: Hash,
        /// The root of the first `size` entries.
        entries_root: Hash,
        /// The export's tree size, whose checkpoint the entries match.
        tree_size: TreeSize,
    },
}

impl ExportError {
    /// Whether the file is not a well-formed export (unreadable, unparseable, or not of the
    /// format's shape), as opposed to a well-formed export that does not verify.
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            ExportError::Empty
                | ExportError::LineTooLong { .. }
                | ExportError::Json { .. }
                | ExportError::NotCanonical { .. }
                | ExportError::UnknownFormat(_)
                | ExportError::TreeSizeTooLarge(_)
                | ExportError::EntryCount { .. }
                | ExportError::EntryAfterCheckpoint { .. }
                | ExportError::NoCheckpoints
                | ExportError::TooManyCheckpoints
                | ExportError::Checkpoint { .. }
                | ExportError::Base64 { .. }
                | ExportError::Leaf { .. }
        )
    }

    /// Whether the error is evidence that the log forked: two trusted checkpoints that no single
    /// append-only log can have signed.
    pub fn is_fork(&self) -> bool {
        matches!(self, ExportError::Fork { .. } | ExportError::Inconsistent { .. })
    }
}
