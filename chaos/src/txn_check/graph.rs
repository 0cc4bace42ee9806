//! The dependency graph and its cycle searches. Nodes are txn indexes; edges carry a set of
//! kinds ([`WW`], [`WR`], [`RT`], [`RW`]) as bits. This file knows nothing of keys or versions:
//! the list-append checker builds the edges, and explains the cycles found here.
//!
//! The graph is stored compressed (one sorted array of targets, with each node's range), with
//! the edges between two nodes merged into one entry whose kinds are a bit set. The searches
//! work on a subset of the nodes (one component) and a subset of the kinds; a [`Search`] keeps
//! its scratch arrays across calls and resets only what it touched, so that searching many
//! small components of a large graph costs their size, not the graph's.

use std::collections::{BTreeSet, VecDeque};

/// Write-write: the writer of a version, to the writer of the next.
pub(super) const WW: u8 = 1;
/// Write-read: the writer of a version, to a txn that read it.
pub(super) const WR: u8 = 2;
/// Real time: a txn that completed ok, to one invoked after.
pub(super) const RT: u8 = 4;
/// Read-write (anti-dependency): a txn that read a version, to the writer of the next.
pub(super) const RW: u8 = 8;

/// How many nodes the breadth-first searches for a `G-single` cycle may visit in one component,
/// all tries together; past it the component is classified by its `G2` search alone (still an
/// anomaly, perhaps under a stronger name than the weakest cycle it holds).
const SINGLE_VISITS_MAX: usize = 1 << 20;

/// "Not yet visited" in Tarjan's index array.
const UNSET: usize = usize::MAX;

/// One step of a cycle: the edge from `from` to the next step's node (the first's, after the
/// last), taken as `kind` (one bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Step {
    pub(super) from: usize,
    pub(super) kind: u8,
}

/// A directed graph over nodes `0..n`, with edge kinds as bits.
#[derive(Debug)]
pub(super) struct Graph {
    /// Node v's edges are `targets[starts[v]..starts[v + 1]]`, sorted by target.
    starts: Vec<usize>,
    targets: Vec<usize>,
    kinds: Vec<u8>,
}

impl Graph {
    /// The graph of `edges` (from, to, kind bits) over nodes `0..n`. Requires every node in
    /// `edges` to be below `n` (edges past it are dropped) and no edge from a node to itself
    /// (those are dropped too: a txn does not depend on itself).
    pub(super) fn new(n: usize, mut edges: Vec<(usize, usize, u8)>) -> Graph {
        edges.retain(|&(a, b, _)| a < n && b < n && a != b);
        edges.sort_unstable();
        let mut starts = vec![0; n + 1];
        let mut targets = Vec::with_capacity(edges.len());
        let mut kinds: Vec<u8> = Vec::with_capacity(edges.len());
        let mut last = None;
        for (a, b, kind) in edges {
            if last == Some((a, b)) {
                if let Some(k) = kinds.last_mut() {
                    *k |= kind;
                }
                continue;
            }
            last = Some((a, b));
            targets.push(b);
            kinds.push(kind);
            starts[a + 1] += 1;
        }
        for v in 0..n {
            starts[v + 1] += starts[v];
        }
        Graph { starts, targets, kinds }
    }

    /// How many nodes.
    pub(super) fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Node v's edges: (target, kind bits).
    fn edges(&self, v: usize) -> impl Iterator<Item = (usize, u8)> + '_ {
        let range = self.starts[v]..self.starts[v + 1];
        self.targets[range.clone()].iter().copied().zip(self.kinds[range].iter().copied())
    }
}

/// The kind an edge with kinds `kinds` is taken as, among `allowed`: the lowest bit, which is
/// the weakest dependency (ww before wr before rt before rw), so that cycles read as the weakest
/// anomaly they can.
fn taken_as(kinds: u8, allowed: u8) -> Option<u8> {
    let both = kinds & allowed;
    (both != 0).then(|| both & both.wrapping_neg())
}

