//! Transaction receipts end to end: a real receipt over two shard logs verifies, its JSON form
//! round-trips, and every tampering is refused with the error that names it.

mod common;

use blockdb_verifier::txn::RECEIPT_FORMAT;
use blockdb_verifier::{
    BundleError, DecisionError, DecisionRecord, LogIndex, Participant, PolicyError, Receipt,
    ReceiptError, ReceiptPart, ShardId, TreeSize, TrustPolicy, TxnDecision, TxnId, VerifiedWrite,
    decision_key, verify_receipt,
};
use common::{CLUSTER_ORIGIN, TestLog, other_signer, policy_of, test_signer};

const TXN: TxnId = TxnId([0x11; 16]);
const OTHER_TXN: TxnId = TxnId([0x22; 16]);

// Log indices of the fixture's records (see `must_shard0` and `must_shard1`).
const ALICE: usize = 3;
const DECISION: usize = 4;
const OTHER_DECISION: usize = 5;
const BOB: usize = 2;
const DAVE: usize = 3;
const CAROL: usize = 4;

fn must_value(decision: TxnDecision, participants: &[(u32, u32)]) -> Vec<u8> {
    DecisionRecord {
        decision,
        participants: participants
            .iter()
            .map(|&(shard, writes)| Participant { shard: ShardId(shard), writes })
            .collect(),
    }
    .encode()
    .expect("a valid decision record")
}

/// Shard 0, the coordinator: three records outside any transaction (the first with value
/// `first_value`), TXN's write of `acct/alice`, TXN's decision (`decision`, one write in shard 0
/// and two in shard 1), the decision of another transaction, and a later record.
fn must_shard0(first_value: &[u8], decision: TxnDecision) -> TestLog {
    let mut log = TestLog::new(0, 0, vec![test_signer()]);
    log.append(b"key-0", first_value);
    log.append(b"key-1", b"value 1");
    log.append(b"key-2", b"value 2");
    assert_eq!(log.append_in_txn(b"acct/alice", b"90", TXN), ALICE);
    let value = must_value(decision, &[(0, 1), (1, 2)]);
    assert_eq!(log.append_in_txn(&decision_key(ShardId(0), TXN), &value, TXN), DECISION);
    let other = must_value(TxnDecision::Commit, &[(1, 1)]);
    let key = decision_key(ShardId(0), OTHER_TXN);
    assert_eq!(log.append_in_txn(&key, &other, OTHER_TXN), OTHER_DECISION);
    log.append(b"key-3", b"after");
    log
}

/// Shard 1, a participant: two records outside any transaction, TXN's write of `acct/bob`, the
/// other transaction's write of `acct/dave`, and TXN's write of `acct/carol`.
fn must_shard1() -> TestLog {
    let mut log = TestLog::new(1, 2, vec![test_signer()]);
    assert_eq!(log.append_in_txn(b"acct/bob", b"110", TXN), BOB);
    assert_eq!(log.append_in_txn(b"acct/dave", b"7", OTHER_TXN), DAVE);
    assert_eq!(log.append_in_txn(b"acct/carol", b"5", TXN), CAROL);
    log
}

/// TXN's receipt: the decision proven against shard 0 at size 5, alice's write at size 7 (the
/// whole log), and shard 1's two writes at size 5.
fn receipt_of(shard0: &TestLog, shard1: &TestLog) -> Receipt {
    Receipt {
        txn_id: TXN,
        coordinator: ShardId(0),
        decision: shard0.bundle(DECISION, 5, None),
        writes: vec![
            shard0.bundle(ALICE, 7, None),
            shard1.bundle(BOB, 5, None),
            shard1.bundle(CAROL, 5, None),
        ],
    }
}

fn must_receipt() -> Receipt {
    receipt_of(&must_shard0(b"value 0", TxnDecision::Commit), &must_shard1())
}

fn policy() -> TrustPolicy {
    policy_of(&[&test_signer()], 1)
}

fn must_refuse(receipt: &Receipt) -> ReceiptError {
    verify_receipt(receipt, &policy()).expect_err("the receipt must be refused")
}

