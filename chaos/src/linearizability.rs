//! The linearizability checker: is there an order of a history's operations that a single copy
//! of each key, running them one at a time, could have produced, and that respects real time?
//!
//! # What is checked
//!
//! A history is linearizable (Herlihy & Wing) if every operation can be given an instant between
//! its invoke and its completion such that, applied in the order of those instants, the
//! [`Model`] allows every operation's result. Operations with an unknown outcome (`info`, or no
//! completion) may be given any instant after their invoke, or none at all: they may never have
//! taken effect. A definite `fail` is an operation that did not take effect, but the model may
//! still learn from it (a failed compare-and-set saw another value).
//!
//! # How
//!
//! 1. **P-compositionality.** Linearizability is local: a history is linearizable iff each
//!    key's sub-history is. [`check_history`] splits by key and checks each key alone, which
//!    turns one search exponential in the whole history into many small ones.
//! 2. **The search** (Wing & Gong, with Lowe's cache, as in Knossos' `wgl` and Porcupine). The
//!    operations become a doubly linked list of *call* and *return* entries in real-time order.
//!    Walking the list from the front:
//!    - at a call entry, try to linearize the operation now: if the model allows it in the
//!      current state, and (the set of linearized operations, the new state) was never reached
//!      before, push it on a stack, unlink its call and return entries, and restart from the
//!      front; otherwise go on to the next entry;
//!    - at a return entry, the operation returned without being linearized, so the choices so
//!      far are wrong: pop the last linearized operation, put its entries back, restore the
//!      state, and continue after its call entry. An empty stack here means no order exists.
//!
//!    The search succeeds when every operation with a definite completion is linearized; open
//!    operations have no return entry, so nothing forces them in, and those left out "never
//!    took effect". Real time is kept because an operation can only be linearized while the
//!    walk is before its return entry, i.e. before everything that began after it returned.
//! 3. **The cache.** Two paths that linearized the same set of operations (a bitset) and reached
//!    the same model state have the same future, so the second is cut. This is what makes the
//!    search practical: without it, k concurrent operations cost k! orders; with it, at most
//!    2^k sets × states.
//!
//! # Cost
//!
//! The problem is NP-complete (Gibbons & Korach), so the worst case is exponential: for n
//! operations of which at most k are concurrent at any time, the cache holds at most
//! O(n · 2^k · |states|) entries, each a bitset of n bits. Real histories have small k (the
//! client count plus the open `info` operations, which is why those dominate). A step (one
//! model step, or one undo) costs O(n / 64) for the bitset's copy and hash. A [`Budget`]
//! (steps and wall time) bounds every check; when it runs out the verdict is
//! [`Verdict::Unknown`] rather than a guess.
//!
//! # Explanations
//!
//! For a history that is not linearizable the search keeps the deepest stack it reached: the
//! longest partial linearization, and the operation whose return entry stopped it, which could
//! not be placed after it in any order. [`Explanation`] reports both with their lines, so that
//! the history file can be read at that point.

use std::fmt;
use std::time::{Duration, Instant};

use crate::history::{EventType, History, OpEvents};
use crate::model::{Completion, DecodeError, HistoryModel, Model};

mod search;

use search::search;

/// The default [`Budget::steps_max`], for runs and re-checks alike: 30 times what the hardest
/// Jepsen etcd history needs (etcd_002, 1.4 million), and 1.6 times the most any key of a long
/// run has needed (24.5 million, a register key under disk faults with a dozen appends of unknown
/// outcome, whose check peaked at 340 MB). Each step adds at most one cache entry, a bitset of
/// the key's operations and a model state.
pub const STEPS_MAX_DEFAULT: u64 = 40_000_000;