/// The real-time edges among `txns`, each (index, invoke time, completion time if it completed
/// ok); see the parent module for the frontier sweep and why its edges suffice. An edge goes
/// from a txn that completed strictly before another was invoked.
pub(super) fn realtime_edges(txns: &[(usize, u64, Option<u64>)]) -> Vec<(usize, usize, u8)> {
    // (time, 0 for an invoke or 1 for a completion, position in `txns`): at equal times the
    // invokes come first, so equal times are concurrent.
    let mut events = Vec::with_capacity(2 * txns.len());
    for (i, &(_, invoke, complete)) in txns.iter().enumerate() {
        events.push((invoke, 0u8, i));
        if let Some(complete) = complete {
            events.push((complete.max(invoke), 1u8, i));
        }
    }
    events.sort_unstable();
    let mut frontier: BTreeSet<usize> = BTreeSet::new();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); txns.len()];
    let mut edges = Vec::new();
    for (_, what, i) in events {
        if what == 0 {
            edges.extend(frontier.iter().map(|&p| (txns[p].0, txns[i].0, RT)));
            if txns[i].2.is_some() {
                preds[i] = frontier.iter().copied().collect();
            }
        } else {
            for p in std::mem::take(&mut preds[i]) {
                frontier.remove(&p);
            }
            frontier.insert(i);
        }
    }
    edges
}

/// Tarjan's components and breadth-first cycle searches over one [`Graph`], with scratch arrays
/// kept across calls.
#[derive(Debug)]
pub(super) struct Search<'g> {
    graph: &'g Graph,
    /// Tarjan's discovery index of each node, or [`UNSET`].
    index: Vec<usize>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    /// The nodes of the current subset carry the current stamp.
    member: Vec<u32>,
    stamp: u32,
    /// Breadth-first parents: (node, kind of the edge from it), valid where `seen` has the
    /// current stamp.
    parent: Vec<(usize, u8)>,
    seen: Vec<u32>,
    seen_stamp: u32,
}

