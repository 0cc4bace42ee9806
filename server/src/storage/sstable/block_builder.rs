//! [`BlockBuilder`]: lays out the entries of one data or index block.

use super::varint;

/// Builds one block: entries with their keys prefix-compressed against the last anchor, then the
/// restart array and its length (the layout is in `sstable/mod.rs`).
///
/// An entry whose key shares nothing with the anchor is written whole and becomes the anchor;
/// the entry at every restart point is written whole, so a reader can start at any restart
/// point without the entries before it.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    since_restart: usize,
    anchor: Vec<u8>,
}

impl BlockBuilder {
    /// An empty builder that puts a restart point every `restart_interval` (>= 1) entries.
    pub(crate) fn new(restart_interval: usize) -> BlockBuilder {
        assert!(restart_interval >= 1, "a block needs a restart point every 1 or more entries");
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            restart_interval,
            since_restart: 0,
            anchor: Vec::new(),
        }
    }

    /// Appends an entry. Requires keys in increasing order (the writer checks it) and the block
    /// to stay below 4 GiB (the writer bounds entries and block sizes far below that).
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        let at_restart = self.restarts.is_empty() || self.since_restart == self.restart_interval;
        if at_restart {
            self.restarts.push(offset_u32(self.buf.len()));
            self.since_restart = 0;
        }
        let shared = if at_restart { 0 } else { common_prefix_len(&self.anchor, key) };
        if shared == 0 {
            self.anchor.clear();
            self.anchor.extend_from_slice(key);
        }
        varint::put(&mut self.buf, offset_u32(shared));
        varint::put(&mut self.buf, offset_u32(key.len() - shared));
        varint::put(&mut self.buf, offset_u32(value.len()));
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.since_restart += 1;
    }

    /// Whether no entry was added since the last reset.
    pub(crate) fn is_empty(&self) -> bool {
        self.restarts.is_empty()
    }

    /// The size of the block if it were finished now.
    pub(crate) fn size_estimate(&self) -> usize {
        self.buf.len() + 4 * (self.restarts.len() + 1)
    }

    /// Appends the restart array and returns the block's contents. Requires at least one entry;
    /// call [`BlockBuilder::reset`] before adding to the next block.
    pub(crate) fn finish(&mut self) -> &[u8] {
        assert!(!self.is_empty(), "a block holds at least one entry");
        for &restart in &self.restarts {
            self.buf.extend_from_slice(&restart.to_le_bytes());
        }
        let count = offset_u32(self.restarts.len());
        self.buf.extend_from_slice(&count.to_le_bytes());
        &self.buf
    }

    /// Empties the builder, keeping its buffers.
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.restarts.clear();
        self.since_restart = 0;
        self.anchor.clear();
    }
}

/// A length or offset inside a block, which the writer keeps below 4 GiB.
fn offset_u32(n: usize) -> u32 {
    u32::try_from(n).expect("the writer keeps blocks and entries far below 4 GiB")
}

fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
