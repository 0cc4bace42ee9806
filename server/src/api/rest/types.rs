//! The JSON shapes of the REST API. Keys and values are base64 (standard alphabet; the URL-safe
//! alphabet and missing padding are accepted on input), hashes are 64 hex digits, checkpoints
//! are the signed note's text. A record's proof bundle is exactly the verifier's
//! `blockdb-proof-bundle/v1` JSON, so a saved response is a file `blockdb-verify bundle` checks.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::{IntoParams, ToSchema};

use blockdb_verifier::{Block, ConsistencyProof, Hash, ProofBundle};

use crate::error::RequestError;
use crate::node::WriteResult;

/// Decodes base64 in either alphabet, padded or not.
///
/// # Errors
/// `invalid_argument` naming `what`.
pub fn decode_b64(what: &str, text: &str) -> Result<Vec<u8>, RequestError> {
    let trimmed = text.trim_end_matches('=');
    let url_safe: String = trimmed
        .chars()
        .map(|c| {
            if c == '+' {
                '-'
            } else if c == '/' {
                '_'
            } else {
                c
            }
        })
        .collect();
    URL_SAFE_NO_PAD
        .decode(url_safe.as_bytes())
        .map_err(|e| RequestError::invalid(format!("{what} is not valid base64: {e}")))
}

pub(crate) mod b64 {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        decode_b64("a bytes field", &text).map_err(|e| serde::de::Error::custom(e.message))
    }
}

fn hex_of(h: &Hash) -> String {
    hex::encode(h.0)
}

/// `POST /v1/insert`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InsertBody {
    /// The key, base64 (1 to 1024 bytes by default).
    #[serde(with = "b64")]
    #[schema(value_type = String, format = Byte)]
    pub key: Vec<u8>,
    /// The value, base64 (at most 1 MiB by default).
    #[serde(with = "b64")]
    #[schema(value_type = String, format = Byte)]
    pub value: Vec<u8>,
}

/// `POST /v1/append`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendBody {
    /// The key, base64.
    #[serde(with = "b64")]
    #[schema(value_type = String, format = Byte)]
    pub key: Vec<u8>,
    /// The value, base64.
    #[serde(with = "b64")]
    #[schema(value_type = String, format = Byte)]
    pub value: Vec<u8>,
    /// Commit only if the key's current version is this (0: the key has no version yet).
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// A committed write.
#[derive(Debug, Serialize, ToSchema)]
pub struct WriteBody {
    /// The shard that holds the key.
    pub shard: u32,
    /// The key, base64.
    #[serde(with = "b64")]
    #[schema(value_type = String, format = Byte)]
    pub key: Vec<u8>,
    /// The record's version.
    pub version: u64,
    /// The record's position in the shard's log.
    pub log_index: u64,
    /// The shard's tree size after the batch that committed the record.
    pub tree_size: u64,
    /// That tree's signed checkpoint.
    pub checkpoint: String,
}

impl WriteBody {
    /// The body for `result` of a write of `key`.
    pub fn new(key: Vec<u8>, r: WriteResult) -> WriteBody {
        WriteBody {
            shard: r.shard.0,
            key,
            version: r.version,
            log_index: r.log_index.0,
            tree_size: r.tree_size,
            checkpoint: r.checkpoint,
        }
    }
}

/// A record in a proof bundle.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordBody {
    /// The key, base64.
    #[serde(with = "b64")]
    #[schema(value_type = String, format = Byte)]
    pub key: Vec<u8>,
    /// The version.
    pub version: u64,
    /// The value, base64; null if redacted.
    #[schema(value_type = Option<String>, format = Byte)]
    pub value: Option<String>,
}

/// A consistency proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyBody {
    /// The older tree size.
    pub from_size: u64,
    /// The newer tree size.
    pub to_size: u64,
    /// The proof's hashes, hex.
    pub hashes: Vec<String>,
}

impl From<&ConsistencyProof> for ConsistencyBody {
    fn from(p: &ConsistencyProof) -> ConsistencyBody {
        ConsistencyBody {
            from_size: p.from_size.0,
            to_size: p.to_size.0,
            hashes: p.hashes.iter().map(hex_of).collect(),
        }
    }
}

/// A proof bundle: the verifier's `blockdb-proof-bundle/v1` JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct BundleBody {
    /// Always `blockdb-proof-bundle/v1`.
    pub format: &'static str,
    /// The record.
    pub record: RecordBody,
    /// The leaf bytes, base64.
    #[serde(with = "b64")]
    #[schema(value_type = String, format = Byte)]
    pub leaf: Vec<u8>,
    /// The inclusion proof, hex hashes from the leaf up.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint the proof is against.
    pub checkpoint: String,
    /// From the `known_size` the caller gave to this checkpoint, if it gave one.
    pub consistency_proof: Option<ConsistencyBody>,
}

impl BundleBody {
    /// The JSON form of `b`.
    ///
    /// # Errors
    /// `internal` if the stored leaf does not encode (corruption).
    pub fn new(b: &ProofBundle) -> Result<BundleBody, RequestError> {
        let leaf = b.leaf.encode().map_err(|e| {
            RequestError::new(crate::error::ErrorCode::Internal, format!("stored leaf: {e}"))
        })?;
        Ok(BundleBody {
            format: blockdb_verifier::bundle::BUNDLE_FORMAT,
            record: RecordBody {
                key: b.record.key.clone(),
                version: b.record.version,
                value: b.record.value.as_ref().map(|v| STANDARD.encode(v)),
            },
            leaf,
            inclusion_proof: b.inclusion_proof.iter().map(hex_of).collect(),
            checkpoint: b.checkpoint.to_text(),
            consistency_proof: b.consistency_proof.as_ref().map(ConsistencyBody::from),
        })
    }
}

