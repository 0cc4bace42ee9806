#![no_main]
//! `ProofBundle::from_json`: never panics; a bundle that parses survives a JSON round trip.
use blockdb_verifier::ProofBundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = ProofBundle::from_json(data) {
        let json = bundle.to_json().expect("a parsed bundle encodes");
        assert_eq!(ProofBundle::from_json(json.as_bytes()).expect("round trip"), bundle);
    }
});
