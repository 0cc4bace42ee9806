//! Hand-built histories, one per anomaly, then random serial executions (valid) and their
//! mutations (invalid), and a large history for a sense of speed.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::check_list_append;
use crate::txn_check::{
    AnomalyKind, EXAMPLES_MAX, FinalState, ListAppendReport, MicroOp, TxnOutcome, TxnRecord,
};

fn append(key: &str, element: u64, version: u64) -> MicroOp {
    MicroOp::Append { key: key.into(), element, version: Some(version) }
}

/// An append whose version is unknown: in a failed or info txn.
fn append_unknown(key: &str, element: u64) -> MicroOp {
    MicroOp::Append { key: key.into(), element, version: None }
}

fn read(key: &str, version: u64, element: u64) -> MicroOp {
    MicroOp::Read { key: key.into(), version: Some(version), element: Some(element) }
}

fn read_none(key: &str) -> MicroOp {
    MicroOp::Read { key: key.into(), version: Some(0), element: None }
}

fn txn(
    outcome: TxnOutcome,
    invoke_ms: u64,
    complete_ms: Option<u64>,
    ops: Vec<MicroOp>,
) -> TxnRecord {
    TxnRecord { process: invoke_ms, invoke_ms, complete_ms, outcome, ops }
}

fn ok(invoke_ms: u64, complete_ms: u64, ops: Vec<MicroOp>) -> TxnRecord {
    txn(TxnOutcome::Ok, invoke_ms, Some(complete_ms), ops)
}

fn fail(invoke_ms: u64, complete_ms: u64, ops: Vec<MicroOp>) -> TxnRecord {
    txn(TxnOutcome::Fail, invoke_ms, Some(complete_ms), ops)
}

fn info(invoke_ms: u64, ops: Vec<MicroOp>) -> TxnRecord {
    txn(TxnOutcome::Info, invoke_ms, None, ops)
}

fn state(keys: &[(&str, &[u64])]) -> FinalState {
    keys.iter().map(|(k, elements)| ((*k).to_owned(), elements.to_vec())).collect()
}

/// Checks, and makes sure the report survives JSON and agrees with itself.
fn must_check(history: &[TxnRecord], final_state: &FinalState) -> ListAppendReport {
    let report = check_list_append(history, final_state);
    let text = serde_json::to_string(&report).unwrap();
    assert_eq!(serde_json::from_str::<ListAppendReport>(&text).unwrap(), report);
    assert_eq!(report.valid, report.counts.is_empty(), "{report:#?}");
    assert_eq!(report.ok + report.fail + report.info, report.txns);
    report
}

/// Asserts that exactly these kinds were found.
fn assert_kinds(report: &ListAppendReport, kinds: &[AnomalyKind]) {
    let got: BTreeSet<&str> = report.counts.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = kinds.iter().map(|k| k.name()).collect();
    assert_eq!(got, expected, "{report:#?}");
}

/// The one anomaly of `kind`.
fn must_only(report: &ListAppendReport, kind: AnomalyKind) -> &crate::txn_check::Anomaly {
    let found: Vec<_> = report.of_kind(kind).collect();
    assert_eq!(found.len(), 1, "{report:#?}");
    found[0]
}

fn as_set(txns: &[usize]) -> BTreeSet<usize> {
    txns.iter().copied().collect()
}

#[test]
fn a_serial_history_is_valid() {
    let history = [
        ok(0, 1, vec![append("x", 1, 1), read("x", 1, 1)]),
        ok(2, 3, vec![read("x", 1, 1), append("y", 2, 1), append("x", 3, 2), read("x", 2, 3)]),
        ok(4, 5, vec![read("y", 1, 2), read("x", 2, 3), read_none("z")]),
    ];
    let report = must_check(&history, &state(&[("x", &[1, 3]), ("y", &[2])]));
    assert!(report.valid, "{report:#?}");
    assert_eq!((report.txns, report.ok, report.fail, report.info), (3, 3, 0, 0));
    assert_eq!(report.summary(), "valid: 3 txns (3 ok, 0 fail, 0 info), no anomalies");
}

