//! The state and actions of the checkpoint model.

use blockdb_client::TrustedState;
use blockdb_client::VerifyError;
use blockdb_verifier::ExtendError;

use super::fixture::{Branch, CheckpointId, Fixture};

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
    /// A checkpoint needed a consistency proof and the log gave none.
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
    /// The event of the client's error. The model raises [`VerifyError::Mismatch`] only for a
    /// checkpoint of another origin, as `Client::observe` does.
    pub(super) fn refused(e: &VerifyError) -> Event {
        match e {
            VerifyError::Policy(_) => Event::UntrustedRefused,
            VerifyError::Mismatch(_) => Event::WrongOriginRefused,
            VerifyError::Rollback { .. } | VerifyError::Extend(ExtendError::Stale { .. }) => {
                Event::StaleRefused
            }
            VerifyError::Extend(ExtendError::Fork { .. }) => Event::ForkRefused,
            VerifyError::Extend(ExtendError::Inconsistent { .. })
            | VerifyError::Consistency { .. } => Event::ForgedProofRefused,
            _ => Event::ProofMissing,
        }
    }
}

/// A client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientState {
    /// Its trusted state: the client crate's own, moved only by the client crate's code.
    pub trusted: TrustedState,
    /// What it ever trusted (history, for the properties).
    pub accepted: Accepted,
}

impl ClientState {
    /// The checkpoint it trusts for the model's origin, by name.
    pub fn trusted_id(&self, fixture: &Fixture) -> Option<CheckpointId> {
        self.trusted.get(fixture.origin()).map(|c| fixture.id_of(c))
    }

    /// The size of the checkpoint it trusts (0 if none).
    pub fn trusted_size(&self, fixture: &Fixture) -> u8 {
        self.trusted
            .get(fixture.origin())
            .map_or(0, |c| u8::try_from(c.size.0).expect("the model's trees are small"))
    }
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
    /// The log answers a linearizable read of `client` with `checkpoint`; if the client's
    /// [`TrustedState::observe`] asks for a consistency proof, the log makes it in the tree of
    /// `proof` (`None`: it refuses).
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
