//! The client: gRPC calls with timeouts and bounded retries, and every answer verified before
//! anything from it is returned.
//!
//! A read goes: ask with `known_size` = the size the client trusts for that shard's log; convert
//! the answer (malformed → verification error); check it answers the question (the key and
//! version asked for); `verify_bundle_with` (signatures under the trust policy — a signed
//! checkpoint equal to one verified lately is not verified again (`recent.rs`) — leaf against
//! record, inclusion proof); then move the trusted state ([`crate::trust`]) — fetching a consistency
//! proof when the answer's proof does not start at the trusted size — and save it. Only then is
//! the record returned.
//!
//! Writes return the server's receipt with its checkpoint verified under the trust policy; they
//! do not move the trusted state (a later read does, with its proof).
//!
//! A transaction ([`Client::transact`]) is sent once, like a write. Its answer is checked
//! ([`crate::txn`]: the receipt verified, every write proven as asked); then the receipt's
//! checkpoints are observed like a stale read's (proven consistent with the trusted ones, older
//! or newer, since concurrent calls may have moved them past the transaction); then every read
//! that found a version is proven by a Get of that version. Only then is the result returned.
//! An interactive transaction ([`Client::begin`], [`crate::transaction`]) proves each read as
//! it is answered, the same way, and checks its commit's answer as `transact` does.

use std::sync::Arc;
use std::time::Duration;

use blockdb_proto::v1 as pb;
use blockdb_proto::v1::ledger_client::LedgerClient;
use blockdb_verifier::{
    Checkpoint, ConsistencyProof, LogIndex, Record, ShardId, SignedCheckpoint, TreeSize,
    TrustPolicy, TxnId, VerifiedCheckpoint, verify_bundle_with,
};
use tokio::sync::Mutex;
use tonic::transport::Endpoint;

use crate::batch::{self, Coalescer};
use crate::cluster::{self, ClusterStatus, MEMBERSHIP_TIMEOUT_DEFAULT, ShardMembership};
use crate::connection::{Connection, Effect, Settings, to_error};
use crate::convert;
use crate::error::{ClientError, VerifyError};
use crate::recent::RecentCheckpoints;
use crate::store::TrustStore;
use crate::transaction::Transaction;
use crate::trust::{Observation, Settled, TrustedState};
use crate::txn::{self, TxnOp, TxnRead, TxnResult};
use pb::batch_call::Call;
use pb::batch_result::Result as Answer;

/// Most bytes of a Transact answer the client decodes: its receipt repeats every value written,
/// and its reads carry theirs, so it may be far larger than the 4 MiB of other answers; the
/// bound keeps a server from making the client hold any amount.
pub(crate) const TXN_ANSWER_BYTES_MAX: usize = 64 << 20;

/// How the client reaches and trusts a cluster.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// gRPC endpoints (`http://host:port`), tried in turn.
    pub endpoints: Vec<String>,
    /// Which keys must have signed a checkpoint.
    pub policy: TrustPolicy,
    /// Limit on every call.
    pub timeout: Duration,
    /// Retries of a call that failed for a retryable reason, at most.
    pub retries: u32,
    /// First backoff between retries; it doubles, with jitter, up to `backoff_max`.
    pub backoff: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Limit on each attempt of a membership change, which waits for a new member to catch up
    /// with every shard ([`Client::add_member`]).
    pub membership_timeout: Duration,
    /// Send the Insert, Append and Get calls made while earlier ones are on their way together,
    /// in one `Batch` message (see the crate's `batch` module); each is still answered, and
    /// verified, as its own. Needs a server that has the Batch call (every BlockDB server of
    /// this version). Default: on.
    pub coalesce: bool,
}

impl ClientConfig {
    /// Defaults: 10 s per call, 4 retries, backoff from 50 ms to 2 s, 5 minutes per attempt of
    /// a membership change.
    pub fn new(endpoints: Vec<String>, policy: TrustPolicy) -> ClientConfig {
        let settings = Settings::default();
        ClientConfig {
            endpoints,
            policy,
            timeout: settings.timeout,
            retries: settings.retries,
            backoff: settings.backoff,
            backoff_max: settings.backoff_max,
            membership_timeout: MEMBERSHIP_TIMEOUT_DEFAULT,
            coalesce: true,
        }
    }

    fn settings(&self) -> Settings {
        Settings {
            timeout: self.timeout,
            retries: self.retries,
            backoff: self.backoff,
            backoff_max: self.backoff_max,
        }
    }
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read; a smaller tree than the client trusted
    /// when it sent the read is a rollback. (A tree smaller than one trusted since, through a
    /// concurrent call, is proven a prefix of it instead.)
    #[default]
    Linearizable,
    /// Any replica's state; an older tree is accepted once proven a prefix of the trusted one.
    Stale,
}

