//! The block cache: decoded data blocks shared by every open table, bounded in bytes.
//!
//! One cache serves the whole engine, so that its memory bound holds however many tables are
//! open. A block is keyed by (table id, block offset); table ids are never reused, so a key
//! always names the same immutable bytes, and no entry ever needs to be invalidated: the blocks
//! of a deleted table stop being asked for and age out.
//!
//! It is a `quick_cache` (CLOCK-Pro-like: a block read once by a scan does not push out blocks
//! read often) weighed in bytes: a block weighs its buffer plus a fixed overhead per entry. A
//! block heavier than the cache's hot share is not kept (the reader still gets it). Two threads
//! that miss the same block at once both read it; one copy is kept.

use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, OptionsBuilder, Weighter};

use crate::storage::sstable::block::Block;

/// Shards of the cache, each locked on its own; a power of two.
const SHARDS: usize = 16;
/// Bytes counted per cached block besides its buffer: the key, the `Arc` and the cache's own
/// bookkeeping, roughly.
const ENTRY_OVERHEAD_BYTES: u64 = 64;
/// Expected bytes per block, to size the cache's tables up front.
const TYPICAL_BLOCK_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BlockKey {
    table_id: u64,
    offset: u64,
}

/// Weighs a block by the bytes it holds.
#[derive(Debug, Clone, Copy)]
struct BlockWeighter;

impl Weighter<BlockKey, Arc<Block>> for BlockWeighter {
    fn weight(&self, _key: &BlockKey, block: &Arc<Block>) -> u64 {
        block.memory_bytes() as u64 + ENTRY_OVERHEAD_BYTES
    }
}

/// A cache of decoded table blocks holding at most a fixed number of bytes.
pub struct BlockCache {
    cache: Cache<BlockKey, Arc<Block>, BlockWeighter>,
    capacity_bytes: u64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity_bytes", &self.capacity_bytes)
            .field("used_bytes", &self.used_bytes())
            .field("blocks", &self.cache.len())
            .finish()
    }
}

impl BlockCache {
    /// A cache that holds at most `capacity_bytes` of blocks (rounded down to a multiple of 16,
    /// so that each of its 16 shards gets the same whole share). 0 caches nothing.
    pub fn new(capacity_bytes: usize) -> BlockCache {
        let capacity_bytes = (capacity_bytes - capacity_bytes % SHARDS) as u64;
        let options = OptionsBuilder::new()
            .shards(SHARDS)
            .estimated_items_capacity((capacity_bytes as usize / TYPICAL_BLOCK_BYTES).max(1))
            .weight_capacity(capacity_bytes)
            .build()
            .expect("both capacities are set");
        let cache = Cache::with_options(
            options,
            BlockWeighter,
            DefaultHashBuilder::default(),
            Default::default(),
        );
        BlockCache { cache, capacity_bytes }
    }

    /// The most bytes the cache holds.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// The bytes the cached blocks weigh now; at most [`BlockCache::capacity_bytes`].
    pub fn used_bytes(&self) -> u64 {
        self.cache.weight()
    }

    /// Number of cached blocks.
    pub fn block_count(&self) -> usize {
        self.cache.len()
    }

    /// The cached block at `offset` in table `table_id`, if any.
    pub(crate) fn get(&self, table_id: u64, offset: u64) -> Option<Arc<Block>> {
        self.cache.get(&BlockKey { table_id, offset })
    }

    /// Caches `block` as the block at `offset` in table `table_id`, evicting others to stay
    /// within the byte bound (a block too heavy to fit is not kept).
    pub(crate) fn insert(&self, table_id: u64, offset: u64, block: Arc<Block>) {
        self.cache.insert(BlockKey { table_id, offset }, block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sstable::block_builder::BlockBuilder;

    /// A block of `entries` entries of a 100-byte value each (about 110 bytes an entry).
    fn must_block(entries: usize) -> Arc<Block> {
        let mut builder = BlockBuilder::new(16);
        for i in 0..entries {
            builder.add(format!("key{i:06}-trailer").as_bytes(), &[7; 100]);
        }
        Arc::new(Block::decode(builder.finish().to_vec()).expect("a built block decodes"))
    }

    #[test]
    fn get_returns_what_insert_stored() {
        let cache = BlockCache::new(1 << 20);
        let block = must_block(3);
        assert!(cache.get(1, 0).is_none());
        cache.insert(1, 0, Arc::clone(&block));
        let found = cache.get(1, 0).expect("cached");
        assert!(Arc::ptr_eq(&found, &block));
        assert!(cache.get(2, 0).is_none(), "another table's block at the same offset");
        assert!(cache.get(1, 4096).is_none(), "another offset");
        assert_eq!(cache.used_bytes(), block.memory_bytes() as u64 + ENTRY_OVERHEAD_BYTES);
    }

    #[test]
    fn cache_stays_within_its_byte_bound() {
        // Phase 1: 64 KiB of capacity, 1000 blocks of about 4 KiB inserted.
        let cache = BlockCache::new(64 << 10);
        assert_eq!(cache.capacity_bytes(), 64 << 10);
        for i in 0..1000u64 {
            cache.insert(i % 7, i * 4096, must_block(37));
            assert!(cache.used_bytes() <= cache.capacity_bytes(), "after {i} inserts");
        }
        // Phase 2: it is not empty (blocks are kept) and it never overflowed.
        assert!(cache.block_count() >= 4, "{} blocks kept", cache.block_count());
        assert!(cache.used_bytes() <= 64 << 10);
        assert!(cache.used_bytes() >= 32 << 10, "blocks weigh their bytes: {cache:?}");
    }

    #[test]
    fn zero_capacity_caches_nothing_and_odd_capacities_round_down() {
        let cache = BlockCache::new(0);
        cache.insert(1, 0, must_block(1));
        assert!(cache.get(1, 0).is_none());
        assert_eq!(cache.used_bytes(), 0);
        assert_eq!(BlockCache::new(1000 + 15).capacity_bytes(), 1008);
    }
}
