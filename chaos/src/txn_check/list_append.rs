//! The list-append checker; the [parent module](super) says what it checks and why.
//!
//! It runs in four passes over the history, each adding to one [`Anomalies`]:
//!
//! 1. **index**: who appended each (key, element), and where each element sits in the final
//!    state; duplicates and phantoms show up here;
//! 2. **appends**: each committed append against the final state (lost, wrong version), and
//!    each failed one (visible when it must not be);
//! 3. **reads**: each ok txn's steps in order (internal consistency), and each read against the
//!    final state and its writer (incompatible, G1a, G1b); the reads that fit the final state
//!    are kept for the graph;
//! 4. **cycles**: the dependency graph and its cycles (the searches are in `graph.rs`, the
//!    words for a cycle in `list_append/explain.rs`).
//!
//! The internal-consistency rules are in `list_append/internal.rs`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::graph::{self, Graph, RT, RW, Search, WR, WW, collapse_realtime};
use super::record::{FinalState, MicroOp, TxnOutcome, TxnRecord};
use super::report::{Anomalies, AnomalyKind, ListAppendReport};

mod explain;
mod internal;
#[cfg(test)]
mod tests;

use internal::{Seen, check_append_follows, check_read_agrees, well_formed};

/// Checks a list-append history against the final state read at the end of the run; see the
/// [module docs](super). Requires `final_state` to hold every key the history appended to (an
/// absent key reads as having no versions, so its ok appends are lost). Never panics, whatever
/// the history and the final state hold: what breaks the workload's conventions is an anomaly.
pub fn check_list_append(history: &[TxnRecord], final_state: &FinalState) -> ListAppendReport {
    let mut anomalies = Anomalies::default();
    let checker = Checker::new(history, final_state, &mut anomalies);
    checker.check_appends(&mut anomalies);
    let reads = checker.check_reads(&mut anomalies);
    checker.check_cycles(&reads, &mut anomalies);
    let count = |o: TxnOutcome| checker.outcomes.iter().filter(|&&x| x == o).count();
    let (ok, fail, info) =
        (count(TxnOutcome::Ok), count(TxnOutcome::Fail), count(TxnOutcome::Info));
    let (counts, anomalies) = anomalies.into_parts();
    ListAppendReport {
        valid: counts.is_empty(),
        txns: history.len(),
        ok,
        fail,
        info,
        counts,
        anomalies,
    }
}

/// A read of an ok txn that fits the final state: an edge source for the graph.
#[derive(Clone, Copy, Debug)]
struct GraphRead<'h> {
    txn: usize,
    key: &'h str,
    version: u64,
}

