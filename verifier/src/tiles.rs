//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): the paths of a shard's Merkle tree tiles and
//! entry bundles, which tiles a tree of a given size has, and the entry bundle encoding.
//!
//! A tiled log serves its tree as static resources under one prefix per shard:
//!
//! ```text
//! <prefix>/checkpoint                       the signed checkpoint (crate::checkpoint)
//! <prefix>/tile/<L>/<N>[.p/<W>]             hash tile N at level L
//! <prefix>/tile/entries/<N>[.p/<W>]         entry bundle N (the leaves of level-0 tile N)
//! ```
//!
//! This module deals in the part after the prefix, from `tile/` on.
//!
//! # Tiles
//!
//! A tile is 256 consecutive Merkle tree hashes at one level: tile `N` at level `L` holds, for
//! `i` in `0..256`, `MTH(D[(N·256 + i)·256^L : (N·256 + i + 1)·256^L])`. Level 0 tiles hold leaf
//! hashes; each hash of a level `L + 1` tile is the root of a full tile at level `L`. A tree of
//! size `s` has `floor(s / 256^L)` hashes at level `L`, so its rightmost tile at each level may
//! be *partial*: `W = floor(s / 256^L) mod 256` hashes, `1 <= W <= 255`, served at the path with
//! the `.p/<W>` suffix. Empty tiles do not exist. [`tile_width`] says whether a tree has a tile
//! and how wide it is; for example a tree of 70,000 leaves has 273 full level-0 tiles and a
//! partial one of width 112, one full level-1 tile and a partial one of width 17, and a partial
//! level-2 tile of width 1. An entry bundle has the width of the level-0 tile with its index.
//!
//! # Paths
//!
//! - `<L>` is a decimal integer in `0..=63` without leading zeros.
//! - `<N>` is split into groups of 3 decimal digits, zero-padded, most significant first; every
//!   group but the last is prefixed with `x`: 0 is `000`, 1000 is `x001/000`, 1234067 is
//!   `x001/x234/067`. `N` is any `u64`.
//! - `<W>` is a decimal integer in `1..=255` without leading zeros; a full tile has no suffix.
//!
//! [`TilePath::parse`] accepts only the canonical form that [`TilePath::to_path`] writes, so each
//! tile has exactly one path (a cache or a file system holding tiles never sees two names for
//! one tile). It refuses, among others: a sign or any non-ASCII-digit, groups of other than 3
//! digits, a missing or misplaced `x`, a leading `x000` group, an index above `u64::MAX`,
//! `.p/256` or `.p/0`, and anything before `tile/` or after the last group. Paths longer than
//! [`TILE_PATH_LEN_MAX`] bytes are refused before they are looked at.
//!
//! # Entry bundles
//!
//! An entry bundle is the log's entries of one level-0 tile, each as a big-endian `u16` length
//! followed by that many bytes, back to back; nothing else, no count. For BlockDB the entries are
//! the leaves ([`crate::leaf`]), which always fit a 16-bit length. A full bundle holds 256
//! entries, a partial one `W`. Since the encoding carries no count, [`decode_entry_bundle`]
//! takes the width from the path the bundle was fetched at, reads exactly that many entries and
//! refuses any byte after them.

use std::fmt;
use std::str::FromStr;

use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::TreeSize;

/// Hashes in a full tile, and entries in a full bundle.
pub const TILE_WIDTH: u16 = 256;
/// The height of a tile's subtree: `TILE_WIDTH == 1 << TILE_HEIGHT`.
pub const TILE_HEIGHT: u32 = 8;
/// The highest level a tile path may name.
pub const LEVEL_MAX: u8 = 63;
/// Longest tile path accepted; the longest canonical path is 52 bytes.
pub const TILE_PATH_LEN_MAX: usize = 64;
/// Longest entry of an entry bundle.
pub const ENTRY_LEN_MAX: usize = u16::MAX as usize;

