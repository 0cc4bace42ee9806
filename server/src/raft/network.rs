//! The peer network: how this node reaches the other nodes of its cluster.
//!
//! [`Peers`] keeps one gRPC channel (one HTTP/2 connection, reconnected on failure) per peer
//! address, shared by every shard's Raft group and by forwarded requests. A shard's
//! [`ShardNetwork`] gives openraft a [`PeerConn`] per target, which sends AppendEntries, Vote and
//! snapshot chunks as `blockdb.peer.v1` messages stamped with the cluster id and the shard.
//!
//! Every call has a deadline (openraft's per-RPC time to live). A peer that refuses connections
//! is reported unreachable, and openraft waits out [`PeerConn::backoff`] (exponential, 50 ms to
//! 1 s) before trying it again; other failures are retried by openraft's replication at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blockdb_proto::peer::v1 as pb;
use blockdb_proto::peer::v1::peer_client::PeerClient;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};
use tonic::transport::{Channel, Endpoint};

use blockdb_verifier::ShardId;

use crate::raft::wire;
use crate::raft::{NodeId, TypeConfig};

/// Largest peer message sent or received: a full AppendEntries of large entries.
pub const PEER_MESSAGE_BYTES_MAX: usize = 512 << 20;
/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The channels to this node's peers, by peer address.
#[derive(Clone)]
pub struct Peers {
    inner: Arc<Inner>,
}

struct Inner {
    cluster_id: String,
    me: NodeId,
    source_ip: Option<std::net::IpAddr>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("cluster_id", &self.inner.cluster_id)
            .field("me", &self.inner.me)
            .finish_non_exhaustive()
    }
}

/// Why a peer could not be called.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The address is not `host:port`.
    #[error("peer address {0:?} is not host:port")]
    BadAddress(String),
    /// The call did not finish in time; the peer may or may not have acted on it.
    #[error("peer {addr} did not answer within {ms} ms")]
    Timeout {
        /// The peer's address.
        addr: String,
        /// The deadline.
        ms: u128,
    },
    /// The peer could not be connected to: it did not receive the request.
    #[error("peer {addr} is unreachable: {}", describe(status))]
    Unreachable {
        /// The peer's address.
        addr: String,
        /// What the transport said.
        status: tonic::Status,
    },
    /// The call failed after it may have been sent, or the peer answered with an error.
    #[error("peer {addr}: {}", describe(status))]
    Failed {
        /// The peer's address.
        addr: String,
        /// The status.
        status: tonic::Status,
    },
}

/// A status in one line: its message and the innermost cause, if any.
fn describe(status: &tonic::Status) -> String {
    let mut innermost = None;
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = source {
        innermost = Some(e);
        source = e.source();
    }
    match innermost {
        Some(e) if e.to_string() != status.message() => format!("{} ({e})", status.message()),
        _ => status.message().to_owned(),
    }
}

impl PeerError {
    /// Whether the peer certainly did not receive the request.
    pub fn not_sent(&self) -> bool {
        matches!(self, PeerError::BadAddress(_) | PeerError::Unreachable { .. })
    }
}

impl Peers {
    /// Channels of node `me` of cluster `cluster_id`.
    pub fn new(cluster_id: impl Into<String>, me: NodeId) -> Peers {
        Peers::with_source_ip(cluster_id, me, None)
    }

