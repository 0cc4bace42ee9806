//! The write-ahead log: segment files of framed records, appended and fsynced before a write is
//! acknowledged, and replayed at open.
//!
//! # Files and framing
//!
//! Segment `n` is the file `<n, 6+ digits>.wal` in the store's directory; segment numbers come from
//! the store's file-number counter, so they grow. A segment is a sequence of records:
//!
//! ```text
//! len: u32 LE | crc: u32 LE = CRC32(len bytes ‖ payload) | payload (len bytes)
//! ```
//!
//! One record is one group commit: the batches that one `write` call put in the file (see
//! [`crate::storage::batch`]). The CRC covers the length too, so a damaged length is caught rather
//! than followed. A record per write, rather than per batch, is what lets recovery tell a torn
//! write from corruption (below): every record after a damaged one was written by a later write.
//!
//! # Recovery
//!
//! [`read_segment`] returns every complete record in order. What follows the last good record
//! decides what happened:
//!
//! - no whole record: a torn tail, the remains of the last write, which was never acknowledged
//!   (acknowledgement waits for the fsync, and the file system may have persisted any part of an
//!   un-synced write, in any order). It is cut.
//! - a whole, checksummed record: corruption before the tail. That record was written by a later
//!   write than the damaged one, so the damaged one may hold acknowledged batches. Recovery stops
//!   with an error naming the file and offset; it never skips a damaged record to carry on.
//!
//! Only the newest segment can have a torn tail: a new segment is started only after every write
//! to the previous one completed, and a failed write stops the engine's writes.
//!
//! A segment cut short after it was written (a truncated file) looks like a torn tail, but it
//! may have lost acknowledged records. Segments are grown ahead of their appends a whole chunk
//! ([`PREALLOCATE_BYTES`]) at a time, and only so, so a segment's length is always a whole number
//! of chunks, whatever a crash interrupts (growing is one `ftruncate`); a segment of any other
//! length was cut, and recovery stops with an error instead of reading it. (A cut at a chunk
//! boundary, or damage to the last record alone, is not told from a torn tail.)

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::storage::error::{IoContext, Result, corruption};

/// Length of a record header.
pub(crate) const HEADER_LEN: usize = 8;
/// How far ahead of its contents a segment is grown (see [`WalWriter::create`]).
pub(crate) const PREALLOCATE_BYTES: u64 = 4 * 1024 * 1024;
/// Largest record the log accepts; a longer length in a header is corruption.
pub(crate) const RECORD_LEN_MAX: usize = 512 * 1024 * 1024;

/// The path of segment `number` in `dir`.
pub(crate) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.wal"))
}

/// The segment number of a file name, if it names a segment.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Appends `payload` as one framed record to `out`.
pub(crate) fn frame_into(out: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("batches are bounded below u32::MAX");
    let len_bytes = len.to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len_bytes);
    crc.update(payload);
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct WalWriter {
    file: File,
    path: PathBuf,
    number: u64,
    len: u64,
    /// The file's length: `len` rounded up to a whole number of `chunk_bytes`.
    allocated: u64,
    chunk_bytes: u64,
}

impl WalWriter {
    /// Creates segment `number` in `dir` (which must not exist), and fsyncs it and the
    /// directory, so the new file survives a crash.
    ///
    /// The file is grown ahead of the appends, `chunk_bytes` at a time (a sparse extension:
    /// nothing is written), because an append that does not change the file's length leaves
    /// the fdatasync after it no inode update to make; measured here, that makes a small durable
    /// append about a third faster. Growing by chunks rather than all at once keeps the file's
    /// size close to its contents. Recovery reads the zeros past the last record as the clean
    /// end of the segment.
    pub(crate) fn create(dir: &Path, number: u64, chunk_bytes: u64) -> Result<WalWriter> {
        let path = segment_path(dir, number);
        let file =
            OpenOptions::new().write(true).create_new(true).open(&path).io("create", &path)?;
        let mut w = WalWriter { file, path, number, len: 0, allocated: 0, chunk_bytes };
        w.grow_to(0)?;
        w.file.sync_all().io("fsync", &w.path)?;
        sync_dir(dir)?;
        Ok(w)
    }

    /// Grows the file ahead of `end` to a whole number of chunks. The chunks are what lets
    /// recovery tell a cut file from a torn tail (see the module docs), so a file system that
    /// refuses (a file-size limit, say) fails the append.
    fn grow_to(&mut self, end: u64) -> Result<()> {
        if self.chunk_bytes == 0 || end < self.allocated {
            return Ok(());
        }
        let target = (end / self.chunk_bytes + 1) * self.chunk_bytes;
        self.file.set_len(target).io("grow", &self.path)?;
        self.allocated = target;
        Ok(())
    }