/// Which of the two tile resources a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// A tile of Merkle tree hashes at `level`, `0..=`[`LEVEL_MAX`].
    Hashes {
        /// The tile's level: 0 for leaf hashes.
        level: u8,
    },
    /// An entry bundle: the entries whose leaf hashes form the level-0 tile of the same index.
    Entries,
}

impl TileKind {
    /// The level whose widths this resource has: the tile's level, or 0 for an entry bundle.
    pub fn level(self) -> u8 {
        match self {
            TileKind::Hashes { level } => level,
            TileKind::Entries => 0,
        }
    }
}

/// A tile or entry bundle path `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`.
///
/// Always valid: the level is at most [`LEVEL_MAX`] and the width in `1..=256`, 256 meaning a
/// full tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TilePath {
    kind: TileKind,
    index: u64,
    width: u16,
}

/// Why a tile path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TilePathError {
    /// The path is longer than any canonical tile path.
    #[error("tile path is {len} bytes long, more than the limit of {TILE_PATH_LEN_MAX}")]
    TooLong {
        /// The path's length in bytes.
        len: usize,
    },
    /// The path does not start with `tile/`.
    #[error("tile path {path:?} does not start with \"tile/\"")]
    NotTilePath {
        /// The path.
        path: String,
    },
    /// The level element is not `entries` nor a canonical decimal in `0..=63`.
    #[error(
        "tile level {got:?} is not \"entries\" nor a decimal in 0..={LEVEL_MAX} without leading zeros"
    )]
    Level {
        /// The level element.
        got: String,
    },
    /// The index is not canonical 3-digit groups.
    #[error("tile index {got:?}: {reason}")]
    Index {
        /// The index elements, `/` included, without the width suffix.
        got: String,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// The index is larger than `u64::MAX`.
    #[error("tile index {got:?} is larger than {}", u64::MAX)]
    IndexOverflow {
        /// The index elements.
        got: String,
    },
    /// The partial width is not a canonical decimal in `1..=255`.
    #[error("partial tile width {got:?} is not a decimal in 1..=255 without leading zeros")]
    Width {
        /// The text after `.p/`.
        got: String,
    },
    /// A level above [`LEVEL_MAX`] given to [`TilePath::new`].
    #[error("tile level {got} is above {LEVEL_MAX}")]
    LevelOutOfRange {
        /// The level given.
        got: u8,
    },
    /// A width outside `1..=256` given to [`TilePath::new`].
    #[error("tile width {got} is outside 1..={TILE_WIDTH}")]
    WidthOutOfRange {
        /// The width given.
        got: u16,
    },
}

impl TilePath {
    /// The path of tile `index` of `kind` with `width` entries (256 for a full tile).
    ///
    /// # Errors
    /// [`TilePathError::LevelOutOfRange`] or [`TilePathError::WidthOutOfRange`].
    pub fn new(kind: TileKind, index: u64, width: u16) -> Result<TilePath, TilePathError> {
        if kind.level() > LEVEL_MAX {
            return Err(TilePathError::LevelOutOfRange { got: kind.level() });
        }
        if width == 0 || width > TILE_WIDTH {
            return Err(TilePathError::WidthOutOfRange { got: width });
        }
        Ok(TilePath { kind, index, width })
    }

    /// The path of tile `index` of `kind` as the tree of `tree_size` leaves has it (full or
    /// partial), or `None` when that tree has no such tile. See [`tile_width`].
    pub fn in_tree(kind: TileKind, index: u64, tree_size: TreeSize) -> Option<TilePath> {
        let width = tile_width(kind.level(), index, tree_size)?;
        Some(TilePath { kind, index, width })
    }

    /// Which resource the path names.
    pub fn kind(&self) -> TileKind {
        self.kind
    }

    /// The tile's index `N` within its level.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Number of hashes or entries, `1..=256`.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Whether the tile is partial (fewer than 256 hashes or entries).
    pub fn is_partial(&self) -> bool {
        self.width < TILE_WIDTH
    }

