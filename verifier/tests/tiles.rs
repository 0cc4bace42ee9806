//! C2SP tlog-tiles: tile paths (the spec's examples, the canonical form, what is refused), which
//! tiles a tree has, and entry bundles.

use blockdb_verifier::tiles::{
    ENTRY_LEN_MAX, LEVEL_MAX, TILE_PATH_LEN_MAX, TILE_WIDTH, decode_entry_bundle,
    encode_entry_bundle,
};
use blockdb_verifier::{
    DecodeError, EntryBundleError, TileKind, TilePath, TilePathError, TreeSize, tile_width,
};
use proptest::prelude::*;

fn hashes(level: u8) -> TileKind {
    TileKind::Hashes { level }
}

fn must_path(kind: TileKind, index: u64, width: u16) -> TilePath {
    TilePath::new(kind, index, width).expect("valid tile")
}

/// `tile_width` from the spec's definition, in u128 so that nothing overflows.
fn reference_width(level: u8, index: u64, tree_size: u64) -> Option<u16> {
    if level > 63 {
        return None;
    }
    let hashes = 256u128.checked_pow(u32::from(level)).map_or(0, |d| u128::from(tree_size) / d);
    let start = u128::from(index) * 256;
    (hashes > start).then(|| (hashes - start).min(256) as u16)
}

#[test]
fn the_specs_examples() {
    // "index 1234067 will be encoded as x001/x234/067"
    let tile = must_path(hashes(0), 1_234_067, 256);
    assert_eq!(tile.to_path(), "tile/0/x001/x234/067");
    assert_eq!(TilePath::parse("tile/0/x001/x234/067"), Ok(tile));
    let bundle = must_path(TileKind::Entries, 1_234_067, 8);
    assert_eq!(bundle.to_path(), "tile/entries/x001/x234/067.p/8");
    assert_eq!(TilePath::parse("tile/entries/x001/x234/067.p/8"), Ok(bundle));

    // "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0
    // tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and one
    // partial level 2 tile of width 1."
    let size = TreeSize(70_000);
    assert!((0..273).all(|n| tile_width(0, n, size) == Some(256)));
    assert_eq!(tile_width(0, 273, size), Some(112));
    assert_eq!(tile_width(0, 274, size), None);
    assert_eq!(tile_width(1, 0, size), Some(256));
    assert_eq!(tile_width(1, 1, size), Some(17));
    assert_eq!(tile_width(1, 2, size), None);
    assert_eq!(tile_width(2, 0, size), Some(1));
    assert_eq!(tile_width(2, 1, size), None);
    assert_eq!(tile_width(3, 0, size), None);
    assert_eq!(
        TilePath::in_tree(hashes(0), 273, size).map(|t| t.to_path()).as_deref(),
        Some("tile/0/273.p/112")
    );
    assert_eq!(
        TilePath::in_tree(TileKind::Entries, 273, size).map(|t| t.to_path()).as_deref(),
        Some("tile/entries/273.p/112")
    );

    // "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile
    // of width 1."
    let size = TreeSize(256);
    assert_eq!(tile_width(0, 0, size), Some(256));
    assert_eq!(tile_width(0, 1, size), None);
    assert_eq!(tile_width(1, 0, size), Some(1));
    assert_eq!(tile_width(2, 0, size), None);
}

#[test]
fn which_tiles_small_and_huge_trees_have() {
    // The empty tree has no tiles; "empty tiles MUST NOT be served".
    for level in 0..=LEVEL_MAX {
        assert_eq!(tile_width(level, 0, TreeSize(0)), None);
    }
    assert_eq!(tile_width(0, 0, TreeSize(1)), Some(1));
    assert_eq!(tile_width(1, 0, TreeSize(255)), None);
    // The largest tree: levels 0..=7 have tiles, level 8 would need 2^64 leaves.
    let max = TreeSize(u64::MAX);
    assert_eq!(tile_width(7, 0, max), Some(255));
    assert_eq!(tile_width(8, 0, max), None);
    assert_eq!(tile_width(63, 0, max), None);
    assert_eq!(tile_width(64, 0, max), None);
    assert_eq!(tile_width(0, u64::MAX / 256, max), Some(255));
    assert_eq!(tile_width(0, u64::MAX, max), None);
}

#[test]
fn index_encoding() {
    for (index, path) in [
        (0, "tile/0/000"),
        (7, "tile/0/007"),
        (999, "tile/0/999"),
        (1000, "tile/0/x001/000"),
        (1001, "tile/0/x001/001"),
        (999_999, "tile/0/x999/999"),
        (1_000_000, "tile/0/x001/x000/000"),
        (u64::MAX, "tile/0/x018/x446/x744/x073/x709/x551/615"),
    ] {
        let tile = must_path(hashes(0), index, 256);
        assert_eq!(tile.to_path(), path);
        assert_eq!(tile.to_string(), path);
        assert_eq!(path.parse::<TilePath>(), Ok(tile));
    }
    // The longest canonical path fits the limit.
    let longest = must_path(TileKind::Entries, u64::MAX, 255).to_path();
    assert_eq!(longest, "tile/entries/x018/x446/x744/x073/x709/x551/615.p/255");
    assert_eq!(longest.len(), 52);
    assert!(longest.len() <= TILE_PATH_LEN_MAX);
    let deepest = must_path(hashes(63), 5, 1);
    assert_eq!(deepest.to_path(), "tile/63/005.p/1");
    assert_eq!(TilePath::parse("tile/63/005.p/1"), Ok(deepest));
    assert_eq!(deepest.kind(), hashes(63));
    assert_eq!((deepest.index(), deepest.width(), deepest.is_partial()), (5, 1, true));
}

