//! Proof bundles end to end: building, both encodings, and every verdict of `verify_bundle`.

mod common;

use blockdb_verifier::bundle::{BUNDLE_FORMAT, BUNDLE_LEN_MAX};
use blockdb_verifier::{
    BundleError, ChainError, CheckpointChain, ConsistencyStatus, ExtendError, LogIndex,
    PolicyError, ProofBundle, ProofError, ShardId, TreeSize, verify_bundle,
};
use common::{TestLog, other_signer, policy_of, test_signer};

fn log(n: usize) -> TestLog {
    TestLog::new(0, n, vec![test_signer()])
}

#[test]
fn a_valid_bundle_verifies_and_returns_the_record() {
    let log = log(21);
    let policy = policy_of(&[&test_signer()], 1);
    for (index, size) in [(0, 1), (0, 21), (13, 21), (20, 21), (7, 8)] {
        let bundle = log.bundle(index, size, None);
        let v = verify_bundle(&bundle, &policy, None).expect("verifies");
        assert_eq!(v.record.key, log.records[index].0);
        assert_eq!(v.record.value.as_deref(), Some(log.records[index].1.as_slice()));
        assert_eq!(v.log_index, LogIndex(index as u64));
        assert_eq!(v.shard, ShardId(0));
        assert_eq!(v.checkpoint.checkpoint.size, TreeSize(size as u64));
        assert_eq!(v.consistency, ConsistencyStatus::NoTrustedState);
    }
}

#[test]
fn json_and_binary_forms_round_trip() {
    let log = log(11);
    for trusted in [None, Some(3)] {
        let bundle = log.bundle(4, 11, trusted);
        let json = bundle.to_json().expect("encodes");
        assert!(json.contains(BUNDLE_FORMAT));
        assert_eq!(ProofBundle::from_json(json.as_bytes()).expect("parses"), bundle);
        assert_eq!(ProofBundle::parse(json.as_bytes()).expect("parses"), bundle);
        let bin = bundle.to_binary().expect("encodes");
        assert!(bin.starts_with(b"BDPB"));
        assert_eq!(ProofBundle::from_binary(&bin).expect("parses"), bundle);
        assert_eq!(ProofBundle::parse(&bin).expect("parses"), bundle);
    }
}

#[test]
fn consistency_with_the_trusted_checkpoint() {
    let log = log(30);
    let policy = policy_of(&[&test_signer()], 1);
    let trusted = log.checkpoint(17);

    // A larger tree with the proof from the trusted size.
    let v = verify_bundle(&log.bundle(20, 30, Some(17)), &policy, Some(&trusted)).expect("ok");
    assert_eq!(v.consistency, ConsistencyStatus::Proven { from: TreeSize(17) });
    // The same tree.
    let v = verify_bundle(&log.bundle(3, 17, None), &policy, Some(&trusted)).expect("ok");
    assert_eq!(v.consistency, ConsistencyStatus::SameTree);
    // A larger tree without a proof, or with a proof from another size.
    let e =
        verify_bundle(&log.bundle(20, 30, None), &policy, Some(&trusted)).expect_err("no proof");
    assert!(matches!(e, BundleError::Consistency(ExtendError::MissingProof { .. })), "{e}");
    let e =
        verify_bundle(&log.bundle(20, 30, Some(16)), &policy, Some(&trusted)).expect_err("sizes");
    assert!(matches!(e, BundleError::Consistency(ExtendError::ProofSizes { .. })), "{e}");
    // An older checkpoint than the trusted one.
    let e = verify_bundle(&log.bundle(3, 10, None), &policy, Some(&trusted)).expect_err("stale");
    assert!(matches!(e, BundleError::Consistency(ExtendError::Stale { .. })), "{e}");
    assert!(!e.is_fork() && !e.is_malformed());
    // The empty tree is extended by every tree.
    let empty = log.checkpoint(0);
    let v = verify_bundle(&log.bundle(3, 10, None), &policy, Some(&empty)).expect("ok");
    assert_eq!(v.consistency, ConsistencyStatus::FromEmptyTree);
    // ... but a proof sent with it must be empty, and the empty tree has the empty root.
    let mut b = log.bundle(3, 10, Some(4));
    if let Some(p) = b.consistency_proof.as_mut() {
        p.from_size = TreeSize(0);
    }
    let e = verify_bundle(&b, &policy, Some(&empty)).expect_err("non-empty proof");
    assert!(matches!(e, BundleError::Consistency(ExtendError::Inconsistent { .. })), "{e}");
    let mut not_empty = empty.clone();
    not_empty.root = log.checkpoint(1).root;
    let e = verify_bundle(&log.bundle(3, 10, None), &policy, Some(&not_empty)).expect_err("root");
    assert!(matches!(e, BundleError::Consistency(ExtendError::BadEmptyRoot(_))), "{e}");
}

