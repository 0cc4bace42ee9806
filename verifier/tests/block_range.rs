//! The blocks response (`GET /v1/blocks`): its JSON form, and every verdict of
//! `verify_block_range` on real blocks over a signed test log: a valid range and pages of it, and
//! each kind of breakage (chain, signatures, proofs, shard, origin, forks) caught as itself.

mod common;

use blockdb_verifier::block_range::{BLOCK_RANGE_BYTES_MAX, BLOCK_RANGE_LEN_MAX};
use blockdb_verifier::checkpoint::shard_origin;
use blockdb_verifier::note::NoteError;
use blockdb_verifier::{
    Block, BlockError, BlockRange, BlockRangeError, Checkpoint, CheckpointError, ConsistencyProof,
    Hash, PolicyError, ProofError, ProvenBlock, ShardId, SignedCheckpoint, TreeSize, TrustPolicy,
    VerifiedBlocks, verify_block_range,
};
use common::{TestLog, other_signer, policy_of, test_signer};
use proptest::prelude::*;

/// Record counts of the blocks: 20 records in 6 blocks, of tree sizes 3, 4, 9, 13, 14 and 20.
const BATCHES: [usize; 6] = [3, 1, 5, 4, 1, 6];
/// The log holds a few records past the last block, so a checkpoint can be larger than every
/// block's tree.
const LOG_SIZE: usize = 25;
/// Where the forked history leaves the good one: blocks up to tree size 9 are in both.
const FORK_AT: usize = 9;

fn good_log() -> TestLog {
    TestLog::new(0, LOG_SIZE, vec![test_signer()])
}

/// A second history of shard 0 signed by the same key: the first `FORK_AT` records, then others.
fn forked_log() -> TestLog {
    let mut log = TestLog::new(0, FORK_AT, vec![test_signer()]);
    for i in FORK_AT..LOG_SIZE {
        log.append(b"evil", format!("rewrite {i}").as_bytes());
    }
    log
}

fn policy() -> TrustPolicy {
    policy_of(&[&test_signer()], 1)
}

/// The whole chain proven against the checkpoint of size `LOG_SIZE`, as the server sends it.
fn must_range() -> (TestLog, Vec<Block>, BlockRange) {
    let log = good_log();
    let blocks = log.must_blocks(&BATCHES);
    let range = log.block_range(&blocks, LOG_SIZE, None);
    (log, blocks, range)
}

/// The consistency proof of item 2 (block at height 3, tree size 9).
fn proof_of(range: &mut BlockRange) -> &mut ConsistencyProof {
    range.blocks[2].consistency_proof.as_mut().expect("a proof")
}

fn verify(range: &BlockRange) -> Result<VerifiedBlocks, BlockRangeError> {
    verify_block_range(range, &policy(), None)
}

/// The error inside [`BlockRangeError::NotProven`], with the position it was reported at.
fn not_proven(result: Result<VerifiedBlocks, BlockRangeError>) -> (usize, BlockError) {
    match result {
        Err(BlockRangeError::NotProven { position, error, .. }) => (position, error),
        other => panic!("expected NotProven, got {other:?}"),
    }
}

/// The error inside [`BlockRangeError::Chain`]'s `AtBlock`, with its position.
fn chain_error(result: Result<VerifiedBlocks, BlockRangeError>) -> (usize, BlockError) {
    match result {
        Err(BlockRangeError::Chain(BlockError::AtBlock { position, error, .. })) => {
            (position, *error)
        }
        other => panic!("expected a chain error at a block, got {other:?}"),
    }
}

