//! What the list-append checker reports: each [`Anomaly`] with its kind, the txns involved and an
//! explanation, collected into a [`ListAppendReport`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::EXAMPLES_MAX;

/// The kinds of anomaly; the [parent module](super) says what each means. Serialized, and named
/// in counts, by [`AnomalyKind::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AnomalyKind {
    /// `internal`: an ok txn disagrees with itself.
    #[serde(rename = "internal")]
    Internal,
    /// `malformed-read`: an ok txn's read result that breaks the history's conventions.
    #[serde(rename = "malformed-read")]
    MalformedRead,
    /// `incompatible-read`: a read that the final state does not hold.
    #[serde(rename = "incompatible-read")]
    IncompatibleRead,
    /// `lost-append`: a committed append missing from the final state.
    #[serde(rename = "lost-append")]
    LostAppend,
    /// `wrong-version`: an ok append's reported version holds another element.
    #[serde(rename = "wrong-version")]
    WrongVersion,
    /// `duplicate-element`: an element appended, or present, twice in one key.
    #[serde(rename = "duplicate-element")]
    DuplicateElement,
    /// `phantom-element`: an element in the final state that no txn appended.
    #[serde(rename = "phantom-element")]
    PhantomElement,
    /// `aborted-write-visible`: a failed txn's append in the final state.
    #[serde(rename = "aborted-write-visible")]
    AbortedWriteVisible,
    /// `G1a`: an ok txn read a failed txn's append.
    #[serde(rename = "G1a")]
    G1a,
    /// `G1b`: an ok txn read a version another txn overwrote within itself.
    #[serde(rename = "G1b")]
    G1b,
    /// `G0`: a cycle of ww edges.
    #[serde(rename = "G0")]
    G0,
    /// `G1c`: a cycle of ww and wr edges, at least one wr.
    #[serde(rename = "G1c")]
    G1c,
    /// `G-single`: a cycle with exactly one rw edge.
    #[serde(rename = "G-single")]
    GSingle,
    /// `G2`: a cycle with two or more rw edges.
    #[serde(rename = "G2")]
    G2,
    /// `G0-realtime`: [`AnomalyKind::G0`], with real-time edges.
    #[serde(rename = "G0-realtime")]
    G0Realtime,
    /// `G1c-realtime`: [`AnomalyKind::G1c`], with real-time edges.
    #[serde(rename = "G1c-realtime")]
    G1cRealtime,
    /// `G-single-realtime`: [`AnomalyKind::GSingle`], with real-time edges.
    #[serde(rename = "G-single-realtime")]
    GSingleRealtime,
    /// `G2-realtime`: [`AnomalyKind::G2`], with real-time edges.
    #[serde(rename = "G2-realtime")]
    G2Realtime,
}

impl AnomalyKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [AnomalyKind; 18] = [
        AnomalyKind::Internal,
        AnomalyKind::MalformedRead,
        AnomalyKind::IncompatibleRead,
        AnomalyKind::LostAppend,
        AnomalyKind::WrongVersion,
        AnomalyKind::DuplicateElement,
        AnomalyKind::PhantomElement,
        AnomalyKind::AbortedWriteVisible,
        AnomalyKind::G1a,
        AnomalyKind::G1b,
        AnomalyKind::G0,
        AnomalyKind::G1c,
        AnomalyKind::GSingle,
        AnomalyKind::G2,
        AnomalyKind::G0Realtime,
        AnomalyKind::G1cRealtime,
        AnomalyKind::GSingleRealtime,
        AnomalyKind::G2Realtime,
    ];

    /// The kind's name, as serialized: `lost-append`, `G-single-realtime`, ….
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Internal => "internal",
            AnomalyKind::MalformedRead => "malformed-read",
            AnomalyKind::IncompatibleRead => "incompatible-read",
            AnomalyKind::LostAppend => "lost-append",
            AnomalyKind::WrongVersion => "wrong-version",
            AnomalyKind::DuplicateElement => "duplicate-element",
            AnomalyKind::PhantomElement => "phantom-element",
            AnomalyKind::AbortedWriteVisible => "aborted-write-visible",
            AnomalyKind::G1a => "G1a",
            AnomalyKind::G1b => "G1b",
            AnomalyKind::G0 => "G0",
            AnomalyKind::G1c => "G1c",
            AnomalyKind::GSingle => "G-single",
            AnomalyKind::G2 => "G2",
            AnomalyKind::G0Realtime => "G0-realtime",
            AnomalyKind::G1cRealtime => "G1c-realtime",
            AnomalyKind::GSingleRealtime => "G-single-realtime",
            AnomalyKind::G2Realtime => "G2-realtime",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One anomaly found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Its kind.
    pub kind: AnomalyKind,
    /// The txns involved, by their index in the history; for a cycle, in the cycle's order.
    pub txns: Vec<usize>,
    /// What happened, in words, naming txns `T<index>`.
    pub explanation: String,
}

