//! A shard's transaction commands on the storage engine: one-round transactions, the
//! coordinator's record, prepared participants and their locks, decisions, restarts — and the
//! decision record's proof checked with the verifier.
#![allow(clippy::unwrap_used)] // Fixtures and helpers outside #[test] functions: a failure is the test failing.

use blockdb_server::ledger::txn::{Check, ParticipantRecord, Refusal, TxnCommand, TxnOutcome};
use blockdb_server::ledger::{Command, NodeKey, Outcome, Shard};
use blockdb_server::storage::{Engine, Options};
use blockdb_twopc::{Decision, Write};
use blockdb_verifier::txn::{DecisionRecord, TxnDecision, decision_key};
use blockdb_verifier::{LogIndex, ShardId, TrustPolicy, TxnId, verify_bundle};
use sha2::{Digest, Sha256};

const CLUSTER: &str = "blockdb.test/c1";
const S0: ShardId = ShardId(0);

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
    key: NodeKey,
    shard: Shard,
    raft_index: u64,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("data"), Options::default()).unwrap();
        let key = NodeKey::load_or_create(&dir.path().join("node.key"), "blockdb.test/n1", || {
            Sha256::digest(b"txn test key").into()
        })
        .unwrap();
        let shard = Shard::open(&engine, CLUSTER, S0).unwrap();
        Fixture { _dir: dir, engine, key, shard, raft_index: 0 }
    }

    fn apply(&mut self, commands: Vec<Command>) -> Vec<Outcome> {
        self.raft_index += 1;
        self.shard.apply(&self.engine, self.raft_index, 1_000 + self.raft_index, &commands).unwrap()
    }

    fn txn(&mut self, command: TxnCommand) -> TxnOutcome {
        match self.apply(vec![Command::Txn(command)]).remove(0) {
            Outcome::Txn(t) => t,
            other => panic!("not a transaction outcome: {other:?}"),
        }
    }

    fn reopen(&mut self) {
        self.shard = Shard::open(&self.engine, CLUSTER, S0).unwrap();
    }

    fn size(&self) -> u64 {
        self.shard.checkpoint().size.0
    }

    fn version(&self, key: &str) -> u64 {
        self.shard.latest_version(&self.engine, key.as_bytes()).unwrap()
    }
}

fn t(n: u8) -> TxnId {
    TxnId([n; 16])
}

fn w(key: &str, value: &str) -> Write {
    Write { key: key.into(), value: value.into() }
}

fn check(key: &str, version: u64) -> Check {
    Check { key: key.into(), version }
}

fn append(key: &str, value: &str) -> Command {
    Command::Append { key: key.into(), value: value.into(), expected_version: None }
}

#[test]
fn a_one_round_transaction_commits_with_a_provable_decision_record_and_only_once() {
    let mut f = Fixture::new();
    f.apply(vec![append("a", "a1")]);
    let apply = TxnCommand::Apply {
        txn: t(1),
        reads: vec![b"a".to_vec(), b"b".to_vec()],
        checks: vec![check("a", 1), check("b", 0)],
        writes: vec![w("a", "a2"), w("b", "b1")],
    };
    let out = f.txn(apply.clone());
    let TxnOutcome::Committed { reads, writes, decision } = out else { panic!("{out:?}") };
    assert_eq!(reads, vec![1, 0], "reads see the state before the writes");
    assert_eq!(writes, vec![(2, LogIndex(1)), (1, LogIndex(2))]);
    assert_eq!(decision, Some(LogIndex(3)));
    assert_eq!(f.size(), 4);

    // The records and the decision record carry the transaction id, and prove.
    let view = f.shard.view(&f.engine, &f.key);
    let policy = TrustPolicy::new(vec![f.key.verifier_key().clone()], 1).unwrap();
    for (key, version) in [("a", 2), ("b", 1)] {
        let b = view.bundle(&f.engine, key.as_bytes(), Some(version), None).unwrap();
        assert_eq!(b.leaf.txn_id, t(1));
        verify_bundle(&b, &policy, None).unwrap();
    }
    let d = view.bundle(&f.engine, &decision_key(S0, t(1)), None, None).unwrap();
    verify_bundle(&d, &policy, None).unwrap();
    assert_eq!(d.leaf.txn_id, t(1));
    let record = DecisionRecord::decode(d.record.value.as_deref().unwrap()).unwrap();
    assert_eq!(record.decision, TxnDecision::Commit);
    assert_eq!(record.participants.len(), 1);
    assert_eq!((record.participants[0].shard, record.participants[0].writes), (S0, 2));

    // The same transaction again (a retried proposal) changes nothing.
    assert_eq!(f.txn(apply), TxnOutcome::AlreadyDecided(Decision::Commit));
    assert_eq!(f.size(), 4);
    assert_eq!(f.version("a"), 2);
}

