//! Shared by the integration tests: the third-party test data, a naive recursive RFC 6962
//! reference implementation (tests only), and a small signed log to build bundles from.
#![allow(dead_code, reason = "each test file uses its own part of these helpers")]

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;

use blockdb_verifier::block::GENESIS_PREV_HASH;
use blockdb_verifier::checkpoint::shard_origin;
use blockdb_verifier::export::{checkpoint_line, entry_line, header_line};
use blockdb_verifier::{
    Block, BlockRange, Checkpoint, ConsistencyProof, Hash, Leaf, LogIndex, NoteSigner, ProofBundle,
    ProvenBlock, Record, ShardId, SignedCheckpoint, TreeSize, TrustPolicy, TxnId, leaf_hash,
    node_hash,
};
use sha2::{Digest, Sha256};

/// The path of `rel` under `../shared/testdata/`, or `None` (with a printed notice) when the data
/// is not there. Under `CI=true` missing data fails the test instead.
pub fn testdata(rel: &str) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata");
    let path = root.join(rel);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("test data {} is missing and CI=true", path.display());
    }
    // Written to the process's stderr directly, past the test harness's output capture, so the
    // skip is seen in a normal `cargo test` run.
    let _ = writeln!(
        std::io::stderr(),
        "NOTICE: skipping a test: test data {} is not present (CI=true makes this an error)",
        path.display()
    );
    None
}

pub fn testdata_json(rel: &str) -> Option<serde_json::Value> {
    let path = testdata(rel)?;
    let text = std::fs::read_to_string(&path).expect("read test data");
    Some(serde_json::from_str(&text).expect("test data is JSON"))
}

pub fn h(hex: &str) -> Hash {
    hex.parse().expect("64 hex digits")
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Leaf hashes of `n` distinct leaves.
pub fn leaf_hashes(n: usize) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(format!("leaf {i}").as_bytes())).collect()
}

/// The naive recursive definitions of RFC 6962 §2.1, written straight from the text.
pub mod reference {
    use super::*;

    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// MTH(D[n]) over leaf hashes.
    pub fn root(d: &[Hash]) -> Hash {
        match d.len() {
            0 => Hash(sha256(b"")),
            1 => d[0],
            n => {
                let k = split(n);
                node_hash(&root(&d[..k]), &root(&d[k..]))
            }
        }
    }

    /// PATH(m, D[n]).
    pub fn inclusion(m: usize, d: &[Hash]) -> Vec<Hash> {
        let n = d.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = split(n);
        if m < k {
            let mut p = inclusion(m, &d[..k]);
            p.push(root(&d[k..]));
            p
        } else {
            let mut p = inclusion(m - k, &d[k..]);
            p.push(root(&d[..k]));
            p
        }
    }

    /// PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
    pub fn consistency(m: usize, d: &[Hash]) -> Vec<Hash> {
        subproof(m, d, true)
    }

    fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { Vec::new() } else { vec![root(d)] };
        }
        let k = split(n);
        if m <= k {
            let mut p = subproof(m, &d[..k], b);
            p.push(root(&d[k..]));
            p
        } else {
            let mut p = subproof(m - k, &d[k..], false);
            p.push(root(&d[..k]));
            p
        }
    }
}

pub const TEST_KEY_NAME: &str = "example.com/blockdb-test";
pub const CLUSTER_ORIGIN: &str = "example.com/blockdb-test";

/// The signer of `c2sp/checkpoint-8-leaf.txt`: seed SHA-256("blockdb test key").
pub fn test_signer() -> NoteSigner {
    NoteSigner::from_seed(TEST_KEY_NAME, &sha256(b"blockdb test key")).expect("valid name")
}

pub fn other_signer(name: &str) -> NoteSigner {
    NoteSigner::from_seed(name, &sha256(name.as_bytes())).expect("valid name")
}

pub fn policy_of(signers: &[&NoteSigner], threshold: usize) -> TrustPolicy {
    TrustPolicy::new(signers.iter().map(|s| s.verifier_key().clone()).collect(), threshold)
        .expect("valid policy")
}

/// A small shard log held in memory, signed by `signers`.
pub struct TestLog {
    pub shard: ShardId,
    pub origin: String,
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    pub leaves: Vec<Leaf>,
    pub hashes: Vec<Hash>,
    pub signers: Vec<NoteSigner>,
    /// Each key's latest version, so that appending is O(1) and a log can be large.
    versions: HashMap<Vec<u8>, u64>,
}

impl TestLog {
    /// A log of `n` records `key-{i % 7}` = `value {i}`, each key's versions counted.
    pub fn new(shard: u32, n: usize, signers: Vec<NoteSigner>) -> TestLog {
        let shard = ShardId(shard);
        let mut log = TestLog {
            shard,
            origin: shard_origin(CLUSTER_ORIGIN, shard),
            records: Vec::new(),
            leaves: Vec::new(),
            hashes: Vec::new(),
            signers,
            versions: HashMap::new(),
        };
        for i in 0..n {
            log.append(format!("key-{}", i % 7).as_bytes(), format!("value {i}").as_bytes());
        }
        log
    }

