//! Shared by the integration tests: the third-party test data under `../shared/testdata/`, and
//! the `blockdb` binary the cluster tests start.
#![allow(dead_code, reason = "each test file uses its own part of these helpers")]

use std::io::Write as _;
use std::path::PathBuf;

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

/// The `blockdb` binary of this build (`target/<profile>/blockdb`), built first so that it is
/// never missing or stale (a no-op after `cargo test --workspace`, which builds it).
pub fn blockdb_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--locked", "-p", "blockdb-server", "--bin", "blockdb"]);
    if release {
        build.arg("--release");
    }
    assert!(build.status().expect("run cargo build").success(), "cargo build of blockdb failed");
    profile_dir.join("blockdb")
}
