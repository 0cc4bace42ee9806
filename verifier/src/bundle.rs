//! The proof bundle: what a read returns, and what an auditor can check offline with nothing else
//! but the trusted verifier keys.
//!
//! A bundle holds a record (key, version, value), the leaf that commits to it, the inclusion proof
//! of that leaf, the signed checkpoint the proof is against, and, when the reader said which tree
//! size it already trusts, the consistency proof from that size to the checkpoint.
//! [`verify_bundle`] checks all of it and returns the record only when everything holds.
//!
//! # JSON form, version 1
//!
//! ```json
//! {
//!   "format": "blockdb-proof-bundle/v1",
//!   "record": { "key": "<base64>", "version": 2, "value": "<base64> or null if redacted" },
//!   "leaf": "<base64 of the leaf bytes>",
//!   "inclusion_proof": ["<64 hex digits>", "..."],
//!   "checkpoint": "<the signed checkpoint note, newlines included>",
//!   "consistency_proof": null
//! }
//! ```
//!
//! `consistency_proof` may be omitted or `null`; otherwise it is
//! `{ "from_size": n, "to_size": m, "hashes": ["<hex>", ...] }`. Unknown fields are refused, so a
//! field this verifier does not understand is never silently ignored. A later version gets a new
//! `format` string.
//!
//! # Binary form, version 1
//!
//! Big-endian integers; `bytes32` is a u32 length then that many bytes; `hashes8` is a u8 count
//! then that many 32-byte hashes.
//!
//! | field              | encoding                                                 |
//! |--------------------|----------------------------------------------------------|
//! | magic              | the 4 bytes `BDPB`                                        |
//! | version            | u8, `0x01`                                                |
//! | record key         | bytes32, at most [`crate::leaf::KEY_LEN_MAX`] bytes        |
//! | record version     | u64                                                       |
//! | value present      | u8, `0` (redacted) or `1`                                 |
//! | value              | bytes32, at most [`VALUE_LEN_MAX`], only if present       |
//! | leaf               | bytes32, at most `u16::MAX` bytes                         |
//! | inclusion proof    | hashes8, at most 64                                       |
//! | checkpoint         | bytes32, the note, at most [`crate::note::NOTE_LEN_MAX`]    |
//! | consistency present| u8, `0` or `1`                                            |
//! | consistency proof  | u64 from_size, u64 to_size, hashes8 (at most 128), if present |
//!
//! Nothing may follow. [`ProofBundle::parse`] tells the two forms apart by the magic.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chain::{ConsistencyStatus, ExtendError, verify_extends};
use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::codec::{DecodeError, Reader, Writer};
use crate::hash::Hash;
use crate::ids::{LogIndex, ShardId, TreeSize};
use crate::leaf::{KEY_LEN_MAX, Leaf, LeafError};
use crate::note::NOTE_LEN_MAX;
use crate::policy::{PolicyError, TrustPolicy, VerifiedCheckpoint};
use crate::proof::{
    CONSISTENCY_PROOF_LEN_MAX, ConsistencyProof, INCLUSION_PROOF_LEN_MAX, ProofError,
    verify_inclusion,
};

/// The `format` value of the JSON form.
pub const BUNDLE_FORMAT: &str = "blockdb-proof-bundle/v1";
/// The first bytes of the binary form.
pub const BINARY_MAGIC: [u8; 4] = *b"BDPB";
/// The binary form's version byte.
pub const BINARY_VERSION: u8 = 1;
/// Longest value a bundle may carry.
pub const VALUE_LEN_MAX: usize = 64 * 1024 * 1024;
/// Longest encoded bundle, in either form, that [`ProofBundle::parse`] accepts.
pub const BUNDLE_LEN_MAX: usize = 2 * VALUE_LEN_MAX;

const LEAF_LEN_MAX: usize = u16::MAX as usize;

/// A record as a read returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The key.
    pub key: Vec<u8>,
    /// Its version, from 1.
    pub version: u64,
    /// The value, or `None` when it was redacted (the leaf still commits to its digest).
    pub value: Option<Vec<u8>>,
}