#[test]
fn a_concurrent_history_with_failed_and_unknown_txns_is_valid() {
    let history = [
        ok(0, 10, vec![append("x", 1, 1)]),
        // Concurrent with T0, so it may come first and see nothing.
        ok(5, 15, vec![read_none("x")]),
        // Never completed, yet committed: later readers see it.
        info(2, vec![append_unknown("y", 2)]),
        ok(20, 30, vec![read("x", 1, 1), read("y", 1, 2)]),
        fail(21, 22, vec![append_unknown("x", 99)]),
        // Completed as info and did not take effect; its reads are unknown and ignored.
        txn(TxnOutcome::Info, 23, Some(40), vec![append_unknown("z", 5), read("x", 7, 1234)]),
        // A completion before its invoke reads as simultaneous.
        ok(50, 45, vec![read("x", 1, 1)]),
    ];
    let report = must_check(&history, &state(&[("x", &[1]), ("y", &[2])]));
    assert!(report.valid, "{report:#?}");
    assert_eq!((report.ok, report.fail, report.info), (4, 1, 2));
}

#[test]
fn appends_in_opposite_orders_are_g0() {
    let history = [
        ok(0, 10, vec![append("x", 1, 1), append("y", 2, 2)]),
        ok(0, 10, vec![append("x", 3, 2), append("y", 4, 1)]),
    ];
    let report = must_check(&history, &state(&[("x", &[1, 3]), ("y", &[4, 2])]));
    assert_kinds(&report, &[AnomalyKind::G0]);
    let g0 = must_only(&report, AnomalyKind::G0);
    assert_eq!(as_set(&g0.txns), as_set(&[0, 1]));
    assert!(
        g0.explanation.contains("T0 -ww-> T1: T0 appended version 1 of \"x\" (1), T1 version 2"),
        "{}",
        g0.explanation
    );
    assert!(
        g0.explanation.contains("T1 -ww-> T0: T1 appended version 1 of \"y\" (4), T0 version 2"),
        "{}",
        g0.explanation
    );
    assert_eq!(report.summary(), "INVALID: 2 txns (2 ok, 0 fail, 0 info); anomalies: G0 1");
}

#[test]
fn reading_a_failed_append_is_g1a() {
    let history = [fail(0, 10, vec![append_unknown("x", 1)]), ok(20, 30, vec![read("x", 1, 1)])];
    // Phase 1: the failed append is in the final state too.
    let report = must_check(&history, &state(&[("x", &[1])]));
    assert_kinds(&report, &[AnomalyKind::G1a, AnomalyKind::AbortedWriteVisible]);
    assert_eq!(must_only(&report, AnomalyKind::G1a).txns, [0, 1]);
    let visible = must_only(&report, AnomalyKind::AbortedWriteVisible);
    assert_eq!(visible.txns, [0]);
    assert_eq!(
        visible.explanation,
        "T0 failed, yet its appends of 1 to \"x\" (version 1) are in the final state"
    );
    // Phase 2: it is not; the read does not fit the final state either.
    let report = must_check(&history, &state(&[("x", &[])]));
    assert_kinds(&report, &[AnomalyKind::G1a, AnomalyKind::IncompatibleRead]);
}

#[test]
fn reading_a_version_its_writer_overwrote_is_g1b() {
    let history =
        [ok(0, 10, vec![append("x", 1, 1), append("x", 2, 2)]), ok(0, 10, vec![read("x", 1, 1)])];
    let report = must_check(&history, &state(&[("x", &[1, 2])]));
    let g1b = must_only(&report, AnomalyKind::G1b);
    assert_eq!(g1b.txns, [0, 1]);
    assert!(
        g1b.explanation.starts_with("T0 appended 1 and later 2 to \"x\""),
        "{}",
        g1b.explanation
    );
    // T1 also sits between T0's two appends: T0 -wr-> T1 -rw-> T0.
    assert_kinds(&report, &[AnomalyKind::G1b, AnomalyKind::GSingle]);
    // The final version of the same txn is fine.
    let history = [history[0].clone(), ok(0, 10, vec![read("x", 2, 2)])];
    assert!(must_check(&history, &state(&[("x", &[1, 2])])).valid);
}