    /// The segment's number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Appends framed records with one write. Not durable until [`WalWriter::sync`].
    pub(crate) fn append(&mut self, framed: &[u8]) -> Result<()> {
        let end = self.len + framed.len() as u64;
        self.grow_to(end)?;
        self.file.write_all(framed).io("write", &self.path)?;
        self.len = end;
        Ok(())
    }

    /// Bytes appended to the segment so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Makes everything appended so far durable (fdatasync: the data and the file length).
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.file.sync_data().io("fsync", &self.path)
    }

    /// A second handle on the segment's file and its path, for fsyncs made while appends go on
    /// (see `storage::sync`).
    ///
    /// # Errors
    /// When the file descriptor cannot be duplicated.
    pub(crate) fn sync_handle(&self) -> Result<(std::sync::Arc<File>, PathBuf)> {
        let file = self.file.try_clone().io("duplicate", &self.path)?;
        Ok((std::sync::Arc::new(file), self.path.clone()))
    }
}

/// A record read back from a segment.
#[derive(Debug)]
pub(crate) struct ReadRecord {
    /// Offset of the record's header in the segment.
    pub(crate) offset: u64,
    /// The payload.
    pub(crate) payload: Vec<u8>,
}

/// The records of one segment, and where its valid part ends.
#[derive(Debug)]
pub(crate) struct SegmentContents {
    pub(crate) records: Vec<ReadRecord>,
    /// Length of the valid prefix of the file; shorter than the file when the tail was torn.
    pub(crate) valid_len: u64,
    /// Whether damaged bytes (not just zeros) were found after `valid_len` and judged a torn
    /// tail.
    pub(crate) torn_tail: bool,
}

/// Reads every record of the segment at `path`, which was grown `chunk_bytes` at a time (0: not
/// grown ahead).
///
/// # Errors
/// I/O errors, and [`crate::storage::StorageError::Corruption`] with the offset of the first bad
/// record when it is followed by anything but a torn tail, or at the end of a segment that is
/// not a whole number of chunks long (see the module docs).
pub(crate) fn read_segment(path: &Path, chunk_bytes: u64) -> Result<SegmentContents> {
    let bytes = std::fs::read(path).io("read", path)?;
    let len = bytes.len() as u64;
    if chunk_bytes > 0 && !len.is_multiple_of(chunk_bytes) {
        return Err(corruption(
            path,
            len,
            format!(
                "the segment is {len} bytes, not a whole number of its {chunk_bytes}-byte \
                 chunks: it was cut short after it was written"
            ),
        ));
    }
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        match check_record(&bytes[pos..]) {
            Ok(len) => {
                let payload = bytes[pos + HEADER_LEN..pos + HEADER_LEN + len].to_vec();
                records.push(ReadRecord { offset: pos as u64, payload });
                pos += HEADER_LEN + len;
            }
            Err(reason) => {
                if bytes[pos..].iter().all(|&b| b == 0) {
                    // The preallocated space after the last record: the segment's clean end.
                    return Ok(SegmentContents {
                        records,
                        valid_len: pos as u64,
                        torn_tail: false,
                    });
                }
                if is_torn_tail(&bytes[pos..]) {
                    return Ok(SegmentContents { records, valid_len: pos as u64, torn_tail: true });
                }
                return Err(corruption(path, pos as u64, reason));
            }
        }
    }
    Ok(SegmentContents { records, valid_len: pos as u64, torn_tail: false })
}

/// The payload length of the record at the start of `rest`, if the record is whole and its CRC
/// matches.
fn check_record(rest: &[u8]) -> std::result::Result<usize, String> {
    if rest.len() < HEADER_LEN {
        return Err(format!("record header cut short: {} of {HEADER_LEN} bytes", rest.len()));
    }
    let len_bytes: [u8; 4] = rest[..4].try_into().expect("4 bytes");
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if len > RECORD_LEN_MAX {
        return Err(format!("record length {len} exceeds the limit {RECORD_LEN_MAX}"));
    }
    if rest.len() - HEADER_LEN < len {
        return Err(format!("record of {len} bytes runs past the end of the file"));
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&len_bytes);
    h.update(&rest[HEADER_LEN..HEADER_LEN + len]);
    if h.finalize() != crc {
        return Err("record checksum mismatch".to_owned());
    }
    Ok(len)
}

/// Whether `rest`, which starts with a bad record, is what an interrupted append leaves.
///
/// An append that was cut off leaves a prefix of the records it was writing, possibly followed by
/// zeros (space the file system allocated but the write never filled), and nothing valid after
/// the damage. So the tail is torn unless a whole, checksummed record starts somewhere after the
/// bad one: then the damage is in the middle of the log, and records after it, which may have been
/// acknowledged, would be lost by cutting. A bad length field is caught the same way, whether it
/// points inside or past the end of the file.
fn is_torn_tail(rest: &[u8]) -> bool {
    !(1..rest.len()).any(|k| check_record(&rest[k..]).is_ok())
}

