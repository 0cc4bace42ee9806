//! The history of a chaos run: every operation a client started and how it ended, as JSON lines.
//!
//! A history is what the linearizability checker (and every later checker) reads, and what a run
//! leaves on disk so that a verdict can be re-derived offline with `blockdb-chaos check`. The
//! format is the Jepsen one, written as JSON: each operation is an `invoke` event followed, on
//! the same process, by exactly one completion (`ok`, `fail` or `info`), or by nothing if the run
//! ended first.
//!
//! # Format
//!
//! One event per line (UTF-8, `\n` or `\r\n` line ends, no blank lines), one JSON object per
//! event, fields in any order, unknown fields refused:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `process` | u64 | the logical client that ran the operation; one operation at a time |
//! | `type` | `"invoke"` \| `"ok"` \| `"fail"` \| `"info"` | what the event records (below) |
//! | `f` | string | the operation: `"read"`, `"write"`, `"cas"`, `"append"`, …; the model decides |
//! | `key` | string, optional | the key the operation is on; absent = the history's only register |
//! | `value` | JSON, optional | the argument (on `invoke`) or the result (on `ok`); `null` = absent |
//! | `error` | string, optional | on `fail` or `info`: why, e.g. `"version_mismatch"`, `"timeout"` |
//! | `time_ns` | u64 | when the event happened, in nanoseconds since the run began |
//!
//! ```text
//! {"process":0,"type":"invoke","f":"write","key":"a","value":1,"time_ns":1000}
//! {"process":1,"type":"invoke","f":"read","key":"a","time_ns":1200}
//! {"process":0,"type":"ok","f":"write","key":"a","value":1,"time_ns":2500}
//! {"process":1,"type":"ok","f":"read","key":"a","value":1,"time_ns":2600}
//! {"process":2,"type":"invoke","f":"cas","key":"a","value":[1,2],"time_ns":3000}
//! {"process":2,"type":"info","f":"cas","key":"a","error":"timeout","time_ns":9000}
//! ```
//!
//! - `invoke`: the client sent the request. Nothing is known yet.
//! - `ok`: the operation took effect, exactly once, at some instant between its invoke and this
//!   event. `value` is what it returned.
//! - `fail`: the operation certainly did not take effect (the server refused it, e.g. a version
//!   mismatch). A failure can still say something about the state (a failed compare-and-set saw
//!   a different value); the model decides.
//! - `info`: the outcome is unknown (a timeout, a lost connection). The operation may take effect
//!   at any instant after its invoke, even after the end of the run, or never; it stays open
//!   forever, concurrent with everything after its invoke. As in Jepsen, the process that ran it
//!   is then retired: it never invokes again (the client starts a fresh process id), because a
//!   process is a sequential thread and this one may still be "inside" the operation.
//!
//! An invoke with no completion by the end of the history is treated like one that ended `info`.
//!
//! # Invariants
//!
//! A [`History`] is always well formed; [`History::push`] (and so every parser) refuses an event
//! that would break one of these, naming its line:
//!
//! - a process invokes only when it has no operation open, and is not retired;
//! - a completion closes its process's open operation, with the same `f` and key (a completion
//!   may leave `key` out: it is the invoke's);
//! - only `fail` and `info` carry an `error`;
//! - `time_ns` never decreases from one line to the next.
//!
//! **The line order is the real-time order.** The recorder appends events as they happen, under
//! one lock, so that if operation A's completion is on an earlier line than B's invoke, A
//! finished before B began. `time_ns` is for latency plots and readers; the checker uses only the
//! order. Event `i` (0-based) of a history is line `i + 1` of its file, which is why blank lines
//! are refused rather than skipped.
//!
//! Writing a history and reading it back gives the same events ([`History::write_jsonl`],
//! [`History::read_jsonl`]); a `value` of JSON `null` is stored as absent, so it round-trips too.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, Read as _, Write};

use serde::{Deserialize, Serialize};

/// The longest line [`History::read_jsonl`] accepts, in bytes, without its line end. A run's
/// values are small; a longer line is a broken file, and reading it whole could exhaust memory.
pub const LINE_BYTES_MAX: usize = 1 << 20;

