//! The state and actions of the checkpoint model.

use blockdb_verifier::ExtendError;

use super::fixture::{Branch, CheckpointId, Fixture};
use super::tracker::TrackError;

/// What happened in the last step, for the `sometimes` properties (only the last one is kept,
/// so that the history does not multiply the states).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A client took a checkpoint with no proof needed.
    Advanced,
    /// A client took a checkpoint with a consistency proof.
    AdvancedWithProof,
    /// An older checkpoint was refused.
    StaleRefused,
    /// A checkpoint of the trusted size with another root was refused.
    ForkRefused,
    /// A consistency proof that does not verify was refused.
    ForgedProofRefused,
    /// A larger checkpoint came without a usable proof.
    ProofMissing,
    /// A checkpoint not signed under the policy was refused.
    UntrustedRefused,
    /// A checkpoint of another origin was refused.
    WrongOriginRefused,
    /// Two clients compared and agreed.
    ComparedConsistent,
    /// Two clients compared and found a fork.
    ForkDetectedByComparing,
    /// Two clients compared and the log gave no usable proof.
    ComparedUnproven,
}

impl Event {
    pub(super) fn refused(e: &TrackError) -> Event {
        match e {
            TrackError::Untrusted(_) => Event::UntrustedRefused,
            TrackError::WrongOrigin { .. } => Event::WrongOriginRefused,
            TrackError::Rejected(ExtendError::Stale { .. }) => Event::StaleRefused,
            TrackError::Rejected(ExtendError::Fork { .. }) => Event::ForkRefused,
            TrackError::Rejected(ExtendError::Inconsistent { .. }) => Event::ForgedProofRefused,
            TrackError::Rejected(_) => Event::ProofMissing,
        }
    }
}

/// A client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientState {
    /// The checkpoint it trusts.
    pub trusted: Option<CheckpointId>,
    /// What it ever trusted (history, for the properties).
    pub accepted: Accepted,
}

/// What a client ever trusted, as much as the properties need. With two branches, a set of
/// checkpoints is of one history exactly when it does not hold checkpoints beyond the fork from
/// both branches (checkpoints up to the fork are on both); keeping these bits instead of the set
/// keeps the history from multiplying the states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Accepted {
    /// A checkpoint of branch A beyond the fork.
    pub branch_a: bool,
    /// A checkpoint of branch B beyond the fork.
    pub branch_b: bool,
    /// A checkpoint of another origin or key.
    pub foreign: bool,
}

impl Accepted {
    pub(super) fn insert(&mut self, fixture: &Fixture, id: CheckpointId) {
        match id {
            CheckpointId::Log { size, .. } if size <= fixture.fork_at() => {}
            CheckpointId::Log { branch: Branch::A, .. } => self.branch_a = true,
            CheckpointId::Log { branch: Branch::B, .. } => self.branch_b = true,
            CheckpointId::Impostor | CheckpointId::OtherOrigin => self.foreign = true,
        }
    }
}

/// History for the properties; no actor sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// A client's trusted size went down.
    pub rollback: bool,
    /// An older checkpoint was not refused as stale.
    pub rollback_missed: bool,
    /// A comparison of two histories did not report the fork although it could.
    pub fork_missed: bool,
    /// A fork was reported between checkpoints of one history.
    pub false_alarm: bool,
}

/// A state of the checkpoint model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CheckpointState {
    /// The clients.
    pub clients: Vec<ClientState>,
    /// What happened in the last step.
    pub last: Option<Event>,
    /// History.
    pub ghost: Ghost,
}

/// An action of the checkpoint model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CheckpointAction {
    /// The log answers `client` with `checkpoint` and a consistency proof from the client's
    /// trusted size, made in the tree of `proof` (`None`: no proof).
    Serve {
        /// The client.
        client: u8,
        /// The checkpoint sent.
        checkpoint: CheckpointId,
        /// The tree the proof was made in.
        proof: Option<Branch>,
    },
    /// Client `from` shows its trusted checkpoint to client `to`, which asks the log for a proof
    /// between the two sizes; the log makes it in the tree of `proof` (`None`: it refuses).
    Gossip {
        /// The client that shows.
        from: u8,
        /// The client that checks.
        to: u8,
        /// The tree the proof was made in.
        proof: Option<Branch>,
    },
}
