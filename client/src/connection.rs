//! How calls reach the cluster: one lazily connected channel per endpoint, a time limit on every
//! call, and bounded retries with backoff and jitter on the next endpoint — only for failures
//! after which sending the call again can do no harm ([`Effect`]).
//!
//! The time limit is this module's own timer around each attempt, not the channel's: a
//! membership change may wait minutes for a new node to catch up, where a read waits seconds,
//! and both go through the same channels. Nothing here verifies anything; [`crate::Client`]
//! and [`crate::ClusterAdmin`] decide what an answer is worth.
//!
//! An interactive transaction lives on the node that began it, so its calls are pinned to that
//! endpoint ([`Connection::call_on`]): never sent elsewhere, and sent again only when the node
//! certainly did not get them or, for a call that may be repeated, when no answer came. An answer
//! with the server's error code is final there: the node has acted on the call (and usually
//! ended the transaction).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use blockdb_proto::v1::ledger_client::LedgerClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::ClientError;

/// The metadata key of the server's stable error code on an error status.
pub(crate) const ERROR_CODE_KEY: &str = "blockdb-error-code";

/// The metadata key of a key's current version, on `already_exists` and `version_mismatch`.
pub(crate) const CURRENT_VERSION_KEY: &str = "blockdb-current-version";

/// What sending a call twice would do, which decides which failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Reads, and changes that a repeat leaves as they are (adding a member that already is
    /// one): every failure of the network or the cluster is retried, a timeout included.
    Repeatable,
    /// Writes: retried only when the server certainly did not act on the call (no connection
    /// was made, or it answered `not_leader`). After a timeout the outcome is unknown, and it is
    /// reported as such rather than risked twice.
    Once,
}

/// Time limits and retries of calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Limit on each attempt of an ordinary call, and on making a connection.
    pub timeout: Duration,
    /// Retries of a call that failed for a retryable reason, at most.
    pub retries: u32,
    /// First backoff between retries; it doubles, with jitter, up to `backoff_max`.
    pub backoff: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
}

impl Default for Settings {
    /// 10 s per call, 4 retries, backoff from 50 ms to 2 s.
    fn default() -> Settings {
        Settings {
            timeout: Duration::from_secs(10),
            retries: 4,
            backoff: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
        }
    }
}

/// One of a connection's endpoints, by its position in the configured list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EndpointId(usize);

/// Channels to the endpoints, used in turn.
#[derive(Debug)]
pub(crate) struct Connection {
    channels: Vec<Channel>,
    next: AtomicUsize,
    settings: Settings,
}

impl Connection {
    /// Channels to `endpoints` (`http://host:port`); nothing is dialled until the first call.
    ///
    /// # Errors
    /// [`ClientError::Unavailable`] when there is no endpoint or one is not a URL.
    pub fn open(endpoints: &[String], settings: Settings) -> Result<Connection, ClientError> {
        let mut channels = Vec::new();
        for e in endpoints {
            let endpoint = Endpoint::from_shared(e.clone())
                .map_err(|err| ClientError::Unavailable(format!("endpoint {e}: {err}")))?
                .connect_timeout(settings.timeout)
                .tcp_nodelay(true);
            channels.push(endpoint.connect_lazy());
        }
        if channels.is_empty() {
            return Err(ClientError::Unavailable("no endpoint configured".into()));
        }
        Ok(Connection { channels, next: AtomicUsize::new(0), settings })
    }

    /// Calls `f` within the ordinary time limit; see [`Connection::call_within`].
    pub async fn call<T, F, Fut>(&self, effect: Effect, f: F) -> Result<T, ClientError>
    where
        F: Fn(LedgerClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call_within(effect, self.settings.timeout, f).await
    }

