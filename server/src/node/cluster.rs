//! How a node works with the rest of its cluster: routing writes and read barriers to each
//! shard's leader, the cluster status, and membership changes.
//!
//! **Forwarding, not redirects.** Any node takes any request. A write that reaches a follower is
//! forwarded over the peer network to the shard's leader, which proposes it and answers with its
//! outcome; a linearizable read on a follower asks the leader for a read index and is then
//! served by the follower from its own replica once it has applied that far. Clients therefore
//! need one reachable node, work through a load balancer, and never see a leader change except as
//! latency; the cost is one extra hop for requests that land on followers.
//!
//! A forwarded write is retried (at the new leader) only when it certainly was not proposed: the
//! leader answered `not_leader`, or the connection to it was refused. Any other failure after the
//! request may have left is reported as `timeout`, whose outcome is unknown — never retried here,
//! since a retried append could commit twice.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use blockdb_proto::peer::v1 as pb;
use openraft::{BasicNode, ChangeMembers, ServerState};
use tokio::task::JoinSet;

use blockdb_verifier::ShardId;

use crate::api::grpc::status::from_status;
use crate::error::{ErrorCode, RequestError};
use crate::ledger::Command;
use crate::node::status::{
    ClusterStatus, NodeStatus, ReplicationLag, ShardMembership, ShardStatus,
};
use crate::node::{Node, WriteResult};
use crate::raft::NodeId;
use crate::raft::codec::encode_command;
use crate::raft::network::{PeerError, Peers};

/// How long a node waits for a member's own status.
const STATUS_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a membership change of one shard may take (a new learner catches up first).
pub const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(300);

/// The leader of `shard` as this node knows it, with its peer address.
pub(crate) fn leader_of(node: &Node, shard: ShardId) -> Option<(NodeId, String)> {
    let raft = node.raft(shard).ok()?;
    let m = raft.metrics().borrow().clone();
    let leader = m.current_leader?;
    let addr = m.membership_config.membership().get_node(&leader).map(|n| n.addr.clone())?;
    Some((leader, addr))
}

/// Waits until `shard` has a leader other than `not`, a short while, or the deadline.
pub(crate) async fn pause(node: &Node, shard: ShardId, wait: Duration, deadline: Instant) {
    let until = (Instant::now() + wait).min(deadline);
    if let Ok(raft) = node.raft(shard) {
        let mut m = raft.metrics();
        let before = m.borrow().current_leader;
        let changed = m.wait_for(|m| m.current_leader.is_some() && m.current_leader != before);
        let _ = tokio::time::timeout_at(until.into(), changed).await;
    }
}

/// What one attempt at a shard's leader came to (see [`at_leader`]).
pub(crate) enum Attempt<T> {
    /// The answer.
    Done(Result<T, RequestError>),
    /// No answer that counts (the node asked no longer leads, the request was not sent, …): try
    /// again at the leader as then known. The reason is kept for the error if time runs out.
    Retry(String),
}

/// Runs a request at `shard`'s leader, wherever it is, until an attempt settles it or `deadline`
/// passes: `local()` when this node leads, `remote(leader, its peer address)` otherwise; between
/// attempts it waits for a new leader, a pause that doubles up to 200 ms. `Err` carries the
/// reason of the last retry when the deadline passed.
pub(crate) async fn at_leader<T, L, R>(
    node: &Node,
    shard: ShardId,
    deadline: Instant,
    mut local: impl FnMut() -> L,
    mut remote: impl FnMut(NodeId, String) -> R,
) -> Result<Result<T, RequestError>, Option<String>>
where
    L: Future<Output = Attempt<T>>,
    R: Future<Output = Attempt<T>>,
{
    let mut wait = Duration::from_millis(10);
    let mut last = None;
    loop {
        let attempt = match leader_of(node, shard) {
            Some((leader, _)) if leader == node.id() => Some(local().await),
            Some((leader, addr)) => Some(remote(leader, addr).await),
            None => None,
        };
        match attempt {
            Some(Attempt::Done(result)) => return Ok(result),
            Some(Attempt::Retry(reason)) => last = Some(reason),
            None => {}
        }
        if Instant::now() >= deadline {
            return Err(last);
        }
        pause(node, shard, wait, deadline).await;
        wait = (wait * 2).min(Duration::from_millis(200));
    }
}

