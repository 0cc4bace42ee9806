//! The `blockdb-chaos check` command: its output and its exit codes (0 linearizable, 1 not,
//! 2 bad input, 3 unknown), on histories written to the test's temporary directory.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn must_write(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}.jsonl"));
    std::fs::write(&path, text).expect("write a history");
    path
}

fn must_run(args: &[&str]) -> (i32, String, String) {
    let Output { status, stdout, stderr } = Command::new(env!("CARGO_BIN_EXE_blockdb-chaos"))
        .args(args)
        .output()
        .expect("run blockdb-chaos");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8 output");
    (status.code().expect("an exit code"), text(stdout), text(stderr))
}

const WRITE_THEN_READ: &str = r#"{"process":0,"type":"invoke","f":"write","key":"x","value":1,"time_ns":1}
{"process":0,"type":"ok","f":"write","key":"x","time_ns":2}
{"process":1,"type":"invoke","f":"read","key":"x","time_ns":3}
"#;

#[test]
fn a_linearizable_history_exits_0() {
    let path = must_write(
        "ok",
        &format!(
            "{WRITE_THEN_READ}{}",
            r#"{"process":1,"type":"ok","f":"read","value":1,"time_ns":4}"#
        ),
    );
    let (code, out, _) = must_run(&["check", path.to_str().expect("UTF-8 path")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("key \"x\": linearizable (2 operations"), "{out}");
    assert!(
        out.ends_with("overall: linearizable (keys: 1; 1 linearizable, 0 not, 0 unknown)\n"),
        "{out}"
    );
}

#[test]
fn a_stale_read_exits_1_with_an_explanation() {
    let path = must_write(
        "stale",
        &format!("{WRITE_THEN_READ}{}", r#"{"process":1,"type":"ok","f":"read","time_ns":4}"#),
    );
    let (code, out, _) =
        must_run(&["check", path.to_str().expect("UTF-8 path"), "--model", "register"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("key \"x\": NOT linearizable"), "{out}");
    assert!(out.contains("lines 3-4, process 1: read: nil"), "{out}");
}

#[test]
fn bad_input_exits_2_naming_the_line() {
    let path = must_write("bad", &format!("{WRITE_THEN_READ}{{\"process\":1,\"type\":\"ok\"}}\n"));
    let (code, _, err) = must_run(&["check", path.to_str().expect("UTF-8 path")]);
    assert_eq!(code, 2);
    assert!(err.contains("cli-bad.jsonl: line 4: not a history event"), "{err}");
    // A history of another model's operations.
    let path = must_write("wrong-model", WRITE_THEN_READ);
    let (code, _, err) =
        must_run(&["check", path.to_str().expect("UTF-8 path"), "--model", "blockdb-register"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("line 1: unknown operation \"write\" for model blockdb-register"),
        "{err}"
    );
    // No such file, no history at all, an unknown model.
    assert_eq!(must_run(&["check", "/nonexistent/history.jsonl"]).0, 2);
    assert_eq!(must_run(&["check"]).0, 2);
    assert_eq!(must_run(&["check", "x.jsonl", "--model", "kv"]).0, 2);
}

#[test]
fn running_out_of_budget_exits_3() {
    let mut text = String::new();
    // Many concurrent writes and a read of a value none wrote: a long search.
    for p in 0..12 {
        text.push_str(&format!("{{\"process\":{p},\"type\":\"invoke\",\"f\":\"write\",\"value\":{p},\"time_ns\":{p}}}\n"));
    }
    text.push_str("{\"process\":99,\"type\":\"invoke\",\"f\":\"read\",\"time_ns\":20}\n");
    text.push_str("{\"process\":99,\"type\":\"ok\",\"f\":\"read\",\"value\":-1,\"time_ns\":21}\n");
    let path = must_write("hard", &text);
    let (code, out, _) =
        must_run(&["check", path.to_str().expect("UTF-8 path"), "--steps-max", "50"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("(no key): unknown (out of steps)"), "{out}");
}

#[test]
fn the_blockdb_register_model_is_selected_by_name() {
    let text = r#"{"process":0,"type":"invoke","f":"append","key":"k","value":{"value":"a","expected_version":0},"time_ns":1}
{"process":0,"type":"ok","f":"append","key":"k","value":{"version":1},"time_ns":2}
{"process":0,"type":"invoke","f":"read","key":"k","time_ns":3}
{"process":0,"type":"ok","f":"read","key":"k","value":{"version":1,"value":"a"},"time_ns":4}
"#;
    let path = must_write("versioned", text);
    let (code, out, _) =
        must_run(&["check", path.to_str().expect("UTF-8 path"), "--model", "blockdb-register"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn jepsen_logs_are_checked_with_the_register_model() {
    let Some(dir) = common::testdata("jepsen-etcd") else { return };
    let log = |n: &str| dir.join(format!("etcd_{n}.log")).to_str().expect("UTF-8 path").to_owned();
    assert_eq!(must_run(&["check", "--jepsen", &log("002")]).0, 0);
    let (code, out, _) = must_run(&["check", "--jepsen", &log("070")]);
    assert_eq!(code, 1, "{out}");
    let (code, _, err) =
        must_run(&["check", "--jepsen", &log("002"), "--model", "blockdb-register"]);
    assert_eq!(code, 2, "{err}");
}
