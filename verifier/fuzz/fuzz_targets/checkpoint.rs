#![no_main]
//! `SignedCheckpoint::parse` and `Checkpoint::from_text`: never panic; checkpoint text that
//! parses formats back to the same text.
use blockdb_verifier::{Checkpoint, SignedCheckpoint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = SignedCheckpoint::parse(data);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(c) = Checkpoint::from_text(text)
    {
        assert_eq!(c.to_text(), text);
    }
});