fn no_leader(shard: ShardId, last: Option<String>) -> RequestError {
    RequestError::new(
        ErrorCode::Unavailable,
        match last {
            Some(e) => format!("shard {} has no reachable leader: {e}", shard.0),
            None => format!("shard {} has no leader", shard.0),
        },
    )
}

/// Sends `command` to `shard`'s leader, wherever it is, until it is proposed or `deadline`.
pub(crate) async fn route_write(
    node: &Node,
    shard: ShardId,
    command: Command,
    deadline: Instant,
) -> Result<WriteResult, RequestError> {
    let command = &command;
    let local = move || async move {
        match node.write_local(shard, command.clone(), deadline).await {
            Err(e) if e.code == ErrorCode::NotLeader => Attempt::Retry(e.message),
            result => Attempt::Done(result),
        }
    };
    let remote = move |leader, addr: String| async move {
        match forward(node, shard, &addr, command, deadline).await {
            Ok(Err(e)) if e.code == ErrorCode::NotLeader => Attempt::Retry(e.message),
            Ok(result) => Attempt::Done(result),
            Err(e) if e.not_sent() => Attempt::Retry(e.to_string()),
            Err(e) => {
                tracing::warn!(shard = shard.0, leader, error = %e, "a forwarded write failed");
                Attempt::Done(Err(RequestError::new(
                    ErrorCode::Timeout,
                    format!(
                        "forwarding to the leader of shard {} failed: {e}; the write's outcome is \
                         unknown",
                        shard.0
                    ),
                )))
            }
        }
    };
    at_leader(node, shard, deadline, local, remote)
        .await
        .unwrap_or_else(|last| Err(no_leader(shard, last)))
}

