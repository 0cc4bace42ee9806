#![no_main]
//! Verifier keys, signer keys and key files: never panic; a verifier key that parses formats to a
//! string that parses to the same key.
use blockdb_verifier::{NoteSigner, TrustPolicy, VerifierKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(key) = text.parse::<VerifierKey>() {
        assert_eq!(key.to_string().parse::<VerifierKey>().ok(), Some(key));
    }
    let _ = NoteSigner::from_secret_string(text);
    let _ = TrustPolicy::parse_keys(text);
});