#[test]
fn a_committed_receipt_verifies() {
    let v = verify_receipt(&must_receipt(), &policy()).expect("verifies");

    // What committed, and where.
    assert_eq!(v.txn_id, TXN);
    assert_eq!(v.coordinator, ShardId(0));
    assert_eq!(v.decision.decision, TxnDecision::Commit);
    assert_eq!(v.decision.participants.len(), 2);
    let write = |shard, key: &[u8], log_index| VerifiedWrite {
        shard: ShardId(shard),
        key: key.to_vec(),
        version: 1,
        log_index: LogIndex(log_index),
    };
    assert_eq!(
        v.writes,
        [
            write(0, b"acct/alice", ALICE as u64),
            write(1, b"acct/bob", BOB as u64),
            write(1, b"acct/carol", CAROL as u64),
        ]
    );

    // The largest checkpoint of each shard: shard 0's decision is proven at size 5, its write at
    // size 7.
    let sizes: Vec<(ShardId, TreeSize)> =
        v.checkpoints.iter().map(|(s, c)| (*s, c.checkpoint.size)).collect();
    assert_eq!(sizes, [(ShardId(0), TreeSize(7)), (ShardId(1), TreeSize(5))]);
    assert_eq!(v.checkpoints[&ShardId(0)].checkpoint.origin, format!("{CLUSTER_ORIGIN}/shard/0"));
}

#[test]
fn the_json_form_round_trips() {
    let receipt = must_receipt();
    let json = receipt.to_json().expect("encodes");
    assert!(json.contains(RECEIPT_FORMAT));
    assert!(json.contains(&"11".repeat(16)), "the txn id is 32 hex digits");
    let back = Receipt::from_json(json.as_bytes()).expect("parses");
    assert_eq!(back, receipt);
    verify_receipt(&back, &policy()).expect("the parsed receipt verifies");

    // The txn id is read in either case.
    let upper = json.replace(&"11".repeat(16), &"AB".repeat(16));
    assert_eq!(Receipt::from_json(upper.as_bytes()).expect("parses").txn_id, TxnId([0xab; 16]));
}

#[test]
fn malformed_json_is_refused() {
    let json: serde_json::Value =
        serde_json::from_str(&must_receipt().to_json().expect("encodes")).expect("JSON");
    let refuse = |doc: &serde_json::Value| {
        let e = Receipt::from_json(doc.to_string().as_bytes()).expect_err("malformed");
        assert!(e.is_malformed(), "{e}");
        e
    };

    for text in ["", "{", "[]", "null", "{\"format\":\"blockdb-txn-receipt/v1\"}"] {
        let e = Receipt::from_json(text.as_bytes()).expect_err("not a receipt");
        assert!(matches!(e, ReceiptError::Json(_)), "{text:?}: {e}");
    }
    let mut doc = json.clone();
    doc["extra"] = serde_json::json!(1);
    assert!(matches!(refuse(&doc), ReceiptError::Json(_)));
    for bad in ["11", "zz".repeat(16).as_str(), "11".repeat(17).as_str()] {
        let mut doc = json.clone();
        doc["txn_id"] = serde_json::json!(bad);
        assert!(matches!(refuse(&doc), ReceiptError::Json(_)), "{bad:?}");
    }
    let mut doc = json.clone();
    doc["coordinator"] = serde_json::json!(-1);
    assert!(matches!(refuse(&doc), ReceiptError::Json(_)));
    let mut doc = json.clone();
    doc["format"] = serde_json::json!("blockdb-txn-receipt/v2");
    assert!(matches!(refuse(&doc), ReceiptError::UnknownFormat(_)));

    // A malformed bundle inside is named.
    let mut doc = json.clone();
    doc["writes"][1]["leaf"] = serde_json::json!("AAAA");
    let e = refuse(&doc);
    assert!(
        matches!(
            e,
            ReceiptError::Bundle { part: ReceiptPart::Write(1), error: BundleError::Leaf(_) }
        ),
        "{e}"
    );
    let mut doc = json.clone();
    doc["decision"]["format"] = serde_json::json!("blockdb-proof-bundle/v9");
    let e = refuse(&doc);
    assert!(
        matches!(
            e,
            ReceiptError::Bundle {
                part: ReceiptPart::Decision,
                error: BundleError::UnknownFormat(_)
            }
        ),
        "{e}"
    );
    let mut doc = json;
    doc["writes"][0]["checkpoint"] = serde_json::json!("not a note");
    let e = refuse(&doc);
    assert!(matches!(e, ReceiptError::Bundle { part: ReceiptPart::Write(0), .. }), "{e}");
}