#[test]
fn each_reading_the_others_append_is_g1c() {
    let history = [
        ok(0, 10, vec![append("x", 1, 1), read("y", 1, 2)]),
        ok(0, 10, vec![append("y", 2, 1), read("x", 1, 1)]),
    ];
    let report = must_check(&history, &state(&[("x", &[1]), ("y", &[2])]));
    assert_kinds(&report, &[AnomalyKind::G1c]);
    let g1c = must_only(&report, AnomalyKind::G1c);
    assert!(
        g1c.explanation.contains("T1 read version 1 of \"x\" (1), which T0 appended"),
        "{}",
        g1c.explanation
    );
}

#[test]
fn read_skew_is_g_single() {
    let history = [
        ok(0, 30, vec![read_none("x"), read("y", 1, 2)]),
        ok(10, 20, vec![append("x", 1, 1), append("y", 2, 1)]),
    ];
    let report = must_check(&history, &state(&[("x", &[1]), ("y", &[2])]));
    assert_kinds(&report, &[AnomalyKind::GSingle]);
    let single = must_only(&report, AnomalyKind::GSingle);
    assert!(
        single
            .explanation
            .contains("T0 -rw-> T1: T0 read version 0 of \"x\", and T1 appended version 1"),
        "{}",
        single.explanation
    );
}

#[test]
fn write_skew_is_g2() {
    let history = [
        ok(0, 10, vec![read_none("x"), append("y", 1, 1)]),
        ok(0, 10, vec![read_none("y"), append("x", 2, 1)]),
    ];
    let report = must_check(&history, &state(&[("x", &[2]), ("y", &[1])]));
    assert_kinds(&report, &[AnomalyKind::G2]);
}

#[test]
fn a_stale_read_after_the_append_completed_is_a_realtime_anomaly() {
    let final_state = state(&[("x", &[1])]);
    // Phase 1: T1 began after T0 completed, yet missed its append.
    let history = [ok(0, 10, vec![append("x", 1, 1)]), ok(20, 30, vec![read_none("x")])];
    let report = must_check(&history, &final_state);
    assert_kinds(&report, &[AnomalyKind::GSingleRealtime]);
    let stale = must_only(&report, AnomalyKind::GSingleRealtime);
    assert!(
        stale.explanation.contains("T0 completed at 10 ms, before T1 was invoked at 20 ms"),
        "{}",
        stale.explanation
    );
    // Phase 2: overlapping, or starting at the very millisecond T0 completed, it is fine.
    for invoke in [5, 10] {
        let history = [ok(0, 10, vec![append("x", 1, 1)]), ok(invoke, 30, vec![read_none("x")])];
        assert!(must_check(&history, &final_state).valid, "invoked at {invoke}");
    }
    // Phase 3: an info append has no known completion, so it may have landed after the read.
    let history = [
        txn(TxnOutcome::Info, 0, Some(10), vec![append_unknown("x", 1)]),
        ok(20, 30, vec![read_none("x")]),
    ];
    assert!(must_check(&history, &final_state).valid);
}

#[test]
fn reading_an_append_invoked_later_is_a_realtime_anomaly() {
    let history = [ok(0, 10, vec![read("x", 1, 1)]), ok(20, 30, vec![append("x", 1, 1)])];
    let report = must_check(&history, &state(&[("x", &[1])]));
    assert_kinds(&report, &[AnomalyKind::G1cRealtime]);
}

#[test]
fn a_cycle_without_real_time_keeps_its_plain_name() {
    // The G0 of appends in opposite orders, now also ordered in real time (T0 before T1).
    let history = [
        ok(0, 10, vec![append("x", 1, 1), append("y", 2, 2)]),
        ok(20, 30, vec![append("x", 3, 2), append("y", 4, 1)]),
        // A separate stale read on z, in another component: reported with the suffix.
        ok(0, 10, vec![append("z", 5, 1)]),
        ok(40, 50, vec![read_none("z")]),
    ];
    let report = must_check(&history, &state(&[("x", &[1, 3]), ("y", &[4, 2]), ("z", &[5])]));
    assert_kinds(&report, &[AnomalyKind::G0, AnomalyKind::GSingleRealtime]);
    assert_eq!(as_set(&must_only(&report, AnomalyKind::G0).txns), as_set(&[0, 1]));
    let stale = must_only(&report, AnomalyKind::GSingleRealtime);
    assert_eq!(as_set(&stale.txns), as_set(&[2, 3]), "the real-time path through T1 collapses");
    assert!(
        stale.explanation.contains("T2 completed at 10 ms, before T3 was invoked at 40 ms"),
        "{}",
        stale.explanation
    );
}

