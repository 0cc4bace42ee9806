//! [`Table`]: an open table file, read by point lookups and iterators from many threads.
//!
//! Opening a table checks its footer and loads the filter, index and meta blocks into memory;
//! data blocks are read on demand with positioned reads (no shared file position, so threads do
//! not serialize on a seek) and kept in the shared [`BlockCache`]. Every block's checksum is
//! verified when it is read, before any of it is used.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::block::{Block, BlockError};
use super::bloom::BloomFilter;
use super::format::{
    BLOCK_TRAILER_LEN, BlockHandle, FOOTER_LEN, FORMAT_VERSION, Footer, FooterError, block_checksum,
};
use super::index::Index;
use super::meta::TableInfo;
use super::table_iter::TableIter;
use super::target::{self, Target};
use crate::storage::cache::BlockCache;
use crate::storage::error::{IoContext, Result, StorageError, corruption};
use crate::storage::key::{SeqNo, TRAILER_LEN, ValueKind};

/// The hash of a user key that the tables' Bloom filters use.
pub fn key_hash(user_key: &[u8]) -> u64 {
    super::bloom::hash(user_key)
}

/// An open, immutable table file.
pub struct Table {
    id: u64,
    path: PathBuf,
    file: File,
    cache: Arc<BlockCache>,
    index: Index,
    filter: Option<BloomFilter>,
    info: TableInfo,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("info", &self.info)
            .field("data_blocks", &self.index.len())
            .field("filter", &self.filter.is_some())
            .finish()
    }
}

impl Table {
    /// Opens the table file at `path`: checks the footer, then reads and checks the filter,
    /// index and meta blocks. `table_id` names the table's blocks in `cache`; it must be unique
    /// among the tables that share the cache for the cache's whole life (never reused), or one
    /// table could be served another's blocks.
    ///
    /// # Errors
    /// - [`StorageError::Io`] if the file cannot be opened or read.
    /// - [`StorageError::UnsupportedVersion`] if a newer format version wrote it.
    /// - [`StorageError::Corruption`] with the path and offset if the file is too short, the
    ///   magic number, a checksum or the layout is wrong.
    pub fn open(path: &Path, table_id: u64, cache: Arc<BlockCache>) -> Result<Table> {
        let file = File::open(path).io("open", path)?;
        let file_size = file.metadata().io("stat", path)?.len();
        let Some(footer_start) = file_size.checked_sub(FOOTER_LEN as u64) else {
            let reason =
                format!("{file_size}-byte file is shorter than a {FOOTER_LEN}-byte footer");
            return Err(corruption(path, 0, reason));
        };
        let mut footer = [0u8; FOOTER_LEN];
        file.read_exact_at(&mut footer, footer_start).io("read", path)?;
        let footer = Footer::decode(&footer).map_err(|e| match e {
            FooterError::Corrupt { offset, reason } => {
                corruption(path, footer_start + offset as u64, reason)
            }
            FooterError::UnsupportedVersion(found) => StorageError::UnsupportedVersion {
                path: path.to_path_buf(),
                found,
                supported: FORMAT_VERSION,
            },
        })?;
        // The filter, index and meta blocks follow each other up to the footer; the data blocks
        // fill [0, filter.offset) (checked by `Index::decode`). So every read below is inside
        // the file, and a corrupt length cannot make us allocate more than the file's size.
        let tiles = footer.filter.end() == Some(footer.index.offset)
            && footer.index.end() == Some(footer.meta.offset)
            && footer.meta.end() == Some(footer_start);
        if !tiles {
            return Err(corruption(
                path,
                footer_start,
                "footer block handles do not tile the file",
            ));
        }

        let filter = read_block(&file, path, footer.filter, "filter")?;
        let filter = BloomFilter::decode(&filter)
            .map_err(|reason| corruption(path, footer.filter.offset, reason))?;
        let meta = read_block(&file, path, footer.meta, "meta")?;
        let info = TableInfo::decode_meta(&meta, file_size)
            .map_err(|reason| corruption(path, footer.meta.offset, reason))?;
        let at_index =
            |e: BlockError| corruption(path, footer.index.offset + e.offset as u64, e.reason);
        let index =
            Block::decode(read_block(&file, path, footer.index, "index")?).map_err(at_index)?;
        let index = Index::decode(&index, footer.filter.offset).map_err(at_index)?;
        if index.last_key(index.len() - 1) != info.largest_key.as_slice() {
            let reason = "the index's last key is not the meta block's largest key";
            return Err(corruption(path, footer.meta.offset, reason));
        }
        Ok(Table { id: table_id, path: path.to_path_buf(), file, cache, index, filter, info })
    }

    /// The id the table was opened with.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The table file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The table's summary, from its meta block.
    pub fn info(&self) -> &TableInfo {
        &self.info
    }

    /// Bytes of memory the table holds outside the block cache (index and filter), for the
    /// engine's memory accounting.
    pub fn memory_bytes(&self) -> usize {
        self.index.memory_bytes() + self.filter.as_ref().map_or(0, BloomFilter::memory_bytes)
    }

