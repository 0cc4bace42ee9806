//! The coordinator's side: the transaction record in the coordinator's shard, the coordinator
//! itself, and the recovery of undecided transactions. See the crate documentation.

use blockdb_verifier::ShardId;

use super::{Command, Decision, Message, Role, Vote, Write};

/// The transaction record, replicated in the coordinator's shard.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnRecord {
    /// The transaction has begun; no decision yet.
    Begun {
        /// The shards that hold its writes.
        participants: Vec<ShardId>,
    },
    /// The transaction is decided, for good.
    Decided {
        /// The shards that hold its writes (empty when recovery decided a transaction whose
        /// `Begin` it never saw).
        participants: Vec<ShardId>,
        /// The decision.
        decision: Decision,
    },
}

impl TxnRecord {
    /// The decision, if there is one.
    pub fn decision(&self) -> Option<Decision> {
        match self {
            TxnRecord::Begun { .. } => None,
            TxnRecord::Decided { decision, .. } => Some(*decision),
        }
    }

    /// The participants.
    pub fn participants(&self) -> &[ShardId] {
        match self {
            TxnRecord::Begun { participants } | TxnRecord::Decided { participants, .. } => {
                participants
            }
        }
    }
}

/// A Raft entry of the coordinator's shard about one transaction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordEntry {
    /// Create the record.
    Begin {
        /// The shards that hold the transaction's writes.
        participants: Vec<ShardId>,
    },
    /// Decide, unless the record is decided already.
    Decide {
        /// The decision proposed.
        decision: Decision,
    },
}

/// Applies a Raft entry of the coordinator's shard to the transaction's record (`None`: no
/// record yet) and returns the new record. Deterministic, as every replica must compute the same.
///
/// - `Begin` creates the record; on an existing record it changes nothing (a retried proposal,
///   or a transaction that recovery aborted before its `Begin` was applied stays aborted).
/// - `Decide` decides an undecided record (or creates a decided one); on a decided record it
///   changes nothing: **the first decision wins**.
pub fn apply_record_entry(record: Option<&TxnRecord>, entry: &RecordEntry) -> TxnRecord {
    match (record, entry) {
        (Some(r), RecordEntry::Begin { .. }) => r.clone(),
        (None, RecordEntry::Begin { participants }) => {
            TxnRecord::Begun { participants: participants.clone() }
        }
        (Some(r @ TxnRecord::Decided { .. }), RecordEntry::Decide { .. }) => r.clone(),
        (Some(TxnRecord::Begun { participants }), RecordEntry::Decide { decision }) => {
            TxnRecord::Decided { participants: participants.clone(), decision: *decision }
        }
        (None, RecordEntry::Decide { decision }) => {
            TxnRecord::Decided { participants: Vec::new(), decision: *decision }
        }
    }
}

/// Where the coordinator is in the protocol. All of it is volatile: a crash loses it, and
/// [`Coordinator::recover`] rebuilds what can be rebuilt from the replicated record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CoordinatorPhase {
    /// `Begin` proposed, not yet applied.
    Beginning,
    /// `Prepare` sent; the votes received so far.
    Preparing {
        /// Votes by participant, in the order they came.
        votes: Vec<(ShardId, Vote)>,
    },
    /// `Decide` proposed, not yet applied.
    Deciding {
        /// The decision proposed (the record may end up with another: the first wins).
        decision: Decision,
    },
    /// The decision is durable and was sent to every participant.
    Done {
        /// The recorded decision.
        decision: Decision,
    },
    /// Restarted with an undecided record: the write sets and votes are gone, so the only way
    /// out is to abort after a timeout.
    Recovering,
    /// Restarted with no record: the `Begin` was never applied, no participant was asked to
    /// prepare, and the client got an error. Nothing to do.
    Abandoned,
}

/// The coordinator of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Coordinator {
    shard: ShardId,
    /// The participants and their write sets; the write sets are empty after a restart.
    writes: Vec<(ShardId, Vec<Write>)>,
    phase: CoordinatorPhase,
}

impl Coordinator {
    /// Starts a transaction whose record lives in `shard`, with the write set of each
    /// participant shard. Returns the coordinator and its first command (propose `Begin`).
    ///
    /// Requires at least one participant, each listed once.
    pub fn begin(
        shard: ShardId,
        writes: Vec<(ShardId, Vec<Write>)>,
    ) -> (Coordinator, Vec<Command>) {
        let participants = writes.iter().map(|(s, _)| *s).collect();
        let c = Coordinator { shard, writes, phase: CoordinatorPhase::Beginning };
        (c, vec![Command::ProposeRecord(RecordEntry::Begin { participants })])
    }

