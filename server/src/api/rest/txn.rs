//! Transactions: `POST /v1/txn` runs one, with this node as its coordinator.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::rest::error::{ApiError, ApiJson, ErrorBody};
use crate::api::rest::types::{BundleBody, b64};
use crate::error::RequestError;
use crate::node::Node;
use crate::txn::{TxnOp, TxnOutput, coordinator};

/// One operation of a transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum TxnOpBody {
    /// Read the key's latest version (as of before the transaction's writes).
    Read {
        /// The key, base64.
        #[serde(with = "b64")]
        #[schema(value_type = String, format = Byte)]
        key: Vec<u8>,
    },
    /// Create the key at version 1; the transaction aborts if it exists.
    Insert {
        /// The key, base64.
        #[serde(with = "b64")]
        #[schema(value_type = String, format = Byte)]
        key: Vec<u8>,
        /// The value, base64.
        #[serde(with = "b64")]
        #[schema(value_type = String, format = Byte)]
        value: Vec<u8>,
    },
    /// Add the key's next version; with `expected_version`, only at that version.
    Append {
        /// The key, base64.
        #[serde(with = "b64")]
        #[schema(value_type = String, format = Byte)]
        key: Vec<u8>,
        /// The value, base64.
        #[serde(with = "b64")]
        #[schema(value_type = String, format = Byte)]
        value: Vec<u8>,
        /// The version the key must be at (0: absent).
        #[serde(default)]
        expected_version: Option<u64>,
    },
    /// The transaction aborts unless the key is at `version` (0: absent).
    Check {
        /// The key, base64.
        #[serde(with = "b64")]
        #[schema(value_type = String, format = Byte)]
        key: Vec<u8>,
        /// The version.
        version: u64,
    },
}

impl From<TxnOpBody> for TxnOp {
    fn from(b: TxnOpBody) -> TxnOp {
        match b {
            TxnOpBody::Read { key } => TxnOp::Read { key },
            TxnOpBody::Insert { key, value } => TxnOp::Insert { key, value },
            TxnOpBody::Append { key, value, expected_version } => {
                TxnOp::Append { key, value, expected_version }
            }
            TxnOpBody::Check { key, version } => TxnOp::Check { key, version },
        }
    }
}

/// `POST /v1/txn`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TxnBody {
    /// The operations, 1 to 1024; a key is written at most once.
    pub ops: Vec<TxnOpBody>,
}

/// A read's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct TxnReadBody {
    /// The key, base64.
    #[serde(with = "b64")]
    #[schema(value_type = String, format = Byte)]
    pub key: Vec<u8>,
    /// The key's version (0: none).
    pub version: u64,
    /// The value of that version, base64 (`null` for version 0).
    #[schema(value_type = Option<String>, format = Byte)]
    pub value: Option<String>,
}

/// A write's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct TxnWriteBody {
    /// The key, base64.
    #[serde(with = "b64")]
    #[schema(value_type = String, format = Byte)]
    pub key: Vec<u8>,
    /// The key's shard.
    pub shard: u32,
    /// The version written (0: the shard had not applied the commit when the answer left).
    pub version: u64,
    /// The record's leaf index in the shard's log.
    pub log_index: u64,
}

/// A transaction receipt: the verifier's `blockdb-txn-receipt/v1` JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptBody {
    /// Always `blockdb-txn-receipt/v1`.
    pub format: &'static str,
    /// The transaction id, 32 hex digits.
    pub txn_id: String,
    /// The coordinator's shard, whose log holds the decision record.
    pub coordinator: u32,
    /// The decision record's proof bundle.
    pub decision: BundleBody,
    /// Every record the transaction wrote, with its proof bundle.
    pub writes: Vec<BundleBody>,
}

