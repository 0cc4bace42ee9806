//! A write batch: puts and deletes applied atomically, and its encoding in the write-ahead log.
//!
//! # Encoding
//!
//! One WAL record holds the batches of one group commit, each encoded as below, one after the
//! other.
//!
//! Little-endian integers.
//!
//! | size | field                                                        |
//! |-----:|--------------------------------------------------------------|
//! | 8    | `first_seqno`: the sequence number of the first operation   |
//! | 4    | `count`: the number of operations                            |
//! | ...  | `count` operations, each: kind u8, key_len u32, key, value_len u32, value |
//!
//! Operation `i` has sequence number `first_seqno + i`. A delete has an empty value.

use crate::storage::error::{Result, StorageError};
use crate::storage::key::{SeqNo, ValueKind};

/// Longest key the engine accepts.
pub const KEY_LEN_MAX: usize = 64 * 1024;
/// Longest value the engine accepts.
pub const VALUE_LEN_MAX: usize = 64 * 1024 * 1024;
/// Largest encoded batch the engine accepts.
pub const BATCH_BYTES_MAX: usize = 256 * 1024 * 1024;

const HEADER_LEN: usize = 12;
const OP_OVERHEAD: usize = 9;

/// Puts and deletes that are applied together: after a crash all of them are present or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<(ValueKind, Vec<u8>, Vec<u8>)>,
    encoded_len: usize,
}

impl Default for WriteBatch {
    fn default() -> WriteBatch {
        WriteBatch::new()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch { ops: Vec::new(), encoded_len: HEADER_LEN }
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.push(ValueKind::Put, key.into(), value.into())
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.push(ValueKind::Delete, key.into(), Vec::new())
    }

    fn push(&mut self, kind: ValueKind, key: Vec<u8>, value: Vec<u8>) -> &mut Self {
        self.encoded_len += OP_OVERHEAD + key.len() + value.len();
        self.ops.push((kind, key, value));
        self
    }

    /// Moves every operation of `other` to the end of this batch, in order.
    pub fn append(&mut self, other: WriteBatch) -> &mut Self {
        self.encoded_len += other.encoded_len - HEADER_LEN;
        self.ops.extend(other.ops);
        self
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations in order.
    pub fn ops(&self) -> impl Iterator<Item = (ValueKind, &[u8], &[u8])> {
        self.ops.iter().map(|(k, key, v)| (*k, key.as_slice(), v.as_slice()))
    }

    /// The size of the encoded batch.
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    /// Checks the limits on keys, values and the batch's size.
    ///
    /// # Errors
    /// [`StorageError::TooLarge`] for an empty or oversized key, an oversized value or batch.
    pub fn validate(&self) -> Result<()> {
        for (_, key, value) in &self.ops {
            if key.is_empty() || key.len() > KEY_LEN_MAX {
                return Err(StorageError::TooLarge {
                    what: "key",
                    len: key.len(),
                    max: KEY_LEN_MAX,
                });
            }
            if value.len() > VALUE_LEN_MAX {
                return Err(StorageError::TooLarge {
                    what: "value",
                    len: value.len(),
                    max: VALUE_LEN_MAX,
                });
            }
        }
        if self.encoded_len > BATCH_BYTES_MAX {
            return Err(StorageError::TooLarge {
                what: "batch",
                len: self.encoded_len,
                max: BATCH_BYTES_MAX,
            });
        }
        Ok(())
    }

    /// Appends the encoding of the batch with sequence numbers from `first` to `out`.
    pub(crate) fn encode_into(&self, first: SeqNo, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len);
        out.extend_from_slice(&first.0.to_le_bytes());
        let count = u32::try_from(self.ops.len()).expect("validate bounds the batch size");
        out.extend_from_slice(&count.to_le_bytes());
        for (kind, key, value) in &self.ops {
            out.push(*kind as u8);
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value);
        }
    }
}

/// A batch read back from the log.
#[derive(Debug)]
pub(crate) struct DecodedBatch<'a> {
    pub(crate) first_seqno: SeqNo,
    pub(crate) ops: Vec<(ValueKind, &'a [u8], &'a [u8])>,
}

/// Decodes the batches of one WAL record (a group of batches written together, each encoded as
/// above, one after the other); `Err` holds the reason for a corruption error.
pub(crate) fn decode_group(mut r: &[u8]) -> std::result::Result<Vec<DecodedBatch<'_>>, String> {
    let mut batches = Vec::new();
    while !r.is_empty() {
        batches.push(decode_one(&mut r).map_err(|e| format!("batch {}: {e}", batches.len()))?);
    }
    if batches.is_empty() {
        return Err("record holds no batch".to_owned());
    }
    Ok(batches)
}

fn decode_one<'a>(r: &mut &'a [u8]) -> std::result::Result<DecodedBatch<'a>, String> {
    let first_seqno = SeqNo(u64::from_le_bytes(take(r, 8)?.try_into().map_err(|_| "seqno")?));
    let count = u32::from_le_bytes(take(r, 4)?.try_into().map_err(|_| "count")?);
    let mut ops = Vec::with_capacity((count as usize).min(r.len() / OP_OVERHEAD + 1));
    for i in 0..count {
        let kind_byte = take(r, 1)?[0];
        let kind = ValueKind::from_byte(kind_byte)
            .ok_or_else(|| format!("operation {i} has unknown kind {kind_byte}"))?;
        let key_len = u32::from_le_bytes(take(r, 4)?.try_into().map_err(|_| "key length")?);
        let key = take(r, key_len as usize)?;
        let value_len = u32::from_le_bytes(take(r, 4)?.try_into().map_err(|_| "value length")?);
        let value = take(r, value_len as usize)?;
        ops.push((kind, key, value));
    }
    Ok(DecodedBatch { first_seqno, ops })
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> std::result::Result<&'a [u8], String> {
    if r.len() < n {
        return Err(format!("batch ends early: need {n} bytes, have {}", r.len()));
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let mut b = WriteBatch::new();
        b.put(b"k1".to_vec(), b"v1".to_vec()).delete(b"k2".to_vec()).put(b"k3".to_vec(), vec![]);
        let mut out = Vec::new();
        b.encode_into(SeqNo(41), &mut out);
        assert_eq!(out.len(), b.encoded_len());
        b.encode_into(SeqNo(44), &mut out);
        let d = decode_group(&out).expect("decodes");
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].first_seqno, d[1].first_seqno), (SeqNo(41), SeqNo(44)));
        let ops: Vec<_> = b.ops().collect();
        assert_eq!(d[0].ops, ops);
        assert_eq!(d[1].ops, ops);
        for cut in 1..out.len() {
            assert!(decode_group(&out[..cut]).is_err() || cut == b.encoded_len(), "cut at {cut}");
        }
        assert!(decode_group(&[]).is_err());
    }

    #[test]
    fn limits() {
        let mut b = WriteBatch::new();
        b.put(Vec::new(), b"v".to_vec());
        assert!(matches!(b.validate(), Err(StorageError::TooLarge { what: "key", .. })));
        let mut b = WriteBatch::new();
        b.put(vec![1; KEY_LEN_MAX + 1], b"v".to_vec());
        assert!(b.validate().is_err());
        let mut b = WriteBatch::new();
        b.put(b"k".to_vec(), vec![0; VALUE_LEN_MAX + 1]);
        assert!(matches!(b.validate(), Err(StorageError::TooLarge { what: "value", .. })));
    }
}
