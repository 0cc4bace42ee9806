//! The README's `blockctl` tour from the shell: `tests/tour.sh` starts a real `blockdb serve`
//! process, runs the tour's commands with the `blockctl` binary and checks every output and exit
//! code against the README's transcript (see the script for what may differ between runs).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `blockdb` binary of this build (another package's, so Cargo does not build it for this
/// test), built first if it is missing or stale.
fn blockdb_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/tour-<hash>
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--locked", "-p", "blockdb-server", "--bin", "blockdb"]);
    if release {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build of blockdb failed");
    profile_dir.join("blockdb")
}

#[test]
fn the_readme_tour_of_blockctl_matches_a_real_node() {
    let blockdb = blockdb_binary();
    let scratch = tempfile::tempdir().expect("tempdir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tour.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&blockdb)
        .arg(env!("CARGO_BIN_EXE_blockctl"))
        .arg(scratch.path())
        .output()
        .expect("run bash");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{} exited with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        out.status
    );
    println!("{stdout}");
}

/// The transcripts `tour.sh` checks a real node against are the README's, word for word: a
/// README edit that changes the tour's output without the script (or the other way round)
/// fails here.
#[test]
fn the_tour_script_holds_the_readme_transcripts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("tests/tour.sh")).expect("tour.sh");
    let readme = std::fs::read_to_string(root.join("../README.md")).expect("README.md");
    let mut blocks = Vec::new();
    let mut lines = script.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("matches ") && line.ends_with("<<'EOF'") {
            let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "EOF").collect();
            blocks.push(block.join("\n"));
        }
    }
    assert!(blocks.len() >= 8, "only {} transcripts found in tour.sh", blocks.len());
    for block in &blocks {
        assert!(readme.contains(block.as_str()), "not in the README, word for word:\n{block}");
    }
}