/// What an [`Event`] records: the start of an operation or one of its three endings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The operation was sent.
    Invoke,
    /// It took effect, with the result in `value`.
    Ok,
    /// It certainly did not take effect.
    Fail,
    /// Its outcome is unknown: it may take effect at any later time, or never.
    Info,
}

impl EventType {
    /// The name used in the JSON format.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// One line of a history. See the [module docs](self) for the meaning of each field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The logical client; it runs one operation at a time.
    pub process: u64,
    /// Invoke or one of the completions.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The operation's name; the model gives it meaning.
    pub f: String,
    /// The key, or `None` for a history of a single register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The argument (invoke) or result (ok); `None` when absent or JSON `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// Why a `fail` or `info` happened, e.g. `"version_mismatch"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Nanoseconds since the run began; never decreases along a history.
    pub time_ns: u64,
}

impl Event {
    /// An `invoke` of `f` on `key` with argument `value`.
    pub fn invoke(
        process: u64,
        f: &str,
        key: Option<&str>,
        value: Option<serde_json::Value>,
        time_ns: u64,
    ) -> Event {
        Event {
            process,
            kind: EventType::Invoke,
            f: f.to_owned(),
            key: key.map(str::to_owned),
            value,
            error: None,
            time_ns,
        }
    }

    /// The completion of kind `kind` of `invoke`, with result `value` and `error`.
    pub fn complete(
        invoke: &Event,
        kind: EventType,
        value: Option<serde_json::Value>,
        error: Option<&str>,
        time_ns: u64,
    ) -> Event {
        Event {
            process: invoke.process,
            kind,
            f: invoke.f.clone(),
            key: invoke.key.clone(),
            value,
            error: error.map(str::to_owned),
            time_ns,
        }
    }
}

/// One operation of a history: the index of its invoke event and of its completion, if any.
/// Indices are 0-based positions in [`History::events`]; the line in the file is index + 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpEvents {
    /// The invoke event.
    pub invoke: usize,
    /// The `ok`, `fail` or `info` event, or `None` if the history ended first.
    pub completion: Option<usize>,
}

/// Why an event or a line cannot be part of a history. `line` is 1-based.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// Reading the input failed.
    #[error("line {line}: cannot read: {source}")]
    Io {
        /// The line being read.
        line: usize,
        /// The reader's error.
        #[source]
        source: io::Error,
    },
    /// A line is longer than [`LINE_BYTES_MAX`].
    #[error("line {line}: longer than {LINE_BYTES_MAX} bytes")]
    LineTooLong {
        /// The line.
        line: usize,
    },
    /// A line is not UTF-8.
    #[error("line {line}: not valid UTF-8")]
    NotUtf8 {
        /// The line.
        line: usize,
    },
    /// A line is empty or only whitespace.
    #[error("line {line}: empty line (every line must be one event)")]
    EmptyLine {
        /// The line.
        line: usize,
    },
    /// A line is not an event object.
    #[error("line {line}: not a history event: {message}")]
    Json {
        /// The line.
        line: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// An event's `f` is empty.
    #[error("line {line}: empty \"f\"")]
    EmptyFunction {
        /// The line.
        line: usize,
    },
    /// An invoke or ok event carries an `error`.
    #[error("line {line}: an {kind} event cannot carry an error")]
    UnexpectedError {
        /// The line.
        line: usize,
        /// The event's type.
        kind: &'static str,
    },
    /// `time_ns` went backwards.
    #[error("line {line}: time_ns {time_ns} is before the previous line's {previous_ns}")]
    TimeWentBack {
        /// The line.
        line: usize,
        /// Its time.
        time_ns: u64,
        /// The previous line's time.
        previous_ns: u64,
    },
    /// A process invoked while its previous operation was still open.
    #[error(
        "line {line}: process {process} invokes while its operation from line {open_line} is open"
    )]
    InvokeWhileOpen {
        /// The line.
        line: usize,
        /// The process.
        process: u64,
        /// The line of its open invoke.
        open_line: usize,
    },
    /// A process invoked after one of its operations ended `info`.
    #[error(
        "line {line}: process {process} invokes after its operation ended info on line {info_line} \
         (a process whose outcome is unknown is retired; use a new process id)"
    )]
    RetiredProcess {
        /// The line.
        line: usize,
        /// The process.
        process: u64,
        /// The line of the `info` completion.
        info_line: usize,
    },
    /// A completion without an open operation on its process.
    #[error("line {line}: {kind} of process {process}, which has no open operation")]
    CompletionWithoutInvoke {
        /// The line.
        line: usize,
        /// The completion's type.
        kind: &'static str,
        /// The process.
        process: u64,
    },
    /// A completion of a different operation than the one invoked.
    #[error(
        "line {line}: completes {got:?}, but process {process} invoked {invoked:?} on line {invoke_line}"
    )]
    FunctionMismatch {
        /// The line.
        line: usize,
        /// The process.
        process: u64,
        /// The invoked `f`.
        invoked: String,
        /// The completed `f`.
        got: String,
        /// The line of the invoke.
        invoke_line: usize,
    },
    /// A completion names another key than its invoke.
    #[error(
        "line {line}: completes key {got:?}, but process {process} invoked key {invoked:?} on line {invoke_line}"
    )]
    KeyMismatch {
        /// The line.
        line: usize,
        /// The process.
        process: u64,
        /// The invoke's key.
        invoked: Option<String>,
        /// The completion's key.
        got: String,
        /// The line of the invoke.
        invoke_line: usize,
    },
}