async fn forward(
    node: &Node,
    shard: ShardId,
    addr: &str,
    command: &Command,
    deadline: Instant,
) -> Result<Result<WriteResult, RequestError>, PeerError> {
    let request = pb::ForwardRequest {
        header: Some(node.peers().header(shard)),
        command: encode_command(command),
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let answer =
        node.peers().call(addr, left, |mut c| async move { c.forward(request).await }).await?;
    Ok(match answer.result {
        Some(pb::forward_response::Result::Committed(w)) => Ok(WriteResult {
            shard,
            version: w.version,
            log_index: blockdb_verifier::LogIndex(w.log_index),
            tree_size: w.tree_size,
            checkpoint: w.checkpoint,
        }),
        Some(pb::forward_response::Result::Error(e)) => {
            let mut err = RequestError::new(
                ErrorCode::from_name(&e.code).unwrap_or(ErrorCode::Internal),
                e.message,
            );
            err.current_version = e.current_version;
            Err(err)
        }
        None => Err(RequestError::new(ErrorCode::Timeout, "the leader's answer was empty")),
    })
}

/// The Raft index a linearizable read of `shard` must see applied: from this node if it leads,
/// else from the leader.
pub(crate) async fn read_index(
    node: &Node,
    shard: ShardId,
    deadline: Instant,
) -> Result<u64, RequestError> {
    let local = move || async move {
        match node.leader_read_index(shard).await {
            Err(e) if e.code == ErrorCode::NotLeader => Attempt::Retry(e.message),
            result => Attempt::Done(result),
        }
    };
    let remote = move |_, addr: String| async move {
        // The deliberate bug the chaos harness must catch (see NodeConfig).
        if node.config().unsafe_follower_reads {
            return Attempt::Done(Ok(0));
        }
        let request = pb::ReadIndexRequest { header: Some(node.peers().header(shard)) };
        let left = deadline.saturating_duration_since(Instant::now());
        match node
            .peers()
            .call(&addr, left, |mut c| async move { c.read_index(request).await })
            .await
        {
            Ok(r) => Attempt::Done(Ok(r.read_index)),
            // Reads change nothing, so any failure may be retried.
            Err(e) => Attempt::Retry(e.to_string()),
        }
    };
    at_leader(node, shard, deadline, local, remote)
        .await
        .unwrap_or_else(|last| Err(no_leader(shard, last)))
}

/// Asks the member at `addr` for its cluster's identity.
pub(crate) async fn identity_of(addr: &str) -> Result<pb::IdentityResponse, String> {
    // A throwaway channel set: this node has no cluster id yet.
    let peers = Peers::new("", 0);
    peers
        .call(addr, Duration::from_secs(5), |mut c| async move {
            c.identity(pb::IdentityRequest {}).await
        })
        .await
        .map_err(|e| e.to_string())
}

fn role(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

impl Node {
    /// This node's own status.
    pub fn local_status(&self) -> NodeStatus {
        let mut shards = Vec::new();
        for (s, h) in self.shards.iter().enumerate() {
            let m = h.raft.metrics().borrow().clone();
            let view = h.views.borrow().clone();
            let membership = m.membership_config.membership();
            let voters: Vec<NodeId> = membership.voter_ids().collect();
            let learners: Vec<NodeId> = membership.learner_ids().collect();
            let mut replication = Vec::new();
            let mut committed = None;
            if let Some(r) = &m.replication {
                let last = m.last_log_index.unwrap_or(0);
                for (&id, matched) in r {
                    if id == m.id {
                        continue;
                    }
                    let matched_index = matched.as_ref().map(|l| l.index);
                    let lag = last.saturating_sub(matched_index.unwrap_or(0));
                    replication.push(ReplicationLag { node_id: id, matched_index, lag });
                }
                // The commit index: the highest index a majority of voters hold.
                let mut held: Vec<u64> = voters
                    .iter()
                    .map(|v| {
                        if *v == m.id {
                            last
                        } else {
                            r.get(v).and_then(|l| l.as_ref()).map_or(0, |l| l.index)
                        }
                    })
                    .collect();
                held.sort_unstable_by(|a, b| b.cmp(a));
                committed = held.get(voters.len() / 2).copied();
            }
            let (millis_since_leader, leader_commit) = if m.state == ServerState::Leader {
                (Some(0), None)
            } else {
                self.leader_contact(h)
            };
            shards.push(ShardStatus {
                shard: s as u32,
                role: role(m.state).into(),
                term: m.current_term,
                leader: m.current_leader,
                last_log_index: m.last_log_index,
                committed_index: committed.or(leader_commit),
                applied_index: m.last_applied.map(|l| l.index),
                tree_size: view.tree_size().0,
                root: view.checkpoint().root.to_string(),
                snapshot_index: m.snapshot.map(|l| l.index),
                purged_index: m.purged.map(|l| l.index),
                voters,
                learners,
                replication,
                corruption: h.corruption.get().cloned(),
                millis_since_leader,
            });
        }
        NodeStatus {
            node_id: self.id(),
            peer_addr: self.config.peer_addr.clone().unwrap_or_default(),
            api_addr: self.config.api_addr.clone().unwrap_or_default(),
            verifier_key: self.verifier_key().to_string(),
            error: None,
            shards,
        }
    }

    /// The status of every member, as each reports it; members that do not answer within a
    /// second are listed with the error.
    pub async fn cluster_status(&self) -> ClusterStatus {
        let mut members = std::collections::BTreeMap::new();
        for h in &self.shards {
            let m = h.raft.metrics().borrow().clone();
            for (id, n) in m.membership_config.membership().nodes() {
                members.insert(*id, n.addr.clone());
            }
        }
        let mut asks = JoinSet::new();
        for (&id, addr) in &members {
            if id == self.id() {
                continue;
            }
            let peers = self.peers().clone();
            let request = pb::StatusRequest { header: Some(peers.header(ShardId(0))) };
            let addr = addr.clone();
            asks.spawn(async move {
                let r = peers
                    .call(&addr, STATUS_TIMEOUT, |mut c| async move { c.status(request).await })
                    .await;
                (id, addr, r)
            });
        }
        let mut nodes = vec![self.local_status()];
        while let Some(done) = asks.join_next().await {
            let Ok((id, addr, r)) = done else { continue };
            nodes.push(match r {
                Ok(s) => NodeStatus::from(s),
                Err(e) => NodeStatus {
                    node_id: id,
                    peer_addr: addr,
                    api_addr: String::new(),
                    verifier_key: String::new(),
                    error: Some(e.to_string()),
                    shards: Vec::new(),
                },
            });
        }
        nodes.sort_by_key(|n| n.node_id);
        ClusterStatus {
            cluster_id: self.cluster_id().to_owned(),
            shards: self.shard_count(),
            answered_by: self.id(),
            nodes,
        }
    }

    /// Adds node `id` at peer address `addr` to every shard: as a learner, which catches up
    /// from the log or a snapshot, then as a voter.
    ///
    /// # Errors
    /// `invalid_argument` for id 0 or a bad address; `unavailable`, `timeout`.
    pub async fn add_member(
        &self,
        id: NodeId,
        addr: &str,
    ) -> Result<Vec<ShardMembership>, RequestError> {
        if id == 0 {
            return Err(RequestError::invalid("node id 0 is not allowed; ids start at 1"));
        }
        if crate::raft::network::endpoint(addr).is_err() {
            return Err(RequestError::invalid(format!("peer address {addr:?} is not host:port")));
        }
        // The node must run, belong to this cluster, and be the node it is said to be: otherwise
        // it would refuse the leader's messages and the change would wait out its deadline.
        let identity = self
            .peers()
            .call(addr, Duration::from_secs(5), |mut c| async move {
                c.identity(pb::IdentityRequest {}).await
            })
            .await
            .map_err(|e| {
                RequestError::new(
                    ErrorCode::Unavailable,
                    format!("node {id} at {addr} does not answer: {e}"),
                )
            })?;
        if identity.cluster_id != self.cluster_id() {
            return Err(RequestError::invalid(format!(
                "the node at {addr} belongs to cluster {}, not {}; start it with --join and an \
                 empty data directory",
                identity.cluster_id,
                self.cluster_id()
            )));
        }
        if identity.node_id != id {
            return Err(RequestError::invalid(format!(
                "the node at {addr} is node {}, not node {id}",
                identity.node_id
            )));
        }
        let change = pb::change_membership_request::Change::Add(pb::AddMember {
            node_id: id,
            peer_addr: addr.to_owned(),
        });
        self.change_every_shard(change).await
    }

    /// Removes node `id` from every shard.
    ///
    /// # Errors
    /// `not_found` when it is not a member; `invalid_argument` when it is the last voter;
    /// `unavailable`, `timeout`.
    pub async fn remove_member(&self, id: NodeId) -> Result<Vec<ShardMembership>, RequestError> {
        self.change_every_shard(pb::change_membership_request::Change::Remove(id)).await
    }

    async fn change_every_shard(
        &self,
        change: pb::change_membership_request::Change,
    ) -> Result<Vec<ShardMembership>, RequestError> {
        let mut out = Vec::new();
        for s in 0..self.shard_count() {
            let shard = ShardId(s);
            let deadline = Instant::now() + MEMBERSHIP_TIMEOUT;
            out.push(self.change_membership(shard, change.clone(), deadline).await?);
        }
        Ok(out)
    }

    async fn change_membership(
        &self,
        shard: ShardId,
        change: pb::change_membership_request::Change,
        deadline: Instant,
    ) -> Result<ShardMembership, RequestError> {
        let mut wait = Duration::from_millis(10);
        let mut last = None;
        loop {
            match leader_of(self, shard) {
                Some((leader, _)) if leader == self.id() => {
                    match self.change_membership_local(shard, change.clone(), deadline).await {
                        Err(e) if e.code == ErrorCode::NotLeader => last = Some(e.message),
                        result => return result,
                    }
                }
                Some((_, addr)) => {
                    let request = pb::ChangeMembershipRequest {
                        header: Some(self.peers().header(shard)),
                        change: Some(change.clone()),
                    };
                    let left = deadline.saturating_duration_since(Instant::now());
                    let answer = self
                        .peers()
                        .call(
                            &addr,
                            left,
                            |mut c| async move { c.change_membership(request).await },
                        )
                        .await;
                    match answer {
                        Ok(m) => {
                            return Ok(ShardMembership {
                                shard: shard.0,
                                voters: m.voters,
                                learners: m.learners,
                            });
                        }
                        Err(PeerError::Failed { status, .. }) => {
                            let e = from_status(&status);
                            if e.code != ErrorCode::NotLeader {
                                return Err(e);
                            }
                            last = Some(e.message);
                        }
                        Err(e) if e.not_sent() => last = Some(e.to_string()),
                        Err(e) => return Err(RequestError::new(ErrorCode::Timeout, e.to_string())),
                    }
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(no_leader(shard, last));
            }
            pause(self, shard, wait, deadline).await;
            wait = (wait * 2).min(Duration::from_millis(200));
        }
    }

    /// Applies a membership change of `shard`, which this node must lead.
    ///
    /// # Errors
    /// `not_leader` when it does not lead (nothing changed); see [`Node::add_member`].
    pub async fn change_membership_local(
        &self,
        shard: ShardId,
        change: pb::change_membership_request::Change,
        deadline: Instant,
    ) -> Result<ShardMembership, RequestError> {
        let raft = self.raft(shard)?;
        let membership = |raft: &crate::raft::Raft| {
            let m = raft.metrics().borrow().clone();
            let mm = m.membership_config.membership();
            ShardMembership {
                shard: shard.0,
                voters: mm.voter_ids().collect(),
                learners: mm.learner_ids().collect(),
            }
        };
        let timed = |what: &'static str| {
            RequestError::new(
                ErrorCode::Timeout,
                format!("{what} of shard {} did not finish in time; it may still", shard.0),
            )
        };
        match change {
            pb::change_membership_request::Change::Add(add) => {
                let now = membership(raft);
                if now.voters.contains(&add.node_id) {
                    return Ok(now);
                }
                let node = BasicNode::new(add.peer_addr.clone());
                tokio::time::timeout_at(deadline.into(), raft.add_learner(add.node_id, node, true))
                    .await
                    .map_err(|_| timed("adding the learner"))?
                    .map_err(|e| membership_error(shard, e))?;
                let voters = BTreeSet::from([add.node_id]);
                tokio::time::timeout_at(
                    deadline.into(),
                    raft.change_membership(ChangeMembers::AddVoterIds(voters), false),
                )
                .await
                .map_err(|_| timed("promoting the learner"))?
                .map_err(|e| membership_error(shard, e))?;
                tracing::info!(
                    shard = shard.0,
                    node = add.node_id,
                    addr = add.peer_addr,
                    "member added"
                );
            }
            pb::change_membership_request::Change::Remove(id) => {
                let now = membership(raft);
                let ids = BTreeSet::from([id]);
                let change = if now.voters.contains(&id) {
                    if now.voters.len() == 1 {
                        return Err(RequestError::invalid(format!(
                            "node {id} is the last voter of shard {}; it cannot be removed",
                            shard.0
                        )));
                    }
                    ChangeMembers::RemoveVoters(ids)
                } else if now.learners.contains(&id) {
                    ChangeMembers::RemoveNodes(ids)
                } else {
                    return Err(RequestError::new(
                        ErrorCode::NotFound,
                        format!("node {id} is not a member of shard {}", shard.0),
                    ));
                };
                tokio::time::timeout_at(deadline.into(), raft.change_membership(change, false))
                    .await
                    .map_err(|_| timed("removing the member"))?
                    .map_err(|e| membership_error(shard, e))?;
                tracing::info!(shard = shard.0, node = id, "member removed");
            }
        }
        Ok(membership(raft))
    }
}

fn membership_error(
    shard: ShardId,
    e: openraft::error::RaftError<NodeId, openraft::error::ClientWriteError<NodeId, BasicNode>>,
) -> RequestError {
    use openraft::error::{ClientWriteError, RaftError};
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => RequestError::new(
            ErrorCode::NotLeader,
            format!("this node does not lead shard {}; leader: {:?}", shard.0, f.leader_id),
        ),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            RequestError::invalid(format!("shard {}: {e}", shard.0))
        }
        RaftError::Fatal(e) => {
            RequestError::new(ErrorCode::Unavailable, format!("shard {}: {e}", shard.0))
        }
    }
}