    /// The coordinator after a restart of its shard's leader, from the replicated record.
    ///
    /// - No record: [`CoordinatorPhase::Abandoned`].
    /// - An undecided record: [`CoordinatorPhase::Recovering`]; [`Coordinator::on_timeout`]
    ///   aborts it.
    /// - A decided record: the decision is sent again to every participant (the crash may have
    ///   come before it was sent).
    pub fn recover(shard: ShardId, record: Option<&TxnRecord>) -> (Coordinator, Vec<Command>) {
        let participants = record.map_or(&[][..], TxnRecord::participants);
        let writes = participants.iter().map(|s| (*s, Vec::new())).collect();
        let mut c = Coordinator { shard, writes, phase: CoordinatorPhase::Abandoned };
        let commands = match record {
            None => Vec::new(),
            Some(TxnRecord::Begun { .. }) => {
                c.phase = CoordinatorPhase::Recovering;
                Vec::new()
            }
            Some(r @ TxnRecord::Decided { .. }) => c.on_record_applied(r),
        };
        (c, commands)
    }

    /// The phase.
    pub fn phase(&self) -> &CoordinatorPhase {
        &self.phase
    }

    /// The coordinator's shard.
    pub fn shard(&self) -> ShardId {
        self.shard
    }

    /// Reacts to an entry of this transaction applied in the coordinator's shard; `record` is
    /// the record after it.
    pub fn on_record_applied(&mut self, record: &TxnRecord) -> Vec<Command> {
        match (record, &self.phase) {
            (TxnRecord::Begun { .. }, CoordinatorPhase::Beginning) => {
                self.phase = CoordinatorPhase::Preparing { votes: Vec::new() };
                self.writes
                    .iter()
                    .map(|(shard, writes)| Command::Send {
                        to: Role::Participant(*shard),
                        message: Message::Prepare { writes: writes.clone() },
                    })
                    .collect()
            }
            (TxnRecord::Begun { .. }, _) => Vec::new(),
            (TxnRecord::Decided { decision, .. }, CoordinatorPhase::Done { decision: sent })
                if sent == decision =>
            {
                Vec::new()
            }
            (TxnRecord::Decided { decision, participants }, _) => {
                // Only now, with the decision applied in the coordinator's shard, may any
                // participant hear of it.
                self.phase = CoordinatorPhase::Done { decision: *decision };
                let mut to: Vec<ShardId> = self.writes.iter().map(|(s, _)| *s).collect();
                for shard in participants {
                    if !to.contains(shard) {
                        to.push(*shard);
                    }
                }
                to.into_iter()
                    .map(|shard| Command::Send {
                        to: Role::Participant(shard),
                        message: Message::Decision { decision: *decision },
                    })
                    .collect()
            }
        }
    }

    /// Reacts to a vote. When every participant voted yes, proposes to commit; at the first no,
    /// proposes to abort. Votes in any other phase than [`CoordinatorPhase::Preparing`] are
    /// late and change nothing.
    pub fn on_vote(&mut self, from: ShardId, vote: Vote) -> Vec<Command> {
        let CoordinatorPhase::Preparing { votes } = &mut self.phase else { return Vec::new() };
        if !self.writes.iter().any(|(s, _)| *s == from) || votes.iter().any(|(s, _)| *s == from) {
            return Vec::new();
        }
        votes.push((from, vote));
        let decision = if vote == Vote::No {
            Decision::Abort
        } else if votes.len() == self.writes.len() {
            Decision::Commit
        } else {
            return Vec::new();
        };
        self.phase = CoordinatorPhase::Deciding { decision };
        vec![Command::ProposeRecord(RecordEntry::Decide { decision })]
    }

    /// The coordinator has waited too long: for votes (while preparing) or, after a restart,
    /// for an undecided record to be finished. Proposes to abort; in other phases does nothing.
    pub fn on_timeout(&mut self) -> Vec<Command> {
        match self.phase {
            CoordinatorPhase::Preparing { .. } | CoordinatorPhase::Recovering => {
                self.phase = CoordinatorPhase::Deciding { decision: Decision::Abort };
                vec![Command::ProposeRecord(RecordEntry::Decide { decision: Decision::Abort })]
            }
            _ => Vec::new(),
        }
    }
}

