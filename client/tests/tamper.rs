//! A proxy between the client and a real node that tampers with answers: a flipped bit in a
//! value, a wrong inclusion proof, a checkpoint signed by an unknown key, a checkpoint of a
//! forked history signed with the node's own key, and a rollback to a smaller tree; and in
//! transactions (one-shot and interactive), a receipt with a flipped value bit, a forked
//! checkpoint or a write left out, a write answered at another version, and a read answered with
//! another value. Each is caught as a verification error and nothing from the answer reaches the
//! caller.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use blockdb_client::{Client, ClientConfig, ClientError, Consistency, MemoryStore, TxnOp};
use blockdb_proto::v1 as pb;
use blockdb_proto::v1::ledger_client::LedgerClient;
use blockdb_proto::v1::ledger_server::{Ledger, LedgerServer};
use blockdb_server::ledger::NodeKey;
use blockdb_verifier::{NoteSigner, SignedCheckpoint};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Honest,
    FlipValueBit,
    WrongInclusionProof,
    UnknownKey,
    Fork,
    Rollback,
    /// Transactions: the receipt's last write bundle is left out.
    DropReceiptWrite,
    /// Transactions: the first write is answered one version later.
    WrongWriteVersion,
    /// Transactions: the first read is answered with another value.
    WrongReadValue,
    /// Batches: the answers of the first two calls change places.
    SwapBatchAnswers,
}

struct Tamper {
    upstream: LedgerClient<Channel>,
    mode: Arc<Mutex<Mode>>,
    node_key: NodeKey,
    stranger: NoteSigner,
    /// The first checkpoint text the proxy saw, for rollbacks.
    oldest: Arc<Mutex<Option<String>>>,
}

impl Tamper {
    fn mode(&self) -> Mode {
        *self.mode.lock().expect("lock")
    }

    fn remember(&self, checkpoint: &str) {
        self.oldest.lock().expect("lock").get_or_insert_with(|| checkpoint.to_owned());
    }

    /// The checkpoint as this mode shows it.
    fn checkpoint(&self, text: &str) -> String {
        self.remember(text);
        let signed = SignedCheckpoint::parse(text.as_bytes()).expect("the node's checkpoint");
        let mut cp = signed.checkpoint().clone();
        match self.mode() {
            Mode::UnknownKey => cp.sign(&[&self.stranger]).expect("sign").to_text(),
            // Same size, another root, signed with the node's real key: a forked history.
            Mode::Fork => {
                cp.root.0[0] ^= 1;
                self.node_key.sign(&cp).to_text()
            }
            Mode::Rollback => self.oldest.lock().expect("lock").clone().expect("seen"),
            _ => text.to_owned(),
        }
    }

    fn bundle(&self, mut b: pb::ProofBundle) -> pb::ProofBundle {
        match self.mode() {
            Mode::FlipValueBit => {
                if let Some(v) = b.record.as_mut().and_then(|r| r.value.as_mut()) {
                    v[0] ^= 0x01;
                }
            }
            Mode::WrongInclusionProof => b.inclusion_proof[0][5] ^= 0x80,
            Mode::UnknownKey | Mode::Fork => {
                b.checkpoint = self.checkpoint(&b.checkpoint);
                b.consistency_proof = None;
            }
            Mode::Honest
            | Mode::Rollback
            | Mode::DropReceiptWrite
            | Mode::WrongWriteVersion
            | Mode::WrongReadValue
            | Mode::SwapBatchAnswers => self.remember(&b.checkpoint),
        }
        b
    }

    fn transaction(&self, mut t: pb::TransactResponse) -> pb::TransactResponse {
        if let Some(receipt) = t.receipt.as_mut() {
            receipt.writes =
                std::mem::take(&mut receipt.writes).into_iter().map(|b| self.bundle(b)).collect();
            if self.mode() == Mode::DropReceiptWrite {
                receipt.writes.pop();
            }
        }
        match self.mode() {
            Mode::WrongWriteVersion => t.writes[0].version += 1,
            Mode::WrongReadValue => {
                if let Some(read) = t.reads.first_mut() {
                    read.value = Some(b"forged".to_vec());
                }
            }
            _ => {}
        }
        t
    }
}

