//! The engine's settings. Every durability and size choice is explicit here, never a library's
//! default.

use crate::storage::sstable::TableOptions;

/// Settings of an [`crate::storage::Engine`].
#[derive(Debug, Clone)]
pub struct Options {
    /// A memtable is frozen and flushed when it holds this many bytes.
    pub memtable_bytes: usize,
    /// Frozen memtables waiting for their flush before writers wait.
    pub max_frozen_memtables: usize,
    /// Memory bound of the block cache.
    pub block_cache_bytes: usize,
    /// Table layout: block size, Bloom filter bits per key, restart interval.
    pub table: TableOptions,
    /// Level-0 tables that start a compaction into level 1. More means less rewriting of level 1
    /// (measured at 10^7 keys: 4 tables 6.5x write amplification, 6 tables 5.0x) and more
    /// level-0 filters for a point read to check; 6 balanced the two in the benchmark against
    /// fjall.
    pub l0_compaction_trigger: usize,
    /// Level-0 tables at which writers wait for compaction.
    pub l0_stop_writes: usize,
    /// Target size of level 1; each deeper level is `level_multiplier` times larger.
    pub level_base_bytes: u64,
    /// Growth factor between levels.
    pub level_multiplier: u64,
    /// Number of levels, level 0 included.
    pub levels: usize,
    /// Compaction output is split into tables of about this size.
    pub target_table_bytes: u64,
    /// Bytes of batches one group commit writes at most (one write and one fsync).
    pub group_commit_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            memtable_bytes: 64 * 1024 * 1024,
            max_frozen_memtables: 2,
            block_cache_bytes: 256 * 1024 * 1024,
            table: TableOptions::default(),
            l0_compaction_trigger: 6,
            l0_stop_writes: 20,
            level_base_bytes: 256 * 1024 * 1024,
            level_multiplier: 10,
            levels: 7,
            target_table_bytes: 64 * 1024 * 1024,
            group_commit_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Options {
    /// Small sizes that make tests flush and compact often.
    pub fn small_for_tests() -> Options {
        Options {
            memtable_bytes: 16 * 1024,
            block_cache_bytes: 1024 * 1024,
            level_base_bytes: 64 * 1024,
            target_table_bytes: 16 * 1024,
            table: TableOptions { block_size_bytes: 512, ..TableOptions::default() },
            ..Options::default()
        }
    }

    /// The target size of `level` (level 1 and deeper).
    pub(crate) fn level_target_bytes(&self, level: usize) -> u64 {
        let exp = u32::try_from(level.saturating_sub(1)).unwrap_or(u32::MAX);
        self.level_base_bytes.saturating_mul(self.level_multiplier.saturating_pow(exp))
    }
}
