//! End to end, against a real `blockdb` process: every read's proof bundle verifies against the
//! node's verifier key; `known_size` brings a consistency proof that verifies; the tiles served
//! reproduce the checkpoint's root and the inclusion proofs; the blocks chain and match the log.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blockdb_verifier::block::{verify_against_checkpoint, verify_against_leaves, verify_chain};
use blockdb_verifier::tiles::decode_entry_bundle;
use blockdb_verifier::{
    Block, Checkpoint, ConsistencyProof, Hash, LogIndex, SignedCheckpoint, TreeSize, leaf_hash,
    root_of_leaf_hashes, verify_inclusion,
};
use common::{Server, enc};
use serde_json::Value;

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|h| {
            Hash::from_slice(&hex::decode(h.as_str().expect("hex")).expect("hex")).expect("32")
        })
        .collect()
}

fn signed(v: &Value) -> SignedCheckpoint {
    SignedCheckpoint::parse(v.as_str().expect("text").as_bytes()).expect("checkpoint parses")
}

fn must_fill(server: &Server) {
    for i in 0..40u32 {
        let key = format!("key-{i:02}");
        let (s, body) = server.insert(key.as_bytes(), format!("v1 of {key}").as_bytes());
        assert_eq!(s, 201, "{body}");
    }
    for round in 2..=4 {
        for i in (0..40u32).step_by(3) {
            let key = format!("key-{i:02}");
            let (s, body) =
                server.append(key.as_bytes(), format!("v{round} of {key}").as_bytes(), None);
            assert_eq!(s, 200, "{body}");
            assert_eq!(body["version"], round);
        }
    }
}

#[test]
fn every_read_is_proven_against_the_node_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::must_start(dir.path(), &[]);

    // Phase 1: records, each version, proven.
    must_fill(&server);
    let (size, _) = server.checkpoint(0);
    assert_eq!(size, 40 + 3 * 14);
    for i in 0..40u32 {
        let key = format!("key-{i:02}");
        let latest = server.must_get_verified(key.as_bytes(), None);
        let versions = if i % 3 == 0 { 4 } else { 1 };
        assert_eq!(latest.record.version, versions);
        for v in 1..=versions {
            let b = server.must_get_verified(key.as_bytes(), Some(v));
            assert_eq!(b.record.value.as_deref(), Some(format!("v{v} of {key}").as_bytes()));
        }
    }

    // Phase 2: history and scan pages verify bundle by bundle.
    let (s, body) = server.get(&format!("/v1/history?key={}&limit=3", enc(b"key-00")));
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["bundles"].as_array().expect("bundles").len(), 3);
    assert_eq!(body["next_version"], 4);
    let (s, body) = server.get(&format!("/v1/scan?start={}&limit=5", enc(b"key-10")));
    assert_eq!(s, 200, "{body}");
    let keys: Vec<_> = body["bundles"]
        .as_array()
        .expect("bundles")
        .iter()
        .map(|b| {
            let bundle =
                blockdb_verifier::ProofBundle::from_json(b.to_string().as_bytes()).expect("parse");
            blockdb_verifier::verify_bundle(&bundle, &server.policy(), None).expect("verifies");
            String::from_utf8(bundle.record.key).expect("utf-8")
        })
        .collect();
    assert_eq!(keys, ["key-10", "key-11", "key-12", "key-13", "key-14"]);
    assert_eq!(body["next_key"], STANDARD.encode("key-15"));

    // Phase 3: known_size brings a consistency proof from that size, which verifies.
    let old = server.must_get_verified(b"key-01", None).checkpoint.checkpoint().clone();
    for i in 0..5 {
        server.insert(format!("later-{i}").as_bytes(), b"x");
    }
    let path = format!("/v1/records?key={}&known_size={}", enc(b"key-01"), old.size.0);
    let (s, body) = server.get(&path);
    assert_eq!(s, 200, "{body}");
    let bundle =
        blockdb_verifier::ProofBundle::from_json(body.to_string().as_bytes()).expect("parse");
    assert!(bundle.consistency_proof.is_some());
    blockdb_verifier::verify_bundle(&bundle, &server.policy(), Some(&old)).expect("consistent");
    assert_eq!(bundle.checkpoint.checkpoint().size, TreeSize(size + 5));

    // Phase 4: an entry by log index, with its proof.
    let (s, body) = server.get("/v1/shards/0/entries/7?known_size=3");
    assert_eq!(s, 200, "{body}");
    let cp = signed(&body["checkpoint"]);
    let leaf = STANDARD.decode(body["leaf"].as_str().expect("leaf")).expect("b64");
    verify_inclusion(
        &leaf_hash(&leaf),
        LogIndex(7),
        cp.checkpoint().size,
        &hashes(&body["inclusion_proof"]),
        &cp.checkpoint().root,
    )
    .expect("inclusion");
    server.must_stop();
}