/// A record with everything needed to verify it offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofBundle {
    /// The record.
    pub record: Record,
    /// The leaf committing to it.
    pub leaf: Leaf,
    /// The inclusion proof of the leaf in the checkpoint's tree.
    pub inclusion_proof: Vec<Hash>,
    /// The signed checkpoint.
    pub checkpoint: SignedCheckpoint,
    /// A consistency proof from the size the reader trusts to the checkpoint's size.
    pub consistency_proof: Option<ConsistencyProof>,
}

/// A record whose bundle verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRecord {
    /// The record.
    pub record: Record,
    /// The shard whose log holds it.
    pub shard: ShardId,
    /// Its position in that log.
    pub log_index: LogIndex,
    /// Its leaf.
    pub leaf: Leaf,
    /// The checkpoint it is proven in, and who signed it.
    pub checkpoint: VerifiedCheckpoint,
    /// How the checkpoint relates to the trusted one.
    pub consistency: ConsistencyStatus,
}

/// Why a bundle is unusable or does not verify. [`BundleError::is_malformed`] separates input that
/// cannot be read from a well-formed bundle that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The input is larger than [`BUNDLE_LEN_MAX`].
    #[error("bundle is {len} bytes, more than the limit of {BUNDLE_LEN_MAX}")]
    TooLarge {
        /// The input's length.
        len: usize,
    },
    /// The JSON form is malformed.
    #[error("malformed bundle JSON: {0}")]
    Json(String),
    /// The binary form is malformed.
    #[error("malformed binary bundle: {0}")]
    Binary(DecodeError),
    /// The `format` field or the binary version names a format this verifier does not know.
    #[error("unknown bundle format {0:?} (this verifier knows {BUNDLE_FORMAT:?})")]
    UnknownFormat(String),
    /// A field is out of its bounds.
    #[error("bundle field `{field}`: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The leaf bytes are not a leaf.
    #[error("bundle leaf: {0}")]
    Leaf(LeafError),
    /// The checkpoint is not a signed checkpoint.
    #[error("bundle checkpoint: {0}")]
    Checkpoint(CheckpointError),

    /// The checkpoint's signatures do not satisfy the trust policy.
    #[error("checkpoint: {0}")]
    Policy(PolicyError),
    /// The checkpoint's origin is not the log of the leaf's shard.
    #[error(
        "leaf is in shard {shard} but the checkpoint's origin {origin:?} is not that shard's log"
    )]
    ShardMismatch {
        /// The leaf's shard.
        shard: ShardId,
        /// The checkpoint's origin.
        origin: String,
    },
    /// The record does not match its leaf.
    #[error("record does not match its leaf: {field} differs")]
    RecordMismatch {
        /// The field that differs: `key`, `version`, `value length` or `value digest`.
        field: &'static str,
    },
    /// The inclusion proof does not verify.
    #[error("inclusion proof of leaf {index} in tree of size {size}: {error}")]
    Inclusion {
        /// The leaf's index.
        index: LogIndex,
        /// The checkpoint's size.
        size: TreeSize,
        /// What failed.
        error: ProofError,
    },
    /// The checkpoint does not extend the trusted one.
    #[error("checkpoint does not extend the trusted checkpoint: {0}")]
    Consistency(ExtendError),
}

impl BundleError {
    /// Whether the bundle could not be read at all, as opposed to read and found invalid.
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            BundleError::TooLarge { .. }
                | BundleError::Json(_)
                | BundleError::Binary(_)
                | BundleError::UnknownFormat(_)
                | BundleError::Field { .. }
                | BundleError::Leaf(_)
                | BundleError::Checkpoint(_)
        )
    }

    /// Whether the error is evidence that the log forked (two incompatible signed checkpoints).
    pub fn is_fork(&self) -> bool {
        matches!(
            self,
            BundleError::Consistency(ExtendError::Fork { .. } | ExtendError::Inconsistent { .. })
        )
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordJson {
    #[serde(with = "crate::serde_hex::base64_bytes")]
    key: Vec<u8>,
    version: u64,
    value: Option<String>,
}

/// The JSON form of a bundle as serde sees it; shared with the transaction receipt
/// ([`crate::txn::receipt`]), which embeds bundles in this form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BundleJson {
    format: String,
    record: RecordJson,
    #[serde(with = "crate::serde_hex::base64_bytes")]
    leaf: Vec<u8>,
    #[serde(with = "crate::serde_hex::hashes")]
    inclusion_proof: Vec<Hash>,
    checkpoint: String,
    #[serde(default)]
    consistency_proof: Option<ConsistencyProof>,
}

