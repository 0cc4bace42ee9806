//! A read / write / compare-and-set register, as in Jepsen's etcd tests (Knossos' `cas-register`,
//! Porcupine's `etcdModel`).
//!
//! The register starts as nil (no value). In the history:
//!
//! | `f` | invoke `value` | `ok` `value` | `fail` | `info` / no completion |
//! |---|---|---|---|---|
//! | `read` | none | the value read, none = nil | no effect, matches any state | matches any state |
//! | `write` | the value | ignored | no effect, matches any state | may have written |
//! | `cas` | `[from, to]` | ignored | no effect, requires state ≠ `from` | may have swapped |
//!
//! - `read` ok must return exactly the current value (nil when nothing was written).
//! - `cas` ok requires state = `from` and sets `to`; a definite `fail` means the comparison
//!   failed, so the state was not `from`.
//! - A read that failed (Jepsen's `:fail :read :timed-out`) or whose outcome is unknown tells
//!   nothing: it matches any state and changes nothing.
//!
//! JSON `null` is nil: `write null` clears the register and `cas [null, 1]` succeeds on an
//! empty one.

use std::fmt;

use super::{Completion, DecodeError, HistoryModel, Model, Value};
use crate::history::Event;

/// The register model. See the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct Register;

/// The register's value; `None` is nil.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegisterState(pub Option<Value>);

/// A register operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterInput {
    /// Read the value.
    Read,
    /// Set the value.
    Write(Option<Value>),
    /// Set `to` if the value is `from`.
    Cas {
        /// The value expected.
        from: Option<Value>,
        /// The value to set.
        to: Option<Value>,
    },
}

/// What a register operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOutput {
    /// A read returned this value.
    Read(Option<Value>),
    /// A write or cas succeeded.
    Ok,
    /// The operation certainly did not take effect (for a cas: the comparison failed).
    Fail,
    /// The outcome is unknown.
    Unknown,
}

impl Model for Register {
    type State = RegisterState;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&self) -> RegisterState {
        RegisterState(None)
    }

    fn step(
        &self,
        state: &RegisterState,
        input: &RegisterInput,
        output: &RegisterOutput,
    ) -> Option<RegisterState> {
        use RegisterInput as I;
        use RegisterOutput as O;
        let current = &state.0;
        match (input, output) {
            (I::Read, O::Read(v)) => (v == current).then(|| state.clone()),
            (I::Read, O::Ok | O::Fail | O::Unknown) => Some(state.clone()),
            (I::Write(v), O::Ok | O::Unknown) => Some(RegisterState(v.clone())),
            (I::Write(_), O::Fail) => Some(state.clone()),
            (I::Cas { from, to }, O::Ok) => (from == current).then(|| RegisterState(to.clone())),
            (I::Cas { from, .. }, O::Fail) => (from != current).then(|| state.clone()),
            (I::Cas { from, to }, O::Unknown) => {
                Some(if from == current { RegisterState(to.clone()) } else { state.clone() })
            }
            // `decode` never pairs a write or cas with a read's result.
            (I::Write(_) | I::Cas { .. }, O::Read(_)) => None,
        }
    }
}

impl HistoryModel for Register {
    const NAME: &'static str = "register";

    fn decode(
        &self,
        invoke: &Event,
        completion: Completion<'_>,
    ) -> Result<(RegisterInput, RegisterOutput), DecodeError> {
        let value = |v: Option<&serde_json::Value>| v.map(Value::from_json);
        let input = match invoke.f.as_str() {
            "read" => RegisterInput::Read,
            "write" => RegisterInput::Write(value(invoke.value.as_ref())),
            "cas" => match &invoke.value {
                Some(serde_json::Value::Array(pair)) if pair.len() == 2 => RegisterInput::Cas {
                    from: value(Some(&pair[0]).filter(|v| !v.is_null())),
                    to: value(Some(&pair[1]).filter(|v| !v.is_null())),
                },
                other => {
                    return Err(DecodeError::bad_argument(
                        "cas argument",
                        "[from, to]",
                        other.as_ref(),
                    ));
                }
            },
            other => {
                return Err(DecodeError::UnknownFunction {
                    f: other.to_owned(),
                    model: Self::NAME,
                    known: "read, write, cas",
                });
            }
        };
        let output = match (completion, &input) {
            (Completion::Ok(event), RegisterInput::Read) => {
                RegisterOutput::Read(value(event.value.as_ref()))
            }
            (Completion::Ok(_), _) => RegisterOutput::Ok,
            (Completion::Fail(_), _) => RegisterOutput::Fail,
            (Completion::Unknown, _) => RegisterOutput::Unknown,
        };
        Ok((input, output))
    }
}

fn nil_or(v: &Option<Value>) -> &dyn fmt::Display {
    match v {
        Some(v) => v,
        None => &"nil",
    }
}

impl fmt::Display for RegisterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", nil_or(&self.0))
    }
}

