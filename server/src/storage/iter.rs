//! The iterator every sorted source of entries implements (memtables, tables, merges of them).
//!
//! It is a cursor, not a `std::iter::Iterator`: positioning and reading are separate so that
//! entries are read in place without a copy per step, and every step can fail with an I/O or
//! corruption error.

use crate::storage::error::Result;

/// A cursor over entries `(encoded internal key, value)` in [`crate::storage::key::compare`]
/// order.
pub trait InternalIterator {
    /// Positions at the first entry.
    ///
    /// # Errors
    /// I/O or corruption while reading the source.
    fn seek_to_first(&mut self) -> Result<()>;

    /// Positions at the first entry whose key is at or after `target` (an encoded internal key).
    ///
    /// # Errors
    /// I/O or corruption while reading the source.
    fn seek(&mut self, target: &[u8]) -> Result<()>;

    /// Moves to the next entry. Requires [`InternalIterator::valid`].
    ///
    /// # Errors
    /// I/O or corruption while reading the source.
    fn next(&mut self) -> Result<()>;

    /// Whether the cursor is on an entry.
    fn valid(&self) -> bool;

    /// The current entry's encoded internal key. Requires [`InternalIterator::valid`].
    fn key(&self) -> &[u8];

    /// The current entry's value. Requires [`InternalIterator::valid`].
    fn value(&self) -> &[u8];
}
