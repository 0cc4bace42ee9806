//! The 2PC model's transitions and properties; see [`crate::twopc`] for what they mean.

use std::collections::BTreeSet;

use blockdb_verifier::ShardId;
use stateright::{Model, Property};

use super::protocol::{
    Command, Coordinator, CoordinatorPhase, Decision, Message, Participant, ParticipantState,
    RecordEntry, Role, TxnRecord, Write, apply_participant_entry, apply_record_entry, resolve,
};
use super::state::{Envelope, Ghost, ParticipantNode, Proposer, TwoPcAction, TwoPcState};
use super::{COORDINATOR_SHARD, TwoPcBug, TwoPcConfig};
use crate::check::is_quiescent;

/// The 2PC model.
#[derive(Clone, Debug)]
pub struct TwoPc {
    config: TwoPcConfig,
    participants: Vec<ShardId>,
}

impl TwoPc {
    /// The model with these bounds.
    ///
    /// # Panics
    /// When `config.participants` is not in `1..=3`.
    pub fn new(config: TwoPcConfig) -> TwoPc {
        assert!((1..=3).contains(&config.participants), "1 to 3 participants");
        let participants = (1..=config.participants).map(|i| ShardId(u32::from(i))).collect();
        TwoPc { config, participants }
    }

    /// The configuration.
    pub fn config(&self) -> &TwoPcConfig {
        &self.config
    }

    fn participant(&self, shard: ShardId) -> Participant {
        Participant { shard, coordinator: COORDINATOR_SHARD }
    }

    fn index(&self, shard: ShardId) -> usize {
        self.participants.iter().position(|s| *s == shard).expect("a participant of the model")
    }

    /// Carries out `commands` issued by `from`; `proposer` says who proposes the entries of
    /// shard 0 among them.
    fn run(&self, s: &mut TwoPcState, from: Role, proposer: Proposer, commands: Vec<Command>) {
        for command in commands {
            match command {
                Command::ProposeRecord(entry) => {
                    if let (Some(TwoPcBug::DecisionBeforeDurable), RecordEntry::Decide { decision }) =
                        (self.config.bug, &entry)
                        && proposer == Proposer::Coordinator
                    {
                        for shard in &self.participants {
                            s.network.insert(Envelope {
                                to: Role::Participant(*shard),
                                message: Message::Decision { decision: *decision },
                            });
                        }
                    }
                    if !s.record_proposals.iter().any(|(e, _)| *e == entry) {
                        s.record_proposals.push((entry, proposer));
                    }
                }
                Command::ProposeParticipant(entry) => {
                    let Role::Participant(shard) = from else {
                        unreachable!("only participants propose participant entries")
                    };
                    let node = &mut s.participants[self.index(shard)];
                    if !node.proposals.contains(&entry) {
                        node.proposals.push(entry);
                    }
                }
                Command::Send { to, message } => {
                    s.network.insert(Envelope { to, message });
                }
            }
        }
    }

    fn apply_record(&self, record: Option<&TxnRecord>, entry: &RecordEntry) -> TxnRecord {
        match (self.config.bug, record, entry) {
            (
                Some(TwoPcBug::LastDecisionWins),
                Some(TxnRecord::Decided { participants, .. }),
                RecordEntry::Decide { decision },
            ) => TxnRecord::Decided { participants: participants.clone(), decision: *decision },
            _ => apply_record_entry(record, entry),
        }
    }

    fn step_apply_record(&self, s: &mut TwoPcState) -> Option<()> {
        if s.record_proposals.is_empty() {
            return None;
        }
        let (entry, proposer) = s.record_proposals.remove(0);
        let before = s.record.as_ref().and_then(TxnRecord::decision);
        let after = self.apply_record(s.record.as_ref(), &entry);
        let decided = after.decision();
        if before.is_none() && decided.is_some() {
            s.ghost.decided_by_recovery = proposer == Proposer::Recovery;
        }
        if before == Some(Decision::Abort)
            && s.ghost.decided_by_recovery
            && entry == (RecordEntry::Decide { decision: Decision::Commit })
        {
            s.ghost.recovery_beat_commit = true;
        }
        if let Some(d) = decided {
            s.ghost.held.insert((Role::Coordinator(COORDINATOR_SHARD), d));
        }
        s.record = Some(after.clone());
        let commands = s.coordinator.on_record_applied(&after);
        self.run(s, Role::Coordinator(COORDINATOR_SHARD), proposer, commands);
        Some(())
    }

