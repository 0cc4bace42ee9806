//! The checkpoint model's transitions and properties; see [`crate::checkpoint`] for what they
//! mean.

use std::sync::Arc;

use blockdb_verifier::{Checkpoint, ConsistencyProof, ConsistencyStatus};
use stateright::{Model, Property};

use super::fixture::{Branch, CheckpointId, Fixture};
use super::state::{CheckpointAction, CheckpointState, ClientState, Event, Ghost};
use super::tracker::{self, Comparison, TrackError};
use super::{CheckpointConfig, ClientBug, LogBehaviour};

/// The checkpoint-tracking model.
#[derive(Clone, Debug)]
pub struct CheckpointModel {
    config: CheckpointConfig,
    fixture: Arc<Fixture>,
}

impl CheckpointModel {
    /// The model with these bounds (builds and signs the logs).
    ///
    /// # Panics
    /// Unless `fork_at < size_max`.
    pub fn new(config: CheckpointConfig) -> CheckpointModel {
        let fixture = Arc::new(Fixture::new(config.size_max, config.fork_at));
        CheckpointModel { config, fixture }
    }

    /// The logs.
    pub fn fixture(&self) -> &Fixture {
        &self.fixture
    }

    fn served(&self) -> Vec<CheckpointId> {
        let ids = self.fixture.ids();
        match self.config.log {
            LogBehaviour::Malicious => ids,
            LogBehaviour::Honest => ids
                .into_iter()
                .filter(|id| matches!(id, CheckpointId::Log { branch: Branch::A, .. }))
                .collect(),
        }
    }

    /// The proofs the log may send for sizes `from` to `to`: none is needed from 0 or between
    /// equal sizes (and none is sent for an older checkpoint).
    fn proof_choices(&self, from: u8, to: u8) -> Vec<Option<Branch>> {
        if from == 0 || from >= to {
            return vec![None];
        }
        match self.config.log {
            LogBehaviour::Honest => vec![Some(Branch::A)],
            LogBehaviour::Malicious => vec![Some(Branch::A), Some(Branch::B), None],
        }
    }

    /// `tracker::verify_signed`, or the broken variant's check.
    fn verify_signed(&self, id: CheckpointId) -> Result<Checkpoint, TrackError> {
        if self.config.bug == Some(ClientBug::SkipSignatureCheck) {
            let c = self.fixture.checkpoint(id);
            if c.origin == self.fixture.origin() {
                return Ok(c.clone());
            }
        }
        self.fixture.verified(id).clone()
    }

    /// `tracker::advance`, or the broken variant's check.
    fn advance(
        &self,
        trusted: Option<&Checkpoint>,
        new: &Checkpoint,
        proof: Option<&ConsistencyProof>,
    ) -> Result<ConsistencyStatus, TrackError> {
        let result = tracker::advance(trusted, new, proof);
        match (self.config.bug, result) {
            (Some(ClientBug::SkipConsistencyCheck), Err(e)) if !e.is_stale() => {
                Ok(ConsistencyStatus::NoTrustedState)
            }
            (Some(ClientBug::NoRollbackCheck), Err(e)) if e.is_stale() => {
                Ok(ConsistencyStatus::NoTrustedState)
            }
            (_, result) => result,
        }
    }

    fn serve(
        &self,
        s: &mut CheckpointState,
        c: usize,
        id: CheckpointId,
        proof_branch: Option<Branch>,
    ) {
        let trusted = s.clients[c].trusted;
        let trusted_checkpoint = trusted.map(|t| self.fixture.checkpoint(t));
        let (from, to) = (trusted.map_or(0, |t| self.fixture.size(t)), self.fixture.size(id));
        let proof = proof_branch.map(|b| self.fixture.proof(b, from, to));
        let result =
            self.verify_signed(id).and_then(|new| self.advance(trusted_checkpoint, &new, proof));
        let older = trusted.is_some() && matches!(id, CheckpointId::Log { .. }) && to < from;
        if older && !matches!(&result, Err(e) if e.is_stale()) {
            s.ghost.rollback_missed = true;
        }
        let client = &mut s.clients[c];
        match result {
            Ok(status) => {
                if to < from {
                    s.ghost.rollback = true;
                }
                client.trusted = Some(id);
                client.accepted.insert(&self.fixture, id);
                s.last = Some(match status {
                    ConsistencyStatus::Proven { .. } => Event::AdvancedWithProof,
                    _ => Event::Advanced,
                });
            }
            Err(e) => {
                let honest = trusted.is_some_and(|t| self.fixture.consistent(t, id))
                    && proof_branch.is_none_or(|b| self.fixture.made_in(b, id));
                if e.is_evidence() && honest {
                    s.ghost.false_alarm = true;
                }
                s.last = Some(Event::refused(&e));
            }
        }
    }

