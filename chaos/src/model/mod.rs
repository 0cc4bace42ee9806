//! Sequential specifications for the linearizability checker: what one key does when operations
//! run one at a time.
//!
//! A [`Model`] is a deterministic state machine. [`Model::step`] answers one question: in state
//! `s`, could operation `input` have returned `output`, and if so, what is the state after it?
//! The checker ([`crate::linearizability`]) searches for an order of a history's operations, in
//! which every step is allowed and which respects real time; the model knows nothing of time or
//! concurrency. States are hashed and compared, because the checker caches the states it has seen.
//!
//! Outcomes the history does not know are part of each model's output type (an `Unknown`
//! variant): for an `info` operation the model applies the operation's effect as it would in
//! that state, and accepts any result. That the operation might never have taken effect is the
//! checker's business, not the model's: it simply may leave the operation out.
//!
//! [`HistoryModel`] adds the decoding of a history's events into a model's inputs and outputs.
//!
//! | model | `f`s | what it checks |
//! |---|---|---|
//! | [`register::Register`] | `read`, `write`, `cas` | a read/write/compare-and-set register, as in Jepsen's etcd tests |
//! | [`versioned::VersionedRegister`] | `append`, `read` | a BlockDB key: versions 1, 2, 3, … and compare-and-append |

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use crate::history::Event;

pub mod register;
pub mod versioned;

/// A sequential specification: initial state and transitions.
pub trait Model {
    /// The state of one key. Hashed and compared by the checker's cache.
    type State: Clone + Eq + Hash + fmt::Display;
    /// An operation with its arguments.
    type Input: fmt::Display;
    /// What the operation returned, including "unknown".
    type Output: fmt::Display;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` returned `output` in `state`, or `None` if it could not have.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;
}

/// How an operation ended, as the decoder sees it.
#[derive(Clone, Copy, Debug)]
pub enum Completion<'a> {
    /// It took effect; the event holds the result.
    Ok(&'a Event),
    /// It certainly did not take effect; the event may say why.
    Fail(&'a Event),
    /// Unknown: it ended `info`, or the history ended before it did.
    Unknown,
}

/// A [`Model`] whose operations are recorded in a [`crate::history::History`].
pub trait HistoryModel: Model {
    /// The model's name on the command line.
    const NAME: &'static str;

    /// The input and output of the operation begun by `invoke` and ended by `completion`.
    ///
    /// # Errors
    /// If `f` is not one of this model's or a value does not have the model's shape.
    fn decode(
        &self,
        invoke: &Event,
        completion: Completion<'_>,
    ) -> Result<(Self::Input, Self::Output), DecodeError>;
}

/// Why an operation cannot be decoded for a model.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The model has no such operation.
    #[error("unknown operation {f:?} for model {model} (it knows {known})")]
    UnknownFunction {
        /// The operation's `f`.
        f: String,
        /// The model.
        model: &'static str,
        /// The operations the model knows.
        known: &'static str,
    },
    /// An operation's argument (its invoke's `value`) has the wrong shape.
    #[error("{what}: expected {expected}, got {got}")]
    BadArgument {
        /// Which value.
        what: &'static str,
        /// The shape wanted.
        expected: &'static str,
        /// The value found (JSON, or "nothing").
        got: String,
    },
    /// An operation's result (its completion's `value`) has the wrong shape.
    #[error("{what}: expected {expected}, got {got}")]
    BadResult {
        /// Which value.
        what: &'static str,
        /// The shape wanted.
        expected: &'static str,
        /// The value found (JSON, or "nothing").
        got: String,
    },
}

impl DecodeError {
    pub(crate) fn bad_argument(
        what: &'static str,
        expected: &'static str,
        got: Option<&serde_json::Value>,
    ) -> DecodeError {
        DecodeError::BadArgument { what, expected, got: show(got) }
    }

    pub(crate) fn bad_result(
        what: &'static str,
        expected: &'static str,
        got: Option<&serde_json::Value>,
    ) -> DecodeError {
        DecodeError::BadResult { what, expected, got: show(got) }
    }
}

fn show(value: Option<&serde_json::Value>) -> String {
    value.map_or_else(|| "nothing".to_owned(), serde_json::Value::to_string)
}

/// A JSON value from a history, in canonical text (object keys sorted, no whitespace), so that
/// equal values compare and hash equal. Numbers are kept as written: `1` and `1.0` differ.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(Arc<str>);

impl Value {
    /// The canonical form of `json`.
    pub fn from_json(json: &serde_json::Value) -> Value {
        let mut text = String::new();
        write_canonical(json, &mut text);
        Value(text.into())
    }

    /// The canonical JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn write_canonical(json: &serde_json::Value, out: &mut String) {
    match json {
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        serde_json::Value::Object(map) => {
            // Sorted explicitly: serde_json keeps insertion order when a crate in the build
            // turns on its `preserve_order` feature.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_canonical() {
        let a = Value::from_json(&json!({"b": [1, {"y": 2, "x": null}], "a": "s"}));
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "a" : "s", "b" : [ 1, { "x": null, "y": 2 } ] }"#).unwrap();
        assert_eq!(a, Value::from_json(&b));
        assert_eq!(a.as_str(), r#"{"a":"s","b":[1,{"x":null,"y":2}]}"#);
        assert_ne!(Value::from_json(&json!(1)), Value::from_json(&json!("1")));
    }
}
