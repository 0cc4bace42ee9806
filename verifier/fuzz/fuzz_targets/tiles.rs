#![no_main]
//! `TilePath::parse` and `decode_entry_bundle`: never panic; an accepted path is canonical and an
//! accepted bundle re-encodes to the same bytes. The first two bytes choose the bundle's width.
use blockdb_verifier::TilePath;
use blockdb_verifier::tiles::{decode_entry_bundle, encode_entry_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(tile) = TilePath::parse(&text) {
        assert_eq!(tile.to_path(), text);
    }
    if let [hi, lo, bundle @ ..] = data {
        let width = u16::from_be_bytes([*hi, *lo]);
        if let Ok(entries) = decode_entry_bundle(bundle, width) {
            assert_eq!(entries.len(), usize::from(width));
            assert_eq!(encode_entry_bundle(&entries).expect("re-encodes"), bundle);
        }
    }
});