    /// Calls `f` on a connection, each attempt limited to `timeout`, retrying the failures
    /// `effect` allows on the next endpoint with exponential backoff and jitter, at most
    /// `retries` times.
    ///
    /// # Errors
    /// The last attempt's failure ([`to_error`]).
    pub async fn call_within<T, F, Fut>(
        &self,
        effect: Effect,
        timeout: Duration,
        f: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(LedgerClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        Ok(self.attempts(effect, timeout, None, f).await?.0)
    }

    /// As [`Connection::call`], and says which endpoint answered, for the calls that must
    /// follow on the same node ([`Connection::call_on`]).
    ///
    /// # Errors
    /// As [`Connection::call_within`].
    pub async fn call_answered<T, F, Fut>(
        &self,
        effect: Effect,
        f: F,
    ) -> Result<(T, EndpointId), ClientError>
    where
        F: Fn(LedgerClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.attempts(effect, self.settings.timeout, None, f).await
    }

    /// Calls `f` on `endpoint` only, each attempt limited to `timeout`, retrying there (with
    /// backoff, at most `retries` times) only the failures that carry no error code of the
    /// server and that `effect` allows: a call that certainly did not arrive, and, when it may be
    /// repeated, one whose answer did not come.
    ///
    /// # Errors
    /// The last attempt's failure ([`to_error`]).
    pub async fn call_on<T, F, Fut>(
        &self,
        endpoint: EndpointId,
        effect: Effect,
        timeout: Duration,
        f: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(LedgerClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        Ok(self.attempts(effect, timeout, Some(endpoint), f).await?.0)
    }

    /// The attempts of one call: on `pinned` only when it is set, else on the endpoints in
    /// turn. Bounded by `retries` + 1 attempts.
    async fn attempts<T, F, Fut>(
        &self,
        effect: Effect,
        timeout: Duration,
        pinned: Option<EndpointId>,
        f: F,
    ) -> Result<(T, EndpointId), ClientError>
    where
        F: Fn(LedgerClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut backoff = self.settings.backoff;
        let mut attempt = 0;
        loop {
            let i = match pinned {
                Some(EndpointId(i)) => i,
                None => self.next.load(Ordering::Relaxed),
            } % self.channels.len();
            let client = LedgerClient::new(self.channels[i].clone());
            let status = match tokio::time::timeout(timeout, f(client)).await {
                Ok(Ok(response)) => return Ok((response.into_inner(), EndpointId(i))),
                Ok(Err(status)) => status,
                Err(_) => tonic::Status::deadline_exceeded("the call timed out"),
            };
            let again = match pinned {
                Some(_) => retryable_on_the_same_node(&status, effect),
                None => retryable(&status, effect),
            };
            if attempt >= self.settings.retries || !again {
                return Err(to_error(status));
            }
            attempt += 1;
            if pinned.is_none() {
                self.next.fetch_add(1, Ordering::Relaxed);
            }
            let jitter = rand::random_range(0.5..1.0);
            tokio::time::sleep(backoff.mul_f64(jitter)).await;
            backoff = (backoff * 2).min(self.settings.backoff_max);
            tracing::debug!(attempt, %status, "retrying");
        }
    }
}

/// Whether a failed call may be sent again (see [`Effect`]).
pub(crate) fn retryable(status: &tonic::Status, effect: Effect) -> bool {
    let code = status.metadata().get(ERROR_CODE_KEY).and_then(|v| v.to_str().ok());
    match status.code() {
        tonic::Code::Unavailable if code == Some("not_leader") => true,
        // Without our code, UNAVAILABLE comes from the transport: no connection was made.
        tonic::Code::Unavailable if code.is_none() => true,
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            effect == Effect::Repeatable
        }
        _ => false,
    }
}

/// Whether a failed call pinned to one node may be sent to it again: only a failure without
/// the server's error code (the transport's, or the client's own time limit) that [`retryable`]
/// allows. With a code, the node answered, and its answer stands: `not_leader` or `unavailable`
/// from an interactive transaction's step mean that the node aborted the transaction.
fn retryable_on_the_same_node(status: &tonic::Status, effect: Effect) -> bool {
    status.metadata().get(ERROR_CODE_KEY).is_none() && retryable(status, effect)
}

/// The client error of a failed call: the server's refusals (its stable code in the
/// `blockdb-error-code` metadata) apart from everything that means "could not answer now".
pub(crate) fn to_error(status: tonic::Status) -> ClientError {
    let md = status.metadata();
    match md.get(ERROR_CODE_KEY).and_then(|v| v.to_str().ok()) {
        Some(code) if !matches!(code, "unavailable" | "not_leader" | "timeout" | "internal") => {
            ClientError::Rejected {
                code: code.to_owned(),
                message: status.message().to_owned(),
                current_version: md
                    .get(CURRENT_VERSION_KEY)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok()),
            }
        }
        _ => ClientError::Unavailable(format!("{}: {}", status.code(), status.message())),
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataValue;

    use super::*;

    fn with_code(code: tonic::Code, ours: Option<&'static str>) -> tonic::Status {
        let mut s = tonic::Status::new(code, "m");
        if let Some(c) = ours {
            s.metadata_mut().insert("blockdb-error-code", MetadataValue::from_static(c));
        }
        s
    }

    #[test]
    fn only_repeatable_calls_are_retried_after_an_unknown_outcome() {
        use tonic::Code::*;
        // The server certainly did not act: retried either way.
        for s in [with_code(Unavailable, Some("not_leader")), with_code(Unavailable, None)] {
            assert!(retryable(&s, Effect::Once) && retryable(&s, Effect::Repeatable), "{s}");
        }
        // It may have acted.
        for s in [
            with_code(Unavailable, Some("unavailable")),
            with_code(DeadlineExceeded, Some("timeout")),
            with_code(DeadlineExceeded, None),
            with_code(Cancelled, None),
        ] {
            assert!(!retryable(&s, Effect::Once) && retryable(&s, Effect::Repeatable), "{s}");
        }
        // A refusal is final.
        for s in [with_code(NotFound, Some("not_found")), with_code(InvalidArgument, None)] {
            assert!(!retryable(&s, Effect::Once) && !retryable(&s, Effect::Repeatable), "{s}");
        }
        assert_eq!(
            to_error(with_code(NotFound, Some("not_found"))).code(),
            Some("not_found"),
            "a refusal keeps its code"
        );
        assert!(matches!(
            to_error(with_code(DeadlineExceeded, Some("timeout"))),
            ClientError::Unavailable(_)
        ));
    }

    #[test]
    fn a_node_that_answered_is_not_asked_again() {
        use tonic::Code::*;
        // The call did not arrive: sent again, whatever it does.
        let s = with_code(Unavailable, None);
        assert!(retryable_on_the_same_node(&s, Effect::Once), "{s}");
        // No answer came: sent again only if repeating it is harmless.
        for s in [with_code(DeadlineExceeded, None), with_code(Cancelled, None)] {
            assert!(retryable_on_the_same_node(&s, Effect::Repeatable), "{s}");
            assert!(!retryable_on_the_same_node(&s, Effect::Once), "{s}");
        }
        // The node answered, even with a code that other calls retry elsewhere.
        for s in [
            with_code(Unavailable, Some("not_leader")),
            with_code(Unavailable, Some("unavailable")),
            with_code(DeadlineExceeded, Some("timeout")),
            with_code(Aborted, Some("deadlock")),
        ] {
            assert!(!retryable_on_the_same_node(&s, Effect::Repeatable), "{s}");
        }
    }
}
