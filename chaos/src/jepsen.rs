//! A reader for the Jepsen etcd register logs used as the checker's test data (Porcupine's
//! `test_data/jepsen/etcd_*.log`, from the 2014 `jepsen.system.etcd-test/register-test`).
//!
//! Each line is one event of a single register (the fields are separated by tabs, shown here as
//! spaces):
//!
//! ```text
//! INFO  jepsen.util - 2    :invoke    :cas    [3 0]
//! INFO  jepsen.util - 2    :ok    :cas    [3 0]
//! INFO  jepsen.util - 13    :info    :cas    :timed-out
//! ```
//!
//! `<process> <type> <f> <value>`, separated by tabs or spaces. It becomes a [`History`] event
//! for [`crate::model::register::Register`], on no key:
//!
//! | Jepsen value | event |
//! |---|---|
//! | `nil` | no `value` |
//! | an integer | that number |
//! | `[a b]` | the array `[a, b]` (`nil` inside becomes `null`) |
//! | `:timed-out` (any keyword) | no `value`, `error: "timed-out"` |
//!
//! The logs carry no times; event `i` gets `time_ns = i + 1` (its line number), and the line
//! order is the real-time order, as in every history. A line that does not have this shape is
//! refused with its line number, as is a history that breaks the rules of [`crate::history`]
//! (the logs keep them: a process whose operation ended `:info` never invokes again).

use std::path::Path;

use serde_json::Value as Json;

use crate::history::{Event, EventType, History, HistoryError};

/// How much of a bad line an error quotes.
const QUOTE_CHARS_MAX: usize = 120;

/// Why a Jepsen log cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JepsenError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a Jepsen client event.
    #[error("line {line}: {reason}: {text:?}")]
    BadLine {
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        reason: &'static str,
        /// The line, cut to a readable length.
        text: String,
    },
    /// The events do not form a history.
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Reads the Jepsen log at `path`; see [`parse_log`].
///
/// # Errors
/// If the file cannot be read, or as [`parse_log`].
pub fn read_log(path: &Path) -> Result<History, JepsenError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| JepsenError::Io { path: path.display().to_string(), source })?;
    parse_log(&text)
}

/// The history of a Jepsen etcd log (see the [module docs](self)). An empty log is an empty
/// history.
///
/// # Errors
/// The first line that is not a client event, or that breaks a rule of [`crate::history`].
pub fn parse_log(text: &str) -> Result<History, JepsenError> {
    let mut history = History::new();
    for (i, text) in text.lines().enumerate() {
        let line = i + 1;
        let event = parse_line(text, line as u64).map_err(|reason| JepsenError::BadLine {
            line,
            reason,
            text: text.chars().take(QUOTE_CHARS_MAX).collect(),
        })?;
        history.push(event)?;
    }
    Ok(history)
}

fn parse_line(text: &str, time_ns: u64) -> Result<Event, &'static str> {
    let (prefix, rest) = text.split_once(" - ").ok_or("not a jepsen.util log line")?;
    if !prefix.split_whitespace().eq(["INFO", "jepsen.util"]) {
        return Err("not a jepsen.util log line");
    }
    let mut fields = rest.split_whitespace();
    let process = fields.next().ok_or("no process")?;
    let process: u64 = process.parse().map_err(|_| "the process is not an integer")?;
    let kind = match fields.next() {
        Some(":invoke") => EventType::Invoke,
        Some(":ok") => EventType::Ok,
        Some(":fail") => EventType::Fail,
        Some(":info") => EventType::Info,
        _ => return Err("the type is not :invoke, :ok, :fail or :info"),
    };
    let f =
        fields.next().and_then(|f| f.strip_prefix(':')).ok_or("the operation is not a keyword")?;
    if f.is_empty() {
        return Err("the operation is not a keyword");
    }
    // The value may contain spaces (`[3 0]`): it is the rest of the line.
    let value: Vec<&str> = fields.collect();
    let (value, error) = parse_value(&value.join(" "))?;
    Ok(Event { process, kind, f: f.to_owned(), key: None, value, error, time_ns })
}

/// A value, or a keyword (an error such as `:timed-out`).
fn parse_value(text: &str) -> Result<(Option<Json>, Option<String>), &'static str> {
    if text.is_empty() {
        return Err("no value");
    }
    if let Some(keyword) = text.strip_prefix(':') {
        if keyword.is_empty() || keyword.contains(char::is_whitespace) {
            return Err("a bad keyword");
        }
        return Ok((None, Some(keyword.to_owned())));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let items: Result<Vec<Json>, _> = inner.split_whitespace().map(parse_atom).collect();
        return Ok((Some(Json::Array(items?)), None));
    }
    match parse_atom(text)? {
        Json::Null => Ok((None, None)),
        atom => Ok((Some(atom), None)),
    }
}

fn parse_atom(text: &str) -> Result<Json, &'static str> {
    if text == "nil" {
        return Ok(Json::Null);
    }
    let n: i64 =
        text.parse().map_err(|_| "a value that is not nil, an integer, [a b] or a keyword")?;
    Ok(Json::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_become_events() {
        let log = "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n\
                   INFO  jepsen.util - 1   :invoke :read   nil\n\
                   INFO  jepsen.util - 2\t:fail\t:cas\t[3 0]\n\
                   INFO  jepsen.util - 1\t:ok\t:read\t4\n\
                   INFO  jepsen.util - 1\t:invoke\t:write\t3\n\
                   INFO  jepsen.util - 1\t:info\t:write\t:timed-out\n";
        let h = parse_log(log).unwrap();
        let e = h.events();
        assert_eq!(e.len(), 6);
        assert_eq!((e[0].process, e[0].kind, e[0].f.as_str()), (2, EventType::Invoke, "cas"));
        assert_eq!(e[0].value, Some(json!([3, 0])));
        assert_eq!(e[1].value, None);
        assert_eq!(e[3].value, Some(json!(4)));
        assert_eq!(
            (e[5].kind, e[5].value.as_ref(), e[5].error.as_deref()),
            (EventType::Info, None, Some("timed-out"))
        );
        assert_eq!(e.iter().map(|e| e.time_ns).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
        assert!(parse_log("").unwrap().events().is_empty());
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_number() {
        let ok = "INFO  jepsen.util - 0\t:invoke\t:read\tnil";
        let cases = [
            ("hello", "line 1: not a jepsen.util log line"),
            ("WARN  jepsen.util - 0\t:invoke\t:read\tnil", "not a jepsen.util log line"),
            ("INFO  jepsen.util - x\t:invoke\t:read\tnil", "the process is not an integer"),
            ("INFO  jepsen.util - 0\t:begin\t:read\tnil", "the type is not"),
            ("INFO  jepsen.util - 0\t:invoke\tread\tnil", "the operation is not a keyword"),
            ("INFO  jepsen.util - 0\t:invoke\t:read", "no value"),
            ("INFO  jepsen.util - 0\t:invoke\t:write\tfour", "a value that is not nil"),
            ("INFO  jepsen.util - 0\t:invoke\t:cas\t[1 x]", "a value that is not nil"),
            (
                "INFO  jepsen.util - 0\t:invoke\t:write\t99999999999999999999",
                "a value that is not nil",
            ),
        ];
        for (text, want) in cases {
            let e = parse_log(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let e = parse_log(&format!("{ok}\n{ok}")).unwrap_err().to_string();
        assert_eq!(e, "line 2: process 0 invokes while its operation from line 1 is open");
    }
}