/// Fsyncs a directory, so that files created, renamed or removed in it stay so after a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).io("open", dir)?.sync_all().io("fsync", dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageError;

    fn write_records(dir: &Path, payloads: &[&[u8]]) -> PathBuf {
        let mut w = WalWriter::create(dir, 7, 0).expect("create");
        let mut buf = Vec::new();
        for p in payloads {
            frame_into(&mut buf, p);
        }
        w.append(&buf).expect("append");
        w.sync().expect("sync");
        segment_path(dir, 7)
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_records(dir.path(), &[b"one", b"", b"three"]);
        let c = read_segment(&path, 0).expect("reads");
        let payloads: Vec<&[u8]> = c.records.iter().map(|r| r.payload.as_slice()).collect();
        assert_eq!(payloads, vec![&b"one"[..], b"", b"three"]);
        assert!(!c.torn_tail);
        assert_eq!(parse_segment_name("000007.wal"), Some(7));
        assert_eq!(parse_segment_name("7.wal"), None);
    }

    #[test]
    fn every_truncation_is_a_torn_tail_with_the_whole_records_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_records(dir.path(), &[b"first record", b"second record"]);
        let full = std::fs::read(&path).expect("read");
        let first_end = HEADER_LEN + b"first record".len();
        for cut in 0..full.len() {
            std::fs::write(&path, &full[..cut]).expect("write");
            let c = read_segment(&path, 0).expect("a cut is a torn tail");
            let want = if cut >= first_end { 1 } else { 0 };
            assert_eq!(c.records.len(), want, "cut at {cut}");
            assert_eq!(c.torn_tail, cut != 0 && cut != first_end);
        }
        // Zeros after the last record: space allocated but never written.
        let mut zeros = full.clone();
        zeros.extend_from_slice(&[0; 100]);
        std::fs::write(&path, &zeros).expect("write");
        let c = read_segment(&path, 0).expect("zeros are the clean end");
        assert_eq!((c.records.len(), c.valid_len, c.torn_tail), (2, full.len() as u64, false));
        // A record cut short and followed by zeros is still a torn tail.
        let mut cut = full[..full.len() - 3].to_vec();
        cut.extend_from_slice(&[0; 100]);
        std::fs::write(&path, &cut).expect("write");
        let c = read_segment(&path, 0).expect("a cut record then zeros is a torn tail");
        assert_eq!((c.records.len(), c.torn_tail), (1, true));
    }

    #[test]
    fn a_flipped_byte_before_the_tail_is_corruption_with_its_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_records(dir.path(), &[b"first record", b"second record", b"third"]);
        let full = std::fs::read(&path).expect("read");
        let second = HEADER_LEN + b"first record".len();
        for i in second..second + HEADER_LEN + b"second record".len() {
            let mut bad = full.clone();
            bad[i] ^= 0x20;
            std::fs::write(&path, &bad).expect("write");
            match read_segment(&path, 0) {
                Err(StorageError::Corruption { offset, path: p, .. }) => {
                    assert_eq!((offset, p.as_path()), (second as u64, path.as_path()), "byte {i}");
                }
                other => panic!("byte {i}: expected corruption, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_segment_grown_in_chunks_and_cut_short_is_corruption_not_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chunk = 4096;
        let mut w = WalWriter::create(dir.path(), 9, chunk).expect("create");
        let mut buf = Vec::new();
        for i in 0..100u32 {
            frame_into(&mut buf, format!("record {i} with some bytes in it").as_bytes());
        }
        w.append(&buf).expect("append");
        w.sync().expect("sync");
        let path = segment_path(dir.path(), 9);
        let full = std::fs::read(&path).expect("read");
        assert_eq!(full.len() as u64 % chunk, 0, "grown in whole chunks");
        assert!(full.len() > buf.len());
        assert_eq!(read_segment(&path, chunk).expect("reads").records.len(), 100);
        // Cut anywhere but at a chunk boundary: refused, nothing read, the file unchanged.
        for cut in [1, 100, buf.len() / 2, buf.len() - 1, buf.len() + 1, full.len() - 1] {
            std::fs::write(&path, &full[..cut]).expect("write");
            match read_segment(&path, chunk) {
                Err(StorageError::Corruption { offset, reason, .. }) => {
                    assert_eq!(offset, cut as u64);
                    assert!(reason.contains("cut short"), "{reason}");
                }
                other => panic!("cut at {cut}: expected corruption, got {other:?}"),
            }
            assert_eq!(std::fs::read(&path).expect("read").len(), cut);
        }
    }
}
