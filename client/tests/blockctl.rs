//! `blockctl` end to end against a real node: the README tour (trust init, insert, append, get,
//! history, checkpoint, consistency, entry, scan) with its output and exit codes, and a
//! trusted-state file that disagrees with the server (as after a fork) caught as a security
//! finding with exit code 1; transactions from flags (in their order) and from a file, with the
//! receipt saved and verified offline; and the cluster commands.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn blockctl(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blockctl"))
        .current_dir(dir)
        .env("BLOCKCTL_ENDPOINT", endpoint)
        .args(args)
        .output()
        .expect("run blockctl")
}

fn must_ok(dir: &Path, endpoint: &str, args: &[&str]) -> String {
    let out = blockctl(dir, endpoint, args);
    assert!(out.status.success(), "blockctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tour_through_blockctl() {
    let served = common::must_serve(1).await;
    let url = served.url();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().to_owned();
    let key = served.key.to_string();
    let (d, u) = (dir.clone(), url.clone());
    let run = move |args: &[&str]| must_ok(&d, &u, args);
    let outputs = tokio::task::spawn_blocking(move || {
        let trust = run(&["trust", "init", "--yes"]);
        assert!(trust.contains(&key), "{trust}");
        assert_eq!(
            std::fs::read_to_string(dir.join("blockctl-keys.txt")).expect("keys").lines().last(),
            Some(key.as_str())
        );
        let insert = run(&["insert", "alice", "hello"]);
        assert!(insert.starts_with("alice v1 committed: shard 0 leaf 0"), "{insert}");
        let append = run(&["append", "alice", "hello again", "--expected-version", "1"]);
        assert!(append.starts_with("alice v2 committed"), "{append}");
        let get = run(&["get", "alice"]);
        assert_eq!(get, "alice v2 = hello again (verified: shard 0 leaf 1 in tree of size 2)\n");
        let v1 = run(&["get", "alice", "--version", "1"]);
        assert_eq!(v1, "alice v1 = hello (verified: shard 0 leaf 0 in tree of size 2)\n");
        let history = run(&["get", "alice", "--history"]);
        assert_eq!(history.lines().count(), 2);
        let json: serde_json::Value =
            serde_json::from_str(&run(&["get", "alice", "--json"])).expect("json");
        assert_eq!((json["version"].as_u64(), json["verified"].as_bool()), (Some(2), Some(true)));
        let cp = run(&["checkpoint"]);
        assert!(cp.contains("tree size: 2"), "{cp}");
        let proof = run(&["consistency", "1"]);
        assert!(proof.starts_with("consistency proof from 1 to 2 (1 hashes)"), "{proof}");
        let watched = run(&["watch", "--from", "1", "--count", "1"]);
        assert_eq!(watched, "shard 0 leaf 1: alice v2 (verified in tree of size 2)\n");
        let entry = run(&["entry", "0"]);
        assert_eq!(entry, "shard 0 leaf 0: alice v1 (verified in tree of size 2)\n");
        run(&["scan"])
    })
    .await
    .expect("blockctl runs");
    assert!(outputs.contains("alice v2 = hello again"), "{outputs}");

    // Exit codes: a refusal is 3, bad usage 2.
    let dir = work.path();
    let out = blockctl(dir, &url, &["insert", "alice", "again"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already_exists"));
    assert_eq!(
        blockctl(dir, &url, &["get", "alice", "--version", "1", "--history"]).status.code(),
        Some(2)
    );
    let out = blockctl(dir, "http://127.0.0.1:1", &["get", "alice", "--timeout-ms", "500"]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));

    // A trusted checkpoint the server's log does not extend (as if it forked after showing it).
    let state = dir.join("blockctl-state.json");
    let text = std::fs::read_to_string(&state).expect("state");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let cp = v["checkpoints"][0].as_str().expect("checkpoint").to_owned();
    let mut lines: Vec<String> = cp.lines().map(str::to_owned).collect();
    lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    v["checkpoints"][0] = format!("{}\n", lines.join("\n")).into();
    std::fs::write(&state, v.to_string()).expect("write");
    let out = blockctl(dir, &url, &["get", "alice"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("VERIFICATION FAILED") && stderr.contains("SECURITY"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing is shown from an answer that failed");
    served.stop().await;
}

/// `blockctl txn` against a two-shard node: flags kept in order, a file in the REST body's shape,
/// `--json`, base64, a saved receipt that verifies offline, and the exit codes of an aborted
/// transaction and of bad usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_through_blockctl() {
    let served = common::must_serve(2).await;
    let url = served.url();
    let policy = served.policy();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| must_ok(&dir, &url, args);
        run(&["trust", "init", "--yes"]);

        // Flags: two inserts (alice and bob are in different shards of 2), then reads and
        // writes whose output keeps the order of the flags.
        let out = run(&["txn", "--insert", "alice=hello", "--insert", "bob=hi"]);
        println!("{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("transaction ") && lines[0].ends_with(" committed"));
        assert_eq!(lines[0].len(), "transaction  committed".len() + 32, "{out}");
        assert!(lines[1].starts_with("write alice v1: shard 0 leaf "), "{out}");
        assert_eq!(lines[2], "write bob v1: shard 1 leaf 0", "{out}");
        assert!(lines[3].starts_with("receipt verified: commit decision at shard 0 leaf "));
        assert!(lines[3].ends_with(", 2 write(s) proven"), "{out}");
        let args = [
            "txn",
            "--read",
            "carol",
            "--append",
            "alice=hello again@1",
            "--read",
            "alice",
            "--check",
            "bob@1",
            "--receipt-out",
            "receipt.json",
        ];
        let out = run(&args);
        println!("{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "read  carol: no version (absence is not proven)");
        assert!(lines[2].starts_with("read  alice v1 = hello (verified: shard 0 leaf"), "{out}");
        assert!(lines[3].starts_with("write alice v2: shard 0 leaf"), "{out}");
        assert!(lines[4].starts_with("receipt verified"), "{out}");
        let saved = std::fs::read(dir.join("receipt.json")).expect("the receipt was saved");
        let receipt = blockdb_verifier::Receipt::from_json(&saved).expect("a receipt");
        let verified = blockdb_verifier::verify_receipt(&receipt, &policy).expect("verifies");
        assert_eq!(verified.writes.len(), 1);
        assert!(lines[0].contains(&receipt.txn_id.to_hex()), "{out}");

        // A file in the REST body's shape, with --json; and base64 keys and values.
        let ops = r#"{"ops": [{"op": "read", "key": "bob"},
            {"op": "append", "key": "bob", "value": "again", "expected_version": 1},
            {"op": "check", "key": "alice", "version": 2}]}"#;
        std::fs::write(dir.join("ops.json"), ops).expect("write ops");
        let json: serde_json::Value =
            serde_json::from_str(&run(&["txn", "--file", "ops.json", "--json"])).expect("json");
        assert_eq!(json["reads"][0]["value"], "hi");
        assert_eq!(json["reads"][0]["verified"], true);
        assert_eq!(
            (json["writes"][0]["key"].as_str(), json["writes"][0]["version"].as_u64()),
            (Some("bob"), Some(2))
        );
        assert_eq!(json["receipt"]["verified"], true);
        // "ZGF2ZQ==" is "dave", "ZA==" is "d".
        let out = run(&["--base64", "txn", "--insert", "ZGF2ZQ===ZA==", "--read", "ZGF2ZQ=="]);
        assert!(out.contains("write ZGF2ZQ== v1"), "{out}");
        assert!(out.contains("read  ZGF2ZQ==: no version"), "{out}");

        // A failed check exits 3 and writes nothing; bad usage exits 2.
        let out = blockctl(&dir, &url, &["txn", "--check", "alice@1", "--insert", "erin=x"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains("aborted"), "{stderr}");
        let out = run(&["txn", "--read", "erin"]);
        assert!(out.contains("read  erin: no version"), "{out}");
        for args in [
            &["txn"][..],
            &["txn", "--check", "alice"],
            &["txn", "--insert", "novalue"],
            &["txn", "--file", "ops.json", "--read", "alice"],
            &["txn", "--file", "missing.json"],
        ] {
            let out = blockctl(&dir, &url, args);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    })
    .await
    .expect("blockctl runs");
    served.stop().await;
}

/// `blockctl cluster` against a three-node cluster: the status as JSON and as a table, `trust
/// init` pinning every member's key so that a read through another node verifies, and the exit
/// codes of refused and unreachable membership calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_through_blockctl() {
    let mut cluster = common::must_serve_cluster(3, 2).await;
    cluster.must_converge(1, &[1, 2, 3], std::time::Duration::from_secs(60)).await;
    let client = cluster.client(1).await;
    for i in 0..6 {
        client.insert(format!("k{i}").as_bytes(), b"v").await.expect("insert");
    }
    drop(client);
    let status = cluster.must_converge(1, &[1, 2, 3], std::time::Duration::from_secs(60)).await;
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().to_owned();
    let urls: Vec<String> = (1..=3).map(|id| cluster.node(id).url()).collect();
    let nodes: Vec<(String, String, String)> = (1..=3)
        .map(|id| {
            let n = cluster.node(id);
            (n.addr.to_string(), cluster.peers[&id].clone(), n.key.to_string())
        })
        .collect();
    let cluster_id = status.cluster_id.clone();
    tokio::task::spawn_blocking(move || {
        // JSON: every member, its addresses and key, two shards each, one leader per shard.
        let json: serde_json::Value =
            serde_json::from_str(&must_ok(&dir, &urls[1], &["cluster", "status", "--json"]))
                .expect("json");
        assert_eq!(json["cluster_id"], cluster_id.as_str());
        assert_eq!((json["shards"].as_u64(), json["answered_by"].as_u64()), (Some(2), Some(2)));
        let listed = json["nodes"].as_array().expect("nodes");
        assert_eq!(listed.len(), 3);
        for (n, (api, peer, key)) in listed.iter().zip(&nodes) {
            assert_eq!(
                (&n["api_addr"], &n["peer_addr"]),
                (&api.as_str().into(), &peer.as_str().into())
            );
            assert_eq!(n["verifier_key"], key.as_str());
            assert!(n.get("error").is_none(), "{n}");
            assert_eq!(n["shards"].as_array().expect("shards").len(), 2);
        }
        for shard in 0..2 {
            let roles: Vec<&str> =
                listed.iter().map(|n| n["shards"][shard]["role"].as_str().expect("role")).collect();
            assert_eq!(roles.iter().filter(|r| **r == "leader").count(), 1, "{roles:?}");
            let trees: Vec<(&serde_json::Value, &serde_json::Value)> = listed
                .iter()
                .map(|n| (&n["shards"][shard]["tree_size"], &n["shards"][shard]["root"]))
                .collect();
            assert!(trees.windows(2).all(|w| w[0] == w[1]), "{trees:?}");
        }

        // The table: a row per member, reachable, and a row per shard per member.
        let table = must_ok(&dir, &urls[0], &["cluster", "status"]);
        println!("{table}");
        assert!(table.starts_with(&format!("cluster {cluster_id}: 3 node(s), 2 shard(s)")));
        for (id, (api, peer, _)) in nodes.iter().enumerate() {
            let row = format!("{}", id + 1);
            let line = table
                .lines()
                .find(|l| l.split_whitespace().next() == Some(row.as_str()) && l.contains(api))
                .unwrap_or_else(|| panic!("no row of node {row}:\n{table}"));
            assert!(line.contains(peer) && line.ends_with("reachable"), "{line}");
        }
        let shard_rows: Vec<Vec<&str>> = table
            .lines()
            .skip_while(|l| !l.starts_with("SHARD"))
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(shard_rows.len(), 6, "{table}");
        for shard in ["0", "1"] {
            let rows: Vec<&Vec<&str>> = shard_rows.iter().filter(|r| r[0] == shard).collect();
            assert_eq!(rows.iter().filter(|r| r[2] == "leader").count(), 1, "{table}");
            assert!(rows.windows(2).all(|w| w[0][7..9] == w[1][7..9]), "one tree: {table}");
        }

        // trust init pins all three keys; a read through node 3 of a write through node 1
        // then verifies.
        let trust = must_ok(&dir, &urls[0], &["trust", "init", "--yes"]);
        let pinned = std::fs::read_to_string(dir.join("blockctl-keys.txt")).expect("keys");
        for (_, _, key) in &nodes {
            assert!(trust.contains(key.as_str()), "{trust}");
            assert!(pinned.lines().any(|l| l == key), "{pinned}");
        }
        assert!(trust.contains("saved 3 key(s)"), "{trust}");
        must_ok(&dir, &urls[0], &["insert", "alice", "hello"]);
        let get = must_ok(&dir, &urls[2], &["get", "alice"]);
        assert!(get.starts_with("alice v1 = hello (verified"), "{get}");

        // Refusals exit 3; an unreachable cluster exits 4.
        let out = blockctl(&dir, &urls[0], &["cluster", "remove", "9"]);
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("not_found"));
        let out = blockctl(&dir, &urls[0], &["cluster", "add", "0", "127.0.0.1:1"]);
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
        let args = ["cluster", "status", "--timeout-ms", "500"];
        let out = blockctl(&dir, "http://127.0.0.1:1", &args);
        assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    })
    .await
    .expect("blockctl runs");

    // With node 3 down, the status reports it unreachable (still exit 0), and trust init pins
    // only the two keys it can see.
    let three = cluster.nodes.remove(&3).expect("node 3");
    let three_key = three.key.to_string();
    three.stop().await;
    let (dir, url) = (work.path().to_owned(), cluster.node(1).url());
    tokio::task::spawn_blocking(move || {
        let table = must_ok(&dir, &url, &["cluster", "status"]);
        let row = table.lines().find(|l| l.starts_with("3 ")).unwrap_or_else(|| panic!("{table}"));
        assert!(row.contains("UNREACHABLE"), "{table}");
        let shard_rows = table.lines().skip_while(|l| !l.starts_with("SHARD")).skip(1);
        let nodes_in_rows: Vec<&str> =
            shard_rows.filter_map(|l| l.split_whitespace().nth(1)).collect();
        assert_eq!(nodes_in_rows, ["1", "2", "1", "2"], "no shard rows of node 3: {table}");
        let trust = must_ok(&dir, &url, &["trust", "init", "--yes"]);
        println!("{trust}");
        assert!(trust.contains("node 3 (api none") && trust.contains("its key is not pinned"));
        let pinned = std::fs::read_to_string(dir.join("blockctl-keys.txt")).expect("keys");
        assert!(!pinned.contains(&three_key), "{pinned}");
        assert!(trust.contains("saved 2 key(s)"), "{trust}");
    })
    .await
    .expect("blockctl runs");
    cluster.stop().await;
}