/// One operation as the search sees it: a model input and output, and its place in real time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The process that ran it (for explanations).
    pub process: u64,
    /// What was asked.
    pub input: I,
    /// What came back, including "unknown".
    pub output: O,
    /// The position of its invoke in the history (0-based event index).
    pub invoke_index: usize,
    /// The position of its `ok` or `fail`; `None` when the outcome is unknown (the operation is
    /// open forever). Requires `complete_index > invoke_index`; a smaller one is read as equal.
    pub complete_index: Option<usize>,
}

/// An [`Operation`] of model `M`.
pub type ModelOperation<M> = Operation<<M as Model>::Input, <M as Model>::Output>;

/// Limits on one check. Each key gets `steps_max` steps; `time` is for the whole history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Wall time for the whole check, or no limit.
    pub time: Option<Duration>,
    /// Steps of the search per key (each tries or undoes one operation).
    pub steps_max: u64,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget { time: None, steps_max: STEPS_MAX_DEFAULT }
    }
}

/// The budget that ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// [`Budget::time`].
    Time,
    /// [`Budget::steps_max`].
    Steps,
}

/// The answer for one key, or overall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// A linearization exists.
    Linearizable,
    /// The budget ran out first.
    Unknown,
    /// No linearization exists.
    NotLinearizable,
}

/// The verdict for one key.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// No linearization exists; why.
    NotLinearizable(Box<Explanation>),
    /// The budget ran out before an answer.
    Unknown(Exhausted),
}

impl Verdict {
    /// The verdict without its details.
    pub fn status(&self) -> Status {
        match self {
            Verdict::Linearizable => Status::Linearizable,
            Verdict::NotLinearizable(_) => Status::NotLinearizable,
            Verdict::Unknown(_) => Status::Unknown,
        }
    }
}

/// An operation in an explanation, by its lines in the history (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpSummary {
    /// Its process.
    pub process: u64,
    /// The line of its invoke.
    pub invoke_line: usize,
    /// The line of its `ok` or `fail`, or `None` if its outcome is unknown.
    pub complete_line: Option<usize>,
    /// The operation and its result, in the model's words (`cas 1 -> 2: fail`).
    pub operation: String,
}

/// Why a key's history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// How many operations the key has.
    pub operations: usize,
    /// The longest partial linearization found: each operation, with the state after it.
    pub linearized: Vec<(OpSummary, String)>,
    /// The state after `linearized` (the initial state if it is empty).
    pub state: String,
    /// The operation that returned before it could be placed after `linearized`: no order of
    /// the pending operations makes its result legal in time.
    pub blocked: OpSummary,
}

/// The result of checking one key's operations.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The verdict.
    pub verdict: Verdict,
    /// Search steps taken.
    pub steps: u64,
    /// Wall time taken.
    pub elapsed: Duration,
}

/// The result for one key of a history.
#[derive(Clone, Debug)]
pub struct KeyReport {
    /// The key; `None` for operations without one.
    pub key: Option<String>,
    /// How many operations it has.
    pub operations: usize,
    /// The verdict.
    pub verdict: Verdict,
    /// Search steps taken.
    pub steps: u64,
    /// Wall time taken.
    pub elapsed: Duration,
}

/// The result for a whole history: one report per key, in key order.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The keys' results.
    pub keys: Vec<KeyReport>,
}

impl Report {
    /// Linearizable only if every key is; otherwise not linearizable if any key is not, and
    /// unknown if none is not but some ran out of budget.
    pub fn status(&self) -> Status {
        self.keys.iter().map(|k| k.verdict.status()).max().unwrap_or(Status::Linearizable)
    }
}

/// A history that does not fit the model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// An operation cannot be decoded.
    #[error("line {line}: {source}")]
    Decode {
        /// The line of the operation's completion for a bad result, else of its invoke.
        line: usize,
        /// Why.
        #[source]
        source: DecodeError,
    },
}

