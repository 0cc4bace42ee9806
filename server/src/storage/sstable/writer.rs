//! [`TableWriter`]: writes one table file, front to back, in one pass.
//!
//! Entries arrive sorted; data blocks are written as they fill, and the filter, index and meta
//! blocks and the footer at the end. Nothing is ever rewritten, so the file is valid exactly when
//! its footer is complete, and [`TableWriter::finish`] fsyncs it before returning.
//!
//! Crash points: if the process dies before `finish` returns, the file may be partly written
//! (usually without a footer, so it fails to open as corrupt). The caller records a table in the
//! manifest only after `finish` returned and the directory was fsynced, so recovery never trusts
//! such a file: it is an orphan and is deleted.

use std::cmp::Ordering;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::block_builder::BlockBuilder;
use super::bloom::{self, BloomFilter};
use super::format::{BLOCK_HANDLE_LEN, BlockHandle, Footer, block_checksum};
use super::meta::TableInfo;
use super::options::TableOptions;
use crate::storage::error::{IoContext, Result, StorageError};
use crate::storage::key::{self, SeqNo};

/// Longest key (encoded internal key) a table accepts.
pub(crate) const MAX_KEY_BYTES: usize = 64 << 10;
/// Longest value a table accepts.
pub(crate) const MAX_VALUE_BYTES: usize = 1 << 30;
/// Largest target block size; with the entry limits above, every block stays below 4 GiB, the
/// most a block handle can describe.
const MAX_BLOCK_BYTES: usize = 1 << 30;
/// Size of the write buffer: large sequential writes, few system calls.
const WRITE_BUFFER_BYTES: usize = 256 << 10;

/// Writes a new table file. Create it, [`TableWriter::add`] the entries in order, then
/// [`TableWriter::finish`]. Dropping a writer without finishing leaves an incomplete file that
/// the caller deletes.
#[derive(Debug)]
pub struct TableWriter {
    path: PathBuf,
    file: BufWriter<File>,
    /// Bytes written so far: the offset of the next block.
    offset: u64,
    block_size_bytes: usize,
    bloom_bits_per_key: u32,
    data_block: BlockBuilder,
    index_block: BlockBuilder,
    /// Hashes of the distinct user keys, for the filter built by `finish`.
    key_hashes: Vec<u64>,
    smallest_key: Vec<u8>,
    last_key: Vec<u8>,
    entry_count: u64,
    min_seqno: SeqNo,
    max_seqno: SeqNo,
}

impl TableWriter {
    /// Creates the file at `path` for a new table. Requires `options.restart_interval >= 1`.
    ///
    /// # Errors
    /// [`StorageError::Io`] if the file exists already or cannot be created.
    ///
    /// # Panics
    /// If `options.restart_interval` is 0 (a programmer error).
    pub fn create(path: &Path, options: &TableOptions) -> Result<TableWriter> {
        let file = OpenOptions::new().write(true).create_new(true).open(path).io("create", path)?;
        Ok(TableWriter {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
            offset: 0,
            block_size_bytes: options.block_size_bytes.min(MAX_BLOCK_BYTES),
            bloom_bits_per_key: options.bloom_bits_per_key,
            data_block: BlockBuilder::new(options.restart_interval),
            index_block: BlockBuilder::new(options.restart_interval),
            key_hashes: Vec::new(),
            smallest_key: Vec::new(),
            last_key: Vec::new(),
            entry_count: 0,
            min_seqno: SeqNo(u64::MAX),
            max_seqno: SeqNo(0),
        })
    }

    /// Appends an entry: `key` is an encoded internal key, `value` its value (empty for a
    /// tombstone). Requires `key` to be a valid internal key and keys to be strictly increasing
    /// by [`key::compare`] (checked in debug builds only).
    ///
    /// # Errors
    /// [`StorageError::TooLarge`] for a key over 64 KiB or a value over 1 GiB (nothing is added);
    /// [`StorageError::Io`] if writing a full block fails (the writer must then be dropped).
    ///
    /// # Panics
    /// If `key` is not an internal key (shorter than a trailer, or an unknown kind).
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if key.len() > MAX_KEY_BYTES {
            return Err(StorageError::TooLarge { what: "key", len: key.len(), max: MAX_KEY_BYTES });
        }
        if value.len() > MAX_VALUE_BYTES {
            let len = value.len();
            return Err(StorageError::TooLarge { what: "value", len, max: MAX_VALUE_BYTES });
        }
        let parsed = key::parse(key).expect("TableWriter::add takes encoded internal keys");
        debug_assert!(
            self.entry_count == 0 || key::compare(&self.last_key, key) == Ordering::Less,
            "table keys must be strictly increasing"
        );
        if self.entry_count == 0 {
            self.smallest_key = key.to_vec();
        }
        // Versions of a user key are adjacent, so a distinct user key differs from the last one.
        if self.entry_count == 0 || key::user_key(&self.last_key) != parsed.user_key {
            self.key_hashes.push(bloom::hash(parsed.user_key));
        }
        self.min_seqno = self.min_seqno.min(parsed.seqno);
        self.max_seqno = self.max_seqno.max(parsed.seqno);
        self.data_block.add(key, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.entry_count += 1;
        if self.data_block.size_estimate() >= self.block_size_bytes {
            self.flush_data_block()?;
        }
        Ok(())
    }

