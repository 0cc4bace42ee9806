//! Helpers for the table tests: a `BTreeMap` model of a table and seeded property-test
//! configuration.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::test_runner::{Config as ProptestConfig, RngSeed};

use super::{Table, TableInfo, TableOptions, TableWriter};
use crate::storage::StorageError;
use crate::storage::cache::BlockCache;
use crate::storage::iter::InternalIterator;
use crate::storage::key::{self, SeqNo, ValueKind};

/// The seed of every property test here; a failure prints its minimal input, and the same seed
/// reproduces it.
pub(crate) const PROPTEST_SEED: u64 = 0x5eed_b10c_db00_0001;

/// Property-test configuration: `cases` cases from the fixed seed, no regression files.
pub(crate) fn seeded_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(PROPTEST_SEED),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A key of the model, ordered as [`key::compare`] orders encoded keys: user key ascending, then
/// trailer descending.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ModelKey {
    pub(crate) user_key: Vec<u8>,
    pub(crate) trailer: Reverse<u64>,
}

impl ModelKey {
    pub(crate) fn new(user_key: &[u8], seqno: u64, kind: ValueKind) -> ModelKey {
        ModelKey { user_key: user_key.to_vec(), trailer: Reverse((seqno << 8) | kind as u64) }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = self.user_key.clone();
        out.extend_from_slice(&self.trailer.0.to_be_bytes());
        out
    }
}

/// Entries `(encoded key, value)` in order, as a scan returns them.
pub(crate) type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// What a table should hold.
pub(crate) type Model = BTreeMap<ModelKey, Vec<u8>>;

/// Adds a put (`Some(value)`) or a tombstone (`None`) to `model`.
pub(crate) fn model_add(model: &mut Model, user_key: &[u8], seqno: u64, value: Option<&[u8]>) {
    let kind = if value.is_some() { ValueKind::Put } else { ValueKind::Delete };
    model.insert(ModelKey::new(user_key, seqno, kind), value.unwrap_or_default().to_vec());
}

/// What `Table::get(user_key, snapshot)` should return.
pub(crate) fn model_get(
    model: &Model,
    user_key: &[u8],
    snapshot: u64,
) -> Option<(SeqNo, ValueKind, Vec<u8>)> {
    let from = ModelKey::new(user_key, snapshot.min(key::SEQNO_MAX.0), ValueKind::Put);
    let (found, value) = model.range(from..).next()?;
    if found.user_key != user_key {
        return None;
    }
    let kind = ValueKind::from_byte(found.trailer.0 as u8).expect("model kinds are valid");
    Some((SeqNo(found.trailer.0 >> 8), kind, value.clone()))
}

/// The model's entries from the first at or after `target` (an encoded key).
pub(crate) fn model_from(model: &Model, target: &[u8]) -> Entries {
    model
        .iter()
        .map(|(k, v)| (k.encode(), v.clone()))
        .filter(|(k, _)| key::compare(k, target).is_ge())
        .collect()
}

/// Writes the model as a table at `dir/name`.
pub(crate) fn must_write(
    dir: &Path,
    name: &str,
    options: &TableOptions,
    model: &Model,
) -> (PathBuf, TableInfo) {
    let path = dir.join(name);
    let mut writer = TableWriter::create(&path, options).expect("create");
    for (k, v) in model {
        writer.add(&k.encode(), v).expect("add");
    }
    let info = writer.finish().expect("finish");
    (path, info)
}

pub(crate) fn must_open(path: &Path, id: u64, cache: &Arc<BlockCache>) -> Arc<Table> {
    Arc::new(Table::open(path, id, Arc::clone(cache)).expect("open"))
}

/// Every entry of the iterator from its current position to the end.
pub(crate) fn scan_rest(iter: &mut impl InternalIterator) -> Result<Entries, StorageError> {
    let mut out = Vec::new();
    while iter.valid() {
        out.push((iter.key().to_vec(), iter.value().to_vec()));
        iter.next()?;
    }
    Ok(out)
}

/// Every entry of the table, in order.
pub(crate) fn scan(table: &Arc<Table>) -> Result<Entries, StorageError> {
    let mut iter = table.iter();
    iter.seek_to_first()?;
    scan_rest(&mut iter)
}

/// The model's entries, encoded.
pub(crate) fn model_entries(model: &Model) -> Entries {
    model.iter().map(|(k, v)| (k.encode(), v.clone())).collect()
}

/// Asserts `error` is a corruption of the file at `path`, and returns its offset.
pub(crate) fn must_be_corruption(error: &StorageError, path: &Path) -> u64 {
    match error {
        StorageError::Corruption { path: p, offset, .. } => {
            assert_eq!(p, path, "corruption names the file: {error}");
            *offset
        }
        other => panic!("expected corruption of {}, got {other}", path.display()),
    }
}