    /// Whether the table may hold a version of `user_key`: `false` means it certainly holds
    /// none (by the Bloom filter; always `true` for a table written without one).
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.may_contain_hash(key_hash(user_key))
    }

    /// As [`Table::may_contain`], given the key's [`key_hash`], so that a read that checks many
    /// tables hashes the key once.
    pub fn may_contain_hash(&self, hash: u64) -> bool {
        self.filter.as_ref().is_none_or(|filter| filter.may_contain(hash))
    }

    /// The newest version of `user_key` with a sequence number at most `snapshot`, as
    /// (sequence number, kind, value); tombstones are returned too (kind
    /// [`ValueKind::Delete`], empty value) so that the caller stops at them. `None` if the
    /// table holds no such version. A `snapshot` above [`crate::storage::key::SEQNO_MAX`] reads
    /// as `SEQNO_MAX`.
    ///
    /// Allocates only the returned value (and a block on a cache miss).
    ///
    /// # Errors
    /// [`StorageError::Io`] if reading a block fails; [`StorageError::Corruption`] with the path
    /// and offset if the block is corrupt.
    pub fn get(
        &self,
        user_key: &[u8],
        snapshot: SeqNo,
    ) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        if !self.may_contain(user_key) {
            return Ok(None);
        }
        self.get_unfiltered(user_key, snapshot)
    }

    /// As [`Table::get`] without the Bloom filter check, for a caller that already made it with
    /// [`Table::may_contain_hash`].
    ///
    /// # Errors
    /// As [`Table::get`].
    pub fn get_unfiltered(
        &self,
        user_key: &[u8],
        snapshot: SeqNo,
    ) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        let target = Target::for_read(user_key, snapshot);
        let Some(i) = self.index.find(&target) else {
            return Ok(None);
        };
        let block = self.data_block(i)?;
        let cursor = self.seek_in_block(i, &block, &target)?;
        let (head, tail) = block.key_parts(&cursor);
        let (user_head, user_tail) = target::split_user_key(head, tail);
        if head.len() + tail.len() < TRAILER_LEN
            || target::compare_concat(user_head, user_tail, user_key).is_ne()
        {
            return Ok(None);
        }
        let trailer = target::trailer(head, tail);
        let Some(kind) = ValueKind::from_byte(trailer as u8) else {
            let offset = self.index.handle(i).offset;
            return Err(corruption(&self.path, offset, "entry has an unknown value kind"));
        };
        debug_assert!(trailer >> 8 <= snapshot.0, "seek lands on a visible version");
        Ok(Some((SeqNo(trailer >> 8), kind, block.value(&cursor).to_vec())))
    }

    /// An iterator over the table's entries, not yet positioned: call
    /// [`crate::storage::iter::InternalIterator::seek_to_first`] or `seek` first. It holds the
    /// table open.
    pub fn iter(self: &Arc<Self>) -> TableIter {
        TableIter::new(Arc::clone(self))
    }

    /// The index of the table's data blocks.
    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    /// Data block `i` (< `index().len()`), from the cache or read, checked and cached.
    ///
    /// # Errors
    /// [`StorageError::Io`] or [`StorageError::Corruption`] if reading the block fails.
    pub(crate) fn data_block(&self, i: usize) -> Result<Arc<Block>> {
        let handle = self.index.handle(i);
        if let Some(block) = self.cache.get(self.id, handle.offset) {
            return Ok(block);
        }
        let contents = read_block(&self.file, &self.path, handle, "data")?;
        let block = Block::decode(contents).map_err(|e| self.block_corruption(i, e))?;
        let block = Arc::new(block);
        self.cache.insert(self.id, handle.offset, Arc::clone(&block));
        Ok(block)
    }

    /// The first entry of data block `i` at or after `target`, which the index promises is in
    /// that block (its last key is at or after `target`).
    ///
    /// # Errors
    /// [`StorageError::Corruption`] if an entry is malformed or the block ends before its
    /// index key.
    pub(crate) fn seek_in_block(
        &self,
        i: usize,
        block: &Block,
        target: &Target<'_>,
    ) -> Result<super::block::Cursor> {
        block.seek(target).map_err(|e| self.block_corruption(i, e))?.ok_or_else(|| {
            let reason = "data block ends before the key its index entry names";
            corruption(&self.path, self.index.handle(i).offset, reason)
        })
    }

    /// The corruption error for a malformed entry in data block `i`.
    pub(crate) fn block_corruption(&self, i: usize, e: BlockError) -> StorageError {
        corruption(&self.path, self.index.handle(i).offset + e.offset as u64, e.reason)
    }
}

/// Reads the block at `handle` and checks its trailer; returns the contents without the trailer.
/// Requires `handle` to lie inside the file (the caller checked the layout), which bounds the
/// allocation by the file's size.
///
/// # Errors
/// [`StorageError::Io`] if the read fails; [`StorageError::Corruption`] at the block's offset if
/// its checksum does not match.
fn read_block(file: &File, path: &Path, handle: BlockHandle, what: &str) -> Result<Vec<u8>> {
    let size = handle.size as usize;
    let mut buf = vec![0u8; size + BLOCK_TRAILER_LEN];
    file.read_exact_at(&mut buf, handle.offset).io("read", path)?;
    let (contents, trailer) = buf.split_at(size);
    let stored = u32::from_le_bytes(trailer.try_into().expect("the trailer is 4 bytes"));
    let computed = block_checksum(contents);
    if stored != computed {
        let reason = format!(
            "{what} block checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        );
        return Err(corruption(path, handle.offset, reason));
    }
    buf.truncate(size);
    Ok(buf)
}