#[test]
fn a_flipped_value_byte_in_a_write_is_refused() {
    let mut receipt = must_receipt();
    if let Some(value) = receipt.writes[1].record.value.as_mut() {
        value[0] ^= 0x01;
    }
    let e = must_refuse(&receipt);
    assert!(
        matches!(
            e,
            ReceiptError::Bundle {
                part: ReceiptPart::Write(1),
                error: BundleError::RecordMismatch { field: "value digest" }
            }
        ),
        "{e}"
    );
    assert!(!e.is_malformed() && !e.is_fork());
}

#[test]
fn a_write_of_another_transaction_is_refused() {
    // A real record of the other transaction, proven in shard 1's log.
    let shard1 = must_shard1();
    let mut receipt = receipt_of(&must_shard0(b"value 0", TxnDecision::Commit), &shard1);
    receipt.writes[2] = shard1.bundle(DAVE, 5, None);
    assert_eq!(
        must_refuse(&receipt),
        ReceiptError::WriteTxnId { position: 2, expected: TXN, got: OTHER_TXN }
    );

    // Rewriting a leaf's transaction id breaks its inclusion proof.
    let mut receipt = must_receipt();
    receipt.writes[0].leaf.txn_id = OTHER_TXN;
    let e = must_refuse(&receipt);
    assert!(
        matches!(
            e,
            ReceiptError::Bundle {
                part: ReceiptPart::Write(0),
                error: BundleError::Inclusion { .. }
            }
        ),
        "{e}"
    );
}

#[test]
fn an_aborted_transaction_is_refused() {
    let receipt = receipt_of(&must_shard0(b"value 0", TxnDecision::Abort), &must_shard1());
    assert_eq!(must_refuse(&receipt), ReceiptError::NotCommitted { decision: TxnDecision::Abort });
}

#[test]
fn the_decision_of_another_transaction_is_refused() {
    let shard0 = must_shard0(b"value 0", TxnDecision::Commit);
    let mut receipt = receipt_of(&shard0, &must_shard1());
    receipt.decision = shard0.bundle(OTHER_DECISION, 7, None);
    let e = must_refuse(&receipt);
    assert_eq!(
        e,
        ReceiptError::DecisionKey {
            txn_id: TXN,
            coordinator: ShardId(0),
            got: decision_key(ShardId(0), OTHER_TXN),
        }
    );
    assert!(e.to_string().contains("\\x00blockdb/txn/"), "{e}");

    // The same decision claimed for another coordinator.
    let mut receipt = receipt_of(&shard0, &must_shard1());
    receipt.coordinator = ShardId(1);
    assert!(matches!(must_refuse(&receipt), ReceiptError::DecisionKey { .. }));
}