/// A well-formed history (see the [module docs](self)): the events, and each operation's pair
/// of events.
#[derive(Clone, Debug, Default)]
pub struct History {
    events: Vec<Event>,
    ops: Vec<OpEvents>,
    /// Process → index in `ops` of its open operation.
    open: HashMap<u64, usize>,
    /// Retired process → index of the `info` event that retired it.
    retired: HashMap<u64, usize>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// The history of `events`, in order.
    ///
    /// # Errors
    /// The first event that breaks a rule of the [module docs](self).
    pub fn from_events(events: impl IntoIterator<Item = Event>) -> Result<History, HistoryError> {
        let mut history = History::new();
        for event in events {
            history.push(event)?;
        }
        Ok(history)
    }

    /// Appends `event`; a `value` of `Some(null)` is stored as `None`.
    ///
    /// # Errors
    /// If the event would break a rule of the [module docs](self); the history is unchanged.
    pub fn push(&mut self, mut event: Event) -> Result<(), HistoryError> {
        let index = self.events.len();
        let line = index + 1;
        if event.f.is_empty() {
            return Err(HistoryError::EmptyFunction { line });
        }
        if event.error.is_some() && matches!(event.kind, EventType::Invoke | EventType::Ok) {
            return Err(HistoryError::UnexpectedError { line, kind: event.kind.as_str() });
        }
        if let Some(previous) = self.events.last()
            && event.time_ns < previous.time_ns
        {
            let previous_ns = previous.time_ns;
            return Err(HistoryError::TimeWentBack { line, time_ns: event.time_ns, previous_ns });
        }
        if event.value == Some(serde_json::Value::Null) {
            event.value = None;
        }
        match event.kind {
            EventType::Invoke => self.check_invoke(&event, line)?,
            _ => self.check_completion(&mut event, line)?,
        }
        // Checked: from here on nothing fails, so an error above leaves the history unchanged.
        let process = event.process;
        match event.kind {
            EventType::Invoke => {
                self.open.insert(process, self.ops.len());
                self.ops.push(OpEvents { invoke: index, completion: None });
            }
            kind => {
                if let Some(op) = self.open.remove(&process) {
                    self.ops[op].completion = Some(index);
                }
                if kind == EventType::Info {
                    self.retired.insert(process, index);
                }
            }
        }
        self.events.push(event);
        Ok(())
    }

    fn check_invoke(&self, event: &Event, line: usize) -> Result<(), HistoryError> {
        let process = event.process;
        if let Some(&info) = self.retired.get(&process) {
            return Err(HistoryError::RetiredProcess { line, process, info_line: info + 1 });
        }
        if let Some(&op) = self.open.get(&process) {
            let open_line = self.ops[op].invoke + 1;
            return Err(HistoryError::InvokeWhileOpen { line, process, open_line });
        }
        Ok(())
    }