/// Checks every key of `history` against `model` (see the [module docs](self)).
///
/// # Errors
/// If an operation does not decode for `model`; nothing is checked then.
pub fn check_history<M: HistoryModel>(
    model: &M,
    history: &History,
    budget: &Budget,
) -> Result<Report, CheckError> {
    let deadline = budget.time.and_then(|t| Instant::now().checked_add(t));
    let mut partitions = Vec::new();
    for (key, ops) in history.by_key() {
        partitions.push((key.map(str::to_owned), decode(model, history, &ops)?));
    }
    let keys = partitions
        .into_iter()
        .map(|(key, ops)| {
            let checked = search(model, &ops, budget.steps_max, deadline);
            let (verdict, steps, elapsed) = (checked.verdict, checked.steps, checked.elapsed);
            KeyReport { key, operations: ops.len(), verdict, steps, elapsed }
        })
        .collect();
    Ok(Report { keys })
}

/// Checks one key's operations against `model`; `ops` must all be on the same key.
pub fn check_operations<M: Model>(
    model: &M,
    ops: &[ModelOperation<M>],
    budget: &Budget,
) -> Checked {
    let deadline = budget.time.and_then(|t| Instant::now().checked_add(t));
    search(model, ops, budget.steps_max, deadline)
}

fn decode<M: HistoryModel>(
    model: &M,
    history: &History,
    ops: &[OpEvents],
) -> Result<Vec<ModelOperation<M>>, CheckError> {
    let events = history.events();
    ops.iter()
        .map(|op| {
            let invoke = &events[op.invoke];
            let completion = op.completion.map(|i| (i, &events[i]));
            let (completion, complete_index) = match completion {
                Some((i, e)) if e.kind == EventType::Ok => (Completion::Ok(e), Some(i)),
                Some((i, e)) if e.kind == EventType::Fail => (Completion::Fail(e), Some(i)),
                // An `info` completion, or none: open forever.
                _ => (Completion::Unknown, None),
            };
            let (input, output) = model.decode(invoke, completion).map_err(|source| {
                let at = match source {
                    DecodeError::BadResult { .. } => op.completion.unwrap_or(op.invoke),
                    _ => op.invoke,
                };
                CheckError::Decode { line: at + 1, source }
            })?;
            let process = invoke.process;
            Ok(Operation { process, input, output, invoke_index: op.invoke, complete_index })
        })
        .collect()
}

/// How many operations of a partial linearization an [`Explanation`] prints: the last ones,
/// which lead to the failure.
const EXPLANATION_OPS_SHOWN: usize = 12;

impl fmt::Display for OpSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.complete_line {
            Some(c) => write!(f, "lines {}-{}", self.invoke_line, c)?,
            None => write!(f, "line {} (open)", self.invoke_line)?,
        }
        write!(f, ", process {}: {}", self.process, self.operation)
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.linearized.len();
        writeln!(
            f,
            "the longest legal order found places {n} of {} operations, ending in state {}:",
            self.operations, self.state
        )?;
        if n > EXPLANATION_OPS_SHOWN {
            writeln!(f, "    … {} earlier", n - EXPLANATION_OPS_SHOWN)?;
        }
        for (op, after) in &self.linearized[n.saturating_sub(EXPLANATION_OPS_SHOWN)..] {
            writeln!(f, "    {op}  => {after}")?;
        }
        write!(
            f,
            "  after it, no order of the pending operations lets this one return in time:\n    {}",
            self.blocked
        )
    }
}

impl fmt::Display for Verdict {
    /// The status and, for a violation, the explanation on the following lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => write!(f, "linearizable"),
            Verdict::NotLinearizable(e) => write!(f, "NOT linearizable\n  {e}"),
            Verdict::Unknown(Exhausted::Time) => write!(f, "unknown (out of time)"),
            Verdict::Unknown(Exhausted::Steps) => write!(f, "unknown (out of steps)"),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Linearizable => "linearizable",
            Status::Unknown => "unknown",
            Status::NotLinearizable => "NOT linearizable",
        })
    }
}