fn field(field: &'static str, reason: impl Into<String>) -> BundleError {
    BundleError::Field { field, reason: reason.into() }
}

impl ProofBundle {
    /// Parses either form, telling them apart by the binary magic.
    ///
    /// # Errors
    /// A malformed-input [`BundleError`]. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<ProofBundle, BundleError> {
        if bytes.len() > BUNDLE_LEN_MAX {
            return Err(BundleError::TooLarge { len: bytes.len() });
        }
        if bytes.starts_with(&BINARY_MAGIC) {
            ProofBundle::from_binary(bytes)
        } else {
            ProofBundle::from_json(bytes)
        }
    }

    /// Parses the JSON form.
    ///
    /// # Errors
    /// A malformed-input [`BundleError`]. Never panics.
    pub fn from_json(bytes: &[u8]) -> Result<ProofBundle, BundleError> {
        if bytes.len() > BUNDLE_LEN_MAX {
            return Err(BundleError::TooLarge { len: bytes.len() });
        }
        let doc: BundleJson =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Json(e.to_string()))?;
        ProofBundle::from_json_doc(doc)
    }

    /// A bundle from its parsed JSON document: checks the format and every field's bounds.
    pub(crate) fn from_json_doc(doc: BundleJson) -> Result<ProofBundle, BundleError> {
        if doc.format != BUNDLE_FORMAT {
            return Err(BundleError::UnknownFormat(doc.format));
        }
        let value = match doc.record.value {
            None => None,
            Some(b64) => Some(
                STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| field("record.value", e.to_string()))?,
            ),
        };
        let record = Record { key: doc.record.key, version: doc.record.version, value };
        ProofBundle::from_parts(
            record,
            &doc.leaf,
            doc.inclusion_proof,
            doc.checkpoint.as_bytes(),
            doc.consistency_proof,
        )
    }

    /// Parses the binary form.
    ///
    /// # Errors
    /// A malformed-input [`BundleError`]. Never panics.
    pub fn from_binary(bytes: &[u8]) -> Result<ProofBundle, BundleError> {
        if bytes.len() > BUNDLE_LEN_MAX {
            return Err(BundleError::TooLarge { len: bytes.len() });
        }
        let mut r = Reader::new(bytes);
        let magic: [u8; 4] = r.array("magic").map_err(BundleError::Binary)?;
        if magic != BINARY_MAGIC {
            return Err(field("magic", format!("{magic:02x?} is not {BINARY_MAGIC:02x?}")));
        }
        let version = r.u8("version").map_err(BundleError::Binary)?;
        if version != BINARY_VERSION {
            return Err(BundleError::UnknownFormat(format!("binary version {version}")));
        }
        let (record, leaf, inclusion, checkpoint, consistency) =
            read_binary(&mut r).map_err(BundleError::Binary)?;
        r.finish().map_err(BundleError::Binary)?;
        ProofBundle::from_parts(record, leaf, inclusion, checkpoint, consistency)
    }

    fn from_parts(
        record: Record,
        leaf: &[u8],
        inclusion_proof: Vec<Hash>,
        checkpoint: &[u8],
        consistency_proof: Option<ConsistencyProof>,
    ) -> Result<ProofBundle, BundleError> {
        if record.key.is_empty() || record.key.len() > KEY_LEN_MAX {
            return Err(field(
                "record.key",
                format!("length {} outside 1..={KEY_LEN_MAX}", record.key.len()),
            ));
        }
        if record.value.as_ref().is_some_and(|v| v.len() > VALUE_LEN_MAX) {
            return Err(field("record.value", format!("longer than {VALUE_LEN_MAX} bytes")));
        }
        if inclusion_proof.len() > INCLUSION_PROOF_LEN_MAX {
            return Err(field(
                "inclusion_proof",
                format!("{} hashes, more than {INCLUSION_PROOF_LEN_MAX}", inclusion_proof.len()),
            ));
        }
        if let Some(p) = &consistency_proof
            && p.hashes.len() > CONSISTENCY_PROOF_LEN_MAX
        {
            return Err(field(
                "consistency_proof",
                format!("{} hashes, more than {CONSISTENCY_PROOF_LEN_MAX}", p.hashes.len()),
            ));
        }
        let leaf = Leaf::decode(leaf).map_err(BundleError::Leaf)?;
        let checkpoint = SignedCheckpoint::parse(checkpoint).map_err(BundleError::Checkpoint)?;
        Ok(ProofBundle { record, leaf, inclusion_proof, checkpoint, consistency_proof })
    }

    /// The JSON form, pretty-printed.
    ///
    /// # Errors
    /// A [`LeafError`] when the leaf cannot be encoded (a key outside its bounds).
    pub fn to_json(&self) -> Result<String, LeafError> {
        let doc = self.to_json_doc()?;
        Ok(serde_json::to_string_pretty(&doc).expect("a bundle serializes to JSON"))
    }

    /// The JSON document of [`ProofBundle::to_json`], before it is written out.
    pub(crate) fn to_json_doc(&self) -> Result<BundleJson, LeafError> {
        Ok(BundleJson {
            format: BUNDLE_FORMAT.to_owned(),
            record: RecordJson {
                key: self.record.key.clone(),
                version: self.record.version,
                value: self.record.value.as_ref().map(|v| STANDARD.encode(v)),
            },
            leaf: self.leaf.encode()?,
            inclusion_proof: self.inclusion_proof.clone(),
            checkpoint: self.checkpoint.to_text(),
            consistency_proof: self.consistency_proof.clone(),
        })
    }

    /// The binary form.
    ///
    /// # Errors
    /// A [`BundleError::Field`] when a part exceeds the format's bounds, or a leaf error.
    pub fn to_binary(&self) -> Result<Vec<u8>, BundleError> {
        let leaf = self.leaf.encode().map_err(BundleError::Leaf)?;
        let note = self.checkpoint.to_text();
        if self.record.key.is_empty() || self.record.key.len() > KEY_LEN_MAX {
            return Err(field("record.key", "length out of bounds"));
        }
        if self.record.value.as_ref().is_some_and(|v| v.len() > VALUE_LEN_MAX) {
            return Err(field("record.value", format!("longer than {VALUE_LEN_MAX} bytes")));
        }
        if self.inclusion_proof.len() > INCLUSION_PROOF_LEN_MAX {
            return Err(field("inclusion_proof", "too many hashes"));
        }
        if self
            .consistency_proof
            .as_ref()
            .is_some_and(|p| p.hashes.len() > CONSISTENCY_PROOF_LEN_MAX)
        {
            return Err(field("consistency_proof", "too many hashes"));
        }
        if note.len() > NOTE_LEN_MAX {
            return Err(field("checkpoint", "note too long"));
        }
        let value_len = self.record.value.as_ref().map_or(0, Vec::len);
        let mut w =
            Writer::with_capacity(64 + self.record.key.len() + value_len + leaf.len() + note.len());
        w.put(&BINARY_MAGIC);
        w.u8(BINARY_VERSION);
        w.bytes_u32(&self.record.key);
        w.u64(self.record.version);
        match &self.record.value {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                w.bytes_u32(v);
            }
        }
        w.bytes_u32(&leaf);
        w.hashes_u8(&self.inclusion_proof);
        w.bytes_u32(note.as_bytes());
        match &self.consistency_proof {
            None => w.u8(0),
            Some(p) => {
                w.u8(1);
                w.u64(p.from_size.0);
                w.u64(p.to_size.0);
                w.hashes_u8(&p.hashes);
            }
        }
        Ok(w.buf)
    }
}