#[test]
fn a_failed_check_refuses_the_whole_transaction_and_nothing_is_written() {
    let mut f = Fixture::new();
    f.apply(vec![append("a", "a1")]);
    let apply = TxnCommand::Apply {
        txn: t(2),
        reads: vec![],
        checks: vec![check("b", 0), check("a", 0)],
        writes: vec![w("b", "b1"), w("a", "again")],
    };
    let out = f.txn(apply.clone());
    assert_eq!(
        out,
        TxnOutcome::Refused(Refusal::Conflict { key: b"a".to_vec(), expected: 0, current: 1 })
    );
    assert_eq!(f.size(), 1);
    assert_eq!(f.version("b"), 0);
    assert_eq!(f.txn(apply), TxnOutcome::AlreadyDecided(Decision::Abort));
    assert_eq!(f.size(), 1);
}

#[test]
fn prepared_locks_hold_off_conflicting_writes_until_the_decision() {
    let mut f = Fixture::new();
    f.apply(vec![append("x", "x1"), append("r", "r1")]);
    let prepare = TxnCommand::Prepare {
        txn: t(1),
        coordinator: ShardId(1),
        checks: vec![check("r", 1), check("x", 1)],
        writes: vec![w("x", "x2")],
    };
    assert_eq!(f.txn(prepare.clone()), TxnOutcome::Prepared(true));
    assert_eq!(f.txn(prepare.clone()), TxnOutcome::Prepared(true), "a repeat votes yes again");
    assert!(f.shard.txns().prepared().contains_key(&t(1)));

    // A single write of a locked key (shared or exclusive) is refused; other keys are free.
    let out = f.apply(vec![append("x", "no"), append("r", "no"), append("free", "yes")]);
    assert_eq!(out[0], Outcome::Locked { holder: t(1) });
    assert_eq!(out[1], Outcome::Locked { holder: t(1) });
    assert!(matches!(out[2], Outcome::Committed { version: 1, .. }));

    // A one-round transaction that reads the written key is refused; one that only reads the
    // shared-locked key goes ahead.
    let out = f.txn(TxnCommand::Apply {
        txn: t(2),
        reads: vec![b"x".to_vec()],
        checks: vec![],
        writes: vec![],
    });
    assert_eq!(out, TxnOutcome::Refused(Refusal::Locked { key: b"x".to_vec(), holder: t(1) }));
    let out = f.txn(TxnCommand::Apply {
        txn: t(3),
        reads: vec![b"r".to_vec()],
        checks: vec![],
        writes: vec![],
    });
    assert_eq!(out, TxnOutcome::Committed { reads: vec![1], writes: vec![], decision: None });

    // Another prepare sharing the read lock is fine; one writing a locked key aborts.
    let shares = TxnCommand::Prepare {
        txn: t(4),
        coordinator: ShardId(1),
        checks: vec![check("r", 1)],
        writes: vec![w("y", "y1")],
    };
    assert_eq!(f.txn(shares), TxnOutcome::Prepared(true));
    let clashes = TxnCommand::Prepare {
        txn: t(5),
        coordinator: ShardId(1),
        checks: vec![],
        writes: vec![w("r", "r2")],
    };
    assert!(matches!(f.txn(clashes.clone()), TxnOutcome::Refused(Refusal::Locked { .. })));
    assert_eq!(f.txn(clashes), TxnOutcome::Prepared(false), "it stays aborted");

    // The locks survive a restart: they are rebuilt from the prepare records.
    f.reopen();
    assert_eq!(f.shard.txns().prepared().len(), 2);
    assert_eq!(f.apply(vec![append("x", "no")])[0], Outcome::Locked { holder: t(1) });

    // Commit writes the prepared records with the transaction's id and frees the keys.
    let size = f.size();
    let out = f.txn(TxnCommand::Finish { txn: t(1), decision: Decision::Commit });
    assert_eq!(
        out,
        TxnOutcome::Finished { decision: Decision::Commit, writes: vec![(2, LogIndex(size))] }
    );
    assert_eq!(f.version("x"), 2);
    let view = f.shard.view(&f.engine, &f.key);
    assert_eq!(view.bundle(&f.engine, b"x", Some(2), None).unwrap().leaf.txn_id, t(1));
    assert!(matches!(f.apply(vec![append("x", "x3")])[0], Outcome::Committed { version: 3, .. }));
    // r is still shared-locked by t(4).
    assert_eq!(f.apply(vec![append("r", "no")])[0], Outcome::Locked { holder: t(4) });
    let out = f.txn(TxnCommand::Finish { txn: t(4), decision: Decision::Abort });
    assert_eq!(out, TxnOutcome::Finished { decision: Decision::Abort, writes: vec![] });
    assert_eq!(f.version("y"), 0, "an aborted participant writes nothing");
    assert!(matches!(f.apply(vec![append("r", "r2")])[0], Outcome::Committed { version: 2, .. }));
    assert!(f.shard.txns().prepared().is_empty());
    assert!(f.shard.txns().is_empty());

    // A repeated decision changes nothing.
    let size = f.size();
    let out = f.txn(TxnCommand::Finish { txn: t(1), decision: Decision::Commit });
    assert_eq!(out, TxnOutcome::Finished { decision: Decision::Commit, writes: vec![] });
    assert_eq!(f.size(), size);
}

