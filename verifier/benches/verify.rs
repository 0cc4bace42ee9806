//! Verification throughput: inclusion proofs at tree sizes 2^10, 2^20 and 2^32, checkpoint
//! signature checks, and a whole proof bundle.
//!
//! Run with `cargo bench -p blockdb-verifier --bench verify`. Criterion reports the time of one
//! verification and, through `Throughput::Elements(1)`, verifications per second (one core).
//!
//! For 2^10 and 2^20 the benchmark builds the whole tree and takes the proof from it. A tree of
//! 2^32 leaves does not fit in memory, so its proof is the audit path of one leaf in a perfect
//! tree whose other subtrees are arbitrary hashes; the root is computed from that path. The
//! verifier does exactly the same work either way: 32 node hashes and the checks around them.

use std::hint::black_box;

use blockdb_verifier::checkpoint::shard_origin;
use blockdb_verifier::proof::root_from_inclusion_proof;
use blockdb_verifier::{
    Checkpoint, Hash, Leaf, LogIndex, NoteSigner, ProofBundle, Record, ShardId, SignedCheckpoint,
    TreeSize, TrustPolicy, TxnId, leaf_hash, node_hash, verify_bundle, verify_inclusion,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};

/// A leaf index, its hash, the audit path and the root of a perfect tree of `2^levels` leaves.
struct Case {
    index: LogIndex,
    size: TreeSize,
    leaf: Hash,
    proof: Vec<Hash>,
    root: Hash,
}

/// Builds every level of a perfect tree of `2^levels` leaves and takes the path of `index`.
fn built_tree(levels: u32, index: u64) -> Case {
    let mut level: Vec<Hash> = (0..1u64 << levels).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let leaf = level[index as usize];
    let mut proof = Vec::new();
    let mut i = index as usize;
    while level.len() > 1 {
        proof.push(level[i ^ 1]);
        level = level.chunks(2).map(|c| node_hash(&c[0], &c[1])).collect();
        i /= 2;
    }
    Case { index: LogIndex(index), size: TreeSize(1 << levels), leaf, proof, root: level[0] }
}

/// The path of `index` in a perfect tree of `2^levels` leaves whose other subtrees are arbitrary.
fn synthetic_tree(levels: u32, index: u64) -> Case {
    let leaf = leaf_hash(&index.to_be_bytes());
    let proof: Vec<Hash> =
        (0..levels).map(|l| Hash(Sha256::digest(format!("subtree {l}")).into())).collect();
    let size = TreeSize(1 << levels);
    let root = root_from_inclusion_proof(&leaf, LogIndex(index), size, &proof).expect("shape");
    Case { index: LogIndex(index), size, leaf, proof, root }
}

fn inclusion(c: &mut Criterion) {
    let mut group = c.benchmark_group("inclusion_verify");
    group.throughput(Throughput::Elements(1));
    let cases = [
        ("2^10", built_tree(10, 677)),
        ("2^20", built_tree(20, 654_321)),
        ("2^32", synthetic_tree(32, 3_000_000_017)),
    ];
    for (name, case) in &cases {
        verify_inclusion(&case.leaf, case.index, case.size, &case.proof, &case.root)
            .expect("the benchmark's proof is valid");
        group.bench_with_input(BenchmarkId::from_parameter(name), case, |b, case| {
            b.iter(|| {
                verify_inclusion(
                    black_box(&case.leaf),
                    black_box(case.index),
                    black_box(case.size),
                    black_box(&case.proof),
                    black_box(&case.root),
                )
            })
        });
    }
    group.finish();
}

fn signer() -> NoteSigner {
    NoteSigner::from_seed("example.com/blockdb-bench", &Sha256::digest(b"bench key").into())
        .expect("signer")
}

fn checkpoint_signature(c: &mut Criterion) {
    let signer = signer();
    let policy = TrustPolicy::new(vec![signer.verifier_key().clone()], 1).expect("policy");
    let checkpoint = Checkpoint {
        origin: shard_origin("example.com/blockdb-bench", ShardId(0)),
        size: TreeSize(1 << 32),
        root: Hash(Sha256::digest(b"root").into()),
        extensions: vec![],
    };
    let signed = checkpoint.sign(&[&signer]).expect("signs");
    let text = signed.to_text();
    policy.verify(&signed).expect("valid");

    let mut group = c.benchmark_group("checkpoint");
    group.throughput(Throughput::Elements(1));
    group.bench_function("signature_verify", |b| b.iter(|| policy.verify(black_box(&signed))));
    group.bench_function("parse_and_verify", |b| {
        b.iter(|| {
            let s = SignedCheckpoint::parse(black_box(text.as_bytes())).expect("parses");
            policy.verify(&s)
        })
    });
    group.finish();
}

fn bundle(c: &mut Criterion) {
    let signer = signer();
    let policy = TrustPolicy::new(vec![signer.verifier_key().clone()], 1).expect("policy");
    let value = vec![7u8; 256];
    let index = 3_000_000_017u64;
    let leaf =
        Leaf::for_value(ShardId(0), LogIndex(index), 1, 0, TxnId::NONE, b"k".to_vec(), &value);
    let mut case = synthetic_tree(32, index);
    case.leaf = leaf.hash().expect("leaf");
    case.root =
        root_from_inclusion_proof(&case.leaf, case.index, case.size, &case.proof).expect("ok");
    let checkpoint = Checkpoint {
        origin: shard_origin("example.com/blockdb-bench", ShardId(0)),
        size: case.size,
        root: case.root,
        extensions: vec![],
    };
    let bundle = ProofBundle {
        record: Record { key: b"k".to_vec(), version: 1, value: Some(value) },
        leaf,
        inclusion_proof: case.proof,
        checkpoint: checkpoint.sign(&[&signer]).expect("signs"),
        consistency_proof: None,
    };
    let json = bundle.to_json().expect("json");
    verify_bundle(&bundle, &policy, None).expect("valid");

    let mut group = c.benchmark_group("bundle");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_json_and_verify_2^32", |b| {
        b.iter(|| {
            let parsed = ProofBundle::parse(black_box(json.as_bytes())).expect("parses");
            verify_bundle(&parsed, &policy, None)
        })
    });
    group.finish();
}

criterion_group!(benches, inclusion, checkpoint_signature, bundle);
criterion_main!(benches);
