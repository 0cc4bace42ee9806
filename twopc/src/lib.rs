//! BlockDB's two-phase commit as pure transitions: no I/O, no clock, no async. Each function
//! takes the replicated state or an event and returns the new state or the [`Command`]s to carry
//! out (propose a Raft entry, send a message). The server's transaction code calls these
//! functions from its Raft state machines and network handlers, and the model in
//! `blockdb-spec` (`spec/src/twopc`) drives the same functions through every interleaving of
//! crashes, lost and reordered messages, so the model checks the code that runs.
//!
//! The functions are per transaction: in the server every entry and message also carries the
//! transaction id, by which it finds the record and the participant state to pass in.
//!
//! ```text
//!  coordinator shard (Raft)        coordinator            participant shards (Raft)
//!  ───────────────────────         ───────────            ─────────────────────────
//!  Begin{participants}  ◄───────── begin()
//!        applied ─────────────────► on_record_applied ──► Prepare{writes}
//!                                                          on_prepare ──► Prepare entry
//!                                   on_vote ◄──────────── Vote ◄──────── applied (on_entry_applied)
//!  Decide{decision}     ◄────────── (all yes: commit; a no or a timeout: abort)
//!        applied ─────────────────► on_record_applied ──► Decision ──► Decide entry ──► applied
//!
//!  recovery: a participant prepared for too long ──► Resolve ──► resolve(): the recorded
//!  decision, or Decide{Abort} if there is none; a restarted coordinator: recover()
//! ```
//!
//! Files: `coordinator.rs` (the transaction record, its Raft entries, the coordinator and
//! recovery) and `participant.rs` (a participant shard's state, its Raft entries, and its leader's
//! reactions).
//!
//! # Invariants these functions keep
//! - The transaction record's first decision is final: [`apply_record_entry`] ignores any later
//!   `Decide`. The coordinator and recovery may race to decide (one to commit, one to abort); the
//!   Raft log of the coordinator's shard orders their entries and the first one wins.
//! - The coordinator sends a decision only after the entry that records it has been applied in
//!   its shard ([`Coordinator::on_record_applied`]): a decision is durable before any participant
//!   can act on it.
//! - The coordinator decides to commit only when every participant voted yes, and a participant
//!   votes yes only once its `Prepare` entry (with the write set) is applied in its own shard.
//! - A participant applies `commit` only to a prepared state; [`apply_participant_entry`] refuses
//!   a decision that contradicts the state (a broken invariant, which stops the node).

mod coordinator;
mod participant;

use blockdb_verifier::ShardId;

pub use coordinator::{
    Coordinator, CoordinatorPhase, RecordEntry, TxnRecord, apply_record_entry, resolve,
};
pub use participant::{
    ContradictoryDecision, Participant, ParticipantEntry, ParticipantState, apply_participant_entry,
};

/// The outcome of a transaction.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Decision {
    /// Every participant applies its write set.
    Commit,
    /// No participant applies anything.
    Abort,
}

/// A participant's answer to `Prepare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Vote {
    /// The write set is replicated in the participant's shard and its locks are held.
    Yes,
    /// The participant cannot commit (a failed check, a lock it could not take).
    No,
}

/// One write of a transaction's write set.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Write {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

/// Who a message is for: the coordinator of the transaction, or a participant. Both are named
/// by their shard; the coordinator's shard may also be a participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The coordinator (the leader of the coordinator's shard).
    Coordinator(ShardId),
    /// A participant (the leader of its shard).
    Participant(ShardId),
}

/// A message between the coordinator and the participants.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Message {
    /// Coordinator to participant: replicate this write set and vote.
    Prepare {
        /// The participant's part of the write set.
        writes: Vec<Write>,
    },
    /// Participant to coordinator.
    Vote {
        /// The participant's shard.
        from: ShardId,
        /// Its vote.
        vote: Vote,
    },
    /// Coordinator to participant: the durable decision.
    Decision {
        /// The decision.
        decision: Decision,
    },
    /// Participant to the coordinator's shard: "I have been prepared for too long; what was
    /// decided?" Answered with the recorded decision, or by deciding to abort.
    Resolve {
        /// The participant's shard.
        from: ShardId,
    },
}

/// What the caller of these functions must do.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Command {
    /// Propose an entry to the coordinator's shard's Raft group.
    ProposeRecord(RecordEntry),
    /// Propose an entry to this participant's shard's Raft group.
    ProposeParticipant(ParticipantEntry),
    /// Send a message (it may be lost, delayed or reordered).
    Send {
        /// The recipient.
        to: Role,
        /// The message.
        message: Message,
    },
}