/// Whether a read waits for a Raft read barrier.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsistencyParam {
    /// Reflects every write acknowledged before the read (default).
    #[default]
    Linearizable,
    /// The node's latest applied state; the proof is as valid, the checkpoint may be older.
    Stale,
}

impl From<ConsistencyParam> for crate::node::Consistency {
    fn from(c: ConsistencyParam) -> crate::node::Consistency {
        match c {
            ConsistencyParam::Linearizable => crate::node::Consistency::Linearizable,
            ConsistencyParam::Stale => crate::node::Consistency::Stale,
        }
    }
}

/// `GET /v1/records`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    /// The key, base64.
    pub key: String,
    /// The version (latest if absent).
    pub version: Option<u64>,
    /// A tree size the caller already trusts: the response adds a consistency proof from it.
    pub known_size: Option<u64>,
    /// `linearizable` (default) or `stale`.
    pub consistency: Option<ConsistencyParam>,
}

/// `GET /v1/history`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// The key, base64.
    pub key: String,
    /// First version to return (default 1).
    pub from_version: Option<u64>,
    /// Versions to return, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// A tree size the caller already trusts.
    pub known_size: Option<u64>,
    /// `linearizable` (default) or `stale`.
    pub consistency: Option<ConsistencyParam>,
}

/// A page of a key's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryBody {
    /// One bundle per version, oldest first, all against one checkpoint.
    pub bundles: Vec<BundleBody>,
    /// The version to ask for next, if there are more.
    pub next_version: Option<u64>,
}

/// `GET /v1/scan`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScanQuery {
    /// First key, base64 (default: the smallest).
    pub start: Option<String>,
    /// End key, exclusive, base64 (default: no end).
    pub end: Option<String>,
    /// Keys to return, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// The shard to scan (default 0): keys are hash-partitioned, so a range is per shard.
    pub shard: Option<u32>,
    /// A tree size the caller already trusts.
    pub known_size: Option<u64>,
    /// `linearizable` (default) or `stale`.
    pub consistency: Option<ConsistencyParam>,
}

/// A page of a key range.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanBody {
    /// The latest version of each key, in key order, all against one checkpoint.
    pub bundles: Vec<BundleBody>,
    /// The key to continue from (base64), if there are more.
    pub next_key: Option<String>,
}

/// Query of the per-shard reads.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KnownSizeQuery {
    /// A tree size the caller already trusts.
    pub known_size: Option<u64>,
    /// `linearizable` (default) or `stale`.
    pub consistency: Option<ConsistencyParam>,
}

/// A leaf of a shard's log with its proofs.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryBody {
    /// The shard.
    pub shard: u32,
    /// The leaf's position.
    pub log_index: u64,
    /// The leaf bytes (the verifier's leaf format), base64.
    #[serde(with = "b64")]
    #[schema(value_type = String, format = Byte)]
    pub leaf: Vec<u8>,
    /// The inclusion proof, hex.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint proven against.
    pub checkpoint: String,
    /// From `known_size` to the checkpoint, if asked.
    pub consistency_proof: Option<ConsistencyBody>,
}

/// A shard's latest checkpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointBody {
    /// The shard.
    pub shard: u32,
    /// The log's origin.
    pub origin: String,
    /// The tree size.
    pub tree_size: u64,
    /// The root, hex.
    pub root: String,
    /// The signed checkpoint (C2SP signed note).
    pub checkpoint: String,
}

/// `GET /v1/shards/{shard}/consistency`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older size, at least 1.
    pub from_size: u64,
    /// The newer size (default: the latest checkpoint's).
    pub to_size: Option<u64>,
    /// `linearizable` (default) or `stale`.
    pub consistency: Option<ConsistencyParam>,
}

/// A consistency proof with the latest signed checkpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyResponse {
    /// The proof.
    pub proof: ConsistencyBody,
    /// The latest signed checkpoint of the shard.
    pub checkpoint: String,
}

/// `GET /v1/blocks...` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BlockQuery {
    /// The shard (default 0).
    pub shard: Option<u32>,
    /// `linearizable` (default) or `stale`.
    pub consistency: Option<ConsistencyParam>,
}

/// `GET /v1/blocks` query: a range of blocks.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BlockRangeQuery {
    /// The shard (default 0).
    pub shard: Option<u32>,
    /// First height (default 1).
    pub from_height: Option<u64>,
    /// Blocks to return, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// `linearizable` (default) or `stale`.
    pub consistency: Option<ConsistencyParam>,
}

/// A block, with what proves it against the shard's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockBody {
    /// The block (the verifier's JSON form, with its hash).
    #[schema(value_type = Object)]
    pub block: Block,
    /// The consistency proof from the block's tree to the checkpoint (absent when equal).
    pub consistency_proof: Option<ConsistencyBody>,
    /// The signed checkpoint the block is proven against.
    pub checkpoint: String,
}

/// A range of blocks, all proven against one checkpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlocksBody {
    /// The blocks, by height.
    pub blocks: Vec<BlockBody>,
    /// The height to ask for next, if there are more.
    pub next_height: Option<u64>,
}

/// What a node is.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeBody {
    /// The verifier key clients trust (`name+keyid+base64`).
    pub verifier_key: String,
    /// The cluster's origin prefix.
    pub cluster_origin: String,
    /// Number of shards.
    pub shards: u32,
    /// Per shard: origin, tree size, applied Raft index, block height.
    pub shard_status: Vec<ShardStatus>,
}

/// One shard's state on this node.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardStatus {
    /// The shard.
    pub shard: u32,
    /// Its log's origin.
    pub origin: String,
    /// The tree size.
    pub tree_size: u64,
    /// The last applied Raft index.
    pub applied_index: u64,
    /// The latest block height.
    pub block_height: u64,
}
