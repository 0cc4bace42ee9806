//! C2SP tlog-tiles for each shard under `/tlog/{shard}/`: `checkpoint`, `tile/<L>/<N>[.p/<W>]`
//! and `tile/entries/<N>[.p/<W>]`, so that transparency-log clients and witnesses read a shard
//! as they read any tiled log.
//!
//! A full tile is served once the tree has it; a partial tile of width `W` is served while the
//! tree's tile at that index has at least `W` hashes (it is that tile cut to `W`, and never
//! changes). Both are immutable, and say so in `Cache-Control`; the checkpoint is not.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use blockdb_verifier::tiles::encode_entry_bundle;
use blockdb_verifier::{ShardId, TileKind, TilePath};

use crate::api::rest::error::{ApiError, ApiPath, ErrorBody};
use crate::error::{ErrorCode, RequestError};
use crate::node::{Consistency, Node};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A shard's latest checkpoint as a signed note (tlog-checkpoint).
#[utoipa::path(get, path = "/tlog/{shard}/checkpoint", tag = "tlog-tiles", operation_id = "tlog_checkpoint",
    params(("shard" = u32, Path, description = "The shard")),
    responses(
        (status = 200, description = "The signed checkpoint", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 404, description = "No such shard", body = ErrorBody),
    ))]
pub async fn checkpoint(
    State(node): State<Arc<Node>>,
    ApiPath(shard): ApiPath<u32>,
) -> Result<Response, ApiError> {
    let view = node.view(ShardId(shard), Consistency::Linearizable).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        view.signed_checkpoint().to_text(),
    )
        .into_response())
}

/// A tile or an entry bundle of a shard.
#[utoipa::path(get, path = "/tlog/{shard}/tile/{path}", tag = "tlog-tiles", operation_id = "tlog_tile",
    params(("shard" = u32, Path, description = "The shard"),
        ("path" = String, Path, description = "`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`")),
    responses(
        (status = 200, description = "The tile's bytes: 32-byte hashes, or an entry bundle", body = String, content_type = "application/octet-stream"),
        (status = 400, description = "Not a tile path", body = ErrorBody),
        (status = 404, description = "The tree has no such tile", body = ErrorBody),
    ))]
pub async fn tile(
    State(node): State<Arc<Node>>,
    ApiPath((shard, path)): ApiPath<(u32, String)>,
) -> Result<Response, ApiError> {
    let tile = TilePath::parse(&format!("tile/{path}"))
        .map_err(|e| ApiError(RequestError::invalid(format!("tile path: {e}"))))?;
    let view = node.view(ShardId(shard), Consistency::Stale).await?;
    let width = usize::from(tile.width());
    let missing = || {
        ApiError(RequestError::new(
            ErrorCode::NotFound,
            format!("the tree of size {} has no tile {}", view.tree_size().0, tile.to_path()),
        ))
    };
    let body = match tile.kind() {
        TileKind::Hashes { level } => {
            let bytes = view.tile(node.engine(), level, tile.index())?.ok_or_else(missing)?;
            let have = bytes.len() / 32;
            if have < width || (!tile.is_partial() && have != 256) {
                return Err(missing());
            }
            bytes[..width * 32].to_vec()
        }
        TileKind::Entries => {
            let leaves = view.entry_leaves(node.engine(), tile.index())?.ok_or_else(missing)?;
            if leaves.len() < width || (!tile.is_partial() && leaves.len() != 256) {
                return Err(missing());
            }
            encode_entry_bundle(&leaves[..width]).map_err(|e| {
                ApiError(RequestError::new(ErrorCode::Internal, format!("entry bundle: {e}")))
            })?
        }
    };
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, IMMUTABLE)],
        body,
    )
        .into_response())
}
