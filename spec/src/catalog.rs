//! The models by name, with their bounds and broken variants, for the `blockdb-spec` binary.

use std::fmt;

use crate::checkpoint::{CheckpointConfig, CheckpointModel, ClientBug, LogBehaviour};
use crate::durability::{Durability, DurabilityBug, DurabilityConfig};
use crate::twopc::{TwoPc, TwoPcBug, TwoPcConfig};

/// The model names the binary knows.
pub const MODEL_NAMES: [&str; 4] = ["twopc", "checkpoint", "checkpoint-honest", "durability"];

/// Which bounds to build a model with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bounds {
    /// The bounds `cargo test` checks.
    Ci,
    /// Larger bounds, for the explorer.
    Explore,
}

/// A model of this crate, ready to check or explore.
#[derive(Debug)]
pub enum AnyModel {
    /// [`crate::twopc`].
    TwoPc(TwoPc),
    /// [`crate::checkpoint`].
    Checkpoint(CheckpointModel),
    /// [`crate::durability`].
    Durability(Durability),
}

/// A model name or bug name that is not known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What was asked for.
    pub asked: String,
    /// The names that are known.
    pub known: Vec<&'static str>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown name {:?}; known: {}", self.asked, self.known.join(", "))
    }
}

impl std::error::Error for UnknownName {}

const TWOPC_BUGS: [(&str, TwoPcBug); 2] = [
    ("decision-before-durable", TwoPcBug::DecisionBeforeDurable),
    ("last-decision-wins", TwoPcBug::LastDecisionWins),
];

const CLIENT_BUGS: [(&str, ClientBug); 4] = [
    ("skip-consistency-check", ClientBug::SkipConsistencyCheck),
    ("no-rollback-check", ClientBug::NoRollbackCheck),
    ("skip-signature-check", ClientBug::SkipSignatureCheck),
    ("trust-peer-without-proof", ClientBug::TrustPeerWithoutProof),
];

const DURABILITY_BUGS: [(&str, DurabilityBug); 4] = [
    ("applied-index-before-state", DurabilityBug::AppliedIndexBeforeState),
    ("replay-skips", DurabilityBug::ReplaySkips),
    ("ack-before-log-sync", DurabilityBug::AckBeforeLogSync),
    ("freeze-without-sync", DurabilityBug::FreezeWithoutSync),
];

fn lookup<T: Copy>(table: &[(&'static str, T)], name: &str) -> Result<T, UnknownName> {
    table.iter().find(|(n, _)| *n == name).map(|(_, b)| *b).ok_or_else(|| UnknownName {
        asked: name.to_owned(),
        known: table.iter().map(|(n, _)| *n).collect(),
    })
}

/// The names of the broken variants of model `model` (empty for an unknown model).
pub fn bug_names(model: &str) -> Vec<&'static str> {
    match model {
        "twopc" => TWOPC_BUGS.iter().map(|(n, _)| *n).collect(),
        "checkpoint" | "checkpoint-honest" => CLIENT_BUGS.iter().map(|(n, _)| *n).collect(),
        "durability" => DURABILITY_BUGS.iter().map(|(n, _)| *n).collect(),
        _ => Vec::new(),
    }
}

/// Builds model `name` with `bounds`, and the broken variant `bug` if given.
///
/// # Errors
/// [`UnknownName`] for a model or bug name that is not known.
pub fn build(name: &str, bounds: Bounds, bug: Option<&str>) -> Result<AnyModel, UnknownName> {
    let ci = bounds == Bounds::Ci;
    match name {
        "twopc" => {
            let mut c = if ci { TwoPcConfig::ci() } else { TwoPcConfig::explore() };
            c.bug = bug.map(|b| lookup(&TWOPC_BUGS, b)).transpose()?;
            Ok(AnyModel::TwoPc(TwoPc::new(c)))
        }
        "checkpoint" | "checkpoint-honest" => {
            let mut c =
                if ci { CheckpointConfig::ci_malicious() } else { CheckpointConfig::explore() };
            if name == "checkpoint-honest" {
                c.log = LogBehaviour::Honest;
            }
            c.bug = bug.map(|b| lookup(&CLIENT_BUGS, b)).transpose()?;
            Ok(AnyModel::Checkpoint(CheckpointModel::new(c)))
        }
        "durability" => {
            let mut c = if ci { DurabilityConfig::ci() } else { DurabilityConfig::explore() };
            c.bug = bug.map(|b| lookup(&DURABILITY_BUGS, b)).transpose()?;
            Ok(AnyModel::Durability(Durability::new(c)))
        }
        _ => Err(UnknownName { asked: name.to_owned(), known: MODEL_NAMES.to_vec() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_and_bug_name_builds() {
        for model in MODEL_NAMES {
            assert!(build(model, Bounds::Explore, None).is_ok(), "{model}");
            for bug in bug_names(model) {
                assert!(build(model, Bounds::Ci, Some(bug)).is_ok(), "{model} {bug}");
            }
        }
        assert!(build("paxos", Bounds::Ci, None).is_err());
        let e = build("twopc", Bounds::Ci, Some("replay-skips")).expect_err("not a 2PC bug");
        assert_eq!(e.known, bug_names("twopc"));
    }
}
