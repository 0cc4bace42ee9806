//! Nemeses: the faults a run injects, and the shapes of network partitions.
//!
//! A partition is a *grudge*: for each node, the nodes it can no longer exchange messages with.
//! The shapes are Jepsen's:
//!
//! | shape             | who cannot talk                                                        |
//! |-------------------|------------------------------------------------------------------------|
//! | `isolate`         | one node (a given one, or the current leader) from every other        |
//! | `halves`          | a random minority from the majority                                    |
//! | `bridge`          | two halves, except one node in the middle that still talks to both    |
//! | `majorities-ring` | each node talks only to its neighbours on a ring: every node sees a majority, no two the same one |
//!
//! A grudge is applied to a [`Network`] as cut directed links, both ways. The proxy network of
//! [`crate::proxy`] is one `Network`; a kernel backend (namespaces and nftables) would be another.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom as _;

use crate::proxy::{Links, NodeId};

/// The faults a network can be given.
pub trait Network {
    /// Stops all traffic from `from` to `to`.
    fn cut(&self, from: NodeId, to: NodeId);
    /// Delays traffic from `from` to `to`.
    fn delay(&self, from: NodeId, to: NodeId, by: Duration);
    /// Holds traffic from `from` to `to` without closing connections.
    fn stall(&self, from: NodeId, to: NodeId);
    /// Restores every link.
    fn heal(&self);
}

impl Network for Links {
    fn cut(&self, from: NodeId, to: NodeId) {
        self.update(from, to, |l| l.cut = true);
    }

    fn delay(&self, from: NodeId, to: NodeId, by: Duration) {
        self.update(from, to, |l| l.delay = by);
    }

    fn stall(&self, from: NodeId, to: NodeId) {
        self.update(from, to, |l| l.stalled = true);
    }

    fn heal(&self) {
        self.heal_all();
    }
}

/// For each node, the nodes it cannot talk to.
pub type Grudge = BTreeMap<NodeId, BTreeSet<NodeId>>;

/// A partition's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One node cut off from all others.
    Isolate(NodeId),
    /// A random minority cut off from the majority.
    Halves,
    /// Two halves joined by one node.
    Bridge,
    /// Each node talks to its ring neighbours only.
    MajoritiesRing,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Isolate(n) => write!(f, "isolate node {n}"),
            Shape::Halves => f.write_str("halves"),
            Shape::Bridge => f.write_str("bridge"),
            Shape::MajoritiesRing => f.write_str("majorities-ring"),
        }
    }
}

/// Makes the components of a partition into a grudge: nodes in different components cannot
/// talk.
fn components(nodes: &[NodeId], parts: &[Vec<NodeId>]) -> Grudge {
    let mut g = Grudge::new();
    for &a in nodes {
        let mine = parts.iter().find(|p| p.contains(&a));
        let others =
            nodes.iter().copied().filter(|b| *b != a && mine.is_none_or(|p| !p.contains(b)));
        g.insert(a, others.collect());
    }
    g
}

/// The grudge of `shape` over `nodes`, drawing from `rng` where the shape is random.
pub fn grudge(shape: Shape, nodes: &[NodeId], rng: &mut impl Rng) -> Grudge {
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    match shape {
        Shape::Isolate(n) => {
            let rest: Vec<NodeId> = nodes.iter().copied().filter(|x| *x != n).collect();
            components(nodes, &[vec![n], rest])
        }
        Shape::Halves => {
            let minority = shuffled.len() / 2;
            let (a, b) = shuffled.split_at(minority);
            components(nodes, &[a.to_vec(), b.to_vec()])
        }
        Shape::Bridge => {
            // Halves of the others, and the middle node talking to everyone.
            let (middle, others) =
                shuffled.split_first().map_or((None, &[][..]), |(m, o)| (Some(*m), o));
            let (a, b) = others.split_at(others.len() / 2);
            let mut g = components(others, &[a.to_vec(), b.to_vec()]);
            if let Some(m) = middle {
                g.insert(m, BTreeSet::new());
            }
            g
        }
        Shape::MajoritiesRing => {
            // Nodes on a ring talk to the `side` nearest neighbours on each side: with itself,
            // at least a majority (for 5 nodes: 1 + 2 of 5), each node a different one.
            let n = shuffled.len();
            let side = (n / 2).div_ceil(2);
            let mut g = Grudge::new();
            for (i, &a) in shuffled.iter().enumerate() {
                let mut cannot = BTreeSet::new();
                for (j, &b) in shuffled.iter().enumerate() {
                    let d = (i + n - j) % n;
                    let dist = d.min(n - d);
                    if i != j && dist > side {
                        cannot.insert(b);
                    }
                }
                g.insert(a, cannot);
            }
            g
        }
    }
}

