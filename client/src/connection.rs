//! How calls reach the cluster: one lazily connected channel per endpoint, a time limit on every
//! call, and bounded retries with backoff and jitter on the next endpoint — only for failures
//! after which sending the call again can do no harm ([`Effect`]).
//!
//! The time limit is this module's own timer around each attempt, not the channel's: a
//! membership change may wait minutes for a new node to catch up, where a read waits seconds,
//! and both go through the same channels. Nothing here verifies anything; [`crate::Client`]
//! and [`crate::ClusterAdmin`] decide what an answer is worth.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use blockdb_proto::v1::ledger_client::LedgerClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::ClientError;

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
        let mut backoff = self.settings.backoff;
        let mut attempt = 0;
        loop {
            let i = self.next.load(Ordering::Relaxed) % self.channels.len();
            let client = LedgerClient::new(self.channels[i].clone());
            let status = match tokio::time::timeout(timeout, f(client)).await {
                Ok(Ok(response)) => return Ok(response.into_inner()),
                Ok(Err(status)) => status,
                Err(_) => tonic::Status::deadline_exceeded("the call timed out"),
            };
            if attempt >= self.settings.retries || !retryable(&status, effect) {
                return Err(to_error(status));
            }
            attempt += 1;
            self.next.fetch_add(1, Ordering::Relaxed);
            let jitter = rand::random_range(0.5..1.0);
            tokio::time::sleep(backoff.mul_f64(jitter)).await;
            backoff = (backoff * 2).min(self.settings.backoff_max);
            tracing::debug!(attempt, %status, "retrying");
        }
    }
}

/// Whether a failed call may be sent again (see [`Effect`]).
fn retryable(status: &tonic::Status, effect: Effect) -> bool {
    let code = status.metadata().get("blockdb-error-code").and_then(|v| v.to_str().ok());
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

/// The client error of a failed call: the server's refusals (its stable code in the
/// `blockdb-error-code` metadata) apart from everything that means "could not answer now".
pub(crate) fn to_error(status: tonic::Status) -> ClientError {
    let md = status.metadata();
    match md.get("blockdb-error-code").and_then(|v| v.to_str().ok()) {
        Some(code) if !matches!(code, "unavailable" | "not_leader" | "timeout" | "internal") => {
            ClientError::Rejected {
                code: code.to_owned(),
                message: status.message().to_owned(),
                current_version: md
                    .get("blockdb-current-version")
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
}
