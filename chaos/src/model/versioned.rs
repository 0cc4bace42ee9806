//! A BlockDB key as the chaos harness records it: a history of versions 1, 2, 3, … written by
//! `append`, with an optional expected version (compare-and-append), and read whole.
//!
//! The key starts with no version (not found). In the history:
//!
//! | `f` | invoke `value` | `ok` `value` | `fail` | `info` / no completion |
//! |---|---|---|---|---|
//! | `append` | `{"value": v, "expected_version": n}` (`expected_version` optional) | `{"version": n}` | `error: "version_mismatch"`, `value` optionally `{"current_version": n}`; any other error: no effect | may have appended |
//! | `read` | none | `{"version": n, "value": v}`, or none = not found | no effect, matches any state | matches any state |
//!
//! - `append` ok returns the new version, which must be the previous version + 1; it requires
//!   the current version to equal `expected_version` when one is given. `expected_version: 0`
//!   asks for a key with no version yet (as `insert` does).
//! - A `version_mismatch` failure means the expected version was not current: it requires an
//!   `expected_version` different from the current version, and if the server reported the
//!   current version, that it was the current one. Any other failure (not leader, overloaded) is
//!   a definite no-op and constrains nothing.
//! - `read` ok must return exactly the current version and its value; none means the key has no
//!   version.
//! - An `info` append takes effect, if it does, exactly as an ok one would have at that point.

use std::fmt;

use serde_json::Value as Json;

use super::{Completion, DecodeError, HistoryModel, Model, Value};
use crate::history::Event;

/// The `error` of an append that failed because `expected_version` was not current.
pub const VERSION_MISMATCH: &str = "version_mismatch";

/// The BlockDB key model. See the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct VersionedRegister;

/// A version of a key and its value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyVersion {
    /// The version, from 1.
    pub version: u64,
    /// Its value.
    pub value: Value,
}

/// A key's latest version, or `None` when it has none (not found).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VersionedState(pub Option<KeyVersion>);

impl VersionedState {
    /// The current version; 0 when the key has none.
    pub fn version(&self) -> u64 {
        self.0.as_ref().map_or(0, |v| v.version)
    }
}

/// An operation on a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionedInput {
    /// Add the next version, if the current one is `expected_version` (when given).
    Append {
        /// The value to append.
        value: Value,
        /// The version the key must be at.
        expected_version: Option<u64>,
    },
    /// Read the latest version.
    Read,
}

/// What an operation on a key returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionedOutput {
    /// An append succeeded and created this version.
    Appended {
        /// The new version.
        version: u64,
    },
    /// An append failed because its expected version was not current.
    VersionMismatch {
        /// The current version, if the server said.
        current_version: Option<u64>,
    },
    /// A read returned this version, or not found.
    Read(Option<KeyVersion>),
    /// The operation certainly did not take effect, for another reason.
    Failed,
    /// The outcome is unknown.
    Unknown,
}

impl Model for VersionedRegister {
    type State = VersionedState;
    type Input = VersionedInput;
    type Output = VersionedOutput;

    fn init(&self) -> VersionedState {
        VersionedState(None)
    }

    fn step(
        &self,
        state: &VersionedState,
        input: &VersionedInput,
        output: &VersionedOutput,
    ) -> Option<VersionedState> {
        use VersionedInput as I;
        use VersionedOutput as O;
        let current = state.version();
        match (input, output) {
            (I::Append { value, expected_version }, O::Appended { version }) => {
                let next = current.checked_add(1)?;
                let allowed = expected_version.is_none_or(|e| e == current) && *version == next;
                allowed.then(|| appended(next, value))
            }
            (I::Append { expected_version, .. }, O::VersionMismatch { current_version }) => {
                let mismatched = expected_version.is_some_and(|e| e != current);
                let reported = current_version.is_none_or(|c| c == current);
                (mismatched && reported).then(|| state.clone())
            }
            (I::Append { value, expected_version }, O::Unknown) => {
                if expected_version.is_none_or(|e| e == current) {
                    Some(appended(current.checked_add(1)?, value))
                } else {
                    Some(state.clone())
                }
            }
            (I::Append { .. } | I::Read, O::Failed) | (I::Read, O::Unknown) => Some(state.clone()),
            (I::Read, O::Read(read)) => (*read == state.0).then(|| state.clone()),
            // `decode` never pairs an append with a read's result or the reverse.
            (I::Append { .. }, O::Read(_))
            | (I::Read, O::Appended { .. } | O::VersionMismatch { .. }) => None,
        }
    }
}

