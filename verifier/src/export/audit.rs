//! [`audit_export`]: the offline audit of a `blockdb-export/v1` file, in two passes over the
//! bytes (see the module docs of [`crate::export`]).

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checkpoint::{SignedCheckpoint, origin_shard};
use crate::frontier::Frontier;
use crate::hash::{Hash, leaf_hash};
use crate::ids::{LogIndex, ShardId, TreeSize};
use crate::leaf::Leaf;
use crate::policy::{TrustPolicy, VerifiedCheckpoint};

use super::{
    CHECKPOINT_PREFIX, CheckpointLine, ENTRY_PREFIX, EXPORT_CHECKPOINTS_MAX, EXPORT_FORMAT,
    EXPORT_LINE_LEN_MAX, EXPORT_TREE_SIZE_MAX, EntryLine, ExportError, HeaderLine, PROGRESS_EVERY,
};

/// What an export proves: its entries are the log `origin` up to `tree_size`, with root `root`,
/// as the trusted `checkpoints` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// The log's origin.
    pub origin: String,
    /// The shard.
    pub shard: ShardId,
    /// The number of entries.
    pub tree_size: TreeSize,
    /// The root of all the entries, which the checkpoints of size `tree_size` sign.
    pub root: Hash,
    /// Every distinct checkpoint note of the export, verified, by size (in file order within a
    /// size).
    pub checkpoints: Vec<VerifiedCheckpoint>,
}

/// Audits an export (the format is in the module docs), in this order:
///
/// 1. Structure: the header parses, is of [`EXPORT_FORMAT`] and claims at most
///    [`EXPORT_TREE_SIZE_MAX`] entries; exactly `tree_size` entry lines follow, then at least one
///    checkpoint line and nothing else; every line is at most [`EXPORT_LINE_LEN_MAX`] bytes and
///    every checkpoint line a signed checkpoint note, in canonical form.
/// 2. Checkpoints: the header's origin is the log of its shard; each checkpoint, in file order,
///    is of the header's origin, of a size at most `tree_size`, and satisfies `policy` (a note
///    repeated is verified once); no two give one size two roots (a fork); one is of size
///    `tree_size`.
/// 3. Entries, in order: each line is canonical, its leaf canonical base64 of a leaf that
///    decodes ([`Leaf::decode`]), whose shard is the header's, and whose `log_index` and the
///    line's are its position. The leaf hashes go into a [`Frontier`], whose root is compared
///    with each checkpoint's as it reaches the checkpoint's size.
///
/// `progress(done, total)` is called every [`PROGRESS_EVERY`] entries and once at the end with
/// `done == total`, `total` being the header's `tree_size` (so never before the header parses).
///
/// Which cluster the origin is of is the caller's to check, through the keys of `policy`.
///
/// # Errors
/// The first check that fails, as an [`ExportError`]; [`ExportError::is_malformed`] for step 1
/// and the decoding in step 3. When entries do not give a checkpoint's root, the error is
/// [`ExportError::Inconsistent`] (a fork) if they give the root at `tree_size`, and
/// [`ExportError::RootMismatch`] for the smallest such size otherwise. Never panics.
pub fn audit_export(
    bytes: &[u8],
    policy: &TrustPolicy,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AuditReport, ExportError> {
    let layout = Layout::read(bytes)?;
    let header = &layout.header;
    let heads = verify_checkpoints(&layout, policy)?;
    let root = audit_entries(&layout, &heads, progress)?;
    Ok(AuditReport {
        origin: header.origin.clone(),
        shard: header.shard,
        tree_size: header.tree_size,
        root,
        checkpoints: heads.into_iter().map(|h| h.verified).collect(),
    })
}

/// The lines of `bytes` with their numbers, from 1. Empty input has no lines; one final newline
/// ends the last line rather than starting an empty one.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut split = (!body.is_empty()).then(|| body.split(|&b| b == b'\n'));
    (1u64..).map_while(move |number| Some((number, split.as_mut()?.next()?)))
}

/// Parses `line` as a `T` and checks that it is `T`'s canonical form.
fn parse_line<T: Serialize + DeserializeOwned>(
    line: &[u8],
    number: u64,
    expected: &'static str,
) -> Result<T, ExportError> {
    let value: T = serde_json::from_slice(line).map_err(|e| ExportError::Json {
        line: number,
        expected,
        error: e.to_string(),
    })?;
    let canonical =
        serde_json::to_vec(&value).expect("a line of strings and integers serializes to JSON");
    if canonical != line {
        return Err(ExportError::NotCanonical { line: number });
    }
    Ok(value)
}

