//! From the node's and the verifier's types to the protobuf messages, and the size limits of a
//! page of bundles.
//!
//! Hashes become 32-byte `bytes`, checkpoints their signed note text
//! ([`SignedCheckpoint::to_text`]), leaves their canonical encoding ([`Leaf::encode`]) and
//! blocks both their fields and their canonical encoding, so that a client verifies exactly the
//! bytes the verifier crate defines.

use blockdb_proto::v1 as pb;
use blockdb_verifier::{
    Block, ConsistencyProof, Hash, Leaf, ProofBundle, ShardId, SignedCheckpoint, TxnId,
};

use crate::error::{ErrorCode, RequestError};
use crate::ledger::EntryProof;
use crate::node::WriteResult;
use crate::txn::{TxnOp, TxnOutput};

/// Most bundles one History or Scan page holds.
pub const PAGE_BUNDLES_MAX: usize = 1000;
/// Bundles of a page when the request leaves the limit at 0.
pub const PAGE_BUNDLES_DEFAULT: usize = 100;
/// A page stops growing before its bundles pass this many encoded bytes: below the 4 MiB that
/// gRPC clients accept by default, with room for the rest of the response.
pub const PAGE_BYTES_MAX: usize = 3 << 20;
/// Bundles read from a view in one go, at most, while filling a page.
const CHUNK_BUNDLES_MAX: usize = 64;

/// Hashes as 32-byte `bytes`.
pub fn hashes(hashes: &[Hash]) -> Vec<Vec<u8>> {
    hashes.iter().map(|h| h.0.to_vec()).collect()
}

/// A consistency proof.
pub fn consistency_proof(p: ConsistencyProof) -> pb::ConsistencyProof {
    pb::ConsistencyProof {
        from_size: p.from_size.0,
        to_size: p.to_size.0,
        hashes: hashes(&p.hashes),
    }
}

/// The canonical bytes of a leaf the node stored or built.
///
/// # Errors
/// `internal`: a stored leaf that does not encode is corrupt state, not bad input.
pub fn leaf_bytes(leaf: &Leaf) -> Result<Vec<u8>, RequestError> {
    leaf.encode().map_err(|e| {
        RequestError::new(ErrorCode::Internal, format!("a stored leaf does not encode: {e}"))
    })
}

/// A proof bundle.
///
/// # Errors
/// As [`leaf_bytes`].
pub fn bundle(b: ProofBundle) -> Result<pb::ProofBundle, RequestError> {
    Ok(pb::ProofBundle {
        leaf: leaf_bytes(&b.leaf)?,
        shard: b.leaf.shard.0,
        log_index: b.leaf.log_index.0,
        record: Some(pb::Record {
            key: b.record.key,
            version: b.record.version,
            value: b.record.value,
        }),
        inclusion_proof: hashes(&b.inclusion_proof),
        checkpoint: b.checkpoint.to_text(),
        consistency_proof: b.consistency_proof.map(consistency_proof),
    })
}

/// A leaf with its proofs.
pub fn entry(shard: ShardId, e: EntryProof) -> pb::EntryResponse {
    pb::EntryResponse {
        shard: shard.0,
        log_index: e.log_index.0,
        leaf: e.leaf,
        inclusion_proof: hashes(&e.inclusion_proof),
        checkpoint: e.checkpoint.to_text(),
        consistency_proof: e.consistency_proof.map(consistency_proof),
    }
}

/// A signed checkpoint, parsed and as text.
pub fn checkpoint(shard: ShardId, signed: &SignedCheckpoint) -> pb::CheckpointResponse {
    let c = signed.checkpoint();
    pb::CheckpointResponse {
        shard: shard.0,
        origin: c.origin.clone(),
        tree_size: c.size.0,
        root: c.root.0.to_vec(),
        checkpoint: signed.to_text(),
    }
}

/// A block, with its hash and canonical encoding.
pub fn block(b: &Block) -> pb::BlockResponse {
    pb::BlockResponse {
        shard: b.shard.0,
        height: b.height,
        prev_hash: b.prev_hash.0.to_vec(),
        record_count: b.record_count,
        records_root: b.records_root.0.to_vec(),
        tree_size: b.tree_size.0,
        tree_root: b.tree_root.0.to_vec(),
        commit_time_ms: b.commit_time_ms,
        hash: b.hash().0.to_vec(),
        encoded: b.encode(),
    }
}

/// A committed write of `key`.
pub fn write(key: Vec<u8>, w: WriteResult) -> pb::WriteResponse {
    pb::WriteResponse {
        shard: w.shard.0,
        key,
        version: w.version,
        log_index: w.log_index.0,
        tree_size: w.tree_size,
        checkpoint: w.checkpoint,
    }
}