#[test]
fn a_fork_is_reported_as_a_fork() {
    let honest = log(30);
    // The same log signer, a history that differs from index 12 on.
    let mut forked = TestLog::new(0, 12, vec![test_signer()]);
    for i in 12..30 {
        forked.append(b"forked", format!("other {i}").as_bytes());
    }
    let policy = policy_of(&[&test_signer()], 1);

    // Same size, different roots.
    let e = verify_bundle(&forked.bundle(2, 20, None), &policy, Some(&honest.checkpoint(20)))
        .expect_err("fork");
    assert!(matches!(e, BundleError::Consistency(ExtendError::Fork { .. })), "{e}");
    assert!(e.is_fork());
    // A larger forked tree: no consistency proof from the trusted honest root can verify.
    let e = verify_bundle(&forked.bundle(2, 29, Some(20)), &policy, Some(&honest.checkpoint(20)))
        .expect_err("fork");
    assert!(matches!(e, BundleError::Consistency(ExtendError::Inconsistent { .. })), "{e}");
    assert!(e.is_fork());
    // Before the fork point, both logs agree.
    verify_bundle(&forked.bundle(2, 29, Some(11)), &policy, Some(&honest.checkpoint(11)))
        .expect("shared prefix");
}

#[test]
fn the_record_must_match_its_leaf() {
    let log = log(9);
    let policy = policy_of(&[&test_signer()], 1);
    let good = log.bundle(5, 9, None);

    let mut b = good.clone();
    b.record.value = Some(b"not the value".to_vec());
    let e = verify_bundle(&b, &policy, None).expect_err("value");
    assert_eq!(e, BundleError::RecordMismatch { field: "value length" });

    let mut b = good.clone();
    let v = b.record.value.as_mut().expect("value");
    v[0] ^= 1;
    assert_eq!(
        verify_bundle(&b, &policy, None),
        Err(BundleError::RecordMismatch { field: "value digest" })
    );

    let mut b = good.clone();
    b.record.key = b"key-other".to_vec();
    assert_eq!(verify_bundle(&b, &policy, None), Err(BundleError::RecordMismatch { field: "key" }));

    let mut b = good.clone();
    b.record.version += 1;
    assert_eq!(
        verify_bundle(&b, &policy, None),
        Err(BundleError::RecordMismatch { field: "version" })
    );

    // A redacted value: the leaf still proves key, version and digest.
    let mut b = good.clone();
    b.record.value = None;
    let v = verify_bundle(&b, &policy, None).expect("redacted verifies");
    assert_eq!(v.record.value, None);

    // A leaf that claims another index is not in the tree there.
    let mut b = good.clone();
    b.leaf.log_index = LogIndex(6);
    let e = verify_bundle(&b, &policy, None).expect_err("index");
    assert!(
        matches!(e, BundleError::Inclusion { error: ProofError::RootMismatch { .. }, .. }),
        "{e}"
    );
    b.leaf.log_index = LogIndex(9);
    let e = verify_bundle(&b, &policy, None).expect_err("index");
    assert!(
        matches!(e, BundleError::Inclusion { error: ProofError::IndexOutOfRange { .. }, .. }),
        "{e}"
    );
}

#[test]
fn the_checkpoint_must_be_of_the_leafs_shard_and_trusted() {
    let shard0 = log(9);
    let shard1 = TestLog::new(1, 9, vec![test_signer()]);
    let policy = policy_of(&[&test_signer()], 1);
    // Leaf of shard 0 against shard 1's checkpoint.
    let mut b = shard0.bundle(2, 9, None);
    b.checkpoint = shard1.signed(9);
    assert!(matches!(verify_bundle(&b, &policy, None), Err(BundleError::ShardMismatch { .. })));

    // Signed by a key we do not trust.
    let stranger = other_signer("stranger.example");
    let policy_stranger = policy_of(&[&stranger], 1);
    let e =
        verify_bundle(&shard0.bundle(2, 9, None), &policy_stranger, None).expect_err("untrusted");
    assert!(matches!(e, BundleError::Policy(_)), "{e}");

    // Two of two trusted keys: one signature is not enough, a cosigned checkpoint is.
    let two = policy_of(&[&test_signer(), &stranger], 2);
    let e = verify_bundle(&shard0.bundle(2, 9, None), &two, None).expect_err("threshold");
    assert!(matches!(e, BundleError::Policy(PolicyError::NotEnoughSignatures { got: 1, need: 2 })));
    let cosigned = TestLog::new(0, 9, vec![test_signer(), stranger]);
    let v = verify_bundle(&cosigned.bundle(2, 9, None), &two, None).expect("cosigned");
    assert_eq!(v.checkpoint.signed_by.len(), 2);
}