/// The result of the first pass: the header, where the entries start, and the checkpoints.
struct Layout<'a> {
    header: HeaderLine,
    /// The input after the header line: the entry lines, then the checkpoint lines.
    after_header: &'a [u8],
    /// Each checkpoint with its line number, in file order.
    checkpoints: Vec<(u64, SignedCheckpoint)>,
}

impl<'a> Layout<'a> {
    fn read(bytes: &'a [u8]) -> Result<Layout<'a>, ExportError> {
        let mut all = lines(bytes);
        let (_, first) = all.next().ok_or(ExportError::Empty)?;
        check_len(1, first)?;
        let header = parse_header(first)?;
        let after_header = bytes.get(first.len() + 1..).unwrap_or_default();
        let mut entries = 0u64;
        let mut checkpoints = Vec::new();
        for (number, line) in all {
            check_len(number, line)?;
            if line.starts_with(ENTRY_PREFIX) {
                if !checkpoints.is_empty() {
                    return Err(ExportError::EntryAfterCheckpoint { line: number });
                }
                entries += 1;
                continue;
            }
            if entries != header.tree_size.0 {
                // Not an entry where an entry belongs. A checkpoint line means entries are
                // missing; anything else is shown with why it is not an entry line.
                if !line.starts_with(CHECKPOINT_PREFIX) {
                    parse_line::<EntryLine>(line, number, "an entry line")?;
                }
                return Err(ExportError::EntryCount { tree_size: header.tree_size, entries });
            }
            if checkpoints.len() == EXPORT_CHECKPOINTS_MAX {
                return Err(ExportError::TooManyCheckpoints);
            }
            let cp: CheckpointLine = parse_line(line, number, "a checkpoint line")?;
            let signed = SignedCheckpoint::parse(cp.checkpoint.as_bytes())
                .map_err(|error| ExportError::Checkpoint { line: number, error })?;
            checkpoints.push((number, signed));
        }
        if entries != header.tree_size.0 {
            return Err(ExportError::EntryCount { tree_size: header.tree_size, entries });
        }
        if checkpoints.is_empty() {
            return Err(ExportError::NoCheckpoints);
        }
        Ok(Layout { header, after_header, checkpoints })
    }
}

fn check_len(number: u64, line: &[u8]) -> Result<(), ExportError> {
    if line.len() > EXPORT_LINE_LEN_MAX {
        return Err(ExportError::LineTooLong { line: number, len: line.len() });
    }
    Ok(())
}

fn parse_header(line: &[u8]) -> Result<HeaderLine, ExportError> {
    let header = parse_line::<HeaderLine>(line, 1, "a header line").map_err(|e| {
        // A header of another format may well have other fields: name the format, not the field.
        let format = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("format")?.as_str().map(str::to_owned));
        match format {
            Some(f) if f != EXPORT_FORMAT => ExportError::UnknownFormat(f),
            _ => e,
        }
    })?;
    if header.format != EXPORT_FORMAT {
        return Err(ExportError::UnknownFormat(header.format));
    }
    if header.tree_size.0 > EXPORT_TREE_SIZE_MAX {
        return Err(ExportError::TreeSizeTooLarge(header.tree_size.0));
    }
    Ok(header)
}

/// A verified checkpoint and the line it came from.
struct Head {
    line: u64,
    verified: VerifiedCheckpoint,
}