/// Operation `i` of a transaction.
///
/// # Errors
/// `invalid_argument` when it has no `op`.
pub fn txn_op(i: usize, op: pb::TxnOp) -> Result<TxnOp, RequestError> {
    use pb::txn_op::Op;
    Ok(match op.op {
        Some(Op::Read(r)) => TxnOp::Read { key: r.key },
        Some(Op::Insert(w)) => TxnOp::Insert { key: w.key, value: w.value },
        Some(Op::Append(w)) => {
            TxnOp::Append { key: w.key, value: w.value, expected_version: w.expected_version }
        }
        Some(Op::Check(c)) => TxnOp::Check { key: c.key, version: c.version },
        None => {
            return Err(RequestError::invalid(format!(
                "operation {i} has no op (read, insert, append or check)"
            )));
        }
    })
}

/// The operation of a TxnWrite.
///
/// # Errors
/// `invalid_argument` when it has no `op`.
pub fn txn_write_op(op: Option<pb::txn_write_request::Op>) -> Result<TxnOp, RequestError> {
    use pb::txn_write_request::Op;
    Ok(match op {
        Some(Op::Insert(w)) => TxnOp::Insert { key: w.key, value: w.value },
        Some(Op::Append(w)) => {
            TxnOp::Append { key: w.key, value: w.value, expected_version: w.expected_version }
        }
        Some(Op::Check(c)) => TxnOp::Check { key: c.key, version: c.version },
        None => {
            return Err(RequestError::invalid("the write has no op (insert, append or check)"));
        }
    })
}

/// An interactive transaction's id: exactly 16 bytes.
///
/// # Errors
/// `invalid_argument` for any other length.
pub fn txn_id(raw: &[u8]) -> Result<TxnId, RequestError> {
    <[u8; 16]>::try_from(raw).map(TxnId).map_err(|_| {
        RequestError::invalid(format!(
            "a transaction id is 16 bytes, as TxnBegin returns it; this one is {}",
            raw.len()
        ))
    })
}

/// A committed transaction, its receipt's bundles as in every other response.
///
/// # Errors
/// As [`leaf_bytes`].
pub fn txn_output(out: TxnOutput) -> Result<pb::TransactResponse, RequestError> {
    let receipt = match out.receipt {
        None => None,
        Some(r) => Some(pb::TxnReceipt {
            txn_id: r.txn_id.0.to_vec(),
            coordinator: r.coordinator.0,
            decision: Some(bundle(r.decision)?),
            writes: r.writes.into_iter().map(bundle).collect::<Result<_, _>>()?,
        }),
    };
    Ok(pb::TransactResponse {
        txn_id: out.txn_id.0.to_vec(),
        reads: out
            .reads
            .into_iter()
            .map(|r| pb::TxnReadResult { key: r.key, version: r.version, value: r.value })
            .collect(),
        writes: out
            .writes
            .into_iter()
            .map(|w| pb::TxnWriteResult {
                key: w.key,
                shard: w.shard.0,
                version: w.version,
                log_index: w.log_index,
            })
            .collect(),
        receipt,
    })
}

/// An upper bound of the encoded size of a bundle: every field's bytes plus 11 bytes of tag and
/// length each, and 64 for the fixed-size fields. Computed by hand because the server does not
/// link prost itself; an upper bound keeps a page below [`PAGE_BYTES_MAX`] all the same.
fn encoded_len_max(b: &pb::ProofBundle) -> usize {
    const FIELD: usize = 11;
    let record = b
        .record
        .as_ref()
        .map_or(0, |r| r.key.len() + r.value.as_ref().map_or(0, Vec::len) + 3 * FIELD);
    let consistency = b.consistency_proof.as_ref().map_or(0, |p| p.hashes.len() * (32 + FIELD));
    64 + record
        + b.leaf.len()
        + FIELD
        + b.inclusion_proof.len() * (32 + FIELD)
        + b.checkpoint.len()
        + FIELD
        + consistency
}

/// A page of bundles being filled, within its bundle and byte limits.
#[derive(Debug)]
pub struct Page {
    bundles: Vec<pb::ProofBundle>,
    bytes: usize,
    limit: usize,
}

impl Page {
    /// An empty page for a request's `limit` (0: the default; capped at [`PAGE_BUNDLES_MAX`]).
    pub fn new(limit: u32) -> Page {
        let limit = match usize::try_from(limit) {
            Ok(0) => PAGE_BUNDLES_DEFAULT,
            Ok(n) => n.min(PAGE_BUNDLES_MAX),
            Err(_) => PAGE_BUNDLES_MAX,
        };
        Page { bundles: Vec::new(), bytes: 0, limit }
    }