#[test]
fn a_decision_record_that_is_not_sound_is_refused() {
    let commit = must_value(TxnDecision::Commit, &[(0, 1), (1, 2)]);
    let mut shard0 = TestLog::new(0, 1, vec![test_signer()]);
    // 1: a decision key naming shard 1, in shard 0's log.
    shard0.append_in_txn(&decision_key(ShardId(1), TXN), &commit, TXN);
    // 2: TXN's decision key, written by another transaction.
    shard0.append_in_txn(&decision_key(ShardId(0), TXN), &commit, OTHER_TXN);
    // 3: a second version of that key.
    shard0.append_in_txn(&decision_key(ShardId(0), TXN), &commit, TXN);
    // 4: a decision key whose value is not a decision record.
    shard0.append_in_txn(&decision_key(ShardId(0), OTHER_TXN), b"commit", OTHER_TXN);
    let receipt = |coordinator: u32, txn_id: TxnId, index: usize| Receipt {
        txn_id,
        coordinator: ShardId(coordinator),
        decision: shard0.bundle(index, 5, None),
        writes: Vec::new(),
    };

    assert_eq!(
        must_refuse(&receipt(1, TXN, 1)),
        ReceiptError::DecisionShard { coordinator: ShardId(1), got: ShardId(0) }
    );
    assert_eq!(
        must_refuse(&receipt(0, TXN, 2)),
        ReceiptError::DecisionTxnId { expected: TXN, got: OTHER_TXN }
    );
    assert_eq!(must_refuse(&receipt(0, TXN, 3)), ReceiptError::DecisionVersion { got: 2 });
    assert!(matches!(
        must_refuse(&receipt(0, OTHER_TXN, 4)),
        ReceiptError::DecisionRecord(DecisionError::UnknownFormat(b'c'))
    ));

    // A redacted decision value cannot be read.
    let mut redacted = must_receipt();
    redacted.decision.record.value = None;
    assert_eq!(must_refuse(&redacted), ReceiptError::DecisionRedacted);

    // The all-zero id is no transaction's.
    let mut none = must_receipt();
    none.txn_id = TxnId::NONE;
    assert_eq!(must_refuse(&none), ReceiptError::NoTxnId);
}

#[test]
fn a_write_left_out_is_refused() {
    let mut receipt = must_receipt();
    receipt.writes.remove(2);
    assert_eq!(
        must_refuse(&receipt),
        ReceiptError::WriteCount { shard: ShardId(1), expected: 2, got: 1 }
    );
    let mut receipt = must_receipt();
    receipt.writes.remove(0);
    assert_eq!(
        must_refuse(&receipt),
        ReceiptError::WriteCount { shard: ShardId(0), expected: 1, got: 0 }
    );
}

#[test]
fn an_extra_write_from_a_non_participant_shard_is_refused() {
    let mut shard2 = TestLog::new(2, 2, vec![test_signer()]);
    let index = shard2.append_in_txn(b"acct/erin", b"1", TXN);
    let mut receipt = must_receipt();
    receipt.writes.push(shard2.bundle(index, 3, None));
    assert_eq!(
        must_refuse(&receipt),
        ReceiptError::NotParticipant { position: 3, shard: ShardId(2) }
    );
}

#[test]
fn a_duplicate_write_is_refused() {
    // The same leaf twice, even when proven against another checkpoint.
    let shard0 = must_shard0(b"value 0", TxnDecision::Commit);
    let mut receipt = receipt_of(&shard0, &must_shard1());
    receipt.writes.push(shard0.bundle(ALICE, 4, None));
    assert_eq!(
        must_refuse(&receipt),
        ReceiptError::DuplicateWrite {
            first: 0,
            second: 3,
            shard: ShardId(0),
            log_index: LogIndex(ALICE as u64),
        }
    );

    // Two versions of one key.
    let mut shard1 = must_shard1();
    let again = shard1.append_in_txn(b"acct/bob", b"120", TXN);
    let mut receipt = receipt_of(&shard0, &shard1);
    receipt.writes[2] = shard1.bundle(again, again + 1, None);
    assert_eq!(
        must_refuse(&receipt),
        ReceiptError::DuplicateKey { first: 1, second: 2, key: b"acct/bob".to_vec() }
    );
}

#[test]
fn a_reserved_key_among_the_writes_is_refused() {
    let mut shard1 = must_shard1();
    let index = shard1.append_in_txn(b"\x00blockdb/other", b"x", TXN);
    let mut receipt = receipt_of(&must_shard0(b"value 0", TxnDecision::Commit), &shard1);
    receipt.writes[2] = shard1.bundle(index, index + 1, None);
    assert_eq!(
        must_refuse(&receipt),
        ReceiptError::ReservedKey { position: 2, key: b"\x00blockdb/other".to_vec() }
    );
}

