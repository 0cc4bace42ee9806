//! A transaction's steps at a shard's leader, in-process: a repeated `Finish` (its first answer
//! lost, or recovery finished the participant first) still gives the coordinator every record the
//! transaction wrote and its proof, so a receipt never leaves one out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use blockdb_server::node::{Node, NodeConfig};
use blockdb_server::storage::Options;
use blockdb_server::txn::TxnCommand;
use blockdb_server::txn::leader::{Step, StepReply, run};
use blockdb_server::txn::{Part, new_txn_id};
use blockdb_twopc::{Decision, Write};
use blockdb_verifier::{ProofBundle, ShardId};

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_finish_finds_the_records_the_transaction_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = NodeConfig {
        storage: Options::small_for_tests(),
        shards: Some(2),
        ..NodeConfig::new(dir.path())
    };
    let node = Arc::new(Node::start(config).await.expect("the node starts"));
    let (coordinator, participant) = (ShardId(0), ShardId(1));
    let txn = new_txn_id();
    let keys: Vec<Vec<u8>> = (0..)
        .map(|i| format!("k{i}").into_bytes())
        .filter(|k| node.shard_of(k) == participant)
        .take(2)
        .collect();
    let step = |(shard, s): (ShardId, Step)| {
        let node = Arc::clone(&node);
        async move { run(&node, shard, s, deadline()).await.expect("the step runs") }
    };

    let begin = TxnCommand::Begin { txn, participants: vec![participant] };
    assert!(matches!(
        step((coordinator, Step::Record { command: begin })).await,
        StepReply::Record { decision: None, .. }
    ));
    let writes = keys.iter().map(|k| Write { key: k.clone(), value: b"v".to_vec() }).collect();
    let part = Part { reads: Vec::new(), checks: Vec::new(), writes };
    let prepare = Step::Prepare { txn, coordinator, part };
    assert!(matches!(step((participant, prepare)).await, StepReply::Vote { yes: true, .. }));
    let decide =
        TxnCommand::Decide { txn, decision: Decision::Commit, writes: vec![(participant, 2)] };
    assert!(matches!(
        step((coordinator, Step::Record { command: decide })).await,
        StepReply::Record { decision: Some(Decision::Commit), bundle: Some(_) }
    ));

    // A single write of a key after the commit: a later version the repeat must look past.
    let finish = Step::Finish { txn, decision: Decision::Commit, keys: keys.clone() };
    let StepReply::Finished { writes: first, bundles: first_bundles, .. } =
        step((participant, finish.clone())).await
    else {
        panic!("not a finish")
    };
    assert_eq!(first.iter().map(|w| w.0).collect::<Vec<_>>(), [1, 1]);
    node.append(keys[0].clone(), b"later".to_vec(), None).await.expect("a later append");
    let StepReply::Finished { writes: again, bundles, .. } = step((participant, finish)).await
    else {
        panic!("not a finish")
    };
    assert_eq!(again, first, "the repeat names the same records");
    assert_eq!(bundles.len(), 2);
    for (b, first) in bundles.iter().zip(&first_bundles) {
        let (b, first) = (
            ProofBundle::from_json(b.as_bytes()).expect("a bundle"),
            ProofBundle::from_json(first.as_bytes()).expect("a bundle"),
        );
        assert_eq!(b.leaf, first.leaf);
        assert_eq!(b.leaf.txn_id, txn);
    }
    // Without keys (recovery's finish), nothing is looked up.
    let bare = Step::Finish { txn, decision: Decision::Commit, keys: Vec::new() };
    let StepReply::Finished { writes, bundles, .. } = step((participant, bare)).await else {
        panic!("not a finish")
    };
    assert!(writes.is_empty() && bundles.is_empty());
}
