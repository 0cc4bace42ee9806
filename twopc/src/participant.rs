//! The participant's side: a participant shard's replicated state for a transaction, its Raft
//! entries, and how its leader reacts. See the crate documentation.

use std::fmt;

use blockdb_verifier::ShardId;

use super::{Command, Decision, Message, Role, Vote, Write};

/// A participant shard's replicated state for one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ParticipantState {
    /// Nothing replicated yet.
    #[default]
    Idle,
    /// The write set is replicated and its locks are held; the participant voted yes and must
    /// now wait for the decision.
    Prepared {
        /// The write set.
        writes: Vec<Write>,
    },
    /// The write set is applied.
    Committed {
        /// The write set that was applied.
        writes: Vec<Write>,
    },
    /// Nothing is applied, and nothing ever will be.
    Aborted,
}

impl ParticipantState {
    /// The decision this state has applied, if any.
    pub fn decision(&self) -> Option<Decision> {
        match self {
            ParticipantState::Committed { .. } => Some(Decision::Commit),
            ParticipantState::Aborted => Some(Decision::Abort),
            ParticipantState::Idle | ParticipantState::Prepared { .. } => None,
        }
    }
}

/// A Raft entry of a participant's shard about one transaction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ParticipantEntry {
    /// Replicate the write set and hold its locks.
    Prepare {
        /// The write set of this shard.
        writes: Vec<Write>,
    },
    /// Apply the decision.
    Decide {
        /// The decision.
        decision: Decision,
    },
}

/// A participant was asked to apply a decision that its state cannot take: a broken protocol
/// invariant, never the result of lost or reordered messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContradictoryDecision {
    /// The state before the entry.
    pub state: ParticipantState,
    /// The decision asked for.
    pub decision: Decision,
}

impl fmt::Display for ContradictoryDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "decision {:?} cannot be applied to participant state {:?}",
            self.decision, self.state
        )
    }
}

impl std::error::Error for ContradictoryDecision {}

/// Applies a Raft entry of a participant's shard to its state for the transaction.
///
/// - `Prepare` on `Idle` prepares; on any other state it changes nothing (a prepare that comes
///   after an abort leaves the transaction aborted, and the participant votes no).
/// - `Decide{Commit}` needs `Prepared` (or is a repeat on `Committed`); `Decide{Abort}` is taken
///   by `Idle` and `Prepared` (or is a repeat on `Aborted`).
///
/// # Errors
/// [`ContradictoryDecision`] for a commit of an unprepared or aborted state, or an abort of a
/// committed one.
pub fn apply_participant_entry(
    state: &ParticipantState,
    entry: &ParticipantEntry,
) -> Result<ParticipantState, ContradictoryDecision> {
    use ParticipantState as S;
    match (state, entry) {
        (S::Idle, ParticipantEntry::Prepare { writes }) => {
            Ok(S::Prepared { writes: writes.clone() })
        }
        (s, ParticipantEntry::Prepare { .. }) => Ok(s.clone()),
        (S::Prepared { writes }, ParticipantEntry::Decide { decision: Decision::Commit }) => {
            Ok(S::Committed { writes: writes.clone() })
        }
        (S::Idle | S::Prepared { .. }, ParticipantEntry::Decide { decision: Decision::Abort }) => {
            Ok(S::Aborted)
        }
        (s @ S::Committed { .. }, ParticipantEntry::Decide { decision: Decision::Commit })
        | (s @ S::Aborted, ParticipantEntry::Decide { decision: Decision::Abort }) => Ok(s.clone()),
        (s, ParticipantEntry::Decide { decision }) => {
            Err(ContradictoryDecision { state: s.clone(), decision: *decision })
        }
    }
}

/// A participant: the leader of a shard that holds part of the transaction's write set. Its
/// replicated state is a [`ParticipantState`]; it keeps nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Participant {
    /// The participant's shard.
    pub shard: ShardId,
    /// The coordinator's shard.
    pub coordinator: ShardId,
}

impl Participant {
    fn vote(&self, vote: Vote) -> Command {
        Command::Send {
            to: Role::Coordinator(self.coordinator),
            message: Message::Vote { from: self.shard, vote },
        }
    }

