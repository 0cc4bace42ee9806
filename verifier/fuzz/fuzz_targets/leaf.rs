#![no_main]
//! `Leaf::decode`: never panics, and whatever decodes re-encodes to the same bytes.
use blockdb_verifier::Leaf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(leaf) = Leaf::decode(data) {
        assert_eq!(leaf.encode().expect("a decoded leaf encodes"), data);
    }
});
