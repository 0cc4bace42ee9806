#![no_main]
//! `ProofBundle::from_binary`: never panics, and a bundle that parses encodes back to the bytes.
use blockdb_verifier::ProofBundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = ProofBundle::from_binary(data) {
        assert_eq!(bundle.to_binary().expect("a parsed bundle encodes"), data);
    }
});
