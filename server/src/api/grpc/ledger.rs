//! The `blockdb.v1.Ledger` service over [`Node`].
//!
//! Each RPC checks its request, asks the node for the shard's view (after a read barrier unless
//! the request asks for a stale read), reads from that one view on the blocking pool, and
//! converts the result. Requests that name a key find their shard with [`Node::shard_of`]; the
//! others name it, and an unknown shard is the node's `not_found`. Transact hands its
//! operations to [`coordinator::execute`], with this node as the transaction's coordinator.
//!
//! The interactive transaction RPCs (TxnBegin, TxnRead, TxnWrite, TxnCommit, TxnAbort) call
//! [`session`] on this node, which keeps the transaction. Each step runs on a task of its own
//! ([`run_to_end`]): a client that gives up on a call (its deadline, a dropped connection)
//! cancels the call but not the step, which takes or waits for locks and keeps the session's
//! state and must not be cut off halfway.

use std::sync::Arc;

use blockdb_proto::v1 as pb;
use blockdb_proto::v1::ledger_server::Ledger;
use blockdb_verifier::{ConsistencyProof, LogIndex, ShardId, TreeSize};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::status::to_status;
use super::{convert, watch};
use crate::error::{ErrorCode, RequestError};
use crate::ledger::ShardView;
use crate::node::{Consistency, Node};
use crate::storage::Engine;
use crate::txn::{coordinator, session};

/// Bytes a bundle takes besides its key and value, about: leaf header, proofs, checkpoint. Only
/// sizes the chunks a page is read in.
const BUNDLE_OVERHEAD_BYTES: usize = 16 * 1024;

/// The Ledger service.
#[derive(Debug)]
pub(super) struct LedgerService {
    node: Arc<Node>,
}

fn reply<T>(result: Result<T, RequestError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(to_status)
}

fn consistency(value: i32) -> Result<Consistency, RequestError> {
    match pb::Consistency::try_from(value) {
        Ok(pb::Consistency::Linearizable) => Ok(Consistency::Linearizable),
        Ok(pb::Consistency::Stale) => Ok(Consistency::Stale),
        Err(_) => Err(RequestError::invalid(format!("{value} is not a consistency level"))),
    }
}

fn known(known_size: Option<u64>) -> Option<TreeSize> {
    known_size.map(TreeSize)
}

/// Runs `step` to its end on a task of its own, even when the call that asked for it is
/// cancelled, and returns its result (`internal` if the task panicked).
async fn run_to_end<T, F>(step: F) -> Result<T, RequestError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, RequestError>> + Send + 'static,
{
    tokio::spawn(step).await.map_err(|e| {
        RequestError::new(ErrorCode::Internal, format!("a transaction step failed: {e}"))
    })?
}

impl LedgerService {
    pub(super) fn new(node: Arc<Node>) -> LedgerService {
        LedgerService { node }
    }

