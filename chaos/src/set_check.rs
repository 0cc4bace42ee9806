//! The checker of the `set` workload: every element whose add was acknowledged must be in the
//! set at the end, and nothing else may be.
//!
//! # The workload's conventions
//!
//! The history (see [`crate::history`]) holds two operations, and nothing else:
//!
//! | `f` | invoke | completion |
//! |---|---|---|
//! | [`ADD`] (`"add"`) | `key` = the element, a string unique to this operation; no `value` (one is ignored) | `ok`, `fail` or `info` |
//! | [`READ_ALL`] (`"read-all"`) | no `key`, no `value` | `ok` with `value` = a JSON array of every element the cluster holds, as strings |
//!
//! ```text
//! {"process":0,"type":"invoke","f":"add","key":"0-1","time_ns":1000}
//! {"process":0,"type":"ok","f":"add","key":"0-1","time_ns":2000}
//! {"process":1,"type":"invoke","f":"add","key":"1-1","time_ns":2100}
//! {"process":1,"type":"info","f":"add","key":"1-1","error":"timeout","time_ns":9000}
//! {"process":2,"type":"invoke","f":"read-all","time_ns":9500}
//! {"process":2,"type":"ok","f":"read-all","value":["0-1","1-1"],"time_ns":9900}
//! ```
//!
//! The run ends with one **final read**: after the faults are healed and the adds have stopped,
//! one `read-all` that completes `ok`. If several `read-all` operations completed ok, the last
//! one to complete is the final read and the others are not checked.
//!
//! # What is checked
//!
//! Each attempted element is classified by how its add ended and whether the final read holds it.
//! "Before the read" means the add's completion is on an earlier line than the read's invoke (the
//! line order is the real-time order); an add still running when the read began may take effect
//! after the read, so its absence proves nothing.
//!
//! | add ended | in the final read | absent from it |
//! |---|---|---|
//! | `ok` before the read | fine | **lost** |
//! | `ok` after the read began | fine | `late_unread` (fine) |
//! | `info`, or never completed | `recovered` (fine) | `never_read` (fine) |
//! | `fail` | **`failed_but_read`** | fine |
//!
//! And the read itself is checked: an element it holds that no add had invoked before the read
//! completed is **unexpected**; an element it holds twice is **`read_twice`**.
//!
//! Unlike Jepsen's set checker, which counts a failed add that shows up as recovered, a `fail`
//! here means the operation certainly did not take effect (see [`crate::history`]), so a failed
//! element in the final read is a violation: the cluster told a client "no" and did it anyway.
//!
//! The report is [`SetReport::valid`] when a final read exists, no element is lost, unexpected,
//! failed but read, or read twice, and the history keeps the conventions above (every add has a
//! key, no element is added twice, no other `f`). Every count comes with up to [`EXAMPLES_MAX`]
//! example elements, in the history's order, and [`SetReport::reasons`] says in words why a
//! report is not valid.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::history::{EventType, History, OpEvents};

/// The `f` of an add: `key` is the element.
pub const ADD: &str = "add";
/// The `f` of a read of the whole set: the `ok` completion's `value` is an array of strings.
pub const READ_ALL: &str = "read-all";
/// The most example elements a [`SetReport`] keeps for each count.
pub const EXAMPLES_MAX: usize = 20;

/// A count of elements, with the first [`EXAMPLES_MAX`] of them as examples.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Elements {
    /// How many elements.
    pub count: usize,
    /// The first of them, at most [`EXAMPLES_MAX`].
    pub examples: Vec<String>,
}

impl Elements {
    fn note(&mut self, element: &str) {
        self.count += 1;
        if self.examples.len() < EXAMPLES_MAX {
            self.examples.push(element.to_owned());
        }
    }
}

/// The final read the report is based on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalRead {
    /// The 1-based history line of its `ok` completion.
    pub line: usize,
    /// How many elements it returned, duplicates included.
    pub elements: usize,
}

