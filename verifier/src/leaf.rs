//! The leaf: the canonical binary encoding of one committed record, which is what the Merkle log
//! hashes (`leaf_hash = SHA-256(0x00 ‖ leaf bytes)`).
//!
//! # Format, version 1
//!
//! All integers are big-endian; offsets are in bytes.
//!
//! | offset | size | field            | meaning                                                  |
//! |-------:|-----:|------------------|----------------------------------------------------------|
//! | 0      | 1    | `format`         | `0x01`, the format version                                |
//! | 1      | 1    | `kind`           | `0x01` = a record (the only kind of version 1)            |
//! | 2      | 4    | `shard`          | the shard whose log holds the leaf                        |
//! | 6      | 8    | `log_index`      | the leaf's position in that log, from 0                   |
//! | 14     | 8    | `version`        | the record's version in its key's history, from 1         |
//! | 22     | 8    | `commit_time_ms` | commit time, ms since the Unix epoch, from the Raft entry |
//! | 30     | 16   | `txn_id`         | the transaction, all zero for a single write              |
//! | 46     | 8    | `value_len`      | length of the value in bytes                              |
//! | 54     | 32   | `value_sha256`   | SHA-256 of the value                                      |
//! | 86     | 2    | `key_len`        | length of the key in bytes, 1 to [`KEY_LEN_MAX`]          |
//! | 88     | n    | `key`            | the key                                                   |
//!
//! The encoding is canonical: every field has one encoding, and the decoder refuses trailing
//! bytes, so `encode(decode(b)) == b` for every `b` that decodes. The leaf commits to the value's
//! digest and length, not to its bytes, so a value can later be redacted without breaking any
//! proof. A leaf is at most `u16::MAX` bytes long, so it fits one entry of a tlog-tiles entry
//! bundle (whose entries have a 16-bit length prefix).
//!
//! A new format gets a new `format` byte; decoders refuse formats and kinds they do not know
//! rather than guess.

use sha2::{Digest, Sha256};

use crate::codec::{DecodeError, Reader, Writer};
use crate::hash::{Hash, leaf_hash};
use crate::ids::{LogIndex, ShardId, TxnId};

/// The leaf format this code writes.
pub const FORMAT_V1: u8 = 0x01;
/// The kind byte of a record leaf.
pub const KIND_RECORD: u8 = 0x01;
/// Length of the fixed part of a version 1 leaf, before the key.
pub const HEADER_LEN: usize = 88;
/// Longest key a leaf can hold, so that a whole leaf fits in `u16::MAX` bytes.
pub const KEY_LEN_MAX: usize = u16::MAX as usize - HEADER_LEN;

/// A decoded leaf: what the log commits to for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The shard whose log holds this leaf.
    pub shard: ShardId,
    /// Position of the leaf in its shard's log.
    pub log_index: LogIndex,
    /// Version of the record in its key's history (1 for the first).
    pub version: u64,
    /// Commit time in milliseconds since the Unix epoch, as the leader put it in the Raft entry.
    pub commit_time_ms: u64,
    /// The transaction that wrote the record, or [`TxnId::NONE`].
    pub txn_id: TxnId,
    /// Length of the value in bytes.
    pub value_len: u64,
    /// SHA-256 of the value.
    pub value_sha256: Hash,
    /// The key, 1 to [`KEY_LEN_MAX`] bytes.
    pub key: Vec<u8>,
}

/// Why bytes are not a valid leaf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeafError {
    /// The format byte is not one this code knows.
    #[error("unknown leaf format {0:#04x} (this verifier knows {FORMAT_V1:#04x})")]
    UnknownFormat(u8),
    /// The kind byte is not one this format defines.
    #[error("unknown leaf kind {0:#04x}")]
    UnknownKind(u8),
    /// A record's version is 0; versions count from 1.
    #[error("leaf version is 0; versions count from 1")]
    ZeroVersion,
    /// The key is empty or too long.
    #[error("leaf key length {0} is outside 1..={KEY_LEN_MAX}")]
    KeyLength(usize),
    /// The bytes end early or run on.
    #[error("malformed leaf: {0}")]
    Malformed(#[from] DecodeError),
}

impl Leaf {
    /// A leaf for `value`, computing its length and digest.
    pub fn for_value(
        shard: ShardId,
        log_index: LogIndex,
        version: u64,
        commit_time_ms: u64,
        txn_id: TxnId,
        key: Vec<u8>,
        value: &[u8],
    ) -> Leaf {
        Leaf {
            shard,
            log_index,
            version,
            commit_time_ms,
            txn_id,
            value_len: value.len() as u64,
            value_sha256: Hash(Sha256::digest(value).into()),
            key,
        }
    }