#[tonic::async_trait]
impl Ledger for Tamper {
    type WatchStream = tonic::Streaming<pb::WatchEvent>;

    async fn insert(
        &self,
        r: Request<pb::InsertRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        self.upstream.clone().insert(r.into_inner()).await
    }
    async fn append(
        &self,
        r: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        self.upstream.clone().append(r.into_inner()).await
    }
    async fn transact(
        &self,
        r: Request<pb::TransactRequest>,
    ) -> Result<Response<pb::TransactResponse>, Status> {
        let t = self.upstream.clone().transact(r.into_inner()).await?.into_inner();
        Ok(Response::new(self.transaction(t)))
    }
    async fn txn_begin(
        &self,
        r: Request<pb::TxnBeginRequest>,
    ) -> Result<Response<pb::TxnBeginResponse>, Status> {
        self.upstream.clone().txn_begin(r.into_inner()).await
    }
    async fn txn_read(
        &self,
        r: Request<pb::TxnReadRequest>,
    ) -> Result<Response<pb::TxnReadResult>, Status> {
        let mut read = self.upstream.clone().txn_read(r.into_inner()).await?.into_inner();
        if self.mode() == Mode::WrongReadValue {
            read.value = Some(b"forged".to_vec());
        }
        Ok(Response::new(read))
    }
    async fn txn_write(
        &self,
        r: Request<pb::TxnWriteRequest>,
    ) -> Result<Response<pb::TxnWriteResponse>, Status> {
        self.upstream.clone().txn_write(r.into_inner()).await
    }
    async fn txn_commit(
        &self,
        r: Request<pb::TxnCommitRequest>,
    ) -> Result<Response<pb::TransactResponse>, Status> {
        let t = self.upstream.clone().txn_commit(r.into_inner()).await?.into_inner();
        Ok(Response::new(self.transaction(t)))
    }
    async fn txn_abort(
        &self,
        r: Request<pb::TxnAbortRequest>,
    ) -> Result<Response<pb::TxnAbortResponse>, Status> {
        self.upstream.clone().txn_abort(r.into_inner()).await
    }
    async fn batch(
        &self,
        r: Request<pb::BatchRequest>,
    ) -> Result<Response<pb::BatchResponse>, Status> {
        use pb::batch_result::Result as Answer;
        let mut b = self.upstream.clone().batch(r.into_inner()).await?.into_inner();
        for result in &mut b.results {
            if let Some(Answer::Bundle(bundle)) = &mut result.result {
                *bundle = self.bundle(std::mem::take(bundle));
            }
        }
        if self.mode() == Mode::SwapBatchAnswers && b.results.len() >= 2 {
            b.results.swap(0, 1);
        }
        Ok(Response::new(b))
    }
    async fn get(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::ProofBundle>, Status> {
        let b = self.upstream.clone().get(r.into_inner()).await?.into_inner();
        Ok(Response::new(self.bundle(b)))
    }
    async fn history(
        &self,
        r: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let mut h = self.upstream.clone().history(r.into_inner()).await?.into_inner();
        h.bundles = h.bundles.into_iter().map(|b| self.bundle(b)).collect();
        Ok(Response::new(h))
    }
    async fn scan(
        &self,
        r: Request<pb::ScanRequest>,
    ) -> Result<Response<pb::ScanResponse>, Status> {
        let mut s = self.upstream.clone().scan(r.into_inner()).await?.into_inner();
        s.bundles = s.bundles.into_iter().map(|b| self.bundle(b)).collect();
        Ok(Response::new(s))
    }
    async fn get_entry(
        &self,
        r: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::EntryResponse>, Status> {
        self.upstream.clone().get_entry(r.into_inner()).await
    }
    async fn get_checkpoint(
        &self,
        r: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::CheckpointResponse>, Status> {
        let mut c = self.upstream.clone().get_checkpoint(r.into_inner()).await?.into_inner();
        c.checkpoint = self.checkpoint(&c.checkpoint);
        Ok(Response::new(c))
    }
    async fn get_consistency(
        &self,
        r: Request<pb::GetConsistencyRequest>,
    ) -> Result<Response<pb::ConsistencyResponse>, Status> {
        self.upstream.clone().get_consistency(r.into_inner()).await
    }
    async fn get_block(
        &self,
        r: Request<pb::GetBlockRequest>,
    ) -> Result<Response<pb::BlockResponse>, Status> {
        self.upstream.clone().get_block(r.into_inner()).await
    }
    async fn watch(
        &self,
        r: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.upstream.clone().watch(r.into_inner()).await
    }
    async fn node_info(
        &self,
        r: Request<pb::NodeInfoRequest>,
    ) -> Result<Response<pb::NodeInfoResponse>, Status> {
        self.upstream.clone().node_info(r.into_inner()).await
    }
    async fn cluster_status(
        &self,
        r: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        self.upstream.clone().cluster_status(r.into_inner()).await
    }
    async fn add_member(
        &self,
        r: Request<pb::AddMemberRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        self.upstream.clone().add_member(r.into_inner()).await
    }
    async fn remove_member(
        &self,
        r: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        self.upstream.clone().remove_member(r.into_inner()).await
    }
}

async fn must_proxy(served: &common::Served, mode: Arc<Mutex<Mode>>) -> SocketAddr {
    let upstream = LedgerClient::connect(served.url()).await.expect("upstream");
    let node_key =
        NodeKey::load_or_create(&served.dir.path().join("node.key"), "blockdb-node-1", || {
            unreachable!("the node created its key")
        })
        .expect("the node's key");
    let stranger = NoteSigner::from_seed("blockdb-node-1", &[9; 32]).expect("signer");
    let tamper = Tamper { upstream, mode, node_key, stranger, oldest: Arc::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = tonic::service::Routes::new(LedgerServer::new(tamper)).into_axum_router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn must_be_verification(
    result: Result<impl std::fmt::Debug, ClientError>,
    what: &str,
) -> ClientError {
    match result {
        Err(e) if e.is_verification() => e,
        other => panic!("{what}: expected a verification error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_answers_are_caught() {
    let served = common::must_serve(1).await;
    let mode = Arc::new(Mutex::new(Mode::Honest));
    let proxy = must_proxy(&served, Arc::clone(&mode)).await;
    let config = ClientConfig::new(vec![format!("http://{proxy}")], served.policy());
    let client = Client::connect(config, Arc::new(MemoryStore::default())).await.expect("connect");
    let set = |m| *mode.lock().expect("lock") = m;

    // Honest: the client learns a first checkpoint, then a larger one.
    client.insert(b"alice", b"hello").await.expect("insert");
    client.get(b"alice", None, Consistency::Linearizable).await.expect("honest read");
    for i in 0..6u32 {
        client.insert(format!("k{i}").as_bytes(), b"v").await.expect("insert");
    }
    let trusted =
        client.get(b"k5", None, Consistency::Linearizable).await.expect("read").checkpoint;

    set(Mode::FlipValueBit);
    let e = must_be_verification(
        client.get(b"alice", None, Consistency::Linearizable).await,
        "flipped value",
    );
    println!("flipped value bit: {e}");

    set(Mode::WrongInclusionProof);
    let e =
        must_be_verification(client.get(b"k3", None, Consistency::Linearizable).await, "inclusion");
    println!("wrong inclusion proof: {e}");

    set(Mode::UnknownKey);
    let e =
        must_be_verification(client.checkpoint(blockdb_verifier::ShardId(0)).await, "unknown key");
    println!("unknown key: {e}");
    let e = must_be_verification(
        client.get(b"alice", None, Consistency::Linearizable).await,
        "unknown key",
    );
    println!("unknown key (bundle): {e}");

    set(Mode::Fork);
    let e = must_be_verification(client.checkpoint(blockdb_verifier::ShardId(0)).await, "fork");
    assert!(matches!(&e, ClientError::Verification(v) if v.is_fork()), "{e}");
    println!("forked checkpoint: {e}");
    // A bundle against the forked checkpoint: its proof cannot reach the forged root.
    must_be_verification(client.get(b"alice", None, Consistency::Linearizable).await, "fork");

    set(Mode::Rollback);
    let e = must_be_verification(client.checkpoint(blockdb_verifier::ShardId(0)).await, "rollback");
    assert!(
        matches!(&e, ClientError::Verification(blockdb_client::VerifyError::Rollback { .. })),
        "{e}"
    );
    println!("rollback: {e}");

    // None of it moved the trusted state; honest answers still verify.
    assert_eq!(client.trusted().await.get(&trusted.origin), Some(&trusted));
    set(Mode::Honest);
    client.get(b"alice", None, Consistency::Linearizable).await.expect("honest again");
    served.stop().await;
}

/// Runs calls `call(round, 0..32)` at once, round after round, until one of them fails
/// verification (the calls that queue while earlier messages are on their way go out together,
/// and the proxy swaps the first two answers of each message). A call that succeeds checks that
/// it was answered for its own key.
async fn must_catch_swapped_answers<F, Fut>(what: &str, call: F)
where
    F: Fn(usize, usize) -> Fut,
    Fut: Future<Output = Result<(), ClientError>> + Send + 'static,
{
    for round in 0..20 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..32 {
            tasks.spawn(call(round, i));
        }
        let mut caught = 0;
        while let Some(done) = tasks.join_next().await {
            match done.expect("task") {
                Ok(()) => {}
                Err(e) if e.is_verification() => caught += 1,
                Err(e) => panic!("{what}: {e}"),
            }
        }
        if caught > 0 {
            println!("{what}: {caught} swapped answers caught in round {round}");
            return;
        }
    }
    panic!("{what}: no batch of two calls or more in 20 rounds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_change_places_in_a_batch_are_caught() {
    let served = common::must_serve(1).await;
    let mode = Arc::new(Mutex::new(Mode::Honest));
    let proxy = must_proxy(&served, Arc::clone(&mode)).await;
    let config = ClientConfig::new(vec![format!("http://{proxy}")], served.policy());
    let client =
        Arc::new(Client::connect(config, Arc::new(MemoryStore::default())).await.expect("connect"));
    for i in 0..32 {
        client.insert(format!("r/{i}").as_bytes(), b"v").await.expect("honest insert");
    }
    *mode.lock().expect("lock") = Mode::SwapBatchAnswers;

    // Writes: a receipt for another key is caught.
    let c = Arc::clone(&client);
    must_catch_swapped_answers("insert", move |round, i| {
        let c = Arc::clone(&c);
        async move {
            let key = format!("w/{round}/{i}").into_bytes();
            c.insert(&key, b"v").await.map(drop)
        }
    })
    .await;
    // Reads: a bundle of another key is caught.
    let c = Arc::clone(&client);
    must_catch_swapped_answers("get", move |_, i| {
        let c = Arc::clone(&c);
        async move {
            let key = format!("r/{i}").into_bytes();
            let read = c.get(&key, None, Consistency::Linearizable).await?;
            assert_eq!(read.record.key, key, "get: another key's record");
            Ok(())
        }
    })
    .await;
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_transaction_answers_are_caught() {
    let served = common::must_serve(2).await;
    let mode = Arc::new(Mutex::new(Mode::Honest));
    let proxy = must_proxy(&served, Arc::clone(&mode)).await;
    let config = ClientConfig::new(vec![format!("http://{proxy}")], served.policy());
    let client = Client::connect(config, Arc::new(MemoryStore::default())).await.expect("connect");
    let set = |m| *mode.lock().expect("lock") = m;
    let a = b"alice".to_vec();
    let b = (0..)
        .map(|n| format!("bob{n}").into_bytes())
        .find(|k| client.shard_of(k) != client.shard_of(&a))
        .expect("a key in the other shard");

    // Honest: both keys written, across the two shards, and read back.
    let ops = [TxnOp::insert(a.clone(), "a1"), TxnOp::insert(b.clone(), "b1")];
    client.transact(&ops).await.expect("honest transaction");
    let reads = [TxnOp::read(a.clone()), TxnOp::read(b.clone())];
    client.transact(&reads).await.expect("honest reads");
    let trusted = client.trusted().await;

    // Each of these transactions commits on the node; the client refuses the tampered answer.
    let both = |v: &str| [TxnOp::append(a.clone(), v, None), TxnOp::append(b.clone(), v, None)];
    for (m, what) in [
        (Mode::FlipValueBit, "a flipped value bit in the receipt"),
        (Mode::Fork, "a receipt against a forked checkpoint"),
        (Mode::UnknownKey, "a receipt signed by an unknown key"),
        (Mode::DropReceiptWrite, "a write left out of the receipt"),
        (Mode::WrongWriteVersion, "a write answered at another version"),
    ] {
        set(m);
        let e = must_be_verification(client.transact(&both(what)).await, what);
        println!("{what}: {e}");
    }
    assert_eq!(client.trusted().await, trusted, "no refused receipt moved the trusted state");
    set(Mode::WrongReadValue);
    let e = must_be_verification(client.transact(&reads).await, "a forged read");
    println!("a forged read: {e}");

    // Honest answers still verify.
    set(Mode::Honest);
    let done = client.transact(&reads).await.expect("honest again");
    let versions: Vec<u64> = done.reads.iter().map(|r| r.version).collect();
    assert_eq!(versions, [6, 6], "every tampered transaction committed all the same");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_interactive_transaction_answers_are_caught() {
    let served = common::must_serve(2).await;
    let mode = Arc::new(Mutex::new(Mode::Honest));
    let proxy = must_proxy(&served, Arc::clone(&mode)).await;
    let config = ClientConfig::new(vec![format!("http://{proxy}")], served.policy());
    let client = Client::connect(config, Arc::new(MemoryStore::default())).await.expect("connect");
    let set = |m| *mode.lock().expect("lock") = m;
    let a = b"alice".to_vec();
    let b = (0..)
        .map(|n| format!("bob{n}").into_bytes())
        .find(|k| client.shard_of(k) != client.shard_of(&a))
        .expect("a key in the other shard");

    // Honest: both keys written, across the two shards.
    let mut t = client.begin().await.expect("begin");
    t.insert(&a, b"a1").await.expect("insert a");
    t.insert(&b, b"b1").await.expect("insert b");
    t.commit().await.expect("honest commit");
    let trusted = client.trusted().await;

    // Each of these commits takes effect on the node; the client refuses the tampered answer,
    // through the same checks as a one-shot transaction's.
    for (m, what) in [
        (Mode::FlipValueBit, "a flipped value bit in the receipt"),
        (Mode::Fork, "a receipt against a forked checkpoint"),
        (Mode::UnknownKey, "a receipt signed by an unknown key"),
        (Mode::DropReceiptWrite, "a write left out of the receipt"),
        (Mode::WrongWriteVersion, "a write answered at another version"),
    ] {
        set(m);
        let mut t = client.begin().await.expect("begin");
        t.append(&a, what.as_bytes(), None).await.expect("append a");
        t.append(&b, what.as_bytes(), None).await.expect("append b");
        let e = must_be_verification(t.commit().await, what);
        println!("interactive, {what}: {e}");
    }
    assert_eq!(client.trusted().await, trusted, "no refused receipt moved the trusted state");

    // A read answered with another value than its record's is refused.
    set(Mode::WrongReadValue);
    let mut t = client.begin().await.expect("begin");
    let e = must_be_verification(t.read(&a).await, "a forged read");
    println!("interactive, a forged read: {e}");
    t.abort().await.expect("abort");

    // Honest answers still verify.
    set(Mode::Honest);
    let mut t = client.begin().await.expect("begin");
    for key in [&a, &b] {
        let read = t.read(key).await.expect("honest read");
        assert_eq!(read.version, 6, "every tampered transaction committed all the same");
    }
    t.abort().await.expect("abort");
    served.stop().await;
}
