//! Blocks: the byte-exact encoding, the hash, the JSON form, and every verdict of the chain, leaf
//! and checkpoint checks.

mod common;

use blockdb_verifier::block::{
    BLOCK_LEN, GENESIS_PREV_HASH, verify_against_checkpoint, verify_against_leaves, verify_chain,
    verify_link,
};
use blockdb_verifier::{
    Block, BlockError, Checkpoint, ConsistencyProof, DecodeError, Hash, ProofError, ShardId,
    TreeSize,
};
use common::{TestLog, h, reference, sha256, test_signer};
use proptest::prelude::*;

/// Record counts of the blocks of the test chain: 20 records in 6 blocks.
const BATCHES: [usize; 6] = [3, 1, 5, 4, 1, 6];

fn log(shard: u32) -> TestLog {
    TestLog::new(shard, BATCHES.iter().sum(), vec![test_signer()])
}

fn golden_block() -> Block {
    Block {
        shard: ShardId(3),
        height: 2,
        prev_hash: Hash([0x11; 32]),
        record_count: 4,
        records_root: Hash([0x22; 32]),
        tree_size: TreeSize(10),
        tree_root: Hash([0x33; 32]),
        commit_time_ms: 1_700_000_000_123,
    }
}

/// The error inside [`BlockError::AtBlock`], with the position it was reported at.
fn at(result: Result<(), BlockError>) -> (usize, BlockError) {
    match result {
        Err(BlockError::AtBlock { position, error, .. }) => (position, *error),
        other => panic!("expected an AtBlock error, got {other:?}"),
    }
}

#[test]
fn golden_encoding_and_hash() {
    // Phase 1: the encoding, written field by field from the layout in the module docs.
    let expected = [
        "01",                                                               // format
        "00000003",                                                         // shard
        "0000000000000002",                                                 // height
        "1111111111111111111111111111111111111111111111111111111111111111", // prev_hash
        "0000000000000004",                                                 // record_count
        "2222222222222222222222222222222222222222222222222222222222222222", // records_root
        "000000000000000a",                                                 // tree_size
        "3333333333333333333333333333333333333333333333333333333333333333", // tree_root
        "0000018bcfe5687b", // commit_time_ms = 1_700_000_000_123
    ]
    .concat();
    let bytes = golden_block().encode();
    assert_eq!(bytes.len(), BLOCK_LEN);
    assert_eq!(hex::encode(&bytes), expected);

    // Phase 2: the hash is SHA-256(0x02 ‖ encoding); the constant was computed with Python's
    // hashlib from the hex above.
    let mut input = vec![0x02];
    input.extend_from_slice(&bytes);
    assert_eq!(golden_block().hash(), Hash(sha256(&input)));
    assert_eq!(
        golden_block().hash(),
        h("f9ef09d42b1f39949459d2637c9a5b99754a56d21e379b19d6d53ac5089f66c3")
    );

    // Phase 3: the block hash differs from the RFC 6962 leaf hash of the same bytes.
    assert_ne!(golden_block().hash(), blockdb_verifier::leaf_hash(&bytes));
    assert_eq!(Block::decode(&bytes), Ok(golden_block()));
}

#[test]
fn encode_decode_and_json_round_trip() {
    let log = log(2);
    for block in log.must_blocks(&BATCHES) {
        let bytes = block.encode();
        assert_eq!(Block::decode(&bytes).as_ref(), Ok(&block));

        let json = serde_json::to_value(&block).expect("serializes");
        assert_eq!(json["hash"], block.hash().to_hex());
        assert_eq!(json["prev_hash"], block.prev_hash.to_hex());
        assert_eq!(json["tree_size"], block.tree_size.0);
        assert_eq!(serde_json::from_value::<Block>(json).expect("deserializes"), block);
    }
}