/// A committed transaction.
#[derive(Debug, Serialize, ToSchema)]
pub struct TxnResultBody {
    /// The transaction id, 32 hex digits (in every leaf it wrote).
    pub txn_id: String,
    /// One per read, in the order of the operations.
    pub reads: Vec<TxnReadBody>,
    /// One per insert or append, in the order of the operations.
    pub writes: Vec<TxnWriteBody>,
    /// For a transaction that wrote: the proofs of its decision record and its records
    /// (`blockdb-verify receipt` checks it; `null` if a shard had not applied the commit yet).
    pub receipt: Option<ReceiptBody>,
}

impl TxnResultBody {
    fn new(out: TxnOutput) -> Result<TxnResultBody, RequestError> {
        use base64::Engine as _;
        let receipt = match out.receipt {
            None => None,
            Some(r) => Some(ReceiptBody {
                format: blockdb_verifier::txn::receipt::RECEIPT_FORMAT,
                txn_id: r.txn_id.to_hex(),
                coordinator: r.coordinator.0,
                decision: BundleBody::new(&r.decision)?,
                writes: r.writes.iter().map(BundleBody::new).collect::<Result<_, _>>()?,
            }),
        };
        Ok(TxnResultBody {
            txn_id: out.txn_id.to_hex(),
            reads: out
                .reads
                .into_iter()
                .map(|r| TxnReadBody {
                    key: r.key,
                    version: r.version,
                    value: r.value.map(|v| base64::engine::general_purpose::STANDARD.encode(v)),
                })
                .collect(),
            writes: out
                .writes
                .into_iter()
                .map(|w| TxnWriteBody {
                    key: w.key,
                    shard: w.shard.0,
                    version: w.version,
                    log_index: w.log_index,
                })
                .collect(),
            receipt,
        })
    }
}

/// Runs a transaction: reads, inserts, appends and checks on any keys of any shards, committed
/// or aborted as one.
#[utoipa::path(post, path = "/v1/txn", tag = "transactions", request_body = TxnBody,
    responses(
        (status = 200, description = "Committed (fsynced on a majority of every shard it wrote)", body = TxnResultBody),
        (status = 400, description = "Malformed input: empty, too many operations, a key written twice, contradicting checks, a reserved key, limits", body = ErrorBody),
        (status = 409, description = "Did not commit: `aborted` (a check failed or a conflict), `locked`, `deadlock`; retry as a new transaction", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "Unavailable; nothing was committed", body = ErrorBody),
        (status = 504, description = "`timeout`: the outcome is unknown", body = ErrorBody),
    ))]
pub async fn transact(
    State(node): State<Arc<Node>>,
    ApiJson(body): ApiJson<TxnBody>,
) -> Result<Json<TxnResultBody>, ApiError> {
    let ops: Vec<TxnOp> = body.ops.into_iter().map(TxnOp::from).collect();
    let out = coordinator::execute(&node, &ops).await?;
    Ok(Json(TxnResultBody::new(out)?))
}

/// An interactive transaction, begun.
#[derive(Debug, Serialize, ToSchema)]
pub struct BeginBody {
    /// The transaction id, 32 hex digits; the other interactive routes take it in their path.
    pub txn_id: String,
    /// How long it may run before this node aborts it, in milliseconds.
    pub timeout_ms: u64,
}

/// `POST /v1/txn/{txn_id}/read`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadKeyBody {
    /// The key, base64.
    #[serde(with = "b64")]
    #[schema(value_type = String, format = Byte)]
    pub key: Vec<u8>,
}

fn txn_id(text: &str) -> Result<blockdb_verifier::TxnId, ApiError> {
    blockdb_verifier::TxnId::from_hex(text).ok_or_else(|| {
        ApiError(RequestError::invalid(format!("{text:?} is not a transaction id (32 hex digits)")))
    })
}

/// Begins an interactive transaction on this node; send its reads, writes and commit here too.
#[utoipa::path(post, path = "/v1/txn/begin", tag = "transactions",
    responses(
        (status = 201, description = "Begun", body = BeginBody),
        (status = 503, description = "Too many open transactions; retry", body = ErrorBody),
    ))]
