//! The durability model at CI bounds, and its broken variants.

mod common;

use blockdb_spec::check::{check, find, find_cycle};
use blockdb_spec::durability::{Durability, DurabilityAction, DurabilityBug, DurabilityConfig};
use common::{must_find, must_hold};

const SAME_AS_PREFIX: &str =
    "after recovery the state equals applying exactly the committed prefix";
const NO_ACK_LOST: &str = "no acknowledged write is lost";

fn with_bug(bug: DurabilityBug) -> Durability {
    Durability::new(DurabilityConfig { bug: Some(bug), ..DurabilityConfig::ci() })
}

fn crashes(path: &[DurabilityAction]) -> usize {
    path.iter().filter(|a| matches!(a, DurabilityAction::Crash { .. })).count()
}

#[test]
fn durability_holds_at_ci_bounds() {
    let report = check("durability", Durability::new(DurabilityConfig::ci()));
    must_hold(&report, 30_000);
}

#[test]
fn durability_holds_with_a_conflicting_write() {
    let report = check("durability/conflict", Durability::new(DurabilityConfig::ci_conflict()));
    must_hold(&report, 20_000);
    let properties = report.properties();
    assert!(properties.contains(&"a write is refused by a conflict"), "{properties:?}");
}

/// The bounded liveness property ("replay completes") looks at the states where nothing more
/// can happen; that is the end of every run only if the state graph has no cycle.
#[test]
fn durability_has_no_cycles() {
    let cycle = find_cycle(&Durability::new(DurabilityConfig::ci()), 1_000_000);
    assert_eq!(cycle, None);
}

#[test]
fn an_applied_index_written_before_its_state_describes_lost_records() {
    let report = find(
        "durability/applied-index-before-state",
        with_bug(DurabilityBug::AppliedIndexBeforeState),
        SAME_AS_PREFIX,
    );
    let path = must_find(&report, SAME_AS_PREFIX);
    assert_eq!(crashes(&path), 1, "a crash between the two writes: {path:?}");
}

#[test]
fn a_replay_that_skips_loses_an_acknowledged_write() {
    let report = find("durability/replay-skips", with_bug(DurabilityBug::ReplaySkips), NO_ACK_LOST);
    must_find(&report, NO_ACK_LOST);
    let report =
        find("durability/replay-skips", with_bug(DurabilityBug::ReplaySkips), SAME_AS_PREFIX);
    must_find(&report, SAME_AS_PREFIX);
}

#[test]
fn an_ack_before_the_log_fsync_loses_the_write() {
    let report = find(
        "durability/ack-before-log-sync",
        with_bug(DurabilityBug::AckBeforeLogSync),
        NO_ACK_LOST,
    );
    must_find(&report, NO_ACK_LOST);
}

#[test]
fn a_freeze_without_fsync_leaves_a_hole_in_the_log() {
    let report = find(
        "durability/freeze-without-sync",
        with_bug(DurabilityBug::FreezeWithoutSync),
        SAME_AS_PREFIX,
    );
    let path = must_find(&report, SAME_AS_PREFIX);
    assert!(path.contains(&DurabilityAction::Freeze), "{path:?}");
}