#[test]
fn malformed_bundles_are_refused_as_malformed() {
    let good = log(5).bundle(1, 5, None);
    let json: serde_json::Value =
        serde_json::from_str(&good.to_json().expect("json")).expect("json value");
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = json.clone();
        f(&mut v);
        ProofBundle::parse(v.to_string().as_bytes())
    };
    let cases: Vec<(&str, Result<ProofBundle, BundleError>)> = vec![
        ("unknown field", edit(&|v| v["extra"] = 1.into())),
        ("format", edit(&|v| v["format"] = "blockdb-proof-bundle/v9".into())),
        ("leaf base64", edit(&|v| v["leaf"] = "***".into())),
        ("leaf bytes", edit(&|v| v["leaf"] = "AAAA".into())),
        ("proof hex", edit(&|v| v["inclusion_proof"][0] = "00".into())),
        ("checkpoint", edit(&|v| v["checkpoint"] = "nonsense".into())),
        ("value base64", edit(&|v| v["record"]["value"] = "!".into())),
        ("empty key", edit(&|v| v["record"]["key"] = "".into())),
        ("not json", ProofBundle::parse(b"{")),
        ("empty", ProofBundle::parse(b"")),
        ("binary version", ProofBundle::parse(b"BDPB\x02")),
        ("too large", ProofBundle::parse(&vec![b' '; BUNDLE_LEN_MAX + 1])),
    ];
    for (what, result) in cases {
        let e = result.expect_err(what);
        assert!(e.is_malformed(), "{what}: {e}");
        assert!(!e.to_string().contains('\n'), "{what}: one-line message");
    }
    // Every truncation of the binary form, and trailing bytes, are refused.
    let bin = good.to_binary().expect("bin");
    for len in 0..bin.len() {
        let e = ProofBundle::from_binary(&bin[..len]).expect_err("truncated");
        assert!(e.is_malformed(), "{len}: {e}");
    }
    let mut longer = bin.clone();
    longer.push(0);
    assert!(ProofBundle::from_binary(&longer).expect_err("trailing").is_malformed());
}

#[test]
fn chains_verify_and_name_the_broken_link() {
    let log = log(40);
    let policy = policy_of(&[&test_signer()], 1);
    let sizes = [1usize, 1, 5, 8, 8, 21, 40];
    let checkpoints = sizes.iter().map(|&s| log.signed(s)).collect();
    let proofs = sizes.windows(2).map(|w| log.consistency(w[0], w[1])).collect();
    let chain = CheckpointChain::new(checkpoints, proofs).expect("shape");
    assert_eq!(chain.verify(&policy).expect("verifies").len(), sizes.len());
    let reparsed = CheckpointChain::from_json(chain.to_json().as_bytes()).expect("parses");
    assert_eq!(reparsed, chain);

    // One wrong proof node in link 3 -> 4.
    let mut proofs = chain.proofs().to_vec();
    proofs[4].hashes[0].0[0] ^= 0x80;
    let broken = CheckpointChain::new(chain.checkpoints().to_vec(), proofs).expect("shape");
    let e = broken.verify(&policy).expect_err("broken");
    assert!(
        matches!(e, ChainError::Link { index: 4, error: ExtendError::Inconsistent { .. } }),
        "{e}"
    );
    // Sizes going backwards.
    let mut cps = chain.checkpoints().to_vec();
    cps.swap(2, 3);
    let e = CheckpointChain::new(cps, chain.proofs().to_vec()).expect("shape").verify(&policy);
    assert!(matches!(e, Err(ChainError::Link { .. })));
    // Shape errors are malformed input.
    let e = CheckpointChain::new(chain.checkpoints().to_vec(), vec![]).expect_err("count");
    assert!(e.is_malformed());
    assert!(CheckpointChain::from_json(b"{\"format\":\"x\"}").expect_err("bad").is_malformed());
}
