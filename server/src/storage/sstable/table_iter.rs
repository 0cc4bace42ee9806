//! [`TableIter`]: a cursor over a table's entries in key order.
//!
//! The iterator holds the table and its current block (an `Arc`, so the block stays alive if the
//! cache evicts it). Values are read in place; each key is copied once, into the iterator's key
//! buffer, because a stored key is in two pieces (the anchor's prefix and its own suffix).

use std::sync::Arc;

use super::block::{Block, Cursor};
use super::table::Table;
use super::target::Target;
use crate::storage::error::Result;
use crate::storage::iter::InternalIterator;

/// A cursor over one table's entries, made by [`Table::iter`]. Unpositioned when made; an error
/// from a step leaves it unpositioned ([`InternalIterator::valid`] is `false`).
#[derive(Debug)]
pub struct TableIter {
    table: Arc<Table>,
    /// The current entry's block, its position in the index, and the entry; `None` when
    /// unpositioned or past the end.
    current: Option<(Arc<Block>, usize, Cursor)>,
    /// The current entry's key, whole.
    key: Vec<u8>,
}

impl TableIter {
    pub(crate) fn new(table: Arc<Table>) -> TableIter {
        TableIter { table, current: None, key: Vec::new() }
    }

    /// Positions at the first entry of data block `i`, or past the end if there is none.
    fn seek_to_block(&mut self, i: usize) -> Result<()> {
        self.current = None;
        if i >= self.table.index().len() {
            return Ok(());
        }
        let block = self.table.data_block(i)?;
        let cursor = block.first().map_err(|e| self.table.block_corruption(i, e))?;
        self.set(block, i, cursor);
        Ok(())
    }

    fn set(&mut self, block: Arc<Block>, i: usize, cursor: Cursor) {
        let (head, tail) = block.key_parts(&cursor);
        self.key.clear();
        self.key.extend_from_slice(head);
        self.key.extend_from_slice(tail);
        self.current = Some((block, i, cursor));
    }
}

impl InternalIterator for TableIter {
    fn seek_to_first(&mut self) -> Result<()> {
        self.seek_to_block(0)
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.current = None;
        let target = Target::from_encoded(target);
        let Some(i) = self.table.index().find(&target) else {
            return Ok(());
        };
        let block = self.table.data_block(i)?;
        let cursor = self.table.seek_in_block(i, &block, &target)?;
        self.set(block, i, cursor);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let Some((block, i, cursor)) = self.current.take() else {
            debug_assert!(false, "next requires a valid iterator");
            return Ok(());
        };
        match block.next(&cursor).map_err(|e| self.table.block_corruption(i, e))? {
            Some(cursor) => {
                self.set(block, i, cursor);
                Ok(())
            }
            None => self.seek_to_block(i + 1),
        }
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        debug_assert!(self.valid(), "key requires a valid iterator");
        &self.key
    }

    fn value(&self) -> &[u8] {
        debug_assert!(self.valid(), "value requires a valid iterator");
        match &self.current {
            Some((block, _, cursor)) => block.value(cursor),
            None => &[],
        }
    }
}
