//! [`Block`]: a decoded data or index block, searched in place.
//!
//! A block is read once from disk, its checksum verified, its restart array checked, and then
//! shared (through the block cache) by every reader. Reading an entry never copies it: a
//! [`Cursor`] holds the positions of the entry's key pieces and value inside the block, and the
//! key is compared in its two pieces (see [`super::target`]).
//!
//! Every length and offset read from the block is bounds-checked: a malformed block gives a
//! [`BlockError`], never a panic or bytes from outside the entry.

use std::cmp::Ordering;

use super::target::Target;
use super::varint;

/// Why a block's contents were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockError {
    /// Where in the block the bad bytes are.
    pub(crate) offset: usize,
    /// What check failed.
    pub(crate) reason: &'static str,
}

fn error(offset: usize, reason: &'static str) -> BlockError {
    BlockError { offset, reason }
}

/// A block's contents (without the trailer), checked well-formed enough to search.
///
/// Invariants: at least one restart point; restart offsets start at 0, strictly increase and lie
/// before `entries_end`, which is above 0.
#[derive(Debug)]
pub(crate) struct Block {
    data: Vec<u8>,
    entries_end: usize,
    num_restarts: usize,
}

/// The position of one entry in a [`Block`]; valid only with the block that made it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
    anchor_start: usize,
    anchor_len: usize,
    shared: usize,
    suffix_start: usize,
    value_start: usize,
    /// Where the entry ends: the next entry's offset, or `entries_end`.
    end: usize,
}

impl Block {
    /// Checks the restart array of `data` (a block's contents, checksum already verified).
    ///
    /// # Errors
    /// [`BlockError`] if the block is too short, has no entries or no restart points, or its
    /// restart offsets are out of order or out of bounds. Never panics.
    pub(crate) fn decode(data: Vec<u8>) -> Result<Block, BlockError> {
        let Some(count_at) = data.len().checked_sub(4) else {
            return Err(error(0, "block is shorter than its restart count"));
        };
        let num_restarts = read_u32(&data, count_at) as usize;
        let entries_end = num_restarts
            .checked_mul(4)
            .and_then(|restarts_len| count_at.checked_sub(restarts_len))
            .ok_or(error(count_at, "restart count is larger than the block"))?;
        if num_restarts == 0 || entries_end == 0 {
            return Err(error(count_at, "block has no entries"));
        }
        let block = Block { data, entries_end, num_restarts };
        let mut previous = None;
        for i in 0..num_restarts {
            let restart = block.restart(i);
            let in_order = match previous {
                None => restart == 0,
                Some(previous) => restart > previous,
            };
            if !in_order || restart >= entries_end {
                return Err(error(entries_end + 4 * i, "restart offset out of order or bounds"));
            }
            previous = Some(restart);
        }
        Ok(block)
    }