/// The verdict on a `set` history; see the [module docs](self) for each category.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetReport {
    /// True when a final read exists, nothing below marked as a violation happened, and the
    /// history keeps the workload's conventions.
    pub valid: bool,
    /// Why the report is not valid, one sentence per reason; empty when it is.
    pub reasons: Vec<String>,
    /// Add operations (with a key).
    pub attempted: usize,
    /// Add operations that ended `ok`.
    pub acknowledged: usize,
    /// Add operations that ended `fail`.
    pub failed: usize,
    /// Add operations that ended `info` or never completed.
    pub unknown: usize,
    /// The final read, if there is one.
    pub final_read: Option<FinalRead>,
    /// Violation: acknowledged before the final read began, absent from it.
    pub lost: Elements,
    /// Violation: in the final read, but no add of it was invoked before the read completed.
    pub unexpected: Elements,
    /// Violation: every add of it failed, yet it is in the final read.
    pub failed_but_read: Elements,
    /// Violation: in the final read more than once.
    pub read_twice: Elements,
    /// Fine: its add's outcome was unknown, and it is in the final read.
    pub recovered: Elements,
    /// Fine: its add's outcome was unknown, and it is not in the final read.
    pub never_read: Elements,
    /// Fine: acknowledged only after the final read began, and absent from it.
    pub late_unread: Elements,
    /// Broken convention: added by more than one operation (the checker merges their outcomes).
    pub added_twice: Elements,
}

/// What the adds of one element did, merged over all of them (one, by the conventions).
#[derive(Clone, Copy, Debug, Default)]
struct AddState {
    adds: usize,
    ok_before_read: bool,
    ok: bool,
    unknown: bool,
    failed: bool,
    /// Some add of it was invoked before the final read completed.
    invoked_before_read_done: bool,
}

/// The history's operations sorted by kind, with the lines that break the conventions.
#[derive(Debug, Default)]
struct Ops {
    adds: Vec<OpEvents>,
    reads: Vec<OpEvents>,
    /// Add operations without a key: how many, and the first one's line.
    keyless_adds: (usize, usize),
    /// Operations of another `f`: how many, and the first one's line.
    others: (usize, usize),
}

/// Checks a `set` workload's history; see the [module docs](self). Never panics, whatever the
/// history holds: what breaks the conventions makes the report invalid, with a reason.
pub fn check(history: &History) -> SetReport {
    let ops = sort_ops(history);
    let mut report = SetReport::default();
    convention_reasons(&ops, &mut report);
    let read = final_read(history, &ops.reads, &mut report);
    let mut elements: Vec<&str> = Vec::new();
    let mut states: HashMap<&str, AddState> = HashMap::new();
    let events = history.events();
    for op in &ops.adds {
        let Some(element) = events[op.invoke].key.as_deref() else { continue };
        report.attempted += 1;
        let state = states.entry(element).or_insert_with(|| {
            elements.push(element);
            AddState::default()
        });
        state.adds += 1;
        state.invoked_before_read_done |= read.as_ref().is_none_or(|r| op.invoke < r.done);
        match op.completion.map(|c| (events[c].kind, c)) {
            Some((EventType::Ok, c)) => {
                report.acknowledged += 1;
                state.ok = true;
                state.ok_before_read |= read.as_ref().is_some_and(|r| c < r.invoke);
            }
            Some((EventType::Fail, _)) => {
                report.failed += 1;
                state.failed = true;
            }
            _ => {
                report.unknown += 1;
                state.unknown = true;
            }
        }
    }
    for element in &elements {
        if states.get(element).is_some_and(|s| s.adds > 1) {
            report.added_twice.note(element);
        }
    }
    if let Some(read) = &read {
        classify(&elements, &states, read, &mut report);
    }
    verdict(&mut report);
    report
}

fn sort_ops(history: &History) -> Ops {
    let events = history.events();
    let mut ops = Ops::default();
    for op in history.operations() {
        let invoke = &events[op.invoke];
        let line = op.invoke + 1;
        let tally = |(n, first): &mut (usize, usize)| {
            *first = if *n == 0 { line } else { *first };
            *n += 1;
        };
        match invoke.f.as_str() {
            ADD if invoke.key.is_none() => tally(&mut ops.keyless_adds),
            ADD => ops.adds.push(*op),
            READ_ALL => ops.reads.push(*op),
            _ => tally(&mut ops.others),
        }
    }
    ops
}

fn convention_reasons(ops: &Ops, report: &mut SetReport) {
    if let (n @ 1.., line) = ops.keyless_adds {
        report.reasons.push(format!("{n} add operations have no key (the first on line {line})"));
    }
    if let (n @ 1.., line) = ops.others {
        report.reasons.push(format!(
            "{n} operations are neither {ADD:?} nor {READ_ALL:?} (the first on line {line})"
        ));
    }
}

/// The final read: event indices of its invoke and completion, and its elements.
#[derive(Debug)]
struct Read<'h> {
    invoke: usize,
    done: usize,
    elements: Vec<&'h str>,
}