    /// As [`Peers::new`], with every connection made from `source_ip` (so that a proxy in
    /// between can tell the nodes apart by their source address; see the chaos harness).
    pub fn with_source_ip(
        cluster_id: impl Into<String>,
        me: NodeId,
        source_ip: Option<std::net::IpAddr>,
    ) -> Peers {
        Peers {
            inner: Arc::new(Inner {
                cluster_id: cluster_id.into(),
                me,
                source_ip,
                channels: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.inner.me
    }

    /// The header of a request about `shard`.
    pub fn header(&self, shard: ShardId) -> pb::Header {
        pb::Header {
            cluster_id: self.inner.cluster_id.clone(),
            shard: shard.0,
            from: self.inner.me,
        }
    }

    /// A client of the peer at `addr` (`host:port`), on the peer's shared channel.
    ///
    /// # Errors
    /// [`PeerError::BadAddress`].
    pub fn client(&self, addr: &str) -> Result<PeerClient<Channel>, PeerError> {
        let mut channels = self.inner.channels.lock().expect("no panic while holding the lock");
        let channel = match channels.get(addr) {
            Some(c) => c.clone(),
            None => {
                let c = endpoint(addr)?.local_address(self.inner.source_ip).connect_lazy();
                channels.insert(addr.to_owned(), c.clone());
                c
            }
        };
        Ok(PeerClient::new(channel)
            .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX))
    }

    /// Runs `call` on the client of `addr` with a deadline, sorting its failures.
    ///
    /// # Errors
    /// [`PeerError`].
    pub async fn call<T, F, Fut>(
        &self,
        addr: &str,
        deadline: Duration,
        call: F,
    ) -> Result<T, PeerError>
    where
        F: FnOnce(PeerClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = self.client(addr)?;
        match tokio::time::timeout(deadline, call(client)).await {
            Err(_) => Err(PeerError::Timeout { addr: addr.to_owned(), ms: deadline.as_millis() }),
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) if refused(&status) => {
                Err(PeerError::Unreachable { addr: addr.to_owned(), status })
            }
            Ok(Err(status)) => Err(PeerError::Failed { addr: addr.to_owned(), status }),
        }
    }
}

/// A gRPC endpoint for a peer address.
///
/// # Errors
/// [`PeerError::BadAddress`] unless `addr` is `host:port`.
pub fn endpoint(addr: &str) -> Result<Endpoint, PeerError> {
    let bad = || PeerError::BadAddress(addr.to_owned());
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() || addr.contains('/') {
        return Err(bad());
    }
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|_| bad())?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5)))
}

/// Whether a failed call never reached the peer: its connection was refused or timed out.
fn refused(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            )
        {
            return true;
        }
        if e.to_string() == "tcp connect error" {
            // hyper's connector wraps the OS error of a failed connect in this.
            return true;
        }
        source = e.source();
    }
    false
}

/// The network of one shard's Raft group.
#[derive(Debug, Clone)]
pub struct ShardNetwork {
    peers: Peers,
    shard: ShardId,
}

impl ShardNetwork {
    /// The network of `shard` over `peers`.
    pub fn new(peers: Peers, shard: ShardId) -> ShardNetwork {
        ShardNetwork { peers, shard }
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.peers.me()
    }
}

/// openraft's connection to one peer for one shard.
#[derive(Debug)]
pub struct PeerConn {
    peers: Peers,
    shard: ShardId,
    target: NodeId,
    addr: String,
    /// Whether the last call found the peer unreachable (logged once per outage).
    down: bool,
}

