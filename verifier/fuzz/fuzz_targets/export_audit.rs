#![no_main]
//! `audit_export` and `BlockRange::from_json` on arbitrary bytes: never panic. The trust policy
//! is a fixed key, so anything that audits clean must carry that key's signatures.
use blockdb_verifier::export::audit_export;
use blockdb_verifier::{BlockRange, NoteSigner, TrustPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let signer = NoteSigner::from_seed("fuzz", &[7; 32]).expect("a signer from a fixed seed");
    let policy =
        TrustPolicy::new(vec![signer.verifier_key().clone()], 1).expect("a one-key policy");
    let _ = audit_export(data, &policy, &mut |_, _| {});
    let _ = BlockRange::from_json(data);
});