    /// The canonical path, from `tile/` on.
    pub fn to_path(&self) -> String {
        let mut out = String::with_capacity(TILE_PATH_LEN_MAX);
        match self.kind {
            TileKind::Hashes { level } => out.push_str(&format!("tile/{level}/")),
            TileKind::Entries => out.push_str("tile/entries/"),
        }
        push_index(&mut out, self.index);
        if self.is_partial() {
            out.push_str(&format!(".p/{}", self.width));
        }
        out
    }

    /// Parses a canonical path (see the module docs for what is refused).
    ///
    /// # Errors
    /// A [`TilePathError`] naming the part that is wrong. Never panics.
    pub fn parse(path: &str) -> Result<TilePath, TilePathError> {
        if path.len() > TILE_PATH_LEN_MAX {
            return Err(TilePathError::TooLong { len: path.len() });
        }
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| TilePathError::NotTilePath { path: path.to_owned() })?;
        let Some((level, rest)) = rest.split_once('/') else {
            return Err(TilePathError::Index {
                got: String::new(),
                reason: "the index is missing",
            });
        };
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            let level = small_decimal(level, u64::from(LEVEL_MAX))
                .ok_or_else(|| TilePathError::Level { got: level.to_owned() })?;
            TileKind::Hashes { level: u8::try_from(level).expect("at most LEVEL_MAX") }
        };
        let (index, width) = match rest.split_once(".p/") {
            None => (rest, TILE_WIDTH),
            Some((index, w)) => {
                let width = small_decimal(w, u64::from(TILE_WIDTH - 1))
                    .filter(|&w| w >= 1)
                    .ok_or_else(|| TilePathError::Width { got: w.to_owned() })?;
                (index, u16::try_from(width).expect("at most 255"))
            }
        };
        Ok(TilePath { kind, index: parse_index(index)?, width })
    }
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_path())
    }
}

impl FromStr for TilePath {
    type Err = TilePathError;

    fn from_str(s: &str) -> Result<TilePath, TilePathError> {
        TilePath::parse(s)
    }
}

/// Appends `n` as 3-digit groups, all but the last prefixed with `x`.
fn push_index(out: &mut String, n: u64) {
    let mut groups = vec![n % 1000];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    let (last, init) = groups.split_first().expect("groups holds at least n % 1000");
    for g in init.iter().rev() {
        out.push_str(&format!("x{g:03}/"));
    }
    out.push_str(&format!("{last:03}"));
}

/// The value of `s` when it is a canonical decimal of at most 3 digits (no sign, no leading
/// zero) not above `max`.
fn small_decimal(s: &str, max: u64) -> Option<u64> {
    let canonical = !s.is_empty()
        && s.len() <= 3
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return None;
    }
    let value = s.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
    (value <= max).then_some(value)
}

/// The value of exactly three ASCII digits.
fn three_digits(s: &str) -> Option<u64> {
    match s.as_bytes() {
        &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_digit) => {
            Some(u64::from(a - b'0') * 100 + u64::from(b - b'0') * 10 + u64::from(c - b'0'))
        }
        _ => None,
    }
}

fn parse_index(s: &str) -> Result<u64, TilePathError> {
    let bad = |reason| TilePathError::Index { got: s.to_owned(), reason };
    let elements: Vec<&str> = s.split('/').collect();
    let Some((last, init)) = elements.split_last() else {
        return Err(bad("the index is missing"));
    };
    if init.first() == Some(&"x000") {
        return Err(bad("a leading x000 group is not canonical"));
    }
    let mut n: u64 = 0;
    for element in init {
        let group = element
            .strip_prefix('x')
            .and_then(three_digits)
            .ok_or_else(|| bad("every group but the last is `x` and 3 digits"))?;
        n = n
            .checked_mul(1000)
            .and_then(|n| n.checked_add(group))
            .ok_or_else(|| TilePathError::IndexOverflow { got: s.to_owned() })?;
    }
    let group = three_digits(last).ok_or_else(|| bad("the last group is 3 digits, without `x`"))?;
    n.checked_mul(1000)
        .and_then(|n| n.checked_add(group))
        .ok_or_else(|| TilePathError::IndexOverflow { got: s.to_owned() })
}