impl RaftNetworkFactory<TypeConfig> for ShardNetwork {
    type Network = PeerConn;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerConn {
        PeerConn {
            peers: self.peers.clone(),
            shard: self.shard,
            target,
            addr: node.addr.clone(),
            down: false,
        }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl PeerConn {
    /// Logs the start and end of an outage of the peer, once each.
    fn note<T>(&mut self, r: &Result<T, PeerError>) {
        match r {
            Err(e) if e.not_sent() && !self.down => {
                self.down = true;
                tracing::warn!(shard = self.shard.0, peer = self.target, addr = self.addr, error = %e,
                    "peer unreachable; retrying with backoff");
            }
            Ok(_) if self.down => {
                self.down = false;
                tracing::info!(shard = self.shard.0, peer = self.target, "peer reachable again");
            }
            _ => {}
        }
    }

    fn rpc_error<E: std::error::Error>(&self, e: PeerError, action: RPCTypes) -> RpcErr<E> {
        match e {
            PeerError::Timeout { ms, .. } => RPCError::Timeout(Timeout {
                action,
                id: self.peers.me(),
                target: self.target,
                timeout: Duration::from_millis(ms as u64),
            }),
            e if e.not_sent() => RPCError::Unreachable(Unreachable::new(&e)),
            e => RPCError::Network(NetworkError::new(&e)),
        }
    }

    fn wire_error<E: std::error::Error>(&self, e: &wire::WireError) -> RpcErr<E> {
        RPCError::Network(NetworkError::new(e))
    }

    #[expect(clippy::result_large_err, reason = "openraft's network trait errors are this type")]
    fn remote<T, E: std::error::Error>(
        &self,
        r: Result<T, RaftError<NodeId, E>>,
    ) -> Result<T, RpcErr<E>> {
        r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerConn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let request = wire::append_request_to(self.peers.header(self.shard), &rpc);
        let answer =
            self.peers
                .call(&self.addr, option.hard_ttl(), |mut c| async move {
                    c.append_entries(request).await
                })
                .await
                .map_err(|e| self.rpc_error(e, RPCTypes::AppendEntries))?;
        let result = wire::append_response_from(&answer).map_err(|e| self.wire_error(&e))?;
        self.remote(result)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        let request = wire::snapshot_request_to(self.peers.header(self.shard), &rpc);
        let answer = self
            .peers
            .call(&self.addr, option.hard_ttl(), |mut c| async move {
                c.install_snapshot(request).await
            })
            .await;
        self.note(&answer);
        let answer = answer.map_err(|e| self.rpc_error(e, RPCTypes::InstallSnapshot))?;
        let result = wire::snapshot_response_from(&answer).map_err(|e| self.wire_error(&e))?;
        self.remote(result)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr> {
        let request = wire::vote_request_to(self.peers.header(self.shard), &rpc);
        let answer = self
            .peers
            .call(&self.addr, option.hard_ttl(), |mut c| async move { c.vote(request).await })
            .await;
        self.note(&answer);
        let answer = answer.map_err(|e| self.rpc_error(e, RPCTypes::Vote))?;
        let result = wire::vote_response_from(&answer).map_err(|e| self.wire_error(&e))?;
        self.remote(result)
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(
            (0..)
                .map(|n: u32| Duration::from_millis(50u64 << n.min(4)).min(Duration::from_secs(1))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_must_be_host_and_port() {
        for good in ["127.0.0.1:7071", "localhost:1", "[::1]:7071", "node-2.internal:7071"] {
            assert!(endpoint(good).is_ok(), "{good}");
        }
        for bad in
            ["", "127.0.0.1", ":7071", "127.0.0.1:x", "127.0.0.1:70000", "http://a:1", "a:1/b"]
        {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_grows_to_a_second() {
        let conn = PeerConn {
            peers: Peers::new("c", 1),
            shard: ShardId(0),
            target: 2,
            addr: "127.0.0.1:1".into(),
            down: false,
        };
        let waits: Vec<Duration> = conn.backoff().take(7).collect();
        assert_eq!(waits[0], Duration::from_millis(50));
        assert_eq!(waits[1], Duration::from_millis(100));
        assert_eq!(waits[6], Duration::from_millis(800));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn connections_come_from_the_source_ip_given() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let source: std::net::IpAddr = "127.0.0.7".parse().unwrap();
        let peers = Peers::with_source_ip("c", 1, Some(source));
        let call = tokio::spawn(async move {
            let _ = peers
                .call(&addr, Duration::from_secs(1), |mut c| async move {
                    c.identity(pb::IdentityRequest {}).await
                })
                .await;
        });
        let (_, from) = listener.accept().await.unwrap();
        assert_eq!(from.ip(), source);
        call.abort();
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_not_unknown() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let peers = Peers::new("c", 1);
        let err = peers
            .call(&addr, Duration::from_secs(2), |mut c| async move {
                c.identity(pb::IdentityRequest {}).await
            })
            .await
            .unwrap_err();
        assert!(err.not_sent(), "{err:?}");
    }
}
