//! Raft messages on the wire: openraft's types to and from `blockdb.peer.v1` messages.
//!
//! Entries go in the log store's binary format ([`super::codec`]); ids and votes as protobuf
//! fields; memberships and openraft's errors as their JSON. Decoding never panics: a message
//! that does not decode is a [`WireError`], which the peer service answers with
//! `INVALID_ARGUMENT` without touching Raft.

use blockdb_proto::peer::v1 as pb;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, CommittedLeaderId, LogId, Membership, SnapshotMeta, StoredMembership};

use crate::raft::codec::{decode_entry, encode_entry};
use crate::raft::{NodeId, TypeConfig};

/// A peer message that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("undecodable peer message: {0}")]
pub struct WireError(pub String);

type Vote = openraft::Vote<NodeId>;

fn log_id_to(id: &LogId<NodeId>) -> pb::LogId {
    pb::LogId { term: id.leader_id.term, node_id: id.leader_id.node_id, index: id.index }
}

fn log_id_from(id: &pb::LogId) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(id.term, id.node_id), id.index)
}

fn opt_log_id_to(id: Option<&LogId<NodeId>>) -> Option<pb::LogId> {
    id.map(log_id_to)
}

fn opt_log_id_from(id: Option<&pb::LogId>) -> Option<LogId<NodeId>> {
    id.map(log_id_from)
}

fn vote_to(v: &Vote) -> pb::Vote {
    pb::Vote { term: v.leader_id.term, node_id: v.leader_id.node_id, committed: v.committed }
}

fn vote_from(v: Option<&pb::Vote>) -> Result<Vote, WireError> {
    let v = v.ok_or_else(|| WireError("missing vote".into()))?;
    Ok(if v.committed {
        Vote::new_committed(v.term, v.node_id)
    } else {
        Vote::new(v.term, v.node_id)
    })
}

fn raft_error_to<E: serde::Serialize>(e: &E) -> pb::RaftError {
    pb::RaftError { json: serde_json::to_string(e).expect("openraft errors serialize to JSON") }
}

fn raft_error_from<E: serde::de::DeserializeOwned>(e: &pb::RaftError) -> Result<E, WireError> {
    serde_json::from_str(&e.json).map_err(|e| WireError(format!("raft error: {e}")))
}

/// AppendEntries to protobuf.
pub fn append_request_to(
    header: pb::Header,
    rpc: &AppendEntriesRequest<TypeConfig>,
) -> pb::AppendEntriesRequest {
    pb::AppendEntriesRequest {
        header: Some(header),
        vote: Some(vote_to(&rpc.vote)),
        prev_log_id: opt_log_id_to(rpc.prev_log_id.as_ref()),
        entries: rpc.entries.iter().map(encode_entry).collect(),
        leader_commit: opt_log_id_to(rpc.leader_commit.as_ref()),
    }
}

