//! Coalescing: the single-record calls (Insert, Append, Get) that a client's callers make while
//! earlier ones are on their way go out together in one `Batch` message.
//!
//! A [`Coalescer`] sends a call at once while fewer than [`IN_FLIGHT_MAX`] of its messages are
//! unanswered, so a lone caller waits for nothing; under load, the calls that queue meanwhile
//! leave together in the next message (at most [`CALLS_MAX`] calls, about [`BYTES_MAX`] bytes).
//! One message then carries what would have been many, which spares both ends most of the
//! per-call cost of HTTP/2 and TCP. The server runs each call of a batch on its own, exactly as
//! if it had come alone, and answers each at its position; nothing is verified here, and
//! [`crate::Client`] checks every answer as it checks a single call's.
//!
//! Writes and reads have coalescers of their own, because a message is retried only as its
//! [`Effect`] allows: a message of writes is sent again only when the server certainly did not get
//! it, a message of reads whenever it failed. A call's own error is the one it would have had
//! alone; one that may be retried (`not_leader`) is sent again on its own, with a single call's
//! retries.

use std::sync::Arc;

use blockdb_proto::v1 as pb;
use pb::batch_call::Call;
use pb::batch_result::Result as Answer;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tonic::metadata::{MetadataMap, MetadataValue};

use crate::connection::{self, Connection, Effect};
use crate::error::ClientError;

/// Messages of one coalescer sent and not yet answered, at most.
pub(crate) const IN_FLIGHT_MAX: usize = 2;

/// Calls in one message, at most (the server takes up to 1024).
pub(crate) const CALLS_MAX: usize = 128;

/// Bytes of keys and values in one message, about: a message closes once it passes this (a
/// single larger call goes alone, as it would without coalescing).
pub(crate) const BYTES_MAX: usize = 1 << 20;

/// The largest answer to one message the client accepts: every call's answer may carry a value
/// of up to the server's value limit (1 MiB by default) and its proofs.
const ANSWER_BYTES_MAX: usize = CALLS_MAX * ((1 << 20) + (64 << 10));

/// A call waiting for its message.
struct Queued {
    call: Call,
    reply: oneshot::Sender<Result<Answer, ClientError>>,
}

/// Gathers calls of one [`Effect`] into `Batch` messages; see the module docs.
#[derive(Debug)]
pub(crate) struct Coalescer {
    queue: mpsc::UnboundedSender<Queued>,
    conn: Arc<Connection>,
    effect: Effect,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued").finish_non_exhaustive()
    }
}

impl Coalescer {
    /// A coalescer sending through `conn`, with its task on the current tokio runtime (it ends
    /// when the coalescer is dropped).
    pub(crate) fn start(conn: Arc<Connection>, effect: Effect) -> Coalescer {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(Arc::clone(&conn), effect, rx));
        Coalescer { queue, conn, effect }
    }

    /// Sends `call` in the next message and returns its answer, or sends it alone if the
    /// coalescer's task is gone (its runtime ended).
    pub(crate) async fn call(&self, call: Call) -> Result<Answer, ClientError> {
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(q)) = self.queue.send(Queued { call, reply }) {
            return alone(&self.conn, self.effect, q.call).await;
        }
        answer.await.unwrap_or_else(|_| {
            Err(ClientError::Unavailable(
                "the client's batching task stopped before the call was answered; its outcome \
                 is unknown"
                    .into(),
            ))
        })
    }
}

/// The coalescer's task: takes the queued calls into a message whenever one may be sent.
async fn drive(conn: Arc<Connection>, effect: Effect, mut queue: mpsc::UnboundedReceiver<Queued>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    while let Some(first) = queue.recv().await {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else { break };
        let mut bytes = call_bytes(&first.call);
        let mut batch = vec![first];
        while batch.len() < CALLS_MAX && bytes < BYTES_MAX {
            match queue.try_recv() {
                Ok(q) => {
                    bytes += call_bytes(&q.call);
                    batch.push(q);
                }
                Err(_) => break,
            }
        }
        let conn = Arc::clone(&conn);
        tokio::spawn(async move {
            let _permit = permit;
            send(conn, effect, batch).await;
        });
    }
}

