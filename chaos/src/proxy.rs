//! The network between the nodes, through fault-injecting TCP proxies: no root needed.
//!
//! Every node's peer address in the cluster's member list is a proxy run by the harness, which
//! forwards to the node's real peer listener. Each node makes its peer connections from its own
//! loopback address (`blockdb serve --peer-source-ip 127.0.0.<10+id>`), so the proxy in front of
//! node `to` knows which node `from` a connection comes from, and so which directed link
//! `from → to` it carries. Faults are set per directed link:
//!
//! - **cut**: new connections on the link are refused and open ones are closed — `from` can no
//!   longer send to `to` (requests, and the answers to them, ride `from`'s connection; `to`'s own
//!   requests to `from` ride another link);
//! - **delay**: every chunk forwarded on the link, either way, waits this long first;
//! - **stall**: open connections stop forwarding without closing (a peer that hangs), and new
//!   ones are accepted but stall too.
//!
//! [`Links`] is the nemesis's view of the network ([`crate::nemesis::Network`]); healing resets
//! every link. A kernel-level backend (network namespaces and nftables) would implement the same
//! trait.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A node id.
pub type NodeId = u64;

/// The loopback address node `id`'s peer connections come from.
pub fn source_ip(id: NodeId) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + id as u8))
}

/// The node a source address belongs to.
pub fn node_of(ip: IpAddr) -> Option<NodeId> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[..3] == [127, 0, 0] && v4.octets()[3] > 10 => {
            Some(u64::from(v4.octets()[3] - 10))
        }
        _ => None,
    }
}

/// The fault state of one directed link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkState {
    /// No traffic at all.
    pub cut: bool,
    /// Traffic held without closing.
    pub stalled: bool,
    /// Added latency per forwarded chunk.
    pub delay: Duration,
}

/// The fault state of every directed link, shared by the proxies; changes reach open
/// connections at once.
#[derive(Debug, Clone, Default)]
pub struct Links {
    inner: Arc<Mutex<BTreeMap<(NodeId, NodeId), LinkState>>>,
    /// Bumped on every change, so connections re-read their link's state.
    version: Arc<watch::Sender<u64>>,
}

impl Links {
    /// Every link healthy.
    pub fn new() -> Links {
        Links { inner: Arc::default(), version: Arc::new(watch::channel(0).0) }
    }

    /// The state of `from → to`.
    pub fn get(&self, from: NodeId, to: NodeId) -> LinkState {
        self.inner
            .lock()
            .expect("no panic holding the lock")
            .get(&(from, to))
            .copied()
            .unwrap_or_default()
    }

    /// Changes `from → to` with `f`.
    pub fn update(&self, from: NodeId, to: NodeId, f: impl FnOnce(&mut LinkState)) {
        {
            let mut links = self.inner.lock().expect("no panic holding the lock");
            let state = links.entry((from, to)).or_default();
            f(state);
        }
        self.version.send_modify(|v| *v += 1);
    }

    /// Every link healthy again.
    pub fn heal_all(&self) {
        self.inner.lock().expect("no panic holding the lock").clear();
        self.version.send_modify(|v| *v += 1);
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

/// A proxy in front of one node's peer listener.
#[derive(Debug)]
pub struct Proxy {
    /// Where the other nodes dial this node (the address in the member list).
    pub listen: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listens on `listen` and forwards to node `to`'s real peer address `upstream`, applying
    /// `links`.
    ///
    /// # Errors
    /// When `listen` cannot be bound.
    pub async fn start(
        listen: SocketAddr,
        to: NodeId,
        upstream: SocketAddr,
        links: Links,
    ) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let listen = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, peer)) = listener.accept().await else { continue };
                // A connection from an unknown address is not from a node; it gets node 0's
                // (healthy unless faulted) link.
                let from = node_of(peer.ip()).unwrap_or(0);
                let links = links.clone();
                tokio::spawn(async move {
                    let _ = forward(conn, from, to, upstream, links).await;
                });
            }
        });
        Ok(Proxy { listen, task })
    }
}