#[test]
fn tiles_reproduce_the_root_and_the_proofs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::must_start(dir.path(), &[]);
    // 300 leaves: one full level-0 tile and a partial one.
    for i in 0..300u32 {
        let (s, _) = server.insert(format!("t{i:04}").as_bytes(), &i.to_be_bytes());
        assert_eq!(s, 201);
    }
    let (s, text) = server.get_bytes("/tlog/0/checkpoint");
    assert_eq!(s, 200);
    let cp = SignedCheckpoint::parse(&text).expect("checkpoint");
    server.policy().verify(&cp).expect("signed by the node");
    let size = cp.checkpoint().size.0;
    assert_eq!(size, 300);

    // Level-0 tiles are the leaf hashes; their root is the checkpoint's.
    let (s, full) = server.get_bytes("/tlog/0/tile/0/000");
    assert_eq!(s, 200);
    assert_eq!(full.len(), 256 * 32);
    let (s, partial) = server.get_bytes("/tlog/0/tile/0/001.p/44");
    assert_eq!(s, 200);
    assert_eq!(partial.len(), 44 * 32);
    let leaves: Vec<Hash> = full
        .chunks(32)
        .chain(partial.chunks(32))
        .map(|c| Hash::from_slice(c).expect("32"))
        .collect();
    assert_eq!(root_of_leaf_hashes(&leaves), cp.checkpoint().root);
    // The level-1 partial tile holds the root of the first full tile.
    let (s, l1) = server.get_bytes("/tlog/0/tile/1/000.p/1");
    assert_eq!(s, 200);
    assert_eq!(Hash::from_slice(&l1).expect("32"), root_of_leaf_hashes(&leaves[..256]));

    // Entry bundles hold the leaves whose hashes the level-0 tiles hold.
    let (s, bundle) = server.get_bytes("/tlog/0/tile/entries/001.p/44");
    assert_eq!(s, 200);
    let entries = decode_entry_bundle(&bundle, 44).expect("entry bundle");
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(leaf_hash(e), leaves[256 + i]);
    }
    // A narrower partial tile is a prefix; a full tile or a wider one the tree lacks is 404.
    let (s, narrow) = server.get_bytes("/tlog/0/tile/0/001.p/3");
    assert_eq!((s, &narrow[..]), (200, &partial[..96]));
    assert_eq!(server.get_bytes("/tlog/0/tile/0/001").0, 404);
    assert_eq!(server.get_bytes("/tlog/0/tile/0/001.p/45").0, 404);
    assert_eq!(server.get_bytes("/tlog/0/tile/0/x001/000").0, 404);
    assert_eq!(server.get_bytes("/tlog/0/tile/0/01").0, 400);

    // Inclusion proofs the server gives check out against the root rebuilt from tiles.
    for index in [0u64, 1, 255, 256, 299] {
        let (s, body) = server.get(&format!("/v1/shards/0/entries/{index}"));
        assert_eq!(s, 200);
        let proof = hashes(&body["inclusion_proof"]);
        verify_inclusion(
            &leaves[index as usize],
            LogIndex(index),
            TreeSize(size),
            &proof,
            &root_of_leaf_hashes(&leaves),
        )
        .expect("proof against the tile-derived root");
    }
    server.must_stop();
}

