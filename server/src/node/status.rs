//! The status of a node and its shards, as REST and gRPC report it and as nodes exchange it.
//!
//! Each node describes only itself ([`super::Node::local_status`]); the cluster status a client
//! asks for is the answering node's own plus every other member's, asked over the peer network
//! ([`super::Node::cluster_status`]).

use blockdb_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::raft::NodeId;

/// The cluster as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterStatus {
    /// The cluster id.
    pub cluster_id: String,
    /// The number of shards.
    pub shards: u32,
    /// The node that answered.
    pub answered_by: NodeId,
    /// Every member of some shard's group, by node id.
    pub nodes: Vec<NodeStatus>,
}

/// One node's view of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeStatus {
    /// The node id.
    pub node_id: NodeId,
    /// Its peer address.
    pub peer_addr: String,
    /// Its client address (REST and gRPC); empty if unknown.
    pub api_addr: String,
    /// Its verifier key; empty if it did not answer.
    pub verifier_key: String,
    /// Why its status is missing; absent when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its shards, in order; empty if it did not answer.
    pub shards: Vec<ShardStatus>,
}

/// One shard on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShardStatus {
    /// The shard.
    pub shard: u32,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    /// The current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
    /// The last Raft index in the node's log.
    pub last_log_index: Option<u64>,
    /// The highest Raft index the node knows to be committed.
    pub committed_index: Option<u64>,
    /// The last Raft index applied.
    pub applied_index: Option<u64>,
    /// The tree size of the applied state.
    pub tree_size: u64,
    /// The root of that tree, hex.
    pub root: String,
    /// The last Raft index in the latest snapshot.
    pub snapshot_index: Option<u64>,
    /// The last Raft index purged from the log.
    pub purged_index: Option<u64>,
    /// Voting members.
    pub voters: Vec<NodeId>,
    /// Learners.
    pub learners: Vec<NodeId>,
    /// On the leader: how far each other member is behind.
    pub replication: Vec<ReplicationLag>,
    /// Why this replica stopped serving the shard, if it diverged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corruption: Option<String>,
    /// On a follower: milliseconds since it last heard from its leader.
    pub millis_since_leader: Option<u64>,
}

/// How far one member is behind the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplicationLag {
    /// The member.
    pub node_id: NodeId,
    /// The last Raft index the leader knows it holds.
    pub matched_index: Option<u64>,
    /// The leader's last log index minus `matched_index`.
    pub lag: u64,
}

/// One shard's membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShardMembership {
    /// The shard.
    pub shard: u32,
    /// Voting members.
    pub voters: Vec<NodeId>,
    /// Learners.
    pub learners: Vec<NodeId>,
}

impl From<&ClusterStatus> for pb::ClusterStatusResponse {
    fn from(s: &ClusterStatus) -> Self {
        pb::ClusterStatusResponse {
            cluster_id: s.cluster_id.clone(),
            shards: s.shards,
            answered_by: s.answered_by,
            nodes: s.nodes.iter().map(pb::NodeStatus::from).collect(),
        }
    }
}

impl From<&NodeStatus> for pb::NodeStatus {
    fn from(n: &NodeStatus) -> Self {
        pb::NodeStatus {
            node_id: n.node_id,
            peer_addr: n.peer_addr.clone(),
            api_addr: n.api_addr.clone(),
            verifier_key: n.verifier_key.clone(),
            error: n.error.clone().unwrap_or_default(),
            shards: n
                .shards
                .iter()
                .map(|s| pb::ShardStatus {
                    shard: s.shard,
                    role: s.role.clone(),
                    term: s.term,
                    leader: s.leader,
                    last_log_index: s.last_log_index,
                    committed_index: s.committed_index,
                    applied_index: s.applied_index,
                    tree_size: s.tree_size,
                    root: hex::decode(&s.root).unwrap_or_default(),
                    snapshot_index: s.snapshot_index,
                    purged_index: s.purged_index,
                    voters: s.voters.clone(),
                    learners: s.learners.clone(),
                    replication: s
                        .replication
                        .iter()
                        .map(|r| pb::ReplicationLag {
                            node_id: r.node_id,
                            matched_index: r.matched_index,
                            lag: r.lag,
                        })
                        .collect(),
                    corruption: s.corruption.clone().unwrap_or_default(),
                    millis_since_leader: s.millis_since_leader,
                })
                .collect(),
        }
    }
}

impl From<pb::NodeStatus> for NodeStatus {
    fn from(n: pb::NodeStatus) -> Self {
        let nonempty = |s: String| (!s.is_empty()).then_some(s);
        NodeStatus {
            node_id: n.node_id,
            peer_addr: n.peer_addr,
            api_addr: n.api_addr,
            verifier_key: n.verifier_key,
            error: nonempty(n.error),
            shards: n
                .shards
                .into_iter()
                .map(|s| ShardStatus {
                    shard: s.shard,
                    role: s.role,
                    term: s.term,
                    leader: s.leader,
                    last_log_index: s.last_log_index,
                    committed_index: s.committed_index,
                    applied_index: s.applied_index,
                    tree_size: s.tree_size,
                    root: hex::encode(&s.root),
                    snapshot_index: s.snapshot_index,
                    purged_index: s.purged_index,
                    voters: s.voters,
                    learners: s.learners,
                    replication: s
                        .replication
                        .into_iter()
                        .map(|r| ReplicationLag {
                            node_id: r.node_id,
                            matched_index: r.matched_index,
                            lag: r.lag,
                        })
                        .collect(),
                    corruption: nonempty(s.corruption),
                    millis_since_leader: s.millis_since_leader,
                })
                .collect(),
        }
    }
}

impl From<&ShardMembership> for pb::ShardMembership {
    fn from(m: &ShardMembership) -> Self {
        pb::ShardMembership {
            shard: m.shard,
            voters: m.voters.clone(),
            learners: m.learners.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_status_survives_protobuf() {
        let n = NodeStatus {
            node_id: 2,
            peer_addr: "127.0.0.1:7071".into(),
            api_addr: "127.0.0.1:7070".into(),
            verifier_key: "k+1+AA".into(),
            error: None,
            shards: vec![ShardStatus {
                shard: 1,
                role: "leader".into(),
                term: 3,
                leader: Some(2),
                last_log_index: Some(10),
                committed_index: Some(9),
                applied_index: Some(9),
                tree_size: 7,
                root: "ab".repeat(32),
                snapshot_index: None,
                purged_index: Some(4),
                voters: vec![1, 2, 3],
                learners: vec![4],
                replication: vec![ReplicationLag { node_id: 1, matched_index: Some(8), lag: 2 }],
                corruption: Some("diverged".into()),
                millis_since_leader: Some(0),
            }],
        };
        assert_eq!(NodeStatus::from(pb::NodeStatus::from(&n)), n);
    }
}
