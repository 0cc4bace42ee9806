//! The cluster: status of every node and shard, and membership changes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::rest::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::node::Node;
use crate::node::status::{ClusterStatus, ShardMembership};
use crate::raft::NodeId;

/// A node to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberBody {
    /// The new node's id (not 0).
    pub node_id: NodeId,
    /// Its peer address, `host:port`, where the other nodes reach it.
    pub peer_addr: String,
}

/// Every shard's membership after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipBody {
    /// Per shard, in order.
    pub shards: Vec<ShardMembership>,
}

/// The cluster as the answering node sees it: every member with its addresses and verifier key
/// and, per shard, its role, term, leader, indexes, tree size, root and (on the leader) the
/// replication lag of the others. Members that do not answer within a second carry `error`.
#[utoipa::path(get, path = "/v1/cluster", tag = "cluster",
    responses((status = 200, description = "The cluster's status", body = ClusterStatus)))]
pub async fn status(State(node): State<Arc<Node>>) -> Json<ClusterStatus> {
    Json(node.cluster_status().await)
}

/// Adds a node to every shard: first as a learner, which catches up from the log or a snapshot,
/// then as a voter. The node must already run, started with `--join`. Adding a member again
/// changes nothing.
#[utoipa::path(post, path = "/v1/cluster/members", tag = "cluster", request_body = AddMemberBody,
    responses(
        (status = 200, description = "The new membership", body = MembershipBody),
        (status = 400, description = "Bad node id or address", body = ErrorBody),
        (status = 503, description = "A shard has no leader", body = ErrorBody),
        (status = 504, description = "The change did not finish in time", body = ErrorBody),
    ))]
pub async fn add_member(
    State(node): State<Arc<Node>>,
    ApiJson(body): ApiJson<AddMemberBody>,
) -> Result<Json<MembershipBody>, ApiError> {
    let shards = node.add_member(body.node_id, &body.peer_addr).await?;
    Ok(Json(MembershipBody { shards }))
}

/// Removes a node from every shard. Refused for the last voter of a shard.
#[utoipa::path(delete, path = "/v1/cluster/members/{node_id}", tag = "cluster",
    params(("node_id" = u64, Path, description = "The node to remove")),
    responses(
        (status = 200, description = "The new membership", body = MembershipBody),
        (status = 400, description = "The last voter", body = ErrorBody),
        (status = 404, description = "Not a member", body = ErrorBody),
        (status = 503, description = "A shard has no leader", body = ErrorBody),
    ))]
pub async fn remove_member(
    State(node): State<Arc<Node>>,
    ApiPath(node_id): ApiPath<NodeId>,
) -> Result<Json<MembershipBody>, ApiError> {
    let shards = node.remove_member(node_id).await?;
    Ok(Json(MembershipBody { shards }))
}