pub async fn begin(
    State(node): State<Arc<Node>>,
) -> Result<(axum::http::StatusCode, Json<BeginBody>), ApiError> {
    let (txn, timeout) = crate::txn::session::begin(&node)?;
    let body = BeginBody { txn_id: txn.to_hex(), timeout_ms: timeout.as_millis() as u64 };
    Ok((axum::http::StatusCode::CREATED, Json(body)))
}

/// Reads a key in an interactive transaction, which holds a shared lock on it until it ends.
#[utoipa::path(post, path = "/v1/txn/{txn_id}/read", tag = "transactions",
    params(("txn_id" = String, Path, description = "The transaction id")),
    request_body = ReadKeyBody,
    responses(
        (status = 200, description = "The key's latest version", body = TxnReadBody),
        (status = 400, description = "Malformed input", body = ErrorBody),
        (status = 404, description = "No such open transaction on this node", body = ErrorBody),
        (status = 409, description = "`deadlock`: the transaction was aborted", body = ErrorBody),
        (status = 504, description = "`timeout` waiting for the lock: the transaction was aborted", body = ErrorBody),
    ))]
pub async fn read(
    State(node): State<Arc<Node>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    ApiJson(body): ApiJson<ReadKeyBody>,
) -> Result<Json<TxnReadBody>, ApiError> {
    use base64::Engine as _;
    let r = crate::txn::session::read(&node, txn_id(&id)?, body.key).await?;
    Ok(Json(TxnReadBody {
        key: r.key,
        version: r.version,
        value: r.value.map(|v| base64::engine::general_purpose::STANDARD.encode(v)),
    }))
}

/// Adds an insert, an append or a check to an interactive transaction, which holds a lock on
/// the key (exclusive for a write) until it ends. Checks and versions read are checked at
/// commit.
#[utoipa::path(post, path = "/v1/txn/{txn_id}/write", tag = "transactions",
    params(("txn_id" = String, Path, description = "The transaction id")),
    request_body = TxnOpBody,
    responses(
        (status = 204, description = "Added; the key is locked"),
        (status = 400, description = "Malformed input, a read (use /read), a key written twice", body = ErrorBody),
        (status = 404, description = "No such open transaction on this node", body = ErrorBody),
        (status = 409, description = "`deadlock`: the transaction was aborted", body = ErrorBody),
        (status = 504, description = "`timeout` waiting for the lock: the transaction was aborted", body = ErrorBody),
    ))]
pub async fn write(
    State(node): State<Arc<Node>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    ApiJson(body): ApiJson<TxnOpBody>,
) -> Result<axum::http::StatusCode, ApiError> {
    crate::txn::session::write(&node, txn_id(&id)?, TxnOp::from(body)).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Commits an interactive transaction: its writes, provided every version it read is still the
/// key's.
#[utoipa::path(post, path = "/v1/txn/{txn_id}/commit", tag = "transactions",
    params(("txn_id" = String, Path, description = "The transaction id")),
    responses(
        (status = 200, description = "Committed", body = TxnResultBody),
        (status = 404, description = "No such open transaction on this node (never begun, ended, or timed out)", body = ErrorBody),
        (status = 409, description = "Did not commit: `aborted`, `locked`, `deadlock`", body = ErrorBody),
        (status = 504, description = "`timeout`: the outcome is unknown", body = ErrorBody),
    ))]
pub async fn commit(
    State(node): State<Arc<Node>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<TxnResultBody>, ApiError> {
    let out = crate::txn::session::commit(&node, txn_id(&id)?).await?;
    Ok(Json(TxnResultBody::new(out)?))
}

/// Aborts an interactive transaction and releases its locks.
#[utoipa::path(post, path = "/v1/txn/{txn_id}/abort", tag = "transactions",
    params(("txn_id" = String, Path, description = "The transaction id")),
    responses(
        (status = 204, description = "Aborted"),
        (status = 404, description = "No such open transaction on this node", body = ErrorBody),
    ))]
pub async fn abort(
    State(node): State<Arc<Node>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    crate::txn::session::abort(&node, txn_id(&id)?).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