#[test]
fn a_valid_range_verifies() {
    // Phase 1: every block proven against one larger checkpoint.
    let (log, blocks, range) = must_range();
    let verified = verify(&range).expect("valid range");
    assert_eq!(verified.blocks, blocks);
    assert_eq!(verified.checkpoints.len(), 1, "one checkpoint, verified once");
    assert_eq!(verified.checkpoints[0].checkpoint, log.checkpoint(LOG_SIZE));
    assert_eq!(verified.last(), blocks.last());
    assert_eq!(verified.next_height, None);

    // Phase 2: the checkpoint of the last block's own size, which needs no proof for that block.
    let range = log.block_range(&blocks, 20, Some(7));
    assert!(range.blocks[5].consistency_proof.is_none());
    let verified = verify(&range).expect("valid range");
    assert_eq!(verified.next_height, Some(7));

    // Phase 3: blocks proven against different checkpoints of the same log.
    let mut range = log.block_range(&blocks, LOG_SIZE, None);
    range.blocks[1] = log.proven(&blocks[1], 4);
    range.blocks[3] = log.proven(&blocks[3], 20);
    let verified = verify(&range).expect("valid range");
    let sizes: Vec<u64> = verified.checkpoints.iter().map(|c| c.checkpoint.size.0).collect();
    assert_eq!(sizes, [LOG_SIZE as u64, 4, 20], "distinct checkpoints, in order of first use");
    let latest = verified.latest_checkpoint().expect("a checkpoint");
    assert_eq!(latest.checkpoint.size, TreeSize(LOG_SIZE as u64));

    // Phase 4: an empty range (a shard without blocks) verifies.
    let empty = BlockRange { blocks: Vec::new(), next_height: None };
    let verified = verify(&empty).expect("empty range");
    assert!(verified.blocks.is_empty() && verified.checkpoints.is_empty());
    assert_eq!(verified.latest_checkpoint(), None);
}

#[test]
fn pages_verify_from_the_last_verified_block() {
    let log = good_log();
    let blocks = log.must_blocks(&BATCHES);
    let first = log.block_range(&blocks[..3], LOG_SIZE, Some(4));
    let second = log.block_range(&blocks[3..], LOG_SIZE, None);

    let page1 = verify(&first).expect("first page");
    let trusted = page1.last().expect("a last block");
    let page2 = verify_block_range(&second, &policy(), Some(trusted)).expect("second page");
    assert_eq!(page2.blocks, blocks[3..]);

    // Without the trusted block, a page that starts past height 1 does not verify.
    let (position, error) = chain_error(verify(&second));
    assert_eq!(position, 0);
    assert_eq!(error, BlockError::HeightNotNext { prev: 0, got: 4 });

    // A trusted block that the page does not follow.
    let result = verify_block_range(&second, &policy(), Some(&blocks[1]));
    let (position, error) = chain_error(result);
    assert_eq!(position, 0);
    assert_eq!(error, BlockError::HeightNotNext { prev: 2, got: 4 });
}

#[test]
fn a_broken_chain_is_caught() {
    // Phase 1: a block left out.
    let (log, blocks, range) = must_range();
    let mut gap = range.clone();
    gap.blocks.remove(2);
    let (position, error) = chain_error(verify(&gap));
    assert_eq!(position, 2);
    assert_eq!(error, BlockError::HeightNotNext { prev: 2, got: 4 });

    // Phase 2: a wrong previous hash (the rest of the block unchanged, and still proven).
    let mut b = blocks.clone();
    b[3].prev_hash = Hash([7; 32]);
    let wrong = log.block_range(&b, LOG_SIZE, None);
    let (position, error) = chain_error(verify(&wrong));
    assert_eq!(position, 3);
    assert_eq!(
        error,
        BlockError::PrevHashMismatch { expected: blocks[2].hash(), got: Hash([7; 32]) }
    );

    // Phase 3: blocks out of order.
    let mut swapped = range.clone();
    swapped.blocks.swap(1, 2);
    assert_eq!(chain_error(verify(&swapped)).0, 1);

    // Phase 4: a block of another shard in the chain.
    let other = TestLog::new(1, LOG_SIZE, vec![test_signer()]);
    let mut mixed = range;
    mixed.blocks[4] = other.proven(&other.must_blocks(&BATCHES)[4], LOG_SIZE);
    let (position, error) = chain_error(verify(&mixed));
    assert_eq!(position, 4);
    assert_eq!(error, BlockError::ShardMismatch { expected: ShardId(0), got: ShardId(1) });
}

#[test]
fn next_height_must_follow_the_last_block() {
    let log = good_log();
    let blocks = log.must_blocks(&BATCHES);
    let skips = log.block_range(&blocks, LOG_SIZE, Some(8));
    assert_eq!(
        verify(&skips).map(|_| ()),
        Err(BlockRangeError::NextHeight { last_height: Some(6), got: 8 })
    );
    let empty = BlockRange { blocks: Vec::new(), next_height: Some(1) };
    let err = verify(&empty).expect_err("no blocks, yet a next height");
    assert_eq!(err, BlockRangeError::NextHeight { last_height: None, got: 1 });
    assert!(err.to_string().contains("no blocks"), "{err}");
}