impl<'g> Search<'g> {
    pub(super) fn new(graph: &'g Graph) -> Search<'g> {
        let n = graph.len();
        Search {
            graph,
            index: vec![UNSET; n],
            low: vec![0; n],
            on_stack: vec![false; n],
            member: vec![0; n],
            stamp: 0,
            parent: vec![(0, 0); n],
            seen: vec![0; n],
            seen_stamp: 0,
        }
    }

    /// Makes `nodes` the current subset.
    fn enter(&mut self, nodes: &[usize]) {
        self.stamp = next_stamp(self.stamp, &mut self.member);
        for &v in nodes {
            self.member[v] = self.stamp;
        }
    }

    fn is_member(&self, v: usize) -> bool {
        self.member[v] == self.stamp
    }

    /// The strongly connected components with two or more nodes of the subgraph of `nodes`
    /// and the edges with a kind in `allowed`. Iterative: the call stack is a vector, so a path
    /// of 100 000 nodes does not overflow the thread's stack.
    pub(super) fn components(&mut self, nodes: &[usize], allowed: u8) -> Vec<Vec<usize>> {
        self.enter(nodes);
        let graph = self.graph;
        let mut found = Vec::new();
        let mut counter = 0;
        let mut stack: Vec<usize> = Vec::new();
        // (node, position of its next edge in the graph's arrays)
        let mut calls: Vec<(usize, usize)> = Vec::new();
        for &root in nodes {
            if self.index[root] != UNSET {
                continue;
            }
            self.visit(root, &mut counter, &mut stack);
            calls.push((root, graph.starts[root]));
            while let Some(&(v, at)) = calls.last() {
                if at < graph.starts[v + 1] {
                    if let Some(call) = calls.last_mut() {
                        call.1 += 1;
                    }
                    let (w, kinds) = (graph.targets[at], graph.kinds[at]);
                    if kinds & allowed == 0 || !self.is_member(w) {
                        continue;
                    }
                    if self.index[w] == UNSET {
                        self.visit(w, &mut counter, &mut stack);
                        calls.push((w, graph.starts[w]));
                    } else if self.on_stack[w] {
                        self.low[v] = self.low[v].min(self.index[w]);
                    }
                    continue;
                }
                calls.pop();
                if let Some(&(u, _)) = calls.last() {
                    self.low[u] = self.low[u].min(self.low[v]);
                }
                if self.low[v] == self.index[v] {
                    let component = self.pop_component(v, &mut stack);
                    if component.len() > 1 {
                        found.push(component);
                    }
                }
            }
        }
        for &v in nodes {
            self.index[v] = UNSET;
        }
        found
    }

    fn visit(&mut self, v: usize, counter: &mut usize, stack: &mut Vec<usize>) {
        self.index[v] = *counter;
        self.low[v] = *counter;
        *counter += 1;
        stack.push(v);
        self.on_stack[v] = true;
    }

    fn pop_component(&mut self, root: usize, stack: &mut Vec<usize>) -> Vec<usize> {
        let mut component = Vec::new();
        while let Some(w) = stack.pop() {
            self.on_stack[w] = false;
            component.push(w);
            if w == root {
                break;
            }
        }
        component
    }

    /// The shortest path from `from` to `to` inside the current subset along `allowed` edges,
    /// visiting at most `*visits` nodes (decremented); the steps from `from` up to the one into
    /// `to`. With `from == to`, the shortest cycle through it.
    fn path(
        &mut self,
        from: usize,
        to: usize,
        allowed: u8,
        visits: &mut usize,
    ) -> Option<Vec<Step>> {
        let graph = self.graph;
        self.seen_stamp = next_stamp(self.seen_stamp, &mut self.seen);
        self.seen[from] = self.seen_stamp;
        let mut queue = VecDeque::from([from]);
        while let Some(v) = queue.pop_front() {
            *visits = visits.checked_sub(1)?;
            for (w, kinds) in graph.edges(v) {
                let Some(kind) = taken_as(kinds, allowed) else { continue };
                if !self.is_member(w) {
                    continue;
                }
                if w == to {
                    return Some(self.unwind(from, v, kind));
                }
                if self.seen[w] != self.seen_stamp {
                    self.seen[w] = self.seen_stamp;
                    self.parent[w] = (v, kind);
                    queue.push_back(w);
                }
            }
        }
        None
    }

    /// The steps from `from` to `last`, by the parents, then `last`'s step of `kind`.
    fn unwind(&self, from: usize, last: usize, kind: u8) -> Vec<Step> {
        let mut steps = vec![Step { from: last, kind }];
        let mut v = last;
        while v != from {
            let (p, kind) = self.parent[v];
            steps.push(Step { from: p, kind });
            v = p;
        }
        steps.reverse();
        steps
    }

    /// A short cycle in `component` (strongly connected along `extra` and the plain kinds,
    /// with two or more nodes), of the weakest class found: only ww (and `extra`) edges, then
    /// ww and wr, then exactly one rw, then any. `extra` is 0, or [`RT`] to let real-time edges
    /// in. With `plain`, the ids of the nodes' components in the graph without real-time edges,
    /// the cycle must hold an edge between two of those components, which makes it one that no
    /// cycle without real-time edges explains (such a cycle would put both ends in the same
    /// component); `None` when there is no such constraint.
    pub(super) fn witness(
        &mut self,
        component: &[usize],
        extra: u8,
        plain: Option<&[usize]>,
    ) -> Option<Vec<Step>> {
        let crossing = |a: usize, b: usize| plain.is_none_or(|ids| ids[a] != ids[b]);
        let mut unlimited = usize::MAX;
        for allowed in [WW | extra, WW | WR | extra] {
            for sub in self.components(component, allowed) {
                self.enter(&sub);
                if let Some(cycle) =
                    self.cycle_through_edge(&sub, allowed, &crossing, &mut unlimited)
                {
                    return Some(cycle);
                }
            }
        }
        self.enter(component);
        if let Some(cycle) = self.single_rw(component, WW | WR | extra, &crossing) {
            return Some(cycle);
        }
        self.cycle_through_edge(component, WW | WR | RW | extra, &crossing, &mut unlimited)
    }

    /// A cycle through the first edge a → b (along `allowed`, with `crossing(a, b)`) of the
    /// current subset `nodes`: the edge, then the shortest path back from b to a.
    fn cycle_through_edge(
        &mut self,
        nodes: &[usize],
        allowed: u8,
        crossing: &impl Fn(usize, usize) -> bool,
        visits: &mut usize,
    ) -> Option<Vec<Step>> {
        let graph = self.graph;
        let (a, b, kind) = nodes.iter().find_map(|&a| {
            graph.edges(a).find_map(|(b, kinds)| {
                let kind = taken_as(kinds, allowed)?;
                (self.is_member(b) && crossing(a, b)).then_some((a, b, kind))
            })
        })?;
        let path = self.path(b, a, allowed, visits)?;
        let mut cycle = vec![Step { from: a, kind }];
        cycle.extend(path);
        Some(cycle)
    }

    /// A cycle of one rw edge a → b (with `crossing(a, b)`) and a path b → a along `base`
    /// edges, in the current subset.
    fn single_rw(
        &mut self,
        component: &[usize],
        base: u8,
        crossing: &impl Fn(usize, usize) -> bool,
    ) -> Option<Vec<Step>> {
        let graph = self.graph;
        let mut visits = SINGLE_VISITS_MAX;
        for &a in component {
            for (b, kinds) in graph.edges(a) {
                if kinds & RW == 0 || !self.is_member(b) || !crossing(a, b) {
                    continue;
                }
                if let Some(path) = self.path(b, a, base, &mut visits) {
                    let mut cycle = vec![Step { from: a, kind: RW }];
                    cycle.extend(path);
                    return Some(cycle);
                }
                if visits == 0 {
                    return None;
                }
            }
        }
        None
    }
}

/// `cycle` with each run of real-time steps merged into one: a → m → b in real time means a
/// completed before m began, which is before m completed, which is before b began; so a → b.
/// The frontier's edges make such runs common, and the shorter cycle reads better.
pub(super) fn collapse_realtime(mut cycle: Vec<Step>) -> Vec<Step> {
    // Real time alone has no cycle (a txn completes no earlier than it begins), so some step
    // is of another kind; starting there, no run wraps around the end.
    let Some(start) = cycle.iter().position(|s| s.kind != RT) else { return cycle };
    cycle.rotate_left(start);
    let mut merged: Vec<Step> = Vec::with_capacity(cycle.len());
    for step in cycle {
        if step.kind == RT && merged.last().is_some_and(|last| last.kind == RT) {
            continue;
        }
        merged.push(step);
    }
    merged
}

/// The next stamp for an array of stamps; at wrap-around, the array is cleared so that no stale
/// stamp matches.
fn next_stamp(stamp: u32, marks: &mut [u32]) -> u32 {
    match stamp.checked_add(1) {
        Some(next) => next,
        None => {
            marks.fill(0);
            1
        }
    }
}

// The tests below take this file past the ~500-line soft limit; the code above is ~400 lines,
// and the tests (with their naive references) stay beside it as the style asks.
#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, edges: &[(usize, usize, u8)]) -> Graph {
        Graph::new(n, edges.to_vec())
    }

    fn sorted(mut components: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
        for c in &mut components {
            c.sort_unstable();
        }
        components.sort();
        components
    }

    /// The naive reference: v and w share a component iff each reaches the other.
    fn must_naive_components(g: &Graph, allowed: u8) -> Vec<Vec<usize>> {
        let n = g.len();
        let reach: Vec<Vec<bool>> = (0..n)
            .map(|s| {
                let mut seen = vec![false; n];
                let mut todo = vec![s];
                while let Some(v) = todo.pop() {
                    for (w, k) in g.edges(v) {
                        if k & allowed != 0 && !seen[w] {
                            seen[w] = true;
                            todo.push(w);
                        }
                    }
                }
                seen
            })
            .collect();
        let mut done = vec![false; n];
        let mut out = Vec::new();
        for v in 0..n {
            if done[v] {
                continue;
            }
            let c: Vec<usize> =
                (0..n).filter(|&w| w == v || (reach[v][w] && reach[w][v])).collect();
            for &w in &c {
                done[w] = true;
            }
            if c.len() > 1 {
                out.push(c);
            }
        }
        out
    }

    /// The cycle, started at its smallest node.
    fn rotated(mut cycle: Vec<Step>) -> Vec<Step> {
        let first = (0..cycle.len()).min_by_key(|&i| cycle[i].from).unwrap_or(0);
        cycle.rotate_left(first);
        cycle
    }

    fn is_cycle(g: &Graph, cycle: &[Step]) -> bool {
        (0..cycle.len()).all(|i| {
            let next = cycle[(i + 1) % cycle.len()].from;
            g.edges(cycle[i].from).any(|(w, k)| w == next && k & cycle[i].kind != 0)
        })
    }

    #[test]
    fn edges_between_two_nodes_merge_their_kinds_and_self_loops_are_dropped() {
        let g = graph(3, &[(0, 1, WW), (0, 1, RW), (1, 1, WR), (2, 0, RT), (2, 9, WW)]);
        assert_eq!(g.edges(0).collect::<Vec<_>>(), [(1, WW | RW)]);
        assert_eq!(g.edges(1).count(), 0);
        assert_eq!(g.edges(2).collect::<Vec<_>>(), [(0, RT)]);
    }

    #[test]
    fn components_match_the_naive_reference_on_random_graphs() {
        use rand::{Rng, SeedableRng};
        for seed in 0..200 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let n = rng.random_range(1..12);
            let edges: Vec<_> = (0..rng.random_range(0..3 * n))
                .map(|_| {
                    (rng.random_range(0..n), rng.random_range(0..n), 1u8 << rng.random_range(0..4))
                })
                .collect();
            let g = Graph::new(n, edges);
            let mut search = Search::new(&g);
            let nodes: Vec<usize> = (0..n).collect();
            for allowed in [WW, WW | WR, WW | WR | RW | RT] {
                let got = sorted(search.components(&nodes, allowed));
                assert_eq!(
                    got,
                    must_naive_components(&g, allowed),
                    "seed {seed}, allowed {allowed}"
                );
                for c in &got {
                    let cycle = search.witness(c, RT, None).expect("a component holds a cycle");
                    assert!(is_cycle(&g, &cycle), "seed {seed}: {cycle:?}");
                }
            }
        }
    }

    #[test]
    fn a_cycle_of_a_hundred_thousand_nodes_does_not_overflow_the_stack() {
        let n = 100_000;
        let edges = (0..n).map(|v| (v, (v + 1) % n, WW)).collect();
        let g = Graph::new(n, edges);
        let mut search = Search::new(&g);
        let nodes: Vec<usize> = (0..n).collect();
        let components = search.components(&nodes, WW);
        assert_eq!(components.len(), 1);
        assert_eq!(components[0].len(), n);
        let cycle = search.witness(&components[0], 0, None).unwrap();
        assert_eq!(cycle.len(), n);
    }

    #[test]
    fn the_witness_is_the_weakest_cycle_in_the_component() {
        // 0 -rw-> 1 -rw-> 0 is G2, but 0 -ww-> 2 -wr-> 0 is G1c in the same component.
        let g = graph(3, &[(0, 1, RW), (1, 0, RW), (0, 2, WW), (2, 0, WR)]);
        let mut search = Search::new(&g);
        let all = search.components(&[0, 1, 2], WW | WR | RW);
        assert_eq!(all.len(), 1);
        let cycle = search.witness(&all[0], 0, None).unwrap();
        assert_eq!(rotated(cycle), [Step { from: 0, kind: WW }, Step { from: 2, kind: WR }]);
        // Without the G1c cycle, one with a single rw edge wins over the two-rw one.
        let g = graph(3, &[(0, 1, RW), (1, 0, RW), (1, 2, WR), (2, 1, RW), (2, 0, WW)]);
        let mut search = Search::new(&g);
        let cycle = search.witness(&[0, 1, 2], 0, None).unwrap();
        assert_eq!(cycle.iter().filter(|s| s.kind == RW).count(), 1, "{cycle:?}");
        assert!(is_cycle(&g, &cycle));
    }

    #[test]
    fn with_plain_components_the_cycle_must_cross_between_two_of_them() {
        // 0 <-ww-> 1 is a plain component; 2 -rt-> 0 and 1 -rw-> 2 close a second cycle.
        let g = graph(3, &[(0, 1, WW), (1, 0, WW), (2, 0, RT), (1, 2, RW)]);
        let mut search = Search::new(&g);
        let all = search.components(&[0, 1, 2], WW | WR | RW | RT);
        assert_eq!(all.len(), 1);
        let plain = [0, 0, 2];
        let cycle = rotated(search.witness(&all[0], RT, Some(&plain)).unwrap());
        assert_eq!(
            cycle,
            [Step { from: 0, kind: WW }, Step { from: 1, kind: RW }, Step { from: 2, kind: RT }]
        );
        // Inside one plain component there is nothing to cross.
        assert_eq!(search.witness(&[0, 1], RT, Some(&[0, 0, 2])), None);
    }

    #[test]
    fn runs_of_realtime_steps_collapse_into_one() {
        let step = |from, kind| Step { from, kind };
        let cycle =
            vec![step(0, RT), step(1, RT), step(2, RW), step(3, RT), step(4, RT), step(5, RT)];
        assert_eq!(collapse_realtime(cycle), [step(2, RW), step(3, RT)]);
        let cycle = vec![step(0, WW), step(1, RT)];
        assert_eq!(collapse_realtime(cycle.clone()), cycle);
    }

    #[test]
    fn an_edge_of_several_kinds_is_taken_as_the_weakest_allowed() {
        assert_eq!(taken_as(WW | RW, WW | WR | RW), Some(WW));
        assert_eq!(taken_as(RT | RW, WW | RW | RT), Some(RT));
        assert_eq!(taken_as(RW, WW | WR), None);
    }

    /// The naive reference: an rt path from a to b iff a completed before b was invoked.
    #[test]
    fn realtime_edges_reach_exactly_the_pairs_in_real_time_order() {
        use rand::{Rng, SeedableRng};
        for seed in 0..200 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let n = rng.random_range(1..15);
            let txns: Vec<(usize, u64, Option<u64>)> = (0..n)
                .map(|i| {
                    let invoke = rng.random_range(0..40);
                    let complete = rng.random_bool(0.8).then(|| invoke + rng.random_range(0..10));
                    (i, invoke, complete)
                })
                .collect();
            let g = Graph::new(n, realtime_edges(&txns));
            for a in 0..n {
                let mut seen = vec![false; n];
                let mut todo = vec![a];
                while let Some(v) = todo.pop() {
                    for (w, _) in g.edges(v) {
                        if !seen[w] {
                            seen[w] = true;
                            todo.push(w);
                        }
                    }
                }
                for b in 0..n {
                    let expected = txns[a].2.is_some_and(|c| c < txns[b].1);
                    assert_eq!(seen[b], expected, "seed {seed}: {a} -> {b} in {txns:?}");
                }
            }
        }
    }

    #[test]
    fn realtime_edges_stay_few_for_sequential_clients() {
        // 4 clients, each running 1000 txns back to back, overlapping the others.
        let txns: Vec<(usize, u64, Option<u64>)> = (0..4000)
            .map(|i| {
                let (client, round) = (i % 4, (i / 4) as u64);
                (i, 10 * round + client as u64, Some(10 * round + client as u64 + 9))
            })
            .collect();
        let edges = realtime_edges(&txns);
        assert!(edges.len() < 4 * 4000, "{} edges", edges.len());
    }
}
