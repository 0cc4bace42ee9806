//! The checkpoint model's transitions and properties; see [`crate::checkpoint`] for what they
//! mean.

use std::sync::Arc;

use blockdb_client::trust::{Comparison, Observation};
use blockdb_client::{TrustedState, VerifyError};
use blockdb_verifier::{Checkpoint, TreeSize};
use stateright::{Model, Property};

use super::fixture::{Branch, CheckpointId, Fixture};
use super::state::{CheckpointAction, CheckpointState, ClientState, Event, Ghost};
use super::{CheckpointConfig, ClientBug, LogBehaviour};

/// The checkpoint-tracking model.
#[derive(Clone, Debug)]
pub struct CheckpointModel {
    config: CheckpointConfig,
    fixture: Arc<Fixture>,
}

/// Why `Client::observe` did not take a checkpoint.
enum Refusal {
    /// The client's verification failed.
    Verify(VerifyError),
    /// A consistency proof was needed and the log did not give one (`Unavailable`).
    NoProof,
}

impl From<VerifyError> for Refusal {
    fn from(e: VerifyError) -> Refusal {
        Refusal::Verify(e)
    }
}

fn small(size: TreeSize) -> u8 {
    u8::try_from(size.0).expect("the model's trees are small")
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

    /// The proofs the log may send between sizes `from` and `to` when asked: none between
    /// equal sizes (it is not asked); from 0 the proof is empty on either branch.
    fn proof_choices(&self, from: u8, to: u8) -> Vec<Option<Branch>> {
        match self.config.log {
            _ if from == to => vec![None],
            LogBehaviour::Honest => vec![Some(Branch::A)],
            LogBehaviour::Malicious if from == 0 => vec![Some(Branch::A), None],
            LogBehaviour::Malicious => vec![Some(Branch::A), Some(Branch::B), None],
        }
    }

    /// Whether the client passes `allow_older = true` on a linearizable read (the broken
    /// variant [`ClientBug::NoRollbackCheck`]); the client as written passes `false`.
    fn allow_older(&self) -> bool {
        self.config.bug == Some(ClientBug::NoRollbackCheck)
    }

    /// What the client does with a signed checkpoint before `TrustedState::observe`: the trust
    /// policy (run once per checkpoint in the fixture), then the origin, as `Client::observe`
    /// does. [`ClientBug::SkipSignatureCheck`] skips the policy.
    fn verify(&self, id: CheckpointId) -> Result<Checkpoint, VerifyError> {
        let cp = if self.config.bug == Some(ClientBug::SkipSignatureCheck) {
            self.fixture.checkpoint(id).clone()
        } else {
            self.fixture.verified(id).clone()?
        };
        if cp.origin != self.fixture.origin() {
            return Err(VerifyError::Mismatch(format!("a checkpoint of {}", cp.origin)));
        }
        Ok(cp)
    }

    /// `Client::observe` without the I/O: `TrustedState::observe`, and on `NeedsProof` the
    /// log's consistency proof (made in `proof`'s tree, or refused) given to
    /// `TrustedState::prove`. Returns whether a proof was used.
    ///
    /// [`ClientBug::SkipConsistencyCheck`] replaces this with `TrustedState::insert` for any
    /// checkpoint that is not older.
    fn observe(
        &self,
        state: &mut TrustedState,
        cp: &Checkpoint,
        proof: Option<Branch>,
    ) -> Result<bool, Refusal> {
        let before = state.get(&cp.origin).cloned();
        if self.config.bug == Some(ClientBug::SkipConsistencyCheck)
            && before.as_ref().is_none_or(|k| cp.size >= k.size)
        {
            state.insert(cp.clone());
            return Ok(false);
        }
        match state.observe(cp, None, self.allow_older())? {
            Observation::Accepted => Ok(false),
            Observation::NeedsProof { from, to } => {
                let kept = before.expect("a proof is only needed against a kept checkpoint");
                let branch = proof.ok_or(Refusal::NoProof)?;
                let fetched = self.fixture.proof(branch, small(from), small(to));
                // One model step holds the state throughout, so the kept checkpoint cannot move.
                let settled = state.settle(&kept, cp, fetched)?;
                debug_assert_eq!(settled, blockdb_client::trust::Settled::Done);
                Ok(true)
            }
        }
    }

    fn serve(
        &self,
        s: &mut CheckpointState,
        c: usize,
        id: CheckpointId,
        proof_branch: Option<Branch>,
    ) {
        let trusted = s.clients[c].trusted_id(&self.fixture);
        let from = s.clients[c].trusted_size(&self.fixture);
        let to = self.fixture.size(id);
        let result = self
            .verify(id)
            .map_err(Refusal::Verify)
            .and_then(|new| self.observe(&mut s.clients[c].trusted, &new, proof_branch));
        let older = trusted.is_some() && matches!(id, CheckpointId::Log { .. }) && to < from;
        match result {
            Ok(with_proof) => {
                if older {
                    // The read's answer is older than what the client trusts: a rollback.
                    s.ghost.rollback_missed = true;
                }
                s.last = Some(if with_proof { Event::AdvancedWithProof } else { Event::Advanced });
            }
            Err(Refusal::NoProof) => s.last = Some(Event::ProofMissing),
            Err(Refusal::Verify(e)) => {
                let honest = trusted.is_some_and(|t| self.fixture.consistent(t, id))
                    && proof_branch.is_none_or(|b| self.fixture.made_in(b, id));
                if e.is_fork() && honest {
                    s.ghost.false_alarm = true;
                }
                s.last = Some(Event::refused(&e));
            }
        }
        self.record(s, c, from);
    }

    /// Records what client `c` now trusts, for the properties.
    fn record(&self, s: &mut CheckpointState, c: usize, size_before: u8) {
        let client = &mut s.clients[c];
        if client.trusted_size(&self.fixture) < size_before {
            s.ghost.rollback = true;
        }
        if let Some(id) = client.trusted_id(&self.fixture) {
            client.accepted.insert(&self.fixture, id);
        }
    }

    fn gossip(
        &self,
        s: &mut CheckpointState,
        from: usize,
        to: usize,
        proof_branch: Option<Branch>,
    ) {
        let (Some(theirs_id), Some(mine_id)) =
            (s.clients[from].trusted_id(&self.fixture), s.clients[to].trusted_id(&self.fixture))
        else {
            return;
        };
        let theirs = match self.verify(theirs_id) {
            Ok(c) => c,
            Err(e) => {
                s.last = Some(Event::refused(&e));
                return;
            }
        };
        let (ms, ts) = (self.fixture.size(mine_id), self.fixture.size(theirs_id));
        let state = &mut s.clients[to].trusted;
        let mut proof = None;
        let mut comparison = state.compare(&theirs, None);
        if let Comparison::NeedsProof { from, to } = comparison {
            // The client asks the log for the proof between the two sizes.
            proof = proof_branch.map(|b| self.fixture.proof(b, small(from), small(to)));
            comparison = state.compare(&theirs, proof);
        }
        let truth = self.fixture.consistent(mine_id, theirs_id);
        let trust_peer = self.config.bug == Some(ClientBug::TrustPeerWithoutProof);
        match comparison {
            Comparison::Consistent => {
                if !truth {
                    s.ghost.fork_missed = true;
                }
                s.last = Some(Event::ComparedConsistent);
                if ts > ms {
                    // Theirs extends mine: the client takes it as it takes a read's checkpoint,
                    // with the log's proof.
                    match self.observe(state, &theirs, proof_branch) {
                        Ok(_) => {}
                        Err(Refusal::NoProof) => s.last = Some(Event::ProofMissing),
                        Err(Refusal::Verify(e)) => s.last = Some(Event::refused(&e)),
                    }
                }
            }
            Comparison::NeedsProof { .. } if trust_peer => {
                // The broken variant takes the peer's larger checkpoint without a proof.
                if !truth {
                    s.ghost.fork_missed = true;
                }
                if ts > ms {
                    state.insert(theirs);
                }
                s.last = Some(Event::ComparedConsistent);
            }
            Comparison::Fork(_) => {
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
            Comparison::NeedsProof { .. } | Comparison::Untracked => {
                if !truth && (proof.is_some() || ms == ts) {
                    s.ghost.fork_missed = true;
                }
                s.last = Some(Event::ComparedUnproven);
            }
        }
        self.record(s, to, ms);
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
            let from = client.trusted_size(&self.fixture);
            for id in &served {
                let to = self.fixture.size(*id);
                // A proof is asked for only between log checkpoints, and for an older one only
                // by a client that allows older trees.
                let kept = client.trusted.get(self.fixture.origin()).is_some();
                let choices = match id {
                    CheckpointId::Log { .. } if kept && (to > from || self.allow_older()) => {
                        self.proof_choices(from.min(to), from.max(to))
                    }
                    _ => vec![None],
                };
                for proof in choices {
                    actions.push(CheckpointAction::Serve { client: c, checkpoint: *id, proof });
                }
            }
        }
        for (from, a) in (0u8..).zip(&s.clients) {
            for (to, b) in (0u8..).zip(&s.clients) {
                if from == to || a.trusted_id(&self.fixture).is_none() {
                    continue;
                }
                let (sx, sy) = (a.trusted_size(&self.fixture), b.trusted_size(&self.fixture));
                if b.trusted_id(&self.fixture).is_none() {
                    continue;
                }
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
                            s.clients.iter().any(|b| {
                                match (a.trusted_id(&m.fixture), b.trusted_id(&m.fixture)) {
                                    (Some(x), Some(y)) => !m.fixture.consistent(x, y),
                                    _ => false,
                                }
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
