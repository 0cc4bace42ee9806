//! The peer service (`blockdb.peer.v1.Peer`) a node serves on its peer address.
//!
//! Every request is checked before anything acts on it: its cluster id must be this node's and
//! its shard must exist. A request that fails a check, or whose body does not decode, is refused
//! with a clear status and logged, and never reaches Raft.

use std::sync::Arc;
use std::time::{Duration, Instant};

use blockdb_proto::peer::v1 as pb;
use blockdb_proto::peer::v1::peer_server::{Peer, PeerServer};
use tonic::{Request, Response, Status};

use blockdb_verifier::ShardId;

use crate::api::grpc::status::to_status;
use crate::node::Node;
use crate::raft::codec::decode_command;
use crate::raft::network::PEER_MESSAGE_BYTES_MAX;
use crate::raft::wire;

/// The peer service of `node`.
pub fn service(node: Arc<Node>) -> PeerServer<PeerService> {
    PeerServer::new(PeerService { node })
        .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX)
}

/// The peer service.
#[derive(Debug)]
pub struct PeerService {
    node: Arc<Node>,
}

impl PeerService {
    /// The shard a request is for, once its header checks out.
    fn admit(&self, header: Option<&pb::Header>, what: &str) -> Result<ShardId, Status> {
        let Some(h) = header else {
            tracing::warn!(what, "peer request without a header refused");
            return Err(Status::invalid_argument("peer request without a header"));
        };
        if h.cluster_id != self.node.cluster_id() {
            tracing::warn!(
                what,
                from = h.from,
                theirs = h.cluster_id,
                ours = self.node.cluster_id(),
                "peer request from another cluster refused"
            );
            return Err(Status::failed_precondition(format!(
                "cluster id {:?} is not this node's cluster {}",
                h.cluster_id,
                self.node.cluster_id()
            )));
        }
        if h.shard >= self.node.shard_count() {
            tracing::warn!(
                what,
                from = h.from,
                shard = h.shard,
                "peer request for an unknown shard refused"
            );
            return Err(Status::not_found(format!(
                "no shard {}; this cluster has {}",
                h.shard,
                self.node.shard_count()
            )));
        }
        Ok(ShardId(h.shard))
    }

    fn undecodable(&self, what: &str, from: u64, e: &wire::WireError) -> Status {
        tracing::warn!(what, from, error = %e, "undecodable peer request refused");
        Status::invalid_argument(e.to_string())
    }
}

