//! [`TableOptions`]: how a table is laid out when it is written.

/// How [`super::TableWriter`] lays out a table. Readers need none of it: everything a reader
/// needs is in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOptions {
    /// A data block is closed once its contents reach this size; a block holds at least one
    /// entry, so a large entry makes a larger block. Smaller blocks make point reads read less,
    /// larger ones make the index smaller. Values above 1 GiB are treated as 1 GiB.
    pub block_size_bytes: usize,
    /// Bloom filter bits per distinct user key; 0 writes no filter. 10 bits give about 1% false
    /// positives.
    pub bloom_bits_per_key: u32,
    /// A restart point (an entry stored with its whole key) every this many entries; at least 1.
    /// Larger intervals compress keys more and make a search scan more entries.
    pub restart_interval: usize,
}

impl Default for TableOptions {
    fn default() -> TableOptions {
        TableOptions { block_size_bytes: 4096, bloom_bits_per_key: 10, restart_interval: 16 }
    }
}