#[test]
fn an_acknowledged_append_missing_at_the_end_is_lost() {
    let history = [ok(0, 10, vec![append("x", 1, 1), append("x", 2, 2)])];
    let report = must_check(&history, &state(&[("x", &[1])]));
    assert_kinds(&report, &[AnomalyKind::LostAppend]);
    let lost = must_only(&report, AnomalyKind::LostAppend);
    assert_eq!(
        lost.explanation,
        "T0 appended 2 to \"x\" and committed, but the final state of \"x\" (1 versions) does not hold it"
    );
    // A key absent from the final state has no versions.
    assert_kinds(&must_check(&history, &FinalState::new()), &[AnomalyKind::LostAppend]);
    // An info txn with one append visible committed: its other appends must be visible too.
    let history = [info(0, vec![append_unknown("x", 1), append_unknown("y", 2)])];
    let report = must_check(&history, &state(&[("x", &[1]), ("y", &[])]));
    assert_kinds(&report, &[AnomalyKind::LostAppend]);
    // With neither visible, it simply never happened.
    assert!(must_check(&history, &state(&[("x", &[]), ("y", &[])])).valid);
}

#[test]
fn an_append_told_the_wrong_version_is_reported() {
    let history = [ok(0, 10, vec![append("x", 1, 2)])];
    let report = must_check(&history, &state(&[("x", &[1])]));
    assert_kinds(&report, &[AnomalyKind::WrongVersion]);
    assert_eq!(
        must_only(&report, AnomalyKind::WrongVersion).explanation,
        "T0 was told its append of 1 to \"x\" got version 2, but the final state holds it at version 1"
    );
}

#[test]
fn duplicate_and_phantom_elements_are_reported_not_panicked_on() {
    // Phase 1: one append, present twice at the end.
    let history = [ok(0, 10, vec![append("x", 1, 1)])];
    let report = must_check(&history, &state(&[("x", &[1, 1])]));
    assert_kinds(&report, &[AnomalyKind::DuplicateElement]);
    // Phase 2: two txns appended the same element (the workload broke its convention).
    let history = [ok(0, 10, vec![append("x", 1, 1)]), ok(20, 30, vec![append("x", 1, 2)])];
    let report = must_check(&history, &state(&[("x", &[1, 1])]));
    assert_kinds(&report, &[AnomalyKind::DuplicateElement]);
    assert_eq!(report.counts["duplicate-element"], 2, "appended twice, and present twice");
    // Phase 3: an element nobody appended.
    let history = [ok(0, 10, vec![append("x", 1, 1)])];
    let report = must_check(&history, &state(&[("x", &[1, 7])]));
    assert_kinds(&report, &[AnomalyKind::PhantomElement]);
    assert_eq!(
        must_only(&report, AnomalyKind::PhantomElement).explanation,
        "version 2 of \"x\" in the final state is 7, which no txn appended"
    );
}

#[test]
fn a_read_the_final_state_does_not_hold_is_incompatible() {
    let history = [
        ok(0, 10, vec![append("x", 1, 1)]),
        ok(20, 30, vec![read("x", 2, 5)]),
        ok(40, 50, vec![read("x", 1, 9)]),
    ];
    let report = must_check(&history, &state(&[("x", &[1])]));
    assert_kinds(&report, &[AnomalyKind::IncompatibleRead]);
    let reads: Vec<&str> =
        report.of_kind(AnomalyKind::IncompatibleRead).map(|a| a.explanation.as_str()).collect();
    assert_eq!(
        reads,
        [
            "T1 read version 2 of \"x\" as 5, but the final state of \"x\" has only 1 versions; no txn appended it",
            "T2 read version 1 of \"x\" as 9, but the final state holds 1 there; no txn appended it",
        ]
    );
}

