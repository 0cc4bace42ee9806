//! Running a model to the end of its bounds and reading what the checker found.
//!
//! Every model in this crate is finite: faults (crashes, lost messages) come from a budget, and
//! every other action moves the state forward. So a breadth-first search visits every reachable
//! state and stops by itself; the tests use [`check`] for that, and [`find`] to look for one
//! property's counterexample in a deliberately broken variant (stopping as soon as it is found).
//!
//! The search runs on one thread, so the number of states it reports is the same on every run and
//! every machine; the tests print it and put it in their assertion messages.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::{self, Debug};
use std::hash::Hash;
use std::time::{Duration, Instant};

use stateright::{Checker, Expectation, HasDiscoveries, Model, Path};

/// What one bounded check of a model found.
pub struct Report<M: Model> {
    /// The model's name, for messages.
    pub name: String,
    /// Distinct states visited.
    pub unique_states: usize,
    /// States generated, repeats included.
    pub generated_states: usize,
    /// Length of the longest path explored.
    pub max_depth: usize,
    /// Wall-clock time of the search.
    pub elapsed: Duration,
    /// Whether the search visited every reachable state (rather than stopping at a discovery).
    pub complete: bool,
    /// The property a [`find`] looked for.
    pub target: Option<&'static str>,
    properties: Vec<(&'static str, Expectation)>,
    discoveries: HashMap<&'static str, Path<M::State, M::Action>>,
}

impl<M: Model> Debug for Report<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("name", &self.name)
            .field("unique_states", &self.unique_states)
            .field("generated_states", &self.generated_states)
            .field("max_depth", &self.max_depth)
            .field("elapsed", &self.elapsed)
            .field("complete", &self.complete)
            .field("discoveries", &self.discoveries.keys().collect::<BTreeSet<_>>())
            .finish()
    }
}

impl<M: Model> fmt::Display for Report<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} states ({} generated, depth {}) in {:.2} s{}",
            self.name,
            self.unique_states,
            self.generated_states,
            self.max_depth,
            self.elapsed.as_secs_f64(),
            if self.complete { "" } else { ", stopped at a discovery" }
        )
    }
}

impl<M> Report<M>
where
    M: Model,
    M::State: Clone + PartialEq,
    M::Action: Clone + PartialEq + Debug,
{
    /// The names of the model's properties.
    pub fn properties(&self) -> Vec<&'static str> {
        self.properties.iter().map(|(name, _)| *name).collect()
    }

    /// The `always` and `eventually` properties that have a counterexample.
    pub fn failures(&self) -> Vec<&'static str> {
        self.properties
            .iter()
            .filter(|(name, e)| *e != Expectation::Sometimes && self.discoveries.contains_key(name))
            .map(|(name, _)| *name)
            .collect()
    }

    /// The `sometimes` properties for which no example was found: a vacuous model, or bounds too
    /// small to reach them.
    pub fn missing_examples(&self) -> Vec<&'static str> {
        self.properties
            .iter()
            .filter(|(name, e)| {
                *e == Expectation::Sometimes && !self.discoveries.contains_key(name)
            })
            .map(|(name, _)| *name)
            .collect()
    }

    /// Whether every `always` and `eventually` property held, every `sometimes` property had an
    /// example, and the search was complete.
    pub fn all_hold(&self) -> bool {
        self.complete && self.failures().is_empty() && self.missing_examples().is_empty()
    }

    /// The actions of the path the checker found for `property` (an example of a `sometimes`
    /// property, a counterexample of the others), if it found one.
    pub fn path_to(&self, property: &str) -> Option<Vec<M::Action>> {
        self.discoveries.get(property).map(|p| p.clone().into_actions())
    }

    /// The last state of the path found for `property`, if any.
    pub fn last_state(&self, property: &str) -> Option<M::State> {
        self.discoveries.get(property).map(|p| p.last_state().clone())
    }

    /// A multi-line account: the summary, then each failed property with its path (for a
    /// [`find`], only the property it looked for: the paths to the others need not be shortest).
    pub fn explain(&self) -> String {
        let mut out = format!("{self}\n");
        let failures = match self.target {
            Some(t) => self.failures().into_iter().filter(|f| *f == t).collect(),
            None => self.failures(),
        };
        for name in failures {
            out.push_str(&format!("  counterexample to \"{name}\":\n"));
            for action in self.path_to(name).unwrap_or_default() {
                out.push_str(&format!("    {action:?}\n"));
            }
        }
        for name in if self.complete { self.missing_examples() } else { Vec::new() } {
            out.push_str(&format!("  no example of \"{name}\"\n"));
        }
        out
    }
}

/// Visits every reachable state of `model` breadth-first on one thread and reports what held.
pub fn check<M>(name: &str, model: M) -> Report<M>
where
    M: Model + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq,
{
    run(name, model, HasDiscoveries::All, None)
}

