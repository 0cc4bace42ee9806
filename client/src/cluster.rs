//! The cluster's status and membership as typed values: what each member node reports about
//! itself and its shards ([`ClusterStatus`]), and adding or removing a member
//! ([`ClusterAdmin::add_member`], [`ClusterAdmin::remove_member`]; the same calls are on
//! [`crate::Client`]).
//!
//! **Nothing here is verified.** A status is what the nodes say about themselves — roles, terms,
//! Raft indexes, tree sizes and roots — and no signature covers it. It is for operators, and for
//! pinning the members' verifier keys once, shown to a person to confirm
//! ([`ClusterStatus::verifier_keys`]; `blockctl trust init` does this). The ledger's data is
//! only ever believed through [`crate::Client`]'s proofs. That is also why [`ClusterAdmin`]
//! needs no trust policy: it is what a user runs before there is one. An answer that is not well
//! formed (a key that does not parse, a root that is not 32 bytes) is still refused, as a
//! [`VerifyError::Malformed`], like every other malformed answer.
//!
//! **Retries.** The status is a read and is retried like one. Adding a member is idempotent on
//! the server (adding a voter again answers at once with the membership unchanged), so it is
//! retried after any failure of the network or the cluster, a timeout included: a repeat either
//! finds the change made or waits for the same catch-up. Removing a member is not: a repeat
//! after a removal that went through answers `not_found`, which would hide the success. It is
//! retried only where the server certainly did not act; after a timeout its outcome is unknown,
//! reported as [`ClientError::Unavailable`] — the status tells.
//!
//! **Time.** A new member first catches up with every shard as a learner (from the log or a
//! snapshot) before it votes, which can take minutes on a large ledger, so each attempt of a
//! membership change has its own limit (`membership_timeout`), not the ordinary one. The server
//! changes the shards one after another: a failure can leave some shards changed and others not.

use std::time::Duration;

use blockdb_proto::v1 as pb;
use blockdb_verifier::{Hash, ShardId, TreeSize, VerifierKey};

use crate::connection::{Connection, Effect, Settings};
use crate::error::{ClientError, VerifyError};

/// The default limit on each attempt of a membership change: the server gives a new member up
/// to five minutes per shard to catch up.
pub(crate) const MEMBERSHIP_TIMEOUT_DEFAULT: Duration = Duration::from_secs(300);

/// The cluster as the answering node sees it: its members, each as it reports itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The cluster id.
    pub cluster_id: String,
    /// The number of shards.
    pub shards: u32,
    /// The node that answered.
    pub answered_by: u64,
    /// Every node that is a member (voter or learner) of some shard, by node id.
    pub nodes: Vec<NodeStatus>,
}

/// One member node, as it reports itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node id.
    pub node_id: u64,
    /// Its peer address (`host:port`), as the membership records it.
    pub peer_addr: String,
    /// Its client address (REST and gRPC, `host:port`); empty when it did not answer.
    pub api_addr: String,
    /// The key it signs its checkpoints with; `None` when it did not answer.
    pub verifier_key: Option<VerifierKey>,
    /// Why its status is missing (it did not answer in time, ...); `None` when it answered.
    pub error: Option<String>,
    /// Its shards, in shard order; empty when it did not answer.
    pub shards: Vec<ShardStatus>,
}

/// A node's Raft role in one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// It leads the shard.
    Leader,
    /// A voter following a leader.
    Follower,
    /// A voter asking for votes.
    Candidate,
    /// A member that receives the log but does not vote (a new node catching up).
    Learner,
    /// Stopped.
    Shutdown,
    /// A role this client does not know, as the server named it.
    Other(String),
}

impl Role {
    fn parse(role: &str) -> Role {
        match role {
            "leader" => Role::Leader,
            "follower" => Role::Follower,
            "candidate" => Role::Candidate,
            "learner" => Role::Learner,
            "shutdown" => Role::Shutdown,
            other => Role::Other(other.to_owned()),
        }
    }

