//! SSTables: the engine's sorted, immutable table files.
//!
//! A table holds entries `(encoded internal key, value)` in [`key::compare`] order, several
//! versions of a user key newest first, tombstones included. It is written once, front to back,
//! by [`TableWriter`] (flush of a memtable, output of a compaction), fsynced, and then only read:
//! [`Table`] answers point reads ([`Table::get`]) and [`TableIter`] scans, from any number of
//! threads, with data blocks shared through the engine's [`BlockCache`].
//!
//! # Invariants
//!
//! - A table holds at least one entry, its keys strictly increasing by [`key::compare`].
//! - Every byte of the file is covered by a checksum: each block by the CRC32 in its trailer,
//!   the footer by its own CRC32. A reader checks a block's checksum before using any of it, so
//!   a flipped bit gives [`StorageError::Corruption`](crate::storage::StorageError::Corruption)
//!   naming the file and offset, never wrong data. Every length and offset read from a file is
//!   bounds-checked, so no file contents make a reader panic or read outside the file.
//! - The file is valid only once its footer is written and fsynced; a table is referenced by the
//!   manifest only after that (see the crash points in `writer.rs`).
//!
//! # File layout
//!
//! All integers are little-endian, except inside internal keys (whose trailer is big-endian, see
//! [`key`]). "varint" is LEB128: 7 bits a byte, low group first, high bit set on every byte but
//! the last; a `u32` takes 1 to 5 bytes.
//!
//! ```text
//! offset 0
//! ┌───────────────────────────────┐
//! │ data block 0      │ crc32 (4) │  data region [0, filter.offset): the data blocks, back to back
//! │ ...               │           │
//! │ data block n-1    │ crc32 (4) │
//! ├───────────────────────────────┤
//! │ filter block      │ crc32 (4) │  at filter.offset (contents may be empty: no filter)
//! │ index block       │ crc32 (4) │  at index.offset = end of the filter block's trailer
//! │ meta block        │ crc32 (4) │  at meta.offset = end of the index block's trailer
//! ├───────────────────────────────┤
//! │ footer (52 bytes)             │  at file length - 52 = end of the meta block's trailer
//! └───────────────────────────────┘
//! ```
//!
//! **Block trailer** (after every block): `u32` CRC32 (IEEE, as `crc32fast` computes it) of the
//! block's contents. A block handle's `size` counts the contents only, not the trailer.
//!
//! **Block handle** (12 bytes): `offset: u64` of the block's first byte, `size: u32` of its
//! contents.
//!
//! **Data and index blocks** share one layout:
//!
//! ```text
//! entry*                   one or more entries, back to back
//! restart: u32 × count     offsets (from the block's start) of the restart entries; the first
//!                          is 0, strictly increasing, each before the restart array
//! count: u32               number of restart points, at least 1
//!
//! entry = shared: varint   bytes taken from the front of the anchor's key
//!         unshared: varint length of this entry's own key suffix
//!         value_len: varint
//!         suffix: [u8; unshared]
//!         value: [u8; value_len]
//! ```
//!
//! An entry's key is `anchor_key[..shared] ‖ suffix`. The *anchor* is the latest entry (this one
//! included) whose `shared` is 0, whose key is therefore its whole suffix. Every restart point
//! (every `restart_interval`-th entry of the block, starting with the first) has `shared` = 0,
//! so a reader can start decoding at any restart point. Prefix compression is against the
//! anchor rather than the previous entry (as LevelDB does) so that a key is always two slices
//! of the block: a point read compares keys in place, without assembling them in a buffer.
//!
//! In a data block, keys are encoded internal keys and values are the entries' values. In the
//! index block, there is one entry per data block, in file order: the key is the data block's
//! last key, the value its 12-byte block handle. The data blocks tile the data region exactly.
//!
//! **Filter block**: empty if the table was written with `bloom_bits_per_key` = 0; otherwise
//! a Bloom filter over the table's distinct user keys: the bit array (`m/8` bytes; bit `j` is
//! bit `j % 8` of byte `j / 8`), then `k: u8` (1..=30), the number of probes. A user key is
//! hashed with 64-bit xxh3 (seed 0) to `h`; its probes are bits `(h + i·rotl(h, 32)) mod m` for
//! `i` in `0..k`. See `bloom.rs`.
//!
//! **Meta block**: `entry_count: u64`, `min_seqno: u64`, `max_seqno: u64`,
//! `smallest_key_len: u32`, `smallest_key`, `largest_key_len: u32`, `largest_key` (the first
//! and last encoded internal keys). See [`TableInfo`].
//!
//! **Footer** (52 bytes, at the end of the file):
//!
//! ```text
//!  0  filter handle   12 bytes (offset u64, size u32)
//! 12  index handle    12 bytes
//! 24  meta handle     12 bytes
//! 36  crc32: u32      CRC32 of footer bytes [0, 36) followed by [40, 52)
//! 40  version: u32    format version, 1
//! 44  magic: u64      0x7473_7342_446b_6c42, whose bytes read "BlkDBsst"
//! ```
//!
//! The last 12 bytes (version and magic) keep their place in every future version. A reader
//! checks the magic number, then the version (a newer one gives
//! [`StorageError::UnsupportedVersion`](crate::storage::StorageError::UnsupportedVersion)
//! before anything else is read, since its footer may differ), then the checksum, then that the
//! filter, index and meta blocks and the footer follow one another exactly.
//!
//! # Why this format
//!
//! - LevelDB's proven shape: blocks of about 4 KiB are the unit of I/O, checksum and caching; a
//!   point read costs one filter probe, one in-memory binary search of the index, at most one
//!   block read (none on a cache hit), a binary search of restart points and a short scan.
//! - The index and filter are loaded at open and held in memory, so a point read of a key that
//!   is not in the table usually touches no block at all.
//! - No compression: values are small ledger records and hashes, which compress poorly and are
//!   read at random; compression is left out until a measurement shows it pays for itself. A new
//!   format version can add it per block.
//! - Index keys are the data blocks' whole last keys, not shortened separators: simpler to
//!   check, and the index is small next to the data.
//!
//! [`key`]: crate::storage::key
//! [`key::compare`]: crate::storage::key::compare
//! [`BlockCache`]: crate::storage::cache::BlockCache

pub(crate) mod block;
pub(crate) mod block_builder;
mod bloom;
mod format;
mod index;
mod meta;
mod options;
mod table;
mod table_iter;
mod target;
mod varint;
mod writer;

pub use meta::TableInfo;
pub use options::TableOptions;
pub use table::{Table, key_hash};
pub use table_iter::TableIter;
pub use writer::TableWriter;

#[cfg(test)]
mod corruption_tests;
#[cfg(test)]
pub(crate) mod test_util;
#[cfg(test)]
mod tests;