/// Finds the final read and parses it, or says in `report` why there is none.
fn final_read<'h>(
    history: &'h History,
    reads: &[OpEvents],
    report: &mut SetReport,
) -> Option<Read<'h>> {
    let events = history.events();
    let last_ok = reads
        .iter()
        .filter_map(|op| op.completion.map(|c| (op.invoke, c)))
        .filter(|&(_, c)| events[c].kind == EventType::Ok)
        .max_by_key(|&(_, c)| c);
    let Some((invoke, done)) = last_ok else {
        report.reasons.push(format!(
            "no final read: none of the {} {READ_ALL:?} operations completed ok",
            reads.len()
        ));
        return None;
    };
    let line = done + 1;
    let value = events[done].value.as_ref();
    let elements: Option<Vec<&str>> = match value {
        Some(serde_json::Value::Array(items)) => items.iter().map(|v| v.as_str()).collect(),
        _ => None,
    };
    let Some(elements) = elements else {
        let got = value.map_or_else(|| "nothing".to_owned(), |v| truncated(&v.to_string()));
        report.reasons.push(format!(
            "the final read (line {line}) returned {got}, not a JSON array of strings"
        ));
        return None;
    };
    report.final_read = Some(FinalRead { line, elements: elements.len() });
    Some(Read { invoke, done, elements })
}

