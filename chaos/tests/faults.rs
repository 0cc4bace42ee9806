//! The harness's faults against a real cluster: a partition through the proxies isolates a
//! leader (the others elect a new one and take writes; the isolated one cannot), healing
//! reunites them; a paused node is passed over and catches up when resumed; a killed node
//! restarts with its data.

mod common;

use std::time::Duration;

use blockdb_chaos::cluster::{Cluster, ClusterSpec};
use blockdb_chaos::nemesis::{self, Network as _, Shape};
use blockdb_client::ClusterAdmin;
use rand::SeedableRng as _;

async fn must_start(nodes: u64, dir: &std::path::Path) -> Cluster {
    let spec = ClusterSpec {
        nodes,
        shards: 1,
        binary: common::blockdb_binary(),
        dir: dir.to_owned(),
        extra_args: vec!["--log-level".into(), "warn".into()],
        node_args: Default::default(),
        direct: false,
    };
    Cluster::start(spec).await.expect("the cluster starts")
}

/// Appends through `id` until one commits or `within` passes; whether one did.
async fn can_write(c: &Cluster, id: u64, key: &str, within: Duration) -> bool {
    let url = c.endpoint(id).expect("node");
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        let ok = tokio::time::timeout(Duration::from_secs(2), http_append(&url, key)).await;
        if matches!(ok, Ok(Ok(true))) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// One `POST /v1/append` with a short server-side wait; whether it committed.
async fn http_append(url: &str, key: &str) -> std::io::Result<bool> {
    use base64::Engine as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64.encode(key), b64.encode("v"));
    let req = format!(
        "POST /v1/append HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await?;
    Ok(answer.starts_with(b"HTTP/1.1 200"))
}

async fn leader_seen_by(c: &Cluster, id: u64) -> Option<u64> {
    let admin = ClusterAdmin::new(&[c.endpoint(id)?], Duration::from_secs(1)).ok()?;
    let status = admin.cluster_status().await.ok()?;
    status.node(id)?.shards.first()?.leader
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_loses_the_cluster_and_healing_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = must_start(3, dir.path()).await;
    let old = c.leader(0).await.expect("a leader");
    let others: Vec<u64> = c.ids().into_iter().filter(|i| *i != old).collect();

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let grudge = nemesis::grudge(Shape::Isolate(old), &c.ids(), &mut rng);
    nemesis::apply(c.links(), &grudge);
    // The majority elects a new leader and takes writes; the isolated node takes none.
    assert!(can_write(&c, others[0], "majority", Duration::from_secs(20)).await);
    let new = leader_seen_by(&c, others[0]).await.expect("the majority has a leader");
    assert_ne!(new, old);
    assert!(
        !can_write(&c, old, "minority", Duration::from_secs(3)).await,
        "the isolated node committed"
    );

    c.links().heal();
    assert!(can_write(&c, old, "healed", Duration::from_secs(20)).await);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_and_killed_nodes_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = must_start(3, dir.path()).await;
    let leader = c.leader(0).await.expect("a leader");
    let other = c.ids().into_iter().find(|i| *i != leader).unwrap();

    c.pause(leader).unwrap();
    assert!(can_write(&c, other, "while-paused", Duration::from_secs(20)).await);
    c.resume(leader).unwrap();
    assert!(can_write(&c, leader, "resumed", Duration::from_secs(20)).await);

    c.kill(other).await.unwrap();
    assert!(!c.is_running(other));
    assert!(can_write(&c, leader, "one-down", Duration::from_secs(20)).await);
    c.restart(other).unwrap();
    c.wait_ready(Duration::from_secs(30)).await.unwrap();
    assert!(can_write(&c, other, "restarted", Duration::from_secs(20)).await);
    c.stop().await;
}
