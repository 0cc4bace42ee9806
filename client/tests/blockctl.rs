//! `blockctl` end to end against a real node: the README tour (trust init, insert, append, get,
//! history, checkpoint, consistency, entry, scan) with its output and exit codes, and a
//! trusted-state file that disagrees with the server (as after a fork) caught as a security
//! finding with exit code 1.

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
