//! No input makes a decoder panic: arbitrary bytes, and valid encodings with random edits.
//! A decoder that accepts input must also be canonical where the format promises it.

mod common;

use blockdb_verifier::policy::TrustPolicy;
use blockdb_verifier::{
    Checkpoint, CheckpointChain, ConsistencyProof, Leaf, Note, NoteSigner, ProofBundle,
    SignedCheckpoint, VerifierKey,
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
    let text = String::from_utf8_lossy(bytes);
    if let Ok(c) = Checkpoint::from_text(&text) {
        assert_eq!(c.to_text(), text, "checkpoint text is canonical");
    }
    let _ = text.parse::<VerifierKey>();
    let _ = NoteSigner::from_secret_string(&text);
    let _ = TrustPolicy::parse_keys(&text);
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
}