/// A committed write, as the server acknowledged it.
#[derive(Debug, Clone)]
pub struct WriteReceipt {
    /// The shard.
    pub shard: ShardId,
    /// The record's version.
    pub version: u64,
    /// Its leaf's position.
    pub log_index: LogIndex,
    /// The checkpoint of the batch that committed it, verified under the trust policy.
    pub checkpoint: VerifiedCheckpoint,
}

/// A record whose proof verified.
#[derive(Debug, Clone)]
pub struct VerifiedRead {
    /// The record.
    pub record: Record,
    /// The shard.
    pub shard: ShardId,
    /// Its leaf's position.
    pub log_index: LogIndex,
    /// The checkpoint it was proven against.
    pub checkpoint: Checkpoint,
}

/// A BlockDB client.
pub struct Client {
    pub(crate) config: ClientConfig,
    pub(crate) conn: Arc<Connection>,
    /// Gathers writes into Batch messages (when coalescing).
    writes: Option<Coalescer>,
    /// Gathers reads into Batch messages (when coalescing).
    reads: Option<Coalescer>,
    pub(crate) shards: u32,
    origins: Vec<String>,
    state: Mutex<TrustedState>,
    store: Arc<dyn TrustStore>,
    /// The signed checkpoints verified last, not verified again when seen again.
    recent: RecentCheckpoints,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("endpoints", &self.config.endpoints).finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the cluster, learns its shards and their logs, and loads the trusted state
    /// from `store`.
    ///
    /// # Errors
    /// [`ClientError::Unavailable`] when no endpoint answers; store errors.
    pub async fn connect(
        config: ClientConfig,
        store: Arc<dyn TrustStore>,
    ) -> Result<Client, ClientError> {
        let conn = Arc::new(Connection::open(&config.endpoints, config.settings())?);
        let (writes, reads) = if config.coalesce {
            (
                Some(Coalescer::start(Arc::clone(&conn), Effect::Once)),
                Some(Coalescer::start(Arc::clone(&conn), Effect::Repeatable)),
            )
        } else {
            (None, None)
        };
        let mut state = TrustedState::new();
        for cp in store.load()? {
            state.insert(cp);
        }
        let mut client = Client {
            config,
            conn,
            writes,
            reads,
            shards: 0,
            origins: Vec::new(),
            state: Mutex::new(state),
            store,
            recent: RecentCheckpoints::default(),
        };
        let info = client
            .conn
            .call(
                Effect::Repeatable,
                |mut c| async move { c.node_info(pb::NodeInfoRequest {}).await },
            )
            .await?;
        let mut infos = info.shards_info;
        infos.sort_by_key(|s| s.shard);
        if info.shards == 0 || infos.len() != info.shards as usize {
            return Err(VerifyError::Malformed(format!(
                "node info lists {} shards of {}",
                infos.len(),
                info.shards
            ))
            .into());
        }
        client.shards = info.shards;
        client.origins = infos.into_iter().map(|s| s.origin).collect();
        Ok(client)
    }

    /// Number of shards.
    pub fn shard_count(&self) -> u32 {
        self.shards
    }

    /// The shard that holds `key`.
    pub fn shard_of(&self, key: &[u8]) -> ShardId {
        ShardId::for_key(key, self.shards).expect("connect checks that there are shards")
    }

    /// A copy of the trusted state.
    pub async fn trusted(&self) -> TrustedState {
        self.state.lock().await.clone()
    }

    fn origin(&self, shard: ShardId) -> Result<&str, ClientError> {
        self.origins.get(shard.0 as usize).map(String::as_str).ok_or_else(|| {
            ClientError::Rejected {
                code: "not_found".into(),
                message: format!("no shard {}; the cluster has {}", shard.0, self.shards),
                current_version: None,
            }
        })
    }

    /// `signed` verified under the trust policy (or found equal to a note verified before).
    fn verify_checkpoint(
        &self,
        signed: &SignedCheckpoint,
    ) -> Result<VerifiedCheckpoint, blockdb_verifier::PolicyError> {
        self.recent.verify(&self.config.policy, signed)
    }

    async fn known_size(&self, shard: ShardId) -> Result<Option<u64>, ClientError> {
        let origin = self.origin(shard)?;
        Ok(self.state.lock().await.get(origin).map(|c| c.size.0).filter(|&s| s > 0))
    }

