//! The fixed parts of the table format: block handles, block trailers and the footer.
//!
//! The layout is described byte by byte in `sstable/mod.rs`; this file only encodes and decodes
//! it, without I/O, so that every decoder can be tested on arbitrary bytes.

/// The magic number at the very end of every table file; its bytes on disk read `BlkDBsst`.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"BlkDBsst");
/// The format version this code writes, and the newest it reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Length of the footer at the end of the file.
pub(crate) const FOOTER_LEN: usize = 52;
/// Length of the CRC32 that follows every block.
pub(crate) const BLOCK_TRAILER_LEN: usize = 4;
/// Length of an encoded [`BlockHandle`].
pub(crate) const BLOCK_HANDLE_LEN: usize = 12;

/// Where the checksum sits in the footer, and where the version and magic number start.
const CRC_AT: usize = 36;
const VERSION_AT: usize = 40;
const MAGIC_AT: usize = 44;

/// The CRC32 of a block's contents, stored in the trailer after it.
pub(crate) fn block_checksum(contents: &[u8]) -> u32 {
    crc32fast::hash(contents)
}

/// Where a block is: the offset of its first byte and the length of its contents, not counting
/// the trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHandle {
    /// Offset of the block's first byte in the file.
    pub(crate) offset: u64,
    /// Length of the block's contents (the trailer follows them).
    pub(crate) size: u32,
}

impl BlockHandle {
    /// Appends the handle to `out`: offset u64 LE, then size u32 LE.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
    }

    /// Decodes a handle from exactly [`BLOCK_HANDLE_LEN`] bytes, or `None` for another length.
    pub(crate) fn decode(bytes: &[u8]) -> Option<BlockHandle> {
        let bytes: &[u8; BLOCK_HANDLE_LEN] = bytes.try_into().ok()?;
        let (offset, size) = bytes.split_at(8);
        Some(BlockHandle {
            offset: u64::from_le_bytes(offset.try_into().ok()?),
            size: u32::from_le_bytes(size.try_into().ok()?),
        })
    }

    /// The offset just past the block's trailer, or `None` if that overflows a `u64`.
    pub(crate) fn end(&self) -> Option<u64> {
        self.offset.checked_add(u64::from(self.size) + BLOCK_TRAILER_LEN as u64)
    }
}

/// The footer: where the filter, index and meta blocks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    /// The filter block (contents may be empty: no filter).
    pub(crate) filter: BlockHandle,
    /// The index block.
    pub(crate) index: BlockHandle,
    /// The meta block.
    pub(crate) meta: BlockHandle,
}

/// Why a footer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FooterError {
    /// The footer is not that of a v1 table; `offset` is within the footer.
    Corrupt {
        /// Offset of the bad field from the footer's start.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file was written by a newer format version.
    UnsupportedVersion(u32),
}

impl Footer {
    /// The encoded footer.
    pub(crate) fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        for handle in [self.filter, self.index, self.meta] {
            handle.encode_into(&mut out);
        }
        out.extend_from_slice(&[0; 4]); // the checksum, filled in below
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&MAGIC.to_le_bytes());
        let crc = footer_checksum(&out);
        out[CRC_AT..VERSION_AT].copy_from_slice(&crc.to_le_bytes());
        out.try_into().expect("three handles, checksum, version and magic are 52 bytes")
    }

    /// Decodes a footer, checking in this order: the magic number, the version, the checksum.
    ///
    /// The version and magic number are the last twelve bytes of every format version, and
    /// they are read before the checksum because a newer version may lay out the rest of its
    /// footer differently. So a corrupted version field that reads higher than
    /// [`FORMAT_VERSION`] is reported as an unsupported version (the file is refused all the
    /// same).
    ///
    /// # Errors
    /// [`FooterError`]. Never panics.
    pub(crate) fn decode(bytes: &[u8; FOOTER_LEN]) -> Result<Footer, FooterError> {
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&bytes[MAGIC_AT..]);
        let magic = u64::from_le_bytes(magic);
        if magic != MAGIC {
            return Err(FooterError::Corrupt {
                offset: MAGIC_AT,
                reason: format!("bad magic number {magic:#018x}, expected {MAGIC:#018x}"),
            });
        }
        let version = u32_at(VERSION_AT);
        if version > FORMAT_VERSION {
            return Err(FooterError::UnsupportedVersion(version));
        }
        if version == 0 {
            return Err(FooterError::Corrupt {
                offset: VERSION_AT,
                reason: "format version 0 does not exist".to_string(),
            });
        }
        let (stored, computed) = (u32_at(CRC_AT), footer_checksum(bytes));
        if stored != computed {
            return Err(FooterError::Corrupt {
                offset: 0,
                reason: format!(
                    "footer checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
                ),
            });
        }
        let handle_at = |at: usize| {
            BlockHandle::decode(&bytes[at..at + BLOCK_HANDLE_LEN])
                .expect("a slice of BLOCK_HANDLE_LEN bytes decodes")
        };
        Ok(Footer { filter: handle_at(0), index: handle_at(12), meta: handle_at(24) })
    }
}

/// The CRC32 of an encoded footer's bytes other than the checksum field itself: the three
/// handles, the version and the magic number.
fn footer_checksum(footer: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&footer[..CRC_AT]);
    hasher.update(&footer[VERSION_AT..]);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Footer {
        Footer {
            filter: BlockHandle { offset: 4096, size: 100 },
            index: BlockHandle { offset: 4200, size: 50 },
            meta: BlockHandle { offset: 4254, size: 60 },
        }
    }

    #[test]
    fn footer_round_trips_and_ends_with_version_and_magic() {
        let bytes = sample().encode();
        assert_eq!(Footer::decode(&bytes), Ok(sample()));
        assert_eq!(&bytes[MAGIC_AT..], b"BlkDBsst");
        assert_eq!(&bytes[VERSION_AT..MAGIC_AT], &1u32.to_le_bytes());
    }

    #[test]
    fn every_flipped_footer_byte_is_refused() {
        for at in 0..FOOTER_LEN {
            let mut bytes = sample().encode();
            bytes[at] ^= 0x01;
            match Footer::decode(&bytes) {
                Err(FooterError::Corrupt { .. }) => {}
                Err(FooterError::UnsupportedVersion(v)) => {
                    assert!((VERSION_AT..MAGIC_AT).contains(&at), "byte {at}: version {v}")
                }
                Ok(footer) => panic!("byte {at} flipped, footer accepted: {footer:?}"),
            }
        }
    }

    #[test]
    fn newer_version_is_unsupported_even_with_its_own_layout() {
        let mut bytes = [0u8; FOOTER_LEN];
        bytes[VERSION_AT..MAGIC_AT].copy_from_slice(&2u32.to_le_bytes());
        bytes[MAGIC_AT..].copy_from_slice(&MAGIC.to_le_bytes());
        assert_eq!(Footer::decode(&bytes), Err(FooterError::UnsupportedVersion(2)));
    }

    #[test]
    fn block_handle_rejects_wrong_lengths_and_overflow() {
        assert_eq!(BlockHandle::decode(&[0; 11]), None);
        assert_eq!(BlockHandle::decode(&[0; 13]), None);
        let mut out = Vec::new();
        BlockHandle { offset: 7, size: 9 }.encode_into(&mut out);
        assert_eq!(BlockHandle::decode(&out), Some(BlockHandle { offset: 7, size: 9 }));
        assert_eq!(BlockHandle { offset: u64::MAX, size: 0 }.end(), None);
    }
}
