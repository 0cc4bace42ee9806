//! The export: a whole shard log in one file, for an auditor to check offline with
//! [`audit_export`] (`blockdb-verify audit`), trusting nothing but the verifier keys it is given.
//! `blockctl export` writes it with [`header_line`], [`entry_line`] and [`checkpoint_line`].
//!
//! # Format `blockdb-export/v1`
//!
//! UTF-8 text, one JSON object a line, each line ending in `\n` (LF, never CRLF); the newline
//! after the last line may be left out. In this order:
//!
//! ```text
//! {"format":"blockdb-export/v1","origin":"<log origin>","shard":<u32>,"tree_size":<u64>}
//! {"log_index":0,"leaf":"<base64 of leaf 0>"}
//! ...                                                     exactly tree_size entry lines
//! {"log_index":<tree_size - 1>,"leaf":"<base64 of the last leaf>"}
//! {"checkpoint":"<signed checkpoint note>"}
//! ...                                                     one or more checkpoint lines
//! ```
//!
//! - **Header**, the first line. `format` is `blockdb-export/v1`; `origin` the shard log's
//!   checkpoint origin, `<cluster origin>/shard/<shard>`; `tree_size` the number of entries,
//!   at most [`EXPORT_TREE_SIZE_MAX`].
//! - **Entries**: exactly `tree_size` lines, in log order, the `i`-th (from 0) with `log_index`
//!   `i`. `leaf` is the standard base64 (RFC 4648 §4, with `=` padding and no non-zero trailing
//!   bits) of the leaf's canonical bytes ([`crate::leaf`]), whose `shard` is the header's and whose
//!   `log_index` is the line's.
//! - **Checkpoints**: at least one and at most [`EXPORT_CHECKPOINTS_MAX`] lines, in any order, each
//!   a signed checkpoint note ([`crate::checkpoint`]) of the header's origin, of a size at most
//!   `tree_size`; at least one is of size `tree_size`.
//!
//! Every line is in canonical form, the bytes the writers here produce: compact JSON (no space
//! anywhere outside strings), the fields in the order shown, integers in decimal without sign or
//! leading zeros, strings escaped as `serde_json` escapes them (`\"`, `\\`, `\n` and the other
//! short escapes, other control characters as `\u00XX` with lowercase hex, everything else
//! literally, `/` and non-ASCII included). Unknown or repeated fields, other whitespace, empty
//! lines, and anything after the last checkpoint line but its newline are refused. A line is at
//! most [`EXPORT_LINE_LEN_MAX`] bytes, newline excluded. Canonical form gives an export one
//! encoding, so a copy can be compared with another byte for byte, and no export passes the audit
//! in a second spelling.
//!
//! # The audit, in order
//!
//! ```text
//!  pass 1 (structure)   header ─► line kinds and counts ─► checkpoint notes parsed
//!  checkpoints          origin, size ≤ tree_size, trust policy ─► no fork ─► one at tree_size
//!  pass 2 (entries)     leaf ─► position, shard ─► Frontier::push ─► root at each checkpoint size
//! ```
//!
//! The first pass only finds the lines (an entry line is told by its `{"log_index":` start), so
//! the second can hash the entries once, in order, into a [`Frontier`](crate::Frontier) and
//! compare its root as it passes each checkpoint's size: O(n) hashing, and O(log n) memory beyond
//! the input and its checkpoints, however many checkpoints there are. [`ExportError::is_malformed`] separates a file that is not a well-formed export from a
//! well-formed export that does not verify; [`ExportError::is_fork`] marks evidence that the log
//! forked.
//!
//! # Layout of this module
//!
//! - `mod.rs` (here): the format's constants, the serde types of its lines, and the writers.
//! - `audit.rs`: [`audit_export`] and its [`AuditReport`].
//! - `error.rs`: [`ExportError`].

mod audit;
mod error;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::checkpoint::SignedCheckpoint;
use crate::ids::{LogIndex, ShardId, TreeSize};

pub use audit::{AuditReport, audit_export};
pub use error::ExportError;

/// The `format` of the header this code writes and reads.
pub const EXPORT_FORMAT: &str = "blockdb-export/v1";
/// Largest `tree_size` a header may claim.
pub const EXPORT_TREE_SIZE_MAX: u64 = 1_000_000_000;
/// Longest line, in bytes without its newline. The longest valid line is a checkpoint line, at
/// most twice [`crate::note::NOTE_LEN_MAX`] with every newline escaped.
pub const EXPORT_LINE_LEN_MAX: usize = 1024 * 1024;
/// Most checkpoint lines an export may hold.
pub const EXPORT_CHECKPOINTS_MAX: usize = 10_000;
/// Entries between two calls of [`audit_export`]'s progress callback.
pub const PROGRESS_EVERY: u64 = 1000;

/// How an entry line starts, in canonical form; no other line does.
const ENTRY_PREFIX: &[u8] = b"{\"log_index\":";
/// How a checkpoint line starts, in canonical form; no other line does.
const CHECKPOINT_PREFIX: &[u8] = b"{\"checkpoint\":";

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderLine {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// The shard log's checkpoint origin.
    pub origin: String,
    /// The shard.
    pub shard: ShardId,
    /// The number of entry lines that follow.
    pub tree_size: TreeSize,
}

/// One leaf of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryLine {
    /// The leaf's position in the log.
    pub log_index: LogIndex,
    /// Standard base64 of the leaf's canonical bytes.
    pub leaf: String,
}

/// A signed checkpoint of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointLine {
    /// The signed checkpoint note, newlines included.
    pub checkpoint: String,
}

/// The header line, newline included.
///
/// Requires `origin` to be the shard log's checkpoint origin (`<cluster origin>/shard/<shard>`)
/// and `tree_size` the number of [`entry_line`]s that will follow.
pub fn header_line(origin: &str, shard: ShardId, tree_size: TreeSize) -> String {
    let header = HeaderLine {
        format: EXPORT_FORMAT.to_owned(),
        origin: origin.to_owned(),
        shard,
        tree_size,
    };
    to_line(&header)
}

/// The entry line of the leaf at `log_index`, newline included.
///
/// Requires `leaf` to be the canonical bytes of the leaf at `log_index`
/// ([`Leaf::encode`](crate::Leaf::encode)); [`audit_export`] refuses anything else.
pub fn entry_line(log_index: LogIndex, leaf: &[u8]) -> String {
    to_line(&EntryLine { log_index, leaf: STANDARD.encode(leaf) })
}

/// The checkpoint line of `checkpoint`, newline included.
pub fn checkpoint_line(checkpoint: &SignedCheckpoint) -> String {
    to_line(&CheckpointLine { checkpoint: checkpoint.to_text() })
}

fn to_line<T: Serialize>(value: &T) -> String {
    let mut line =
        serde_json::to_string(value).expect("a line of strings and integers serializes to JSON");
    line.push('\n');
    line
}
