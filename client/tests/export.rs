//! `blockctl export` of a shard from a real node: the file audits clean with the verifier's
//! `audit_export` (what `blockdb-verify audit` runs), and the same file with one byte changed —
//! in a leaf, in the checkpoint, in the header — does not. Its progress bar stays off a pipe's
//! stderr and, on a terminal (a pseudo-terminal from `script`), counts towards the tree size.
//!
//! CI exports 5,000 entries; `BLOCKDB_EXPORT_ENTRIES=100000` runs the full-size check (about a
//! minute in a release build: `cargo test --release -p blockdb-client --test export`).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use blockdb_verifier::export::audit_export;

fn entries() -> u64 {
    std::env::var("BLOCKDB_EXPORT_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_audits_clean_and_a_changed_byte_does_not() {
    let n = entries();
    // The node's default storage limits: the test-sized ones would make 100,000 entries a
    // test of compaction throughput.
    let served = common::must_serve_with(1, blockdb_server::storage::Options::default()).await;
    let client = Arc::new(served.client().await);
    // 64 writers; the node batches their appends into Raft entries.
    let started = std::time::Instant::now();
    let writers: Vec<_> = (0..64u64)
        .map(|w| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                for i in (w..n).step_by(64) {
                    let key = format!("key-{}", i % 1000);
                    client.append(key.as_bytes(), &i.to_be_bytes(), None).await.expect("append");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }

    println!("{n} appends in {:.1} s", started.elapsed().as_secs_f64());
    let work = tempfile::tempdir().expect("tempdir");
    let keys = work.path().join("keys.txt");
    std::fs::write(&keys, format!("{}\n", served.key)).expect("keys");
    let out = work.path().join("shard0.export");
    let (url, k, o) = (served.url(), keys.clone(), out.clone());
    let status = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_blockctl"))
            .args(["--endpoint", &url, "--keys-file"])
            .arg(&k)
            .arg("--state-file")
            .arg(k.with_extension("state"))
            .args(["--timeout-ms", "60000", "export", "--shard", "0", "--out"])
            .arg(&o)
            .output()
            .expect("run blockctl")
    })
    .await
    .expect("blockctl");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(said.starts_with(&format!("exported {n} verified entries")), "{said}");
    let progress = String::from_utf8_lossy(&status.stderr);
    assert!(progress.is_empty(), "no progress bar on a stderr that is no terminal: {progress}");

    let policy = served.policy();
    let bytes = std::fs::read(&out).expect("export");
    let report = audit_export(&bytes, &policy, &mut |_, _| {}).expect("the export audits clean");
    assert_eq!(report.tree_size.0, n);
    println!("exported and audited {n} entries in {:.1} s", started.elapsed().as_secs_f64());

    // One byte changed: in the header, in leaves across the file, in the checkpoint.
    let lines: Vec<usize> = std::iter::once(0)
        .chain(bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1))
        .filter(|&i| i < bytes.len())
        .collect();
    let mut positions =
        vec![20, lines[1] + 30, lines[lines.len() / 2] + 40, lines[lines.len() - 2] + 35];
    positions.push(bytes.len() - 30);
    for pos in positions {
        let mut changed = bytes.clone();
        changed[pos] = if changed[pos] == b'A' { b'B' } else { b'A' };
        assert!(
            audit_export(&changed, &policy, &mut |_, _| {}).is_err(),
            "a change at byte {pos} went unnoticed"
        );
    }

    // On a terminal the bar shows the tree size from the start; the file is the same.
    let (url, k, o) = (served.url(), keys.clone(), work.path().join("tty.export"));
    let shown = tokio::task::spawn_blocking(move || export_on_a_terminal(&url, &k, &o))
        .await
        .expect("blockctl on a terminal");
    if let Some(shown) = shown {
        let total = format!("/{} entries verified", human_count(n));
        assert!(shown.contains(&total), "no {total:?} in what the terminal showed: {shown:?}");
        let again = std::fs::read(work.path().join("tty.export")).expect("export");
        assert!(again == bytes, "an export on a terminal differs from one to a pipe");
    }
    served.stop().await;
}

/// Runs `blockctl export` to `out` on a pseudo-terminal (util-linux `script`) and returns what
/// the terminal showed; `None`, with a notice, where `script` is missing (except with
/// `CI=true`, where it must be there).
fn export_on_a_terminal(url: &str, keys: &Path, out: &Path) -> Option<String> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let command = [
        env!("CARGO_BIN_EXE_blockctl"),
        "--endpoint",
        url,
        "--keys-file",
        &keys.display().to_string(),
        "--state-file",
        &keys.with_extension("tty-state").display().to_string(),
        "--timeout-ms",
        "60000",
        "export",
        "--out",
        &out.display().to_string(),
    ]
    .map(quote)
    .join(" ");
    // indicatif draws nothing on a terminal whose TERM is unset or "dumb".
    let ran =
        Command::new("script").args(["-qec", &command, "/dev/null"]).env("TERM", "xterm").output();
    let ran = match ran {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && std::env::var("CI").is_err() => {
            println!(
                "notice: no `script` (util-linux); the progress bar on a terminal is not checked"
            );
            return None;
        }
        ran => ran.expect("run script"),
    };
    let shown = String::from_utf8_lossy(&ran.stdout).into_owned();
    assert!(ran.status.success(), "blockctl export on a terminal: {shown}");
    Some(shown)
}

/// `n` as indicatif's `HumanCount` shows it: 5000 as "5,000".
fn human_count(n: u64) -> String {
    let digits = n.to_string();
    let mut shown = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            shown.push(',');
        }
        shown.push(c);
    }
    shown
}