/// Forwards one connection on link `from → to` until either side closes or the link is cut.
async fn forward(
    mut down: TcpStream,
    from: NodeId,
    to: NodeId,
    upstream: SocketAddr,
    links: Links,
) -> std::io::Result<()> {
    let mut changes = links.changes();
    if links.get(from, to).cut {
        return Ok(()); // dropped: the dialer sees the connection close at once
    }
    let mut up = TcpStream::connect(upstream).await?;
    down.set_nodelay(true)?;
    up.set_nodelay(true)?;
    let (mut down_r, mut down_w) = down.split();
    let (mut up_r, mut up_w) = up.split();
    let mut down_buf = vec![0u8; 64 * 1024];
    let mut up_buf = vec![0u8; 64 * 1024];
    loop {
        let state = links.get(from, to);
        if state.cut {
            return Ok(());
        }
        if state.stalled {
            // Hold everything until the link changes.
            if changes.changed().await.is_err() {
                return Ok(());
            }
            continue;
        }
        let alive = tokio::select! {
            _ = changes.changed() => continue,
            n = down_r.read(&mut down_buf) => {
                pass(n?, &down_buf, &mut up_w, state.delay, || links.get(from, to).cut).await?
            }
            n = up_r.read(&mut up_buf) => {
                pass(n?, &up_buf, &mut down_w, state.delay, || links.get(from, to).cut).await?
            }
        };
        if !alive {
            return Ok(());
        }
    }
}

/// Passes the `n` bytes just read from one side to the other after `delay`; `false` when the
/// connection is over (the side closed, or the link was cut meanwhile).
async fn pass(
    n: usize,
    buf: &[u8],
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    delay: Duration,
    cut: impl Fn() -> bool,
) -> std::io::Result<bool> {
    if n == 0 {
        return Ok(false);
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if cut() {
        return Ok(false);
    }
    to.write_all(&buf[..n]).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 1024];
                    while let Ok(n) = c.read(&mut b).await {
                        if n == 0 || c.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn dial_from(node: NodeId, to: SocketAddr) -> std::io::Result<TcpStream> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source_ip(node), 0))?;
        socket.connect(to).await
    }

    async fn round_trip(c: &mut TcpStream) -> bool {
        if c.write_all(b"ping").await.is_err() {
            return false;
        }
        let mut b = [0u8; 4];
        matches!(
            tokio::time::timeout(Duration::from_millis(500), c.read_exact(&mut b)).await,
            Ok(Ok(_))
        ) && &b == b"ping"
    }

    #[test]
    fn source_addresses_name_nodes() {
        for id in 1..=9 {
            assert_eq!(node_of(source_ip(id)), Some(id));
        }
        assert_eq!(node_of("127.0.0.1".parse().unwrap()), None);
        assert_eq!(node_of("10.0.0.12".parse().unwrap()), None);
    }

    #[tokio::test]
    async fn a_cut_link_closes_its_connections_and_refuses_new_ones_others_go_on() {
        let upstream = echo_server().await;
        let links = Links::new();
        let proxy =
            Proxy::start("127.0.0.1:0".parse().unwrap(), 3, upstream, links.clone()).await.unwrap();
        let mut from1 = dial_from(1, proxy.listen).await.unwrap();
        let mut from2 = dial_from(2, proxy.listen).await.unwrap();
        assert!(round_trip(&mut from1).await && round_trip(&mut from2).await);

        links.update(1, 3, |l| l.cut = true);
        assert!(!round_trip(&mut from1).await, "the open connection of 1 → 3 still works");
        assert!(round_trip(&mut from2).await, "2 → 3 was cut too");
        let mut again = dial_from(1, proxy.listen).await.unwrap();
        assert!(!round_trip(&mut again).await, "a new connection of 1 → 3 works");

        links.heal_all();
        let mut healed = dial_from(1, proxy.listen).await.unwrap();
        assert!(round_trip(&mut healed).await);
    }

    #[tokio::test]
    async fn a_stalled_link_holds_traffic_until_it_heals_and_delay_delays() {
        let upstream = echo_server().await;
        let links = Links::new();
        let proxy =
            Proxy::start("127.0.0.1:0".parse().unwrap(), 3, upstream, links.clone()).await.unwrap();
        let mut c = dial_from(1, proxy.listen).await.unwrap();
        links.update(1, 3, |l| l.stalled = true);
        assert!(!round_trip(&mut c).await, "a stalled link answered");
        links.heal_all();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ping", "the held bytes arrive after healing");

        links.update(1, 3, |l| l.delay = Duration::from_millis(150));
        let t0 = std::time::Instant::now();
        assert!(round_trip(&mut c).await);
        assert!(t0.elapsed() >= Duration::from_millis(300), "{:?}", t0.elapsed());
    }
}
