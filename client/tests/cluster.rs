//! The client against a real three-node cluster served in-process: writes through one node and
//! verified reads through another, with a trust policy built from the cluster status; the status
//! itself (members, one leader per shard, replicas converging on one tree); and a fourth node
//! joining, becoming a voter of every shard, catching up, and leaving.

mod common;

use std::sync::Arc;
use std::time::Duration;

use blockdb_client::{
    Client, ClientConfig, ClientError, Consistency, MemoryStore, Role, ShardMembership, VerifyError,
};
use blockdb_verifier::{ShardId, TrustPolicy};
use common::{ServedCluster, must_serve_cluster};

/// Generous: elections and catch-up on two shared cores, in a debug build.
const CONVERGE: Duration = Duration::from_secs(60);

/// Writes `keys` keys through node `via` and returns how many landed in each shard.
async fn must_write(cluster: &ServedCluster, via: u64, prefix: &str, keys: u32) -> Vec<u64> {
    let client = cluster.client(via).await;
    let mut per_shard = vec![0; cluster.shards as usize];
    for i in 0..keys {
        let r = client
            .insert(format!("{prefix}{i}").as_bytes(), format!("value {i}").as_bytes())
            .await
            .expect("insert");
        per_shard[r.shard.0 as usize] += 1;
    }
    per_shard
}