fn appended(version: u64, value: &Value) -> VersionedState {
    VersionedState(Some(KeyVersion { version, value: value.clone() }))
}

impl HistoryModel for VersionedRegister {
    const NAME: &'static str = "blockdb-register";

    fn decode(
        &self,
        invoke: &Event,
        completion: Completion<'_>,
    ) -> Result<(VersionedInput, VersionedOutput), DecodeError> {
        match invoke.f.as_str() {
            "append" => decode_append(invoke, completion),
            "read" => {
                let output = match completion {
                    Completion::Ok(event) => VersionedOutput::Read(decode_read(event)?),
                    Completion::Fail(_) | Completion::Unknown => VersionedOutput::Unknown,
                };
                Ok((VersionedInput::Read, output))
            }
            other => Err(DecodeError::UnknownFunction {
                f: other.to_owned(),
                model: Self::NAME,
                known: "append, read",
            }),
        }
    }
}

const APPEND_SHAPE: &str = r#"{"value": v, "expected_version": n}"#;

fn decode_append(
    invoke: &Event,
    completion: Completion<'_>,
) -> Result<(VersionedInput, VersionedOutput), DecodeError> {
    let bad = || DecodeError::bad_argument("append argument", APPEND_SHAPE, invoke.value.as_ref());
    let Some(Json::Object(arg)) = &invoke.value else { return Err(bad()) };
    if arg.keys().any(|k| k != "value" && k != "expected_version") {
        return Err(bad());
    }
    let value = Value::from_json(arg.get("value").ok_or_else(bad)?);
    let expected_version = match arg.get("expected_version") {
        None | Some(Json::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(bad)?),
    };
    let output = match completion {
        Completion::Ok(event) => {
            let version = version_field(event.value.as_ref(), "version")
                .filter(|&v| v >= 1)
                .ok_or_else(|| {
                    DecodeError::bad_result(
                        "append result",
                        r#"{"version": n >= 1}"#,
                        event.value.as_ref(),
                    )
                })?;
            VersionedOutput::Appended { version }
        }
        Completion::Fail(event) if event.error.as_deref() == Some(VERSION_MISMATCH) => {
            let current_version = match &event.value {
                None => None,
                Some(v) => Some(version_field(Some(v), "current_version").ok_or_else(|| {
                    DecodeError::bad_result(
                        "version_mismatch result",
                        r#"nothing or {"current_version": n}"#,
                        Some(v),
                    )
                })?),
            };
            VersionedOutput::VersionMismatch { current_version }
        }
        Completion::Fail(_) => VersionedOutput::Failed,
        Completion::Unknown => VersionedOutput::Unknown,
    };
    Ok((VersionedInput::Append { value, expected_version }, output))
}

/// `{"<name>": n}` with no other field → `n`.
fn version_field(value: Option<&Json>, name: &str) -> Option<u64> {
    match value {
        Some(Json::Object(map)) if map.len() == 1 => map.get(name)?.as_u64(),
        _ => None,
    }
}

fn decode_read(event: &Event) -> Result<Option<KeyVersion>, DecodeError> {
    let Some(result) = &event.value else { return Ok(None) };
    let bad = || {
        DecodeError::bad_result(
            "read result",
            r#"nothing or {"version": n >= 1, "value": v}"#,
            Some(result),
        )
    };
    let Json::Object(map) = result else { return Err(bad()) };
    if map.len() != 2 {
        return Err(bad());
    }
    let version = map.get("version").and_then(Json::as_u64).filter(|&v| v >= 1).ok_or_else(bad)?;
    let value = Value::from_json(map.get("value").ok_or_else(bad)?);
    Ok(Some(KeyVersion { version, value }))
}