#[test]
fn parse_refuses_non_canonical_and_malformed_paths() {
    let refused = [
        // Not a tile path.
        "",
        "tile",
        "tile/",
        "/tile/0/000",
        "tiles/0/000",
        "TILE/0/000",
        "prefix/tile/0/000",
        // Levels.
        "tile/64/000",
        "tile/00/000",
        "tile/01/000",
        "tile/+1/000",
        "tile/-1/000",
        "tile/1a/000",
        "tile/ 1/000",
        "tile/256/000",
        "tile/entry/000",
        "tile/Entries/000",
        "tile/data/000",
        // Index groups.
        "tile/0",
        "tile/0/",
        "tile/0/0",
        "tile/0/00",
        "tile/0/0000",
        "tile/0/+01",
        "tile/0/-01",
        "tile/0/+001",
        "tile/0/x01",
        "tile/0/x1/000",
        "tile/0/x0001/000",
        "tile/0/x001",
        "tile/0/001/000",
        "tile/0/x001/x000",
        "tile/0/X001/000",
        "tile/0/x000/001",
        "tile/0/x000/x001/000",
        "tile/0/x001//000",
        "tile/0/x001/000/",
        "tile/0/ 001",
        "tile/0/001 ",
        "tile/0/0x1",
        "tile/0/١٢٣",
        "tile/0/x018/x446/x744/x073/x709/x551/616",
        "tile/0/x999/x999/x999/x999/x999/x999/999",
        "tile/0/x001/x001/x001/x001/x001/x001/x001/001",
        // Widths.
        "tile/0/000.p",
        "tile/0/000.p/",
        "tile/0/000.p/0",
        "tile/0/000.p/00",
        "tile/0/000.p/08",
        "tile/0/000.p/256",
        "tile/0/000.p/1000",
        "tile/0/000.p/+8",
        "tile/0/000.p/-8",
        "tile/0/000.p/8 ",
        "tile/0/000.P/8",
        "tile/0/000p/8",
        "tile/0/000.p/8/",
        "tile/0/000.p/8/000",
        "tile/0/000.p/8.p/9",
        "tile/0/x001.p/8/000",
        "tile/0/.p/8",
        "tile/entries/000.p/256",
        // Too long.
        "tile/0/x000/x000/x000/x000/x000/x000/x000/x000/x000/x000/x000/x000/000",
    ];
    for path in refused {
        assert!(TilePath::parse(path).is_err(), "{path:?} was accepted");
    }

    // The errors say what is wrong.
    assert_eq!(TilePath::parse("tile/64/000"), Err(TilePathError::Level { got: "64".into() }));
    assert_eq!(
        TilePath::parse("tile/0/000.p/256"),
        Err(TilePathError::Width { got: "256".into() })
    );
    assert_eq!(
        TilePath::parse("tile/0/x018/x446/x744/x073/x709/x551/616"),
        Err(TilePathError::IndexOverflow { got: "x018/x446/x744/x073/x709/x551/616".into() })
    );
    assert!(matches!(TilePath::parse("tile/0/x000/001"), Err(TilePathError::Index { .. })));
    assert!(matches!(TilePath::parse("x/tile/0/000"), Err(TilePathError::NotTilePath { .. })));
    let long = format!("tile/0/{}", "x001/".repeat(20));
    assert_eq!(TilePath::parse(&long), Err(TilePathError::TooLong { len: long.len() }));
}

#[test]
fn new_refuses_levels_and_widths_out_of_range() {
    assert_eq!(TilePath::new(hashes(64), 0, 256), Err(TilePathError::LevelOutOfRange { got: 64 }));
    assert_eq!(TilePath::new(hashes(0), 0, 0), Err(TilePathError::WidthOutOfRange { got: 0 }));
    assert_eq!(
        TilePath::new(TileKind::Entries, 0, 257),
        Err(TilePathError::WidthOutOfRange { got: 257 })
    );
    assert!(!must_path(hashes(0), 0, TILE_WIDTH).is_partial());
}

