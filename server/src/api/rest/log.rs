//! Reads of a shard's log: entries by log index, checkpoints, consistency proofs, blocks, and
//! what the node is.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use blockdb_verifier::{Block, LogIndex, ShardId, TreeSize};

use crate::api::rest::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::api::rest::records::{known, page};
use crate::api::rest::types::{
    BlockBody, BlockQuery, BlockRangeQuery, BlocksBody, CheckpointBody, ConsistencyBody,
    ConsistencyQuery, ConsistencyResponse, EntryBody, KnownSizeQuery, NodeBody, ShardStatus,
};
use crate::error::{ErrorCode, RequestError};
use crate::ledger::ShardView;
use crate::node::{Consistency, Node};

/// A leaf by its position in a shard's log, with its inclusion proof.
#[utoipa::path(get, path = "/v1/shards/{shard}/entries/{log_index}", tag = "log",
    params(("shard" = u32, Path, description = "The shard"),
        ("log_index" = u64, Path, description = "The leaf's position"), KnownSizeQuery),
    responses(
        (status = 200, description = "The leaf and its proofs", body = EntryBody),
        (status = 400, description = "Malformed input, or `known_size` beyond the tree", body = ErrorBody),
        (status = 404, description = "No such shard or entry", body = ErrorBody),
    ))]
pub async fn entry(
    State(node): State<Arc<Node>>,
    ApiPath((shard, log_index)): ApiPath<(u32, u64)>,
    ApiQuery(q): ApiQuery<KnownSizeQuery>,
) -> Result<Json<EntryBody>, ApiError> {
    let view = node.view(ShardId(shard), q.consistency.unwrap_or_default().into()).await?;
    if log_index >= view.tree_size().0 {
        return Err(ApiError(RequestError::new(
            ErrorCode::NotFound,
            format!("no entry {log_index}: the tree has {} leaves", view.tree_size().0),
        )));
    }
    let e = view.entry(node.engine(), LogIndex(log_index), known(q.known_size))?;
    Ok(Json(EntryBody {
        shard,
        log_index,
        leaf: e.leaf,
        inclusion_proof: e.inclusion_proof.iter().map(|h| hex::encode(h.0)).collect(),
        checkpoint: e.checkpoint.to_text(),
        consistency_proof: e.consistency_proof.as_ref().map(ConsistencyBody::from),
    }))
}

/// A shard's latest signed checkpoint.
#[utoipa::path(get, path = "/v1/shards/{shard}/checkpoint", tag = "log",
    params(("shard" = u32, Path, description = "The shard"), KnownSizeQuery),
    responses(
        (status = 200, description = "The checkpoint", body = CheckpointBody),
        (status = 404, description = "No such shard", body = ErrorBody),
    ))]
pub async fn checkpoint(
    State(node): State<Arc<Node>>,
    ApiPath(shard): ApiPath<u32>,
    ApiQuery(q): ApiQuery<KnownSizeQuery>,
) -> Result<Json<CheckpointBody>, ApiError> {
    let view = node.view(ShardId(shard), q.consistency.unwrap_or_default().into()).await?;
    let c = view.checkpoint();
    Ok(Json(CheckpointBody {
        shard,
        origin: c.origin.clone(),
        tree_size: c.size.0,
        root: hex::encode(c.root.0),
        checkpoint: view.signed_checkpoint().to_text(),
    }))
}

/// A consistency proof between two tree sizes of a shard, with its latest checkpoint.
#[utoipa::path(get, path = "/v1/shards/{shard}/consistency", tag = "log",
    params(("shard" = u32, Path, description = "The shard"), ConsistencyQuery),
    responses(
        (status = 200, description = "The proof", body = ConsistencyResponse),
        (status = 400, description = "Sizes out of range (`out_of_range`)", body = ErrorBody),
        (status = 404, description = "No such shard", body = ErrorBody),
    ))]