#[test]
fn decode_refuses_bad_input() {
    let good = golden_block().encode();
    let decode_with = |edit: &dyn Fn(&mut Block)| {
        let mut b = golden_block();
        edit(&mut b);
        Block::decode(&b.encode())
    };

    // Format byte, length.
    for format in [0x00, 0x02, 0xff] {
        let mut b = good.clone();
        b[0] = format;
        assert_eq!(Block::decode(&b), Err(BlockError::UnknownFormat { got: format }));
    }
    assert!(matches!(
        Block::decode(&[]),
        Err(BlockError::Malformed(DecodeError::Truncated { field: "format", .. }))
    ));
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        Block::decode(&long),
        Err(BlockError::Malformed(DecodeError::TrailingBytes { offset: BLOCK_LEN, count: 1 }))
    );

    // Invariants that need no other block.
    assert_eq!(decode_with(&|b| b.height = 0), Err(BlockError::ZeroHeight));
    assert_eq!(decode_with(&|b| b.record_count = 0), Err(BlockError::ZeroRecordCount));
    assert_eq!(
        decode_with(&|b| b.record_count = 11),
        Err(BlockError::RecordCountExceedsTreeSize { record_count: 11, tree_size: TreeSize(10) })
    );
    assert_eq!(
        decode_with(&|b| b.height = 1),
        Err(BlockError::FirstBlockPrevHash { got: Hash([0x11; 32]) })
    );
    assert_eq!(
        decode_with(&|b| {
            b.height = 1;
            b.prev_hash = GENESIS_PREV_HASH;
        }),
        Err(BlockError::FirstBlockTreeSize { record_count: 4, tree_size: TreeSize(10) })
    );
    // The limits themselves are accepted.
    assert!(decode_with(&|b| b.record_count = 10).is_ok());
    assert!(
        decode_with(&|b| {
            b.height = 1;
            b.prev_hash = GENESIS_PREV_HASH;
            b.record_count = 10;
        })
        .is_ok()
    );
}

#[test]
fn every_truncation_and_bit_flip_fails_or_changes_the_hash() {
    let block = golden_block();
    let bytes = block.encode();
    for len in 0..bytes.len() {
        assert!(
            matches!(Block::decode(&bytes[..len]), Err(BlockError::Malformed(_))),
            "truncation to {len} bytes decoded"
        );
    }
    let mut decoded = 0;
    for bit in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        if let Ok(other) = Block::decode(&b) {
            decoded += 1;
            assert_ne!(other, block, "flip of bit {bit}");
            assert_ne!(other.hash(), block.hash(), "flip of bit {bit} keeps the hash");
            assert_eq!(other.encode(), b, "flip of bit {bit}: not canonical");
        }
    }
    // Most flips land in hashes and times, which decode; the test must not pass vacuously.
    assert!(decoded > bytes.len() * 8 / 2, "only {decoded} flips decoded");
}

#[test]
fn json_form_is_checked() {
    let block = golden_block();
    let json = serde_json::to_value(&block).expect("serializes");
    let parse = |v: &serde_json::Value| serde_json::from_value::<Block>(v.clone());

    // Phase 1: the hash field is checked against the block.
    let mut v = json.clone();
    v["hash"] = Hash([0x44; 32]).to_hex().into();
    let err = parse(&v).expect_err("wrong hash");
    assert!(err.to_string().contains("but the block hashes to"), "{err}");
    let mut v = json.clone();
    v["tree_root"] = Hash([0x44; 32]).to_hex().into();
    assert!(parse(&v).is_err(), "a field changed without the hash");

    // Phase 2: missing, unknown and malformed fields.
    let mut v = json.clone();
    v.as_object_mut().expect("object").remove("hash");
    assert!(parse(&v).is_err(), "missing hash");
    let mut v = json.clone();
    v["extra"] = 1.into();
    assert!(parse(&v).is_err(), "unknown field");
    let mut v = json.clone();
    v["prev_hash"] = "abcd".into();
    assert!(parse(&v).is_err(), "short hash");

    // Phase 3: an invalid block is refused even with its own hash.
    let mut invalid = block.clone();
    invalid.record_count = 0;
    let v = serde_json::to_value(&invalid).expect("serializes");
    let err = parse(&v).expect_err("no records");
    assert!(err.to_string().contains("no records"), "{err}");

    // Phase 4: hex in upper case is read.
    let mut v = json.clone();
    v["prev_hash"] = block.prev_hash.to_hex().to_uppercase().into();
    assert_eq!(parse(&v).expect("upper-case hex"), block);
}

#[test]
fn a_valid_chain_verifies() {
    let blocks = log(0).must_blocks(&BATCHES);
    verify_chain(None, &blocks).expect("whole chain");
    verify_chain(None, &blocks[..1]).expect("first block");
    verify_chain(None, &[]).expect("empty chain");
    for k in 0..blocks.len() {
        verify_chain(Some(&blocks[k]), &blocks[k + 1..]).expect("suffix after a trusted block");
    }
    for pair in blocks.windows(2) {
        verify_link(&pair[0], &pair[1]).expect("link");
    }
}