#[test]
fn a_prepare_whose_checks_fail_aborts_and_an_abort_before_a_prepare_sticks() {
    let mut f = Fixture::new();
    f.apply(vec![append("k", "k1")]);
    let stale = TxnCommand::Prepare {
        txn: t(1),
        coordinator: S0,
        checks: vec![check("k", 0)],
        writes: vec![w("k", "k2")],
    };
    assert_eq!(
        f.txn(stale),
        TxnOutcome::Refused(Refusal::Conflict { key: b"k".to_vec(), expected: 0, current: 1 })
    );
    assert!(f.shard.txns().is_empty());

    // Recovery aborted t(2) before its prepare arrived: the late prepare votes no.
    let out = f.txn(TxnCommand::Finish { txn: t(2), decision: Decision::Abort });
    assert_eq!(out, TxnOutcome::Finished { decision: Decision::Abort, writes: vec![] });
    let late = TxnCommand::Prepare {
        txn: t(2),
        coordinator: S0,
        checks: vec![],
        writes: vec![w("k", "late")],
    };
    assert_eq!(f.txn(late), TxnOutcome::Prepared(false));
    assert!(f.shard.txns().is_empty());
    assert_eq!(
        blockdb_server::ledger::txn::read_participant(&f.engine, S0, t(2)).unwrap(),
        ParticipantRecord::Aborted
    );

    // A commit for a participant that never prepared is a protocol violation: refused, logged,
    // nothing written.
    let size = f.size();
    let out = f.txn(TxnCommand::Finish { txn: t(3), decision: Decision::Commit });
    assert!(matches!(out, TxnOutcome::Contradiction(_)), "{out:?}");
    assert_eq!(f.size(), size);
}

