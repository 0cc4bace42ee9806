#![no_main]
//! `Note::parse`: never panics, and whatever parses formats back to the same bytes.
use blockdb_verifier::Note;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.to_text().as_bytes(), data);
    }
});
