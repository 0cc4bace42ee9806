//! Record writes and reads: insert, append, a record with its proof, a key's history, a range.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use blockdb_verifier::{ShardId, TreeSize};

use crate::api::rest::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::api::rest::staleness;
use crate::api::rest::types::{
    AppendBody, BundleBody, HistoryBody, HistoryQuery, InsertBody, RecordQuery, ScanBody,
    ScanQuery, WriteBody, decode_b64,
};
use crate::error::RequestError;
use crate::node::Node;

/// Results per page, at most.
pub const PAGE_MAX: u32 = 1000;
/// Results per page when the caller does not say.
pub const PAGE_DEFAULT: u32 = 100;

pub(crate) fn page(limit: Option<u32>) -> Result<usize, ApiError> {
    match limit.unwrap_or(PAGE_DEFAULT) {
        n @ 1..=PAGE_MAX => Ok(n as usize),
        n => Err(ApiError(RequestError::invalid(format!("limit {n} is not 1 to {PAGE_MAX}")))),
    }
}

pub(crate) fn known(size: Option<u64>) -> Option<TreeSize> {
    size.map(TreeSize)
}

fn key_param(node: &Node, text: &str) -> Result<Vec<u8>, ApiError> {
    let key = decode_b64("key", text)?;
    node.check_record(&key, None)?;
    Ok(key)
}

/// Inserts a key at version 1.
#[utoipa::path(post, path = "/v1/insert", tag = "records", request_body = InsertBody,
    responses(
        (status = 201, description = "Committed and fsynced", body = WriteBody),
        (status = 400, description = "Malformed input or a key/value over the limits", body = ErrorBody),
        (status = 409, description = "The key already exists (`already_exists`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "Unavailable; retry", body = ErrorBody),
    ))]
pub async fn insert(
    State(node): State<Arc<Node>>,
    ApiJson(body): ApiJson<InsertBody>,
) -> Result<(StatusCode, Json<WriteBody>), ApiError> {
    let result = node.insert(body.key.clone(), body.value).await?;
    Ok((StatusCode::CREATED, Json(WriteBody::new(body.key, result))))
}

/// Appends the next version of a key, optionally only at an expected version.
#[utoipa::path(post, path = "/v1/append", tag = "records", request_body = AppendBody,
    responses(
        (status = 200, description = "Committed and fsynced", body = WriteBody),
        (status = 400, description = "Malformed input or a key/value over the limits", body = ErrorBody),
        (status = 409, description = "`expected_version` is not current (`version_mismatch`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "Unavailable; retry", body = ErrorBody),
    ))]
pub async fn append(
    State(node): State<Arc<Node>>,
    ApiJson(body): ApiJson<AppendBody>,
) -> Result<Json<WriteBody>, ApiError> {
    let result = node.append(body.key.clone(), body.value, body.expected_version).await?;
    Ok(Json(WriteBody::new(body.key, result)))
}

/// A record (latest or a given version) with its proof bundle.
#[utoipa::path(get, path = "/v1/records", tag = "records", params(RecordQuery),
    responses(
        (status = 200, description = "The record's proof bundle", body = BundleBody,
            headers(
                ("blockdb-applied-index" = u64, description = "The answering replica's last applied Raft index"),
                ("blockdb-behind-entries" = u64, description = "Committed entries the replica had not applied when its leader last spoke (0 on the leader)"),
                ("blockdb-millis-since-leader" = u64, description = "Milliseconds since the replica last heard from its leader (0 on the leader; absent if never)"),
            )),
        (status = 400, description = "Malformed input, or `known_size` beyond the tree", body = ErrorBody),
        (status = 404, description = "No such record", body = ErrorBody),
    ))]
pub async fn get_record(
    State(node): State<Arc<Node>>,
    ApiQuery(q): ApiQuery<RecordQuery>,
) -> Result<(HeaderMap, Json<BundleBody>), ApiError> {
    let key = key_param(&node, &q.key)?;
    if q.version == Some(0) {
        return Err(ApiError(RequestError::invalid("versions start at 1")));
    }
    let shard = node.shard_of(&key);
    let view = node.view(shard, q.consistency.unwrap_or_default().into()).await?;
    let bundle = view.bundle(node.engine(), &key, q.version, known(q.known_size))?;
    Ok((staleness(&node, shard)?, Json(BundleBody::new(&bundle)?)))
}

/// A key's versions, oldest first, each with its proof bundle.
#[utoipa::path(get, path = "/v1/history", tag = "records", params(HistoryQuery),
    responses(
        (status = 200, description = "A page of versions", body = HistoryBody),
        (status = 400, description = "Malformed input", body = ErrorBody),
        (status = 404, description = "The key has no version", body = ErrorBody),
    ))]
pub async fn history(
    State(node): State<Arc<Node>>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<(HeaderMap, Json<HistoryBody>), ApiError> {
    let key = key_param(&node, &q.key)?;
    let limit = page(q.limit)?;
    let shard = node.shard_of(&key);
    let view = node.view(shard, q.consistency.unwrap_or_default().into()).await?;
    let from = q.from_version.unwrap_or(1);
    let (bundles, next_version) =
        view.history(node.engine(), &key, from, limit, known(q.known_size))?;
    let bundles = bundles.iter().map(BundleBody::new).collect::<Result<_, _>>()?;
    Ok((staleness(&node, shard)?, Json(HistoryBody { bundles, next_version })))
}

/// The latest version of each key in a range of one shard, with proof bundles.
#[utoipa::path(get, path = "/v1/scan", tag = "records", params(ScanQuery),
    responses(
        (status = 200, description = "A page of keys", body = ScanBody),
        (status = 400, description = "Malformed input", body = ErrorBody),
        (status = 404, description = "No such shard", body = ErrorBody),
    ))]
pub async fn scan(
    State(node): State<Arc<Node>>,
    ApiQuery(q): ApiQuery<ScanQuery>,
) -> Result<(HeaderMap, Json<ScanBody>), ApiError> {
    let start = q.start.as_deref().map(|s| decode_b64("start", s)).transpose()?.unwrap_or_default();
    let end = q.end.as_deref().map(|s| decode_b64("end", s)).transpose()?.unwrap_or_default();
    let limit = page(q.limit)?;
    let shard = ShardId(q.shard.unwrap_or(0));
    let view = node.view(shard, q.consistency.unwrap_or_default().into()).await?;
    let headers = staleness(&node, shard)?;
    if !end.is_empty() && start >= end {
        return Ok((headers, Json(ScanBody { bundles: Vec::new(), next_key: None })));
    }
    let (bundles, next) = view.scan(node.engine(), &start, &end, limit, known(q.known_size))?;
    let bundles = bundles.iter().map(BundleBody::new).collect::<Result<_, _>>()?;
    Ok((headers, Json(ScanBody { bundles, next_key: next.map(|k| STANDARD.encode(k)) })))
}