    /// The receipt of a write of `key`, its checkpoint verified.
    fn receipt(&self, key: &[u8], r: pb::WriteResponse) -> Result<WriteReceipt, ClientError> {
        if r.key != key {
            return Err(VerifyError::Mismatch(format!(
                "wrote {:?}, but the receipt is for {:?}",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(&r.key)
            ))
            .into());
        }
        if r.log_index >= r.tree_size {
            return Err(VerifyError::Malformed(format!(
                "the receipt puts the write at log index {} of a tree of {}",
                r.log_index, r.tree_size
            ))
            .into());
        }
        let signed = convert::checkpoint(&r.checkpoint)?;
        let checkpoint = self.verify_checkpoint(&signed).map_err(VerifyError::from)?;
        if r.shard != self.shard_of(key).0
            || checkpoint.checkpoint.origin != self.origin(ShardId(r.shard))?
        {
            return Err(
                VerifyError::Mismatch("the receipt's checkpoint is of another log".into()).into()
            );
        }
        if checkpoint.checkpoint.size.0 != r.tree_size {
            return Err(VerifyError::Mismatch(format!(
                "the receipt says tree size {} but its checkpoint is of size {}",
                r.tree_size, checkpoint.checkpoint.size.0
            ))
            .into());
        }
        Ok(WriteReceipt {
            shard: ShardId(r.shard),
            version: r.version,
            log_index: LogIndex(r.log_index),
            checkpoint,
        })
    }

    /// Inserts `key` at version 1.
    ///
    /// # Errors
    /// `already_exists` when the key has a version; see [`ClientError`].
    pub async fn insert(&self, key: &[u8], value: &[u8]) -> Result<WriteReceipt, ClientError> {
        let req = pb::InsertRequest { key: key.to_vec(), value: value.to_vec() };
        let r = self.write(Call::Insert(req)).await?;
        self.receipt(key, r)
    }

    /// Appends the next version of `key`, only at `expected_version` if given.
    ///
    /// # Errors
    /// `version_mismatch` when the key is not at `expected_version`; see [`ClientError`].
    pub async fn append(
        &self,
        key: &[u8],
        value: &[u8],
        expected_version: Option<u64>,
    ) -> Result<WriteReceipt, ClientError> {
        let req = pb::AppendRequest { key: key.to_vec(), value: value.to_vec(), expected_version };
        let r = self.write(Call::Append(req)).await?;
        self.receipt(key, r)
    }

    /// Sends a single write, in a Batch message when coalescing.
    async fn write(&self, call: Call) -> Result<pb::WriteResponse, ClientError> {
        let answer = match &self.writes {
            Some(c) => c.call(call).await?,
            None => batch::alone(&self.conn, Effect::Once, call).await?,
        };
        match answer {
            Answer::Write(r) => Ok(r),
            _ => {
                Err(VerifyError::Malformed("a write was answered with a read's answer".into())
                    .into())
            }
        }
    }

    /// Runs the transaction `ops` (1 to 1024 operations, each key written at most once) and
    /// returns it verified: its receipt under the trust policy and against the trusted
    /// checkpoints, its writes as asked, and each read that found a version proven by its
    /// record's bundle (a read of version 0 is not proven: see [`crate::txn`]).
    ///
    /// Sent once: retried only when it certainly did not reach a coordinator. After a timeout or
    /// a failure while proving a committed transaction, its outcome is unknown to the caller
    /// ([`ClientError::Unavailable`], naming the transaction).
    ///
    /// # Errors
    /// `invalid_argument` (and the key and value limits) for bad operations; `aborted` when a
    /// check failed or a key conflicted; `locked` or `deadlock` when another transaction held
    /// its keys ([`ClientError::is_txn_conflict`]: run it again as a new one); a
    /// [`VerifyError`] when the answer or its receipt does not verify or is not what was asked.
    pub async fn transact(&self, ops: &[TxnOp]) -> Result<TxnResult, ClientError> {
        let req = pb::TransactRequest { ops: ops.iter().map(TxnOp::to_proto).collect() };
        let r = self.conn.call(Effect::Once, |c| {
            let req = req.clone();
            async move { c.max_decoding_message_size(TXN_ANSWER_BYTES_MAX).transact(req).await }
        });
        let checked = txn::check(ops, r.await?, &self.config.policy, self.shards)?;
        self.take_in_txn(checked).await
    }