/// Applies `grudge` to `net`: every link between a node and one it holds a grudge against is cut,
/// both ways.
pub fn apply(net: &impl Network, grudge: &Grudge) {
    for (&a, cannot) in grudge {
        for &b in cannot {
            net.cut(a, b);
            net.cut(b, a);
        }
    }
}

/// The nodes each node can reach (itself included).
pub fn reachable(nodes: &[NodeId], grudge: &Grudge) -> BTreeMap<NodeId, BTreeSet<NodeId>> {
    nodes
        .iter()
        .map(|&a| {
            let cannot = grudge.get(&a).cloned().unwrap_or_default();
            let can = nodes
                .iter()
                .copied()
                .filter(|b| !cannot.contains(b) && !grudge.get(b).is_some_and(|g| g.contains(&a)))
                .collect();
            (a, can)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    const FIVE: [NodeId; 5] = [1, 2, 3, 4, 5];

    fn majority(n: usize) -> usize {
        n / 2 + 1
    }

    #[test]
    fn isolate_cuts_one_node_from_all_others() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let g = grudge(Shape::Isolate(3), &FIVE, &mut rng);
        let r = reachable(&FIVE, &g);
        assert_eq!(r[&3], BTreeSet::from([3]));
        assert_eq!(r[&1], BTreeSet::from([1, 2, 4, 5]));
    }

    #[test]
    fn halves_leave_exactly_one_majority() {
        for seed in 0..20 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let r = reachable(&FIVE, &grudge(Shape::Halves, &FIVE, &mut rng));
            let majorities: BTreeSet<&BTreeSet<NodeId>> =
                r.values().filter(|s| s.len() >= majority(5)).collect();
            assert_eq!(majorities.len(), 1, "seed {seed}: {r:?}");
            assert!(r.values().any(|s| s.len() < majority(5)));
        }
    }

    #[test]
    fn a_bridge_node_sees_everyone_and_the_halves_do_not_see_each_other() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let r = reachable(&FIVE, &grudge(Shape::Bridge, &FIVE, &mut rng));
        let bridges: Vec<_> = r.iter().filter(|(_, s)| s.len() == 5).collect();
        assert_eq!(bridges.len(), 1, "{r:?}");
        assert_eq!(r.values().filter(|s| s.len() == 3).count(), 4, "{r:?}");
    }

    #[test]
    fn on_a_majorities_ring_everyone_sees_a_majority_but_no_two_the_same() {
        for seed in 0..10 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let r = reachable(&FIVE, &grudge(Shape::MajoritiesRing, &FIVE, &mut rng));
            assert!(r.values().all(|s| s.len() == majority(5)), "{r:?}");
            let distinct: BTreeSet<_> = r.values().collect();
            assert_eq!(distinct.len(), 5, "{r:?}");
        }
    }

    #[test]
    fn applying_a_grudge_cuts_both_directions() {
        let links = Links::new();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        apply(&links, &grudge(Shape::Isolate(2), &[1, 2, 3], &mut rng));
        assert!(links.get(1, 2).cut && links.get(2, 1).cut && links.get(2, 3).cut);
        assert!(!links.get(1, 3).cut && !links.get(3, 1).cut);
        links.heal();
        assert!(!links.get(1, 2).cut);
    }
}
