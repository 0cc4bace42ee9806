#![no_main]
//! `DecisionRecord::decode` and `Receipt::from_json`, then `verify_receipt`: never panic; a
//! decision record that decodes re-encodes to the same bytes; a receipt that parses survives a
//! JSON round trip. The trust policy is a fixed key, so a receipt that verifies must carry that
//! key's signatures.
use blockdb_verifier::{DecisionRecord, NoteSigner, Receipt, TrustPolicy, verify_receipt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = DecisionRecord::decode(data) {
        assert_eq!(record.encode().expect("a decoded record encodes"), data);
    }
    if let Ok(receipt) = Receipt::from_json(data) {
        let json = receipt.to_json().expect("a parsed receipt encodes");
        assert_eq!(Receipt::from_json(json.as_bytes()).expect("round trip"), receipt);
        let signer = NoteSigner::from_seed("fuzz", &[7; 32]).expect("a signer from a fixed seed");
        let policy =
            TrustPolicy::new(vec![signer.verifier_key().clone()], 1).expect("a one-key policy");
        let _ = verify_receipt(&receipt, &policy);
    }
});