type BinaryParts<'a> = (Record, &'a [u8], Vec<Hash>, &'a [u8], Option<ConsistencyProof>);

fn read_binary<'a>(r: &mut Reader<'a>) -> Result<BinaryParts<'a>, DecodeError> {
    let key = r.bytes_u32("record.key", KEY_LEN_MAX)?.to_vec();
    let version = r.u64("record.version")?;
    let value = match r.u8("record.value_present")? {
        0 => None,
        1 => Some(r.bytes_u32("record.value", VALUE_LEN_MAX)?.to_vec()),
        other => {
            return Err(DecodeError::InvalidValue {
                field: "record.value_present",
                value: other.to_string(),
            });
        }
    };
    let leaf = r.bytes_u32("leaf", LEAF_LEN_MAX)?;
    let inclusion = r.hashes_u8("inclusion_proof", INCLUSION_PROOF_LEN_MAX)?;
    let checkpoint = r.bytes_u32("checkpoint", NOTE_LEN_MAX)?;
    let consistency = match r.u8("consistency_present")? {
        0 => None,
        1 => {
            let from_size = TreeSize(r.u64("consistency.from_size")?);
            let to_size = TreeSize(r.u64("consistency.to_size")?);
            let hashes = r.hashes_u8("consistency.hashes", CONSISTENCY_PROOF_LEN_MAX)?;
            Some(ConsistencyProof { from_size, to_size, hashes })
        }
        other => {
            return Err(DecodeError::InvalidValue {
                field: "consistency_present",
                value: other.to_string(),
            });
        }
    };
    Ok((Record { key, version, value }, leaf, inclusion, checkpoint, consistency))
}