/// The verdict on a list-append history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListAppendReport {
    /// True when no anomaly was found.
    pub valid: bool,
    /// Txns in the history.
    pub txns: usize,
    /// Txns that ended ok.
    pub ok: usize,
    /// Txns that ended fail.
    pub fail: usize,
    /// Txns that ended info or never completed.
    pub info: usize,
    /// How many anomalies of each kind (by [`AnomalyKind::name`]); kinds not found are absent.
    pub counts: BTreeMap<String, usize>,
    /// The first [`EXAMPLES_MAX`] anomalies of each kind, in [`AnomalyKind::ALL`]'s order, and
    /// within a kind in the order found.
    pub anomalies: Vec<Anomaly>,
}

impl ListAppendReport {
    /// One line: the verdict, the txn counts and the anomaly counts.
    pub fn summary(&self) -> String {
        let verdict = if self.valid { "valid" } else { "INVALID" };
        let txns =
            format!("{} txns ({} ok, {} fail, {} info)", self.txns, self.ok, self.fail, self.info);
        if self.counts.is_empty() {
            return format!("{verdict}: {txns}, no anomalies");
        }
        let counts: Vec<String> = AnomalyKind::ALL
            .iter()
            .filter_map(|k| self.counts.get(k.name()).map(|n| format!("{k} {n}")))
            .collect();
        format!("{verdict}: {txns}; anomalies: {}", counts.join(", "))
    }

    /// The anomalies kept of one kind.
    pub fn of_kind(&self, kind: AnomalyKind) -> impl Iterator<Item = &Anomaly> {
        self.anomalies.iter().filter(move |a| a.kind == kind)
    }
}

/// Collects anomalies, counting all and keeping the first [`EXAMPLES_MAX`] of each kind.
#[derive(Debug, Default)]
pub(super) struct Anomalies {
    kept: Vec<Anomaly>,
    counts: BTreeMap<AnomalyKind, usize>,
}

impl Anomalies {
    /// Notes an anomaly; `explanation` runs only for the ones kept, so that a history with a
    /// million of them does not format a million strings.
    pub(super) fn note(
        &mut self,
        kind: AnomalyKind,
        txns: Vec<usize>,
        explanation: impl FnOnce() -> String,
    ) {
        let count = self.counts.entry(kind).or_insert(0);
        *count += 1;
        if *count <= EXAMPLES_MAX {
            self.kept.push(Anomaly { kind, txns, explanation: explanation() });
        }
    }

    /// The report's `counts` and `anomalies`.
    pub(super) fn into_parts(mut self) -> (BTreeMap<String, usize>, Vec<Anomaly>) {
        // A stable sort: within a kind, the order found.
        self.kept.sort_by_key(|a| a.kind);
        let counts = self.counts.into_iter().map(|(k, n)| (k.name().to_owned(), n)).collect();
        (counts, self.kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_serialized_names() {
        for kind in AnomalyKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            assert_eq!(serde_json::from_str::<AnomalyKind>(&json).unwrap(), kind);
        }
        let mut sorted = AnomalyKind::ALL;
        sorted.sort();
        assert_eq!(sorted, AnomalyKind::ALL, "ALL is in the enum's order");
    }

    #[test]
    fn examples_are_capped_per_kind_and_counts_are_not() {
        let mut anomalies = Anomalies::default();
        for i in 0..EXAMPLES_MAX + 5 {
            anomalies.note(AnomalyKind::G2, vec![i], || format!("g2 {i}"));
            anomalies.note(AnomalyKind::G0, vec![i], || format!("g0 {i}"));
        }
        anomalies.note(AnomalyKind::G2, vec![], || panic!("not formatted past the cap"));
        let (counts, kept) = anomalies.into_parts();
        assert_eq!(counts["G0"], EXAMPLES_MAX + 5);
        assert_eq!(counts["G2"], EXAMPLES_MAX + 6);
        assert_eq!(kept.len(), 2 * EXAMPLES_MAX);
        assert_eq!(kept[0].explanation, "g0 0", "sorted by kind, G0 first");
        assert_eq!(kept[EXAMPLES_MAX].explanation, "g2 0", "in the order found within a kind");
    }

    #[test]
    fn the_summary_names_the_verdict_and_the_counts() {
        let mut report = ListAppendReport {
            valid: true,
            txns: 3,
            ok: 1,
            fail: 1,
            info: 1,
            ..Default::default()
        };
        assert_eq!(report.summary(), "valid: 3 txns (1 ok, 1 fail, 1 info), no anomalies");
        report.valid = false;
        report.counts.insert("lost-append".into(), 2);
        report.counts.insert("G0".into(), 1);
        assert_eq!(
            report.summary(),
            "INVALID: 3 txns (1 ok, 1 fail, 1 info); anomalies: lost-append 2, G0 1"
        );
    }
}
