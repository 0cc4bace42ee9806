//! The checkpoint-tracking model at CI bounds, against a malicious and an honest log, and the
//! client's broken variants.

mod common;

use blockdb_spec::check::{check, find};
use blockdb_spec::checkpoint::{CheckpointAction, CheckpointConfig, CheckpointModel, ClientBug};
use common::{must_find, must_hold};

fn with_bug(bug: ClientBug) -> CheckpointModel {
    CheckpointModel::new(CheckpointConfig { bug: Some(bug), ..CheckpointConfig::ci_malicious() })
}

#[test]
fn checkpoint_tracking_holds_against_a_malicious_log() {
    let report =
        check("checkpoint/malicious", CheckpointModel::new(CheckpointConfig::ci_malicious()));
    must_hold(&report, 5_000);
}

#[test]
fn checkpoint_tracking_holds_against_an_honest_log() {
    let report = check("checkpoint/honest", CheckpointModel::new(CheckpointConfig::ci_honest()));
    must_hold(&report, 500);
}

#[test]
fn a_client_that_skips_the_consistency_check_trusts_both_branches() {
    let property = "a client never accepts two inconsistent checkpoints for one origin";
    let report = find(
        "checkpoint/skip-consistency-check",
        with_bug(ClientBug::SkipConsistencyCheck),
        property,
    );
    must_find(&report, property);
}

#[test]
fn a_client_that_takes_older_checkpoints_is_rolled_back() {
    let property = "rollback is detected: older checkpoints are refused as stale";
    let report =
        find("checkpoint/no-rollback-check", with_bug(ClientBug::NoRollbackCheck), property);
    must_find(&report, property);
}

#[test]
fn a_client_that_skips_the_signature_check_trusts_an_impostor() {
    let property = "a client only accepts its origin's checkpoints, signed under its policy";
    let report =
        find("checkpoint/skip-signature-check", with_bug(ClientBug::SkipSignatureCheck), property);
    must_find(&report, property);
}

#[test]
fn gossip_that_trusts_a_peer_without_proof_misses_the_fork() {
    let property = "a fork shown to two clients is detected once they compare";
    let report = find(
        "checkpoint/trust-peer-without-proof",
        with_bug(ClientBug::TrustPeerWithoutProof),
        property,
    );
    let path = must_find(&report, property);
    assert!(
        matches!(path.last(), Some(CheckpointAction::Gossip { proof: None, .. })),
        "the fork is missed when the log refuses a proof: {path:?}"
    );
}
