//! [`Index`]: the table's index block, decoded once at open and searched in memory.

use std::cmp::Ordering;

use super::block::{Block, BlockError};
use super::format::BlockHandle;
use super::target::Target;
use crate::storage::key;

/// For each data block in file order, its last key and its handle.
///
/// Invariants (checked by [`Index::decode`]): at least one block; keys are valid internal keys
/// in strictly increasing [`key::compare`] order; the blocks tile the data region exactly, the
/// first at offset 0 and each starting where the previous one's trailer ends. So every handle
/// lies inside the file, and a read of it is bounded by the file's size.
#[derive(Debug)]
pub(crate) struct Index {
    /// The last keys, concatenated.
    keys: Vec<u8>,
    entries: Vec<IndexEntry>,
}

#[derive(Debug)]
struct IndexEntry {
    /// The block's last key is `keys[key_start..key_end]`.
    key_start: usize,
    key_end: usize,
    handle: BlockHandle,
}

impl Index {
    /// Decodes and checks the index block of a table whose data blocks end at `data_end`.
    ///
    /// # Errors
    /// [`BlockError`] if an entry is malformed or the invariants above do not hold. Never
    /// panics.
    pub(crate) fn decode(block: &Block, data_end: u64) -> Result<Index, BlockError> {
        let bad = |reason| BlockError { offset: 0, reason };
        let mut index = Index { keys: Vec::new(), entries: Vec::new() };
        let mut cursor = Some(block.first()?);
        let mut expected_offset = 0;
        while let Some(entry) = cursor {
            let (head, tail) = block.key_parts(&entry);
            let key_start = index.keys.len();
            index.keys.extend_from_slice(head);
            index.keys.extend_from_slice(tail);
            let key = &index.keys[key_start..];
            if key::parse(key).is_none() {
                return Err(bad("index key is not an internal key"));
            }
            let in_order = index.entries.last().is_none_or(|previous| {
                key::compare(&index.keys[previous.key_start..previous.key_end], key).is_lt()
            });
            if !in_order {
                return Err(bad("index keys are not in increasing order"));
            }
            let handle = BlockHandle::decode(block.value(&entry))
                .ok_or(bad("index value is not a block handle"))?;
            if handle.offset != expected_offset {
                return Err(bad("data blocks do not follow each other"));
            }
            expected_offset = handle.end().ok_or(bad("data block handle overflows"))?;
            if expected_offset > data_end {
                return Err(bad("data block runs past the data region"));
            }
            index.entries.push(IndexEntry { key_start, key_end: index.keys.len(), handle });
            cursor = block.next(&entry)?;
        }
        if expected_offset != data_end {
            return Err(bad("data blocks do not fill the data region"));
        }
        Ok(index)
    }

    /// Number of data blocks (at least 1).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The first data block whose last key is at or after `target`: the only block that can
    /// hold the first entry at or after `target`. `None` if every key is before it.
    pub(crate) fn find(&self, target: &Target<'_>) -> Option<usize> {
        let i = self.entries.partition_point(|entry| {
            target.compare_key(&self.keys[entry.key_start..entry.key_end], &[]) == Ordering::Less
        });
        (i < self.entries.len()).then_some(i)
    }

    /// Where data block `i` (< [`Index::len`]) is.
    pub(crate) fn handle(&self, i: usize) -> BlockHandle {
        self.entries[i].handle
    }

    /// The last key of data block `i` (< [`Index::len`]).
    pub(crate) fn last_key(&self, i: usize) -> &[u8] {
        &self.keys[self.entries[i].key_start..self.entries[i].key_end]
    }

    /// Bytes of memory the index holds.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.keys.capacity() + self.entries.capacity() * std::mem::size_of::<IndexEntry>()
    }
}