#[test]
fn a_txn_that_disagrees_with_itself_is_internally_inconsistent() {
    let x1 = state(&[("x", &[1])]);
    // Phase 1: a read after the txn's own append does not see it.
    let report = must_check(&[ok(0, 10, vec![append("x", 1, 1), read_none("x")])], &x1);
    assert_kinds(&report, &[AnomalyKind::Internal]);
    assert!(
        must_only(&report, AnomalyKind::Internal)
            .explanation
            .contains("a txn must read its own last append")
    );
    // Phase 2: two reads with no append between disagree (and T0 sits on both sides of T1).
    let history =
        [ok(0, 10, vec![read_none("x"), read("x", 1, 1)]), ok(0, 10, vec![append("x", 1, 1)])];
    let report = must_check(&history, &x1);
    assert_eq!(
        must_only(&report, AnomalyKind::Internal).explanation,
        "T0 read \"x\" twice with no append between: version 0 (no element), then version 1 (1)"
    );
    // Phase 3: an append whose version skips past what the txn just read.
    let history =
        [ok(0, 10, vec![read_none("x"), append("x", 2, 2)]), ok(0, 10, vec![append("x", 1, 1)])];
    let report = must_check(&history, &state(&[("x", &[1, 2])]));
    assert_eq!(
        must_only(&report, AnomalyKind::Internal).explanation,
        "T0 read version 0 of \"x\", then its append of 2 got version 2, not 1"
    );
    // Phase 4: reading its own element before appending it.
    let report = must_check(&[ok(0, 10, vec![read("x", 1, 1), append("x", 1, 1)])], &x1);
    assert!(
        report
            .of_kind(AnomalyKind::Internal)
            .any(|a| a.explanation == "T0 read 1 from \"x\" before it appended it"),
        "{report:#?}"
    );
}

#[test]
fn malformed_reads_and_absurd_numbers_are_anomalies_not_panics() {
    let history = [
        ok(
            0,
            10,
            vec![
                append("x", 1, u64::MAX),
                MicroOp::Read { key: "x".into(), version: None, element: None },
                MicroOp::Read { key: "y".into(), version: Some(0), element: Some(3) },
                MicroOp::Read { key: "z".into(), version: Some(3), element: None },
            ],
        ),
        ok(20, 30, vec![read("x", u64::MAX, 1), read("x", u64::MAX - 1, u64::MAX)]),
        ok(u64::MAX, u64::MAX, vec![]),
    ];
    let report = must_check(&history, &state(&[("x", &[1]), ("x2", &[u64::MAX])]));
    assert_kinds(
        &report,
        &[
            AnomalyKind::WrongVersion,
            AnomalyKind::MalformedRead,
            AnomalyKind::IncompatibleRead,
            AnomalyKind::Internal,
            AnomalyKind::PhantomElement,
        ],
    );
    assert_eq!(report.counts["malformed-read"], 3);
    // Nothing at all is valid.
    assert!(must_check(&[], &FinalState::new()).valid);
}

#[test]
fn examples_are_capped_but_counted() {
    let history: Vec<TxnRecord> = (0..EXAMPLES_MAX as u64 + 5)
        .map(|i| ok(10 * i, 10 * i + 1, vec![append("x", i, i + 1)]))
        .collect();
    let report = must_check(&history, &state(&[("x", &[])]));
    assert_eq!(report.counts["lost-append"], EXAMPLES_MAX + 5);
    assert_eq!(report.anomalies.len(), EXAMPLES_MAX);
    assert!(report.summary().ends_with("anomalies: lost-append 25"), "{}", report.summary());
}

