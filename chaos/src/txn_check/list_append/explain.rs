//! A cycle in words: its class, from the kinds of its edges, and each edge's reason (the key
//! and versions of a ww, wr or rw edge; the times of an rt edge).

use super::super::graph::{RT, RW, Step, WR, WW};
use super::super::record::MicroOp;
use super::super::report::{Anomalies, AnomalyKind};
use super::Checker;

/// How many steps of a cycle its explanation spells out; the rest are counted.
const CYCLE_STEPS_EXPLAINED: usize = 12;

impl Checker<'_> {
    /// Notes `cycle` as the anomaly its edges make it: by the number of rw edges, whether any is
    /// wr, and whether any is rt.
    pub(super) fn note_cycle(&self, cycle: &[Step], out: &mut Anomalies) {
        let rw = cycle.iter().filter(|s| s.kind == RW).count();
        let wr = cycle.iter().any(|s| s.kind == WR);
        let rt = cycle.iter().any(|s| s.kind == RT);
        let kind = match (rw, wr, rt) {
            (0, false, false) => AnomalyKind::G0,
            (0, true, false) => AnomalyKind::G1c,
            (1, _, false) => AnomalyKind::GSingle,
            (_, _, false) => AnomalyKind::G2,
            (0, false, true) => AnomalyKind::G0Realtime,
            (0, true, true) => AnomalyKind::G1cRealtime,
            (1, _, true) => AnomalyKind::GSingleRealtime,
            (_, _, true) => AnomalyKind::G2Realtime,
        };
        let txns: Vec<usize> = cycle.iter().map(|s| s.from).collect();
        out.note(kind, txns.clone(), || {
            let mut names: Vec<String> =
                txns.iter().take(CYCLE_STEPS_EXPLAINED).map(|t| format!("T{t}")).collect();
            if txns.len() > CYCLE_STEPS_EXPLAINED {
                names.push("…".to_owned());
            }
            names.extend(txns.first().map(|t| format!("T{t}")));
            let mut steps: Vec<String> = (0..cycle.len())
                .take(CYCLE_STEPS_EXPLAINED)
                .map(|k| {
                    let (a, b) = (cycle[k].from, cycle[(k + 1) % cycle.len()].from);
                    self.explain_step(a, b, cycle[k].kind)
                })
                .collect();
            if cycle.len() > CYCLE_STEPS_EXPLAINED {
                steps.push(format!("… {} more steps", cycle.len() - CYCLE_STEPS_EXPLAINED));
            }
            format!("cycle {}: {}", names.join(" → "), steps.join("; "))
        });
    }

    /// Why the graph has an edge of `kind` from `a` to `b`, in words.
    fn explain_step(&self, a: usize, b: usize, kind: u8) -> String {
        let (ops_a, ops_b) = (&self.history[a].ops, &self.history[b].ops);
        let why = match kind {
            WW => ops_a.iter().find_map(|op| {
                let MicroOp::Append { key, element, .. } = op else { return None };
                let &v = self.final_versions.get(&(key.as_str(), *element))?;
                let next = v.checked_add(1)?;
                (self.writer(key, next) == Some(b)).then(|| {
                    format!("T{a} appended version {v} of {key:?} ({element}), T{b} version {next}")
                })
            }),
            WR => ops_b.iter().find_map(|op| {
                let MicroOp::Read { key, version: Some(v), element: Some(e) } = op else {
                    return None;
                };
                let fits = self.at(key, *v) == Some(*e) && self.writer(key, *v) == Some(a);
                fits.then(|| format!("T{b} read version {v} of {key:?} ({e}), which T{a} appended"))
            }),
            RW => ops_a.iter().find_map(|op| {
                let MicroOp::Read { key, version: Some(v), .. } = op else { return None };
                let next = v.checked_add(1)?;
                (self.writer(key, next) == Some(b)).then(|| {
                    format!("T{a} read version {v} of {key:?}, and T{b} appended version {next}")
                })
            }),
            RT => {
                let (done, invoked) = (self.history[a].complete_ms, self.history[b].invoke_ms);
                done.map(|c| {
                    format!("T{a} completed at {c} ms, before T{b} was invoked at {invoked} ms")
                })
            }
            _ => None,
        };
        let name = match kind {
            WW => "ww",
            WR => "wr",
            RW => "rw",
            _ => "rt",
        };
        format!("T{a} -{name}-> T{b}: {}", why.unwrap_or_else(|| "(no step found)".to_owned()))
    }
}
