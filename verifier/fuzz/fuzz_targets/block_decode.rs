#![no_main]
//! `Block::decode` and the JSON form of `Block`: never panic; whatever decodes re-encodes to the
//! same bytes and survives the JSON round trip.
use blockdb_verifier::Block;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::decode(data) {
        assert_eq!(block.encode(), data);
        let json = serde_json::to_vec(&block).expect("a block serializes");
        let back: Block = serde_json::from_slice(&json).expect("its JSON deserializes");
        assert_eq!(back, block);
    }
    let _ = serde_json::from_slice::<Block>(data);
});
