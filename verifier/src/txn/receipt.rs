//! The receipt of a committed transaction, and [`verify_receipt`], which checks offline that the
//! transaction committed and that the receipt holds every record it wrote, each proven in its
//! shard's log.
//!
//! A receipt is proof bundles ([`crate::bundle`]): one for the decision record at the
//! transaction's decision key in the coordinator's shard, and one for each record the transaction
//! wrote. The decision record lists how many records the transaction wrote in each participant
//! shard, so a receipt that leaves a write out, or adds one, does not verify.
//!
//! # JSON form, version 1
//!
//! ```json
//! {
//!   "format": "blockdb-txn-receipt/v1",
//!   "txn_id": "<32 hex digits>",
//!   "coordinator": 0,
//!   "decision": { "format": "blockdb-proof-bundle/v1", "...": "the decision record's bundle" },
//!   "writes": [
//!     { "format": "blockdb-proof-bundle/v1", "...": "a written record's bundle" }
//!   ]
//! }
//! ```
//!
//! - `txn_id` is written in lowercase and read in either case.
//! - `coordinator` is the coordinator's shard, a decimal u32.
//! - `decision` and each item of `writes` are the JSON form of a proof bundle, as an object (not a
//!   string), with its own `format` field.
//! - `writes` holds at most [`RECEIPT_WRITES_MAX`] bundles, in no required order; the server sends
//!   them by shard, then by log index.
//! - The whole document is at most [`RECEIPT_LEN_MAX`] bytes.
//!
//! Unknown fields are refused at every level. A later version gets a new `format` string.
//!
//! # What is checked
//!
//! See [`verify_receipt`]. A receipt does not say which tree sizes the client already trusts, so
//! its bundles are verified without a trusted checkpoint and their consistency proofs are not
//! checked; [`VerifiedReceipt::checkpoints`] gives the largest verified checkpoint of each shard,
//! for the client to check against the checkpoints it keeps ([`crate::verify_extends`]).
//!
//! This file is over the ~500-line soft limit because [`ReceiptError`] has a documented variant
//! per check; kept beside the checks that return them, each error reads next to its cause.

use std::collections::btree_map::{self, BTreeMap};
use std::collections::hash_map::{self, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::decision::{DecisionError, DecisionRecord, TxnDecision};
use super::{decision_key, is_reserved_key};
use crate::bundle::{BundleError, BundleJson, ProofBundle, VerifiedRecord, verify_bundle};
use crate::hash::Hash;
use crate::ids::{LogIndex, ShardId, TreeSize, TxnId};
use crate::policy::{TrustPolicy, VerifiedCheckpoint};

/// The `format` value of the JSON form.
pub const RECEIPT_FORMAT: &str = "blockdb-txn-receipt/v1";
/// Most write bundles one receipt may hold.
pub const RECEIPT_WRITES_MAX: usize = 65_536;
/// Longest JSON document [`Receipt::from_json`] accepts.
pub const RECEIPT_LEN_MAX: usize = 256 * 1024 * 1024;

/// What a committed transaction returns: the proof of its decision and of every record it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction.
    pub txn_id: TxnId,
    /// The shard whose log holds the decision record.
    pub coordinator: ShardId,
    /// The bundle of the decision record, at [`decision_key`]`(coordinator, txn_id)`.
    pub decision: ProofBundle,
    /// The bundles of the records the transaction wrote.
    pub writes: Vec<ProofBundle>,
}

/// Which bundle of a receipt an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptPart {
    /// The decision record's bundle.
    Decision,
    /// The write bundle at this position of `writes`, from 0.
    Write(usize),
}

impl fmt::Display for ReceiptPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiptPart::Decision => f.write_str("decision bundle"),
            ReceiptPart::Write(i) => write!(f, "write bundle {i}"),
        }
    }
}

