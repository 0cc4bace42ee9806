//! No input makes a decoder panic: arbitrary bytes, and valid encodings with random edits.
//! A decoder that accepts input must also be canonical where the format promises it.

mod common;

use blockdb_verifier::block::GENESIS_PREV_HASH;
use blockdb_verifier::policy::TrustPolicy;
use blockdb_verifier::tiles::{decode_entry_bundle, encode_entry_bundle};
use blockdb_verifier::{
    Block, BlockRange, Checkpoint, CheckpointChain, ConsistencyProof, DecisionRecord, Hash, Leaf,
    Note, NoteSigner, Participant, ProofBundle, Receipt, ShardId, SignedCheckpoint, TilePath,
    TreeSize, TxnDecision, TxnId, VerifierKey, decision_key,
};
use common::{TestLog, test_signer};
use proptest::prelude::*;

/// Feeds `bytes` to every decoder of outside input.
fn decode_all(bytes: &[u8]) {
    if let Ok(leaf) = Leaf::decode(bytes) {
        assert_eq!(leaf.encode().expect("a decoded leaf encodes"), bytes, "leaf is canonical");
    }
    if let Ok(note) = Note::parse(bytes) {
        assert_eq!(note.to_text().as_bytes(), bytes, "note is canonical");
    }
    let _ = SignedCheckpoint::parse(bytes);
    let _ = ProofBundle::parse(bytes);
    let _ = ProofBundle::from_json(bytes);
    let _ = ProofBundle::from_binary(bytes);
    let _ = CheckpointChain::from_json(bytes);
    let _ = serde_json::from_slice::<ConsistencyProof>(bytes);
    if let Ok(block) = Block::decode(bytes) {
        assert_eq!(block.encode(), bytes, "block is canonical");
    }
    let _ = serde_json::from_slice::<Block>(bytes);
    let _ = BlockRange::from_json(bytes);
    if let Ok(record) = DecisionRecord::decode(bytes) {
        assert_eq!(record.encode().expect("re-encodes"), bytes, "decision record is canonical");
    }
    let _ = Receipt::from_json(bytes);
    for width in [1, 2, 255, 256] {
        if let Ok(entries) = decode_entry_bundle(bytes, width) {
            assert_eq!(encode_entry_bundle(&entries).expect("re-encodes"), bytes, "bundle");
        }
    }
    let text = String::from_utf8_lossy(bytes);
    if let Ok(c) = Checkpoint::from_text(&text) {
        assert_eq!(c.to_text(), text, "checkpoint text is canonical");
    }
    let _ = text.parse::<VerifierKey>();
    let _ = NoteSigner::from_secret_string(&text);
    let _ = TrustPolicy::parse_keys(&text);
    if let Ok(tile) = TilePath::parse(&text) {
        assert_eq!(tile.to_path(), text, "tile path is canonical");
    }
}

fn block() -> Block {
    Block {
        shard: ShardId(0),
        height: 1,
        prev_hash: GENESIS_PREV_HASH,
        record_count: 2,
        records_root: Hash([1; 32]),
        tree_size: TreeSize(2),
        tree_root: Hash([1; 32]),
        commit_time_ms: 1_700_000_000_000,
    }
}

fn decision_record() -> DecisionRecord {
    DecisionRecord {
        decision: TxnDecision::Commit,
        participants: vec![
            Participant { shard: ShardId(0), writes: 1 },
            Participant { shard: ShardId(2), writes: 0 },
        ],
    }
}

/// A receipt of one write, with its decision, both in one shard log.
fn receipt() -> Receipt {
    let txn_id = TxnId([9; 16]);
    let mut log = TestLog::new(0, 2, vec![test_signer()]);
    let write = log.append_in_txn(b"k", b"v", txn_id);
    let value = decision_record().encode().expect("encodes");
    let decision = log.append_in_txn(&decision_key(ShardId(0), txn_id), &value, txn_id);
    Receipt {
        txn_id,
        coordinator: ShardId(0),
        decision: log.bundle(decision, 4, None),
        writes: vec![log.bundle(write, 4, None)],
    }
}

/// Valid encodings of every format, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let log = TestLog::new(0, 9, vec![test_signer()]);
    let bundle = log.bundle(4, 9, Some(3));
    vec![
        bundle.leaf.encode().expect("leaf"),
        bundle.checkpoint.to_text().into_bytes(),
        bundle.to_binary().expect("binary"),
        bundle.to_json().expect("json").into_bytes(),
        test_signer().verifier_key().to_string().into_bytes(),
        test_signer().to_secret_string().into_bytes(),
        serde_json::to_vec(&log.consistency(3, 9)).expect("json"),
        block().encode(),
        serde_json::to_vec(&block()).expect("json"),
        encode_entry_bundle(&[b"ab".as_slice(), b"", b"cde"]).expect("bundle"),
        b"tile/entries/x001/x234/067.p/8".to_vec(),
        log.block_range(&log.must_blocks(&[2, 3]), 9, Some(3)).to_json().into_bytes(),
        decision_record().encode().expect("decision record"),
        receipt().to_json().expect("receipt").into_bytes(),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(prop::sample::Index, u8),
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Remove(prop::sample::Index, usize),
    Truncate(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<prop::sample::Index>(), 1usize..16).prop_map(|(i, n)| Edit::Remove(i, n)),
        any::<prop::sample::Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match e {
        Edit::Flip(i, b) => bytes[i.index(len)] ^= 1 << b,
        Edit::Set(i, v) => bytes[i.index(len)] = *v,
        Edit::Insert(i, v) => {
            let at = i.index(bytes.len());
            bytes.splice(at..at, v.iter().copied());
        }
        Edit::Remove(i, n) => {
            let at = i.index(bytes.len());
            let end = (at + n).min(bytes.len());
            bytes.drain(at..end);
        }
        Edit::Truncate(i) => bytes.truncate(i.index(bytes.len())),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_all(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,300}") {
        decode_all(text.as_bytes());
    }

    #[test]
    fn edited_valid_encodings_never_panic(
        seed in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let seeds = seeds();
        let mut bytes = seeds[seed.index(seeds.len())].clone();
        for e in &edits {
            apply(&mut bytes, e);
        }
        decode_all(&bytes);
    }
}

#[test]
fn the_seeds_are_valid() {
    let seeds = seeds();
    Leaf::decode(&seeds[0]).expect("leaf");
    SignedCheckpoint::parse(&seeds[1]).expect("checkpoint");
    ProofBundle::parse(&seeds[2]).expect("binary bundle");
    ProofBundle::parse(&seeds[3]).expect("json bundle");
    std::str::from_utf8(&seeds[4]).expect("utf8").parse::<VerifierKey>().expect("vkey");
    NoteSigner::from_secret_string(std::str::from_utf8(&seeds[5]).expect("utf8")).expect("skey");
    serde_json::from_slice::<ConsistencyProof>(&seeds[6]).expect("proof");
    Block::decode(&seeds[7]).expect("block");
    serde_json::from_slice::<Block>(&seeds[8]).expect("block json");
    decode_entry_bundle(&seeds[9], 3).expect("entry bundle");
    TilePath::parse(std::str::from_utf8(&seeds[10]).expect("utf8")).expect("tile path");
    BlockRange::from_json(&seeds[11]).expect("blocks response");
    DecisionRecord::decode(&seeds[12]).expect("decision record");
    Receipt::from_json(&seeds[13]).expect("receipt");
}