    pub fn append(&mut self, key: &[u8], value: &[u8]) {
        self.append_in_txn(key, value, TxnId::NONE);
    }

    /// Appends a record written by transaction `txn_id`; returns its log index.
    pub fn append_in_txn(&mut self, key: &[u8], value: &[u8], txn_id: TxnId) -> usize {
        let version = self.versions.entry(key.to_vec()).or_insert(0);
        *version += 1;
        let version = *version;
        let index = LogIndex(self.leaves.len() as u64);
        let leaf = Leaf::for_value(
            self.shard,
            index,
            version,
            1_700_000_000_000 + index.0,
            txn_id,
            key.to_vec(),
            value,
        );
        self.hashes.push(leaf.hash().expect("leaf encodes"));
        self.leaves.push(leaf);
        self.records.push((key.to_vec(), value.to_vec()));
        self.leaves.len() - 1
    }

    pub fn checkpoint(&self, size: usize) -> Checkpoint {
        Checkpoint {
            origin: self.origin.clone(),
            size: TreeSize(size as u64),
            root: reference::root(&self.hashes[..size]),
            extensions: Vec::new(),
        }
    }

    pub fn signed(&self, size: usize) -> SignedCheckpoint {
        let signers: Vec<&NoteSigner> = self.signers.iter().collect();
        self.checkpoint(size).sign(&signers).expect("checkpoint signs")
    }

    pub fn consistency(&self, from: usize, to: usize) -> ConsistencyProof {
        ConsistencyProof {
            from_size: TreeSize(from as u64),
            to_size: TreeSize(to as u64),
            hashes: reference::consistency(from, &self.hashes[..to]),
        }
    }

    /// The bundle of record `index` against the checkpoint of `size`, with a consistency proof
    /// from `trusted` if given.
    pub fn bundle(&self, index: usize, size: usize, trusted: Option<usize>) -> ProofBundle {
        let (key, value) = &self.records[index];
        ProofBundle {
            record: Record {
                key: key.clone(),
                version: self.leaves[index].version,
                value: Some(value.clone()),
            },
            leaf: self.leaves[index].clone(),
            inclusion_proof: reference::inclusion(index, &self.hashes[..size]),
            checkpoint: self.signed(size),
            consistency_proof: trusted.map(|from| self.consistency(from, size)),
        }
    }

    /// The blocks of this log for record counts `batches`, from height 1, with the roots computed
    /// by the naive reference implementation (the verifier recomputes them its own way).
    pub fn must_blocks(&self, batches: &[usize]) -> Vec<Block> {
        let mut blocks = Vec::new();
        let (mut size, mut prev_hash) = (0, GENESIS_PREV_HASH);
        for (i, &n) in batches.iter().enumerate() {
            let end = size + n;
            let block = Block {
                shard: self.shard,
                height: i as u64 + 1,
                prev_hash,
                record_count: n as u64,
                records_root: reference::root(&self.hashes[size..end]),
                tree_size: TreeSize(end as u64),
                tree_root: reference::root(&self.hashes[..end]),
                commit_time_ms: 1_700_000_000_000 + end as u64,
            };
            prev_hash = block.hash();
            size = end;
            blocks.push(block);
        }
        blocks
    }

    /// `block` proven against this log's checkpoint of `size`, as the server sends it: no
    /// consistency proof when the sizes are equal.
    pub fn proven(&self, block: &Block, size: usize) -> ProvenBlock {
        let from = block.tree_size.0 as usize;
        ProvenBlock {
            block: block.clone(),
            consistency_proof: (from != size).then(|| self.consistency(from, size)),
            checkpoint: self.signed(size),
        }
    }

    /// The blocks response for `blocks`, all proven against the checkpoint of `size`.
    pub fn block_range(&self, blocks: &[Block], size: usize, next: Option<u64>) -> BlockRange {
        BlockRange {
            blocks: blocks.iter().map(|b| self.proven(b, size)).collect(),
            next_height: next,
        }
    }

    /// The `blockdb-export/v1` text of the whole log, written with the verifier's line writers,
    /// with the given checkpoints in the given order.
    pub fn export_with(&self, checkpoints: &[SignedCheckpoint]) -> String {
        let mut out = header_line(&self.origin, self.shard, TreeSize(self.leaves.len() as u64));
        for (i, leaf) in self.leaves.iter().enumerate() {
            out.push_str(&entry_line(LogIndex(i as u64), &leaf.encode().expect("leaf encodes")));
        }
        for c in checkpoints {
            out.push_str(&checkpoint_line(c));
        }
        out
    }

    /// The export of the whole log with this log's signed checkpoints of `sizes`.
    pub fn export(&self, sizes: &[usize]) -> String {
        let checkpoints: Vec<SignedCheckpoint> = sizes.iter().map(|&s| self.signed(s)).collect();
        self.export_with(&checkpoints)
    }
}