    /// The server's name of the role: `leader`, `follower`, ...
    pub fn as_str(&self) -> &str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
            Role::Other(s) => s,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One shard on one node. The `*_index` fields are Raft indexes (Raft counts membership and
/// blank entries too), never leaf positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStatus {
    /// The shard.
    pub shard: ShardId,
    /// The node's role in it.
    pub role: Role,
    /// The node's current Raft term.
    pub term: u64,
    /// The leader the node knows of.
    pub leader: Option<u64>,
    /// The last Raft index in the node's log (the API's `last_log_index`).
    pub last_raft_index: Option<u64>,
    /// The highest Raft index the node knows to be committed: its own on a leader, the
    /// leader's last announced one on a follower.
    pub committed_index: Option<u64>,
    /// The last Raft index the node applied.
    pub applied_index: Option<u64>,
    /// The tree size of the applied state.
    pub tree_size: TreeSize,
    /// The root of that tree.
    pub root: Hash,
    /// The last Raft index covered by the node's latest snapshot.
    pub snapshot_index: Option<u64>,
    /// The last Raft index purged from the node's log.
    pub purged_index: Option<u64>,
    /// The shard's voting members.
    pub voters: Vec<u64>,
    /// The shard's learners.
    pub learners: Vec<u64>,
    /// On the leader: how far each other member's log is behind.
    pub replication: Vec<ReplicationLag>,
    /// Why the node stopped serving the shard, when it found its replica diverged.
    pub corruption: Option<String>,
    /// On a follower: milliseconds since it last heard from its leader.
    pub millis_since_leader: Option<u64>,
}

/// How far one member's log is behind its shard's leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationLag {
    /// The member.
    pub node_id: u64,
    /// The last Raft index the leader knows the member holds.
    pub matched_index: Option<u64>,
    /// The leader's last Raft index minus `matched_index`.
    pub lag: u64,
}

/// One shard's membership after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMembership {
    /// The shard.
    pub shard: ShardId,
    /// Its voting members.
    pub voters: Vec<u64>,
    /// Its learners.
    pub learners: Vec<u64>,
}

impl ClusterStatus {
    /// The member `node_id`.
    pub fn node(&self, node_id: u64) -> Option<&NodeStatus> {
        self.nodes.iter().find(|n| n.node_id == node_id)
    }

    /// The verifier keys of the members that answered, each once, in node order. Each node
    /// signs the checkpoints it serves with its own key, so a client that may talk to any
    /// member trusts any one of these (a policy of 1 of n). Unverified: show them to a person
    /// before pinning them.
    pub fn verifier_keys(&self) -> Vec<VerifierKey> {
        let mut keys: Vec<VerifierKey> = Vec::new();
        for k in self.nodes.iter().filter_map(|n| n.verifier_key.as_ref()) {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        keys
    }

    /// How far `node_id` is behind in `shard`, as the shard's leader reports it: the leader
    /// with the highest term, should two nodes still call themselves leader. `None` when no
    /// leader answered or it reports nothing for the node (the leader itself, say).
    pub fn lag(&self, shard: ShardId, node_id: u64) -> Option<&ReplicationLag> {
        let leader = self
            .nodes
            .iter()
            .filter_map(|n| n.shard(shard))
            .filter(|s| s.role == Role::Leader)
            .max_by_key(|s| s.term)?;
        leader.replication.iter().find(|r| r.node_id == node_id)
    }
}

impl NodeStatus {
    /// Whether the node answered with its own status.
    pub fn is_reachable(&self) -> bool {
        self.error.is_none()
    }