#[test]
fn the_first_decision_of_a_record_wins_and_a_commit_is_provable() {
    let mut f = Fixture::new();
    let begin = TxnCommand::Begin { txn: t(1), participants: vec![S0, ShardId(1)] };
    assert_eq!(f.txn(begin.clone()), TxnOutcome::Record(None));
    assert_eq!(f.txn(begin.clone()), TxnOutcome::Record(None));
    assert!(f.shard.txns().undecided().contains_key(&t(1)));
    f.reopen();
    assert!(f.shard.txns().undecided().contains_key(&t(1)), "found again after a restart");
    let commit = TxnCommand::Decide {
        txn: t(1),
        decision: Decision::Commit,
        writes: vec![(ShardId(1), 3), (S0, 1)],
    };
    assert_eq!(f.txn(commit.clone()), TxnOutcome::Record(Some(Decision::Commit)));
    assert!(f.shard.txns().undecided().is_empty());
    assert_eq!(f.size(), 1, "the decision record");
    let abort = TxnCommand::Decide { txn: t(1), decision: Decision::Abort, writes: vec![] };
    assert_eq!(f.txn(abort), TxnOutcome::Record(Some(Decision::Commit)), "first wins");
    assert_eq!(f.txn(commit), TxnOutcome::Record(Some(Decision::Commit)));
    assert_eq!(f.size(), 1, "written once");
    let view = f.shard.view(&f.engine, &f.key);
    let d = view.bundle(&f.engine, &decision_key(S0, t(1)), None, None).unwrap();
    let record = DecisionRecord::decode(d.record.value.as_deref().unwrap()).unwrap();
    let parts: Vec<_> = record.participants.iter().map(|p| (p.shard, p.writes)).collect();
    assert_eq!(parts, vec![(S0, 1), (ShardId(1), 3)]);

    // Recovery's abort first: the coordinator's commit that comes later loses, and an abort
    // writes no decision record.
    f.txn(TxnCommand::Begin { txn: t(2), participants: vec![ShardId(1)] });
    let abort = TxnCommand::Decide { txn: t(2), decision: Decision::Abort, writes: vec![] };
    assert_eq!(f.txn(abort), TxnOutcome::Record(Some(Decision::Abort)));
    let commit =
        TxnCommand::Decide { txn: t(2), decision: Decision::Commit, writes: vec![(ShardId(1), 1)] };
    assert_eq!(f.txn(commit), TxnOutcome::Record(Some(Decision::Abort)));
    assert_eq!(f.size(), 1);
    // A begin after recovery aborted a record it never saw leaves it aborted.
    let abort = TxnCommand::Decide { txn: t(3), decision: Decision::Abort, writes: vec![] };
    assert_eq!(f.txn(abort), TxnOutcome::Record(Some(Decision::Abort)));
    let begin = TxnCommand::Begin { txn: t(3), participants: vec![ShardId(1)] };
    assert_eq!(f.txn(begin), TxnOutcome::Record(Some(Decision::Abort)));
    assert!(f.shard.txns().undecided().is_empty());
}

#[test]
fn transaction_steps_and_single_writes_in_one_entry_see_each_other() {
    let mut f = Fixture::new();
    // One entry: a write, a prepare that checks it, a write refused by the lock, the commit.
    let out = f.apply(vec![
        append("k", "k1"),
        Command::Txn(TxnCommand::Prepare {
            txn: t(1),
            coordinator: S0,
            checks: vec![check("k", 1)],
            writes: vec![w("k", "k2")],
        }),
        append("k", "refused"),
        Command::Txn(TxnCommand::Finish { txn: t(1), decision: Decision::Commit }),
        append("k", "k3"),
    ]);
    assert!(matches!(out[0], Outcome::Committed { version: 1, .. }));
    assert_eq!(out[1], Outcome::Txn(TxnOutcome::Prepared(true)));
    assert_eq!(out[2], Outcome::Locked { holder: t(1) });
    assert!(matches!(out[3], Outcome::Txn(TxnOutcome::Finished { .. })));
    assert!(matches!(out[4], Outcome::Committed { version: 3, .. }));
    f.reopen();
    assert!(f.shard.txns().is_empty());
    assert_eq!(f.version("k"), 3);
}