pub async fn consistency(
    State(node): State<Arc<Node>>,
    ApiPath(shard): ApiPath<u32>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyResponse>, ApiError> {
    let view = node.view(ShardId(shard), q.consistency.unwrap_or_default().into()).await?;
    let to = TreeSize(q.to_size.unwrap_or(view.tree_size().0));
    let proof = view.consistency(node.engine(), TreeSize(q.from_size), to)?;
    Ok(Json(ConsistencyResponse {
        proof: ConsistencyBody::from(&proof),
        checkpoint: view.signed_checkpoint().to_text(),
    }))
}

fn block_body(node: &Node, view: &ShardView, block: Block) -> Result<BlockBody, ApiError> {
    let size = view.tree_size();
    let consistency_proof = if block.tree_size == size {
        None
    } else {
        Some(ConsistencyBody::from(&view.consistency(node.engine(), block.tree_size, size)?))
    };
    Ok(BlockBody { block, consistency_proof, checkpoint: view.signed_checkpoint().to_text() })
}

async fn block_at(
    node: &Node,
    q: &BlockQuery,
    height: Option<u64>,
) -> Result<Json<BlockBody>, ApiError> {
    let shard = ShardId(q.shard.unwrap_or(0));
    let view = node.view(shard, q.consistency.unwrap_or_default().into()).await?;
    let block = view.block(node.engine(), height)?.ok_or_else(|| {
        ApiError(RequestError::new(
            ErrorCode::NotFound,
            format!("no such block; the latest height is {}", view.block_height()),
        ))
    })?;
    Ok(Json(block_body(node, &view, block)?))
}

/// The block at a height, with the consistency proof from its tree to the latest checkpoint.
#[utoipa::path(get, path = "/v1/blocks/{height}", tag = "blocks",
    params(("height" = u64, Path, description = "The height, from 1"), BlockQuery),
    responses(
        (status = 200, description = "The block", body = BlockBody),
        (status = 404, description = "No such block or shard", body = ErrorBody),
    ))]
pub async fn block(
    State(node): State<Arc<Node>>,
    ApiPath(height): ApiPath<u64>,
    ApiQuery(q): ApiQuery<BlockQuery>,
) -> Result<Json<BlockBody>, ApiError> {
    block_at(&node, &q, Some(height)).await
}

/// The latest block of a shard.
#[utoipa::path(get, path = "/v1/blocks/latest", tag = "blocks", params(BlockQuery),
    responses(
        (status = 200, description = "The block", body = BlockBody),
        (status = 404, description = "No block yet, or no such shard", body = ErrorBody),
    ))]
pub async fn latest_block(
    State(node): State<Arc<Node>>,
    ApiQuery(q): ApiQuery<BlockQuery>,
) -> Result<Json<BlockBody>, ApiError> {
    block_at(&node, &q, None).await
}

/// A range of blocks of a shard, oldest first.
#[utoipa::path(get, path = "/v1/blocks", tag = "blocks", params(BlockRangeQuery),
    responses(
        (status = 200, description = "The blocks", body = BlocksBody),
        (status = 400, description = "Malformed input", body = ErrorBody),
        (status = 404, description = "No such shard", body = ErrorBody),
    ))]
pub async fn blocks(
    State(node): State<Arc<Node>>,
    ApiQuery(q): ApiQuery<BlockRangeQuery>,
) -> Result<Json<BlocksBody>, ApiError> {
    let limit = page(q.limit)? as u64;
    let shard = ShardId(q.shard.unwrap_or(0));
    let view = node.view(shard, q.consistency.unwrap_or_default().into()).await?;
    let first = q.from_height.unwrap_or(1).max(1);
    let last = view.block_height().min(first.saturating_add(limit - 1));
    let mut out = Vec::new();
    for h in first..=last {
        if let Some(b) = view.block(node.engine(), Some(h))? {
            out.push(block_body(&node, &view, b)?);
        }
    }
    let next_height = (last < view.block_height()).then_some(last + 1);
    Ok(Json(BlocksBody { blocks: out, next_height }))
}

/// The node's verifier key and its shards.
#[utoipa::path(get, path = "/v1/node", tag = "node",
    responses((status = 200, description = "The node", body = NodeBody)))]
pub async fn node_info(State(node): State<Arc<Node>>) -> Result<Json<NodeBody>, ApiError> {
    let mut shard_status = Vec::new();
    for s in 0..node.shard_count() {
        let view = node.view(ShardId(s), Consistency::Stale).await?;
        shard_status.push(ShardStatus {
            shard: s,
            origin: view.checkpoint().origin.clone(),
            tree_size: view.tree_size().0,
            applied_index: view.applied_index(),
            block_height: view.block_height(),
        });
    }
    Ok(Json(NodeBody {
        verifier_key: node.verifier_key().to_string(),
        cluster_origin: node.cluster_origin().to_owned(),
        shards: node.shard_count(),
        shard_status,
    }))
}