#[test]
fn blocks_chain_and_match_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::must_start(dir.path(), &[]);
    // Concurrent writers so that some entries hold several records.
    std::thread::scope(|s| {
        for t in 0..8 {
            let server = &server;
            s.spawn(move || {
                for i in 0..25 {
                    let (st, body) = server.insert(format!("b{t}-{i}").as_bytes(), b"v");
                    assert_eq!(st, 201, "{body}");
                }
            });
        }
    });
    let (s, body) = server.get("/v1/blocks?limit=1000");
    assert_eq!(s, 200, "{body}");
    let items = body["blocks"].as_array().expect("blocks");
    let blocks: Vec<Block> = items
        .iter()
        .map(|b| serde_json::from_value(b["block"].clone()).expect("block json"))
        .collect();
    verify_chain(None, &blocks).expect("chain");
    let total: u64 = blocks.iter().map(|b| b.record_count).sum();
    assert_eq!(total, 200);
    // Each block against the checkpoint it came with.
    for item in items {
        let block: Block = serde_json::from_value(item["block"].clone()).expect("block");
        let cp = signed(&item["checkpoint"]);
        server.policy().verify(&cp).expect("signed");
        let proof = item["consistency_proof"].as_object().map(|p| ConsistencyProof {
            from_size: TreeSize(p["from_size"].as_u64().expect("from")),
            to_size: TreeSize(p["to_size"].as_u64().expect("to")),
            hashes: hashes(&p["hashes"]),
        });
        let c: &Checkpoint = cp.checkpoint();
        verify_against_checkpoint(&block, c, proof.as_ref()).expect("block is a prefix of the log");
    }
    // And against the leaves themselves, fetched from the entry bundles.
    let mut leaves = Vec::new();
    for n in 0..=(200 / 256) {
        let width = (200 - n * 256).min(256) as u16;
        let path = if width == 256 {
            format!("/tlog/0/tile/entries/{n:03}")
        } else {
            format!("/tlog/0/tile/entries/{n:03}.p/{width}")
        };
        let (s, bytes) = server.get_bytes(&path);
        assert_eq!(s, 200);
        leaves.extend(
            decode_entry_bundle(&bytes, width).expect("bundle").iter().map(|l| leaf_hash(l)),
        );
    }
    verify_against_leaves(&blocks, &leaves).expect("blocks match the leaves");
    // The verifier's own check of the response as the server sent it.
    let range =
        blockdb_verifier::BlockRange::from_json(body.to_string().as_bytes()).expect("parses");
    let verified =
        blockdb_verifier::verify_block_range(&range, &server.policy(), None).expect("verifies");
    assert_eq!(verified.blocks.len(), blocks.len());
    let (s, latest) = server.get("/v1/blocks/latest");
    assert_eq!(s, 200);
    assert_eq!(latest["block"]["height"].as_u64(), blocks.last().map(|b| b.height));
    assert_eq!(server.get("/v1/blocks/0").0, 404);
    server.must_stop();
}

#[test]
fn operations_endpoints_report_the_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::must_start(dir.path(), &["--log-format", "json"]);
    for i in 0..5u32 {
        assert_eq!(server.insert(format!("m{i}").as_bytes(), b"v").0, 201);
    }
    assert_eq!(server.get("/healthz"), (200, serde_json::json!({"status": "ok"})));
    assert_eq!(server.get("/readyz"), (200, serde_json::json!({"status": "ready"})));
    let (s, text) = server.get_bytes("/metrics");
    assert_eq!(s, 200);
    let text = String::from_utf8(text).expect("utf-8");
    let value = |line_start: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("{line_start} in\n{text}"));
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("a number")
    };
    assert_eq!(value("blockdb_tree_size{shard=\"0\"}"), 5.0);
    assert!(value("blockdb_applied_index{shard=\"0\"}") >= 5.0);
    assert!(
        value("blockdb_storage{what=\"wal_fsyncs\"}") >= 5.0,
        "each acknowledged write was fsynced"
    );
    assert_eq!(
        value("blockdb_requests_total{api=\"rest\",route=\"/v1/insert\",status=\"201\"}"),
        5.0
    );
    assert!(text.contains("blockdb_request_duration_seconds_bucket"));
    assert!(text.contains("blockdb_storage{what=\"memtable_bytes\"}"));
    server.must_stop();
}