#[test]
fn a_checkpoint_signed_by_an_unknown_key_is_refused() {
    let unknown = || other_signer("example.com/unknown");

    // Every checkpoint signed by a key the policy does not list.
    let mut shard0 = must_shard0(b"value 0", TxnDecision::Commit);
    shard0.signers = vec![unknown()];
    let e = must_refuse(&receipt_of(&shard0, &must_shard1()));
    assert!(
        matches!(
            e,
            ReceiptError::Bundle { part: ReceiptPart::Decision, error: BundleError::Policy(_) }
        ),
        "{e}"
    );

    // Only shard 1's: the first write there is named.
    let mut shard1 = must_shard1();
    shard1.signers = vec![unknown()];
    let e = must_refuse(&receipt_of(&must_shard0(b"value 0", TxnDecision::Commit), &shard1));
    assert!(
        matches!(
            e,
            ReceiptError::Bundle { part: ReceiptPart::Write(1), error: BundleError::Policy(_) }
        ),
        "{e}"
    );

    // A policy that asks for two signatures refuses checkpoints signed by one trusted key.
    let strict = policy_of(&[&test_signer(), &other_signer("example.com/second")], 2);
    let e = verify_receipt(&must_receipt(), &strict).expect_err("one signature of two");
    assert!(
        matches!(
            e,
            ReceiptError::Bundle {
                part: ReceiptPart::Decision,
                error: BundleError::Policy(PolicyError::NotEnoughSignatures { got: 1, need: 2 })
            }
        ),
        "{e}"
    );
}

#[test]
fn bundles_of_another_cluster_are_refused() {
    let mut shard1 = must_shard1();
    shard1.origin = "example.com/another-cluster/shard/1".to_owned();
    let e = must_refuse(&receipt_of(&must_shard0(b"value 0", TxnDecision::Commit), &shard1));
    assert_eq!(
        e,
        ReceiptError::ClusterMismatch {
            part: ReceiptPart::Write(1),
            expected: CLUSTER_ORIGIN.to_owned(),
            got: "example.com/another-cluster".to_owned(),
        }
    );
}

#[test]
fn two_roots_for_one_size_are_a_fork() {
    // Two shard 0 logs that differ in their first record; both are signed by the trusted key.
    let shard0 = must_shard0(b"value 0", TxnDecision::Commit);
    let forked = must_shard0(b"forked", TxnDecision::Commit);
    let mut receipt = receipt_of(&shard0, &must_shard1());
    receipt.writes[0] = forked.bundle(ALICE, 5, None);
    let e = must_refuse(&receipt);
    assert_eq!(
        e,
        ReceiptError::Fork {
            shard: ShardId(0),
            size: TreeSize(5),
            first: ReceiptPart::Decision,
            second: ReceiptPart::Write(0),
        }
    );
    assert!(e.is_fork() && !e.is_malformed());
}

#[test]
fn blockdb_verify_receipt_checks_a_file_and_a_whole_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = test_signer().verifier_key().to_string();
    let run = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_blockdb-verify"))
            .args(["receipt", file.to_str().expect("utf-8 path"), "--key", &key])
            .output()
            .expect("runs")
    };
    let json = must_receipt().to_json().expect("serializes");
    let good = dir.path().join("receipt.json");
    std::fs::write(&good, &json).expect("write");
    let out = run(&good);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with(&format!("valid: transaction {TXN} committed")), "{text}");
    assert!(text.contains("\"acct/carol\" version 1: shard 1, log index 4"), "{text}");
    // A whole POST /v1/txn answer.
    let answer = format!(r#"{{"txn_id":"{TXN}","reads":[],"writes":[],"receipt":{json}}}"#);
    let whole = dir.path().join("answer.json");
    std::fs::write(&whole, answer).expect("write");
    assert_eq!(run(&whole).status.code(), Some(0));
    // One changed value byte: invalid (exit 1); not a receipt: unusable (exit 2).
    let mut receipt = must_receipt();
    if let Some(v) = receipt.writes[0].record.value.as_mut() {
        v[0] ^= 1;
    }
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, receipt.to_json().expect("serializes")).expect("write");
    let out = run(&bad);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    std::fs::write(&bad, "{}").expect("write");
    assert_eq!(run(&bad).status.code(), Some(2));
}
