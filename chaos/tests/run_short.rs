//! The CI runs of the harness, with a fixed seed: 3 nodes, 2 shards, the register workload
//! under partitions and kills with the nodes' clocks skewed by up to ten minutes either way
//! (about 40 seconds), the ledger workload under partitions, kills and pauses, and the
//! list-append and bank workloads under partitions and kills (20 seconds each), where every
//! checker must pass; and runs against nodes with a deliberate bug (followers serving
//! "linearizable" reads without the read index; transactions whose checks are skipped), which
//! must fail. `BLOCKDB_CHAOS_TIME`
//! (seconds) and `BLOCKDB_CHAOS_SEED` run it longer or with another seed; `blockdb-chaos run` is
//! the same thing from the command line.

mod common;

use std::time::Duration;

use blockdb_chaos::run::{Fault, RunConfig, run};
use blockdb_chaos::workload::Workload;

/// One run at a time: each starts a 3-node cluster, and on a small machine several at once would
/// starve each other (a run against a buggy build must see the bug, which needs the cluster to
/// keep pace).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run_alone(config: RunConfig) -> anyhow::Result<blockdb_chaos::run::RunResult> {
    let _turn = ONE_AT_A_TIME.lock().await;
    run(config).await
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_register_run_under_partitions_and_kills_passes_every_checker() {
    let out = tempfile::tempdir().unwrap();
    let config = RunConfig {
        nodes: 3,
        shards: 2,
        workload: Workload::Register,
        faults: vec![Fault::Partition, Fault::Kill],
        time: Duration::from_secs(env_u64("BLOCKDB_CHAOS_TIME", 40)),
        seed: env_u64("BLOCKDB_CHAOS_SEED", 7),
        concurrency: 6,
        rate: 60.0,
        // Short histories per key keep the linearizability search small even with many `info`
        // appends (each may have happened anywhere after its invoke): about 200 operations a key.
        keys: 12,
        key_lifetime: Duration::from_secs(20),
        fault_interval: Duration::from_secs(4),
        out_dir: out.path().to_owned(),
        blockdb: common::blockdb_binary(),
        node_args: Vec::new(),
        clock_skew: Some(Duration::from_secs(600)),
    };
    let result = run_alone(config).await.expect("the run completes");
    eprintln!("{}", result.summary);
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(result.dir.join("results.json")).unwrap()).unwrap();
    assert!(result.valid, "{result:?}\n{results:#}");
    assert!(results["faults_injected"].as_u64().unwrap() >= 2, "{results:#}");
    let keys = results["checkers"]["linearizability"]["keys"].as_array().unwrap();
    // Keys move on every 20 s: one set of 12 per 20 s begun, and the next one, which the final
    // reads cover too.
    let sets = env_u64("BLOCKDB_CHAOS_TIME", 40) / 20 + 1;
    assert_eq!(keys.len() as u64, 12 * sets, "{results:#}");
    let history = std::fs::read_to_string(result.dir.join("history.jsonl")).unwrap();
    assert!(history.lines().filter(|l| l.contains("\"type\":\"ok\"")).count() > 100);
    assert!(result.dir.join("nemesis.jsonl").exists());
}

