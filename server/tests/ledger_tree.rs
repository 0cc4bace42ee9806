//! The Merkle log over the storage engine: roots, inclusion and consistency proofs at every size
//! the log reached, checked with the verifier crate, across tile boundaries (256 and 65,536
//! leaves) and across reopening.

use blockdb_server::ledger::tree::tile_key;
use blockdb_server::ledger::{MerkleLog, TreeError};
use blockdb_server::storage::{Engine, Options, WriteBatch};
use blockdb_verifier::{
    Frontier, Hash, LogIndex, ShardId, TreeSize, leaf_hash, verify_consistency, verify_inclusion,
};
use rand::{Rng, SeedableRng};

const SHARD: ShardId = ShardId(3);

fn leaf(i: u64) -> Hash {
    leaf_hash(format!("leaf {i}").as_bytes())
}

fn options() -> Options {
    Options { memtable_bytes: 4 * 1024 * 1024, ..Options::default() }
}

/// Appends leaves `[from, to)` in one batch.
fn append(engine: &Engine, log: &mut MerkleLog, from: u64, to: u64) {
    let hashes: Vec<Hash> = (from..to).map(leaf).collect();
    let mut batch = WriteBatch::new();
    log.append(&hashes, &mut batch);
    engine.write(batch).expect("write tiles");
}

#[test]
fn roots_and_proofs_at_every_reached_size_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), options()).expect("open");
    let mut log = MerkleLog::new(SHARD);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // Phase 1: grow to just past a full level-1 tile (65,536 leaves) in batches of random size,
    // remembering the independently computed root of every size reached.
    let mut reference = Frontier::new();
    let mut roots = vec![(TreeSize(0), reference.root())];
    let mut size = 0u64;
    while size < 66_000 {
        let n =
            if rng.random_bool(0.3) { rng.random_range(1..5) } else { rng.random_range(1..700) };
        append(&engine, &mut log, size, size + n);
        for i in size..size + n {
            reference.push(leaf(i));
        }
        size += n;
        assert_eq!(log.size(), TreeSize(size));
        assert_eq!(log.root(), reference.root(), "root at {size}");
        roots.push((TreeSize(size), reference.root()));
    }
    // Phase 2: the root of every size reached, from the tiles.
    for (s, root) in &roots {
        assert_eq!(log.root_at(&engine, *s).expect("root_at"), *root, "root_at {s}");
    }
    // Phase 3: inclusion and consistency proofs at sizes reached earlier, verified against the
    // reference roots.
    for _ in 0..400 {
        let (s, root) = roots[rng.random_range(1..roots.len())];
        let index = rng.random_range(0..s.0);
        let proof = log.inclusion_proof(&engine, LogIndex(index), s).expect("inclusion proof");
        verify_inclusion(&leaf(index), LogIndex(index), s, &proof, &root)
            .expect("inclusion verifies");

        let (old, old_root) = roots[rng.random_range(1..roots.len())];
        let (from, to, from_root, to_root) =
            if old <= s { (old, s, old_root, root) } else { (s, old, root, old_root) };
        let p = log.consistency_proof(&engine, from, to).expect("consistency proof");
        verify_consistency(from, to, &from_root, &to_root, &p.hashes)
            .expect("consistency verifies");
    }
    // Proofs of the first and last leaf at the full size, and the boundaries of tiles.
    for index in [0, 255, 256, 65_535, 65_536, size - 1] {
        let proof = log.inclusion_proof(&engine, LogIndex(index), TreeSize(size)).expect("proof");
        verify_inclusion(&leaf(index), LogIndex(index), TreeSize(size), &proof, &log.root())
            .expect("verifies");
    }
}

#[test]
fn a_reopened_log_continues_where_it_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), options()).expect("open");
    let mut log = MerkleLog::new(SHARD);
    append(&engine, &mut log, 0, 70_000);
    let size = log.size();
    let root = log.root();
    drop(log);
    drop(engine);

    let engine = Engine::open(dir.path(), options()).expect("reopen");
    let mut log = MerkleLog::open(&engine, SHARD, size).expect("open the log");
    assert_eq!(log.root(), root);
    append(&engine, &mut log, 70_000, 70_300);
    let mut reference = Frontier::new();
    for i in 0..70_300 {
        reference.push(leaf(i));
    }
    assert_eq!(log.root(), reference.root());
    let p = log.consistency_proof(&engine, size, log.size()).expect("proof");
    verify_consistency(size, log.size(), &root, &log.root(), &p.hashes).expect("verifies");
    // The stored tiles are tlog-tiles: a full level-0 tile is 256 leaf hashes.
    let tile = engine.get(&tile_key(SHARD, 0, 1)).expect("get").expect("tile 0/1");
    let want: Vec<u8> = (256..512).flat_map(|i| leaf(i).0).collect();
    assert_eq!(tile, want);
}

#[test]
fn out_of_range_requests_are_errors_and_missing_tiles_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), options()).expect("open");
    let mut log = MerkleLog::new(SHARD);
    append(&engine, &mut log, 0, 1000);
    let s = TreeSize(1000);
    assert!(matches!(
        log.inclusion_proof(&engine, LogIndex(1000), s),
        Err(TreeError::OutOfRange { .. })
    ));
    assert!(matches!(
        log.inclusion_proof(&engine, LogIndex(0), TreeSize(1001)),
        Err(TreeError::OutOfRange { .. })
    ));
    assert!(matches!(
        log.consistency_proof(&engine, TreeSize(0), s),
        Err(TreeError::OutOfRange { .. })
    ));
    assert!(matches!(
        log.consistency_proof(&engine, TreeSize(10), TreeSize(9)),
        Err(TreeError::OutOfRange { .. })
    ));
    // A size the stored tiles do not reach cannot be opened as if they did.
    assert!(matches!(MerkleLog::open(&engine, SHARD, TreeSize(5000)), Err(TreeError::Storage(_))));
    assert!(matches!(MerkleLog::open(&engine, ShardId(9), s), Err(TreeError::Storage(_))));
}