    /// Runs `read` against `view` on tokio's blocking pool: storage reads block, and a page of
    /// bundles can take a while. A panic in `read` answers `internal` instead of killing the
    /// connection's task.
    async fn read<T, F>(&self, view: Arc<ShardView>, read: F) -> Result<T, RequestError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine, &ShardView) -> Result<T, RequestError> + Send + 'static,
    {
        let node = Arc::clone(&self.node);
        tokio::task::spawn_blocking(move || read(node.engine(), &view))
            .await
            .map_err(|e| RequestError::new(ErrorCode::Internal, format!("a read failed: {e}")))?
    }

    /// Runs `read` against `view` here, on the request's task: for one bundle or entry, whose
    /// O(log n) block reads are mostly served from the block cache, handing the read to the
    /// blocking pool (a thread woken and waited for) costs more than the read itself. A panic in
    /// `read` answers `internal`, as [`LedgerService::read`]'s does.
    fn read_one<T>(
        &self,
        view: &ShardView,
        read: impl FnOnce(&Engine, &ShardView) -> Result<T, RequestError>,
    ) -> Result<T, RequestError> {
        let engine = self.node.engine();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(engine, view))).map_err(
            |_| RequestError::new(ErrorCode::Internal, "a read failed: it panicked".to_owned()),
        )?
    }

    /// The most bytes one bundle of this node can take, about.
    fn bundle_bytes_max(&self) -> usize {
        let config = self.node.config();
        config.key_len_max + config.value_len_max + BUNDLE_OVERHEAD_BYTES
    }

    async fn insert_record(
        &self,
        req: pb::InsertRequest,
    ) -> Result<pb::WriteResponse, RequestError> {
        let written = self.node.insert(req.key.clone(), req.value).await?;
        Ok(convert::write(req.key, written))
    }

    async fn append_record(
        &self,
        req: pb::AppendRequest,
    ) -> Result<pb::WriteResponse, RequestError> {
        let written = self.node.append(req.key.clone(), req.value, req.expected_version).await?;
        Ok(convert::write(req.key, written))
    }

    async fn run_txn(
        &self,
        req: pb::TransactRequest,
    ) -> Result<pb::TransactResponse, RequestError> {
        let ops = req
            .ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| convert::txn_op(i, op))
            .collect::<Result<Vec<_>, _>>()?;
        convert::txn_output(coordinator::execute(&self.node, &ops).await?)
    }

    fn begin_txn(&self) -> Result<pb::TxnBeginResponse, RequestError> {
        let (txn, timeout) = session::begin(&self.node)?;
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        Ok(pb::TxnBeginResponse { txn_id: txn.0.to_vec(), timeout_ms })
    }

    async fn read_in_txn(
        &self,
        req: pb::TxnReadRequest,
    ) -> Result<pb::TxnReadResult, RequestError> {
        let (node, txn) = (Arc::clone(&self.node), convert::txn_id(&req.txn_id)?);
        let r = run_to_end(async move { session::read(&node, txn, req.key).await }).await?;
        Ok(pb::TxnReadResult { key: r.key, version: r.version, value: r.value })
    }

    async fn write_in_txn(
        &self,
        req: pb::TxnWriteRequest,
    ) -> Result<pb::TxnWriteResponse, RequestError> {
        let (node, txn) = (Arc::clone(&self.node), convert::txn_id(&req.txn_id)?);
        let op = convert::txn_write_op(req.op)?;
        run_to_end(async move { session::write(&node, txn, op).await }).await?;
        Ok(pb::TxnWriteResponse {})
    }

    async fn commit_txn(
        &self,
        req: pb::TxnCommitRequest,
    ) -> Result<pb::TransactResponse, RequestError> {
        let (node, txn) = (Arc::clone(&self.node), convert::txn_id(&req.txn_id)?);
        convert::txn_output(run_to_end(async move { session::commit(&node, txn).await }).await?)
    }

    async fn abort_txn(
        &self,
        req: pb::TxnAbortRequest,
    ) -> Result<pb::TxnAbortResponse, RequestError> {
        let (node, txn) = (Arc::clone(&self.node), convert::txn_id(&req.txn_id)?);
        run_to_end(async move { session::abort(&node, txn).await }).await?;
        Ok(pb::TxnAbortResponse {})
    }

    async fn read_record(&self, req: pb::GetRequest) -> Result<pb::ProofBundle, RequestError> {
        self.node.check_record(&req.key, None)?;
        if req.version == Some(0) {
            return Err(RequestError::invalid("versions count from 1; 0 is not a version"));
        }
        let view =
            self.node.view(self.node.shard_of(&req.key), consistency(req.consistency)?).await?;
        let known = known(req.known_size);
        self.read_one(&view, |engine, view| {
            convert::bundle(view.bundle(engine, &req.key, req.version, known)?)
        })
    }

    async fn read_history(
        &self,
        req: pb::HistoryRequest,
    ) -> Result<pb::HistoryResponse, RequestError> {
        self.node.check_record(&req.key, None)?;
        let view = self.node.view(self.node.shard_of(&req.key), Consistency::Linearizable).await?;
        let (known, bytes_max) = (known(req.known_size), self.bundle_bytes_max());
        let (bundles, next_version) = self
            .read(view, move |engine, view| {
                convert::fill_page(
                    req.limit,
                    bytes_max,
                    Some(req.from_version),
                    |from, n| Ok(view.history(engine, &req.key, *from, n, known)?),
                    |b| b.record.version,
                )
            })
            .await?;
        Ok(pb::HistoryResponse { bundles, next_version })
    }

    async fn scan_range(&self, req: pb::ScanRequest) -> Result<pb::ScanResponse, RequestError> {
        if !req.end.is_empty() && req.end < req.start {
            return Err(RequestError::invalid("the scan's end is before its start"));
        }
        let view = self.node.view(ShardId(req.shard), Consistency::Linearizable).await?;
        if !req.end.is_empty() && req.end == req.start {
            return Ok(pb::ScanResponse::default());
        }
        let (known, bytes_max) = (known(req.known_size), self.bundle_bytes_max());
        let (bundles, next_key) = self
            .read(view, move |engine, view| {
                convert::fill_page(
                    req.limit,
                    bytes_max,
                    Some(req.start),
                    |start, n| Ok(view.scan(engine, start, &req.end, n, known)?),
                    |b| b.record.key.clone(),
                )
            })
            .await?;
        Ok(pb::ScanResponse { bundles, next_key: next_key.unwrap_or_default() })
    }

    async fn read_entry(
        &self,
        req: pb::GetEntryRequest,
    ) -> Result<pb::EntryResponse, RequestError> {
        let shard = ShardId(req.shard);
        let view = self.node.view(shard, Consistency::Linearizable).await?;
        let size = view.tree_size().0;
        if req.log_index >= size {
            return Err(RequestError::new(
                ErrorCode::NotFound,
                format!("no entry at log index {}: shard {} has {size}", req.log_index, shard.0),
            ));
        }
        let known = known(req.known_size);
        let entry = self.read_one(&view, |engine, view| {
            Ok(view.entry(engine, LogIndex(req.log_index), known)?)
        })?;
        Ok(convert::entry(shard, entry))
    }

    async fn read_checkpoint(
        &self,
        req: pb::GetCheckpointRequest,
    ) -> Result<pb::CheckpointResponse, RequestError> {
        let shard = ShardId(req.shard);
        let view = self.node.view(shard, Consistency::Linearizable).await?;
        Ok(convert::checkpoint(shard, view.signed_checkpoint()))
    }

    async fn read_consistency(
        &self,
        req: pb::GetConsistencyRequest,
    ) -> Result<pb::ConsistencyResponse, RequestError> {
        let view = self.node.view(ShardId(req.shard), Consistency::Linearizable).await?;
        let size = view.tree_size().0;
        let (from, to) = (req.from_size, req.to_size.unwrap_or(size));
        // Two sizes that contradict each other are a malformed request; a size the tree has not
        // reached (yet) is out of range, as is a from_size above the tree when to_size is unset.
        if from > to && req.to_size.is_some() {
            return Err(RequestError::invalid(format!("from_size {from} is above to_size {to}")));
        }
        if from.max(to) > size {
            return Err(RequestError::new(
                ErrorCode::OutOfRange,
                format!("tree size {} is beyond the tree size {size}", from.max(to)),
            ));
        }
        let checkpoint = view.signed_checkpoint().to_text();
        // Every tree extends the empty one: that proof is empty, and the view refuses to make it.
        let proof = if from == 0 {
            ConsistencyProof { from_size: TreeSize(0), to_size: TreeSize(to), hashes: Vec::new() }
        } else {
            self.read(view, move |engine, view| {
                Ok(view.consistency(engine, TreeSize(from), TreeSize(to))?)
            })
            .await?
        };
        Ok(pb::ConsistencyResponse { proof: Some(convert::consistency_proof(proof)), checkpoint })
    }

    async fn read_block(
        &self,
        req: pb::GetBlockRequest,
    ) -> Result<pb::BlockResponse, RequestError> {
        if req.height == Some(0) {
            return Err(RequestError::invalid("block heights count from 1; 0 is not a height"));
        }
        let shard = ShardId(req.shard);
        let view = self.node.view(shard, Consistency::Linearizable).await?;
        let height = req.height;
        let block = self.read(view, move |engine, view| Ok(view.block(engine, height)?)).await?;
        let block = block.ok_or_else(|| {
            let at = height.map_or_else(|| "yet".to_owned(), |h| format!("at height {h}"));
            RequestError::new(ErrorCode::NotFound, format!("shard {} has no block {at}", shard.0))
        })?;
        Ok(convert::block(&block))
    }

    async fn describe(&self) -> Result<pb::NodeInfoResponse, RequestError> {
        let key = self.node.verifier_key();
        let shards = self.node.shard_count();
        let mut shards_info = Vec::new();
        for s in 0..shards {
            let view = self.node.view(ShardId(s), Consistency::Stale).await?;
            shards_info.push(pb::ShardInfo {
                shard: s,
                origin: view.checkpoint().origin.clone(),
                tree_size: view.tree_size().0,
                applied_index: view.applied_index(),
            });
        }
        Ok(pb::NodeInfoResponse {
            node_name: key.name().to_owned(),
            verifier_key: key.to_string(),
            shards,
            shards_info,
        })
    }
}