    fn step_apply_participant(&self, s: &mut TwoPcState, shard: ShardId) -> Option<()> {
        let i = self.index(shard);
        if s.participants[i].proposals.is_empty() {
            return None;
        }
        let entry = s.participants[i].proposals.remove(0);
        match apply_participant_entry(&s.participants[i].state, &entry) {
            Ok(state) => {
                if let Some(d) = state.decision() {
                    s.ghost.held.insert((Role::Participant(shard), d));
                }
                let commands = self.participant(shard).on_entry_applied(&entry, &state);
                s.participants[i].state = state;
                self.run(s, Role::Participant(shard), Proposer::Coordinator, commands);
            }
            Err(_) => s.ghost.contradiction = true,
        }
        Some(())
    }

    fn step_deliver(
        &self,
        s: &mut TwoPcState,
        envelope: &Envelope,
        acceptable: bool,
    ) -> Option<()> {
        if !s.network.remove(envelope) {
            return None;
        }
        let (commands, proposer) = match (envelope.to, &envelope.message) {
            (Role::Participant(shard), Message::Prepare { writes }) => {
                let state = &s.participants[self.index(shard)].state;
                (
                    self.participant(shard).on_prepare(state, writes, acceptable),
                    Proposer::Coordinator,
                )
            }
            (Role::Participant(shard), Message::Decision { decision }) => {
                let state = &s.participants[self.index(shard)].state;
                (self.participant(shard).on_decision(state, *decision), Proposer::Coordinator)
            }
            (Role::Coordinator(_), Message::Vote { from, vote }) => {
                (s.coordinator.on_vote(*from, *vote), Proposer::Coordinator)
            }
            (Role::Coordinator(_), Message::Resolve { from }) => {
                (resolve(s.record.as_ref(), *from), Proposer::Recovery)
            }
            _ => unreachable!("no other message is sent: {envelope:?}"),
        };
        self.run(s, envelope.to, proposer, commands);
        Some(())
    }

    fn timeout_enabled(&self, s: &TwoPcState, shard: ShardId) -> bool {
        let node = &s.participants[self.index(shard)];
        let waiting = s.network.iter().any(|e| match (&e.to, &e.message) {
            (Role::Participant(to), Message::Decision { .. }) => *to == shard,
            (_, Message::Resolve { from }) => *from == shard,
            _ => false,
        });
        let deciding =
            s.record_proposals.iter().any(|(e, _)| matches!(e, RecordEntry::Decide { .. }));
        matches!(node.state, ParticipantState::Prepared { .. })
            && node.proposals.is_empty()
            && !waiting
            && !deciding
    }
}

impl Model for TwoPc {
    type State = TwoPcState;
    type Action = TwoPcAction;

    fn init_states(&self) -> Vec<TwoPcState> {
        let writes = self
            .participants
            .iter()
            .map(|s| {
                let k = u8::try_from(s.0).expect("few shards");
                (*s, vec![Write { key: vec![b'k', k], value: vec![k] }])
            })
            .collect();
        let (coordinator, commands) = Coordinator::begin(COORDINATOR_SHARD, writes);
        let mut s = TwoPcState {
            record: None,
            coordinator,
            record_proposals: Vec::new(),
            participants: self
                .participants
                .iter()
                .map(|_| ParticipantNode { state: ParticipantState::Idle, proposals: Vec::new() })
                .collect(),
            network: BTreeSet::new(),
            crashes: 0,
            losses: 0,
            ghost: Ghost::default(),
        };
        self.run(&mut s, Role::Coordinator(COORDINATOR_SHARD), Proposer::Coordinator, commands);
        vec![s]
    }

    fn actions(&self, s: &TwoPcState, actions: &mut Vec<TwoPcAction>) {
        if !s.record_proposals.is_empty() {
            actions.push(TwoPcAction::ApplyRecord);
        }
        for (shard, node) in self.participants.iter().zip(&s.participants) {
            if !node.proposals.is_empty() {
                actions.push(TwoPcAction::ApplyParticipant(*shard));
            }
        }
        for e in &s.network {
            actions.push(TwoPcAction::Deliver(e.clone()));
            if let (Role::Participant(shard), Message::Prepare { .. }) = (e.to, &e.message)
                && s.participants[self.index(shard)].state == ParticipantState::Idle
            {
                actions.push(TwoPcAction::Refuse(e.clone()));
            }
            if s.losses < self.config.losses {
                actions.push(TwoPcAction::Lose(e.clone()));
            }
        }
        if matches!(
            s.coordinator.phase(),
            CoordinatorPhase::Preparing { .. } | CoordinatorPhase::Recovering
        ) {
            actions.push(TwoPcAction::CoordinatorTimeout);
        }
        for shard in &self.participants {
            if self.timeout_enabled(s, *shard) {
                actions.push(TwoPcAction::ParticipantTimeout(*shard));
            }
        }
        if s.crashes < self.config.crashes {
            actions.push(TwoPcAction::CrashCoordinator);
            for (shard, node) in self.participants.iter().zip(&s.participants) {
                // A crash with nothing proposed loses nothing: the same as no crash.
                if !node.proposals.is_empty() {
                    actions.push(TwoPcAction::CrashParticipant(*shard));
                }
            }
        }
    }