    /// Checks a completion against its invoke and fills in a left-out key.
    fn check_completion(&self, event: &mut Event, line: usize) -> Result<(), HistoryError> {
        let process = event.process;
        let kind = event.kind.as_str();
        let Some(&op) = self.open.get(&process) else {
            return Err(HistoryError::CompletionWithoutInvoke { line, kind, process });
        };
        let invoke_index = self.ops[op].invoke;
        let invoke = &self.events[invoke_index];
        let invoke_line = invoke_index + 1;
        if event.f != invoke.f {
            let (invoked, got) = (invoke.f.clone(), event.f.clone());
            return Err(HistoryError::FunctionMismatch {
                line,
                process,
                invoked,
                got,
                invoke_line,
            });
        }
        match &event.key {
            None => event.key.clone_from(&invoke.key),
            Some(key) if invoke.key.as_ref() != Some(key) => {
                let (invoked, got) = (invoke.key.clone(), key.clone());
                return Err(HistoryError::KeyMismatch { line, process, invoked, got, invoke_line });
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// The events, in real-time order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Every operation, in the order of their invokes.
    pub fn operations(&self) -> &[OpEvents] {
        &self.ops
    }

    /// The sub-history of each key: its operations, in the order of their invokes. Keys are
    /// independent registers, so each can be checked alone (see [`crate::linearizability`]).
    pub fn by_key(&self) -> BTreeMap<Option<&str>, Vec<OpEvents>> {
        let mut keys: BTreeMap<Option<&str>, Vec<OpEvents>> = BTreeMap::new();
        for op in &self.ops {
            keys.entry(self.events[op.invoke].key.as_deref()).or_default().push(*op);
        }
        keys
    }

    /// Reads a history from JSON lines (see the [module docs](self)).
    ///
    /// # Errors
    /// The first line that cannot be read, is not an event, or breaks a rule of the format.
    pub fn read_jsonl(mut reader: impl BufRead) -> Result<History, HistoryError> {
        let mut history = History::new();
        let mut buf = Vec::new();
        loop {
            let line = history.events.len() + 1;
            buf.clear();
            // One byte over the limit tells a too-long line from one exactly at it.
            let limit = LINE_BYTES_MAX as u64 + 2;
            let n = (&mut reader)
                .take(limit)
                .read_until(b'\n', &mut buf)
                .map_err(|source| HistoryError::Io { line, source })?;
            if n == 0 {
                return Ok(history);
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            }
            if buf.len() > LINE_BYTES_MAX {
                return Err(HistoryError::LineTooLong { line });
            }
            let text = std::str::from_utf8(&buf).map_err(|_| HistoryError::NotUtf8 { line })?;
            if text.trim().is_empty() {
                return Err(HistoryError::EmptyLine { line });
            }
            let event: Event = serde_json::from_str(text)
                .map_err(|e| HistoryError::Json { line, message: e.to_string() })?;
            history.push(event)?;
        }
    }

    /// Reads a history from a string of JSON lines; see [`History::read_jsonl`].
    ///
    /// # Errors
    /// As [`History::read_jsonl`].
    pub fn from_jsonl(text: &str) -> Result<History, HistoryError> {
        History::read_jsonl(text.as_bytes())
    }

    /// Writes the history as JSON lines, one event a line, each ending in `\n`.
    ///
    /// # Errors
    /// The writer's.
    pub fn write_jsonl(&self, mut writer: impl Write) -> io::Result<()> {
        for event in &self.events {
            serde_json::to_writer(&mut writer, event)?;
            writer.write_all(b"\n")?;
        }
        Ok(())
    }

    /// The history as a string of JSON lines; see [`History::write_jsonl`].
    pub fn to_jsonl(&self) -> String {
        let mut out = Vec::new();
        self.write_jsonl(&mut out)
            .expect("writing to a Vec cannot fail, and an event (string keys only) serializes");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EXAMPLE: &str = r#"{"process":0,"type":"invoke","f":"write","key":"a","value":1,"time_ns":1000}
{"process":1,"type":"invoke","f":"read","key":"a","time_ns":1200}
{"process":0,"type":"ok","f":"write","key":"a","value":1,"time_ns":2500}
{"process":1,"type":"ok","f":"read","key":"a","value":1,"time_ns":2600}
{"process":2,"type":"invoke","f":"cas","key":"a","value":[1,2],"time_ns":3000}
{"process":2,"type":"info","f":"cas","key":"a","error":"timeout","time_ns":9000}
"#;

    fn must_err(text: &str) -> HistoryError {
        History::from_jsonl(text).expect_err("the history is malformed")
    }

    #[test]
    fn the_documented_example_parses_and_round_trips() {
        let h = History::from_jsonl(EXAMPLE).unwrap();
        assert_eq!(h.events().len(), 6);
        assert_eq!(
            h.operations(),
            &[
                OpEvents { invoke: 0, completion: Some(2) },
                OpEvents { invoke: 1, completion: Some(3) },
                OpEvents { invoke: 4, completion: Some(5) },
            ]
        );
        assert_eq!(h.events()[4].value, Some(json!([1, 2])));
        assert_eq!(h.events()[5].error.as_deref(), Some("timeout"));
        // The example is written in the writer's own field order, so the text round-trips too.
        assert_eq!(h.to_jsonl(), EXAMPLE);
        let again = History::from_jsonl(&h.to_jsonl()).unwrap();
        assert_eq!(again.events(), h.events());
    }

    #[test]
    fn null_values_and_left_out_completion_keys_are_normalized_and_round_trip() {
        let h = History::from_events([
            Event::invoke(3, "read", Some("k"), Some(serde_json::Value::Null), 5),
            Event {
                key: None,
                ..Event::complete(
                    &Event::invoke(3, "read", None, None, 0),
                    EventType::Ok,
                    None,
                    None,
                    6,
                )
            },
        ])
        .unwrap();
        assert_eq!(h.events()[0].value, None, "null is stored as absent");
        assert_eq!(h.events()[1].key.as_deref(), Some("k"), "a completion inherits the key");
        let back = History::from_jsonl(&h.to_jsonl()).unwrap();
        assert_eq!(back.events(), h.events());
        // CRLF line ends are accepted.
        let crlf = h.to_jsonl().replace('\n', "\r\n");
        assert_eq!(History::from_jsonl(&crlf).unwrap().events(), h.events());
    }

    #[test]
    fn sub_histories_by_key() {
        let text = r#"{"process":0,"type":"invoke","f":"read","key":"b","time_ns":1}
{"process":1,"type":"invoke","f":"read","key":"a","time_ns":2}
{"process":2,"type":"invoke","f":"read","time_ns":3}
{"process":1,"type":"ok","f":"read","time_ns":4}
{"process":1,"type":"invoke","f":"read","key":"b","time_ns":5}
"#;
        let h = History::from_jsonl(text).unwrap();
        let keys = h.by_key();
        let names: Vec<_> = keys.keys().copied().collect();
        assert_eq!(names, [None, Some("a"), Some("b")]);
        assert_eq!(keys[&Some("a")], [OpEvents { invoke: 1, completion: Some(3) }]);
        assert_eq!(
            keys[&Some("b")],
            [OpEvents { invoke: 0, completion: None }, OpEvents { invoke: 4, completion: None }]
        );
    }

    #[test]
    fn malformed_lines_are_refused_with_their_line_number() {
        let ok = r#"{"process":0,"type":"invoke","f":"read","time_ns":1}"#;
        let cases: &[(&str, &str)] = &[
            ("not json", "line 1: not a history event"),
            (&format!("{ok}\n{{\"process\":0}}"), "line 2: not a history event"),
            (
                r#"{"process":-1,"type":"invoke","f":"read","time_ns":1}"#,
                "line 1: not a history event",
            ),
            (r#"{"process":0,"type":"begin","f":"read","time_ns":1}"#, "unknown variant"),
            (r#"{"process":0,"type":"invoke","f":"read"}"#, "missing field `time_ns`"),
            (r#"{"process":0,"type":"invoke","f":"read","time_ns":1,"extra":1}"#, "unknown field"),
            (r#"{"process":0,"type":"invoke","f":"","time_ns":1}"#, "line 1: empty \"f\""),
            (&format!("{ok}\n\n{ok}"), "line 2: empty line"),
            (&format!("{ok}\n   \n"), "line 2: empty line"),
        ];
        for (text, want) in cases {
            let e = must_err(text).to_string();
            assert!(e.contains(want), "{text:?}: got {e:?}, want {want:?}");
        }
        assert!(matches!(must_err("\u{0}\u{ff}"), HistoryError::Json { line: 1, .. }));
        let bad_utf8: &[u8] = b"{\"process\":0,\xff}\n";
        assert!(matches!(History::read_jsonl(bad_utf8), Err(HistoryError::NotUtf8 { line: 1 })));
    }

    #[test]
    fn a_line_over_the_limit_is_refused_and_one_at_the_limit_is_read() {
        let base = r#"{"process":0,"type":"invoke","f":"read","value":"","time_ns":1}"#;
        let pad = LINE_BYTES_MAX - base.len();
        let at_limit = base.replace(r#""value":"""#, &format!(r#""value":"{}""#, "x".repeat(pad)));
        assert_eq!(at_limit.len(), LINE_BYTES_MAX);
        assert!(History::from_jsonl(&at_limit).is_ok());
        assert!(History::from_jsonl(&format!("{at_limit}\n")).is_ok());
        let over = at_limit.replacen('x', "xx", 1);
        assert!(matches!(History::from_jsonl(&over), Err(HistoryError::LineTooLong { line: 1 })));
    }

    #[test]
    fn structural_errors_name_both_lines() {
        let inv = |p: u64, f: &str, t: u64| {
            format!(r#"{{"process":{p},"type":"invoke","f":"{f}","key":"k","time_ns":{t}}}"#)
        };
        let end = |p: u64, ty: &str, f: &str, t: u64| {
            format!(r#"{{"process":{p},"type":"{ty}","f":"{f}","time_ns":{t}}}"#)
        };
        let cases: Vec<(String, &str)> = vec![
            (
                format!("{}\n{}", inv(0, "read", 1), inv(0, "read", 2)),
                "line 2: process 0 invokes while its operation from line 1 is open",
            ),
            (end(0, "ok", "read", 1), "line 1: ok of process 0, which has no open operation"),
            (
                format!("{}\n{}", inv(0, "read", 1), end(0, "ok", "write", 2)),
                "line 2: completes \"write\", but process 0 invoked \"read\" on line 1",
            ),
            (
                format!(
                    "{}\n{}\n{}",
                    inv(7, "write", 1),
                    end(7, "info", "write", 2),
                    inv(7, "read", 3)
                ),
                "line 3: process 7 invokes after its operation ended info on line 2 (a process whose \
                 outcome is unknown is retired; use a new process id)",
            ),
            (
                format!("{}\n{}", inv(0, "read", 5), inv(1, "read", 4)),
                "line 2: time_ns 4 is before the previous line's 5",
            ),
            (
                format!(
                    "{}\n{}",
                    inv(0, "read", 1),
                    r#"{"process":0,"type":"ok","f":"read","key":"j","time_ns":2}"#
                ),
                "line 2: completes key \"j\", but process 0 invoked key Some(\"k\") on line 1",
            ),
            (
                r#"{"process":0,"type":"invoke","f":"read","error":"x","time_ns":1}"#.into(),
                "line 1: an invoke event cannot carry an error",
            ),
        ];
        for (text, want) in cases {
            let e = must_err(&text).to_string();
            assert_eq!(e, want, "{text}");
        }
    }

    #[test]
    fn a_refused_event_leaves_the_history_unchanged() {
        let mut h = History::new();
        let invoke = Event::invoke(1, "read", None, None, 10);
        h.push(invoke.clone()).unwrap();
        assert!(h.push(Event::complete(&invoke, EventType::Ok, None, None, 9)).is_err());
        assert!(
            h.push(Event {
                f: "write".into(),
                ..Event::complete(&invoke, EventType::Ok, None, None, 11)
            })
            .is_err()
        );
        assert_eq!(h.events().len(), 1);
        h.push(Event::complete(&invoke, EventType::Ok, None, None, 11)).unwrap();
        assert_eq!(h.operations(), &[OpEvents { invoke: 0, completion: Some(1) }]);
    }
}