impl fmt::Display for KeyReport {
    /// One line, then the explanation of a violation, indented.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "key {key:?}: ")?,
            None => write!(f, "(no key): ")?,
        }
        let ms = self.elapsed.as_secs_f64() * 1e3;
        match &self.verdict {
            Verdict::NotLinearizable(_) => write!(f, "{}", Status::NotLinearizable)?,
            short => write!(f, "{short}")?,
        }
        write!(f, " ({} operations, {} steps, {ms:.1} ms)", self.operations, self.steps)?;
        if let Verdict::NotLinearizable(e) = &self.verdict {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for key in &self.keys {
            writeln!(f, "{key}")?;
        }
        let count = |s: Status| self.keys.iter().filter(|k| k.verdict.status() == s).count();
        write!(
            f,
            "overall: {} (keys: {}; {} linearizable, {} not, {} unknown)",
            self.status(),
            self.keys.len(),
            count(Status::Linearizable),
            count(Status::NotLinearizable),
            count(Status::Unknown)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;
    use crate::model::Value;
    use crate::model::register::{Register, RegisterInput as I, RegisterOutput as O};
    use serde_json::json;

    type RegisterOp = Operation<I, O>;

    fn v(n: i64) -> Option<Value> {
        Some(Value::from_json(&json!(n)))
    }

    fn op(process: u64, input: I, output: O, invoke: usize, complete: Option<usize>) -> RegisterOp {
        Operation { process, input, output, invoke_index: invoke, complete_index: complete }
    }

    fn status(ops: &[RegisterOp]) -> Status {
        check_operations(&Register, ops, &Budget::default()).verdict.status()
    }

    #[test]
    fn real_time_order_is_respected() {
        // The write returned (1) before the read was invoked (2): the read must see it.
        let sequential =
            [op(0, I::Write(v(1)), O::Ok, 0, Some(1)), op(1, I::Read, O::Read(None), 2, Some(3))];
        assert_eq!(status(&sequential), Status::NotLinearizable);
        // The same operations overlapping: the read may come first.
        let overlapping =
            [op(0, I::Write(v(1)), O::Ok, 0, Some(2)), op(1, I::Read, O::Read(None), 1, Some(3))];
        assert_eq!(status(&overlapping), Status::Linearizable);
    }

    #[test]
    fn open_operations_need_not_be_linearized() {
        // An open read "of 9" could never be placed; being open, it need not be.
        let ops =
            [op(0, I::Read, O::Read(v(9)), 0, None), op(1, I::Write(v(1)), O::Ok, 1, Some(2))];
        assert_eq!(status(&ops), Status::Linearizable);
        assert_eq!(status(&[]), Status::Linearizable);
    }

    #[test]
    fn the_explanation_names_the_longest_order_and_the_blocked_operation() {
        let ops = [
            op(0, I::Write(v(1)), O::Ok, 0, Some(1)),
            op(0, I::Write(v(2)), O::Ok, 2, Some(3)),
            op(1, I::Read, O::Read(v(1)), 4, Some(5)),
        ];
        let checked = check_operations(&Register, &ops, &Budget::default());
        let Verdict::NotLinearizable(e) = checked.verdict else { panic!("a stale read") };
        let summary = |process, invoke_line, complete_line, operation: &str| OpSummary {
            process,
            invoke_line,
            complete_line: Some(complete_line),
            operation: operation.into(),
        };
        assert_eq!(
            *e,
            Explanation {
                operations: 3,
                linearized: vec![
                    (summary(0, 1, 2, "write 1: ok"), "1".into()),
                    (summary(0, 3, 4, "write 2: ok"), "2".into()),
                ],
                state: "2".into(),
                blocked: summary(1, 5, 6, "read: 1"),
            }
        );
        let text = e.to_string();
        assert!(text.contains("places 2 of 3 operations, ending in state 2"), "{text}");
        assert!(text.ends_with("lines 5-6, process 1: read: 1"), "{text}");
    }

    /// 14 concurrent writes and a read of a value none wrote: every subset of writes is tried.
    fn must_hard_history() -> Vec<RegisterOp> {
        let writers = 14;
        let mut ops: Vec<RegisterOp> = (0..writers)
            .map(|i| op(i, I::Write(v(i as i64)), O::Ok, i as usize, Some(100 + i as usize)))
            .collect();
        ops.push(op(99, I::Read, O::Read(v(-1)), 50, Some(200)));
        ops
    }

    #[test]
    fn an_exhausted_budget_is_unknown() {
        let ops = must_hard_history();
        let few_steps = Budget { time: None, steps_max: 100 };
        let checked = check_operations(&Register, &ops, &few_steps);
        assert!(matches!(checked.verdict, Verdict::Unknown(Exhausted::Steps)));
        assert_eq!(checked.steps, 100);
        let no_time = Budget { time: Some(Duration::ZERO), steps_max: u64::MAX };
        let checked = check_operations(&Register, &ops, &no_time);
        assert!(matches!(checked.verdict, Verdict::Unknown(Exhausted::Time)));
        // With the default budget the answer comes, and the cache keeps it far below 15!.
        let checked = check_operations(&Register, &ops, &Budget::default());
        assert_eq!(checked.verdict.status(), Status::NotLinearizable);
        assert!(checked.steps < 1 << 22, "{} steps", checked.steps);
    }

    #[test]
    fn a_completion_before_its_invoke_is_read_as_simultaneous() {
        let ops =
            [op(0, I::Write(v(1)), O::Ok, 5, Some(2)), op(1, I::Read, O::Read(v(1)), 6, Some(7))];
        assert_eq!(status(&ops), Status::Linearizable);
    }

    #[test]
    fn keys_are_checked_independently_and_the_worst_verdict_wins() {
        let e = |p: u64, kind: &str, f: &str, key: &str, value: serde_json::Value, t: u64| Event {
            process: p,
            kind: serde_json::from_value(json!(kind)).unwrap(),
            f: f.into(),
            key: Some(key.into()),
            value: Some(value),
            error: None,
            time_ns: t,
        };
        // Key b's read of nil after a's write is fine: b was never written.
        let mut events = vec![
            e(0, "invoke", "write", "a", json!(1), 1),
            e(0, "ok", "write", "a", json!(1), 2),
            e(1, "invoke", "read", "b", json!(null), 3),
            e(1, "ok", "read", "b", json!(null), 4),
        ];
        let history = History::from_events(events.clone()).unwrap();
        let report = check_history(&Register, &history, &Budget::default()).unwrap();
        assert_eq!(report.keys.len(), 2);
        assert_eq!(report.status(), Status::Linearizable, "{report}");
        // The same read on key a is stale.
        events.push(e(1, "invoke", "read", "a", json!(null), 5));
        events.push(e(1, "ok", "read", "a", json!(null), 6));
        let history = History::from_events(events).unwrap();
        let report = check_history(&Register, &history, &Budget::default()).unwrap();
        let statuses: Vec<_> =
            report.keys.iter().map(|k| (k.key.as_deref(), k.verdict.status())).collect();
        assert_eq!(
            statuses,
            [(Some("a"), Status::NotLinearizable), (Some("b"), Status::Linearizable)]
        );
        assert_eq!(report.status(), Status::NotLinearizable);
        assert!(
            report
                .to_string()
                .ends_with("overall: NOT linearizable (keys: 2; 1 linearizable, 1 not, 0 unknown)")
        );
    }

    #[test]
    fn an_operation_the_model_does_not_know_is_bad_input_with_its_line() {
        let events = [
            Event::invoke(0, "write", None, Some(json!(1)), 1),
            Event::invoke(1, "incr", None, None, 2),
        ];
        let history = History::from_events(events).unwrap();
        let e = check_history(&Register, &history, &Budget::default()).unwrap_err();
        assert!(e.to_string().starts_with("line 2: unknown operation \"incr\""), "{e}");
    }
}
