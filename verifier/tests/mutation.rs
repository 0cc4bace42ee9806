//! Every single-bit flip of a valid proof, checkpoint, signature or leaf is rejected.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blockdb_verifier::{
    Hash, LogIndex, Note, ProofBundle, SignedCheckpoint, TreeSize, verify_bundle,
    verify_consistency, verify_inclusion,
};
use common::{TestLog, leaf_hashes, policy_of, reference, test_signer};

/// Calls `f` with every single-bit flip of `bytes`.
fn each_bit_flip(bytes: &[u8], mut f: impl FnMut(usize, &[u8])) {
    let mut copy = bytes.to_vec();
    for i in 0..bytes.len() * 8 {
        copy[i / 8] ^= 1 << (i % 8);
        f(i, &copy);
        copy[i / 8] ^= 1 << (i % 8);
    }
}

fn flip_hash(h: &Hash, bit: usize) -> Hash {
    let mut h = *h;
    h.0[bit / 8] ^= 1 << (bit % 8);
    h
}

#[test]
fn inclusion_proof_leaf_and_root_bit_flips() {
    let all = leaf_hashes(77);
    let root = reference::root(&all);
    for m in [0usize, 31, 64, 76] {
        let proof = reference::inclusion(m, &all);
        let (index, size) = (LogIndex(m as u64), TreeSize(77));
        verify_inclusion(&all[m], index, size, &proof, &root).expect("valid");
        for i in 0..proof.len() {
            for bit in 0..256 {
                let mut p = proof.clone();
                p[i] = flip_hash(&p[i], bit);
                assert!(
                    verify_inclusion(&all[m], index, size, &p, &root).is_err(),
                    "node {i} bit {bit}"
                );
            }
        }
        for bit in 0..256 {
            assert!(
                verify_inclusion(&flip_hash(&all[m], bit), index, size, &proof, &root).is_err()
            );
            assert!(
                verify_inclusion(&all[m], index, size, &proof, &flip_hash(&root, bit)).is_err()
            );
        }
        // Tree sizes are not flipped here: a size is authenticated by the signed checkpoint that
        // carries it together with the root (see `signed_checkpoint_bit_flips`), and RFC 9162
        // verification binds a proof to a (size, root) pair only through that signature.
        for bit in 0..64 {
            let i = LogIndex(index.0 ^ (1 << bit));
            assert!(verify_inclusion(&all[m], i, size, &proof, &root).is_err(), "index bit {bit}");
        }
    }
}

#[test]
fn consistency_proof_and_root_bit_flips() {
    let all = leaf_hashes(77);
    for m in [1usize, 6, 32, 50, 76] {
        let proof = reference::consistency(m, &all);
        let (r1, r2) = (reference::root(&all[..m]), reference::root(&all));
        let (s1, s2) = (TreeSize(m as u64), TreeSize(77));
        verify_consistency(s1, s2, &r1, &r2, &proof).expect("valid");
        for i in 0..proof.len() {
            for bit in 0..256 {
                let mut p = proof.clone();
                p[i] = flip_hash(&p[i], bit);
                assert!(
                    verify_consistency(s1, s2, &r1, &r2, &p).is_err(),
                    "{m}: node {i} bit {bit}"
                );
            }
        }
        for bit in 0..256 {
            assert!(verify_consistency(s1, s2, &flip_hash(&r1, bit), &r2, &proof).is_err());
            assert!(verify_consistency(s1, s2, &r1, &flip_hash(&r2, bit), &proof).is_err());
        }
    }
}

#[test]
fn signed_checkpoint_bit_flips() {
    let log = TestLog::new(0, 12, vec![test_signer()]);
    let policy = policy_of(&[&test_signer()], 1);
    let text = log.signed(12).to_text();
    policy.verify(&SignedCheckpoint::parse(text.as_bytes()).expect("parses")).expect("valid");
    let mut flips = 0;
    each_bit_flip(text.as_bytes(), |i, bytes| {
        flips += 1;
        if let Ok(signed) = SignedCheckpoint::parse(bytes) {
            assert!(policy.verify(&signed).is_err(), "bit {i} of the checkpoint note accepted");
        }
    });
    assert_eq!(flips, text.len() * 8);
}

#[test]
fn signature_bit_flips() {
    let signer = test_signer();
    let text = "example.com/log\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
    let note = Note::sign(text, &[&signer]).expect("signs");
    let keys = [signer.verifier_key().clone()];
    note.verify(&keys).expect("valid");
    let sig = &note.signatures()[0];
    each_bit_flip(&sig.signature, |i, bytes| {
        let mut raw = sig.key_id.to_be_bytes().to_vec();
        raw.extend_from_slice(bytes);
        let line = format!("\u{2014} {} {}\n", sig.name, STANDARD.encode(&raw));
        let forged = Note::parse(format!("{text}\n{line}").as_bytes()).expect("well-formed");
        assert!(forged.verify(&keys).is_err(), "signature bit {i} accepted");
    });
}

#[test]
fn every_bit_of_a_bundle_matters() {
    // The binary form holds the record, the leaf, the inclusion proof, the signed checkpoint and a
    // consistency proof: one flip anywhere must make it unreadable or invalid.
    let log = TestLog::new(0, 21, vec![test_signer()]);
    let policy = policy_of(&[&test_signer()], 1);
    let trusted = log.checkpoint(9);
    let bundle = log.bundle(13, 21, Some(9));
    verify_bundle(&bundle, &policy, Some(&trusted)).expect("valid");
    let bin = bundle.to_binary().expect("encodes");
    let mut malformed = 0;
    each_bit_flip(&bin, |i, bytes| match ProofBundle::from_binary(bytes) {
        Err(e) => {
            assert!(e.is_malformed());
            malformed += 1;
        }
        Ok(b) => {
            assert!(verify_bundle(&b, &policy, Some(&trusted)).is_err(), "bundle bit {i} accepted")
        }
    });
    assert!(malformed > 0 && malformed < bin.len() * 8, "both kinds of failure occur");
}

#[test]
fn every_bit_of_a_leaf_matters() {
    let log = TestLog::new(0, 21, vec![test_signer()]);
    let policy = policy_of(&[&test_signer()], 1);
    let bundle = log.bundle(13, 21, None);
    let leaf = bundle.leaf.encode().expect("encodes");
    each_bit_flip(&leaf, |i, bytes| {
        if let Ok(decoded) = blockdb_verifier::Leaf::decode(bytes) {
            let mut b = bundle.clone();
            b.leaf = decoded;
            assert!(verify_bundle(&b, &policy, None).is_err(), "leaf bit {i} accepted");
        }
    });
}