impl fmt::Display for RegisterInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterInput::Read => write!(f, "read"),
            RegisterInput::Write(v) => write!(f, "write {}", nil_or(v)),
            RegisterInput::Cas { from, to } => write!(f, "cas {} -> {}", nil_or(from), nil_or(to)),
        }
    }
}

impl fmt::Display for RegisterOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterOutput::Read(v) => write!(f, "{}", nil_or(v)),
            RegisterOutput::Ok => write!(f, "ok"),
            RegisterOutput::Fail => write!(f, "fail"),
            RegisterOutput::Unknown => write!(f, "unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::linearizability::{Budget, Verdict, check_history};
    use serde_json::json;

    /// A history for [`Register`] from a compact script: `(process, "invoke"|..., f, value)`,
    /// one event per line, times 1, 2, 3, ….
    fn must_history(script: &[(u64, &str, &str, serde_json::Value)]) -> History {
        let events = script.iter().enumerate().map(|(t, (process, kind, f, value))| Event {
            process: *process,
            kind: serde_json::from_value(json!(kind)).unwrap(),
            f: (*f).to_owned(),
            key: None,
            value: Some(value.clone()),
            error: None,
            time_ns: t as u64 + 1,
        });
        History::from_events(events).unwrap()
    }

    fn verdict(script: &[(u64, &str, &str, serde_json::Value)]) -> Verdict {
        let report = check_history(&Register, &must_history(script), &Budget::default()).unwrap();
        assert_eq!(report.keys.len(), 1);
        report.keys.into_iter().next().unwrap().verdict
    }

    fn must_linearizable(script: &[(u64, &str, &str, serde_json::Value)]) {
        let v = verdict(script);
        assert!(matches!(v, Verdict::Linearizable), "want linearizable, got {v}");
    }

    /// Asserts the history is not linearizable and returns the line of the op that was blocked.
    fn must_not_linearizable(script: &[(u64, &str, &str, serde_json::Value)]) -> usize {
        match verdict(script) {
            Verdict::NotLinearizable(e) => e.blocked.invoke_line,
            v => panic!("want not linearizable, got {v}"),
        }
    }

    const N: serde_json::Value = serde_json::Value::Null;

    #[test]
    fn step_follows_the_jepsen_register() {
        let r = Register;
        let v = |n: i32| Some(Value::from_json(&json!(n)));
        let s = |x: Option<Value>| RegisterState(x);
        let cas = RegisterInput::Cas { from: v(1), to: v(2) };
        assert_eq!(r.init(), s(None));
        assert_eq!(
            r.step(&s(None), &RegisterInput::Read, &RegisterOutput::Read(None)),
            Some(s(None))
        );
        assert_eq!(r.step(&s(v(1)), &RegisterInput::Read, &RegisterOutput::Read(None)), None);
        assert_eq!(r.step(&s(v(1)), &RegisterInput::Read, &RegisterOutput::Unknown), Some(s(v(1))));
        assert_eq!(r.step(&s(v(1)), &RegisterInput::Read, &RegisterOutput::Fail), Some(s(v(1))));
        assert_eq!(
            r.step(&s(None), &RegisterInput::Write(v(3)), &RegisterOutput::Ok),
            Some(s(v(3)))
        );
        assert_eq!(r.step(&s(v(1)), &cas, &RegisterOutput::Ok), Some(s(v(2))));
        assert_eq!(r.step(&s(v(3)), &cas, &RegisterOutput::Ok), None);
        assert_eq!(r.step(&s(v(1)), &cas, &RegisterOutput::Fail), None, "fail needs state != from");
        assert_eq!(r.step(&s(v(3)), &cas, &RegisterOutput::Fail), Some(s(v(3))));
        assert_eq!(r.step(&s(v(1)), &cas, &RegisterOutput::Unknown), Some(s(v(2))));
        assert_eq!(r.step(&s(v(3)), &cas, &RegisterOutput::Unknown), Some(s(v(3))));
    }

    #[test]
    fn decode_refuses_unknown_operations_and_bad_cas_arguments() {
        let e = Event::invoke(0, "cas", None, Some(json!([1])), 1);
        assert!(Register.decode(&e, Completion::Unknown).is_err());
        let e = Event::invoke(0, "incr", None, None, 1);
        let err = Register.decode(&e, Completion::Unknown).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown operation \"incr\" for model register (it knows read, write, cas)"
        );
    }

    #[test]
    fn sequential_history() {
        must_linearizable(&[
            (0, "invoke", "read", N),
            (0, "ok", "read", N),
            (0, "invoke", "write", json!(1)),
            (0, "ok", "write", json!(1)),
            (1, "invoke", "cas", json!([1, 2])),
            (1, "ok", "cas", json!([1, 2])),
            (1, "invoke", "cas", json!([1, 3])),
            (1, "fail", "cas", json!([1, 3])),
            (0, "invoke", "read", N),
            (0, "ok", "read", json!(2)),
        ]);
    }

    #[test]
    fn concurrent_writes_can_be_ordered_either_way() {
        for last in [1, 2] {
            must_linearizable(&[
                (0, "invoke", "write", json!(1)),
                (1, "invoke", "write", json!(2)),
                (0, "ok", "write", json!(1)),
                (1, "ok", "write", json!(2)),
                (2, "invoke", "read", N),
                (2, "ok", "read", json!(last)),
            ]);
        }
        // A read concurrent with a write sees the old value or the new one, not a third.
        for (seen, linearizable) in [(json!(1), true), (N, true), (json!(2), false)] {
            let script = [
                (0, "invoke", "write", json!(1)),
                (1, "invoke", "read", N),
                (1, "ok", "read", seen.clone()),
                (0, "ok", "write", json!(1)),
            ];
            if linearizable {
                must_linearizable(&script);
            } else {
                must_not_linearizable(&script);
            }
        }
    }

    #[test]
    fn a_stale_read_is_not_linearizable_because_of_real_time_order() {
        // Without real-time order, the read could be placed before the write; it may not be,
        // because the write finished (line 2) before the read began (line 3).
        let blocked = must_not_linearizable(&[
            (0, "invoke", "write", json!(1)),
            (0, "ok", "write", json!(1)),
            (1, "invoke", "read", N),
            (1, "ok", "read", N),
        ]);
        assert_eq!(blocked, 3);
        // Two writes in sequence, then a read of the first: only the order w2, w1 would explain
        // it, and real time forbids it.
        must_not_linearizable(&[
            (0, "invoke", "write", json!(1)),
            (0, "ok", "write", json!(1)),
            (1, "invoke", "write", json!(2)),
            (1, "ok", "write", json!(2)),
            (2, "invoke", "read", N),
            (2, "ok", "read", json!(1)),
        ]);
    }

    #[test]
    fn a_lost_cas_is_not_linearizable() {
        must_not_linearizable(&[
            (0, "invoke", "write", json!(1)),
            (0, "ok", "write", json!(1)),
            (1, "invoke", "cas", json!([1, 2])),
            (1, "ok", "cas", json!([1, 2])),
            (0, "invoke", "read", N),
            (0, "ok", "read", json!(1)),
        ]);
        // A cas that failed although the value was `from`.
        must_not_linearizable(&[
            (0, "invoke", "write", json!(1)),
            (0, "ok", "write", json!(1)),
            (1, "invoke", "cas", json!([1, 2])),
            (1, "fail", "cas", json!([1, 2])),
        ]);
    }

    #[test]
    fn an_info_write_must_be_assumed_applied_when_a_later_read_sees_it() {
        must_linearizable(&[
            (0, "invoke", "write", json!(1)),
            (0, "info", "write", N),
            (1, "invoke", "read", N),
            (1, "ok", "read", N),
            (1, "invoke", "read", N),
            (1, "ok", "read", json!(1)),
        ]);
        // Applied between the two reads, it cannot then be un-applied.
        must_not_linearizable(&[
            (0, "invoke", "write", json!(1)),
            (0, "info", "write", N),
            (1, "invoke", "read", N),
            (1, "ok", "read", json!(1)),
            (1, "invoke", "read", N),
            (1, "ok", "read", N),
        ]);
        // An operation with no completion at all is the same as one that ended info.
        must_linearizable(&[
            (0, "invoke", "write", json!(1)),
            (1, "invoke", "read", N),
            (1, "ok", "read", json!(1)),
        ]);
    }

    #[test]
    fn an_info_cas_must_be_assumed_not_applied_when_later_operations_rule_it_out() {
        // If cas 0 -> 1 had taken effect before the second cas, that one would have failed; it
        // may take effect afterwards (as a no-op, the value being 2) or never.
        must_linearizable(&[
            (0, "invoke", "write", json!(0)),
            (0, "ok", "write", json!(0)),
            (1, "invoke", "cas", json!([0, 1])),
            (1, "info", "cas", N),
            (2, "invoke", "cas", json!([0, 2])),
            (2, "ok", "cas", json!([0, 2])),
            (2, "invoke", "read", N),
            (2, "ok", "read", json!(2)),
        ]);
        // An info write that is never seen is fine: it may never have happened.
        must_linearizable(&[
            (0, "invoke", "write", json!(5)),
            (0, "info", "write", N),
            (1, "invoke", "write", json!(1)),
            (1, "ok", "write", json!(1)),
            (1, "invoke", "read", N),
            (1, "ok", "read", json!(1)),
        ]);
        // But an info op cannot take effect before it was invoked.
        must_not_linearizable(&[
            (1, "invoke", "read", N),
            (1, "ok", "read", json!(5)),
            (0, "invoke", "write", json!(5)),
            (0, "info", "write", N),
        ]);
    }

    #[test]
    fn failed_reads_match_anything() {
        must_linearizable(&[
            (0, "invoke", "write", json!(1)),
            (0, "ok", "write", json!(1)),
            (1, "invoke", "read", N),
            (1, "fail", "read", N),
        ]);
    }
}