/// Searches `model` breadth-first until `property` has a discovery (or every state is visited),
/// so that a broken variant's counterexample is found, and found shortest.
///
/// stateright's search keeps the last discovery it makes for a property among the states it
/// checks in one batch, not the first, so its path may be a step or two longer than needed. So
/// once a path of `n` actions is found, this function searches again with paths bounded to
/// `n - 1` actions, until that finds nothing: the last path found is a shortest one. The report's
/// counts are those of the search that found it; its time is that of all of them.
///
/// # Panics
/// When `model` has no property named `property`.
pub fn find<M>(name: &str, model: M, property: &'static str) -> Report<M>
where
    M: Model + Clone + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq,
{
    let known: Vec<&str> = model.properties().iter().map(|p| p.name).collect();
    assert!(known.contains(&property), "{name} has no property {property:?}; it has {known:?}");
    let started = Instant::now();
    let finish_when = || HasDiscoveries::AnyOf(BTreeSet::from([property]));
    let mut best = run(name, model.clone(), finish_when(), None);
    // Each search is bounded below the last path's length, so this loop ends.
    while let Some(actions) = best.discoveries.get(property).map(|p| p.clone().into_actions().len())
    {
        if actions == 0 {
            break;
        }
        // `target_max_depth` counts the initial state as depth 1 and skips states at the bound:
        // a bound of `actions + 1` checks paths of at most `actions - 1` actions.
        let shorter = run(name, model.clone(), finish_when(), Some(actions + 1));
        if !shorter.discoveries.contains_key(property) {
            break;
        }
        best = shorter;
    }
    best.elapsed = started.elapsed();
    best.target = Some(property);
    // A search that found what it looked for stopped there (a bounded one may have run out of
    // states below its bound, which is not the whole model either).
    if best.discoveries.contains_key(property) {
        best.complete = false;
    }
    best
}

fn run<M>(
    name: &str,
    model: M,
    finish_when: HasDiscoveries,
    depth_bound: Option<usize>,
) -> Report<M>
where
    M: Model + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq,
{
    let properties = model.properties().iter().map(|p| (p.name, p.expectation.clone())).collect();
    let started = Instant::now();
    let mut builder = model.checker().threads(1).finish_when(finish_when);
    if let Some(depth) = depth_bound {
        builder = builder.target_max_depth(depth);
    }
    let checker = builder.spawn_bfs().join();
    let elapsed = started.elapsed();
    let discoveries = checker.discoveries();
    // With `HasDiscoveries::All` the search stops early only if every property has a discovery,
    // which needs every `always` property to fail: then the failures say what matters anyway.
    let complete = checker.is_done() && discoveries.len() < checker.model().properties().len();
    Report {
        name: name.to_owned(),
        unique_states: checker.unique_state_count(),
        generated_states: checker.state_count(),
        max_depth: checker.max_depth(),
        elapsed,
        complete,
        target: None,
        properties,
        discoveries,
    }
}

/// Looks for a cycle in the state graph of `model` (a path that comes back to a state it has
/// visited), visiting at most `max_states` states, and returns the actions of the first path
/// found that closes one, from an initial state.
///
/// The liveness checks of these models ("once the faults stop, everything is decided") look at
/// the states where nothing more can happen. That is a proper bounded liveness check only if every
/// path ends in such a state, that is, if the graph has no cycle; this function checks it.
///
/// # Panics
/// When the model has more than `max_states` reachable states.
pub fn find_cycle<M>(model: &M, max_states: usize) -> Option<Vec<M::Action>>
where
    M: Model,
    M::State: Clone + Hash + Eq,
    M::Action: Clone,
{
    /// A state on the current path, its successors still to visit, and the action that led to
    /// it.
    struct Frame<S, A> {
        state: S,
        successors: Vec<(A, S)>,
        via: Option<A>,
    }
    // Iterative depth-first search with the usual colours: a state is "open" while it is on the
    // current path and "done" once all its successors are; an edge to an open state closes a cycle.
    let mut done: HashSet<M::State> = HashSet::new();
    let mut open: HashSet<M::State> = HashSet::new();
    for init in model.init_states() {
        if done.contains(&init) {
            continue;
        }
        open.insert(init.clone());
        let successors = model.next_steps(&init);
        let mut stack = vec![Frame { state: init, successors, via: None }];
        while let Some(frame) = stack.last_mut() {
            let Some((action, state)) = frame.successors.pop() else {
                let frame = stack.pop().expect("the loop saw a frame");
                open.remove(&frame.state);
                done.insert(frame.state);
                continue;
            };
            if open.contains(&state) {
                let mut actions: Vec<M::Action> =
                    stack.iter().filter_map(|f| f.via.clone()).collect();
                actions.push(action);
                return Some(actions);
            }
            if done.contains(&state) {
                continue;
            }
            assert!(done.len() + open.len() < max_states, "more than {max_states} states");
            open.insert(state.clone());
            let successors = model.next_steps(&state);
            stack.push(Frame { state, successors, via: Some(action) });
        }
    }
    None
}

/// Whether no action of `model` changes `state`: nothing more can happen. The models' bounded
/// liveness properties hold in every such state.
pub fn is_quiescent<M: Model>(model: &M, state: &M::State) -> bool {
    let mut actions = Vec::new();
    model.actions(state, &mut actions);
    actions.into_iter().all(|a| model.next_state(state, a).is_none())
}
