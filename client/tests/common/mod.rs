//! A real BlockDB node served in-process on a loopback port, for the client's tests.
#![allow(dead_code, reason = "each test file uses a different part of this module")]

use std::net::SocketAddr;
use std::sync::Arc;

use blockdb_client::{Client, ClientConfig, MemoryStore, TrustStore};
use blockdb_server::config::{LogFormat, ServeConfig};
use blockdb_server::node::NodeConfig;
use blockdb_server::storage::Options;
use blockdb_verifier::{TrustPolicy, VerifierKey};
use tokio::sync::oneshot;

#[derive(Debug)]
pub struct Served {
    pub addr: SocketAddr,
    pub key: VerifierKey,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Served {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn policy(&self) -> TrustPolicy {
        TrustPolicy::new(vec![self.key.clone()], 1).expect("policy")
    }

    pub async fn client(&self) -> Client {
        self.client_with(Arc::new(MemoryStore::default())).await
    }

    pub async fn client_with(&self, store: Arc<dyn TrustStore>) -> Client {
        let config = ClientConfig::new(vec![self.url()], self.policy());
        Client::connect(config, store).await.expect("connect")
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

/// Starts a node with `shards` shards in a temporary directory, with small storage-engine
/// limits (many flushes and compactions even for little data).
pub async fn must_serve(shards: u32) -> Served {
    must_serve_with(shards, Options::small_for_tests()).await
}

/// Starts a node with `shards` shards and these storage-engine options.
pub async fn must_serve_with(shards: u32, storage: Options) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = NodeConfig::new(dir.path());
    node.shards = Some(shards);
    node.storage = storage;
    let config = ServeConfig {
        node,
        listen: ([127, 0, 0, 1], 0).into(),
        peer_listen: None,
        log_format: LogFormat::Text,
        log_level: "warn".into(),
    };
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let on_ready = move |addr, node: &blockdb_server::node::Node| {
            let _ = ready_tx.send((addr, node.verifier_key().clone()));
        };
        blockdb_server::serve::serve(config, on_ready, async move {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    let (addr, key) = ready_rx.await.expect("the node starts");
    Served { addr, key, dir, stop: Some(stop), task: Some(task) }
}