    /// Writes the last data block, the filter, index and meta blocks and the footer, then
    /// fsyncs the file (the caller fsyncs the directory). Requires at least one entry.
    ///
    /// # Errors
    /// [`StorageError::Io`] if a write or the fsync fails; the file must then be deleted.
    ///
    /// # Panics
    /// If no entry was added: an empty table is a programmer error, not an operating one.
    pub fn finish(mut self) -> Result<TableInfo> {
        assert!(self.entry_count > 0, "a table holds at least one entry");
        if !self.data_block.is_empty() {
            self.flush_data_block()?;
        }
        let data_end = self.offset;
        let filter = BloomFilter::build(&self.key_hashes, self.bloom_bits_per_key);
        let filter = write_block(&mut self.file, &mut self.offset, &self.path, &filter)?;
        let index = self.index_block.finish();
        let index = write_block(&mut self.file, &mut self.offset, &self.path, index)?;
        let mut info = TableInfo {
            file_size: 0, // known once the footer is written
            entry_count: self.entry_count,
            smallest_key: std::mem::take(&mut self.smallest_key),
            largest_key: std::mem::take(&mut self.last_key),
            min_seqno: self.min_seqno,
            max_seqno: self.max_seqno,
        };
        let meta = info.encode_meta();
        let meta = write_block(&mut self.file, &mut self.offset, &self.path, &meta)?;
        debug_assert_eq!(filter.offset, data_end);
        let footer = Footer { filter, index, meta }.encode();
        self.file.write_all(&footer).io("write", &self.path)?;
        self.offset += footer.len() as u64;
        info.file_size = self.offset;
        let file = self.file.into_inner().map_err(|e| StorageError::Io {
            op: "write",
            path: self.path.clone(),
            source: e.into_error(),
        })?;
        // Crash point: until this fsync returns the table may be incomplete on disk; it is not
        // in the manifest yet, so recovery deletes it.
        file.sync_all().io("fsync", &self.path)?;
        Ok(info)
    }

    /// Bytes written to the file so far (buffered or not), for the caller's size-based cut of a
    /// compaction's output into tables.
    pub fn written_bytes(&self) -> u64 {
        self.offset + self.data_block.size_estimate() as u64
    }

    /// Writes the pending data block and adds its index entry, keyed by its last key.
    fn flush_data_block(&mut self) -> Result<()> {
        // One key of at most 64 KiB per data block of at least one entry: only a table with
        // gigabytes of keys could need an index block over 4 GiB, more than a handle describes.
        let index_len = self.index_block.size_estimate() + self.last_key.len() + 32;
        if index_len > u32::MAX as usize {
            let max = u32::MAX as usize;
            return Err(StorageError::TooLarge { what: "table index", len: index_len, max });
        }
        let handle =
            write_block(&mut self.file, &mut self.offset, &self.path, self.data_block.finish())?;
        self.data_block.reset();
        let mut encoded = Vec::with_capacity(BLOCK_HANDLE_LEN);
        handle.encode_into(&mut encoded);
        self.index_block.add(&self.last_key, &encoded);
        Ok(())
    }
}

/// Writes `contents` and its CRC32 trailer at `*offset`, advances `*offset` past them and
/// returns the block's handle.
fn write_block(
    file: &mut BufWriter<File>,
    offset: &mut u64,
    path: &Path,
    contents: &[u8],
) -> Result<BlockHandle> {
    let size = u32::try_from(contents.len()).expect("blocks are kept below 4 GiB");
    let handle = BlockHandle { offset: *offset, size };
    file.write_all(contents).io("write", path)?;
    file.write_all(&block_checksum(contents).to_le_bytes()).io("write", path)?;
    *offset = handle.end().expect("a file offset below 2^64");
    Ok(handle)
}