/// AppendEntries from protobuf.
///
/// # Errors
/// [`WireError`] for a missing vote or an entry that does not decode.
pub fn append_request_from(
    m: &pb::AppendEntriesRequest,
) -> Result<AppendEntriesRequest<TypeConfig>, WireError> {
    let entries = m
        .entries
        .iter()
        .map(|e| decode_entry(e).map_err(|e| WireError(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AppendEntriesRequest {
        vote: vote_from(m.vote.as_ref())?,
        prev_log_id: opt_log_id_from(m.prev_log_id.as_ref()),
        entries,
        leader_commit: opt_log_id_from(m.leader_commit.as_ref()),
    })
}

/// The answer to AppendEntries to protobuf.
pub fn append_response_to(
    r: &Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>,
) -> pb::AppendEntriesResponse {
    use pb::append_entries_response::Result as R;
    let result = match r {
        Ok(AppendEntriesResponse::Success) => R::Success(pb::Empty {}),
        Ok(AppendEntriesResponse::PartialSuccess(m)) => {
            R::PartialSuccess(pb::PartialSuccess { matched: opt_log_id_to(m.as_ref()) })
        }
        Ok(AppendEntriesResponse::Conflict) => R::Conflict(pb::Empty {}),
        Ok(AppendEntriesResponse::HigherVote(v)) => R::HigherVote(vote_to(v)),
        Err(e) => R::Error(raft_error_to(e)),
    };
    pb::AppendEntriesResponse { result: Some(result) }
}

/// The answer to AppendEntries from protobuf.
///
/// # Errors
/// [`WireError`] for an empty or undecodable answer.
pub fn append_response_from(
    m: &pb::AppendEntriesResponse,
) -> Result<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>, WireError> {
    use pb::append_entries_response::Result as R;
    Ok(match m.result.as_ref().ok_or_else(|| WireError("empty answer".into()))? {
        R::Success(_) => Ok(AppendEntriesResponse::Success),
        R::PartialSuccess(p) => {
            Ok(AppendEntriesResponse::PartialSuccess(opt_log_id_from(p.matched.as_ref())))
        }
        R::Conflict(_) => Ok(AppendEntriesResponse::Conflict),
        R::HigherVote(v) => Ok(AppendEntriesResponse::HigherVote(vote_from(Some(v))?)),
        R::Error(e) => Err(raft_error_from(e)?),
    })
}

/// RequestVote to protobuf.
pub fn vote_request_to(header: pb::Header, rpc: &VoteRequest<NodeId>) -> pb::VoteRequest {
    pb::VoteRequest {
        header: Some(header),
        vote: Some(vote_to(&rpc.vote)),
        last_log_id: opt_log_id_to(rpc.last_log_id.as_ref()),
    }
}

/// RequestVote from protobuf.
///
/// # Errors
/// [`WireError`] for a missing vote.
pub fn vote_request_from(m: &pb::VoteRequest) -> Result<VoteRequest<NodeId>, WireError> {
    Ok(VoteRequest {
        vote: vote_from(m.vote.as_ref())?,
        last_log_id: opt_log_id_from(m.last_log_id.as_ref()),
    })
}

/// The answer to RequestVote to protobuf.
pub fn vote_response_to(r: &Result<VoteResponse<NodeId>, RaftError<NodeId>>) -> pb::VoteResponse {
    match r {
        Ok(v) => pb::VoteResponse {
            vote: Some(vote_to(&v.vote)),
            vote_granted: v.vote_granted,
            last_log_id: opt_log_id_to(v.last_log_id.as_ref()),
            error: None,
        },
        Err(e) => pb::VoteResponse { error: Some(raft_error_to(e)), ..Default::default() },
    }
}

/// The answer to RequestVote from protobuf.
///
/// # Errors
/// [`WireError`] for an undecodable answer.
pub fn vote_response_from(
    m: &pb::VoteResponse,
) -> Result<Result<VoteResponse<NodeId>, RaftError<NodeId>>, WireError> {
    if let Some(e) = &m.error {
        return Ok(Err(raft_error_from(e)?));
    }
    Ok(Ok(VoteResponse {
        vote: vote_from(m.vote.as_ref())?,
        vote_granted: m.vote_granted,
        last_log_id: opt_log_id_from(m.last_log_id.as_ref()),
    }))
}

fn snapshot_meta_to(meta: &SnapshotMeta<NodeId, BasicNode>) -> pb::SnapshotMeta {
    pb::SnapshotMeta {
        last_log_id: opt_log_id_to(meta.last_log_id.as_ref()),
        membership_log_id: opt_log_id_to(meta.last_membership.log_id().as_ref()),
        membership_json: serde_json::to_string(meta.last_membership.membership())
            .expect("a membership serializes to JSON"),
        snapshot_id: meta.snapshot_id.clone(),
    }
}

fn snapshot_meta_from(
    m: Option<&pb::SnapshotMeta>,
) -> Result<SnapshotMeta<NodeId, BasicNode>, WireError> {
    let m = m.ok_or_else(|| WireError("missing snapshot metadata".into()))?;
    let membership: Membership<NodeId, BasicNode> = serde_json::from_str(&m.membership_json)
        .map_err(|e| WireError(format!("membership: {e}")))?;
    Ok(SnapshotMeta {
        last_log_id: opt_log_id_from(m.last_log_id.as_ref()),
        last_membership: StoredMembership::new(
            opt_log_id_from(m.membership_log_id.as_ref()),
            membership,
        ),
        snapshot_id: m.snapshot_id.clone(),
    })
}

/// A snapshot chunk to protobuf.
pub fn snapshot_request_to(
    header: pb::Header,
    rpc: &InstallSnapshotRequest<TypeConfig>,
) -> pb::InstallSnapshotRequest {
    pb::InstallSnapshotRequest {
        header: Some(header),
        vote: Some(vote_to(&rpc.vote)),
        meta: Some(snapshot_meta_to(&rpc.meta)),
        offset: rpc.offset,
        data: rpc.data.clone(),
        done: rpc.done,
    }
}

/// A snapshot chunk from protobuf.
///
/// # Errors
/// [`WireError`] for a missing vote or undecodable metadata.
pub fn snapshot_request_from(
    m: pb::InstallSnapshotRequest,
) -> Result<InstallSnapshotRequest<TypeConfig>, WireError> {
    Ok(InstallSnapshotRequest {
        vote: vote_from(m.vote.as_ref())?,
        meta: snapshot_meta_from(m.meta.as_ref())?,
        offset: m.offset,
        data: m.data,
        done: m.done,
    })
}

type SnapshotResult =
    Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>;

/// The answer to a snapshot chunk to protobuf.
pub fn snapshot_response_to(r: &SnapshotResult) -> pb::InstallSnapshotResponse {
    match r {
        Ok(v) => pb::InstallSnapshotResponse { vote: Some(vote_to(&v.vote)), error: None },
        Err(e) => pb::InstallSnapshotResponse { vote: None, error: Some(raft_error_to(e)) },
    }
}

/// The answer to a snapshot chunk from protobuf.
///
/// # Errors
/// [`WireError`] for an undecodable answer.
pub fn snapshot_response_from(
    m: &pb::InstallSnapshotResponse,
) -> Result<SnapshotResult, WireError> {
    if let Some(e) = &m.error {
        return Ok(Err(raft_error_from(e)?));
    }
    Ok(Ok(InstallSnapshotResponse { vote: vote_from(m.vote.as_ref())? }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::EntryPayload;

    use super::*;
    use crate::ledger::Command;
    use crate::raft::{Entry, Request, RootCheck};

    fn header() -> pb::Header {
        pb::Header { cluster_id: "c".into(), shard: 1, from: 2 }
    }

    fn lid(term: u64, node: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, node), index)
    }

    #[test]
    fn append_entries_round_trips() {
        let request = Request {
            commit_time_ms: 5,
            check: Some(RootCheck { tree_size: 3, root: [7; 32] }),
            commands: vec![Command::Insert { key: b"k".to_vec(), value: b"v".to_vec() }],
        };
        let rpc = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(4, 2),
            prev_log_id: Some(lid(3, 1, 10)),
            entries: vec![
                Entry { log_id: lid(4, 2, 11), payload: EntryPayload::Blank },
                Entry { log_id: lid(4, 2, 12), payload: EntryPayload::Normal(request) },
            ],
            leader_commit: Some(lid(3, 1, 9)),
        };
        let back = append_request_from(&append_request_to(header(), &rpc)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{rpc:?}"));

        for r in [
            Ok(AppendEntriesResponse::Success),
            Ok(AppendEntriesResponse::PartialSuccess(Some(lid(1, 1, 1)))),
            Ok(AppendEntriesResponse::PartialSuccess(None)),
            Ok(AppendEntriesResponse::Conflict),
            Ok(AppendEntriesResponse::HigherVote(Vote::new(9, 3))),
        ] {
            let back = append_response_from(&append_response_to(&r)).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn votes_and_snapshot_chunks_round_trip() {
        let rpc = VoteRequest { vote: Vote::new(5, 3), last_log_id: Some(lid(4, 2, 12)) };
        assert_eq!(vote_request_from(&vote_request_to(header(), &rpc)).unwrap(), rpc);
        let r = Ok(VoteResponse { vote: Vote::new(5, 3), vote_granted: true, last_log_id: None });
        assert_eq!(vote_response_from(&vote_response_to(&r)).unwrap(), r);

        let members = BTreeMap::from([(1, BasicNode::new("127.0.0.1:1"))]);
        let membership = Membership::new(vec![[1u64].into_iter().collect()], members);
        let rpc = InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(5, 3),
            meta: SnapshotMeta {
                last_log_id: Some(lid(5, 3, 100)),
                last_membership: StoredMembership::new(Some(lid(1, 1, 1)), membership),
                snapshot_id: "0-100".into(),
            },
            offset: 4096,
            data: vec![1, 2, 3],
            done: true,
        };
        let back = snapshot_request_from(snapshot_request_to(header(), &rpc)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{rpc:?}"));
        let r = Ok(InstallSnapshotResponse { vote: Vote::new_committed(5, 3) });
        assert_eq!(snapshot_response_from(&snapshot_response_to(&r)).unwrap(), r);
    }

    #[test]
    fn malformed_messages_are_errors() {
        let mut m = append_request_to(
            header(),
            &AppendEntriesRequest::<TypeConfig> {
                vote: Vote::new(1, 1),
                prev_log_id: None,
                entries: vec![],
                leader_commit: None,
            },
        );
        m.entries.push(vec![9, 9, 9]);
        assert!(append_request_from(&m).is_err());
        m.entries.clear();
        m.vote = None;
        assert!(append_request_from(&m).is_err());
        assert!(append_response_from(&pb::AppendEntriesResponse { result: None }).is_err());
        let bad = pb::InstallSnapshotRequest {
            vote: Some(vote_to(&Vote::new(1, 1))),
            meta: Some(pb::SnapshotMeta { membership_json: "{".into(), ..Default::default() }),
            ..Default::default()
        };
        assert!(snapshot_request_from(bad).is_err());
    }
}