/// Calls in one Batch, at most.
pub const BATCH_CALLS_MAX: usize = 1024;

impl LedgerService {
    /// Runs every call of a batch at once, each on a task of its own as if it had come alone,
    /// and answers in the calls' order. A malformed batch is refused whole before any call runs.
    async fn run_batch(&self, req: pb::BatchRequest) -> Result<pb::BatchResponse, RequestError> {
        if req.calls.len() > BATCH_CALLS_MAX {
            return Err(RequestError::invalid(format!(
                "a batch holds at most {BATCH_CALLS_MAX} calls; this one has {}",
                req.calls.len()
            )));
        }
        let mut calls = Vec::with_capacity(req.calls.len());
        for (i, c) in req.calls.into_iter().enumerate() {
            calls.push(c.call.ok_or_else(|| {
                RequestError::invalid(format!("call {i} of the batch has no call"))
            })?);
        }
        let tasks: Vec<_> = calls
            .into_iter()
            .map(|call| {
                let service = LedgerService::new(Arc::clone(&self.node));
                tokio::spawn(async move { service.run_call(call).await })
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            let result = task.await.unwrap_or_else(|e| {
                Err(RequestError::new(ErrorCode::Internal, format!("a call failed: {e}")))
            });
            results.push(pb::BatchResult {
                result: Some(
                    result.unwrap_or_else(|e| pb::batch_result::Result::Error(call_error(e))),
                ),
            });
        }
        Ok(pb::BatchResponse { results })
    }

    async fn run_call(
        &self,
        call: pb::batch_call::Call,
    ) -> Result<pb::batch_result::Result, RequestError> {
        use pb::batch_call::Call;
        use pb::batch_result::Result as Answer;
        Ok(match call {
            Call::Insert(r) => Answer::Write(self.insert_record(r).await?),
            Call::Append(r) => Answer::Write(self.append_record(r).await?),
            Call::Get(r) => Answer::Bundle(self.read_record(r).await?),
        })
    }
}

/// A call's error in a batch: what [`to_status`] would have answered for it alone.
fn call_error(e: RequestError) -> pb::CallError {
    pb::CallError {
        grpc_code: super::status::code_of(e.code) as i32,
        error_code: e.code.as_str().to_owned(),
        current_version: e.current_version,
        message: e.message,
    }
}

#[tonic::async_trait]
impl Ledger for LedgerService {
    async fn batch(
        &self,
        request: Request<pb::BatchRequest>,
    ) -> Result<Response<pb::BatchResponse>, Status> {
        reply(self.run_batch(request.into_inner()).await)
    }

