//! The 2PC model at CI bounds, and its broken variants.

mod common;

use blockdb_spec::check::{check, find, find_cycle};
use blockdb_spec::twopc::{TwoPc, TwoPcAction, TwoPcBug, TwoPcConfig};
use common::{must_find, must_hold};

fn with_bug(bug: TwoPcBug) -> TwoPc {
    TwoPc::new(TwoPcConfig { bug: Some(bug), ..TwoPcConfig::ci() })
}

#[test]
fn twopc_holds_at_ci_bounds() {
    let report = check("twopc", TwoPc::new(TwoPcConfig::ci()));
    must_hold(&report, 30_000);
}

/// The bounded liveness property looks at the states where nothing more can happen; that is
/// the end of every run only if the state graph has no cycle.
#[test]
fn twopc_has_no_cycles() {
    let cycle = find_cycle(&TwoPc::new(TwoPcConfig::ci()), 1_000_000);
    assert_eq!(cycle, None, "a cycle lets a run go on forever without reaching quiescence");
}

#[test]
fn a_decision_sent_before_it_is_durable_breaks_atomicity() {
    let property = "atomicity: no shard commits while another aborts";
    let report =
        find("twopc/decision-before-durable", with_bug(TwoPcBug::DecisionBeforeDurable), property);
    let path = must_find(&report, property);
    // The coordinator's commit reached a participant while recovery's abort won the record.
    assert!(path.iter().any(|a| matches!(a, TwoPcAction::ParticipantTimeout(_))), "{path:?}");
}

#[test]
fn a_decision_that_can_be_overwritten_changes() {
    let property = "a decision never changes";
    let report = find("twopc/last-decision-wins", with_bug(TwoPcBug::LastDecisionWins), property);
    must_find(&report, property);
}