    /// Begins an interactive transaction on one node of the cluster, which serves every later
    /// call of it ([`Transaction`]): reads and writes one at a time, each locking its key, then
    /// [`Transaction::commit`] or [`Transaction::abort`]. Begun again on the next node when the
    /// answer does not come; a transaction begun but never answered holds nothing and ends at
    /// its deadline.
    ///
    /// # Errors
    /// [`ClientError::Unavailable`] when no node answers or the node has too many open
    /// transactions; a [`VerifyError`] for a malformed transaction id.
    pub async fn begin(&self) -> Result<Transaction<'_>, ClientError> {
        Transaction::begin(self).await
    }

    /// Takes in the checked answer of a committed transaction and returns it verified: the
    /// receipt's checkpoints are observed like a stale read's (proven consistent with the
    /// trusted ones, older or newer, since concurrent calls may have moved them past the
    /// transaction), then every read that found a version is proven by a Get of that version.
    ///
    /// # Errors
    /// As [`Client::transact`], once the transaction committed.
    pub(crate) async fn take_in_txn(
        &self,
        checked: txn::Checked,
    ) -> Result<TxnResult, ClientError> {
        // The transaction committed: a failure to prove more of it must not pass for one that
        // left its outcome open without saying which transaction it was.
        let committed = |e: ClientError| match e {
            ClientError::Unavailable(m) => ClientError::Unavailable(format!(
                "transaction {} committed, but proving what it read or wrote failed: {m}",
                checked.txn_id
            )),
            ClientError::Rejected { code, message, .. } => VerifyError::Mismatch(format!(
                "transaction {}: a proof of what it read or wrote was refused ({code}): {message}",
                checked.txn_id
            ))
            .into(),
            other => other,
        };
        for (shard, cp) in checked.receipt.iter().flat_map(txn::checkpoints) {
            self.observe(shard, &cp, None, None).await.map_err(committed)?;
        }
        let mut reads = Vec::with_capacity(checked.reads.len());
        for (key, version, value) in checked.reads {
            reads.push(
                self.prove_txn_read(checked.txn_id, key, version, value)
                    .await
                    .map_err(committed)?,
            );
        }
        Ok(TxnResult {
            txn_id: checked.txn_id,
            reads,
            writes: checked.writes,
            receipt: checked.receipt,
        })
    }

    /// Proves a read of transaction `txn_id`, which found `key` at `version` with `value`: by a
    /// linearizable Get of that version, whose record must hold that value. A read of version 0
    /// is not proven (see [`crate::txn`]).
    ///
    /// # Errors
    /// A [`VerifyError`] when the record does not verify, holds another value, or its Get is
    /// refused (the server said that version exists); [`ClientError::Unavailable`].
    pub(crate) async fn prove_txn_read(
        &self,
        txn_id: TxnId,
        key: Vec<u8>,
        version: u64,
        value: Option<Vec<u8>>,
    ) -> Result<TxnRead, ClientError> {
        let proof = match version {
            0 => None,
            v => Some(self.get(&key, Some(v), Consistency::Linearizable).await.map_err(|e| {
                match e {
                    ClientError::Rejected { code, message, .. } => VerifyError::Mismatch(format!(
                        "transaction {txn_id}: the proof of its read of \"{}\" version {v} was \
                         refused ({code}): {message}",
                        key.escape_ascii()
                    ))
                    .into(),
                    other => other,
                }
            })?),
        };
        if proof.as_ref().is_some_and(|p| p.record.value != value) {
            return Err(VerifyError::Mismatch(format!(
                "transaction {txn_id}: read \"{}\" version {version} with another value than \
                 its record's",
                key.escape_ascii()
            ))
            .into());
        }
        Ok(TxnRead { key, version, value, proof })
    }

    /// The record of `key` at `version` (the latest if `None`), verified.
    ///
    /// # Errors
    /// `not_found`; a [`VerifyError`] when the answer does not verify.
    pub async fn get(
        &self,
        key: &[u8],
        version: Option<u64>,
        consistency: Consistency,
    ) -> Result<VerifiedRead, ClientError> {
        let shard = self.shard_of(key);
        let known = self.known_size(shard).await?;
        let req = pb::GetRequest {
            key: key.to_vec(),
            version,
            known_size: known,
            consistency: match consistency {
                Consistency::Linearizable => pb::Consistency::Linearizable,
                Consistency::Stale => pb::Consistency::Stale,
            } as i32,
        };
        let answer = match &self.reads {
            Some(c) => c.call(Call::Get(req)).await?,
            None => batch::alone(&self.conn, Effect::Repeatable, Call::Get(req)).await?,
        };
        let Answer::Bundle(b) = answer else {
            return Err(
                VerifyError::Malformed("a read was answered with a write's answer".into()).into()
            );
        };
        let floor = match consistency {
            Consistency::Linearizable => Some(known.unwrap_or(0)),
            Consistency::Stale => None,
        };
        let read = self.verify_bundle(shard, &b, floor).await?;
        if read.record.key != key || version.is_some_and(|v| v != read.record.version) {
            return Err(VerifyError::Mismatch(format!(
                "asked for {:?} version {version:?}, got version {}",
                String::from_utf8_lossy(key),
                read.record.version
            ))
            .into());
        }
        Ok(read)
    }

    /// Every version of `key`, oldest first, each verified.
    ///
    /// # Errors
    /// `not_found`; a [`VerifyError`] when an answer does not verify.
    pub async fn history(&self, key: &[u8]) -> Result<Vec<VerifiedRead>, ClientError> {
        let shard = self.shard_of(key);
        let mut out: Vec<VerifiedRead> = Vec::new();
        let mut from = 1;
        loop {
            let known = self.known_size(shard).await?;
            let req = pb::HistoryRequest {
                key: key.to_vec(),
                known_size: known,
                limit: 0,
                from_version: from,
            };
            let page = self
                .conn
                .call(Effect::Repeatable, |mut c| {
                    let req = req.clone();
                    async move { c.history(req).await }
                })
                .await?;
            for b in &page.bundles {
                let read = self.verify_bundle(shard, b, Some(known.unwrap_or(0))).await?;
                let expected = out.len() as u64 + 1;
                if read.record.key != key || read.record.version != expected {
                    return Err(VerifyError::Mismatch(format!(
                        "history: expected version {expected}, got {}",
                        read.record.version
                    ))
                    .into());
                }
                out.push(read);
            }
            match page.next_version {
                Some(n) if n == out.len() as u64 + 1 && !page.bundles.is_empty() => from = n,
                Some(n) => {
                    return Err(VerifyError::Mismatch(format!("history: next version {n}")).into());
                }
                None => return Ok(out),
            }
        }
    }

    /// The latest version of each key of `shard` in `[start, end)` (`end` empty: no end), at
    /// most `limit` (0: the server's default), verified; and the key to continue from.
    ///
    /// # Errors
    /// A [`VerifyError`] when an answer does not verify or is out of order.
    pub async fn scan(
        &self,
        shard: ShardId,
        start: &[u8],
        end: &[u8],
        limit: u32,
    ) -> Result<(Vec<VerifiedRead>, Option<Vec<u8>>), ClientError> {
        let known = self.known_size(shard).await?;
        let req = pb::ScanRequest {
            start: start.to_vec(),
            end: end.to_vec(),
            limit,
            known_size: known,
            shard: shard.0,
        };
        let page = self
            .conn
            .call(Effect::Repeatable, |mut c| {
                let req = req.clone();
                async move { c.scan(req).await }
            })
            .await?;
        let mut out: Vec<VerifiedRead> = Vec::new();
        for b in &page.bundles {
            let read = self.verify_bundle(shard, b, Some(known.unwrap_or(0))).await?;
            let in_range = read.record.key.as_slice() >= start
                && (end.is_empty() || read.record.key.as_slice() < end)
                && out.last().is_none_or(|p| p.record.key < read.record.key);
            if !in_range {
                return Err(
                    VerifyError::Mismatch("scan: a key out of range or order".into()).into()
                );
            }
            out.push(read);
        }
        let next = (!page.next_key.is_empty()).then_some(page.next_key);
        Ok((out, next))
    }

    /// Leaf `log_index` of `shard`, with its inclusion proof verified.
    ///
    /// # Errors
    /// `not_found`; a [`VerifyError`] when the answer does not verify.
    pub async fn entry(
        &self,
        shard: ShardId,
        log_index: u64,
    ) -> Result<VerifiedEntry, ClientError> {
        let known = self.known_size(shard).await?;
        let req = pb::GetEntryRequest { shard: shard.0, log_index, known_size: known };
        let e = self
            .conn
            .call(Effect::Repeatable, |mut c| async move { c.get_entry(req).await })
            .await?;
        if e.shard != shard.0 || e.log_index != log_index {
            return Err(VerifyError::Mismatch("entry: another index".into()).into());
        }
        let signed = convert::checkpoint(&e.checkpoint)?;
        let verified = self.verify_checkpoint(&signed).map_err(VerifyError::from)?;
        let cp = verified.checkpoint;
        let proof = convert::hashes(&e.inclusion_proof)?;
        let leaf_hash = blockdb_verifier::leaf_hash(&e.leaf);
        blockdb_verifier::verify_inclusion(
            &leaf_hash,
            LogIndex(log_index),
            cp.size,
            &proof,
            &cp.root,
        )
        .map_err(|e| VerifyError::Malformed(format!("inclusion proof: {e}")))?;
        let consistency = e.consistency_proof.as_ref().map(convert::consistency).transpose()?;
        self.observe(shard, &cp, consistency.as_ref(), Some(known.unwrap_or(0))).await?;
        Ok(VerifiedEntry { shard, log_index: LogIndex(log_index), leaf: e.leaf, checkpoint: cp })
    }

    /// The latest checkpoint of `shard`, verified and proven consistent with the trusted one.
    ///
    /// # Errors
    /// A [`VerifyError`] when it does not verify or is not consistent.
    pub async fn checkpoint(&self, shard: ShardId) -> Result<Checkpoint, ClientError> {
        Ok(self.signed_checkpoint(shard).await?.1)
    }

    /// The latest checkpoint of `shard` as the node signed it and as verified, proven
    /// consistent with the trusted one.
    async fn signed_checkpoint(
        &self,
        shard: ShardId,
    ) -> Result<(blockdb_verifier::SignedCheckpoint, Checkpoint), ClientError> {
        let floor = self.known_size(shard).await?.unwrap_or(0);
        let req = pb::GetCheckpointRequest { shard: shard.0 };
        let r = self
            .conn
            .call(Effect::Repeatable, |mut c| async move { c.get_checkpoint(req).await })
            .await?;
        let signed = convert::checkpoint(&r.checkpoint)?;
        let cp = self.verify_checkpoint(&signed).map_err(VerifyError::from)?.checkpoint;
        self.observe(shard, &cp, None, Some(floor)).await?;
        Ok((signed, cp))
    }

    /// A verified consistency proof of `shard` from `from` to `to` (the latest if `None`).
    ///
    /// # Errors
    /// A [`VerifyError`] when the proof or the checkpoint does not verify.
    pub async fn consistency(
        &self,
        shard: ShardId,
        from: u64,
        to: Option<u64>,
    ) -> Result<(ConsistencyProof, Checkpoint), ClientError> {
        let floor = self.known_size(shard).await?.unwrap_or(0);
        let req = pb::GetConsistencyRequest { shard: shard.0, from_size: from, to_size: to };
        let r = self
            .conn
            .call(Effect::Repeatable, |mut c| async move { c.get_consistency(req).await })
            .await?;
        let proof = r
            .proof
            .as_ref()
            .map(convert::consistency)
            .transpose()?
            .ok_or_else(|| VerifyError::Malformed("consistency: no proof".into()))?;
        let signed = convert::checkpoint(&r.checkpoint)?;
        let cp = self.verify_checkpoint(&signed).map_err(VerifyError::from)?.checkpoint;
        if proof.from_size != TreeSize(from) || to.is_some_and(|t| proof.to_size != TreeSize(t)) {
            return Err(VerifyError::Mismatch("consistency: other sizes".into()).into());
        }
        self.observe(shard, &cp, None, Some(floor)).await?;
        Ok((proof, cp))
    }

    /// Every leaf of `shard`'s log up to its latest checkpoint, verified as a whole: the
    /// checkpoint is fetched first (verified and proven consistent with the trusted one), then
    /// its leaves are streamed from the node (the Watch call, from index 0, cancelled once they
    /// are all in) and their root must be the checkpoint's. `progress` is called with the number
    /// of leaves received so far and the checkpoint's tree size, the total: first with
    /// `(0, total)`, then every 1,000 leaves, and last with `(total, total)`.
    ///
    /// # Errors
    /// A [`VerifyError`] when the checkpoint does not verify, or the leaves do not make its tree,
    /// are out of order or are cut short by a checkpoint; [`ClientError::Unavailable`] when the
    /// stream ends early or stalls for longer than the call timeout.
    pub async fn fetch_log(
        &self,
        shard: ShardId,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<(Vec<Vec<u8>>, blockdb_verifier::SignedCheckpoint), ClientError> {
        self.origin(shard)?;
        let (signed, cp) = self.signed_checkpoint(shard).await?;
        let total = cp.size.0;
        progress(0, total);
        let mut leaves = Vec::new();
        let mut frontier = blockdb_verifier::Frontier::new();
        if total > 0 {
            let req = pb::WatchRequest { shard: shard.0, from_log_index: 0 };
            let mut stream = self
                .conn
                .call(Effect::Repeatable, |mut c| async move { c.watch(req).await })
                .await?;
            // Bounded: each turn takes one event, and each event but an entry ends the call.
            while (leaves.len() as u64) < total {
                let event = match tokio::time::timeout(self.config.timeout, stream.message()).await
                {
                    Ok(Ok(Some(event))) => event,
                    Ok(Ok(None)) => {
                        return Err(ClientError::Unavailable("the stream ended early".into()));
                    }
                    Ok(Err(status)) => return Err(to_error(status)),
                    Err(_) => return Err(ClientError::Unavailable("the stream stalled".into())),
                };
                match event.event {
                    Some(pb::watch_event::Event::Entry(e)) => {
                        if e.shard != shard.0 || e.log_index != leaves.len() as u64 {
                            return Err(VerifyError::Mismatch(format!(
                                "entry {} of shard {} where {} of shard {} was next",
                                e.log_index,
                                e.shard,
                                leaves.len(),
                                shard.0
                            ))
                            .into());
                        }
                        frontier.push(blockdb_verifier::leaf_hash(&e.leaf));
                        leaves.push(e.leaf);
                        if leaves.len() % 1000 == 0 {
                            progress(leaves.len() as u64, total);
                        }
                    }
                    // The stream's first checkpoint follows every leaf of the node's tree, read
                    // after a read barrier that came after the checkpoint above: a tree no
                    // smaller than it. One sooner is a linearizable answer older than another.
                    Some(pb::watch_event::Event::Checkpoint(c)) => {
                        return Err(VerifyError::Mismatch(format!(
                            "a checkpoint of size {} after {} leaves, though one of size \
                             {total} was shown before",
                            c.tree_size,
                            leaves.len()
                        ))
                        .into());
                    }
                    None => {
                        return Err(VerifyError::Malformed("an empty watch event".into()).into());
                    }
                }
            }
            // Dropping the stream here cancels the call: the node stops following the log.
        }
        if frontier.root() != cp.root {
            return Err(VerifyError::Mismatch(format!(
                "the {} leaves sent do not make the checkpoint's tree of size {}",
                leaves.len(),
                cp.size
            ))
            .into());
        }
        progress(total, total);
        Ok((leaves, signed))
    }

    /// Follows `shard`'s log from `from_log_index`: calls `on_entry` with each new leaf once it
    /// is verified, in log order, until `on_entry` returns `false`. Each leaf the stream brings
    /// is checked against the latest checkpoint through its own inclusion proof (one
    /// [`Client::entry`] call per leaf, so a watcher follows at the log's pace, not a bulk
    /// export's); a leaf that differs from the proven one is a verification error.
    ///
    /// # Errors
    /// A [`VerifyError`] when a leaf or checkpoint does not verify; [`ClientError::Unavailable`]
    /// when the stream ends.
    pub async fn watch(
        &self,
        shard: ShardId,
        from_log_index: u64,
        on_entry: &mut (dyn FnMut(&VerifiedEntry) -> bool + Send),
    ) -> Result<(), ClientError> {
        self.origin(shard)?;
        let req = pb::WatchRequest { shard: shard.0, from_log_index };
        let mut stream =
            self.conn.call(Effect::Repeatable, |mut c| async move { c.watch(req).await }).await?;
        let mut next = from_log_index;
        let mut pending: Vec<Vec<u8>> = Vec::new();
        loop {
            let event = match stream.message().await {
                Ok(Some(event)) => event,
                Ok(None) => return Err(ClientError::Unavailable("the watch stream ended".into())),
                Err(status) => return Err(to_error(status)),
            };
            match event.event {
                Some(pb::watch_event::Event::Entry(e)) => {
                    if e.shard != shard.0 || e.log_index != next + pending.len() as u64 {
                        return Err(VerifyError::Mismatch(format!(
                            "watch: entry {} where {} was next",
                            e.log_index,
                            next + pending.len() as u64
                        ))
                        .into());
                    }
                    pending.push(e.leaf);
                }
                Some(pb::watch_event::Event::Checkpoint(_)) => {
                    for leaf in std::mem::take(&mut pending) {
                        let proven = self.entry(shard, next).await?;
                        if proven.leaf != leaf {
                            return Err(VerifyError::Mismatch(format!(
                                "watch: leaf {next} differs from the proven one"
                            ))
                            .into());
                        }
                        next += 1;
                        if !on_entry(&proven) {
                            return Ok(());
                        }
                    }
                }
                None => return Err(VerifyError::Malformed("an empty watch event".into()).into()),
            }
        }
    }

    /// The cluster as the answering node sees it; unverified, like everything about the
    /// cluster's operation (see [`crate::cluster`] and [`crate::ClusterAdmin::cluster_status`]).
    ///
    /// # Errors
    /// As [`crate::ClusterAdmin::cluster_status`].
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        cluster::status(&self.conn).await
    }

    /// Adds node `node_id` at `peer_addr` to every shard, each attempt limited to the config's
    /// `membership_timeout`; see [`crate::ClusterAdmin::add_member`].
    ///
    /// # Errors
    /// As [`crate::ClusterAdmin::add_member`].
    pub async fn add_member(
        &self,
        node_id: u64,
        peer_addr: &str,
    ) -> Result<Vec<ShardMembership>, ClientError> {
        cluster::add(&self.conn, self.config.membership_timeout, node_id, peer_addr).await
    }

    /// Removes node `node_id` from every shard; see [`crate::ClusterAdmin::remove_member`].
    /// Keys pinned for it stay in the trust policy until the caller drops them.
    ///
    /// # Errors
    /// As [`crate::ClusterAdmin::remove_member`].
    pub async fn remove_member(&self, node_id: u64) -> Result<Vec<ShardMembership>, ClientError> {
        cluster::remove(&self.conn, self.config.membership_timeout, node_id).await
    }

    async fn verify_bundle(
        &self,
        shard: ShardId,
        b: &pb::ProofBundle,
        floor: Option<u64>,
    ) -> Result<VerifiedRead, ClientError> {
        let bundle = convert::bundle(b)?;
        let verify = |signed: &SignedCheckpoint| self.verify_checkpoint(signed);
        let verified = verify_bundle_with(&bundle, verify, None).map_err(VerifyError::from)?;
        let cp = verified.checkpoint.checkpoint;
        if verified.shard != shard {
            return Err(
                VerifyError::Mismatch(format!("a bundle of shard {}", verified.shard.0)).into()
            );
        }
        self.observe(shard, &cp, bundle.consistency_proof.as_ref(), floor).await?;
        Ok(VerifiedRead {
            record: verified.record,
            shard,
            log_index: verified.log_index,
            checkpoint: cp,
        })
    }

    /// Moves the trusted state to `cp` (verified under the policy) if it is consistent with it,
    /// fetching a consistency proof when needed; saves the state when it moved.
    ///
    /// `floor`: for an answer that must be linearizable, the trusted tree size when its request
    /// was sent; a smaller tree is a rollback. A tree at least that large but smaller than the
    /// one trusted now (moved on by a call that ran at the same time) is no rollback: it is
    /// proven a prefix of the trusted one. `None` (a stale read): any smaller tree is proven so.
    async fn observe(
        &self,
        shard: ShardId,
        cp: &Checkpoint,
        proof: Option<&ConsistencyProof>,
        floor: Option<u64>,
    ) -> Result<(), ClientError> {
        if cp.origin != self.origin(shard)? {
            return Err(VerifyError::Mismatch(format!("a checkpoint of {}", cp.origin)).into());
        }
        let allow_older = floor.is_none_or(|f| cp.size.0 >= f);
        // Bounded: each round either settles or fetches one proof for the sizes it names.
        for _ in 0..8 {
            let (needed, before) = {
                let mut state = self.state.lock().await;
                let before = state.get(&cp.origin).cloned();
                match state.observe(cp, proof, allow_older)? {
                    Observation::Accepted => {
                        if state.get(&cp.origin) != before.as_ref() {
                            let all: Vec<Checkpoint> = state.checkpoints().cloned().collect();
                            drop(state);
                            self.store.save(&all)?;
                        }
                        return Ok(());
                    }
                    Observation::NeedsProof { from, to } => ((from, to), before),
                }
            };
            let kept = before.expect("a proof is only needed against a kept checkpoint");
            let (from, to) = needed;
            let req = pb::GetConsistencyRequest {
                shard: shard.0,
                from_size: from.0,
                to_size: Some(to.0),
            };
            let r = self
                .conn
                .call(Effect::Repeatable, |mut c| async move { c.get_consistency(req).await })
                .await?;
            let fetched = r
                .proof
                .as_ref()
                .map(convert::consistency)
                .transpose()?
                .ok_or_else(|| VerifyError::Malformed("consistency: no proof".into()))?;
            let mut state = self.state.lock().await;
            match state.settle(&kept, cp, &fetched)? {
                Settled::Moved => continue,
                Settled::Done => {
                    let all: Vec<Checkpoint> = state.checkpoints().cloned().collect();
                    drop(state);
                    self.store.save(&all)?;
                    return Ok(());
                }
            }
        }
        Err(ClientError::Unavailable("the trusted checkpoint kept moving; retry".into()))
    }
}