/// How many hashes tile `index` at `level` holds in a tree of `tree_size` leaves: `Some(256)`
/// for a full tile, `Some(w)` with `1 <= w <= 255` for a partial one, `None` when the tree has
/// no such tile (it would be empty, or `level` is above [`LEVEL_MAX`]). Entry bundles have the
/// widths of level 0.
pub fn tile_width(level: u8, index: u64, tree_size: TreeSize) -> Option<u16> {
    if level > LEVEL_MAX {
        return None;
    }
    // floor(tree_size / 256^level); 256^level does not fit a u64 from level 8 on, and then
    // there are no hashes at that level.
    let hashes = tree_size.0.checked_shr(TILE_HEIGHT * u32::from(level)).unwrap_or(0);
    let start = index.checked_mul(u64::from(TILE_WIDTH))?;
    let rest = hashes.checked_sub(start).filter(|&r| r > 0)?;
    Some(u16::try_from(rest.min(u64::from(TILE_WIDTH))).expect("at most TILE_WIDTH"))
}

/// Why an entry bundle cannot be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryBundleError {
    /// A bundle width outside `1..=256`.
    #[error("entry bundle width {got} is outside 1..={TILE_WIDTH}")]
    Width {
        /// The width given.
        got: u16,
    },
    /// A bundle of no entries, or more than 256.
    #[error("entry bundle of {got} entries; a bundle holds 1..={TILE_WIDTH}")]
    EntryCount {
        /// Number of entries given.
        got: usize,
    },
    /// An entry longer than a 16-bit length can say.
    #[error("entry {position} is {len} bytes long, more than the limit of {ENTRY_LEN_MAX}")]
    EntryTooLong {
        /// The entry's position in the bundle.
        position: usize,
        /// Its length.
        len: usize,
    },
    /// The bytes end inside an entry, or run on after the last.
    #[error("malformed entry bundle at entry {position}: {error}")]
    Malformed {
        /// The entry being read, or the width when bytes follow the last entry.
        position: usize,
        /// What is wrong.
        error: DecodeError,
    },
}

/// Encodes `entries` as an entry bundle.
///
/// # Errors
/// [`EntryBundleError::EntryCount`] for no entries or more than 256,
/// [`EntryBundleError::EntryTooLong`] for an entry of more than [`ENTRY_LEN_MAX`] bytes.
pub fn encode_entry_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, EntryBundleError> {
    if entries.is_empty() || entries.len() > usize::from(TILE_WIDTH) {
        return Err(EntryBundleError::EntryCount { got: entries.len() });
    }
    let total: usize = entries.iter().map(|e| 2 + e.as_ref().len()).sum();
    let mut w = Writer::with_capacity(total);
    for (position, entry) in entries.iter().enumerate() {
        let entry = entry.as_ref();
        let len = u16::try_from(entry.len())
            .map_err(|_| EntryBundleError::EntryTooLong { position, len: entry.len() })?;
        w.u16(len);
        w.put(entry);
    }
    Ok(w.buf)
}

/// Decodes an entry bundle of exactly `width` entries, the width of the path it was fetched at
/// ([`TilePath::width`]). The entries borrow from `bytes`.
///
/// # Errors
/// [`EntryBundleError::Width`] for a width outside `1..=256`; [`EntryBundleError::Malformed`]
/// when the bytes end inside an entry or bytes follow the last one. Never panics.
pub fn decode_entry_bundle(bytes: &[u8], width: u16) -> Result<Vec<&[u8]>, EntryBundleError> {
    if width == 0 || width > TILE_WIDTH {
        return Err(EntryBundleError::Width { got: width });
    }
    let mut r = Reader::new(bytes);
    let mut entries = Vec::with_capacity(usize::from(width));
    for position in 0..usize::from(width) {
        let malformed = |error| EntryBundleError::Malformed { position, error };
        let len = r.u16("entry length").map_err(malformed)?;
        entries.push(r.bytes("entry", usize::from(len)).map_err(malformed)?);
    }
    r.finish()
        .map_err(|error| EntryBundleError::Malformed { position: usize::from(width), error })?;
    Ok(entries)
}