    /// Its status of `shard`.
    pub fn shard(&self, shard: ShardId) -> Option<&ShardStatus> {
        self.shards.iter().find(|s| s.shard == shard)
    }
}

fn malformed(what: &str, e: impl std::fmt::Display) -> VerifyError {
    VerifyError::Malformed(format!("cluster status: {what}: {e}"))
}

fn status_from(r: pb::ClusterStatusResponse) -> Result<ClusterStatus, VerifyError> {
    let nodes = r.nodes.into_iter().map(node_from).collect::<Result<_, _>>()?;
    Ok(ClusterStatus {
        cluster_id: r.cluster_id,
        shards: r.shards,
        answered_by: r.answered_by,
        nodes,
    })
}

fn node_from(n: pb::NodeStatus) -> Result<NodeStatus, VerifyError> {
    let verifier_key = match n.verifier_key.as_str() {
        "" => None,
        k => Some(
            k.parse::<VerifierKey>()
                .map_err(|e| malformed(&format!("node {} verifier key {k:?}", n.node_id), e))?,
        ),
    };
    let node_id = n.node_id;
    let shards = n.shards.into_iter().map(|s| shard_from(node_id, s)).collect::<Result<_, _>>()?;
    Ok(NodeStatus {
        node_id,
        peer_addr: n.peer_addr,
        api_addr: n.api_addr,
        verifier_key,
        error: (!n.error.is_empty()).then_some(n.error),
        shards,
    })
}

fn shard_from(node_id: u64, s: pb::ShardStatus) -> Result<ShardStatus, VerifyError> {
    let root = Hash::from_slice(&s.root)
        .map_err(|e| malformed(&format!("node {node_id} shard {} root", s.shard), e))?;
    Ok(ShardStatus {
        shard: ShardId(s.shard),
        role: Role::parse(&s.role),
        term: s.term,
        leader: s.leader,
        last_raft_index: s.last_log_index,
        committed_index: s.committed_index,
        applied_index: s.applied_index,
        tree_size: TreeSize(s.tree_size),
        root,
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
        corruption: (!s.corruption.is_empty()).then_some(s.corruption),
        millis_since_leader: s.millis_since_leader,
    })
}

/// The memberships of a change's answer, which must list every shard once, in order.
fn memberships_from(r: pb::MembershipResponse) -> Result<Vec<ShardMembership>, VerifyError> {
    r.shards
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            if u64::from(m.shard) != i as u64 {
                return Err(VerifyError::Malformed(format!(
                    "membership: shard {} where shard {i} was next",
                    m.shard
                )));
            }
            Ok(ShardMembership { shard: ShardId(m.shard), voters: m.voters, learners: m.learners })
        })
        .collect()
}

/// The cluster status through `conn`; see [`ClusterAdmin::cluster_status`].
pub(crate) async fn status(conn: &Connection) -> Result<ClusterStatus, ClientError> {
    let r = conn
        .call(Effect::Repeatable, |mut c| async move {
            c.cluster_status(pb::ClusterStatusRequest {}).await
        })
        .await?;
    Ok(status_from(r)?)
}

/// Adds a member through `conn`; see [`ClusterAdmin::add_member`].
pub(crate) async fn add(
    conn: &Connection,
    timeout: Duration,
    node_id: u64,
    peer_addr: &str,
) -> Result<Vec<ShardMembership>, ClientError> {
    let req = pb::AddMemberRequest { node_id, peer_addr: peer_addr.to_owned() };
    let r = conn
        .call_within(Effect::Repeatable, timeout, |mut c| {
            let req = req.clone();
            async move { c.add_member(req).await }
        })
        .await?;
    Ok(memberships_from(r)?)
}

/// Removes a member through `conn`; see [`ClusterAdmin::remove_member`].
pub(crate) async fn remove(
    conn: &Connection,
    timeout: Duration,
    node_id: u64,
) -> Result<Vec<ShardMembership>, ClientError> {
    let req = pb::RemoveMemberRequest { node_id };
    let r = conn
        .call_within(Effect::Once, timeout, |mut c| async move { c.remove_member(req).await })
        .await?;
    Ok(memberships_from(r)?)
}

/// The cluster's status and membership calls, without a trust policy (see the module docs):
/// what an operator uses, and what pins the keys a [`crate::Client`] then trusts.
#[derive(Debug)]
pub struct ClusterAdmin {
    conn: Connection,
    membership_timeout: Duration,
}

impl ClusterAdmin {
    /// Calls to `endpoints` (`http://host:port`, tried in turn), each attempt limited to
    /// `timeout`, with the client's default retries ([`crate::ClientConfig::new`]) and 5
    /// minutes per attempt of a membership change. Nothing is dialled until the first call.
    ///
    /// # Errors
    /// [`ClientError::Unavailable`] when there is no endpoint or one is not a URL.
    pub fn new(endpoints: &[String], timeout: Duration) -> Result<ClusterAdmin, ClientError> {
        let settings = Settings { timeout, ..Settings::default() };
        Ok(ClusterAdmin {
            conn: Connection::open(endpoints, settings)?,
            membership_timeout: MEMBERSHIP_TIMEOUT_DEFAULT,
        })
    }

    /// The same, with each attempt of a membership change limited to `timeout`.
    pub fn with_membership_timeout(self, timeout: Duration) -> ClusterAdmin {
        ClusterAdmin { membership_timeout: timeout, ..self }
    }

