//! [`TableInfo`]: what the engine needs to know about a table without reading its data, kept
//! in the table's meta block.

use std::cmp::Ordering;

use crate::storage::key::{self, SEQNO_MAX, SeqNo};

/// A table's summary, written by [`super::TableWriter::finish`] and read back by
/// [`super::Table::open`]; the manifest and compaction pick tables by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Length of the table file in bytes.
    pub file_size: u64,
    /// Number of entries (every version and tombstone counts); at least 1.
    pub entry_count: u64,
    /// The first entry's encoded internal key.
    pub smallest_key: Vec<u8>,
    /// The last entry's encoded internal key.
    pub largest_key: Vec<u8>,
    /// The smallest sequence number of any entry.
    pub min_seqno: SeqNo,
    /// The largest sequence number of any entry.
    pub max_seqno: SeqNo,
}

impl TableInfo {
    /// The meta block's contents: entry count u64, min seqno u64, max seqno u64, then the
    /// smallest and the largest key, each as a u32 length and its bytes; all little-endian.
    /// `file_size` is not stored: it is the file's length.
    pub(crate) fn encode_meta(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.smallest_key.len() + self.largest_key.len());
        out.extend_from_slice(&self.entry_count.to_le_bytes());
        out.extend_from_slice(&self.min_seqno.0.to_le_bytes());
        out.extend_from_slice(&self.max_seqno.0.to_le_bytes());
        for key in [&self.smallest_key, &self.largest_key] {
            let len = u32::try_from(key.len()).expect("keys are shorter than a block (< 4 GiB)");
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(key);
        }
        out
    }

    /// Decodes a meta block's contents for a file of `file_size` bytes, checking that the
    /// summary is self-consistent (at least one entry, `min_seqno <= max_seqno <= SEQNO_MAX`,
    /// both keys valid internal keys with `smallest_key <= largest_key`).
    ///
    /// # Errors
    /// A reason if the contents are malformed. Never panics.
    pub(crate) fn decode_meta(contents: &[u8], file_size: u64) -> Result<TableInfo, &'static str> {
        let mut reader = Reader { bytes: contents };
        let entry_count = reader.u64()?;
        let min_seqno = SeqNo(reader.u64()?);
        let max_seqno = SeqNo(reader.u64()?);
        let smallest_key = reader.key()?;
        let largest_key = reader.key()?;
        if !reader.bytes.is_empty() {
            return Err("meta block has trailing bytes");
        }
        if entry_count == 0 {
            return Err("meta block says the table has no entries");
        }
        if min_seqno > max_seqno || max_seqno > SEQNO_MAX {
            return Err("meta block sequence number range is invalid");
        }
        if key::parse(&smallest_key).is_none() || key::parse(&largest_key).is_none() {
            return Err("meta block key is not an internal key");
        }
        if key::compare(&smallest_key, &largest_key) == Ordering::Greater {
            return Err("meta block smallest key is larger than its largest key");
        }
        Ok(TableInfo { file_size, entry_count, smallest_key, largest_key, min_seqno, max_seqno })
    }
}

/// Reads fixed fields from the front of a byte slice, refusing to read past its end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, len: usize) -> Result<&[u8], &'static str> {
        if self.bytes.len() < len {
            return Err("meta block is truncated");
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        let bytes = self.take(8)?.try_into().map_err(|_| "meta block is truncated")?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn key(&mut self) -> Result<Vec<u8>, &'static str> {
        let len_bytes = self.take(4)?.try_into().map_err(|_| "meta block is truncated")?;
        let len = u32::from_le_bytes(len_bytes) as usize;
        Ok(self.take(len)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::key::ValueKind;
    use crate::storage::sstable::test_util::seeded_config;
    use proptest::prelude::*;

    fn sample() -> TableInfo {
        TableInfo {
            file_size: 1234,
            entry_count: 3,
            smallest_key: key::encode(b"apple", SeqNo(9), ValueKind::Put),
            largest_key: key::encode(b"pear", SeqNo(2), ValueKind::Delete),
            min_seqno: SeqNo(2),
            max_seqno: SeqNo(9),
        }
    }

    #[test]
    fn meta_round_trips() {
        let meta = sample().encode_meta();
        assert_eq!(TableInfo::decode_meta(&meta, 1234), Ok(sample()));
    }

    #[test]
    fn inconsistent_summaries_are_refused() {
        let mut info = sample();
        info.entry_count = 0;
        assert!(TableInfo::decode_meta(&info.encode_meta(), 1).is_err(), "no entries");
        let mut info = sample();
        info.min_seqno = SeqNo(10);
        assert!(TableInfo::decode_meta(&info.encode_meta(), 1).is_err(), "min > max");
        let mut info = sample();
        std::mem::swap(&mut info.smallest_key, &mut info.largest_key);
        assert!(TableInfo::decode_meta(&info.encode_meta(), 1).is_err(), "keys swapped");
        let mut info = sample();
        info.smallest_key = b"short".to_vec();
        assert!(TableInfo::decode_meta(&info.encode_meta(), 1).is_err(), "not a key");
        let mut meta = sample().encode_meta();
        meta.push(0);
        assert!(TableInfo::decode_meta(&meta, 1).is_err(), "trailing byte");
        let meta = sample().encode_meta();
        for len in 0..meta.len() {
            assert!(TableInfo::decode_meta(&meta[..len], 1).is_err(), "truncated at {len}");
        }
    }

    proptest! {
        #![proptest_config(seeded_config(512))]

        #[test]
        fn any_bytes_decode_without_panic(bytes: Vec<u8>) {
            let _ = TableInfo::decode_meta(&bytes, 0);
        }
    }
}