/// The history with its indexes.
#[derive(Debug)]
struct Checker<'h> {
    history: &'h [TxnRecord],
    final_state: &'h FinalState,
    /// Each txn's [`TxnRecord::effective_outcome`].
    outcomes: Vec<TxnOutcome>,
    /// The first append of each (key, element): (txn, step).
    appends: HashMap<(&'h str, u64), (usize, usize)>,
    /// The first version holding each (key, element) in the final state.
    final_versions: HashMap<(&'h str, u64), u64>,
    /// The txns in the graph: ok, or info with an append in the final state.
    committed: Vec<bool>,
}

impl<'h> Checker<'h> {
    /// Pass 1: the indexes, noting duplicate and phantom elements.
    fn new(history: &'h [TxnRecord], final_state: &'h FinalState, out: &mut Anomalies) -> Self {
        let outcomes: Vec<TxnOutcome> = history.iter().map(TxnRecord::effective_outcome).collect();
        let appends = index_appends(history, out);
        let final_versions = index_final_state(final_state, &appends, out);
        let committed = (history.iter().enumerate())
            .map(|(i, txn)| match outcomes[i] {
                TxnOutcome::Ok => true,
                TxnOutcome::Fail => false,
                // Committed if one of its (first) appends is in the final state.
                TxnOutcome::Info => txn.ops.iter().enumerate().any(|(j, op)| match op {
                    MicroOp::Append { key, element, .. } => {
                        let at = (key.as_str(), *element);
                        appends.get(&at) == Some(&(i, j)) && final_versions.contains_key(&at)
                    }
                    MicroOp::Read { .. } => false,
                }),
            })
            .collect();
        Checker { history, final_state, outcomes, appends, final_versions, committed }
    }

    /// The element of `version` of `key` in the final state.
    fn at(&self, key: &str, version: u64) -> Option<u64> {
        let index = usize::try_from(version.checked_sub(1)?).ok()?;
        self.final_state.get(key)?.get(index).copied()
    }

    /// The committed txn that appended `version` of `key` in the final state.
    fn writer(&self, key: &str, version: u64) -> Option<usize> {
        let element = self.at(key, version)?;
        let &(w, _) = self.appends.get(&(key, element))?;
        self.committed[w].then_some(w)
    }

    /// Whether step `step` of txn `txn` is the first append of its (key, element): later ones
    /// are duplicates, already reported.
    fn is_first_append(&self, txn: usize, step: usize, key: &str, element: u64) -> bool {
        self.appends.get(&(key, element)) == Some(&(txn, step))
    }

    /// Pass 2: committed appends must be in the final state, at their version; failed ones
    /// must not be.
    fn check_appends(&self, out: &mut Anomalies) {
        for (i, txn) in self.history.iter().enumerate() {
            let outcome = self.outcomes[i];
            if outcome == TxnOutcome::Fail {
                self.check_failed_appends(i, out);
                continue;
            }
            if !self.committed[i] {
                continue;
            }
            for (j, op) in txn.ops.iter().enumerate() {
                let MicroOp::Append { key, element, version } = op else { continue };
                if !self.is_first_append(i, j, key, *element) {
                    continue;
                }
                let Some(&held_at) = self.final_versions.get(&(key.as_str(), *element)) else {
                    let len = self.final_state.get(key).map_or(0, Vec::len);
                    out.note(AnomalyKind::LostAppend, vec![i], || match outcome {
                        TxnOutcome::Ok => format!(
                            "T{i} appended {element} to {key:?} and committed, but the final \
                             state of {key:?} ({len} versions) does not hold it"
                        ),
                        _ => format!(
                            "T{i}'s outcome is unknown, but it committed (other appends of it \
                             are in the final state); its append of {element} to {key:?} is not"
                        ),
                    });
                    continue;
                };
                let Some(v) = *version else { continue };
                if outcome == TxnOutcome::Ok && self.at(key, v) != Some(*element) {
                    out.note(AnomalyKind::WrongVersion, vec![i], || {
                        format!(
                            "T{i} was told its append of {element} to {key:?} got version {v}, \
                             but the final state holds it at version {held_at}"
                        )
                    });
                }
            }
        }
    }

    fn check_failed_appends(&self, i: usize, out: &mut Anomalies) {
        let visible: Vec<String> = (self.history[i].ops.iter().enumerate())
            .filter_map(|(j, op)| match op {
                MicroOp::Append { key, element, .. }
                    if self.is_first_append(i, j, key, *element) =>
                {
                    let v = self.final_versions.get(&(key.as_str(), *element))?;
                    Some(format!("{element} to {key:?} (version {v})"))
                }
                _ => None,
            })
            .collect();
        if !visible.is_empty() {
            out.note(AnomalyKind::AbortedWriteVisible, vec![i], || {
                format!(
                    "T{i} failed, yet its appends of {} are in the final state",
                    visible.join(", ")
                )
            });
        }
    }

    /// Pass 3: every ok txn's steps, in order; returns the reads that fit the final state.
    fn check_reads(&self, out: &mut Anomalies) -> Vec<GraphRead<'h>> {
        let mut reads = Vec::new();
        for (i, txn) in self.history.iter().enumerate() {
            if self.outcomes[i] != TxnOutcome::Ok {
                continue;
            }
            let mut seen: HashMap<&str, Seen> = HashMap::new();
            for (j, op) in txn.ops.iter().enumerate() {
                match op {
                    MicroOp::Append { key, element, version } => {
                        if let Some(prev) = seen.get(key.as_str()) {
                            check_append_follows(i, key, *element, *version, prev, out);
                        }
                        let now =
                            Seen { version: *version, element: Some(*element), by_append: true };
                        seen.insert(key, now);
                    }
                    MicroOp::Read { key, version, element } => {
                        let Some(version) = well_formed(i, key, *version, *element, out) else {
                            continue;
                        };
                        if let Some(prev) = seen.get(key.as_str()) {
                            check_read_agrees(i, key, version, *element, prev, out);
                        }
                        let now =
                            Seen { version: Some(version), element: *element, by_append: false };
                        seen.insert(key, now);
                        if self.check_read(i, j, key, version, *element, out) {
                            reads.push(GraphRead { txn: i, key, version });
                        }
                    }
                }
            }
        }
        reads
    }

    /// Checks a well-formed read, step `j` of ok txn `i`, against the final state and against
    /// the txn that appended what it saw. Returns whether it fits the final state.
    fn check_read(
        &self,
        i: usize,
        j: usize,
        key: &str,
        version: u64,
        element: Option<u64>,
        out: &mut Anomalies,
    ) -> bool {
        let Some(e) = element else { return version == 0 };
        let writer = self.appends.get(&(key, e)).copied();
        let held = self.at(key, version);
        let fits = held == Some(e);
        if !fits {
            let txns = writer.iter().map(|&(w, _)| w).chain([i]).collect();
            out.note(AnomalyKind::IncompatibleRead, txns, || {
                let len = self.final_state.get(key).map_or(0, Vec::len);
                let held = match held {
                    Some(x) => format!("the final state holds {x} there"),
                    None => format!("the final state of {key:?} has only {len} versions"),
                };
                let source = match (writer, self.final_versions.get(&(key, e))) {
                    (None, _) => "; no txn appended it".to_owned(),
                    (Some((w, _)), Some(v)) => format!(" (T{w} appended it, as version {v})"),
                    (Some((w, _)), None) => {
                        format!(" (T{w} appended it; it is not in the final state)")
                    }
                };
                format!("T{i} read version {version} of {key:?} as {e}, but {held}{source}")
            });
        }
        let Some((w, step)) = writer else { return fits };
        if w == i {
            if step > j {
                out.note(AnomalyKind::Internal, vec![i], || {
                    format!("T{i} read {e} from {key:?} before it appended it")
                });
            }
        } else if self.outcomes[w] == TxnOutcome::Fail {
            out.note(AnomalyKind::G1a, vec![w, i], || {
                format!(
                    "T{i} read {e} from {key:?} (version {version}), appended by T{w}, which failed"
                )
            });
        } else if let Some(last) = self.last_append(w, key)
            && last != e
        {
            out.note(AnomalyKind::G1b, vec![w, i], || {
                format!(
                    "T{w} appended {e} and later {last} to {key:?}, and T{i} read {e} (version \
                     {version}): a state in the middle of T{w}"
                )
            });
        }
        fits
    }

    /// The last element txn `txn` appended to `key`.
    fn last_append(&self, txn: usize, key: &str) -> Option<u64> {
        self.history[txn].ops.iter().rev().find_map(|op| match op {
            MicroOp::Append { key: k, element, .. } if k == key => Some(*element),
            _ => None,
        })
    }

    /// Pass 4: the dependency graph's cycles: one anomaly per component of the graph without
    /// real-time edges, then one per component of the whole graph that holds a cycle needing a
    /// real-time edge (one between two of the first components).
    fn check_cycles(&self, reads: &[GraphRead<'_>], out: &mut Anomalies) {
        let n = self.history.len();
        let nodes: Vec<usize> = (0..n).filter(|&i| self.committed[i]).collect();
        let mut edges = self.dependency_edges(reads);
        let timed: Vec<(usize, u64, Option<u64>)> = (nodes.iter())
            .map(|&i| {
                let txn = &self.history[i];
                let complete = txn.complete_ms.filter(|_| self.outcomes[i] == TxnOutcome::Ok);
                (i, txn.invoke_ms, complete)
            })
            .collect();
        edges.extend(graph::realtime_edges(&timed));
        let graph = Graph::new(n, edges);
        let mut search = Search::new(&graph);
        // Each node's plain component, named by one of its nodes (itself when alone).
        let mut plain: Vec<usize> = (0..n).collect();
        for component in search.components(&nodes, WW | WR | RW) {
            for &v in &component {
                plain[v] = component[0];
            }
            if let Some(cycle) = search.witness(&component, 0, None) {
                self.note_cycle(&cycle, out);
            }
        }
        for component in search.components(&nodes, WW | WR | RW | RT) {
            if let Some(cycle) = search.witness(&component, RT, Some(&plain)) {
                self.note_cycle(&collapse_realtime(cycle), out);
            }
        }
    }

    /// The ww, wr and rw edges, by the final state's version order.
    fn dependency_edges(&self, reads: &[GraphRead<'_>]) -> Vec<(usize, usize, u8)> {
        let mut edges = Vec::new();
        for (key, elements) in self.final_state {
            let mut previous = None;
            for version in (1u64..).take(elements.len()) {
                let writer = self.writer(key, version);
                if let (Some(a), Some(b)) = (previous, writer) {
                    edges.push((a, b, WW));
                }
                previous = writer;
            }
        }
        for r in reads {
            if let Some(w) = self.writer(r.key, r.version) {
                edges.push((w, r.txn, WR));
            }
            if let Some(w) = r.version.checked_add(1).and_then(|next| self.writer(r.key, next)) {
                edges.push((r.txn, w, RW));
            }
        }
        edges
    }
}

/// The first append of each (key, element), as (txn, step); notes the later ones.
fn index_appends<'h>(
    history: &'h [TxnRecord],
    out: &mut Anomalies,
) -> HashMap<(&'h str, u64), (usize, usize)> {
    let mut appends = HashMap::new();
    for (i, txn) in history.iter().enumerate() {
        for (j, op) in txn.ops.iter().enumerate() {
            let MicroOp::Append { key, element, .. } = op else { continue };
            match appends.entry((key.as_str(), *element)) {
                Entry::Vacant(slot) => {
                    slot.insert((i, j));
                }
                Entry::Occupied(first) => {
                    let w = first.get().0;
                    out.note(AnomalyKind::DuplicateElement, vec![w, i], || {
                        if w == i {
                            format!("T{i} appended {element} to {key:?} twice")
                        } else {
                            format!("T{w} and T{i} both appended {element} to {key:?}")
                        }
                    });
                }
            }
        }
    }
    appends
}

/// The first version of each (key, element) in the final state; notes elements present twice,
/// and those no txn appended.
fn index_final_state<'h>(
    final_state: &'h FinalState,
    appends: &HashMap<(&'h str, u64), (usize, usize)>,
    out: &mut Anomalies,
) -> HashMap<(&'h str, u64), u64> {
    let mut final_versions = HashMap::new();
    for (key, elements) in final_state {
        for (version, &e) in (1u64..).zip(elements) {
            let writer = appends.get(&(key.as_str(), e)).map(|&(w, _)| w);
            match final_versions.entry((key.as_str(), e)) {
                Entry::Vacant(slot) => {
                    slot.insert(version);
                }
                Entry::Occupied(first) => {
                    let first = *first.get();
                    out.note(AnomalyKind::DuplicateElement, writer.into_iter().collect(), || {
                        format!(
                            "{e} is both version {first} and version {version} of {key:?} in the \
                             final state"
                        )
                    });
                }
            }
            if writer.is_none() {
                out.note(AnomalyKind::PhantomElement, vec![], || {
                    format!(
                        "version {version} of {key:?} in the final state is {e}, which no txn \
                         appended"
                    )
                });
            }
        }
    }
    final_versions
}