#[test]
fn chain_verification_catches_each_broken_link() {
    let blocks = log(0).must_blocks(&BATCHES);
    let broken = |k: usize, edit: &dyn Fn(&mut Block)| {
        let mut b = blocks.clone();
        edit(&mut b[k]);
        at(verify_chain(None, &b))
    };

    // The link into block 3, each field that makes it.
    assert_eq!(
        broken(3, &|b| b.shard = ShardId(1)),
        (3, BlockError::ShardMismatch { expected: ShardId(0), got: ShardId(1) })
    );
    assert_eq!(broken(3, &|b| b.height = 5), (3, BlockError::HeightNotNext { prev: 3, got: 5 }));
    assert_eq!(broken(3, &|b| b.height = 3), (3, BlockError::HeightNotNext { prev: 3, got: 3 }));
    assert_eq!(
        broken(3, &|b| b.prev_hash = Hash([9; 32])),
        (3, BlockError::PrevHashMismatch { expected: blocks[2].hash(), got: Hash([9; 32]) })
    );
    assert_eq!(
        broken(3, &|b| b.tree_size = TreeSize(14)),
        (3, BlockError::TreeSizeNotNext { prev: TreeSize(9), record_count: 4, got: TreeSize(14) })
    );
    assert_eq!(broken(3, &|b| b.record_count = 0), (3, BlockError::ZeroRecordCount));

    // Any change to a block's content breaks the next link.
    for edit in [
        &|b: &mut Block| b.records_root = Hash([9; 32]) as _,
        &|b: &mut Block| b.tree_root = Hash([9; 32]),
        &|b: &mut Block| b.commit_time_ms += 1,
    ] as [&dyn Fn(&mut Block); 3]
    {
        let (position, error) = broken(2, edit);
        assert_eq!(position, 3);
        assert!(matches!(error, BlockError::PrevHashMismatch { .. }), "{error}");
    }

    // A missing, repeated or swapped block.
    let mut b = blocks.clone();
    b.remove(2);
    assert_eq!(at(verify_chain(None, &b)), (2, BlockError::HeightNotNext { prev: 2, got: 4 }));
    let mut b = blocks.clone();
    b.insert(2, blocks[2].clone());
    assert_eq!(at(verify_chain(None, &b)), (3, BlockError::HeightNotNext { prev: 3, got: 3 }));
    let mut b = blocks.clone();
    b.swap(1, 2);
    assert_eq!(at(verify_chain(None, &b)), (1, BlockError::HeightNotNext { prev: 1, got: 3 }));
}

#[test]
fn chain_start_and_trusted_block() {
    let blocks = log(0).must_blocks(&BATCHES);

    // Without a trusted block, the chain starts at height 1.
    assert_eq!(
        at(verify_chain(None, &blocks[1..])),
        (0, BlockError::HeightNotNext { prev: 0, got: 2 })
    );
    let mut first = blocks[0].clone();
    first.prev_hash = Hash([1; 32]);
    assert_eq!(
        at(verify_chain(None, &[first])),
        (0, BlockError::FirstBlockPrevHash { got: Hash([1; 32]) })
    );
    let mut first = blocks[0].clone();
    first.tree_size = TreeSize(4);
    assert!(matches!(
        at(verify_chain(None, &[first])),
        (0, BlockError::FirstBlockTreeSize { record_count: 3, tree_size: TreeSize(4) })
    ));

    // With one, the chain must follow it.
    assert_eq!(
        at(verify_chain(Some(&blocks[1]), &blocks[3..])),
        (0, BlockError::HeightNotNext { prev: 2, got: 4 })
    );
    let other_shard = log(1).must_blocks(&BATCHES);
    assert_eq!(
        at(verify_chain(Some(&other_shard[1]), &blocks[2..])),
        (0, BlockError::ShardMismatch { expected: ShardId(1), got: ShardId(0) })
    );
    // Same heights and sizes in another shard's log: the hashes differ.
    let mut moved = other_shard[2].clone();
    moved.shard = ShardId(0);
    assert!(matches!(
        at(verify_chain(Some(&blocks[1]), &[moved])),
        (0, BlockError::PrevHashMismatch { .. })
    ));
    // An invalid trusted block is reported as such.
    let mut trusted = blocks[1].clone();
    trusted.height = 0;
    assert_eq!(verify_chain(Some(&trusted), &blocks[2..]), Err(BlockError::ZeroHeight));
}