    /// Reacts to `Prepare`. `acceptable` says whether this shard can take the write set (its
    /// checks pass and its locks are free). An idle participant that can take it proposes the
    /// `Prepare` entry and votes only once that is applied; one that cannot votes no at once
    /// (it holds nothing, so it needs no record). A prepare that comes again is answered again.
    pub fn on_prepare(
        &self,
        state: &ParticipantState,
        writes: &[Write],
        acceptable: bool,
    ) -> Vec<Command> {
        match state {
            ParticipantState::Idle if acceptable => {
                vec![Command::ProposeParticipant(ParticipantEntry::Prepare {
                    writes: writes.to_vec(),
                })]
            }
            ParticipantState::Idle | ParticipantState::Aborted => vec![self.vote(Vote::No)],
            ParticipantState::Prepared { .. } | ParticipantState::Committed { .. } => {
                vec![self.vote(Vote::Yes)]
            }
        }
    }

    /// Reacts to one of its entries applied in its shard; `state` is the state after it.
    pub fn on_entry_applied(
        &self,
        entry: &ParticipantEntry,
        state: &ParticipantState,
    ) -> Vec<Command> {
        match (entry, state) {
            (ParticipantEntry::Prepare { .. }, ParticipantState::Prepared { .. }) => {
                vec![self.vote(Vote::Yes)]
            }
            (ParticipantEntry::Prepare { .. }, ParticipantState::Aborted) => {
                vec![self.vote(Vote::No)]
            }
            _ => Vec::new(),
        }
    }

    /// Reacts to a decision: proposes to apply it, unless the state has one already.
    pub fn on_decision(&self, state: &ParticipantState, decision: Decision) -> Vec<Command> {
        if state.decision().is_some() {
            return Vec::new();
        }
        vec![Command::ProposeParticipant(ParticipantEntry::Decide { decision })]
    }

    /// The participant has been prepared for longer than the timeout: asks the coordinator's
    /// shard to resolve the transaction. In any other state there is nothing to wait for.
    pub fn on_timeout(&self, state: &ParticipantState) -> Vec<Command> {
        match state {
            ParticipantState::Prepared { .. } => vec![Command::Send {
                to: Role::Coordinator(self.coordinator),
                message: Message::Resolve { from: self.shard },
            }],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: ShardId = ShardId(0);
    const P1: ShardId = ShardId(1);

    fn w(k: u8) -> Vec<Write> {
        vec![Write { key: vec![k], value: vec![k] }]
    }

    #[test]
    fn participant_entries_are_idempotent_and_refuse_contradictions() {
        use ParticipantState as S;
        let prepare = ParticipantEntry::Prepare { writes: w(1) };
        let prepared = apply_participant_entry(&S::Idle, &prepare).expect("idle prepares");
        assert_eq!(apply_participant_entry(&prepared, &prepare), Ok(prepared.clone()));
        let commit = ParticipantEntry::Decide { decision: Decision::Commit };
        let abort = ParticipantEntry::Decide { decision: Decision::Abort };
        let committed = apply_participant_entry(&prepared, &commit).expect("prepared commits");
        assert_eq!(committed, S::Committed { writes: w(1) });
        assert_eq!(apply_participant_entry(&committed, &commit), Ok(committed.clone()));
        assert!(apply_participant_entry(&committed, &abort).is_err());
        assert!(apply_participant_entry(&S::Idle, &commit).is_err());
        assert!(apply_participant_entry(&S::Aborted, &commit).is_err());
        // A prepare after an abort leaves it aborted.
        assert_eq!(apply_participant_entry(&S::Aborted, &prepare), Ok(S::Aborted));
    }

    #[test]
    fn a_participant_votes_yes_only_once_prepared() {
        let p = Participant { shard: P1, coordinator: C };
        let idle = ParticipantState::Idle;
        let prepare = ParticipantEntry::Prepare { writes: w(1) };
        assert_eq!(
            p.on_prepare(&idle, &w(1), true),
            vec![Command::ProposeParticipant(prepare.clone())]
        );
        let no = Command::Send {
            to: Role::Coordinator(C),
            message: Message::Vote { from: P1, vote: Vote::No },
        };
        assert_eq!(p.on_prepare(&idle, &w(1), false), vec![no]);
        let prepared = ParticipantState::Prepared { writes: w(1) };
        let yes = Command::Send {
            to: Role::Coordinator(C),
            message: Message::Vote { from: P1, vote: Vote::Yes },
        };
        assert_eq!(p.on_entry_applied(&prepare, &prepared), vec![yes]);
        let resolve =
            Command::Send { to: Role::Coordinator(C), message: Message::Resolve { from: P1 } };
        assert_eq!(p.on_timeout(&prepared), vec![resolve]);
        assert!(p.on_timeout(&ParticipantState::Aborted).is_empty());
        assert!(p.on_decision(&ParticipantState::Aborted, Decision::Abort).is_empty());
    }
}
