#![no_main]
//! `CheckpointChain::from_json`: never panics.
use blockdb_verifier::CheckpointChain;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = CheckpointChain::from_json(data);
});