impl fmt::Display for VersionedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => write!(f, "not found"),
            Some(KeyVersion { version, value }) => write!(f, "v{version} = {value}"),
        }
    }
}

impl fmt::Display for VersionedInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionedInput::Append { value, expected_version: None } => write!(f, "append {value}"),
            VersionedInput::Append { value, expected_version: Some(e) } => {
                write!(f, "append {value} if v{e}")
            }
            VersionedInput::Read => write!(f, "read"),
        }
    }
}

impl fmt::Display for VersionedOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionedOutput::Appended { version } => write!(f, "v{version}"),
            VersionedOutput::VersionMismatch { current_version: None } => {
                write!(f, "version mismatch")
            }
            VersionedOutput::VersionMismatch { current_version: Some(c) } => {
                write!(f, "version mismatch (current v{c})")
            }
            VersionedOutput::Read(read) => write!(f, "{}", VersionedState(read.clone())),
            VersionedOutput::Failed => write!(f, "fail"),
            VersionedOutput::Unknown => write!(f, "unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventType, History};
    use crate::linearizability::{Budget, Verdict, check_history};
    use serde_json::json;

    /// A small history builder: each call adds one event; times are 1, 2, 3, ….
    #[derive(Default)]
    struct Script(Vec<Event>);

    impl Script {
        fn event(mut self, process: u64, kind: EventType, f: &str, value: Json) -> Self {
            let time_ns = self.0.len() as u64 + 1;
            let value = Some(value);
            self.0.push(Event {
                process,
                kind,
                f: f.into(),
                key: Some("k".into()),
                value,
                error: None,
                time_ns,
            });
            self
        }
        fn append(self, p: u64, value: &str, expected: Option<u64>) -> Self {
            self.event(
                p,
                EventType::Invoke,
                "append",
                json!({"value": value, "expected_version": expected}),
            )
        }
        fn appended(self, p: u64, version: u64) -> Self {
            self.event(p, EventType::Ok, "append", json!({ "version": version }))
        }
        fn mismatch(mut self, p: u64, current: Option<u64>) -> Self {
            let value = current.map_or(Json::Null, |c| json!({ "current_version": c }));
            self = self.event(p, EventType::Fail, "append", value);
            self.0.last_mut().unwrap().error = Some(VERSION_MISMATCH.into());
            self
        }
        fn info(self, p: u64, f: &str) -> Self {
            self.event(p, EventType::Info, f, Json::Null)
        }
        fn read(self, p: u64) -> Self {
            self.event(p, EventType::Invoke, "read", Json::Null)
        }
        fn read_ok(self, p: u64, seen: Option<(u64, &str)>) -> Self {
            let value = seen
                .map_or(Json::Null, |(version, value)| json!({"version": version, "value": value}));
            self.event(p, EventType::Ok, "read", value)
        }
        fn verdict(self) -> Verdict {
            let history = History::from_events(self.0).unwrap();
            let report = check_history(&VersionedRegister, &history, &Budget::default()).unwrap();
            report.keys.into_iter().next().unwrap().verdict
        }
        fn must_linearizable(self) {
            let v = self.verdict();
            assert!(matches!(v, Verdict::Linearizable), "want linearizable, got {v}");
        }
        fn must_not_linearizable(self) {
            let v = self.verdict();
            assert!(matches!(v, Verdict::NotLinearizable(_)), "want not linearizable, got {v}");
        }
    }

    #[test]
    fn sequential_appends_count_versions_from_one() {
        Script::default()
            .read(0)
            .read_ok(0, None)
            .append(0, "a", None)
            .appended(0, 1)
            .append(0, "b", Some(1))
            .appended(0, 2)
            .append(1, "c", Some(1))
            .mismatch(1, Some(2))
            .append(1, "d", Some(0))
            .mismatch(1, None)
            .read(1)
            .read_ok(1, Some((2, "b")))
            .must_linearizable();
    }

    #[test]
    fn versions_must_not_skip_or_repeat() {
        Script::default().append(0, "a", None).appended(0, 2).must_not_linearizable();
        Script::default()
            .append(0, "a", None)
            .appended(0, 1)
            .append(1, "b", None)
            .appended(1, 1)
            .must_not_linearizable();
    }

    #[test]
    fn compare_and_append_checks_the_expected_version() {
        // ok although the key was at 1, not 0.
        Script::default()
            .append(0, "a", None)
            .appended(0, 1)
            .append(0, "b", Some(0))
            .appended(0, 2)
            .must_not_linearizable();
        // A mismatch although the expected version was current.
        Script::default()
            .append(0, "a", None)
            .appended(0, 1)
            .append(0, "b", Some(1))
            .mismatch(0, None)
            .must_not_linearizable();
        // A mismatch that reports a current version the key never had at that time.
        Script::default()
            .append(0, "a", None)
            .appended(0, 1)
            .append(0, "b", Some(0))
            .mismatch(0, Some(3))
            .must_not_linearizable();
        // A mismatch on an append that expected nothing cannot happen.
        Script::default().append(0, "a", None).mismatch(0, None).must_not_linearizable();
    }

    #[test]
    fn a_lost_append_is_not_linearizable() {
        Script::default()
            .append(0, "a", None)
            .appended(0, 1)
            .append(0, "b", None)
            .appended(0, 2)
            .read(1)
            .read_ok(1, Some((1, "a")))
            .must_not_linearizable();
        // The version is right but the value is another one's.
        Script::default()
            .append(0, "a", None)
            .appended(0, 1)
            .read(1)
            .read_ok(1, Some((1, "x")))
            .must_not_linearizable();
    }

    #[test]
    fn concurrent_appends_take_versions_in_either_order() {
        for (va, vb) in [(1, 2), (2, 1)] {
            let top = if va == 2 { "a" } else { "b" };
            Script::default()
                .append(0, "a", None)
                .append(1, "b", None)
                .appended(0, va)
                .appended(1, vb)
                .read(2)
                .read_ok(2, Some((2, top)))
                .must_linearizable();
        }
    }

    #[test]
    fn info_appends_are_applied_only_when_the_history_needs_them() {
        // Seen by a read: it must have been applied, before the read.
        Script::default()
            .append(0, "a", None)
            .info(0, "append")
            .read(1)
            .read_ok(1, Some((1, "a")))
            .append(1, "b", Some(1))
            .appended(1, 2)
            .must_linearizable();
        // Never seen, and a later compare-and-append on version 0 succeeded: the info append
        // must not have taken effect before it.
        Script::default()
            .append(0, "a", Some(0))
            .info(0, "append")
            .append(1, "b", Some(0))
            .appended(1, 1)
            .read(1)
            .read_ok(1, Some((1, "b")))
            .must_linearizable();
        // It cannot be undone: once seen, a later read of not-found is a violation.
        Script::default()
            .append(0, "a", None)
            .info(0, "append")
            .read(1)
            .read_ok(1, Some((1, "a")))
            .read(1)
            .read_ok(1, None)
            .must_not_linearizable();
    }

    #[test]
    fn decode_refuses_results_of_the_wrong_shape() {
        let invoke = Event::invoke(0, "append", None, Some(json!({"value": 1})), 1);
        let bad_ok = Event {
            value: Some(json!({"version": 0})),
            ..Event::complete(&invoke, EventType::Ok, None, None, 2)
        };
        let e = VersionedRegister.decode(&invoke, Completion::Ok(&bad_ok)).unwrap_err();
        assert!(e.to_string().starts_with("append result: expected"), "{e}");
        let wrong_arg = Event::invoke(0, "append", None, Some(json!({"val": 1})), 1);
        assert!(VersionedRegister.decode(&wrong_arg, Completion::Unknown).is_err());
        let read = Event::invoke(0, "read", None, None, 1);
        let bad_read =
            Event { value: Some(json!(3)), ..Event::complete(&read, EventType::Ok, None, None, 2) };
        assert!(VersionedRegister.decode(&read, Completion::Ok(&bad_read)).is_err());
        let other_failure = Event {
            error: Some("not_leader".into()),
            ..Event::complete(&invoke, EventType::Fail, None, None, 2)
        };
        let (_, out) = VersionedRegister.decode(&invoke, Completion::Fail(&other_failure)).unwrap();
        assert_eq!(out, VersionedOutput::Failed);
    }
}