fn from_of(h: Option<&pb::Header>) -> u64 {
    h.map_or(0, |h| h.from)
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn append_entries(
        &self,
        request: Request<pb::AppendEntriesRequest>,
    ) -> Result<Response<pb::AppendEntriesResponse>, Status> {
        let m = request.into_inner();
        let shard = self.admit(m.header.as_ref(), "append_entries")?;
        let rpc = wire::append_request_from(&m)
            .map_err(|e| self.undecodable("append_entries", from_of(m.header.as_ref()), &e))?;
        let leader_commit = rpc.leader_commit.map(|l| l.index);
        let raft = self.node.raft(shard).map_err(to_status)?;
        let result = raft.append_entries(rpc).await;
        if matches!(result, Ok(openraft::raft::AppendEntriesResponse::Success)) {
            self.node.heard_from_leader(shard, leader_commit);
        }
        Ok(Response::new(wire::append_response_to(&result)))
    }

    async fn vote(
        &self,
        request: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        let m = request.into_inner();
        let shard = self.admit(m.header.as_ref(), "vote")?;
        let rpc = wire::vote_request_from(&m)
            .map_err(|e| self.undecodable("vote", from_of(m.header.as_ref()), &e))?;
        let raft = self.node.raft(shard).map_err(to_status)?;
        Ok(Response::new(wire::vote_response_to(&raft.vote(rpc).await)))
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::InstallSnapshotRequest>,
    ) -> Result<Response<pb::InstallSnapshotResponse>, Status> {
        let m = request.into_inner();
        let shard = self.admit(m.header.as_ref(), "install_snapshot")?;
        let from = from_of(m.header.as_ref());
        let rpc = wire::snapshot_request_from(m)
            .map_err(|e| self.undecodable("install_snapshot", from, &e))?;
        let raft = self.node.raft(shard).map_err(to_status)?;
        Ok(Response::new(wire::snapshot_response_to(&raft.install_snapshot(rpc).await)))
    }

    async fn forward(
        &self,
        request: Request<pb::ForwardRequest>,
    ) -> Result<Response<pb::ForwardResponse>, Status> {
        let m = request.into_inner();
        let shard = self.admit(m.header.as_ref(), "forward")?;
        let command = decode_command(&m.command).map_err(|e| {
            let e = wire::WireError(e.to_string());
            self.undecodable("forward", from_of(m.header.as_ref()), &e)
        })?;
        let (key, value) = match &command {
            crate::ledger::Command::Insert { key, value }
            | crate::ledger::Command::Append { key, value, .. } => (key, value),
            crate::ledger::Command::Txn(_) => {
                return Err(Status::invalid_argument("a transaction step is not forwarded here"));
            }
        };
        if self.node.shard_of(key) != shard {
            return Err(Status::invalid_argument(format!("the key is not in shard {}", shard.0)));
        }
        let result = match self.node.check_record(key, Some(value)) {
            Err(e) => Err(e),
            Ok(()) => {
                let deadline =
                    Instant::now() + Duration::from_millis(self.node.config().write_timeout_ms);
                self.node.write_local(shard, command.clone(), deadline).await
            }
        };
        let result = match result {
            Ok(w) => pb::forward_response::Result::Committed(blockdb_proto::v1::WriteResponse {
                shard: shard.0,
                key: key.clone(),
                version: w.version,
                log_index: w.log_index.0,
                tree_size: w.tree_size,
                checkpoint: w.checkpoint,
            }),
            Err(e) => pb::forward_response::Result::Error(pb::ForwardError {
                code: e.code.as_str().to_owned(),
                message: e.message,
                current_version: e.current_version,
            }),
        };
        Ok(Response::new(pb::ForwardResponse { result: Some(result) }))
    }

    async fn read_index(
        &self,
        request: Request<pb::ReadIndexRequest>,
    ) -> Result<Response<pb::ReadIndexResponse>, Status> {
        let m = request.into_inner();
        let shard = self.admit(m.header.as_ref(), "read_index")?;
        let read_index = self.node.leader_read_index(shard).await.map_err(to_status)?;
        Ok(Response::new(pb::ReadIndexResponse { read_index }))
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<blockdb_proto::v1::NodeStatus>, Status> {
        let m = request.into_inner();
        self.admit(m.header.as_ref(), "status")?;
        Ok(Response::new((&self.node.local_status()).into()))
    }

    async fn change_membership(
        &self,
        request: Request<pb::ChangeMembershipRequest>,
    ) -> Result<Response<pb::ChangeMembershipResponse>, Status> {
        let m = request.into_inner();
        let shard = self.admit(m.header.as_ref(), "change_membership")?;
        let change = m.change.ok_or_else(|| Status::invalid_argument("no change given"))?;
        let deadline = Instant::now() + crate::node::cluster::MEMBERSHIP_TIMEOUT;
        let done =
            self.node.change_membership_local(shard, change, deadline).await.map_err(to_status)?;
        Ok(Response::new(pb::ChangeMembershipResponse {
            voters: done.voters,
            learners: done.learners,
        }))
    }

    async fn txn(
        &self,
        request: Request<pb::TxnRequest>,
    ) -> Result<Response<pb::TxnResponse>, Status> {
        let m = request.into_inner();
        let shard = self.admit(m.header.as_ref(), "txn")?;
        let step: crate::txn::leader::Step = serde_json::from_slice(&m.step).map_err(|e| {
            let e = wire::WireError(format!("transaction step: {e}"));
            self.undecodable("txn", from_of(m.header.as_ref()), &e)
        })?;
        // The sender's wait, bounded by this node's own transaction timeout.
        let wait = Duration::from_millis(m.timeout_ms).min(self.node.txn_timeout() * 2);
        let deadline = Instant::now() + wait;
        let result = match crate::txn::leader::run(&self.node, shard, step, deadline).await {
            Ok(reply) => pb::txn_response::Result::Reply(
                serde_json::to_vec(&reply).expect("a step reply serializes to JSON"),
            ),
            Err(e) => pb::txn_response::Result::Error(pb::ForwardError {
                code: e.code.as_str().to_owned(),
                message: e.message,
                current_version: e.current_version,
            }),
        };
        Ok(Response::new(pb::TxnResponse { result: Some(result) }))
    }

    async fn identity(
        &self,
        _request: Request<pb::IdentityRequest>,
    ) -> Result<Response<pb::IdentityResponse>, Status> {
        Ok(Response::new(pb::IdentityResponse {
            cluster_id: self.node.cluster_id().to_owned(),
            shards: self.node.shard_count(),
            node_id: self.node.id(),
        }))
    }
}
