//! A node serving its gRPC router in-process on a loopback port, and helpers that check what
//! the generated clients get back: bundles and receipts verified with the verifier, errors with
//! their stable codes. Shared by the gRPC test files.
#![allow(dead_code, reason = "each test file uses a different part of this module")]

use std::sync::Arc;
use std::time::Duration;

use blockdb_proto::v1 as pb;
use blockdb_proto::v1::ledger_client::LedgerClient;
use blockdb_server::api::grpc::router;
use blockdb_server::node::{Node, NodeConfig};
use blockdb_server::storage::Options;
use blockdb_verifier::{
    Checkpoint, ConsistencyProof, ConsistencyStatus, Hash, Leaf, ProofBundle, Receipt, Record,
    ShardId, SignedCheckpoint, TreeSize, TrustPolicy, TxnId, verify_bundle,
};
use tonic::transport::Channel;
use tonic::{Code, Response, Status};

/// How long any one answer may take before a test fails (a deadline, not a sleep).
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A node serving its gRPC router on loopback, and a client connected to it.
pub struct Served {
    pub node: Arc<Node>,
    pub channel: Channel,
    pub client: LedgerClient<Channel>,
    pub policy: TrustPolicy,
    /// The node's data directory, deleted when dropped: keep `Served` whole while it runs.
    pub _dir: tempfile::TempDir,
}

/// Starts a node with `shards` shards and serves `wrap(router(node))`.
pub async fn must_serve_with(shards: u32, wrap: fn(axum::Router) -> axum::Router) -> Served {
    must_serve_configured(shards, |config| config, wrap).await
}

