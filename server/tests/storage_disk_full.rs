//! A full disk: a child process writes with its file-size limit set (`ulimit -f`, with SIGXFSZ
//! ignored so the write fails with EFBIG the way it fails with ENOSPC on a full disk). The write
//! that fails returns an error, later writes are refused, nothing acknowledged is lost, and the
//! store reopens.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use blockdb_server::storage::{Engine, Options, StorageError, WriteBatch};

const CHILD_ENV: &str = "BLOCKDB_DISK_FULL_CHILD_DIR";

/// A memtable larger than the file-size limit, so that the log segment grows until it hits it.
fn options() -> Options {
    Options { memtable_bytes: 16 * 1024 * 1024, ..Options::small_for_tests() }
}

fn batch(id: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    for j in 0..4 {
        b.put(format!("k{id:08}/{j}"), vec![(id % 251) as u8; 700]);
    }
    b
}

fn child(dir: &Path) {
    let engine = Engine::open(dir, options()).expect("child opens");
    for id in 0.. {
        match engine.write(batch(id)) {
            Ok(_) => println!("ack {id}"),
            Err(e) => {
                println!("error {id}: {e}");
                let next = engine.write(batch(id + 1));
                match next {
                    Err(StorageError::Poisoned(_)) => println!("refused"),
                    other => println!("unexpected after error: {other:?}"),
                }
                return;
            }
        }
    }
}

#[test]
fn a_full_disk_fails_the_write_and_loses_nothing_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    // 6 MiB per file: the log segment hits it when it grows past its first 4 MiB chunk, after
    // about 1,400 batches.
    let out = Command::new("bash")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 6144; exec \"$0\" \"$@\"")
        .arg(&exe)
        .args([
            "--exact",
            "a_full_disk_fails_the_write_and_loses_nothing_acknowledged",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acked: BTreeSet<u64> =
        stdout.lines().filter_map(|l| l.strip_prefix("ack ")?.parse().ok()).collect();
    let error_line =
        stdout.lines().find(|l| l.starts_with("error ")).expect("the write that failed said so");
    assert!(
        error_line.contains("File too large") || error_line.contains("No space"),
        "{error_line}"
    );
    assert!(
        stdout.lines().any(|l| l == "refused"),
        "writes after the failure are refused: {stdout}"
    );
    assert!(acked.len() > 10, "the limit was hit after some writes: {}", acked.len());

    let engine = Engine::open(dir.path(), options()).expect("the store reopens without the limit");
    for &id in &acked {
        for j in 0..4 {
            let v = engine.get(format!("k{id:08}/{j}").as_bytes()).expect("get");
            assert_eq!(v, Some(vec![(id % 251) as u8; 700]), "acknowledged batch {id} key {j}");
        }
    }
    // The failed batch is whole or absent.
    let failed: u64 =
        error_line["error ".len()..].split(':').next().expect("id").parse().expect("id");
    let present = (0..4)
        .filter(|j| engine.get(format!("k{failed:08}/{j}").as_bytes()).expect("get").is_some())
        .count();
    assert!(present == 0 || present == 4, "failed batch {failed} is partly present: {present}");
    engine.put(b"after", b"reopen").expect("writes work again");
}