    /// Whether the page holds its limit of bundles.
    pub fn is_full(&self) -> bool {
        self.bundles.len() >= self.limit
    }

    /// How many bundles to read next: at least 1, no more than the page has room for, and no
    /// more than the byte budget left can take at `bundle_bytes_max` each, so that a page of
    /// large values never reads much more than it sends.
    pub fn chunk(&self, bundle_bytes_max: usize) -> usize {
        let bytes_left = PAGE_BYTES_MAX.saturating_sub(self.bytes);
        let room = self.limit.saturating_sub(self.bundles.len());
        (bytes_left / bundle_bytes_max.max(1)).clamp(1, CHUNK_BUNDLES_MAX).min(room.max(1))
    }

    /// Adds `b`, unless it would take the page past [`PAGE_BYTES_MAX`]; then gives it back. The
    /// first bundle always fits, so that every page makes progress.
    ///
    /// # Errors
    /// The bundle, when it does not fit.
    pub fn push(&mut self, b: pb::ProofBundle) -> Result<(), Box<pb::ProofBundle>> {
        let len = encoded_len_max(&b);
        if !self.bundles.is_empty() && self.bytes + len > PAGE_BYTES_MAX {
            return Err(Box::new(b));
        }
        self.bytes += len;
        self.bundles.push(b);
        Ok(())
    }

    /// The bundles.
    pub fn into_bundles(self) -> Vec<pb::ProofBundle> {
        self.bundles
    }
}

/// Fills a page from `cursor` on: `fetch(cursor, n)` reads at most `n` bundles from the cursor
/// and returns them with the cursor after them (`None`: no more); `cursor_of` names the cursor at
/// a bundle. Returns the page and where the next page starts (`None`: the end was reached).
///
/// Ends after at most [`PAGE_BUNDLES_MAX`] + 1 fetches: each one adds a bundle or ends the page.
///
/// # Errors
/// The first error of `fetch` or of the conversion.
pub fn fill_page<C>(
    limit: u32,
    bundle_bytes_max: usize,
    mut cursor: Option<C>,
    mut fetch: impl FnMut(&C, usize) -> Result<(Vec<ProofBundle>, Option<C>), RequestError>,
    cursor_of: impl Fn(&ProofBundle) -> C,
) -> Result<(Vec<pb::ProofBundle>, Option<C>), RequestError> {
    let mut page = Page::new(limit);
    while let Some(at) = cursor.take() {
        if page.is_full() {
            return Ok((page.into_bundles(), Some(at)));
        }
        let (bundles, next) = fetch(&at, page.chunk(bundle_bytes_max))?;
        if bundles.is_empty() {
            // The views return fewer bundles than asked only at the end (and `n >= 1`); ending
            // here also keeps the loop from spinning on a cursor that does not move.
            return Ok((page.into_bundles(), None));
        }
        for b in bundles {
            let at = cursor_of(&b);
            if page.push(bundle(b)?).is_err() {
                return Ok((page.into_bundles(), Some(at)));
            }
        }
        cursor = next;
    }
    Ok((page.into_bundles(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(value_len: usize) -> pb::ProofBundle {
        pb::ProofBundle {
            record: Some(pb::Record {
                key: b"k".to_vec(),
                version: 1,
                value: Some(vec![0; value_len]),
            }),
            checkpoint: "c\n".into(),
            ..pb::ProofBundle::default()
        }
    }

    #[test]
    fn page_limit_defaults_and_caps() {
        assert_eq!(Page::new(0).limit, PAGE_BUNDLES_DEFAULT);
        assert_eq!(Page::new(5).limit, 5);
        assert_eq!(Page::new(u32::MAX).limit, PAGE_BUNDLES_MAX);
    }

    #[test]
    fn page_stops_before_the_byte_budget_but_takes_one_bundle_whatever_its_size() {
        let mut page = Page::new(1000);
        assert!(page.push(fake(PAGE_BYTES_MAX * 2)).is_ok(), "the first bundle always fits");
        assert!(page.push(fake(1)).is_err());

        let mut page = Page::new(1000);
        let mut taken = 0;
        while page.push(fake(1 << 20)).is_ok() {
            taken += 1;
        }
        assert_eq!(taken, 2, "three 1 MiB values and their overhead pass 3 MiB");
        assert!(page.bytes <= PAGE_BYTES_MAX);
    }

    #[test]
    fn chunk_is_bounded_by_room_and_bytes() {
        let page = Page::new(10);
        assert_eq!(page.chunk(1), 10);
        assert_eq!(page.chunk(1 << 20), 3);
        assert_eq!(page.chunk(usize::MAX), 1);
        assert_eq!(Page::new(1000).chunk(1), CHUNK_BUNDLES_MAX);
    }
}
