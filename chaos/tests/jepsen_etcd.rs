//! The checker against third-party verdicts: the 102 Jepsen etcd register histories of
//! `../shared/testdata/jepsen-etcd/` (from Porcupine's test data), each with the verdict
//! Porcupine and ahorn's linearizability checker give it: 23 linearizable, 79 not. etcd_095 is
//! empty (the cluster did not start) and has no verdict.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use blockdb_chaos::history::History;
use blockdb_chaos::jepsen;
use blockdb_chaos::linearizability::{Budget, Report, Status, Verdict, check_history};
use blockdb_chaos::model::register::Register;
use common::testdata;

/// Far more than any of these histories needs; a test that hits it fails (unknown ≠ expected).
const BUDGET: Budget = Budget { time: Some(Duration::from_secs(120)), steps_max: 50_000_000 };

/// `(file, expected linearizable)` from `expected.tsv`, without the empty etcd_095.
fn must_expected(dir: &Path) -> Vec<(String, bool)> {
    let tsv = std::fs::read_to_string(dir.join("expected.tsv")).expect("read expected.tsv");
    let mut rows = Vec::new();
    for line in tsv.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let linearizable = match fields[1] {
            "linearizable" => true,
            "NOT-linearizable" => false,
            "n/a" => {
                assert_eq!(fields[0], "etcd_095.log", "only the empty history has no verdict");
                continue;
            }
            other => panic!("unexpected verdict {other:?} in expected.tsv"),
        };
        rows.push((fields[0].to_owned(), linearizable));
    }
    rows
}

fn must_check(history: &History) -> Report {
    check_history(&Register, history, &BUDGET).expect("a register history")
}

#[test]
fn every_history_gets_its_expected_verdict() {
    let Some(dir) = testdata("jepsen-etcd") else { return };
    let expected = must_expected(&dir);
    assert_eq!(expected.len(), 102);
    assert_eq!(expected.iter().filter(|(_, l)| *l).count(), 23);

    // Phase 1: check every history and compare with its expected verdict.
    let started = Instant::now();
    let mut wrong = Vec::new();
    let mut slowest = (Duration::ZERO, String::new(), 0);
    for (file, linearizable) in &expected {
        let history = jepsen::read_log(&dir.join(file)).expect("a well-formed Jepsen log");
        let t = Instant::now();
        let report = must_check(&history);
        let elapsed = t.elapsed();
        assert_eq!(report.keys.len(), 1, "{file}: one register");
        let want = if *linearizable { Status::Linearizable } else { Status::NotLinearizable };
        if report.status() != want {
            wrong.push(format!("{file}: want {want}, got {report}"));
        }
        if elapsed > slowest.0 {
            slowest = (elapsed, file.clone(), report.keys[0].steps);
        }
    }
    let total = started.elapsed();
    println!(
        "jepsen-etcd: {} of {} verdicts as expected in {:.2} s; slowest {} ({:.1} ms, {} steps)",
        expected.len() - wrong.len(),
        expected.len(),
        total.as_secs_f64(),
        slowest.1,
        slowest.0.as_secs_f64() * 1e3,
        slowest.2,
    );
    assert!(wrong.is_empty(), "{} wrong verdicts:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn a_non_linearizable_history_is_explained_with_lines_of_its_log() {
    let Some(dir) = testdata("jepsen-etcd") else { return };
    // Porcupine's visualization test uses etcd_070 as its illegal example.
    let history = jepsen::read_log(&dir.join("etcd_070.log")).expect("a well-formed Jepsen log");
    let report = must_check(&history);
    let Verdict::NotLinearizable(explanation) = &report.keys[0].verdict else {
        panic!("etcd_070 is not linearizable, got {report}");
    };
    println!("{report}");
    let events = history.events();
    let blocked = &explanation.blocked;
    // The lines name the blocked operation's own events, and it has a definite completion: an
    // open operation never blocks the search.
    let invoke = &events[blocked.invoke_line - 1];
    let complete_line = blocked.complete_line.expect("a blocked op has a definite completion");
    let completion = &events[complete_line - 1];
    assert_eq!((invoke.process, completion.process), (blocked.process, blocked.process));
    assert!(blocked.invoke_line < complete_line);
    // Each operation of the partial order can be found in the log too, each once.
    let mut lines: Vec<usize> =
        explanation.linearized.iter().map(|(op, _)| op.invoke_line).collect();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), explanation.linearized.len());
    assert!(lines.iter().all(|&l| events[l - 1].process == events[l - 1].process));
    assert!(!lines.contains(&blocked.invoke_line));
}

#[test]
fn a_jepsen_history_round_trips_through_the_json_lines_format() {
    let Some(dir) = testdata("jepsen-etcd") else { return };
    for file in ["etcd_002.log", "etcd_070.log"] {
        let history = jepsen::read_log(&dir.join(file)).expect("a well-formed Jepsen log");
        let again = History::from_jsonl(&history.to_jsonl()).expect("our own output parses");
        assert_eq!(again.events(), history.events(), "{file}");
        assert_eq!(must_check(&again).status(), must_check(&history).status(), "{file}");
    }
}

#[test]
fn a_small_budget_gives_unknown_not_a_guess() {
    let Some(dir) = testdata("jepsen-etcd") else { return };
    // etcd_040 is one Knossos ran out of memory on.
    let history = jepsen::read_log(&dir.join("etcd_040.log")).expect("a well-formed Jepsen log");
    let tiny = Budget { time: None, steps_max: 10 };
    let report = check_history(&Register, &history, &tiny).expect("a register history");
    assert_eq!(report.status(), Status::Unknown, "{report}");
    let no_time = Budget { time: Some(Duration::ZERO), steps_max: u64::MAX };
    let report = check_history(&Register, &history, &no_time).expect("a register history");
    assert_eq!(report.status(), Status::Unknown, "{report}");
}

#[test]
fn the_empty_history_is_linearizable() {
    let Some(dir) = testdata("jepsen-etcd/etcd_095.log") else { return };
    let history = jepsen::read_log(&dir).expect("an empty log is an empty history");
    assert!(history.events().is_empty());
    let report = must_check(&history);
    assert!(report.keys.is_empty());
    assert_eq!(report.status(), Status::Linearizable);
}
