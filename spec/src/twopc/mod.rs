//! Model of two-phase commit across shards, with crashes, lost and reordered messages, and
//! recovery (DESIGN.md, "Transactions").
//!
//! # Actors and state
//!
//! One transaction; its record lives in the coordinator's shard (shard 0) and its writes in
//! `participants` other shards (1, 2, …). Each shard is a Raft group, so the model splits each
//! actor's state in two:
//!
//! - **replicated** (survives every crash): the transaction record in shard 0
//!   ([`TxnRecord`]), and each participant's [`ParticipantState`];
//! - **volatile** (lost when the shard's leader crashes): the [`Coordinator`]'s phase with the
//!   write sets and votes, and each shard's *proposals*, Raft entries proposed but not yet
//!   applied.
//!
//! Messages travel in an unordered network (a set): any message in it may be delivered next,
//! which is reordering, and a [`TwoPcAction::Lose`] takes one out unread, up to a budget.
//! Delivery to a shard whose leader crashed goes to the next leader, so a crash is modelled as
//! the leader's replacement at once: volatile state lost, the new leader rebuilt from the
//! replicated state ([`Coordinator::recover`]). A long outage adds nothing that the interleavings
//! do not already cover (the new leader may simply be slow to act). A crash loses the shard's
//! proposals; a proposal that in fact survives (it reached a majority) is applied before anything
//! the next leader proposes, which is the same as being applied just before the crash, an
//! interleaving the model has.
//!
//! # Actions
//!
//! | action | what happens |
//! |---|---|
//! | [`ApplyRecord`](TwoPcAction::ApplyRecord) | shard 0 commits and applies its oldest proposal ([`apply_record_entry`]); the coordinator reacts ([`Coordinator::on_record_applied`]) |
//! | [`ApplyParticipant`](TwoPcAction::ApplyParticipant) | a participant shard applies its oldest proposal ([`apply_participant_entry`]) and reacts |
//! | [`Deliver`](TwoPcAction::Deliver), [`Refuse`](TwoPcAction::Refuse) | a message arrives; `Refuse` is a `Prepare` that the participant cannot take (it votes no) |
//! | [`Lose`](TwoPcAction::Lose) | a message is lost (from the loss budget) |
//! | [`CoordinatorTimeout`](TwoPcAction::CoordinatorTimeout) | the coordinator gives up waiting for votes, or a restarted one gives up on an undecided record: abort |
//! | [`ParticipantTimeout`](TwoPcAction::ParticipantTimeout) | a prepared participant asks shard 0 to resolve the transaction ([`resolve`]) |
//! | [`CrashCoordinator`](TwoPcAction::CrashCoordinator), [`CrashParticipant`](TwoPcAction::CrashParticipant) | a shard's leader crashes (from the crash budget) |
//!
//! Timing is abstract: a timeout may fire at any moment, except that a timeout does not fire
//! while the answer it waits for is already on its way (a `Resolve` or a `Decision` for that
//! participant in the network, or a `Decide` proposed in shard 0). Firing then would only add a
//! duplicate message, and the guard keeps every path finite, which the liveness check needs
//! (the test `twopc_has_no_cycles` checks it).
//!
//! # Properties
//!
//! - `always` **atomicity**: no shard ever commits while another aborts: over the whole run,
//!   the decisions held by the record and by the participants are all the same.
//! - `always` **a decision never changes**: each place holds at most one decision, ever.
//! - `always` **commit only when every participant prepared**.
//! - `always` **no shard is asked to apply a decision it cannot take** (a commit without a
//!   prepare, a commit after an abort).
//! - `always` **decided once the faults stop** — liveness, in bounded form: in every state where
//!   nothing more can happen (every path of this finite model ends in one), the record is decided
//!   and every participant applied the decision (or, for an abort, never prepared). Weak fairness
//!   is what makes "nothing more can happen" the end of a run: an action that stays enabled is
//!   eventually taken. The faults stop because their budgets run out.
//! - `eventually` **the transaction is decided**: the same condition as stateright's own
//!   liveness check, kept for the explorer. That check only looks at the ends of paths and can
//!   miss a violation where two paths join; the `always` form above is exact.
//! - `sometimes`: a commit happens; an abort happens; recovery decides one; recovery's abort
//!   beats the coordinator's commit; the transaction is finished although its coordinator
//!   crashed; it commits although a message was lost. Each must have an example, so a model
//!   that cannot reach them (a vacuous one) fails.
//!
//! # Bounds
//!
//! [`TwoPcConfig::ci`]: 2 participants, 3 crashes, 2 lost messages (about 60 000 states).
//! [`TwoPcConfig::explore`] uses 3 participants (2.6 million states to check in full, which the
//! explorer does not need to). One transaction: several transactions only interact through locks
//! and deadlock detection, which are not part of 2PC's atomicity.
//!
//! # Broken variants ([`TwoPcBug`])
//!
//! - [`TwoPcBug::DecisionBeforeDurable`]: the coordinator sends its decision when it proposes
//!   it, before it is applied in shard 0. If recovery's abort is applied first (or a crash loses
//!   the proposal and recovery aborts), a participant has already committed: **atomicity**
//!   fails. The shortest counterexample (12 steps) is the race with a participant's `Resolve`.
//! - [`TwoPcBug::LastDecisionWins`]: shard 0 lets a later `Decide` overwrite the record. When
//!   recovery and the coordinator race, the record changes: **a decision never changes** fails.
//!
//! # Exploring
//!
//! `cargo run -p blockdb-spec -- explore twopc` (add `--bug decision-before-durable` to see a
//! counterexample).

mod model;
pub use blockdb_twopc as protocol;
mod state;

use blockdb_verifier::ShardId;

pub use model::TwoPc;
pub use protocol::{
    Command, Coordinator, CoordinatorPhase, Decision, Message, Participant, ParticipantEntry,
    ParticipantState, RecordEntry, Role, TxnRecord, Vote, Write, apply_participant_entry,
    apply_record_entry, resolve,
};
pub use state::{Envelope, Ghost, ParticipantNode, Proposer, TwoPcAction, TwoPcState};

/// The coordinator's shard.
pub const COORDINATOR_SHARD: ShardId = ShardId(0);

/// A deliberate bug, to show that the checker finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TwoPcBug {
    /// The coordinator sends its decision to the participants when it proposes it, before it is
    /// applied (durable) in its shard.
    DecisionBeforeDurable,
    /// The coordinator's shard lets a later decision overwrite the first.
    LastDecisionWins,
}

/// The bounds and variant of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwoPcConfig {
    /// Participant shards (1..=3).
    pub participants: u8,
    /// Leader crashes, in total over all shards.
    pub crashes: u8,
    /// Lost messages, in total.
    pub losses: u8,
    /// A deliberate bug, or `None` for the protocol as written.
    pub bug: Option<TwoPcBug>,
}

impl TwoPcConfig {
    /// The bounds checked in `cargo test`.
    pub fn ci() -> TwoPcConfig {
        TwoPcConfig { participants: 2, crashes: 3, losses: 2, bug: None }
    }

    /// Larger bounds for the explorer.
    pub fn explore() -> TwoPcConfig {
        TwoPcConfig { participants: 3, crashes: 3, losses: 2, bug: None }
    }
}
