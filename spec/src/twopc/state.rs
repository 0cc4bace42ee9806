//! The state and actions of the 2PC model: what each actor holds, the network, and the history
//! the properties read.

use std::collections::BTreeSet;

use blockdb_verifier::ShardId;

use super::protocol::{
    Coordinator, Decision, Message, ParticipantEntry, ParticipantState, RecordEntry, Role,
    TxnRecord,
};

/// Who proposed an entry of shard 0: the coordinator on its normal path, or a recovery path (a
/// `Resolve`, or a restarted coordinator's timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proposer {
    /// The coordinator, before any crash of its own.
    Coordinator,
    /// Recovery.
    Recovery,
}

/// A participant shard.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ParticipantNode {
    /// Replicated.
    pub state: ParticipantState,
    /// Proposed, not yet applied; lost when the leader crashes.
    pub proposals: Vec<ParticipantEntry>,
}

/// A message on its way.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Envelope {
    /// The recipient.
    pub to: Role,
    /// The message.
    pub message: Message,
}

/// What the properties look at but no actor sees: the history of the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// Every decision any place ever held (the record is `Role::Coordinator`).
    pub held: BTreeSet<(Role, Decision)>,
    /// A participant was asked to apply a decision its state could not take.
    pub contradiction: bool,
    /// The record's decision was proposed by recovery.
    pub decided_by_recovery: bool,
    /// The coordinator's commit was applied to a record that recovery had already aborted.
    pub recovery_beat_commit: bool,
    /// The coordinator's shard leader crashed at least once.
    pub coordinator_crashed: bool,
}

/// A state of the 2PC model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TwoPcState {
    /// The transaction record in shard 0 (replicated).
    pub record: Option<TxnRecord>,
    /// The coordinator (volatile).
    pub coordinator: Coordinator,
    /// Entries proposed to shard 0, oldest first (volatile).
    pub record_proposals: Vec<(RecordEntry, Proposer)>,
    /// The participant shards, in shard order.
    pub participants: Vec<ParticipantNode>,
    /// Messages on their way.
    pub network: BTreeSet<Envelope>,
    /// Crashes so far.
    pub crashes: u8,
    /// Lost messages so far.
    pub losses: u8,
    /// History for the properties.
    pub ghost: Ghost,
}

impl TwoPcState {
    /// Whether the record is decided and every participant applied the decision (for an abort,
    /// a participant that never prepared may also have heard nothing), or the transaction never
    /// began (its `Begin` was lost with a crash, and nobody prepared).
    pub fn decided_everywhere(&self) -> bool {
        match self.record.as_ref().map(TxnRecord::decision) {
            None => self
                .participants
                .iter()
                .all(|p| matches!(p.state, ParticipantState::Idle | ParticipantState::Aborted)),
            Some(None) => false,
            Some(Some(d)) => self.participants.iter().all(|p| {
                p.state.decision() == Some(d)
                    || (d == Decision::Abort && p.state == ParticipantState::Idle)
            }),
        }
    }
}

/// An action of the 2PC model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TwoPcAction {
    /// Shard 0 applies its oldest proposal.
    ApplyRecord,
    /// This participant's shard applies its oldest proposal.
    ApplyParticipant(ShardId),
    /// This message arrives.
    Deliver(Envelope),
    /// This `Prepare` arrives at a participant that cannot take it.
    Refuse(Envelope),
    /// This message is lost.
    Lose(Envelope),
    /// The coordinator times out.
    CoordinatorTimeout,
    /// This participant times out while prepared.
    ParticipantTimeout(ShardId),
    /// Shard 0's leader crashes.
    CrashCoordinator,
    /// This participant's leader crashes.
    CrashParticipant(ShardId),
}