/// A record the transaction wrote, proven in its shard's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWrite {
    /// The shard whose log holds it.
    pub shard: ShardId,
    /// Its key.
    pub key: Vec<u8>,
    /// Its version in the key's history.
    pub version: u64,
    /// Its position in the shard's log.
    pub log_index: LogIndex,
}

/// A receipt whose every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    /// The transaction, which committed.
    pub txn_id: TxnId,
    /// The coordinator's shard.
    pub coordinator: ShardId,
    /// The decision record (its decision is [`TxnDecision::Commit`]).
    pub decision: DecisionRecord,
    /// The records written, in the receipt's order.
    pub writes: Vec<VerifiedWrite>,
    /// For each shard of the receipt, the largest verified checkpoint its bundles are proven
    /// against (the first one of that size).
    pub checkpoints: BTreeMap<ShardId, VerifiedCheckpoint>,
}

/// Why a receipt is unusable or does not verify. [`ReceiptError::is_malformed`] separates input
/// that cannot be read from a well-formed receipt that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The input is longer than [`RECEIPT_LEN_MAX`].
    #[error("receipt is {len} bytes, more than the limit of {RECEIPT_LEN_MAX}")]
    TooLarge {
        /// The input's length.
        len: usize,
    },
    /// The JSON form is malformed.
    #[error("malformed receipt JSON: {0}")]
    Json(String),
    /// The `format` field names a format this verifier does not know.
    #[error("unknown receipt format {0:?} (this verifier knows {RECEIPT_FORMAT:?})")]
    UnknownFormat(String),
    /// More than [`RECEIPT_WRITES_MAX`] write bundles.
    #[error("receipt holds {count} write bundles, more than the limit of {RECEIPT_WRITES_MAX}")]
    TooManyWrites {
        /// The number of write bundles.
        count: usize,
    },
    /// A bundle is malformed or does not verify ([`verify_bundle`]).
    #[error("{part}: {error}")]
    Bundle {
        /// The bundle.
        part: ReceiptPart,
        /// What is wrong with it.
        error: BundleError,
    },

    /// The receipt's transaction id is all zero, the id of writes outside any transaction.
    #[error("receipt has the all-zero transaction id, which no transaction has")]
    NoTxnId,
    /// The decision bundle's record is not at the transaction's decision key.
    #[error(
        "decision bundle's key is \"{}\", not the decision key of transaction {txn_id} at \
         coordinator shard {coordinator}",
        .got.escape_ascii()
    )]
    DecisionKey {
        /// The receipt's transaction.
        txn_id: TxnId,
        /// The receipt's coordinator.
        coordinator: ShardId,
        /// The decision bundle's key.
        got: Vec<u8>,
    },
    /// The decision record is not in the coordinator's log.
    #[error("decision record is in shard {got}, not in the coordinator's shard {coordinator}")]
    DecisionShard {
        /// The receipt's coordinator.
        coordinator: ShardId,
        /// The shard of the decision bundle's leaf.
        got: ShardId,
    },
    /// The decision record's leaf was written by another transaction.
    #[error("decision record's leaf has transaction id {got}, not the receipt's {expected}")]
    DecisionTxnId {
        /// The receipt's transaction.
        expected: TxnId,
        /// The leaf's transaction id.
        got: TxnId,
    },
    /// The decision record is not the first version of its key; a decision is written once.
    #[error(
        "decision record is version {got} of its key; a decision is written once, as version 1"
    )]
    DecisionVersion {
        /// The record's version.
        got: u64,
    },
    /// The decision record's value was redacted, so the decision cannot be read.
    #[error("decision record's value is redacted; the decision cannot be read")]
    DecisionRedacted,
    /// The decision record's value is not a decision record.
    #[error("decision record's value: {0}")]
    DecisionRecord(DecisionError),
    /// The transaction did not commit.
    #[error("the decision of the transaction is {decision}, not commit")]
    NotCommitted {
        /// The recorded decision.
        decision: TxnDecision,
    },
    /// A write bundle's record was written by another transaction.
    #[error("write bundle {position}: leaf has transaction id {got}, not the receipt's {expected}")]
    WriteTxnId {
        /// The write bundle's position, from 0.
        position: usize,
        /// The receipt's transaction.
        expected: TxnId,
        /// The leaf's transaction id.
        got: TxnId,
    },
    /// A write bundle's key is in the reserved space, which no transaction writes.
    #[error("write bundle {position}: key \"{}\" is a reserved system key", .key.escape_ascii())]
    ReservedKey {
        /// The write bundle's position, from 0.
        position: usize,
        /// The key.
        key: Vec<u8>,
    },
    /// A write bundle is in a shard the decision record does not list.
    #[error("write bundle {position}: shard {shard} is not a participant of the transaction")]
    NotParticipant {
        /// The write bundle's position, from 0.
        position: usize,
        /// Its shard.
        shard: ShardId,
    },
    /// Two write bundles prove the same leaf.
    #[error(
        "write bundles {first} and {second} are both the leaf at log index {log_index} of \
         shard {shard}"
    )]
    DuplicateWrite {
        /// The earlier bundle's position, from 0.
        first: usize,
        /// The later bundle's position.
        second: usize,
        /// The shard.
        shard: ShardId,
        /// The log index.
        log_index: LogIndex,
    },
    /// Two write bundles write the same key; a transaction writes a key once.
    #[error("write bundles {first} and {second} both write key \"{}\"", .key.escape_ascii())]
    DuplicateKey {
        /// The earlier bundle's position, from 0.
        first: usize,
        /// The later bundle's position.
        second: usize,
        /// The key.
        key: Vec<u8>,
    },
    /// The receipt does not hold as many writes in a participant shard as the decision records.
    #[error(
        "the decision record says the transaction wrote {expected} records in shard {shard}, \
         but the receipt holds {got}"
    )]
    WriteCount {
        /// The participant shard.
        shard: ShardId,
        /// The decision record's count.
        expected: u32,
        /// The number of write bundles in that shard.
        got: usize,
    },
    /// A bundle's checkpoint is of another cluster's log than the decision bundle's.
    #[error(
        "{part}: checkpoint is of cluster {got:?}, but the decision bundle's is of cluster \
         {expected:?}"
    )]
    ClusterMismatch {
        /// The bundle.
        part: ReceiptPart,
        /// The cluster origin of the decision bundle's checkpoint.
        expected: String,
        /// The cluster origin of this bundle's checkpoint.
        got: String,
    },
    /// Two trusted checkpoints of one shard have the same size and different roots.
    #[error(
        "fork: the checkpoints of {first} and {second} give shard {shard} two roots at size {size}"
    )]
    Fork {
        /// The shard.
        shard: ShardId,
        /// The size of both checkpoints.
        size: TreeSize,
        /// The bundle whose checkpoint came first.
        first: ReceiptPart,
        /// The bundle whose checkpoint disagrees with it.
        second: ReceiptPart,
    },
}

