//! A bounds-checked reader and a writer for the big-endian binary formats (leaf, bundle).
//!
//! The reader never panics: every read checks the remaining length first and reports the field
//! it was reading and the offset where the input ran out.

use crate::hash::Hash;

/// What went wrong while decoding binary input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("input ends inside field `{field}` at offset {offset}: need {need} bytes, have {have}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        need: usize,
        /// Bytes left in the input.
        have: usize,
    },
    /// A length prefix exceeds the format's bound.
    #[error("field `{field}` is {len} bytes long, more than the limit of {max}")]
    TooLong {
        /// The field being read.
        field: &'static str,
        /// Length the input claims.
        len: u64,
        /// The format's bound.
        max: u64,
    },
    /// Bytes remain after the last field.
    #[error("{count} unexpected bytes after the end at offset {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// Number of extra bytes.
        count: usize,
    },
    /// A field has a value the format does not allow.
    #[error("field `{field}` has invalid value {value}")]
    InvalidValue {
        /// The field being read.
        field: &'static str,
        /// The value found, printed.
        value: String,
    },
}

pub(crate) struct Reader<'a> {
    input: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Reader { input, offset: 0 }
    }

    pub(crate) fn bytes(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        let rest = &self.input[self.offset..];
        if rest.len() < n {
            return Err(DecodeError::Truncated {
                field,
                offset: self.offset,
                need: n,
                have: rest.len(),
            });
        }
        self.offset += n;
        Ok(&rest[..n])
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(field, N)?;
        Ok(<[u8; N]>::try_from(b).expect("bytes() returned exactly N bytes"))
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn hash(&mut self, field: &'static str) -> Result<Hash, DecodeError> {
        Ok(Hash(self.array(field)?))
    }

    /// A byte string with a big-endian u32 length prefix, at most `max` bytes long.
    pub(crate) fn bytes_u32(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)?;
        if u64::from(len) > max as u64 {
            return Err(DecodeError::TooLong { field, len: len.into(), max: max as u64 });
        }
        self.bytes(field, len as usize)
    }

    /// A list of hashes with a u8 count prefix, at most `max` hashes.
    pub(crate) fn hashes_u8(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<Vec<Hash>, DecodeError> {
        let n = usize::from(self.u8(field)?);
        if n > max {
            return Err(DecodeError::TooLong { field, len: n as u64, max: max as u64 });
        }
        (0..n).map(|_| self.hash(field)).collect()
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        let count = self.input.len() - self.offset;
        if count != 0 {
            return Err(DecodeError::TrailingBytes { offset: self.offset, count });
        }
        Ok(())
    }
}

/// Appends big-endian fields to a buffer. Lengths are checked by the callers, which know the
/// format's bounds; a length that does not fit its prefix is a programmer error.
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Writer { buf: Vec::with_capacity(n) }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn bytes_u32(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("callers bound lengths below u32::MAX");
        self.u32(len);
        self.put(bytes);
    }

    pub(crate) fn hashes_u8(&mut self, hashes: &[Hash]) {
        let n = u8::try_from(hashes.len()).expect("callers bound proof lengths below 256");
        self.u8(n);
        for h in hashes {
            self.put(&h.0);
        }
    }
}
