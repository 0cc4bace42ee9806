//! What every model test does with a report: print it (with `--nocapture` the state counts show
//! up in the log) and assert, with the counts in the message.

use std::fmt::Debug;

use blockdb_spec::check::Report;
use stateright::Model;

/// Asserts that the complete check held: every `always` property, an example of every
/// `sometimes` one, and at least `states_min` states (a floor, far below the real count, that
/// catches a model which silently stopped exploring).
pub fn must_hold<M>(report: &Report<M>, states_min: usize)
where
    M: Model,
    M::State: Clone + PartialEq,
    M::Action: Clone + PartialEq + Debug,
{
    println!("{}", report.explain());
    assert!(report.all_hold(), "{}", report.explain());
    assert!(
        report.unique_states >= states_min,
        "{}: {} states, fewer than the {states_min} expected",
        report.name,
        report.unique_states
    );
}

/// Asserts that the checker found a counterexample to `property` in a broken variant, prints it,
/// and returns its actions.
pub fn must_find<M>(report: &Report<M>, property: &str) -> Vec<M::Action>
where
    M: Model,
    M::State: Clone + PartialEq,
    M::Action: Clone + PartialEq + Debug,
{
    println!("{}", report.explain());
    let path = report.path_to(property);
    assert!(
        report.failures().contains(&property),
        "{}: no counterexample to {property:?} ({} states searched)",
        report.name,
        report.unique_states
    );
    path.expect("a failure has a path")
}