#[test]
fn a_block_that_is_not_a_prefix_of_its_checkpoint_is_caught() {
    // Phase 1: the last block's tree root changed (no later block's link covers it).
    let (log, blocks, _) = must_range();
    let mut b = blocks.clone();
    b[5].tree_root = Hash([9; 32]);
    let (position, error) = not_proven(verify(&log.block_range(&b, LOG_SIZE, None)));
    assert_eq!(position, 5);
    assert!(matches!(error, BlockError::NotInCheckpoint { .. }), "{error:?}");

    // The same at the checkpoint's own size, where no proof is needed.
    let (position, error) = not_proven(verify(&log.block_range(&b, 20, None)));
    assert_eq!(position, 5);
    assert!(
        matches!(error, BlockError::NotInCheckpoint { error: ProofError::RootMismatch { .. }, .. }),
        "{error:?}"
    );

    // Phase 2: an unbroken chain of another history, proven against this log's checkpoint: the
    // first block where the histories differ is caught.
    let forked = forked_log().must_blocks(&BATCHES);
    assert_eq!(forked[..3], blocks[..3], "the histories share the blocks up to size 9");
    let range = BlockRange {
        blocks: forked
            .iter()
            .zip(&blocks)
            .map(|(f, b)| ProvenBlock { block: f.clone(), ..log.proven(b, LOG_SIZE) })
            .collect(),
        next_height: None,
    };
    let (position, error) = not_proven(verify(&range));
    assert_eq!(position, 3);
    assert!(matches!(error, BlockError::NotInCheckpoint { .. }), "{error:?}");

    // Phase 3: a checkpoint smaller than the blocks' trees.
    let mut range = log.block_range(&blocks, LOG_SIZE, None);
    range.blocks[4] = ProvenBlock {
        block: blocks[4].clone(),
        consistency_proof: None,
        checkpoint: log.signed(13),
    };
    let (position, error) = not_proven(verify(&range));
    assert_eq!(position, 4);
    assert_eq!(
        error,
        BlockError::BeyondCheckpoint { tree_size: TreeSize(14), checkpoint_size: TreeSize(13) }
    );
}

#[test]
fn a_bad_consistency_proof_is_caught() {
    let (log, _, range) = must_range();

    // A flipped bit in every position of the proof.
    let hashes = range.blocks[2].consistency_proof.as_ref().expect("a proof").hashes.len();
    assert!(hashes >= 2);
    for i in 0..hashes {
        let mut r = range.clone();
        proof_of(&mut r).hashes[i].0[i % 32] ^= 1;
        let (position, error) = not_proven(verify(&r));
        assert_eq!(position, 2);
        assert!(matches!(error, BlockError::NotInCheckpoint { .. }), "hash {i}: {error:?}");
    }

    // A hash missing, or one too many.
    let mut r = range.clone();
    proof_of(&mut r).hashes.pop();
    let (_, error) = not_proven(verify(&r));
    assert!(
        matches!(
            error,
            BlockError::NotInCheckpoint { error: ProofError::WrongProofLength { .. }, .. }
        ),
        "{error:?}"
    );
    let mut r = range.clone();
    proof_of(&mut r).hashes.push(Hash([1; 32]));
    assert!(matches!(not_proven(verify(&r)).1, BlockError::NotInCheckpoint { .. }));

    // A proof for other sizes: a valid proof, but of another block's tree.
    let mut r = range.clone();
    r.blocks[2].consistency_proof = Some(log.consistency(4, LOG_SIZE));
    let (_, error) = not_proven(verify(&r));
    assert!(matches!(error, BlockError::ProofSizes { .. }), "{error:?}");

    // No proof where one is needed.
    let mut r = range;
    r.blocks[2].consistency_proof = None;
    let (_, error) = not_proven(verify(&r));
    assert_eq!(
        error,
        BlockError::MissingProof { from: TreeSize(9), to: TreeSize(LOG_SIZE as u64) }
    );
}