    fn next_state(&self, last: &TwoPcState, action: TwoPcAction) -> Option<TwoPcState> {
        let mut s = last.clone();
        match action {
            TwoPcAction::ApplyRecord => self.step_apply_record(&mut s)?,
            TwoPcAction::ApplyParticipant(shard) => self.step_apply_participant(&mut s, shard)?,
            TwoPcAction::Deliver(e) => self.step_deliver(&mut s, &e, true)?,
            TwoPcAction::Refuse(e) => self.step_deliver(&mut s, &e, false)?,
            TwoPcAction::Lose(e) => {
                if !s.network.remove(&e) {
                    return None;
                }
                s.losses += 1;
            }
            TwoPcAction::CoordinatorTimeout => {
                let proposer = if *s.coordinator.phase() == CoordinatorPhase::Recovering {
                    Proposer::Recovery
                } else {
                    Proposer::Coordinator
                };
                let commands = s.coordinator.on_timeout();
                self.run(&mut s, Role::Coordinator(COORDINATOR_SHARD), proposer, commands);
            }
            TwoPcAction::ParticipantTimeout(shard) => {
                let commands =
                    self.participant(shard).on_timeout(&s.participants[self.index(shard)].state);
                self.run(&mut s, Role::Participant(shard), Proposer::Recovery, commands);
            }
            TwoPcAction::CrashCoordinator => {
                s.crashes += 1;
                s.ghost.coordinator_crashed = true;
                s.record_proposals.clear();
                let (coordinator, commands) =
                    Coordinator::recover(COORDINATOR_SHARD, s.record.as_ref());
                s.coordinator = coordinator;
                self.run(
                    &mut s,
                    Role::Coordinator(COORDINATOR_SHARD),
                    Proposer::Recovery,
                    commands,
                );
            }
            TwoPcAction::CrashParticipant(shard) => {
                s.crashes += 1;
                s.participants[self.index(shard)].proposals.clear();
            }
        }
        // An action that changes nothing is not a step: it would be a loop in the state graph.
        (s != *last).then_some(s)
    }

    fn properties(&self) -> Vec<Property<TwoPc>> {
        vec![
            Property::always(
                "atomicity: no shard commits while another aborts",
                |_, s: &TwoPcState| {
                    s.ghost.held.iter().map(|(_, d)| d).collect::<BTreeSet<_>>().len() <= 1
                },
            ),
            Property::always("a decision never changes", |_, s: &TwoPcState| {
                s.ghost.held.iter().map(|(place, _)| place).collect::<BTreeSet<_>>().len()
                    == s.ghost.held.len()
            }),
            Property::always("commit only when every participant prepared", |_, s: &TwoPcState| {
                !s.ghost.held.iter().any(|(_, d)| *d == Decision::Commit)
                    || s.participants.iter().all(|p| {
                        matches!(
                            p.state,
                            ParticipantState::Prepared { .. } | ParticipantState::Committed { .. }
                        )
                    })
            }),
            Property::always(
                "no shard is asked to apply a decision it cannot take",
                |_, s: &TwoPcState| !s.ghost.contradiction,
            ),
            Property::always(
                "decided once the faults stop (bounded liveness)",
                |m: &TwoPc, s: &TwoPcState| !is_quiescent(m, s) || s.decided_everywhere(),
            ),
            Property::eventually("the transaction is decided", |_, s: &TwoPcState| {
                s.decided_everywhere()
            }),
            Property::sometimes("a commit happens", |_, s: &TwoPcState| {
                s.participants.iter().all(|p| matches!(p.state, ParticipantState::Committed { .. }))
            }),
            Property::sometimes("an abort happens", |_, s: &TwoPcState| {
                s.record.as_ref().and_then(TxnRecord::decision) == Some(Decision::Abort)
                    && s.participants.iter().any(|p| p.state == ParticipantState::Aborted)
            }),
            Property::sometimes("recovery decides one", |_, s: &TwoPcState| {
                s.ghost.decided_by_recovery
            }),
            Property::sometimes(
                "recovery's abort beats the coordinator's commit",
                |_, s: &TwoPcState| s.ghost.recovery_beat_commit,
            ),
            Property::sometimes(
                "finished although the coordinator crashed",
                |_, s: &TwoPcState| {
                    s.ghost.coordinator_crashed
                        && s.record.as_ref().and_then(TxnRecord::decision).is_some()
                        && s.decided_everywhere()
                },
            ),
            Property::sometimes("commits although a message was lost", |_, s: &TwoPcState| {
                s.losses > 0
                    && s.participants
                        .iter()
                        .all(|p| matches!(p.state, ParticipantState::Committed { .. }))
            }),
        ]
    }
}