#[test]
fn verify_against_leaves_rederives_both_roots() {
    let log = log(0);
    let blocks = log.must_blocks(&BATCHES);

    // Phase 1: the true blocks, whole or from the middle, and with extra leaves after them.
    verify_against_leaves(&blocks, &log.hashes).expect("all blocks");
    verify_against_leaves(&blocks[2..4], &log.hashes).expect("blocks from the middle");
    verify_against_leaves(&blocks[..2], &log.hashes).expect("leaves after the last block");
    verify_against_leaves(&[], &[]).expect("nothing");

    // Phase 2: each root, wrong.
    let mut b = blocks.clone();
    b[2].records_root = reference::root(&log.hashes[..9]);
    assert_eq!(
        at(verify_against_leaves(&b, &log.hashes)),
        (
            2,
            BlockError::RecordsRootMismatch {
                expected: blocks[2].records_root,
                got: b[2].records_root
            }
        )
    );
    let mut b = blocks.clone();
    b[4].tree_root = reference::root(&log.hashes[..13]);
    assert_eq!(
        at(verify_against_leaves(&b, &log.hashes)),
        (4, BlockError::TreeRootMismatch { expected: blocks[4].tree_root, got: b[4].tree_root })
    );
    // A leaf changed under the blocks: the block holding it and every later tree root fail.
    let mut leaves = log.hashes.clone();
    leaves[5] = Hash([7; 32]);
    assert!(matches!(
        at(verify_against_leaves(&blocks, &leaves)),
        (2, BlockError::RecordsRootMismatch { .. })
    ));
    assert!(matches!(
        at(verify_against_leaves(&blocks[3..], &leaves)),
        (0, BlockError::TreeRootMismatch { .. })
    ));

    // Phase 3: too few leaves, blocks out of order, an invalid block.
    assert_eq!(
        at(verify_against_leaves(&blocks, &log.hashes[..19])),
        (5, BlockError::LeavesMissing { tree_size: TreeSize(20), leaves: 19 })
    );
    let reversed: Vec<Block> = blocks.iter().rev().cloned().collect();
    assert_eq!(
        at(verify_against_leaves(&reversed, &log.hashes)),
        (1, BlockError::TreeSizeDecreases { prev: TreeSize(20), got: TreeSize(14) })
    );
    let mut b = blocks.clone();
    b[1].record_count = 7;
    assert!(matches!(
        at(verify_against_leaves(&b, &log.hashes)),
        (1, BlockError::RecordCountExceedsTreeSize { .. })
    ));
}

#[test]
fn verify_against_checkpoint_accepts_true_prefixes() {
    let log = log(0);
    let blocks = log.must_blocks(&BATCHES);
    for block in &blocks {
        let from = block.tree_size.0 as usize;
        for to in from..=log.hashes.len() {
            let checkpoint = log.checkpoint(to);
            let proof = log.consistency(from, to);
            verify_against_checkpoint(block, &checkpoint, Some(&proof))
                .unwrap_or_else(|e| panic!("block at {from}, checkpoint {to}: {e}"));
            if from == to {
                verify_against_checkpoint(block, &checkpoint, None).expect("same tree, no proof");
            }
        }
    }
}