    /// The cluster as the answering node sees it: every member with its addresses, verifier
    /// key and, per shard, its role, term, indexes, tree size and root, and the leader's view
    /// of each member's lag. A member that did not answer the node in time is listed with its
    /// `error`. Unverified (see the module docs).
    ///
    /// # Errors
    /// [`ClientError::Unavailable`] when no endpoint answers; [`VerifyError::Malformed`] when
    /// the answer is not well formed.
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        status(&self.conn).await
    }

    /// Adds node `node_id`, reachable by the other nodes at `peer_addr` (`host:port`), to every
    /// shard: as a learner until it has caught up, then as a voter. The node must already run,
    /// started to join this cluster. Adding a member again changes nothing, so the call is
    /// retried like a read (see the module docs). Returns every shard's membership after the
    /// change.
    ///
    /// # Errors
    /// `invalid_argument` ([`ClientError::Rejected`]) for node id 0 or a bad address;
    /// [`ClientError::Unavailable`] when a shard has no leader or the node did not catch up in
    /// time (the change may still complete, and some shards may have it already: call again or
    /// check the status); [`VerifyError::Malformed`] for an answer that does not list every
    /// shard in order.
    pub async fn add_member(
        &self,
        node_id: u64,
        peer_addr: &str,
    ) -> Result<Vec<ShardMembership>, ClientError> {
        add(&self.conn, self.membership_timeout, node_id, peer_addr).await
    }

    /// Removes node `node_id` from every shard. Not retried once the request may have reached
    /// the server (see the module docs). Returns every shard's membership after the change.
    ///
    /// # Errors
    /// `not_found` ([`ClientError::Rejected`]) when it is not a member; `invalid_argument` when
    /// it is the last voter of a shard; [`ClientError::Unavailable`] when a shard has no leader
    /// or the outcome is unknown (check the status); [`VerifyError::Malformed`] as for
    /// [`ClusterAdmin::add_member`].
    pub async fn remove_member(&self, node_id: u64) -> Result<Vec<ShardMembership>, ClientError> {
        remove(&self.conn, self.membership_timeout, node_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(role: &str, root: Vec<u8>) -> pb::ShardStatus {
        pb::ShardStatus {
            shard: 0,
            role: role.into(),
            term: 2,
            root,
            replication: vec![pb::ReplicationLag { node_id: 2, matched_index: Some(5), lag: 1 }],
            ..Default::default()
        }
    }

    #[test]
    fn a_status_converts_and_malformed_parts_are_refused() {
        let key = "blockdb-node-1+d740e9c6+AVfLFsb9a+bc8IKYCx5tXT/60o6qpbKfOAKwiAOKEYvo";
        let answered = pb::NodeStatus {
            node_id: 1,
            verifier_key: key.into(),
            shards: vec![shard("leader", vec![7; 32])],
            ..Default::default()
        };
        let silent = pb::NodeStatus { node_id: 2, error: "timed out".into(), ..Default::default() };
        let response = |nodes| pb::ClusterStatusResponse {
            cluster_id: "c".into(),
            shards: 1,
            answered_by: 1,
            nodes,
        };
        let s = status_from(response(vec![answered.clone(), silent.clone()])).expect("converts");
        assert_eq!(s.verifier_keys(), vec![key.parse::<VerifierKey>().expect("key")]);
        let (one, two) = (s.node(1).expect("node 1"), s.node(2).expect("node 2"));
        assert!(one.is_reachable() && !two.is_reachable());
        assert_eq!(two.error.as_deref(), Some("timed out"));
        assert_eq!(one.shards[0].role, Role::Leader);
        assert_eq!(s.lag(ShardId(0), 2).map(|l| l.lag), Some(1));
        assert_eq!(Role::parse("observer"), Role::Other("observer".into()));

        let short_root = pb::NodeStatus { shards: vec![shard("leader", vec![7; 31])], ..answered };
        let bad_key = pb::NodeStatus { verifier_key: "not a key".into(), ..silent };
        for nodes in [vec![short_root], vec![bad_key]] {
            let e = status_from(response(nodes)).expect_err("malformed");
            assert!(matches!(e, VerifyError::Malformed(_)), "{e}");
        }
    }

    #[test]
    fn a_membership_answer_lists_every_shard_in_order() {
        let m = |shard| pb::ShardMembership { shard, voters: vec![1, 2], learners: vec![] };
        let ok = memberships_from(pb::MembershipResponse { shards: vec![m(0), m(1)] });
        assert_eq!(ok.expect("in order").len(), 2);
        let skipped = memberships_from(pb::MembershipResponse { shards: vec![m(0), m(2)] });
        assert!(matches!(skipped, Err(VerifyError::Malformed(_))));
    }
}