    async fn insert(
        &self,
        request: Request<pb::InsertRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        reply(self.insert_record(request.into_inner()).await)
    }

    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        reply(self.append_record(request.into_inner()).await)
    }

    async fn transact(
        &self,
        request: Request<pb::TransactRequest>,
    ) -> Result<Response<pb::TransactResponse>, Status> {
        reply(self.run_txn(request.into_inner()).await)
    }

    async fn txn_begin(
        &self,
        _request: Request<pb::TxnBeginRequest>,
    ) -> Result<Response<pb::TxnBeginResponse>, Status> {
        reply(self.begin_txn())
    }

    async fn txn_read(
        &self,
        request: Request<pb::TxnReadRequest>,
    ) -> Result<Response<pb::TxnReadResult>, Status> {
        reply(self.read_in_txn(request.into_inner()).await)
    }

    async fn txn_write(
        &self,
        request: Request<pb::TxnWriteRequest>,
    ) -> Result<Response<pb::TxnWriteResponse>, Status> {
        reply(self.write_in_txn(request.into_inner()).await)
    }

    async fn txn_commit(
        &self,
        request: Request<pb::TxnCommitRequest>,
    ) -> Result<Response<pb::TransactResponse>, Status> {
        reply(self.commit_txn(request.into_inner()).await)
    }