/// A random serial execution: txns run one after another on keys k0..k4, in the order of their
/// index and their times. Ok txns take effect; failed ones do not; info ones may. Each txn ends
/// `overlap_ms` after the next ones begin (0: strictly one after another).
fn must_serial_history(seed: u64, txns: usize, overlap_ms: u64) -> (Vec<TxnRecord>, FinalState) {
    let mut rng = StdRng::seed_from_u64(seed);
    let keys = ["k0", "k1", "k2", "k3", "k4"];
    let mut final_state: FinalState = keys.iter().map(|k| ((*k).to_owned(), Vec::new())).collect();
    let mut next_element = 0;
    let mut history = Vec::with_capacity(txns);
    for t in 0..txns as u64 {
        let outcome = match rng.random_range(0..10) {
            0 => TxnOutcome::Fail,
            1 => TxnOutcome::Info,
            _ => TxnOutcome::Ok,
        };
        let applied = match outcome {
            TxnOutcome::Ok => true,
            TxnOutcome::Fail => false,
            TxnOutcome::Info => rng.random_bool(0.5),
        };
        let mut ops = Vec::new();
        for _ in 0..rng.random_range(1..=4) {
            let key = keys[rng.random_range(0..keys.len())];
            let versions = final_state.get_mut(key).unwrap();
            if rng.random_bool(0.5) {
                next_element += 1;
                let mut version = None;
                if applied {
                    versions.push(next_element);
                    version = (outcome == TxnOutcome::Ok).then_some(versions.len() as u64);
                }
                ops.push(MicroOp::Append { key: key.into(), element: next_element, version });
            } else if outcome == TxnOutcome::Ok {
                ops.push(MicroOp::Read {
                    key: key.into(),
                    version: Some(versions.len() as u64),
                    element: versions.last().copied(),
                });
            } else {
                ops.push(MicroOp::Read { key: key.into(), version: None, element: None });
            }
        }
        let invoke_ms = 10 * t;
        let complete_ms = match outcome {
            TxnOutcome::Info if rng.random_bool(0.5) => None,
            _ => Some(invoke_ms + 5 + overlap_ms),
        };
        history.push(TxnRecord { process: t % 7, invoke_ms, complete_ms, outcome, ops });
    }
    (history, final_state)
}

#[test]
fn random_serial_executions_are_valid_and_a_stale_read_in_them_is_found() {
    let mut mutated = 0;
    for seed in 0..40 {
        let (mut history, final_state) = must_serial_history(seed, 300, 0);
        let report = must_check(&history, &final_state);
        assert!(report.valid, "seed {seed}: {}\n{report:#?}", report.summary());
        // Make one read see the version before the one it saw, whose writer completed ok
        // before the reader began (or was the reader itself).
        let writers: std::collections::HashMap<u64, usize> = history
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                t.ops.iter().filter_map(move |op| match op {
                    MicroOp::Append { element, .. } => Some((*element, i)),
                    MicroOp::Read { .. } => None,
                })
            })
            .collect();
        let candidate = history
            .iter()
            .enumerate()
            .flat_map(|(i, t)| (0..t.ops.len()).map(move |j| (i, j)))
            .find(|&(i, j)| {
                let MicroOp::Read { element: Some(e), .. } = &history[i].ops[j] else {
                    return false;
                };
                history[i].outcome == TxnOutcome::Ok
                    && history[writers[e]].outcome == TxnOutcome::Ok
            });
        let Some((i, j)) = candidate else { continue };
        mutated += 1;
        let MicroOp::Read { key, version: Some(v), .. } = &history[i].ops[j] else {
            unreachable!()
        };
        let (key, older) = (key.clone(), v - 1);
        let element = older.checked_sub(1).map(|at| final_state[&key][at as usize]);
        history[i].ops[j] = MicroOp::Read { key, version: Some(older), element };
        let report = must_check(&history, &final_state);
        assert!(!report.valid, "seed {seed}: T{i} step {j} read an older version unnoticed");
        assert!(
            !report.counts.contains_key("incompatible-read"),
            "seed {seed}: the older version is in the final state"
        );
    }
    assert!(mutated >= 30, "only {mutated} of 40 histories had a read to make stale");
}

#[test]
fn random_overlapping_executions_are_valid() {
    for seed in 100..120 {
        let (history, final_state) = must_serial_history(seed, 300, seed % 40);
        let report = must_check(&history, &final_state);
        assert!(report.valid, "seed {seed}: {report:#?}");
    }
}

#[test]
fn twenty_thousand_txns_check_in_one_pass() {
    let (history, final_state) = must_serial_history(7, 20_000, 25);
    let report = check_list_append(&history, &final_state);
    assert!(report.valid, "{}", report.summary());
    assert_eq!(report.txns, 20_000);
}