/// `text`, cut to a length fit for a one-line reason.
fn truncated(text: &str) -> String {
    const CHARS_MAX: usize = 80;
    match text.char_indices().nth(CHARS_MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Compares the adds with the final read.
fn classify(
    elements: &[&str],
    states: &HashMap<&str, AddState>,
    read: &Read<'_>,
    report: &mut SetReport,
) {
    let mut present: HashSet<&str> = HashSet::new();
    for &element in &read.elements {
        if !present.insert(element) {
            report.read_twice.note(element);
        } else if !states.get(element).is_some_and(|s| s.invoked_before_read_done) {
            report.unexpected.note(element);
        }
    }
    for &element in elements {
        let Some(state) = states.get(element) else { continue };
        let is_present = present.contains(element);
        if is_present && !state.invoked_before_read_done {
            continue; // Already unexpected: the read saw it before anyone asked for it.
        }
        let category = match (is_present, state) {
            (true, s) if s.ok => None,
            (false, s) if s.ok_before_read => Some(&mut report.lost),
            (false, s) if s.ok => Some(&mut report.late_unread),
            (true, s) if s.unknown => Some(&mut report.recovered),
            (false, s) if s.unknown => Some(&mut report.never_read),
            (true, _) => Some(&mut report.failed_but_read),
            (false, _) => None,
        };
        if let Some(category) = category {
            category.note(element);
        }
    }
}

/// Adds the reasons for each violation and sets `valid`.
fn verdict(report: &mut SetReport) {
    let violations = [
        (report.lost.count, "lost: acknowledged before the final read began, absent from it"),
        (report.unexpected.count, "unexpected: in the final read, never added before it"),
        (report.failed_but_read.count, "failed but read: every add failed, yet in the final read"),
        (report.read_twice.count, "read twice: in the final read more than once"),
        (
            report.added_twice.count,
            "added twice: the workload broke its own convention of unique elements",
        ),
    ];
    for (count, what) in violations {
        if count > 0 {
            report.reasons.push(format!("{count} elements {what}"));
        }
    }
    report.valid = report.reasons.is_empty();
    debug_assert!(!report.valid || report.final_read.is_some(), "no final read is a reason");
}

// The tests below take this file past the ~500-line soft limit; the code above is ~310 lines,
// and the tests stay beside it as the style asks.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;
    use serde_json::json;

    /// Builds a history event by event, one nanosecond apart.
    #[derive(Default)]
    struct Builder {
        events: Vec<Event>,
        open: HashMap<u64, Event>,
    }

    impl Builder {
        fn invoke(&mut self, process: u64, f: &str, key: Option<&str>) -> &mut Self {
            let event = Event::invoke(process, f, key, None, self.events.len() as u64);
            self.open.insert(process, event.clone());
            self.events.push(event);
            self
        }

        fn end(
            &mut self,
            process: u64,
            kind: EventType,
            value: Option<serde_json::Value>,
        ) -> &mut Self {
            let invoke = self.open.remove(&process).expect("the process has an open operation");
            let error = (kind != EventType::Ok).then_some("timeout");
            let at = self.events.len() as u64;
            self.events.push(Event::complete(&invoke, kind, value, error, at));
            self
        }

        /// An add of `element` by a fresh process, completed at once (or never, for `None`).
        fn add(&mut self, process: u64, element: &str, kind: Option<EventType>) -> &mut Self {
            self.invoke(process, ADD, Some(element));
            match kind {
                Some(kind) => self.end(process, kind, None),
                None => self,
            }
        }

        /// A read-all by `process` that returns `elements`.
        fn read(&mut self, process: u64, elements: serde_json::Value) -> &mut Self {
            self.invoke(process, READ_ALL, None).end(process, EventType::Ok, Some(elements))
        }

        fn must_check(&self) -> SetReport {
            let history = History::from_events(self.events.clone()).expect("a well-formed history");
            check(&history)
        }
    }

    fn elements(examples: &[&str]) -> Elements {
        Elements {
            count: examples.len(),
            examples: examples.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn assert_reason(report: &SetReport, want: &str) {
        assert!(!report.valid, "{report:#?}");
        assert!(
            report.reasons.iter().any(|r| r.contains(want)),
            "no {want:?} in {:?}",
            report.reasons
        );
    }

    #[test]
    fn the_documented_example_is_valid_and_its_unknown_add_is_recovered() {
        let text = r#"{"process":0,"type":"invoke","f":"add","key":"0-1","time_ns":1000}
{"process":0,"type":"ok","f":"add","key":"0-1","time_ns":2000}
{"process":1,"type":"invoke","f":"add","key":"1-1","time_ns":2100}
{"process":1,"type":"info","f":"add","key":"1-1","error":"timeout","time_ns":9000}
{"process":2,"type":"invoke","f":"read-all","time_ns":9500}
{"process":2,"type":"ok","f":"read-all","value":["0-1","1-1"],"time_ns":9900}
"#;
        let report = check(&History::from_jsonl(text).expect("the example parses"));
        assert!(report.valid, "{report:#?}");
        assert!(report.reasons.is_empty());
        assert_eq!(
            (report.attempted, report.acknowledged, report.failed, report.unknown),
            (2, 1, 0, 1)
        );
        assert_eq!(report.final_read, Some(FinalRead { line: 6, elements: 2 }));
        assert_eq!(report.recovered, elements(&["1-1"]));
        assert_eq!(report.lost, Elements::default());
    }

    #[test]
    fn an_acknowledged_add_missing_from_the_final_read_is_lost() {
        let report = Builder::default()
            .add(0, "a", Some(EventType::Ok))
            .add(1, "b", Some(EventType::Ok))
            .read(2, json!(["a"]))
            .must_check();
        assert_eq!(report.lost, elements(&["b"]));
        assert_reason(&report, "1 elements lost");
    }

    #[test]
    fn an_element_never_attempted_or_attempted_after_the_read_is_unexpected() {
        // Phase 1: never attempted at all.
        let report = Builder::default()
            .add(0, "a", Some(EventType::Ok))
            .read(1, json!(["a", "ghost"]))
            .must_check();
        assert_eq!(report.unexpected, elements(&["ghost"]));
        assert_reason(&report, "1 elements unexpected");
        // Phase 2: attempted only after the read completed; the read saw the future.
        let report = Builder::default()
            .add(0, "a", Some(EventType::Ok))
            .read(1, json!(["a", "later"]))
            .add(2, "later", Some(EventType::Ok))
            .must_check();
        assert_eq!(report.unexpected, elements(&["later"]));
        assert_eq!(report.attempted, 2);
        assert!(!report.valid);
    }

    #[test]
    fn unknown_adds_are_recovered_or_never_read_and_both_are_fine() {
        let report = Builder::default()
            .add(0, "info-read", Some(EventType::Info))
            .add(1, "info-unread", Some(EventType::Info))
            .add(2, "open-read", None)
            .add(3, "open-unread", None)
            .read(4, json!(["open-read", "info-read"]))
            .must_check();
        assert!(report.valid, "{report:#?}");
        assert_eq!(report.unknown, 4);
        assert_eq!(report.recovered, elements(&["info-read", "open-read"]));
        assert_eq!(report.never_read, elements(&["info-unread", "open-unread"]));
    }

    #[test]
    fn a_failed_add_must_stay_out_of_the_final_read() {
        let report = Builder::default()
            .add(0, "refused", Some(EventType::Fail))
            .read(1, json!([]))
            .must_check();
        assert!(report.valid, "{report:#?}");
        assert_eq!(report.failed, 1);
        let report = Builder::default()
            .add(0, "refused", Some(EventType::Fail))
            .read(1, json!(["refused"]))
            .must_check();
        assert_eq!(report.failed_but_read, elements(&["refused"]));
        assert_reason(&report, "1 elements failed but read");
    }

    #[test]
    fn without_a_usable_final_read_the_report_is_invalid_and_says_why() {
        // Phase 1: no read-all at all.
        let report = Builder::default().add(0, "a", Some(EventType::Ok)).must_check();
        assert_eq!(report.final_read, None);
        assert_reason(&report, "no final read: none of the 0 \"read-all\" operations completed ok");
        assert_eq!(report.lost.count, 0, "nothing is lost without a read to miss it");
        // Phase 2: the only read-alls timed out or never completed.
        let report = Builder::default()
            .add(0, "a", Some(EventType::Ok))
            .invoke(1, READ_ALL, None)
            .end(1, EventType::Info, None)
            .invoke(2, READ_ALL, None)
            .must_check();
        assert_reason(&report, "none of the 2 \"read-all\" operations completed ok");
        // Phase 3: a read-all that returned something else than an array of strings.
        for bad in [json!({"a": 1}), json!(["a", 1]), json!("a")] {
            let report = Builder::default().read(0, bad.clone()).must_check();
            assert_reason(&report, "not a JSON array of strings");
            assert_eq!(report.final_read, None, "{bad}");
        }
        let report =
            Builder::default().invoke(0, READ_ALL, None).end(0, EventType::Ok, None).must_check();
        assert_reason(&report, "the final read (line 2) returned nothing");
    }

    #[test]
    fn an_add_acknowledged_while_the_read_ran_may_be_absent() {
        // "late" is invoked before the read and acknowledged after the read began: it may have
        // taken effect after the read's snapshot, so its absence is fine.
        let report = Builder::default()
            .add(0, "early", Some(EventType::Ok))
            .invoke(1, ADD, Some("late"))
            .invoke(2, READ_ALL, None)
            .end(1, EventType::Ok, None)
            .end(2, EventType::Ok, Some(json!(["early"])))
            .must_check();
        assert!(report.valid, "{report:#?}");
        assert_eq!(report.late_unread, elements(&["late"]));
        assert_eq!(report.acknowledged, 2);
    }

    #[test]
    fn the_last_ok_read_all_is_the_final_read() {
        let report = Builder::default()
            .add(0, "a", Some(EventType::Ok))
            .read(1, json!([]))
            .add(2, "b", Some(EventType::Ok))
            .read(3, json!(["a", "b"]))
            .invoke(4, READ_ALL, None)
            .end(4, EventType::Fail, None)
            .must_check();
        assert!(report.valid, "{report:#?}");
        assert_eq!(report.final_read, Some(FinalRead { line: 8, elements: 2 }));
    }

    #[test]
    fn duplicates_and_broken_conventions_make_the_report_invalid() {
        let report = Builder::default()
            .add(0, "a", Some(EventType::Ok))
            .add(1, "a", Some(EventType::Fail))
            .invoke(2, ADD, None)
            .end(2, EventType::Ok, None)
            .invoke(3, "write", Some("k"))
            .end(3, EventType::Ok, None)
            .read(4, json!(["a", "a"]))
            .must_check();
        assert_eq!(report.read_twice, elements(&["a"]));
        assert_eq!(report.added_twice, elements(&["a"]));
        assert_eq!(report.failed_but_read.count, 0, "one of a's adds was ok: merged, it is ok");
        assert_eq!(report.attempted, 2, "a keyless add is not an attempt");
        assert_reason(&report, "1 elements read twice");
        assert_reason(&report, "1 elements added twice");
        assert_reason(&report, "1 add operations have no key (the first on line 5)");
        assert_reason(
            &report,
            "1 operations are neither \"add\" nor \"read-all\" (the first on line 7)",
        );
        assert_eq!(report.reasons.len(), 4, "{:?}", report.reasons);
    }

    #[test]
    fn examples_are_capped_counts_are_not_and_the_report_serializes() {
        let mut b = Builder::default();
        for i in 0..25 {
            b.add(i, &format!("e{i}"), Some(EventType::Ok));
        }
        let report = b.read(100, json!(["e0"])).must_check();
        assert_eq!(report.lost.count, 24);
        assert_eq!(report.lost.examples.len(), EXAMPLES_MAX);
        assert_eq!(report.lost.examples[0], "e1", "examples keep the history's order");
        let text = serde_json::to_string(&report).expect("a report serializes");
        assert!(
            text.contains(r#""valid":false"#) && text.contains(r#""lost":{"count":24,"#),
            "{text}"
        );
        let back: SetReport = serde_json::from_str(&text).expect("and reads back");
        assert_eq!(back, report);
    }

    #[test]
    fn an_empty_history_has_no_final_read() {
        let report = check(&History::new());
        assert_reason(&report, "no final read");
        assert_eq!(report.attempted, 0);
    }
}
