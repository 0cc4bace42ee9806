//! Running a node: start it, serve the client address until a shutdown signal, stop cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use std::future::IntoFuture;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::api;
use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::node::{Node, StartError};

/// How long a shutdown waits for open connections (watch streams, slow clients).
pub const SHUTDOWN_GRACE_MS: u64 = 5_000;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The node did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The peer address could not be bound.
    #[error("peer address {addr}: {source}")]
    PeerListen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The client address could not be bound or served.
    #[error("client address {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Starts the node, binds the client address, calls `on_ready` with the bound address and the
/// node, serves until `shutdown` completes, then stops the node.
///
/// # Errors
/// [`ServeError`] when the node cannot start or the address cannot be served.
pub async fn serve(
    config: ServeConfig,
    on_ready: impl FnOnce(SocketAddr, &Node),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // Both addresses are bound before the node starts, so that the node knows them (and a port
    // 0 is resolved) and so that peers' first messages wait in the backlog, not bounce.
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: config.listen, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServeError::Listen { addr: config.listen, source })?;
    let mut node_config = config.node.clone();
    node_config.api_addr = Some(addr.to_string());
    let peer_listener = match config.peer_listen {
        None => None,
        Some(peer) => {
            let l = TcpListener::bind(peer)
                .await
                .map_err(|source| ServeError::PeerListen { addr: peer, source })?;
            let bound =
                l.local_addr().map_err(|source| ServeError::PeerListen { addr: peer, source })?;
            // A member list names this node's peer address as the others dial it.
            let advertised = node_config
                .initial_members
                .get(&node_config.node_id)
                .cloned()
                .unwrap_or_else(|| bound.to_string());
            node_config.peer_addr = Some(advertised);
            Some((l, bound))
        }
    };
    let node = Arc::new(Node::start(node_config).await?);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    if let Some((peer_listener, bound)) = peer_listener {
        let mut peer_stop = stopping.clone();
        let service = crate::node::peer_service::service(Arc::clone(&node));
        // TCP_NODELAY on every accepted peer connection, for the reason given below for client
        // connections. (tonic's `Server::tcp_nodelay` covers only listeners it binds itself.)
        let incoming =
            tonic::transport::server::TcpIncoming::from(peer_listener).with_nodelay(Some(true));
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = peer_stop.wait_for(|&s| s).await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(addr = %bound, error = %e, "the peer service stopped");
            }
        });
        tracing::info!(addr = %bound, "serving peers");
    }
    tokio::spawn(crate::txn::recovery::run(Arc::clone(&node), stopping.clone()));
    let metrics = Arc::new(Metrics::new());
    let grpc = api::grpc::router(Arc::clone(&node));
    let app = api::rest::router(Arc::clone(&node), metrics, grpc);
    on_ready(addr, &node);
    tracing::info!(%addr, "serving REST, gRPC and tlog-tiles");
    // Graceful shutdown waits for open connections; a watch stream never ends by itself, so the
    // wait is bounded.
    tokio::spawn(async move {
        shutdown.await;
        stop.send_replace(true);
    });
    let mut graceful = stopping.clone();
    // gRPC answers in several frames (headers, data, trailers); without TCP_NODELAY, Nagle's
    // algorithm holds the last of them for the client's delayed ACK, about 40 ms a call.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY on a client connection");
        }
    });
    let serving = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = graceful.wait_for(|&s| s).await;
        })
        .into_future();
    let mut stopping = stopping;
    let deadline = async {
        let _ = stopping.wait_for(|&s| s).await;
        tokio::time::sleep(Duration::from_millis(SHUTDOWN_GRACE_MS)).await;
    };
    let served = tokio::select! {
        served = serving => served,
        () = deadline => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE_MS} ms; closing them");
            Ok(())
        }
    };
    tracing::info!("shutting down");
    node.shutdown().await;
    served.map_err(|source| ServeError::Listen { addr, source })
}