    /// The canonical bytes of the leaf.
    ///
    /// # Errors
    /// [`LeafError::KeyLength`] or [`LeafError::ZeroVersion`]: a leaf that could not be decoded
    /// again is never encoded.
    pub fn encode(&self) -> Result<Vec<u8>, LeafError> {
        if self.key.is_empty() || self.key.len() > KEY_LEN_MAX {
            return Err(LeafError::KeyLength(self.key.len()));
        }
        if self.version == 0 {
            return Err(LeafError::ZeroVersion);
        }
        let mut w = Writer::with_capacity(HEADER_LEN + self.key.len());
        w.u8(FORMAT_V1);
        w.u8(KIND_RECORD);
        w.u32(self.shard.0);
        w.u64(self.log_index.0);
        w.u64(self.version);
        w.u64(self.commit_time_ms);
        w.put(&self.txn_id.0);
        w.u64(self.value_len);
        w.put(&self.value_sha256.0);
        w.u16(u16::try_from(self.key.len()).expect("key length checked above"));
        w.put(&self.key);
        debug_assert_eq!(w.buf.len(), HEADER_LEN + self.key.len());
        Ok(w.buf)
    }

    /// Decodes canonical leaf bytes.
    ///
    /// # Errors
    /// A [`LeafError`] naming the first field that is wrong. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Leaf, LeafError> {
        let mut r = Reader::new(bytes);
        let format = r.u8("format")?;
        if format != FORMAT_V1 {
            return Err(LeafError::UnknownFormat(format));
        }
        let kind = r.u8("kind")?;
        if kind != KIND_RECORD {
            return Err(LeafError::UnknownKind(kind));
        }
        let shard = ShardId(r.u32("shard")?);
        let log_index = LogIndex(r.u64("log_index")?);
        let version = r.u64("version")?;
        if version == 0 {
            return Err(LeafError::ZeroVersion);
        }
        let commit_time_ms = r.u64("commit_time_ms")?;
        let txn_id = TxnId(r.array("txn_id")?);
        let value_len = r.u64("value_len")?;
        let value_sha256 = r.hash("value_sha256")?;
        let key_len = usize::from(r.u16("key_len")?);
        if key_len == 0 || key_len > KEY_LEN_MAX {
            return Err(LeafError::KeyLength(key_len));
        }
        let key = r.bytes("key", key_len)?.to_vec();
        r.finish()?;
        Ok(Leaf { shard, log_index, version, commit_time_ms, txn_id, value_len, value_sha256, key })
    }

    /// The RFC 6962 leaf hash of the canonical bytes.
    ///
    /// # Errors
    /// As [`Leaf::encode`].
    pub fn hash(&self) -> Result<Hash, LeafError> {
        Ok(leaf_hash(&self.encode()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Leaf {
        Leaf::for_value(
            ShardId(3),
            LogIndex(41),
            2,
            1_700_000_000_123,
            TxnId([7; 16]),
            b"acct/alice".to_vec(),
            b"balance=10",
        )
    }

    #[test]
    fn round_trip_and_layout() {
        let leaf = sample();
        let bytes = leaf.encode().expect("valid leaf");
        assert_eq!(bytes.len(), HEADER_LEN + 10);
        assert_eq!(&bytes[..2], &[FORMAT_V1, KIND_RECORD]);
        assert_eq!(&bytes[2..6], &3u32.to_be_bytes());
        assert_eq!(&bytes[6..14], &41u64.to_be_bytes());
        assert_eq!(&bytes[46..54], &10u64.to_be_bytes());
        assert_eq!(&bytes[86..88], &10u16.to_be_bytes());
        assert_eq!(&bytes[88..], b"acct/alice");
        assert_eq!(Leaf::decode(&bytes), Ok(leaf));
    }

    #[test]
    fn refuses_bad_fields() {
        let bytes = sample().encode().expect("valid leaf");
        let mut b = bytes.clone();
        b[0] = 2;
        assert_eq!(Leaf::decode(&b), Err(LeafError::UnknownFormat(2)));
        let mut b = bytes.clone();
        b[1] = 9;
        assert_eq!(Leaf::decode(&b), Err(LeafError::UnknownKind(9)));
        let mut b = bytes.clone();
        b.push(0);
        assert!(matches!(Leaf::decode(&b), Err(LeafError::Malformed(_))));
        assert!(matches!(Leaf::decode(&bytes[..bytes.len() - 1]), Err(LeafError::Malformed(_))));
        let mut empty_key = sample();
        empty_key.key.clear();
        assert_eq!(empty_key.encode(), Err(LeafError::KeyLength(0)));
    }
}