/// Verifies a bundle, in this order: the checkpoint's signatures under `policy`; that its origin
/// is the log of the leaf's shard; that it extends `trusted` (the latest checkpoint the caller
/// verified for this origin, if any); that the record matches the leaf (key, version, value length
/// and digest, unless the value was redacted); and the inclusion proof of the leaf at its log index
/// in the checkpoint's tree.
///
/// A consistency proof in a bundle verified without `trusted` is not checked, and the result says
/// [`ConsistencyStatus::NoTrustedState`].
///
/// # Errors
/// The first check that fails, as a [`BundleError`].
pub fn verify_bundle(
    bundle: &ProofBundle,
    policy: &TrustPolicy,
    trusted: Option<&Checkpoint>,
) -> Result<VerifiedRecord, BundleError> {
    verify_bundle_with(bundle, |signed| policy.verify(signed), trusted)
}

/// [`verify_bundle`], with the checkpoint's signatures checked by `verify_checkpoint`: a trust
/// policy's [`TrustPolicy::verify`], or a cache in front of it that returns the earlier result
/// for a signed checkpoint equal to one it verified (as a client does for the many answers that
/// carry one checkpoint).
///
/// # Errors
/// As [`verify_bundle`].
pub fn verify_bundle_with(
    bundle: &ProofBundle,
    verify_checkpoint: impl FnOnce(&SignedCheckpoint) -> Result<VerifiedCheckpoint, PolicyError>,
    trusted: Option<&Checkpoint>,
) -> Result<VerifiedRecord, BundleError> {
    let verified = verify_checkpoint(&bundle.checkpoint).map_err(BundleError::Policy)?;
    let checkpoint = &verified.checkpoint;
    let leaf = &bundle.leaf;
    if checkpoint.shard() != Some(leaf.shard) {
        return Err(BundleError::ShardMismatch {
            shard: leaf.shard,
            origin: checkpoint.origin.clone(),
        });
    }
    let consistency = match trusted {
        None => ConsistencyStatus::NoTrustedState,
        Some(t) => verify_extends(t, checkpoint, bundle.consistency_proof.as_ref())
            .map_err(BundleError::Consistency)?,
    };
    let record = &bundle.record;
    if record.key != leaf.key {
        return Err(BundleError::RecordMismatch { field: "key" });
    }
    if record.version != leaf.version {
        return Err(BundleError::RecordMismatch { field: "version" });
    }
    if let Some(value) = &record.value {
        if value.len() as u64 != leaf.value_len {
            return Err(BundleError::RecordMismatch { field: "value length" });
        }
        if Hash(Sha256::digest(value).into()) != leaf.value_sha256 {
            return Err(BundleError::RecordMismatch { field: "value digest" });
        }
    }
    let leaf_hash = leaf.hash().map_err(BundleError::Leaf)?;
    verify_inclusion(
        &leaf_hash,
        leaf.log_index,
        checkpoint.size,
        &bundle.inclusion_proof,
        &checkpoint.root,
    )
    .map_err(|error| BundleError::Inclusion {
        index: leaf.log_index,
        size: checkpoint.size,
        error,
    })?;
    Ok(VerifiedRecord {
        record: record.clone(),
        shard: leaf.shard,
        log_index: leaf.log_index,
        leaf: leaf.clone(),
        consistency,
        checkpoint: verified,
    })
}