#[test]
fn checkpoints_must_satisfy_the_trust_policy() {
    let (_, _, range) = must_range();

    // Phase 1: a key the policy does not know.
    let stranger = policy_of(&[&other_signer("stranger.example")], 1);
    let err = verify_block_range(&range, &stranger, None).map(|_| ()).expect_err("unknown key");
    assert!(
        matches!(
            err,
            BlockRangeError::Policy {
                position: 0,
                error: PolicyError::Checkpoint(CheckpointError::Note(NoteError::NoKnownSignature))
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_malformed() && !err.is_fork());

    // Phase 2: a checkpoint whose text was changed under its signature.
    let mut r = range.clone();
    let text = r.blocks[3].checkpoint.to_text().replacen("\n25\n", "\n26\n", 1);
    r.blocks[3].checkpoint = SignedCheckpoint::parse(text.as_bytes()).expect("well-formed");
    let err = verify(&r).map(|_| ()).expect_err("forged checkpoint");
    assert!(
        matches!(
            err,
            BlockRangeError::Policy {
                position: 3,
                error: PolicyError::Checkpoint(CheckpointError::Note(
                    NoteError::InvalidSignature { .. }
                ))
            }
        ),
        "{err:?}"
    );

    // Phase 3: fewer trusted signatures than the threshold.
    let two = policy_of(&[&test_signer(), &other_signer("witness.example")], 2);
    let err = verify_block_range(&range, &two, None).map(|_| ()).expect_err("threshold");
    assert_eq!(
        err,
        BlockRangeError::Policy {
            position: 0,
            error: PolicyError::NotEnoughSignatures { got: 1, need: 2 }
        }
    );
    // ...which a log signed by both satisfies.
    let mut cosigned = good_log();
    cosigned.signers.push(other_signer("witness.example"));
    let blocks = cosigned.must_blocks(&BATCHES);
    verify_block_range(&cosigned.block_range(&blocks, LOG_SIZE, None), &two, None)
        .expect("two of two signed");
}

#[test]
fn checkpoints_must_be_of_the_blocks_shard_and_one_log() {
    let (log, _, range) = must_range();

    // Phase 1: a checkpoint of shard 1's log for a block of shard 0.
    let shard1 = TestLog::new(1, LOG_SIZE, vec![test_signer()]);
    let mut r = range.clone();
    r.blocks[1].checkpoint = shard1.signed(LOG_SIZE);
    let (position, error) = not_proven(verify(&r));
    assert_eq!(position, 1);
    assert_eq!(error, BlockError::CheckpointShard { shard: ShardId(0), origin: shard1.origin });

    // Phase 2: a checkpoint whose origin is not a shard's log at all.
    let mut r = range.clone();
    let mut c = log.checkpoint(LOG_SIZE);
    c.origin = "example.com/some-other-log".to_owned();
    r.blocks[0].checkpoint = c.sign(&[&test_signer()]).expect("signs");
    assert!(matches!(not_proven(verify(&r)).1, BlockError::CheckpointShard { .. }));

    // Phase 3: shard 0 of another cluster, the same tree: each block is proven, but the range
    // mixes two logs.
    let mut r = range;
    let other = Checkpoint {
        origin: shard_origin("other.example/cluster", ShardId(0)),
        ..log.checkpoint(LOG_SIZE)
    };
    r.blocks[3].checkpoint = other.sign(&[&test_signer()]).expect("signs");
    let err = verify(&r).map(|_| ()).expect_err("two origins");
    assert_eq!(
        err,
        BlockRangeError::OriginMismatch {
            position: 3,
            expected: log.origin.clone(),
            got: other.origin.clone()
        }
    );
}

#[test]
fn a_fork_between_checkpoints_of_one_size_is_reported_as_a_fork() {
    let (_, blocks, range) = must_range();
    let forked = forked_log();

    // Phase 1: two signed checkpoints of size 25 with different roots. Block 1 (tree size 4) is
    // in both histories, so it is proven against either.
    let mut r = range.clone();
    r.blocks[1] = forked.proven(&blocks[1], LOG_SIZE);
    let err = verify(&r).map(|_| ()).expect_err("fork");
    assert_eq!(
        err,
        BlockRangeError::Fork {
            size: TreeSize(LOG_SIZE as u64),
            first: 0,
            first_root: good_log().checkpoint(LOG_SIZE).root,
            second: 1,
            second_root: forked.checkpoint(LOG_SIZE).root,
        }
    );
    assert!(err.is_fork() && !err.is_malformed());
    assert!(err.to_string().starts_with("fork: "), "{err}");

    // Phase 2: a checkpoint of size 13 from the other history, and block 3 (tree size 13) proven
    // against the checkpoint of size 25: the proof binds the block's root to the signed tree of
    // size 25, so two signed trees disagree at size 13.
    let mut r = range;
    r.blocks[0] = forked.proven(&blocks[0], 13);
    let err = verify(&r).map(|_| ()).expect_err("fork");
    assert!(
        matches!(err, BlockRangeError::Fork { size: TreeSize(13), first: 0, second: 3, .. }),
        "{err:?}"
    );
    assert!(err.is_fork());
}

#[test]
fn the_json_form() {
    // Phase 1: the round trip, and the server's shape (compact, `null` for an absent proof).
    let (_, blocks, range) = must_range();
    assert_eq!(BlockRange::from_json(range.to_json().as_bytes()), Ok(range.clone()));
    let server_shaped = serde_json::json!({
        "blocks": range.blocks.iter().map(|b| serde_json::json!({
            "block": b.block,
            "consistency_proof": b.consistency_proof,
            "checkpoint": b.checkpoint.to_text(),
        })).collect::<Vec<_>>(),
        "next_height": null,
    });
    assert!(server_shaped["blocks"][0]["consistency_proof"]["hashes"][0].is_string());
    let parsed = BlockRange::from_json(server_shaped.to_string().as_bytes()).expect("parses");
    assert_eq!(parsed, range);
    let v: serde_json::Value = serde_json::from_str(&range.to_json()).expect("json");
    assert_eq!(v["blocks"][5]["block"]["hash"], blocks[5].hash().to_hex());
    assert_eq!(v["next_height"], serde_json::Value::Null);

    // Phase 2: unknown fields are refused at every level.
    let json = range.to_json();
    for (at, edited) in [
        ("top", json.replacen("\"blocks\"", "\"surprise\": 1, \"blocks\"", 1)),
        ("item", json.replacen("\"block\":", "\"surprise\": 1, \"block\":", 1)),
        ("block", json.replacen("\"shard\"", "\"surprise\": 1, \"shard\"", 1)),
        ("proof", json.replacen("\"from_size\"", "\"surprise\": 1, \"from_size\"", 1)),
    ] {
        let err = BlockRange::from_json(edited.as_bytes()).expect_err(at);
        assert!(err.is_malformed(), "{at}: {err:?}");
        assert!(err.to_string().contains("unknown field `surprise`"), "{at}: {err}");
    }

    // Phase 3: a block whose `hash` field is not its hash, a missing field, a bad checkpoint.
    let bad_hash = json.replacen(&blocks[0].hash().to_hex(), &Hash([5; 32]).to_hex(), 1);
    let err = BlockRange::from_json(bad_hash.as_bytes()).expect_err("hash mismatch");
    assert!(matches!(err, BlockRangeError::Json(ref m) if m.contains("hash")), "{err:?}");
    let err = BlockRange::from_json(b"{\"next_height\": null}").expect_err("no blocks field");
    assert!(err.is_malformed());
    let mut v: serde_json::Value = serde_json::from_str(&json).expect("json");
    v["blocks"][2]["checkpoint"] = "not a note".into();
    let err = BlockRange::from_json(v.to_string().as_bytes()).expect_err("bad checkpoint");
    assert!(matches!(err, BlockRangeError::Checkpoint { position: 2, .. }), "{err:?}");
    assert!(err.is_malformed());
}

#[test]
fn the_json_form_is_bounded() {
    let (_, _, range) = must_range();
    let item = serde_json::to_string(
        &serde_json::from_str::<serde_json::Value>(&range.to_json()).expect("json")["blocks"][0],
    )
    .expect("json");

    // More blocks than the limit.
    let items = vec![item.as_str(); BLOCK_RANGE_LEN_MAX + 1].join(",");
    let doc = format!("{{\"blocks\": [{items}]}}");
    let err = BlockRange::from_json(doc.as_bytes()).expect_err("too many");
    assert_eq!(err, BlockRangeError::TooManyBlocks { count: BLOCK_RANGE_LEN_MAX + 1 });

    // A proof longer than any proof can be.
    let mut v: serde_json::Value = serde_json::from_str(&range.to_json()).expect("json");
    v["blocks"][1]["consistency_proof"]["hashes"] =
        vec![Hash([1; 32]).to_hex(); 129].into_iter().collect();
    let err = BlockRange::from_json(v.to_string().as_bytes()).expect_err("long proof");
    assert_eq!(err, BlockRangeError::ProofTooLong { position: 1, len: 129 });

    // A document longer than the limit is refused before it is parsed.
    let huge = vec![0u8; BLOCK_RANGE_BYTES_MAX + 1];
    assert_eq!(
        BlockRange::from_json(&huge),
        Err(BlockRangeError::TooLarge { len: BLOCK_RANGE_BYTES_MAX + 1 })
    );
}

/// One field of one block or proof to change.
#[derive(Debug, Clone)]
enum Mutation {
    Height(u64),
    PrevHash(u8),
    RecordCount(u64),
    RecordsRoot(u8),
    TreeSize(u64),
    TreeRoot(u8),
    CommitTime(u64),
    ProofFrom(u64),
    ProofTo(u64),
    ProofHash(prop::sample::Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Small values reach the interesting comparisons, any u64 reaches the overflows.
    let int = || prop_oneof![0u64..40, any::<u64>()];
    prop_oneof![
        int().prop_map(Mutation::Height),
        (0u8..=255).prop_map(Mutation::PrevHash),
        int().prop_map(Mutation::RecordCount),
        (0u8..=255).prop_map(Mutation::RecordsRoot),
        int().prop_map(Mutation::TreeSize),
        (0u8..=255).prop_map(Mutation::TreeRoot),
        int().prop_map(Mutation::CommitTime),
        int().prop_map(Mutation::ProofFrom),
        int().prop_map(Mutation::ProofTo),
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Mutation::ProofHash(i, b)),
    ]
}

/// Applies `m` to item `at`; returns whether it changed anything, and whether the change is one
/// that `verify_block_range` is documented to leave unchecked (the last block's records root and
/// commit time: no later link covers them, and they need the block's leaves).
fn apply(range: &mut BlockRange, at: usize, m: &Mutation) -> (bool, bool) {
    let last = at + 1 == range.blocks.len();
    let item = &mut range.blocks[at];
    let before = item.clone();
    let b = &mut item.block;
    let mut unchecked = false;
    match m {
        Mutation::Height(v) => b.height = *v,
        Mutation::PrevHash(x) => b.prev_hash.0[usize::from(*x) % 32] ^= 1 | x,
        Mutation::RecordCount(v) => b.record_count = *v,
        Mutation::RecordsRoot(x) => {
            b.records_root.0[usize::from(*x) % 32] ^= 1 | x;
            unchecked = last;
        }
        Mutation::TreeSize(v) => b.tree_size = TreeSize(*v),
        Mutation::TreeRoot(x) => b.tree_root.0[usize::from(*x) % 32] ^= 1 | x,
        Mutation::CommitTime(v) => {
            b.commit_time_ms = *v;
            unchecked = last;
        }
        Mutation::ProofFrom(v) | Mutation::ProofTo(v) => {
            if let Some(p) = &mut item.consistency_proof {
                match m {
                    Mutation::ProofFrom(_) => p.from_size = TreeSize(*v),
                    _ => p.to_size = TreeSize(*v),
                }
            }
        }
        Mutation::ProofHash(i, bit) => {
            if let Some(p) = &mut item.consistency_proof
                && !p.hashes.is_empty()
            {
                let n = i.index(p.hashes.len());
                p.hashes[n].0[0] ^= 1 << bit;
            }
        }
    }
    (*item != before, unchecked)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any change to a block or proof is caught, except the two the docs say are not checked;
    /// and nothing panics, whatever the values.
    #[test]
    fn every_mutation_is_caught_or_documented_as_unchecked(
        at in 0..BATCHES.len(),
        m in mutation(),
    ) {
        let (_, _, mut range) = must_range();
        let (changed, unchecked) = apply(&mut range, at, &m);
        let result = verify(&range);
        if changed && !unchecked {
            prop_assert!(result.is_err(), "{m:?} at {at} was not caught");
            prop_assert!(!result.as_ref().is_err_and(BlockRangeError::is_fork), "{result:?}");
        } else {
            prop_assert!(result.is_ok(), "{m:?} at {at}: {result:?}");
        }
    }

    /// Arbitrary bytes never make the parser panic, nor the verifier on whatever parses.
    #[test]
    fn arbitrary_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        if let Ok(range) = BlockRange::from_json(&bytes) {
            let _ = verify(&range);
        }
    }

    /// Edited valid documents never make the parser or the verifier panic.
    #[test]
    fn edited_documents_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let (_, _, range) = must_range();
        let mut bytes = range.to_json().into_bytes();
        for (i, v) in &edits {
            let n = i.index(bytes.len());
            bytes[n] = *v;
        }
        if let Ok(range) = BlockRange::from_json(&bytes) {
            let _ = verify(&range);
        }
    }
}
