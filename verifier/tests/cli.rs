//! `blockdb-verify` as a user runs it: exit codes 0 valid, 1 invalid, 2 unusable input, one-line
//! errors, `--json`, and `--help` with an example for every subcommand.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use blockdb_verifier::LogIndex;
use blockdb_verifier::export::checkpoint_line;
use blockdb_verifier::{CheckpointChain, Hash};
use common::{TestLog, other_signer, reference, test_signer};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out: Output =
        Command::new(env!("CARGO_BIN_EXE_blockdb-verify")).args(args).output().expect("runs");
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).expect("utf8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf8 stderr"),
    }
}

struct Files {
    dir: tempfile::TempDir,
    key: String,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().expect("tempdir"),
            key: test_signer().verifier_key().to_string(),
        }
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path: PathBuf = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path.to_str().expect("utf8 path").to_owned()
    }
}

fn assert_unusable(r: &Run, needle: &str) {
    assert_eq!(r.code, 2, "stdout: {} stderr: {}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one-line error: {:?}", r.stderr);
    assert!(r.stderr.contains(needle), "{needle:?} not in {:?}", r.stderr);
    assert!(!r.stdout.contains("valid"), "no verdict on unusable input");
    assert!(!r.stderr.contains("panicked"));
}

fn assert_invalid(r: &Run, needle: &str) {
    assert_eq!(r.code, 1, "stdout: {} stderr: {}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("invalid: "), "{:?}", r.stdout);
    assert!(r.stdout.contains(needle), "{needle:?} not in {:?}", r.stdout);
}

#[test]
fn bundle_valid_invalid_and_malformed() {
    let f = Files::new();
    let log = TestLog::new(0, 21, vec![test_signer()]);
    let good = f.write("good.json", log.bundle(13, 21, Some(8)).to_json().expect("json"));
    let bin = f.write("good.bin", log.bundle(13, 21, Some(8)).to_binary().expect("bin"));
    let trusted = f.write("trusted.txt", log.signed(8).to_text());

    for file in [&good, &bin] {
        let r = run(&["bundle", file, "--key", &f.key]);
        assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
        assert!(r.stdout.starts_with("valid: record \"key-6\" version 2"), "{}", r.stdout);
        assert!(r.stdout.contains("not checked (no trusted checkpoint given)"));
    }
    let r = run(&["bundle", &good, "--key", &f.key, "--trusted", &trusted]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("proven from trusted size 8"), "{}", r.stdout);

    let r = run(&["bundle", &good, "--key", &f.key, "--json"]);
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json output");
    assert_eq!(v["valid"], true);
    assert_eq!(v["log_index"], 13);
    assert_eq!(v["checkpoint"]["size"], 21);

    // Well-formed but wrong: a changed value.
    let mut b = log.bundle(13, 21, None);
    b.record.value = Some(b"value 99".to_vec());
    let wrong = f.write("wrong.json", b.to_json().expect("json"));
    assert_invalid(&run(&["bundle", &wrong, "--key", &f.key]), "value digest");
    let r = run(&["bundle", &wrong, "--key", &f.key, "--json"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json output");
    assert_eq!(v["valid"], false);

    // Signed by a key we do not trust.
    let stranger = other_signer("stranger.example").verifier_key().to_string();
    assert_invalid(&run(&["bundle", &good, "--key", &stranger]), "no signature by a known key");

    // Unusable input.
    let garbage = f.write("garbage.json", "{\"format\": 1");
    assert_unusable(&run(&["bundle", &garbage, "--key", &f.key]), "garbage.json");
    let json: String = std::fs::read_to_string(&good).expect("read");
    let extra = f.write("extra.json", json.replacen('{', "{\"surprise\": 1,", 1));
    assert_unusable(&run(&["bundle", &extra, "--key", &f.key]), "unknown field `surprise`");
    assert_unusable(&run(&["bundle", "/nonexistent/b.json", "--key", &f.key]), "/nonexistent");
    assert_unusable(&run(&["bundle", &good]), "no trusted verifier keys");
    assert_unusable(&run(&["bundle", &good, "--key", "not-a-key"]), "--key");
    let bad_key = f.key.replace("+46a7145c+", "+46a7145d+");
    assert_unusable(&run(&["bundle", &good, "--key", &bad_key]), "does not match");
    assert_unusable(&run(&["bundle", &good, "--key", &f.key, "--threshold", "2"]), "threshold");
}

#[test]
fn key_files() {
    let f = Files::new();
    let log = TestLog::new(0, 5, vec![test_signer(), other_signer("witness.example")]);
    let cp = f.write("cp.txt", log.signed(5).to_text());
    let witness = other_signer("witness.example").verifier_key().to_string();
    let keys = f.write("nodes.vkeys", format!("# the cluster\n{}\n\n{witness}\n", f.key));
    let r = run(&["checkpoint", &cp, "--keys-file", &keys, "--threshold", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.matches("signed by:").count(), 2, "{}", r.stdout);

    let bad = f.write("bad.vkeys", format!("{}\nnonsense here\n", f.key));
    assert_unusable(&run(&["checkpoint", &cp, "--keys-file", &bad]), "line 2");
}

#[test]
fn checkpoint_subcommand() {
    let f = Files::new();
    let log = TestLog::new(0, 8, vec![test_signer()]);
    let text = log.signed(8).to_text();
    let cp = f.write("cp.txt", &text);
    let r = run(&["checkpoint", &cp, "--key", &f.key]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("size:      8"), "{}", r.stdout);

    // A changed size under the same signature.
    let forged = f.write("forged.txt", text.replacen("\n8\n", "\n9\n", 1));
    assert_invalid(&run(&["checkpoint", &forged, "--key", &f.key]), "does not verify");
    let broken = f.write("broken.txt", text.replacen("\n8\n", "\n08\n", 1));
    assert_unusable(&run(&["checkpoint", &broken, "--key", &f.key]), "leading zeros");
    let unsigned = f.write("unsigned.txt", log.checkpoint(8).to_text());
    assert_unusable(&run(&["checkpoint", &unsigned, "--key", &f.key]), "unsigned.txt");
}

#[test]
fn consistency_subcommand_and_forks() {
    let f = Files::new();
    let log = TestLog::new(0, 30, vec![test_signer()]);
    let old = f.write("old.txt", log.signed(11).to_text());
    let new = f.write("new.txt", log.signed(30).to_text());
    let proof = f.write("proof.json", serde_json::to_string(&log.consistency(11, 30)).expect("j"));
    let r = run(&["consistency", &old, &new, &proof, "--key", &f.key]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("valid: size 30 extends size 11"), "{}", r.stdout);

    // A second history signed by the same key.
    let mut forked = TestLog::new(0, 5, vec![test_signer()]);
    for i in 5..12 {
        forked.append(b"evil", format!("rewrite {i}").as_bytes());
    }
    let other = f.write("other11.txt", forked.signed(11).to_text());
    let other_new = f.write("other12.txt", forked.signed(12).to_text());
    let r = run(&["consistency", &old, &other, "--key", &f.key]);
    assert_invalid(&r, "fork");
    assert!(r.stdout.contains("SECURITY"), "{}", r.stdout);
    let r = run(&["consistency", &old, &other_new, &proof, "--key", &f.key]);
    assert_invalid(&r, "from size 11 to 30, but the checkpoints are of sizes 11 and 12");

    let r = run(&["consistency", &new, &old, &proof, "--key", &f.key]);
    assert_invalid(&r, "stale");
    let junk = f.write("junk.json", "{\"from_size\": 11}");
    assert_unusable(&run(&["consistency", &old, &new, &junk, "--key", &f.key]), "junk.json");
}

#[test]
fn chain_subcommand() {
    let f = Files::new();
    let log = TestLog::new(0, 40, vec![test_signer()]);
    let sizes = [3usize, 9, 9, 27, 40];
    let chain = CheckpointChain::new(
        sizes.iter().map(|&s| log.signed(s)).collect(),
        sizes.windows(2).map(|w| log.consistency(w[0], w[1])).collect(),
    )
    .expect("chain");
    let good = f.write("chain.json", chain.to_json());
    let r = run(&["chain", &good, "--key", &f.key]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("valid: chain of 5 checkpoints"), "{}", r.stdout);

    let mut proofs = chain.proofs().to_vec();
    proofs[2].hashes[1].0[31] ^= 1;
    let broken = CheckpointChain::new(chain.checkpoints().to_vec(), proofs).expect("chain");
    let bad = f.write("broken.json", broken.to_json());
    let r = run(&["chain", &bad, "--key", &f.key, "--json"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["fork"], true);
    assert!(
        v["reason"].as_str().expect("reason").contains("checkpoint 3 does not extend checkpoint 2")
    );

    let malformed = f.write(
        "m.json",
        "{\"format\":\"blockdb-checkpoint-chain/v1\",\"checkpoints\":[],\"proofs\":[]}",
    );
    assert_unusable(&run(&["chain", &malformed, "--key", &f.key]), "1..=");
}

#[test]
fn help_explains_each_subcommand_with_an_example() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    for sub in ["bundle", "checkpoint", "consistency", "chain", "blocks", "audit"] {
        assert!(r.stdout.contains(sub), "{sub} listed");
        let r = run(&[sub, "--help"]);
        assert_eq!(r.code, 0);
        assert!(r.stdout.contains("Example:"), "{sub} --help has an example");
        assert!(r.stdout.contains("--key"), "{sub} --help explains trust");
    }
    let r = run(&["blocks", "--help"]);
    assert!(r.stdout.contains("curl -s 'localhost:7070/v1/blocks?limit=1000' > blocks.json"));
    assert!(r.stdout.contains("--trusted-block"), "{}", r.stdout);
    let r = run(&["audit", "--help"]);
    assert!(
        r.stdout.contains(
            "blockctl export --shard 0 --out shard0.export && \
             blockdb-verify audit shard0.export --keys-file node.vkey"
        ),
        "{}",
        r.stdout
    );
    let r = run(&["no-such-command"]);
    assert_eq!(r.code, 2);
}

#[test]
fn stdin_input() {
    let log = TestLog::new(0, 4, vec![test_signer()]);
    let key = test_signer().verifier_key().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_blockdb-verify"))
        .args(["checkpoint", "-", "--key", &key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(log.signed(4).to_text().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout).expect("utf8").starts_with("valid: checkpoint"));
}

#[test]
fn blocks_subcommand() {
    // Phase 1: a valid response from height 1, for people and as JSON.
    let f = Files::new();
    let log = TestLog::new(0, 25, vec![test_signer()]);
    let blocks = log.must_blocks(&[3, 1, 5, 4, 1, 6]);
    let range = log.block_range(&blocks, 25, None);
    let good = f.write("blocks.json", range.to_json());
    let r = run(&["blocks", &good, "--key", &f.key]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("valid: 6 blocks of shard 0, heights 1 to 6, tree sizes 3 to 20"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!("last block hash: {}", blocks[5].hash())), "{}", r.stdout);
    assert!(r.stdout.contains("size:      25"), "{}", r.stdout);
    let r = run(&["blocks", &good, "--key", &f.key, "--json"]);
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json output");
    assert_eq!(v["valid"], true);
    assert_eq!(v["count"], 6);
    assert_eq!(v["last_block"]["hash"], blocks[5].hash().to_hex());
    assert_eq!(v["checkpoints"][0]["size"], 25);
    let empty = f.write("empty.json", "{\"blocks\": [], \"next_height\": null}");
    let r = run(&["blocks", &empty, "--key", &f.key]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("valid: no blocks"), "{}", r.stdout);

    // Phase 2: two pages; the second is checked from the first's last block, saved from --json.
    let page1 = f.write("page1.json", log.block_range(&blocks[..3], 25, Some(4)).to_json());
    let page2 = f.write("page2.json", log.block_range(&blocks[3..], 25, None).to_json());
    let r = run(&["blocks", &page1, "--key", &f.key, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json output");
    assert_eq!(v["next_height"], 4);
    let last = f.write("last.json", v["last_block"].to_string());
    let r = run(&["blocks", &page2, "--key", &f.key, "--trusted-block", &last]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("follows the trusted block at height 3"), "{}", r.stdout);
    assert_invalid(&run(&["blocks", &page2, "--key", &f.key]), "height 4 does not follow height 0");

    // Phase 3: well-formed but invalid: a broken chain, a key we do not trust, a fork.
    let mut gap = range.clone();
    gap.blocks.remove(2);
    let gap = f.write("gap.json", gap.to_json());
    assert_invalid(&run(&["blocks", &gap, "--key", &f.key]), "does not follow height 2");
    let stranger = other_signer("stranger.example").verifier_key().to_string();
    assert_invalid(&run(&["blocks", &good, "--key", &stranger]), "no signature by a known key");
    let mut b = blocks.clone();
    b[5].tree_root = Hash([9; 32]);
    let not_in = f.write("not-in.json", log.block_range(&b, 25, None).to_json());
    let r = run(&["blocks", &not_in, "--key", &f.key]);
    assert_invalid(&r, "not a prefix of the checkpoint's");
    assert!(!r.stdout.contains("SECURITY"), "{}", r.stdout);

    let mut forked = TestLog::new(0, 9, vec![test_signer()]);
    for i in 9..25 {
        forked.append(b"evil", format!("rewrite {i}").as_bytes());
    }
    let mut fork = range.clone();
    fork.blocks[1] = forked.proven(&blocks[1], 25);
    let fork = f.write("fork.json", fork.to_json());
    let r = run(&["blocks", &fork, "--key", &f.key]);
    assert_invalid(&r, "fork: trusted checkpoints give size 25 two roots");
    assert!(r.stdout.contains("SECURITY"), "{}", r.stdout);
    let r = run(&["blocks", &fork, "--key", &f.key, "--json"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json output");
    assert_eq!(v["valid"], false);
    assert_eq!(v["fork"], true);

    // Phase 4: unusable input.
    let json = range.to_json();
    let extra = f.write("extra.json", json.replacen('{', "{\"surprise\": 1,", 1));
    assert_unusable(&run(&["blocks", &extra, "--key", &f.key]), "unknown field `surprise`");
    let truncated = f.write("truncated.json", &json[..json.len() / 2]);
    assert_unusable(&run(&["blocks", &truncated, "--key", &f.key]), "truncated.json");
    assert_unusable(&run(&["blocks", "/nonexistent/blocks.json", "--key", &f.key]), "/nonexistent");
    assert_unusable(&run(&["blocks", &good]), "no trusted verifier keys");
    let junk = f.write("junk-block.json", "{\"height\": 3}");
    assert_unusable(
        &run(&["blocks", &page2, "--key", &f.key, "--trusted-block", &junk]),
        "junk-block.json",
    );
    let r = run(&["blocks", &good, "--key", &f.key, "--json", "--trusted-block", "/nonexistent/b"]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json output");
    assert!(v["error"].as_str().expect("error").contains("/nonexistent/b"));
}

#[test]
fn audit_subcommand() {
    // Phase 1: a valid export, for people and as JSON, with no progress bar on a stderr that is
    // not a terminal.
    let f = Files::new();
    let log = TestLog::new(0, 3000, vec![test_signer()]);
    let text = log.export(&[3000, 1000]);
    let good = f.write("shard0.export", &text);
    let r = run(&["audit", &good, "--key", &f.key]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("valid: export of shard 0 with 3000 entries"), "{}", r.stdout);
    let root = reference::root(&log.hashes);
    assert!(r.stdout.contains(&format!("root:    {root}")), "{}", r.stdout);
    assert!(r.stdout.contains("checkpoints checked: 2"), "{}", r.stdout);
    assert_eq!(r.stdout.matches(&format!("signed by: {}", f.key)).count(), 2, "{}", r.stdout);
    assert_eq!(r.stderr, "", "no progress bar on a stderr that is not a terminal");
    let keys = f.write("node.vkey", format!("{}\n", f.key));
    let r = run(&["audit", &good, "--keys-file", &keys, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json output");
    assert_eq!(v["valid"], true);
    assert_eq!(v["kind"], "audit");
    assert_eq!(v["tree_size"], 3000);
    assert_eq!(v["root"], root.to_hex());
    assert_eq!(v["checkpoints"][0]["size"], 1000);
    assert_eq!(v["checkpoints"][1]["signed_by"][0], f.key.as_str());

    // Phase 2: well-formed but invalid: a key we do not trust, a changed leaf, a fork.
    let stranger = other_signer("stranger.example").verifier_key().to_string();
    assert_invalid(&run(&["audit", &good, "--key", &stranger]), "no signature by a known key");
    let mut changed = log.leaves[2500].clone();
    changed.version += 1;
    let line =
        blockdb_verifier::export::entry_line(LogIndex(2500), &changed.encode().expect("leaf"));
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    lines[2501] = &line;
    let tampered = f.write("tampered.export", lines.concat());
    let r = run(&["audit", &tampered, "--key", &f.key]);
    assert_invalid(&r, "checkpoint of size 3000 has root");
    assert!(!r.stdout.contains("SECURITY"), "{}", r.stdout);
    let mut forked = TestLog::new(0, 10, vec![test_signer()]);
    for i in 10..1000 {
        forked.append(b"evil", format!("rewrite {i}").as_bytes());
    }
    let fork = f.write("fork.export", format!("{text}{}", checkpoint_line(&forked.signed(1000))));
    let r = run(&["audit", &fork, "--key", &f.key]);
    assert_invalid(&r, "fork: trusted checkpoints give size 1000 two roots");
    assert!(r.stdout.contains("SECURITY"), "{}", r.stdout);
    let r = run(&["audit", &fork, "--key", &f.key, "--json"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json output");
    assert_eq!((v["valid"].clone(), v["fork"].clone()), (false.into(), true.into()));

    // Phase 3: unusable input: cut in the middle of a line, empty, missing, no keys.
    let truncated = f.write("truncated.export", &text[..text.len() / 2]);
    assert_unusable(
        &run(&["audit", &truncated, "--key", &f.key]),
        "truncated.export: header says tree_size 3000, but the export has",
    );
    let empty = f.write("empty.export", "");
    assert_unusable(&run(&["audit", &empty, "--key", &f.key]), "export is empty");
    assert_unusable(&run(&["audit", "/nonexistent/x.export", "--key", &f.key]), "/nonexistent");
    assert_unusable(&run(&["audit", &good]), "no trusted verifier keys");
    let r = run(&["audit", &truncated, "--key", &f.key, "--json"]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json output");
    assert!(v["error"].as_str().expect("error").contains("truncated.export"));
}

#[test]
fn audit_of_a_hundred_thousand_entries() {
    let f = Files::new();
    let log = TestLog::new(3, 100_000, vec![test_signer()]);
    let export = f.write("shard3.export", log.export(&[50_000, 100_000]));
    let start = std::time::Instant::now();
    let r = run(&["audit", &export, "--key", &f.key]);
    eprintln!("blockdb-verify audit of 100,000 entries: {:.2?}", start.elapsed());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("valid: export of shard 3 with 100000 entries"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("root:    {}", reference::root(&log.hashes))));
}