fn voters_everywhere(shards: &[ShardMembership], expected: &[u64]) -> bool {
    shards.iter().all(|m| m.voters == expected && m.learners.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_one_node_verify_when_read_through_another() {
    let cluster = must_serve_cluster(3, 2).await;

    // The status lists three members with two shards each, one leader per shard, and the keys
    // the nodes really sign with.
    let status = cluster.must_converge(1, &[1, 2, 3], CONVERGE).await;
    assert_eq!((status.shards, status.answered_by), (2, 1));
    for n in &status.nodes {
        let served = cluster.node(n.node_id);
        assert_eq!(n.api_addr, served.addr.to_string());
        assert_eq!(n.peer_addr, cluster.peers[&n.node_id]);
        assert_eq!(n.verifier_key.as_ref(), Some(&served.key));
        assert_eq!(n.shards.iter().map(|s| s.shard).collect::<Vec<_>>(), [ShardId(0), ShardId(1)]);
    }
    let keys = status.verifier_keys();
    assert_eq!(keys.len(), 3, "each node has its own key");
    let policy = TrustPolicy::new(keys.clone(), 1).expect("policy");

    // Writes through node 1 (forwarded to each shard's leader) land in both shards.
    let per_shard = must_write(&cluster, 1, "k", 24).await;
    assert!(per_shard.iter().all(|&n| n > 0), "both shards written: {per_shard:?}");

    // Node 3 serves them with proofs under its own signature, which verify under the policy
    // built from the status.
    let config = ClientConfig::new(vec![cluster.node(3).url()], policy);
    let store = Arc::new(MemoryStore::default());
    let reader = Client::connect(config, store).await.expect("connect to node 3");
    for i in 0..24 {
        let key = format!("k{i}");
        let read = reader
            .get(key.as_bytes(), None, Consistency::Linearizable)
            .await
            .unwrap_or_else(|e| panic!("read {key} through node 3: {e}"));
        assert_eq!(read.record.value.as_deref(), Some(format!("value {i}").as_bytes()));
        assert_eq!(read.record.version, 1);
    }
    let stale = cluster.client(2).await.get(b"k0", None, Consistency::Stale).await;
    assert_eq!(stale.expect("a stale read through node 2").record.version, 1);

    // Node 1's key alone does not cover what node 3 signs: the policy needs every member.
    let only_node_1 = TrustPolicy::new(vec![cluster.node(1).key.clone()], 1).expect("policy");
    let config = ClientConfig::new(vec![cluster.node(3).url()], only_node_1);
    let narrow = Client::connect(config, Arc::new(MemoryStore::default())).await;
    let narrow = narrow.expect("connecting verifies nothing");
    match narrow.get(b"k0", None, Consistency::Linearizable).await {
        Err(ClientError::Verification(VerifyError::Bundle(_) | VerifyError::Policy(_))) => {}
        other => panic!("expected a signature the policy does not trust, got {other:?}"),
    }

    // Every replica ends at the same tree per shard: the one the reader verified, holding each
    // shard's writes.
    let status = cluster.must_converge(2, &[1, 2, 3], CONVERGE).await;
    for shard in (0..2).map(ShardId) {
        let verified = reader.checkpoint(shard).await.expect("a verified checkpoint");
        assert_eq!(verified.size.0, per_shard[shard.0 as usize]);
        for n in &status.nodes {
            let s = n.shard(shard).expect("reported");
            assert_eq!((s.tree_size, s.root), (verified.size, verified.root), "node {}", n.node_id);
            assert!(s.applied_index.is_some() && s.committed_index.is_some());
        }
    }
    drop((reader, narrow));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_catches_up_and_leaves() {
    let mut cluster = must_serve_cluster(3, 2).await;
    cluster.must_converge(1, &[1, 2, 3], CONVERGE).await;
    let before = must_write(&cluster, 2, "before-", 30).await;

    // Node 4 starts, joining; it is no member until it is added.
    let addr = cluster.must_join(4).await;
    let admin = cluster.admin(1);
    let status = admin.cluster_status().await.expect("status");
    assert!(status.node(4).is_none(), "not a member before it is added: {status:#?}");

    // Added, it is a voter of every shard, follows each shard's leader and has caught up.
    let client = cluster.client(1).await;
    let shards = client.add_member(4, &addr).await.expect("add node 4");
    assert_eq!(shards.len(), 2);
    assert!(voters_everywhere(&shards, &[1, 2, 3, 4]), "{shards:?}");
    let status = cluster.must_converge(4, &[1, 2, 3, 4], CONVERGE).await;
    let four = status.node(4).expect("node 4 listed");
    assert_eq!(four.peer_addr, addr);
    assert_eq!(four.verifier_key.as_ref(), Some(&cluster.node(4).key));
    for (shard, &written) in before.iter().enumerate() {
        let s = four.shard(ShardId(shard as u32)).expect("reported");
        assert!(matches!(s.role, Role::Follower | Role::Leader), "{:?}", s.role);
        assert_eq!(s.tree_size.0, written, "node 4 holds shard {shard}'s writes");
    }

    // Adding it again changes nothing.
    let again = admin.add_member(4, &addr).await.expect("add node 4 again");
    assert_eq!(again, shards);

    // It serves verified reads of what was written before it joined, and of what comes after.
    let late = must_write(&cluster, 3, "after-", 4).await;
    assert_eq!(late.iter().sum::<u64>(), 4);
    let reader = cluster.client(4).await;
    for key in ["before-0", "before-29", "after-3"] {
        let read = reader.get(key.as_bytes(), None, Consistency::Linearizable).await;
        assert_eq!(read.unwrap_or_else(|e| panic!("{key}: {e}")).record.key, key.as_bytes());
    }
    drop(reader);

    // Removed, it is in no shard and no longer listed; removing it again is refused.
    let shards = admin.remove_member(4).await.expect("remove node 4");
    assert!(voters_everywhere(&shards, &[1, 2, 3]), "{shards:?}");
    cluster.must_converge(1, &[1, 2, 3], CONVERGE).await;
    let e = client.remove_member(4).await.expect_err("no longer a member");
    assert_eq!(e.code(), Some("not_found"), "{e}");
    let e = client.add_member(0, &addr).await.expect_err("node id 0");
    assert_eq!(e.code(), Some("invalid_argument"), "{e}");

    // The three go on.
    let after = must_write(&cluster, 1, "last-", 2).await;
    assert_eq!(after.iter().sum::<u64>(), 2);
    drop(client);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_transaction_stays_on_the_node_that_began_it() {
    let mut cluster = must_serve_cluster(3, 2).await;
    cluster.must_converge(1, &[1, 2, 3], CONVERGE).await;
    let endpoints = [1, 2, 3].map(|id| cluster.node(id).url()).to_vec();
    let config = ClientConfig::new(endpoints, cluster.policy());
    let client = Client::connect(config, Arc::new(MemoryStore::default())).await.expect("connect");

    // Phase 1: begun on node 1, the first endpoint, which serves its calls.
    let mut t = client.begin().await.expect("begin");
    t.insert(b"pinned", b"v").await.expect("insert");
    assert_eq!(t.read(b"other").await.expect("read").version, 0);

    // Phase 2: node 1 stops. The transaction's calls are not sent to the other nodes, which
    // would answer that they have no such transaction: they fail as unavailable.
    cluster.nodes.remove(&1).expect("node 1 runs").stop().await;
    let e = t.read(b"another").await.expect_err("node 1 is gone");
    assert!(matches!(e, ClientError::Unavailable(_)), "{e}");
    let e = t.commit().await.expect_err("node 1 is gone");
    assert!(matches!(e, ClientError::Unavailable(_)), "{e}");

    // Phase 3: a new transaction begins on another node.
    let t = client.begin().await.expect("begin on node 2");
    t.abort().await.expect("abort");
    drop(client);
    cluster.stop().await;
}