/// Sends one message and hands each caller its call's answer.
async fn send(conn: Arc<Connection>, effect: Effect, batch: Vec<Queued>) {
    let (calls, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|q| (q.call, q.reply)).unzip();
    let request = pb::BatchRequest {
        calls: calls.iter().cloned().map(|c| pb::BatchCall { call: Some(c) }).collect(),
    };
    let answered = conn
        .call(effect, |c| {
            let request = request.clone();
            let mut c = c.max_decoding_message_size(ANSWER_BYTES_MAX);
            async move { c.batch(request).await }
        })
        .await;
    let results = match answered {
        Ok(r) if r.results.len() == replies.len() => r.results,
        Ok(r) => {
            let message = format!(
                "the server answered {} results to a batch of {} calls; their outcomes are unknown",
                r.results.len(),
                replies.len()
            );
            for reply in replies {
                let _ = reply.send(Err(ClientError::Unavailable(message.clone())));
            }
            return;
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(copy(&e)));
            }
            return;
        }
    };
    for ((result, reply), call) in results.into_iter().zip(replies).zip(calls) {
        let answer = match result.result {
            Some(Answer::Error(e)) => {
                let status = status_of(e);
                if connection::retryable(&status, effect) {
                    let conn = Arc::clone(&conn);
                    tokio::spawn(async move {
                        let _ = reply.send(alone(&conn, effect, call).await);
                    });
                    continue;
                }
                Err(connection::to_error(status))
            }
            Some(answer) => Ok(answer),
            None => Err(ClientError::Unavailable(
                "the server answered a call of a batch with nothing; its outcome is unknown".into(),
            )),
        };
        // The caller may have gone; the call stands either way.
        let _ = reply.send(answer);
    }
}

/// Sends `call` by itself, with a single call's retries.
pub(crate) async fn alone(
    conn: &Connection,
    effect: Effect,
    call: Call,
) -> Result<Answer, ClientError> {
    match call {
        Call::Insert(req) => conn
            .call(effect, |mut c| {
                let req = req.clone();
                async move { c.insert(req).await }
            })
            .await
            .map(Answer::Write),
        Call::Append(req) => conn
            .call(effect, |mut c| {
                let req = req.clone();
                async move { c.append(req).await }
            })
            .await
            .map(Answer::Write),
        Call::Get(req) => conn
            .call(effect, |mut c| {
                let req = req.clone();
                async move { c.get(req).await }
            })
            .await
            .map(Answer::Bundle),
    }
}

/// The status the call would have failed with alone.
fn status_of(e: pb::CallError) -> tonic::Status {
    let mut metadata = MetadataMap::new();
    if let Ok(code) = MetadataValue::try_from(e.error_code.as_str())
        && !e.error_code.is_empty()
    {
        metadata.insert(connection::ERROR_CODE_KEY, code);
    }
    if let Some(v) = e.current_version {
        metadata.insert(connection::CURRENT_VERSION_KEY, MetadataValue::from(v));
    }
    tonic::Status::with_metadata(tonic::Code::from(e.grpc_code), e.message, metadata)
}

/// The same failure, for another caller of the same message.
fn copy(e: &ClientError) -> ClientError {
    match e {
        ClientError::Rejected { code, message, current_version } => ClientError::Rejected {
            code: code.clone(),
            message: message.clone(),
            current_version: *current_version,
        },
        other => ClientError::Unavailable(other.to_string()),
    }
}

fn call_bytes(call: &Call) -> usize {
    match call {
        Call::Insert(r) => r.key.len() + r.value.len(),
        Call::Append(r) => r.key.len() + r.value.len(),
        Call::Get(r) => r.key.len(),
    }
}