/// Step 2: the checkpoints, verified and sorted by size.
fn verify_checkpoints(layout: &Layout<'_>, policy: &TrustPolicy) -> Result<Vec<Head>, ExportError> {
    let header = &layout.header;
    if origin_shard(&header.origin) != Some(header.shard) {
        return Err(ExportError::OriginShard {
            origin: header.origin.clone(),
            shard: header.shard,
        });
    }
    let mut heads: Vec<Head> = Vec::with_capacity(layout.checkpoints.len());
    // Note text -> already verified: a repeated note is checked and reported once.
    let mut seen: HashSet<String> = HashSet::new();
    for (line, signed) in &layout.checkpoints {
        let (line, checkpoint) = (*line, signed.checkpoint());
        if checkpoint.origin != header.origin {
            return Err(ExportError::OriginMismatch {
                line,
                expected: header.origin.clone(),
                got: checkpoint.origin.clone(),
            });
        }
        if checkpoint.size > header.tree_size {
            return Err(ExportError::CheckpointBeyondExport {
                line,
                size: checkpoint.size,
                tree_size: header.tree_size,
            });
        }
        if !seen.insert(signed.to_text()) {
            continue;
        }
        let verified = policy.verify(signed).map_err(|error| ExportError::Policy {
            line,
            size: checkpoint.size,
            error,
        })?;
        heads.push(Head { line, verified });
    }
    heads.sort_by_key(|h| h.verified.checkpoint.size);
    for pair in heads.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (ca, cb) = (&a.verified.checkpoint, &b.verified.checkpoint);
        if ca.size == cb.size && ca.root != cb.root {
            return Err(ExportError::Fork {
                size: ca.size,
                first_line: a.line,
                first_root: ca.root,
                second_line: b.line,
                second_root: cb.root,
            });
        }
    }
    let largest = heads.last().map_or(TreeSize(0), |h| h.verified.checkpoint.size);
    if largest != header.tree_size {
        return Err(ExportError::NoCheckpointAtTreeSize { tree_size: header.tree_size, largest });
    }
    Ok(heads)
}

/// Step 3: every entry, and the root at every checkpoint's size. Returns the root of all entries.
fn audit_entries(
    layout: &Layout<'_>,
    heads: &[Head],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Hash, ExportError> {
    let header = &layout.header;
    let total = header.tree_size.0;
    let mut frontier = Frontier::new();
    let mut next = 0usize;
    // The first checkpoint whose root the entries do not give: (head, entries' root).
    let mut mismatch: Option<(&Head, Hash)> = None;
    let mut check_roots = |frontier: &Frontier, next: &mut usize| {
        while let Some(head) = heads.get(*next)
            && head.verified.checkpoint.size == frontier.size()
        {
            let root = frontier.root();
            if root != head.verified.checkpoint.root && mismatch.is_none() {
                mismatch = Some((head, root));
            }
            *next += 1;
        }
    };
    check_roots(&frontier, &mut next);
    let mut entries = lines(layout.after_header);
    for position in 0..total {
        // The header is line 1 and entry `position` is line `position + 2`.
        let number = position + 2;
        let Some((_, line)) = entries.next() else {
            // The first pass counted `total` entry lines; this cannot happen, but is no panic.
            return Err(ExportError::EntryCount { tree_size: header.tree_size, entries: position });
        };
        let leaf = audit_entry(line, number, LogIndex(position), header.shard)?;
        frontier.push(leaf_hash(&leaf));
        check_roots(&frontier, &mut next);
        let done = position + 1;
        if done % PROGRESS_EVERY == 0 && done != total {
            progress(done, total);
        }
    }
    progress(total, total);
    let root = frontier.root();
    match mismatch {
        None => Ok(root),
        Some((head, entries_root)) => {
            let c = &head.verified.checkpoint;
            if root == heads.last().map_or(root, |h| h.verified.checkpoint.root) {
                Err(ExportError::Inconsistent {
                    line: head.line,
                    size: c.size,
                    checkpoint_root: c.root,
                    entries_root,
                    tree_size: header.tree_size,
                })
            } else {
                Err(ExportError::RootMismatch {
                    line: head.line,
                    size: c.size,
                    checkpoint_root: c.root,
                    entries_root,
                })
            }
        }
    }
}

/// One entry line at `position`: returns the leaf's canonical bytes.
fn audit_entry(
    line: &[u8],
    number: u64,
    position: LogIndex,
    shard: ShardId,
) -> Result<Vec<u8>, ExportError> {
    let entry: EntryLine = parse_line(line, number, "an entry line")?;
    let bytes = STANDARD.decode(&entry.leaf).map_err(|_| ExportError::Base64 { line: number })?;
    let leaf = Leaf::decode(&bytes).map_err(|error| ExportError::Leaf { line: number, error })?;
    if entry.log_index != position {
        return Err(ExportError::EntryIndex {
            line: number,
            expected: position,
            got: entry.log_index,
        });
    }
    if leaf.log_index != position {
        return Err(ExportError::LeafIndex {
            line: number,
            expected: position,
            got: leaf.log_index,
        });
    }
    if leaf.shard != shard {
        return Err(ExportError::ShardMismatch { line: number, expected: shard, got: leaf.shard });
    }
    Ok(bytes)
}