    fn gossip(
        &self,
        s: &mut CheckpointState,
        from: usize,
        to: usize,
        proof_branch: Option<Branch>,
    ) {
        let (Some(theirs_id), Some(mine_id)) = (s.clients[from].trusted, s.clients[to].trusted)
        else {
            return;
        };
        let theirs = match self.verify_signed(theirs_id) {
            Ok(c) => c,
            Err(e) => {
                s.last = Some(Event::refused(&e));
                return;
            }
        };
        let mine = self.fixture.checkpoint(mine_id);
        let (ms, ts) = (self.fixture.size(mine_id), self.fixture.size(theirs_id));
        let proof = proof_branch.map(|b| self.fixture.proof(b, ms.min(ts), ms.max(ts)));
        let comparison = match (self.config.bug, tracker::compare(mine, &theirs, proof)) {
            (Some(ClientBug::TrustPeerWithoutProof), Comparison::Unproven(_)) => {
                let newer = if ts >= ms { theirs.clone() } else { mine.clone() };
                Comparison::Consistent { newer }
            }
            (_, c) => c,
        };
        let truth = self.fixture.consistent(mine_id, theirs_id);
        let client = &mut s.clients[to];
        match comparison {
            Comparison::Consistent { .. } => {
                if !truth {
                    s.ghost.fork_missed = true;
                }
                if ts > ms {
                    client.trusted = Some(theirs_id);
                    client.accepted.insert(&self.fixture, theirs_id);
                }
                s.last = Some(Event::ComparedConsistent);
            }
            Comparison::Evidence(_) => {
                let newer = if ts >= ms { theirs_id } else { mine_id };
                if truth && proof_branch.is_none_or(|b| self.fixture.made_in(b, newer)) {
                    s.ghost.false_alarm = true;
                }
                s.last = Some(if truth {
                    Event::ForgedProofRefused
                } else {
                    Event::ForkDetectedByComparing
                });
            }
            Comparison::Unproven(_) => {
                if !truth && (proof.is_some() || ms == ts) {
                    s.ghost.fork_missed = true;
                }
                s.last = Some(Event::ComparedUnproven);
            }
        }
    }
}

impl Model for CheckpointModel {
    type State = CheckpointState;
    type Action = CheckpointAction;

    fn init_states(&self) -> Vec<CheckpointState> {
        vec![CheckpointState {
            clients: vec![ClientState::default(); usize::from(self.config.clients)],
            last: None,
            ghost: Ghost::default(),
        }]
    }

    fn actions(&self, s: &CheckpointState, actions: &mut Vec<CheckpointAction>) {
        let served = self.served();
        for (c, client) in (0u8..).zip(&s.clients) {
            let from = client.trusted.map_or(0, |t| self.fixture.size(t));
            for id in &served {
                let to = self.fixture.size(*id);
                let choices = match id {
                    CheckpointId::Log { .. } => self.proof_choices(from, to),
                    _ => vec![None],
                };
                for proof in choices {
                    actions.push(CheckpointAction::Serve { client: c, checkpoint: *id, proof });
                }
            }
        }
        for (from, a) in (0u8..).zip(&s.clients) {
            for (to, b) in (0u8..).zip(&s.clients) {
                let (Some(x), Some(y)) = (a.trusted, b.trusted) else { continue };
                if from == to {
                    continue;
                }
                let (sx, sy) = (self.fixture.size(x), self.fixture.size(y));
                for proof in self.proof_choices(sx.min(sy), sx.max(sy)) {
                    actions.push(CheckpointAction::Gossip { from, to, proof });
                }
            }
        }
    }

    fn next_state(
        &self,
        last: &CheckpointState,
        action: CheckpointAction,
    ) -> Option<CheckpointState> {
        let mut s = last.clone();
        match action {
            CheckpointAction::Serve { client, checkpoint, proof } => {
                self.serve(&mut s, usize::from(client), checkpoint, proof);
            }
            CheckpointAction::Gossip { from, to, proof } => {
                self.gossip(&mut s, usize::from(from), usize::from(to), proof);
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<CheckpointModel>> {
        let mut properties = vec![
            Property::always(
                "a client never accepts two inconsistent checkpoints for one origin",
                |_, s: &CheckpointState| {
                    s.clients.iter().all(|c| !(c.accepted.branch_a && c.accepted.branch_b))
                },
            ),
            Property::always(
                "a client only accepts its origin's checkpoints, signed under its policy",
                |_, s: &CheckpointState| s.clients.iter().all(|c| !c.accepted.foreign),
            ),
            Property::always(
                "rollback is detected: older checkpoints are refused as stale",
                |_, s: &CheckpointState| !s.ghost.rollback && !s.ghost.rollback_missed,
            ),
            Property::always(
                "a fork shown to two clients is detected once they compare",
                |_, s: &CheckpointState| !s.ghost.fork_missed,
            ),
            Property::always(
                "no false alarm: an honest log is never reported",
                |_, s: &CheckpointState| !s.ghost.false_alarm,
            ),
            Property::sometimes("a rollback is refused", |_, s: &CheckpointState| {
                s.last == Some(Event::StaleRefused)
            }),
            Property::sometimes(
                "a client advances with a consistency proof",
                |_, s: &CheckpointState| s.last == Some(Event::AdvancedWithProof),
            ),
        ];
        match self.config.log {
            LogBehaviour::Honest => properties.push(Property::sometimes(
                "two clients compare and agree",
                |_, s: &CheckpointState| s.last == Some(Event::ComparedConsistent),
            )),
            LogBehaviour::Malicious => properties.extend([
                Property::sometimes(
                    "a fork is shown to two clients",
                    |m: &CheckpointModel, s: &CheckpointState| {
                        s.clients.iter().any(|a| {
                            s.clients.iter().any(|b| match (a.trusted, b.trusted) {
                                (Some(x), Some(y)) => !m.fixture.consistent(x, y),
                                _ => false,
                            })
                        })
                    },
                ),
                Property::sometimes("a fork is detected by comparing", |_, s: &CheckpointState| {
                    s.last == Some(Event::ForkDetectedByComparing)
                }),
                Property::sometimes(
                    "a forged consistency proof is refused",
                    |_, s: &CheckpointState| s.last == Some(Event::ForgedProofRefused),
                ),
                Property::sometimes(
                    "an impostor's checkpoint is refused",
                    |_, s: &CheckpointState| s.last == Some(Event::UntrustedRefused),
                ),
                Property::sometimes(
                    "another origin's checkpoint is refused",
                    |_, s: &CheckpointState| s.last == Some(Event::WrongOriginRefused),
                ),
            ]),
        }
        properties
    }
}