/// As [`must_serve_with`], with the node's configuration changed by `configure` first.
pub async fn must_serve_configured(
    shards: u32,
    configure: impl FnOnce(NodeConfig) -> NodeConfig,
    wrap: fn(axum::Router) -> axum::Router,
) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = configure(NodeConfig {
        storage: Options::small_for_tests(),
        shards: Some(shards),
        ..NodeConfig::new(dir.path())
    });
    let node = Arc::new(Node::start(config).await.expect("the node starts"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let app = wrap(router(Arc::clone(&node)));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let policy = TrustPolicy::new(vec![node.verifier_key().clone()], 1).expect("policy");
    let client = LedgerClient::new(channel.clone());
    Served { node, channel, client, policy, _dir: dir }
}

pub async fn must_serve() -> Served {
    must_serve_with(1, |r| r).await
}

pub fn must_hashes(hashes: &[Vec<u8>]) -> Vec<Hash> {
    hashes.iter().map(|h| Hash::from_slice(h).expect("every hash is 32 bytes")).collect()
}

pub fn must_consistency(p: &pb::ConsistencyProof) -> ConsistencyProof {
    ConsistencyProof {
        from_size: TreeSize(p.from_size),
        to_size: TreeSize(p.to_size),
        hashes: must_hashes(&p.hashes),
    }
}

pub fn must_checkpoint(text: &str) -> SignedCheckpoint {
    SignedCheckpoint::parse(text.as_bytes()).expect("a signed checkpoint")
}

/// The checkpoint of a signed note text that verifies under `policy`.
pub fn must_trusted(policy: &TrustPolicy, text: &str) -> Checkpoint {
    policy.verify(&must_checkpoint(text)).expect("the checkpoint verifies").checkpoint
}

/// The verifier's bundle for a protobuf bundle, checking the convenience fields on the way.
pub fn must_bundle(b: &pb::ProofBundle) -> ProofBundle {
    let record = b.record.as_ref().expect("a bundle has a record");
    let leaf = Leaf::decode(&b.leaf).expect("the leaf decodes");
    assert_eq!((leaf.shard.0, leaf.log_index.0), (b.shard, b.log_index));
    ProofBundle {
        record: Record {
            key: record.key.clone(),
            version: record.version,
            value: record.value.clone(),
        },
        leaf,
        inclusion_proof: must_hashes(&b.inclusion_proof),
        checkpoint: must_checkpoint(&b.checkpoint),
        consistency_proof: b.consistency_proof.as_ref().map(must_consistency),
    }
}

/// Verifies `b` (against `trusted` when given) and returns its record.
pub fn must_verify(
    policy: &TrustPolicy,
    b: &pb::ProofBundle,
    trusted: Option<&Checkpoint>,
) -> Record {
    let verified = verify_bundle(&must_bundle(b), policy, trusted).expect("the bundle verifies");
    if let Some(t) = trusted.filter(|t| t.size.0 > 0) {
        let want = if t.size == verified.checkpoint.checkpoint.size {
            ConsistencyStatus::SameTree
        } else {
            ConsistencyStatus::Proven { from: t.size }
        };
        assert_eq!(verified.consistency, want);
    }
    verified.record
}

/// Checks that `result` failed with `code` and the stable `error_code` in the metadata.
pub fn must_fail<T: std::fmt::Debug>(
    result: Result<Response<T>, Status>,
    code: Code,
    error_code: &str,
) -> Status {
    let status = result.expect_err("the request fails");
    assert_eq!(status.code(), code, "{status:?}");
    let got = status.metadata().get("blockdb-error-code").and_then(|v| v.to_str().ok());
    assert_eq!(got, Some(error_code), "{status:?}");
    status
}

pub async fn must_insert(
    c: &mut LedgerClient<Channel>,
    key: &[u8],
    value: &[u8],
) -> pb::WriteResponse {
    let req = pb::InsertRequest { key: key.to_vec(), value: value.to_vec() };
    c.insert(req).await.expect("insert").into_inner()
}

pub async fn must_append(
    c: &mut LedgerClient<Channel>,
    key: &[u8],
    value: &[u8],
) -> pb::WriteResponse {
    let req =
        pb::AppendRequest { key: key.to_vec(), value: value.to_vec(), expected_version: None };
    c.append(req).await.expect("append").into_inner()
}

pub async fn must_tree_size(c: &mut LedgerClient<Channel>) -> u64 {
    let req = pb::GetCheckpointRequest { shard: 0 };
    c.get_checkpoint(req).await.expect("checkpoint").into_inner().tree_size
}

pub fn get(key: &[u8]) -> pb::GetRequest {
    pb::GetRequest { key: key.to_vec(), ..pb::GetRequest::default() }
}

pub fn txn(ops: Vec<pb::txn_op::Op>) -> pb::TransactRequest {
    pb::TransactRequest { ops: ops.into_iter().map(|op| pb::TxnOp { op: Some(op) }).collect() }
}

pub fn t_read(key: &[u8]) -> pb::txn_op::Op {
    pb::txn_op::Op::Read(pb::TxnRead { key: key.to_vec() })
}

pub fn t_insert(key: &[u8], value: &[u8]) -> pb::txn_op::Op {
    pb::txn_op::Op::Insert(pb::TxnInsert { key: key.to_vec(), value: value.to_vec() })
}

pub fn t_append(key: &[u8], value: &[u8], expected_version: Option<u64>) -> pb::txn_op::Op {
    let (key, value) = (key.to_vec(), value.to_vec());
    pb::txn_op::Op::Append(pb::TxnAppend { key, value, expected_version })
}

pub fn t_check(key: &[u8], version: u64) -> pb::txn_op::Op {
    pb::txn_op::Op::Check(pb::TxnCheck { key: key.to_vec(), version })
}

/// The verifier's receipt for a protobuf one.
pub fn must_receipt(r: &pb::TxnReceipt) -> Receipt {
    Receipt {
        txn_id: TxnId(r.txn_id.as_slice().try_into().expect("a 16-byte transaction id")),
        coordinator: ShardId(r.coordinator),
        decision: must_bundle(r.decision.as_ref().expect("a decision bundle")),
        writes: r.writes.iter().map(must_bundle).collect(),
    }
}

/// The tree size of every shard, in shard order.
pub async fn must_tree_sizes(c: &mut LedgerClient<Channel>, shards: u32) -> Vec<u64> {
    let mut sizes = Vec::new();
    for shard in 0..shards {
        let req = pb::GetCheckpointRequest { shard };
        sizes.push(c.get_checkpoint(req).await.expect("checkpoint").into_inner().tree_size);
    }
    sizes
}

/// The first key `prefix<n>` in `shard` of 2.
pub fn key_in(shard: u32, prefix: &str) -> Vec<u8> {
    (0..)
        .map(|n| format!("{prefix}{n}").into_bytes())
        .find(|k| ShardId::for_key(k, 2) == Some(ShardId(shard)))
        .expect("some key hashes to every shard")
}