    async fn txn_abort(
        &self,
        request: Request<pb::TxnAbortRequest>,
    ) -> Result<Response<pb::TxnAbortResponse>, Status> {
        reply(self.abort_txn(request.into_inner()).await)
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::ProofBundle>, Status> {
        reply(self.read_record(request.into_inner()).await)
    }

    async fn history(
        &self,
        request: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        reply(self.read_history(request.into_inner()).await)
    }

    async fn scan(
        &self,
        request: Request<pb::ScanRequest>,
    ) -> Result<Response<pb::ScanResponse>, Status> {
        reply(self.scan_range(request.into_inner()).await)
    }

    async fn get_entry(
        &self,
        request: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::EntryResponse>, Status> {
        reply(self.read_entry(request.into_inner()).await)
    }

    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::CheckpointResponse>, Status> {
        reply(self.read_checkpoint(request.into_inner()).await)
    }

    async fn get_consistency(
        &self,
        request: Request<pb::GetConsistencyRequest>,
    ) -> Result<Response<pb::ConsistencyResponse>, Status> {
        reply(self.read_consistency(request.into_inner()).await)
    }

    async fn get_block(
        &self,
        request: Request<pb::GetBlockRequest>,
    ) -> Result<Response<pb::BlockResponse>, Status> {
        reply(self.read_block(request.into_inner()).await)
    }

    type WatchStream = ReceiverStream<Result<pb::WatchEvent, Status>>;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let req = request.into_inner();
        reply(watch::start(&self.node, ShardId(req.shard), req.from_log_index).await)
    }

    async fn node_info(
        &self,
        _request: Request<pb::NodeInfoRequest>,
    ) -> Result<Response<pb::NodeInfoResponse>, Status> {
        reply(self.describe().await)
    }

    async fn cluster_status(
        &self,
        _request: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        let status = self.node.cluster_status().await;
        Ok(Response::new((&status).into()))
    }

    async fn add_member(
        &self,
        request: Request<pb::AddMemberRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let req = request.into_inner();
        reply(self.node.add_member(req.node_id, &req.peer_addr).await.map(|shards| {
            pb::MembershipResponse { shards: shards.iter().map(Into::into).collect() }
        }))
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let req = request.into_inner();
        reply(self.node.remove_member(req.node_id).await.map(|shards| pb::MembershipResponse {
            shards: shards.iter().map(Into::into).collect(),
        }))
    }
}