/// What a node says about itself, unverified: the verifier key it signs with and its logs. Used
/// once, to pin the keys a client then trusts (`blockctl trust init` shows them for the user to
/// confirm); nothing else is ever believed from it.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// The node's name.
    pub node_name: String,
    /// Its verifier key, `name+keyid+base64`.
    pub verifier_key: String,
    /// Its logs' origins, by shard.
    pub origins: Vec<String>,
}

/// Asks the node at `endpoint` who it is (see [`NodeIdentity`]).
///
/// # Errors
/// [`ClientError::Unavailable`] when it does not answer within `timeout`.
pub async fn node_identity(endpoint: &str, timeout: Duration) -> Result<NodeIdentity, ClientError> {
    let channel = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| ClientError::Unavailable(format!("endpoint {endpoint}: {e}")))?
        .timeout(timeout)
        .connect_timeout(timeout)
        .connect()
        .await
        .map_err(|e| ClientError::Unavailable(format!("{endpoint}: {e}")))?;
    let info = LedgerClient::new(channel)
        .node_info(pb::NodeInfoRequest {})
        .await
        .map_err(to_error)?
        .into_inner();
    let mut shards = info.shards_info;
    shards.sort_by_key(|s| s.shard);
    Ok(NodeIdentity {
        node_name: info.node_name,
        verifier_key: info.verifier_key,
        origins: shards.into_iter().map(|s| s.origin).collect(),
    })
}

/// A leaf whose inclusion proof verified.
#[derive(Debug, Clone)]
pub struct VerifiedEntry {
    /// The shard.
    pub shard: ShardId,
    /// The leaf's position.
    pub log_index: LogIndex,
    /// The leaf bytes (the verifier's leaf format).
    pub leaf: Vec<u8>,
    /// The checkpoint it was proven against.
    pub checkpoint: Checkpoint,
}