impl ReceiptError {
    /// Whether the receipt could not be read at all, as opposed to read and found invalid.
    pub fn is_malformed(&self) -> bool {
        match self {
            ReceiptError::TooLarge { .. }
            | ReceiptError::Json(_)
            | ReceiptError::UnknownFormat(_)
            | ReceiptError::TooManyWrites { .. } => true,
            ReceiptError::Bundle { error, .. } => error.is_malformed(),
            _ => false,
        }
    }

    /// Whether the error is evidence that a shard's log forked (two incompatible signed
    /// checkpoints).
    pub fn is_fork(&self) -> bool {
        match self {
            ReceiptError::Fork { .. } => true,
            ReceiptError::Bundle { error, .. } => error.is_fork(),
            _ => false,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptJson {
    format: String,
    txn_id: TxnId,
    coordinator: ShardId,
    decision: BundleJson,
    writes: Vec<BundleJson>,
}

impl Receipt {
    /// Parses the JSON form (see the module docs).
    ///
    /// # Errors
    /// A malformed-input [`ReceiptError`]; a bundle that cannot be read is
    /// [`ReceiptError::Bundle`], naming it. Never panics.
    pub fn from_json(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        if bytes.len() > RECEIPT_LEN_MAX {
            return Err(ReceiptError::TooLarge { len: bytes.len() });
        }
        let doc: ReceiptJson =
            serde_json::from_slice(bytes).map_err(|e| ReceiptError::Json(e.to_string()))?;
        if doc.format != RECEIPT_FORMAT {
            return Err(ReceiptError::UnknownFormat(doc.format));
        }
        if doc.writes.len() > RECEIPT_WRITES_MAX {
            return Err(ReceiptError::TooManyWrites { count: doc.writes.len() });
        }
        let decision = ProofBundle::from_json_doc(doc.decision)
            .map_err(|error| ReceiptError::Bundle { part: ReceiptPart::Decision, error })?;
        let writes = doc
            .writes
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                ProofBundle::from_json_doc(w)
                    .map_err(|error| ReceiptError::Bundle { part: ReceiptPart::Write(i), error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Receipt { txn_id: doc.txn_id, coordinator: doc.coordinator, decision, writes })
    }

    /// The JSON form, pretty-printed.
    ///
    /// # Errors
    /// [`ReceiptError::Bundle`] when a bundle's leaf cannot be encoded (a key outside its
    /// bounds), [`ReceiptError::TooManyWrites`] or [`ReceiptError::TooLarge`]: a receipt that
    /// [`Receipt::from_json`] would refuse is never written.
    pub fn to_json(&self) -> Result<String, ReceiptError> {
        if self.writes.len() > RECEIPT_WRITES_MAX {
            return Err(ReceiptError::TooManyWrites { count: self.writes.len() });
        }
        let bundle_doc = |part: ReceiptPart, bundle: &ProofBundle| {
            bundle
                .to_json_doc()
                .map_err(|e| ReceiptError::Bundle { part, error: BundleError::Leaf(e) })
        };
        let doc = ReceiptJson {
            format: RECEIPT_FORMAT.to_owned(),
            txn_id: self.txn_id,
            coordinator: self.coordinator,
            decision: bundle_doc(ReceiptPart::Decision, &self.decision)?,
            writes: self
                .writes
                .iter()
                .enumerate()
                .map(|(i, w)| bundle_doc(ReceiptPart::Write(i), w))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let json = serde_json::to_string_pretty(&doc).expect("a receipt serializes to JSON");
        if json.len() > RECEIPT_LEN_MAX {
            return Err(ReceiptError::TooLarge { len: json.len() });
        }
        Ok(json)
    }
}

/// Verifies a receipt, in this order:
///
/// 1. the receipt's transaction id is not [`TxnId::NONE`];
/// 2. the decision bundle verifies ([`verify_bundle`], without a trusted checkpoint); its key is
///    [`decision_key`]`(coordinator, txn_id)`; its leaf is in the coordinator's shard, has the
///    receipt's transaction id and version 1; its value is present and decodes as a
///    [`DecisionRecord`] whose decision is commit;
/// 3. for each write bundle, in order: it verifies ([`verify_bundle`]); its leaf has the
///    receipt's transaction id; its key is not reserved ([`is_reserved_key`]); its shard is a
///    participant of the decision record; and no earlier write bundle is the same leaf (shard and
///    log index) or writes the same key;
/// 4. for each participant, the receipt holds exactly as many write bundles in its shard as the
///    decision record says: no write is left out and none is added.
///
/// Alongside steps 2 and 3, every bundle's checkpoint must be of the same cluster as the decision
/// bundle's (its origin, less `/shard/<n>`), and two checkpoints of one shard with the same size
/// must have the same root. Checkpoints of one shard with different sizes are not checked against
/// each other: the receipt carries no consistency proof between them.
///
/// Requires nothing of the receipt beyond its type. Which cluster the receipt is of is the
/// caller's to check, through the keys of `policy`; whether the checkpoints extend those the
/// caller trusts is the caller's to check with [`VerifiedReceipt::checkpoints`].
///
/// # Errors
/// The first check that fails, as a [`ReceiptError`]; a bundle that does not verify is
/// [`ReceiptError::Bundle`] with the [`BundleError`] and which bundle it is. Never panics.
pub fn verify_receipt(
    receipt: &Receipt,
    policy: &TrustPolicy,
) -> Result<VerifiedReceipt, ReceiptError> {
    if receipt.txn_id.is_none() {
        return Err(ReceiptError::NoTxnId);
    }
    if receipt.writes.len() > RECEIPT_WRITES_MAX {
        return Err(ReceiptError::TooManyWrites { count: receipt.writes.len() });
    }
    let mut checkpoints = Checkpoints::default();
    let verified = verify_part(ReceiptPart::Decision, &receipt.decision, policy)?;
    checkpoints.add(ReceiptPart::Decision, &verified)?;
    let decision = check_decision(receipt, &verified)?;

    let mut writes = Vec::with_capacity(receipt.writes.len());
    let mut seen = SeenWrites::default();
    for (position, bundle) in receipt.writes.iter().enumerate() {
        let part = ReceiptPart::Write(position);
        let verified = verify_part(part, bundle, policy)?;
        checkpoints.add(part, &verified)?;
        let write = check_write(receipt.txn_id, &decision, position, &verified)?;
        seen.add(position, &write)?;
        writes.push(write);
    }
    for p in &decision.participants {
        let got = seen.count(p.shard);
        if got as u64 != u64::from(p.writes) {
            return Err(ReceiptError::WriteCount { shard: p.shard, expected: p.writes, got });
        }
    }
    Ok(VerifiedReceipt {
        txn_id: receipt.txn_id,
        coordinator: receipt.coordinator,
        decision,
        writes,
        checkpoints: checkpoints.latest,
    })
}

fn verify_part(
    part: ReceiptPart,
    bundle: &ProofBundle,
    policy: &TrustPolicy,
) -> Result<VerifiedRecord, ReceiptError> {
    verify_bundle(bundle, policy, None).map_err(|error| ReceiptError::Bundle { part, error })
}

/// Step 2 of [`verify_receipt`], after the decision bundle verified.
fn check_decision(
    receipt: &Receipt,
    verified: &VerifiedRecord,
) -> Result<DecisionRecord, ReceiptError> {
    let leaf = &verified.leaf;
    if leaf.key != decision_key(receipt.coordinator, receipt.txn_id) {
        return Err(ReceiptError::DecisionKey {
            txn_id: receipt.txn_id,
            coordinator: receipt.coordinator,
            got: leaf.key.clone(),
        });
    }
    if verified.shard != receipt.coordinator {
        return Err(ReceiptError::DecisionShard {
            coordinator: receipt.coordinator,
            got: verified.shard,
        });
    }
    if leaf.txn_id != receipt.txn_id {
        return Err(ReceiptError::DecisionTxnId { expected: receipt.txn_id, got: leaf.txn_id });
    }
    if leaf.version != 1 {
        return Err(ReceiptError::DecisionVersion { got: leaf.version });
    }
    // verify_bundle checked the value against the leaf's digest, so this is the committed value.
    let value = verified.record.value.as_deref().ok_or(ReceiptError::DecisionRedacted)?;
    let record = DecisionRecord::decode(value).map_err(ReceiptError::DecisionRecord)?;
    if record.decision != TxnDecision::Commit {
        return Err(ReceiptError::NotCommitted { decision: record.decision });
    }
    Ok(record)
}

/// The per-bundle part of step 3 of [`verify_receipt`], after the write bundle verified.
fn check_write(
    txn_id: TxnId,
    decision: &DecisionRecord,
    position: usize,
    verified: &VerifiedRecord,
) -> Result<VerifiedWrite, ReceiptError> {
    let leaf = &verified.leaf;
    if leaf.txn_id != txn_id {
        return Err(ReceiptError::WriteTxnId { position, expected: txn_id, got: leaf.txn_id });
    }
    if is_reserved_key(&leaf.key) {
        return Err(ReceiptError::ReservedKey { position, key: leaf.key.clone() });
    }
    if decision.participant(verified.shard).is_none() {
        return Err(ReceiptError::NotParticipant { position, shard: verified.shard });
    }
    Ok(VerifiedWrite {
        shard: verified.shard,
        key: leaf.key.clone(),
        version: leaf.version,
        log_index: verified.log_index,
    })
}

/// The writes seen so far, to refuse duplicates and count the writes per shard.
#[derive(Default)]
struct SeenWrites {
    leaves: HashMap<(ShardId, LogIndex), usize>,
    keys: HashMap<Vec<u8>, usize>,
    per_shard: BTreeMap<ShardId, usize>,
}

impl SeenWrites {
    fn add(&mut self, position: usize, write: &VerifiedWrite) -> Result<(), ReceiptError> {
        if let Some(&first) = self.leaves.get(&(write.shard, write.log_index)) {
            return Err(ReceiptError::DuplicateWrite {
                first,
                second: position,
                shard: write.shard,
                log_index: write.log_index,
            });
        }
        if let Some(&first) = self.keys.get(&write.key) {
            return Err(ReceiptError::DuplicateKey {
                first,
                second: position,
                key: write.key.clone(),
            });
        }
        self.leaves.insert((write.shard, write.log_index), position);
        self.keys.insert(write.key.clone(), position);
        *self.per_shard.entry(write.shard).or_default() += 1;
        Ok(())
    }

    fn count(&self, shard: ShardId) -> usize {
        self.per_shard.get(&shard).copied().unwrap_or(0)
    }
}

/// The checkpoints of the bundles verified so far: their cluster, the root of each (shard, size),
/// and the largest checkpoint of each shard.
#[derive(Default)]
struct Checkpoints {
    cluster: Option<String>,
    roots: HashMap<(ShardId, TreeSize), (Hash, ReceiptPart)>,
    latest: BTreeMap<ShardId, VerifiedCheckpoint>,
}

impl Checkpoints {
    fn add(&mut self, part: ReceiptPart, verified: &VerifiedRecord) -> Result<(), ReceiptError> {
        let checkpoint = &verified.checkpoint.checkpoint;
        // verify_bundle checked that the origin is `<cluster origin>/shard/<leaf's shard>`.
        let cluster = checkpoint
            .origin
            .rsplit_once("/shard/")
            .map_or(checkpoint.origin.as_str(), |(cluster, _)| cluster);
        match &self.cluster {
            None => self.cluster = Some(cluster.to_owned()),
            Some(expected) if expected != cluster => {
                return Err(ReceiptError::ClusterMismatch {
                    part,
                    expected: expected.clone(),
                    got: cluster.to_owned(),
                });
            }
            Some(_) => {}
        }
        let shard = verified.shard;
        match self.roots.entry((shard, checkpoint.size)) {
            hash_map::Entry::Vacant(v) => {
                v.insert((checkpoint.root, part));
            }
            hash_map::Entry::Occupied(o) => {
                let &(root, first) = o.get();
                if root != checkpoint.root {
                    let size = checkpoint.size;
                    return Err(ReceiptError::Fork { shard, size, first, second: part });
                }
            }
        }
        match self.latest.entry(shard) {
            btree_map::Entry::Vacant(v) => {
                v.insert(verified.checkpoint.clone());
            }
            btree_map::Entry::Occupied(mut o) => {
                if checkpoint.size > o.get().checkpoint.size {
                    o.insert(verified.checkpoint.clone());
                }
            }
        }
        Ok(())
    }
}