/// A transactional workload's short run under partitions and kills; its checker must pass.
async fn transactional_run(workload: Workload, keys: usize) -> serde_json::Value {
    let out = tempfile::tempdir().expect("tempdir");
    let config = RunConfig {
        nodes: 3,
        shards: 2,
        workload,
        faults: vec![Fault::Partition, Fault::Kill],
        time: Duration::from_secs(env_u64("BLOCKDB_CHAOS_TXN_TIME", 20)),
        seed: env_u64("BLOCKDB_CHAOS_SEED", 7),
        concurrency: 6,
        rate: 40.0,
        keys,
        key_lifetime: Duration::from_secs(600),
        fault_interval: Duration::from_secs(4),
        out_dir: out.path().to_owned(),
        blockdb: common::blockdb_binary(),
        node_args: vec!["--txn-timeout-ms=2000".into()],
        clock_skew: None,
    };
    let result = run_alone(config).await.expect("the run completes");
    eprintln!("{}", result.summary);
    let text = std::fs::read(result.dir.join("results.json")).expect("results.json");
    let results: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
    assert!(result.valid, "{result:?}\n{results:#}");
    assert!(results["faults_injected"].as_u64() >= Some(2), "{results:#}");
    // The saved history checks again, alone.
    let model = if workload == Workload::Bank { "bank" } else { "list-append" };
    let history = result.dir.join("history.jsonl");
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_blockdb-chaos"))
        .args(["check", history.to_str().expect("utf-8 path"), "--model", model])
        .output()
        .expect("blockdb-chaos check runs");
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stdout));
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_list_append_run_under_partitions_and_kills_shows_no_anomaly() {
    let results = transactional_run(Workload::ListAppend, 6).await;
    let report = &results["checkers"]["list-append"];
    assert!(report["ok"].as_u64() >= Some(50), "{results:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_bank_run_under_partitions_and_kills_keeps_the_total() {
    let results = transactional_run(Workload::Bank, 8).await;
    let report = &results["checkers"]["bank"];
    assert!(report["reads"].as_u64() >= Some(10), "{results:#}");
    assert_eq!(report["final_checked"], true, "{results:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_catches_followers_that_read_without_the_read_index() {
    let out = tempfile::tempdir().unwrap();
    let config = RunConfig {
        // A follower cut off by a partition answers from its old state for as long as the
        // partition lasts. With five nodes every partition shape but "isolate the leader" cuts
        // some follower off the leader, and three partitions make it all but certain one does
        // (with three nodes, where a partition often leaves both followers with the leader, one
        // run in four caught nothing). Keys live a few seconds each, so every key's history stays
        // small enough for the checker to prove the stale reads within its budget: one long-lived
        // key with a thousand operations and stale reads on it can exhaust it (unknown, not
        // caught).
        nodes: 5,
        shards: 1,
        workload: Workload::Register,
        faults: vec![Fault::Partition],
        time: Duration::from_secs(env_u64("BLOCKDB_CHAOS_BUG_TIME", 30)),
        seed: env_u64("BLOCKDB_CHAOS_SEED", 7),
        concurrency: 6,
        rate: 60.0,
        keys: 2,
        key_lifetime: Duration::from_secs(5),
        fault_interval: Duration::from_secs(4),
        out_dir: out.path().to_owned(),
        blockdb: common::blockdb_binary(),
        node_args: vec!["--unsafe-follower-reads".into()],
        clock_skew: None,
    };
    let result = run_alone(config).await.expect("the run completes");
    eprintln!("{}", result.summary);
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(result.dir.join("results.json")).unwrap()).unwrap();
    assert!(!result.valid, "the broken reads went unnoticed: {results:#}");
    assert_eq!(results["checkers"]["linearizability"]["status"], "NotLinearizable", "{results:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_ledger_run_proves_every_checkpoint_and_acknowledged_insert() {
    let out = tempfile::tempdir().unwrap();
    let config = RunConfig {
        nodes: 3,
        shards: 2,
        workload: Workload::Ledger,
        faults: vec![Fault::Partition, Fault::Kill, Fault::Pause],
        time: Duration::from_secs(env_u64("BLOCKDB_CHAOS_LEDGER_TIME", 20)),
        seed: env_u64("BLOCKDB_CHAOS_SEED", 7),
        concurrency: 6,
        rate: 60.0,
        keys: 1,
        key_lifetime: Duration::from_secs(600),
        fault_interval: Duration::from_secs(4),
        out_dir: out.path().to_owned(),
        blockdb: common::blockdb_binary(),
        node_args: Vec::new(),
        clock_skew: None,
    };
    let result = run_alone(config).await.expect("the run completes");
    eprintln!("{}", result.summary);
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(result.dir.join("results.json")).unwrap()).unwrap();
    assert!(result.valid, "{results:#}");
    let ledger = &results["checkers"]["ledger"];
    assert!(ledger["checkpoints_checked"].as_u64().unwrap() > 50, "{results:#}");
    assert!(ledger["inserts_checked"].as_u64().unwrap() > 100, "{results:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_storage_files_of_a_follower_never_make_the_cluster_lie() {
    let out = tempfile::tempdir().unwrap();
    let config = RunConfig {
        nodes: 3,
        shards: 1,
        workload: Workload::Ledger,
        faults: vec![Fault::Disk],
        time: Duration::from_secs(env_u64("BLOCKDB_CHAOS_DISK_TIME", 16)),
        seed: env_u64("BLOCKDB_CHAOS_SEED", 1),
        concurrency: 6,
        rate: 60.0,
        keys: 1,
        key_lifetime: Duration::from_secs(600),
        fault_interval: Duration::from_secs(3),
        out_dir: out.path().to_owned(),
        blockdb: common::blockdb_binary(),
        node_args: Vec::new(),
        clock_skew: None,
    };
    let result = run_alone(config).await.expect("the run completes");
    eprintln!("{}", result.summary);
    let timeline = std::fs::read_to_string(result.dir.join("nemesis.jsonl")).unwrap();
    eprintln!("{timeline}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(result.dir.join("results.json")).unwrap()).unwrap();
    assert!(result.valid, "{results:#}");
    // Each damaged node either refused to start, saying what is corrupt, or runs; the next disk
    // fault replaced it (removed, emptied, joined again), and it caught up from its peers.
    let disk: Vec<&str> = timeline.lines().filter(|l| l.contains("\"kind\":\"disk\"")).collect();
    assert!(disk.len() >= 2, "{timeline}");
    for (i, line) in disk.iter().enumerate() {
        if i % 2 == 0 {
            assert!(
                line.contains("it runs")
                    || (line.contains("refused to start") && line.contains("corrupt")),
                "{line}"
            );
        } else {
            assert!(line.contains("replaced node") && line.contains("added back"), "{line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_catches_transactions_whose_checks_are_skipped() {
    let out = tempfile::tempdir().expect("tempdir");
    let config = RunConfig {
        nodes: 3,
        shards: 2,
        workload: Workload::Bank,
        faults: Vec::new(),
        time: Duration::from_secs(env_u64("BLOCKDB_CHAOS_BUG_TIME", 10)),
        seed: env_u64("BLOCKDB_CHAOS_SEED", 7),
        concurrency: 8,
        rate: 200.0,
        keys: 4,
        key_lifetime: Duration::from_secs(600),
        fault_interval: Duration::from_secs(4),
        out_dir: out.path().to_owned(),
        blockdb: common::blockdb_binary(),
        node_args: vec!["--unsafe-txn-skip-checks".into()],
        clock_skew: None,
    };
    let result = run_alone(config).await.expect("the run completes");
    eprintln!("{}", result.summary);
    let text = std::fs::read(result.dir.join("results.json")).expect("results.json");
    let results: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
    assert!(!result.valid, "the broken build passed: {results:#}");
    assert!(results["checkers"]["bank"]["bad_reads"].as_u64() > Some(0), "{results:#}");
}