#[test]
fn entry_bundles_round_trip() {
    let entries: Vec<Vec<u8>> = vec![b"first".to_vec(), Vec::new(), vec![0xab; 300]];
    let bytes = encode_entry_bundle(&entries).expect("encodes");
    assert_eq!(&bytes[..7], b"\x00\x05first");
    assert_eq!(&bytes[7..11], &[0x00, 0x00, 0x01, 0x2c]);
    assert_eq!(bytes.len(), 2 + 5 + 2 + 2 + 300);
    let decoded = decode_entry_bundle(&bytes, 3).expect("decodes");
    assert_eq!(decoded, entries.iter().map(Vec::as_slice).collect::<Vec<_>>());

    // A full bundle with the longest entries.
    let full: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; ENTRY_LEN_MAX]).collect();
    let bytes = encode_entry_bundle(&full).expect("encodes");
    assert_eq!(decode_entry_bundle(&bytes, TILE_WIDTH).expect("decodes").len(), 256);
}

#[test]
fn entry_bundle_errors() {
    // Encoding.
    let none: [&[u8]; 0] = [];
    assert_eq!(encode_entry_bundle(&none), Err(EntryBundleError::EntryCount { got: 0 }));
    let too_many = vec![b"x"; 257];
    assert_eq!(encode_entry_bundle(&too_many), Err(EntryBundleError::EntryCount { got: 257 }));
    let too_long = [vec![0u8; 3], vec![0u8; ENTRY_LEN_MAX + 1]];
    assert_eq!(
        encode_entry_bundle(&too_long),
        Err(EntryBundleError::EntryTooLong { position: 1, len: ENTRY_LEN_MAX + 1 })
    );

    // Decoding: widths, truncation, trailing bytes.
    let bytes = encode_entry_bundle(&[b"ab", b"cd"]).expect("encodes");
    assert_eq!(decode_entry_bundle(&bytes, 0), Err(EntryBundleError::Width { got: 0 }));
    assert_eq!(decode_entry_bundle(&bytes, 257), Err(EntryBundleError::Width { got: 257 }));
    assert!(matches!(
        decode_entry_bundle(&bytes, 3),
        Err(EntryBundleError::Malformed {
            position: 2,
            error: DecodeError::Truncated { field: "entry length", .. }
        })
    ));
    assert!(matches!(
        decode_entry_bundle(&bytes, 1),
        Err(EntryBundleError::Malformed { position: 1, error: DecodeError::TrailingBytes { .. } })
    ));
    for len in 0..bytes.len() {
        assert!(decode_entry_bundle(&bytes[..len], 2).is_err(), "truncated to {len}");
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(decode_entry_bundle(&long, 2).is_err());
    assert!(matches!(
        decode_entry_bundle(&[0x00, 0x05, b'a'], 1),
        Err(EntryBundleError::Malformed {
            position: 0,
            error: DecodeError::Truncated { field: "entry", need: 5, have: 1, .. }
        })
    ));
}

fn tile_path() -> impl Strategy<Value = TilePath> {
    let kind = prop_oneof![(0..=LEVEL_MAX).prop_map(hashes), Just(TileKind::Entries)];
    let index = prop_oneof![0u64..2000, any::<u64>()];
    (kind, index, 1..=TILE_WIDTH).prop_map(|(k, n, w)| must_path(k, n, w))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_inverts_to_path(tile in tile_path()) {
        let path = tile.to_path();
        prop_assert!(path.len() <= TILE_PATH_LEN_MAX);
        prop_assert_eq!(TilePath::parse(&path), Ok(tile));
    }

    #[test]
    fn arbitrary_strings_never_panic_and_accepted_paths_are_canonical(text in "(?s).{0,80}") {
        if let Ok(tile) = TilePath::parse(&text) {
            prop_assert_eq!(tile.to_path(), text);
        }
    }

    #[test]
    fn near_miss_paths_never_panic(
        kind in "(entries|[0-9]{1,3}|[+-]?[0-9])",
        rest in "[0-9x./p+-]{0,40}",
    ) {
        let text = format!("tile/{kind}/{rest}");
        if let Ok(tile) = TilePath::parse(&text) {
            prop_assert_eq!(tile.to_path(), text);
        }
    }

    #[test]
    fn tile_width_matches_the_definition(
        level in 0u8..70,
        index in prop_oneof![0u64..300, any::<u64>()],
        size in prop_oneof![0u64..200_000, any::<u64>()],
    ) {
        let width = tile_width(level, index, TreeSize(size));
        prop_assert_eq!(width, reference_width(level, index, size));
        prop_assert_eq!(
            TilePath::in_tree(hashes(level), index, TreeSize(size)).map(|t| t.width()),
            width
        );
    }

    #[test]
    fn entry_bundle_decode_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        width in 0u16..300,
    ) {
        if let Ok(entries) = decode_entry_bundle(&bytes, width) {
            prop_assert_eq!(entries.len(), usize::from(width));
            prop_assert_eq!(encode_entry_bundle(&entries).expect("re-encodes"), bytes);
        }
    }

    #[test]
    fn entry_bundles_round_trip_any_entries(
        entries in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..=256),
    ) {
        let bytes = encode_entry_bundle(&entries).expect("encodes");
        let width = u16::try_from(entries.len()).expect("at most 256");
        let decoded = decode_entry_bundle(&bytes, width).expect("decodes");
        prop_assert_eq!(decoded, entries.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }
}
