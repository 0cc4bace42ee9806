#![no_main]
//! The JSON form of a consistency proof: never panics.
use blockdb_verifier::ConsistencyProof;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<ConsistencyProof>(data);
});
