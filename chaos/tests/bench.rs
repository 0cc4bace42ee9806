//! `blockdb-chaos bench` end to end, in a short mode: a real `blockdb` node and a real etcd node
//! (Debian's `etcd-server`; `.ci/run` installs it), every workload that one node has, two
//! concurrencies, one run of a second each. The numbers of so short a run mean nothing; what is
//! checked is that both systems were measured the same way and the results were written whole.
//! Without etcd the test skips with a notice, and under `CI=true` it fails.

mod common;

use std::path::Path;
use std::process::Command;

fn etcd_installed() -> bool {
    Command::new("etcd").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn blockdb_and_etcd_are_measured_side_by_side_and_the_results_saved() {
    if !etcd_installed() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "etcd is not installed and CI=true (Debian package etcd-server)");
        println!("NOTICE: skipping the benchmark test: etcd is not installed (etcd-server)");
        return;
    }
    let blockdb = common::blockdb_binary();
    let out = tempfile::tempdir().expect("tempdir");
    let run = Command::new(env!("CARGO_BIN_EXE_blockdb-chaos"))
        .args(["bench", "--systems", "blockdb,etcd", "--topologies", "1"])
        .args(["--workloads", "append,verified-read,read,mix", "--concurrency", "1,4"])
        .args(["--time", "1s", "--warmup", "0s", "--runs", "1", "--preload", "40"])
        .arg("--blockdb")
        .arg(&blockdb)
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("run blockdb-chaos bench");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bench failed:\n{stdout}\n{stderr}");
    println!("{stdout}");

    let dir = only_child(out.path());
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).expect("results.json"))
            .expect("JSON");
    let cells = results["cells"].as_array().expect("cells");
    // 2 systems × 4 workloads × 2 concurrencies, each measured.
    assert_eq!(cells.len(), 16, "{results}");
    for c in cells {
        let m = &c["median"];
        assert!(m["ops_per_s"].as_f64().expect("ops") > 0.0, "nothing measured: {c}");
        assert_eq!(m["errors"], 0, "an operation failed: {c}");
        let (p50, p99, p999) = (
            m["p50_ms"].as_f64().expect("p50"),
            m["p99_ms"].as_f64().expect("p99"),
            m["p999_ms"].as_f64().expect("p999"),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= p999, "percentiles out of order: {c}");
    }
    for system in ["blockdb", "etcd"] {
        assert_eq!(cells.iter().filter(|c| c["system"] == system).count(), 8, "{system}");
    }
    assert!(results["cores"].as_u64().expect("cores") >= 1);

    // The Markdown has a table per workload with both systems and their ratio, as printed.
    let md = std::fs::read_to_string(dir.join("results.md")).expect("results.md");
    for w in ["append", "verified-read", "read", "mix"] {
        assert!(md.contains(&format!("### {w}\n")), "no table for {w}:\n{md}");
    }
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| 1 | ")).collect();
    assert_eq!(rows.len(), 8, "{md}");
    assert!(rows.iter().all(|r| r.matches('×').count() == 2), "every row has both ratios:\n{md}");
    assert!(stdout.contains(&md[..md.len().min(200)]), "the tables are printed too");

    let svg = std::fs::read_to_string(dir.join("bench.svg")).expect("bench.svg");
    assert!(svg.starts_with("<svg") && svg.contains("BlockDB 1 node(s)") && svg.contains("etcd"));
}

fn only_child(dir: &Path) -> std::path::PathBuf {
    let entries: Vec<_> =
        std::fs::read_dir(dir).expect("list").map(|e| e.expect("entry").path()).collect();
    assert_eq!(entries.len(), 1, "one result folder: {entries:?}");
    entries.into_iter().next().expect("one")
}

/// `blockdb-chaos scale` in a short mode: a real node grown to 300 and then 3,000 leaves, a few
/// reads timed at each size, then killed and recovered. What is checked is the shape of what it
/// measures: proofs one hash longer for each doubling of the tree, memory and disk measured, and
/// a recovery that kept every leaf.
#[test]
fn a_node_grown_to_each_size_has_its_proofs_memory_disk_and_recovery_measured() {
    let blockdb = common::blockdb_binary();
    let out = tempfile::tempdir().expect("tempdir");
    let run = Command::new(env!("CARGO_BIN_EXE_blockdb-chaos"))
        .args(["scale", "--sizes", "300,3000", "--reads", "20", "--batch", "100"])
        .arg("--blockdb")
        .arg(&blockdb)
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("run blockdb-chaos scale");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "scale failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{stdout}");

    let dir = only_child(out.path());
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).expect("results.json"))
            .expect("JSON");
    let points = results["points"].as_array().expect("points");
    assert_eq!(points.len(), 2, "{results}");
    for (p, size) in points.iter().zip([300u64, 3000]) {
        let tree_size = p["tree_size"].as_u64().expect("tree size");
        assert!(tree_size >= size, "{p}");
        // An RFC 9162 audit path in a tree of n leaves has about log2(n) hashes.
        let hashes = p["proof_hashes"].as_u64().expect("hashes");
        let log2 = 64 - u64::from((tree_size - 1).leading_zeros());
        assert!(hashes + 2 >= log2 && hashes <= log2, "{hashes} hashes at {tree_size}: {p}");
        for what in ["entry", "verified_get"] {
            let (p50, p99) = (
                p[what]["p50_ms"].as_f64().expect("p50"),
                p[what]["p99_ms"].as_f64().expect("p99"),
            );
            assert!(0.0 < p50 && p50 <= p99, "{what}: {p}");
        }
        assert!(p["rss_bytes"].as_u64().expect("rss") > 1 << 20, "{p}");
        assert!(p["disk_bytes"].as_u64().expect("disk") > 0, "{p}");
    }
    // Ten times the records: more disk.
    assert!(points[1]["disk_bytes"].as_u64() > points[0]["disk_bytes"].as_u64(), "{results}");
    let recovery = &results["recovery"];
    assert_eq!(recovery["tree_size_after"], recovery["tree_size"], "{results}");
    assert!(recovery["ready_s"].as_f64().expect("ready") > 0.0, "{results}");
    let md = std::fs::read_to_string(dir.join("results.md")).expect("results.md");
    assert!(md.contains("| tree size |") && md.contains("Restart after SIGKILL"), "{md}");
    assert!(!dir.join("node").exists(), "the node's data is removed");
}