/// The coordinator's shard answers a participant's `Resolve`: with the recorded decision if
/// there is one, otherwise by proposing to abort (the coordinator, if it is alive, then sends the
/// decision that the record ends up with, to every participant). Runs on whichever node leads
/// the coordinator's shard, whether or not the coordinator itself survived.
pub fn resolve(record: Option<&TxnRecord>, from: ShardId) -> Vec<Command> {
    match record.and_then(TxnRecord::decision) {
        Some(decision) => vec![Command::Send {
            to: Role::Participant(from),
            message: Message::Decision { decision },
        }],
        None => vec![Command::ProposeRecord(RecordEntry::Decide { decision: Decision::Abort })],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: ShardId = ShardId(0);
    const P1: ShardId = ShardId(1);
    const P2: ShardId = ShardId(2);

    fn w(k: u8) -> Vec<Write> {
        vec![Write { key: vec![k], value: vec![k] }]
    }

    fn decide(decision: Decision) -> RecordEntry {
        RecordEntry::Decide { decision }
    }

    #[test]
    fn the_first_decision_wins() {
        let begun = apply_record_entry(None, &RecordEntry::Begin { participants: vec![P1] });
        let aborted = apply_record_entry(Some(&begun), &decide(Decision::Abort));
        assert_eq!(aborted.decision(), Some(Decision::Abort));
        // The coordinator's commit, ordered after recovery's abort, changes nothing.
        assert_eq!(apply_record_entry(Some(&aborted), &decide(Decision::Commit)), aborted);
        // Nor does a late Begin.
        let again =
            apply_record_entry(Some(&aborted), &RecordEntry::Begin { participants: vec![] });
        assert_eq!(again, aborted);
        // Recovery of a transaction it never saw begin records an abort.
        let orphan = apply_record_entry(None, &decide(Decision::Abort));
        assert_eq!(orphan.decision(), Some(Decision::Abort));
    }

    #[test]
    fn the_coordinator_sends_a_decision_only_once_it_is_applied() {
        let (mut c, cmds) = Coordinator::begin(C, vec![(P1, w(1)), (P2, w(2))]);
        assert_eq!(
            cmds,
            vec![Command::ProposeRecord(RecordEntry::Begin { participants: vec![P1, P2] })]
        );
        let begun = TxnRecord::Begun { participants: vec![P1, P2] };
        let prepares = c.on_record_applied(&begun);
        assert_eq!(prepares.len(), 2);
        assert!(c.on_vote(P1, Vote::Yes).is_empty());
        assert!(c.on_vote(P1, Vote::Yes).is_empty(), "a repeated vote counts once");
        assert_eq!(
            c.on_vote(P2, Vote::Yes),
            vec![Command::ProposeRecord(decide(Decision::Commit))]
        );
        assert_eq!(c.phase(), &CoordinatorPhase::Deciding { decision: Decision::Commit });
        // Recovery's abort was applied first: the coordinator sends abort, not its commit.
        let aborted = TxnRecord::Decided { participants: vec![P1, P2], decision: Decision::Abort };
        let sent = c.on_record_applied(&aborted);
        let abort = Message::Decision { decision: Decision::Abort };
        assert_eq!(
            sent,
            vec![
                Command::Send { to: Role::Participant(P1), message: abort.clone() },
                Command::Send { to: Role::Participant(P2), message: abort },
            ]
        );
        assert!(c.on_record_applied(&aborted).is_empty(), "sent once");
    }

    #[test]
    fn a_no_vote_or_a_timeout_aborts() {
        let (mut c, _) = Coordinator::begin(C, vec![(P1, w(1)), (P2, w(2))]);
        c.on_record_applied(&TxnRecord::Begun { participants: vec![P1, P2] });
        assert_eq!(c.on_vote(P2, Vote::No), vec![Command::ProposeRecord(decide(Decision::Abort))]);
        let (mut c, _) = Coordinator::begin(C, vec![(P1, w(1))]);
        assert!(c.on_timeout().is_empty(), "no timeout before the record exists");
        c.on_record_applied(&TxnRecord::Begun { participants: vec![P1] });
        assert_eq!(c.on_timeout(), vec![Command::ProposeRecord(decide(Decision::Abort))]);
    }

    #[test]
    fn recovery_aborts_undecided_records_and_resends_decided_ones() {
        let begun = TxnRecord::Begun { participants: vec![P1] };
        let (mut c, cmds) = Coordinator::recover(C, Some(&begun));
        assert!(cmds.is_empty());
        assert_eq!(c.on_timeout(), vec![Command::ProposeRecord(decide(Decision::Abort))]);
        let committed = TxnRecord::Decided { participants: vec![P1], decision: Decision::Commit };
        let (_, cmds) = Coordinator::recover(C, Some(&committed));
        let commit = Message::Decision { decision: Decision::Commit };
        assert_eq!(
            cmds,
            vec![Command::Send { to: Role::Participant(P1), message: commit.clone() }]
        );
        assert_eq!(resolve(Some(&committed), P1), cmds);
        assert_eq!(
            resolve(Some(&begun), P1),
            vec![Command::ProposeRecord(decide(Decision::Abort))]
        );
        let (c, cmds) = Coordinator::recover(C, None);
        assert!(cmds.is_empty());
        assert_eq!(c.phase(), &CoordinatorPhase::Abandoned);
    }
}