#[test]
fn verify_against_checkpoint_rejects() {
    let log = log(0);
    let blocks = log.must_blocks(&BATCHES);
    let block = &blocks[2]; // tree size 9
    let checkpoint = log.checkpoint(14);
    let proof = log.consistency(9, 14);

    // Phase 1: a wrong root, in the block or in the checkpoint.
    let mut wrong = block.clone();
    wrong.tree_root = reference::root(&log.hashes[..8]);
    assert!(matches!(
        verify_against_checkpoint(&wrong, &checkpoint, Some(&proof)),
        Err(BlockError::NotInCheckpoint {
            from: TreeSize(9),
            to: TreeSize(14),
            error: ProofError::OldRootMismatch { .. }
        })
    ));
    let mut forked = checkpoint.clone();
    forked.root = Hash([5; 32]);
    assert!(matches!(
        verify_against_checkpoint(block, &forked, Some(&proof)),
        Err(BlockError::NotInCheckpoint { error: ProofError::RootMismatch { .. }, .. })
    ));
    let same_size = log.checkpoint(9);
    assert!(matches!(
        verify_against_checkpoint(&wrong, &same_size, None),
        Err(BlockError::NotInCheckpoint { error: ProofError::RootMismatch { .. }, .. })
    ));

    // Phase 2: proofs that do not fit.
    assert_eq!(
        verify_against_checkpoint(block, &checkpoint, None),
        Err(BlockError::MissingProof { from: TreeSize(9), to: TreeSize(14) })
    );
    assert!(matches!(
        verify_against_checkpoint(block, &checkpoint, Some(&log.consistency(8, 14))),
        Err(BlockError::ProofSizes { proof_from: TreeSize(8), .. })
    ));
    let mut short = proof.clone();
    short.hashes.pop();
    assert!(matches!(
        verify_against_checkpoint(block, &checkpoint, Some(&short)),
        Err(BlockError::NotInCheckpoint { error: ProofError::WrongProofLength { .. }, .. })
    ));
    let not_empty = ConsistencyProof {
        from_size: TreeSize(9),
        to_size: TreeSize(9),
        hashes: vec![Hash([1; 32])],
    };
    assert!(matches!(
        verify_against_checkpoint(block, &same_size, Some(&not_empty)),
        Err(BlockError::NotInCheckpoint { error: ProofError::WrongProofLength { .. }, .. })
    ));

    // Phase 3: a checkpoint older than the block, or of another shard's log.
    assert_eq!(
        verify_against_checkpoint(block, &log.checkpoint(8), None),
        Err(BlockError::BeyondCheckpoint { tree_size: TreeSize(9), checkpoint_size: TreeSize(8) })
    );
    let other = Checkpoint { origin: crate::log(1).origin, ..checkpoint.clone() };
    assert!(matches!(
        verify_against_checkpoint(block, &other, Some(&proof)),
        Err(BlockError::CheckpointShard { shard: ShardId(0), .. })
    ));
    let mut invalid = block.clone();
    invalid.height = 0;
    assert_eq!(
        verify_against_checkpoint(&invalid, &checkpoint, Some(&proof)),
        Err(BlockError::ZeroHeight)
    );
}

/// Blocks that pass `validate`, with arbitrary field values.
fn valid_block() -> impl Strategy<Value = Block> {
    (
        any::<u32>(),
        1u64..,
        any::<[u8; 32]>(),
        1u64..,
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<u64>(),
    )
        .prop_map(|(shard, height, prev, count, records, extra, tree, time)| {
            let tree_size = if height == 1 { count } else { count.saturating_add(extra) };
            Block {
                shard: ShardId(shard),
                height,
                prev_hash: if height == 1 { GENESIS_PREV_HASH } else { Hash(prev) },
                record_count: count,
                records_root: Hash(records),
                tree_size: TreeSize(tree_size),
                tree_root: Hash(tree),
                commit_time_ms: time,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(block) = Block::decode(&bytes) {
            prop_assert_eq!(block.encode(), bytes);
        }
    }

    #[test]
    fn decode_accepts_exactly_the_valid_blocks(body in any::<[u8; BLOCK_LEN - 1]>()) {
        let mut bytes = vec![0x01];
        bytes.extend_from_slice(&body);
        let block = Block {
            shard: ShardId(u32::from_be_bytes(body[0..4].try_into().expect("4 bytes"))),
            height: u64::from_be_bytes(body[4..12].try_into().expect("8 bytes")),
            prev_hash: Hash(body[12..44].try_into().expect("32 bytes")),
            record_count: u64::from_be_bytes(body[44..52].try_into().expect("8 bytes")),
            records_root: Hash(body[52..84].try_into().expect("32 bytes")),
            tree_size: TreeSize(u64::from_be_bytes(body[84..92].try_into().expect("8 bytes"))),
            tree_root: Hash(body[92..124].try_into().expect("32 bytes")),
            commit_time_ms: u64::from_be_bytes(body[124..132].try_into().expect("8 bytes")),
        };
        match block.validate() {
            Ok(()) => prop_assert_eq!(Block::decode(&bytes), Ok(block)),
            Err(e) => prop_assert_eq!(Block::decode(&bytes), Err(e)),
        }
    }

    #[test]
    fn valid_blocks_round_trip(block in valid_block()) {
        prop_assert_eq!(Block::decode(&block.encode()), Ok(block.clone()));
        let json = serde_json::to_string(&block).expect("serializes");
        prop_assert_eq!(serde_json::from_str::<Block>(&json).expect("deserializes"), block);
    }

    #[test]
    fn json_never_panics(text in "(?s).{0,300}") {
        let _ = serde_json::from_str::<Block>(&text);
    }
}