    /// Bytes of memory the block holds, for the cache's byte bound.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.data.capacity() + std::mem::size_of::<Block>()
    }

    /// The first entry (a block has at least one).
    ///
    /// # Errors
    /// [`BlockError`] if the entry is malformed.
    pub(crate) fn first(&self) -> Result<Cursor, BlockError> {
        self.entry_at(0, None)
    }

    /// The entry after `cursor`, or `None` after the last one.
    ///
    /// # Errors
    /// [`BlockError`] if the entry is malformed.
    pub(crate) fn next(&self, cursor: &Cursor) -> Result<Option<Cursor>, BlockError> {
        if cursor.end == self.entries_end {
            return Ok(None);
        }
        self.entry_at(cursor.end, Some((cursor.anchor_start, cursor.anchor_len))).map(Some)
    }

    /// The first entry whose key is at or after `target`, or `None` if every key is before it.
    /// Binary search over the restart points, then a scan of at most one restart interval.
    ///
    /// # Errors
    /// [`BlockError`] if an entry on the way is malformed.
    pub(crate) fn seek(&self, target: &Target<'_>) -> Result<Option<Cursor>, BlockError> {
        // Restart points [0, low) have keys before the target, [high, n) at or after it.
        let (mut low, mut high) = (0, self.num_restarts);
        while low < high {
            let mid = low + (high - low) / 2;
            let entry = self.entry_at(self.restart(mid), None)?;
            let (head, tail) = self.key_parts(&entry);
            if target.compare_key(head, tail) == Ordering::Less {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        // The answer is in the restart interval before `low`, or is the entry at `low`.
        let mut cursor = self.entry_at(self.restart(low.saturating_sub(1)), None)?;
        loop {
            let (head, tail) = self.key_parts(&cursor);
            if target.compare_key(head, tail) != Ordering::Less {
                return Ok(Some(cursor));
            }
            match self.next(&cursor)? {
                Some(next) => cursor = next,
                None => return Ok(None),
            }
        }
    }

    /// The entry's key as two pieces, `head ‖ tail`: the anchor's shared prefix and the entry's
    /// own suffix. Requires a cursor of this block.
    pub(crate) fn key_parts(&self, cursor: &Cursor) -> (&[u8], &[u8]) {
        let head = &self.data[cursor.anchor_start..cursor.anchor_start + cursor.shared];
        (head, &self.data[cursor.suffix_start..cursor.value_start])
    }

    /// The entry's value. Requires a cursor of this block.
    pub(crate) fn value(&self, cursor: &Cursor) -> &[u8] {
        &self.data[cursor.value_start..cursor.end]
    }

    /// The offset of restart point `i`; requires `i < num_restarts`.
    fn restart(&self, i: usize) -> usize {
        read_u32(&self.data, self.entries_end + 4 * i) as usize
    }

    /// Decodes the entry at `offset`, whose anchor (start and length of the anchor key) is
    /// `anchor`; `None` at a restart point, where the entry must stand alone.
    fn entry_at(
        &self,
        offset: usize,
        anchor: Option<(usize, usize)>,
    ) -> Result<Cursor, BlockError> {
        let entries = &self.data[..self.entries_end];
        let bad_header = error(offset, "entry header is malformed or past the entries");
        let (shared, pos) = varint::get(entries, offset).ok_or(bad_header)?;
        let (unshared, pos) = varint::get(entries, pos).ok_or(bad_header)?;
        let (value_len, suffix_start) = varint::get(entries, pos).ok_or(bad_header)?;
        let value_start = suffix_start
            .checked_add(unshared as usize)
            .filter(|&end| end <= self.entries_end)
            .ok_or(error(offset, "entry key runs past the entries"))?;
        let end = value_start
            .checked_add(value_len as usize)
            .filter(|&end| end <= self.entries_end)
            .ok_or(error(offset, "entry value runs past the entries"))?;
        let shared = shared as usize;
        let (anchor_start, anchor_len) = match anchor {
            _ if shared == 0 => (suffix_start, unshared as usize),
            Some((start, len)) if shared <= len => (start, len),
            _ => return Err(error(offset, "entry shares more bytes than its anchor key has")),
        };
        Ok(Cursor { anchor_start, anchor_len, shared, suffix_start, value_start, end })
    }
}

/// The u32 LE at `at`; requires `at + 4 <= bytes.len()`.
fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::super::block_builder::BlockBuilder;
    use super::*;
    use crate::storage::key::{self, SeqNo, ValueKind};
    use crate::storage::sstable::test_util::{Entries, seeded_config};
    use proptest::prelude::*;

    fn must_build(entries: &[(Vec<u8>, Vec<u8>)], restart_interval: usize) -> Block {
        let mut builder = BlockBuilder::new(restart_interval);
        for (k, v) in entries {
            builder.add(k, v);
        }
        Block::decode(builder.finish().to_vec()).expect("a built block decodes")
    }

    fn must_collect(block: &Block, mut cursor: Option<Cursor>) -> Entries {
        let mut out = Vec::new();
        while let Some(c) = cursor {
            let (head, tail) = block.key_parts(&c);
            out.push(([head, tail].concat(), block.value(&c).to_vec()));
            cursor = block.next(&c).expect("well-formed");
        }
        out
    }

    /// Sorted, distinct internal keys from user keys over a tiny alphabet (many shared
    /// prefixes, user keys that are prefixes of others) and several versions each.
    fn sorted_entries() -> impl Strategy<Value = Entries> {
        let entry = (proptest::collection::vec(b'a'..b'd', 1..5), 0u64..300, any::<bool>());
        (proptest::collection::vec(entry, 1..80), proptest::collection::vec(any::<u8>(), 0..9))
            .prop_map(|(raw, value)| {
                let mut keys: Vec<Vec<u8>> = raw
                    .into_iter()
                    .map(|(user, seq, put)| {
                        let kind = if put { ValueKind::Put } else { ValueKind::Delete };
                        key::encode(&user, SeqNo(seq), kind)
                    })
                    .collect();
                keys.sort_by(|a, b| key::compare(a, b));
                keys.dedup_by(|a, b| key::compare(a, b).is_eq());
                keys.into_iter()
                    .enumerate()
                    .map(|(i, k)| (k, value.iter().map(|b| b ^ i as u8).collect()))
                    .collect()
            })
    }

    #[test]
    fn malformed_restart_arrays_are_refused() {
        assert!(Block::decode(vec![]).is_err(), "empty");
        assert!(Block::decode(vec![0, 0, 0, 0]).is_err(), "no restarts");
        assert!(Block::decode(vec![0, 0, 0, 0, 1, 0, 0, 0]).is_err(), "no entries");
        assert!(Block::decode(vec![0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err(), "huge count");
        // One entry (3 header bytes) and a restart at offset 1 instead of 0.
        assert!(Block::decode(vec![0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]).is_err(), "not at 0");
        let ok = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
        assert!(Block::decode(ok).is_ok(), "one empty entry, restart 0");
    }

    #[test]
    fn entry_sharing_without_an_anchor_is_refused() {
        // An entry at a restart point claims to share 2 bytes.
        let block = Block::decode(vec![2, 1, 0, b'x', 0, 0, 0, 0, 1, 0, 0, 0]).expect("restarts");
        assert!(block.first().is_err());
    }

    proptest! {
        #![proptest_config(seeded_config(128))]

        /// Iteration returns exactly what was added, and seek lands on the first key at or after
        /// any target, for every restart interval.
        #[test]
        fn built_blocks_iterate_and_seek_like_a_sorted_list(
            entries in sorted_entries(),
            restart_interval in 1usize..5,
            probes in proptest::collection::vec(
                (proptest::collection::vec(b'a'..b'e', 0..5), 0u64..310),
                1..20,
            ),
        ) {
            let block = must_build(&entries, restart_interval);
            prop_assert_eq!(&must_collect(&block, Some(block.first().expect("first"))), &entries);
            for (user, seq) in probes {
                let target_key = key::seek_key(&user, SeqNo(seq));
                let expected =
                    entries.iter().position(|(k, _)| key::compare(k, &target_key).is_ge());
                let found = block.seek(&Target::from_encoded(&target_key)).expect("well-formed");
                let found = must_collect(&block, found);
                prop_assert_eq!(&found[..], &entries[expected.unwrap_or(entries.len())..]);
            }
        }

        /// Arbitrary contents never panic: decoding, iterating and seeking either work or fail.
        #[test]
        fn any_contents_never_panic(data: Vec<u8>, count in 0u32..4, target: Vec<u8>) {
            let mut data = data;
            data.extend_from_slice(&[0; 4]);
            data.extend_from_slice(&count.to_le_bytes());
            if let Ok(block) = Block::decode(data) {
                let mut cursor = block.first().ok();
                let mut steps = 0;
                while let Some(c) = cursor {
                    let _ = (block.key_parts(&c), block.value(&c));
                    cursor = block.next(&c).ok().flatten();
                    steps += 1;
                    prop_assert!(steps <= 10_000, "iteration must end");
                }
                let _ = block.seek(&Target::from_encoded(&target));
            }
        }
    }
}
