//! The OpenAPI document: the copy committed under `openapi/` equals what the code generates and
//! what a running node serves; it is OpenAPI 3.1; and a client generated from it by a standard
//! generator (openapi-python-client) works against a real node.
//!
//! After a change to the API, regenerate the committed copy with
//! `BLOCKDB_UPDATE_OPENAPI=1 cargo test -p blockdb-server --test openapi`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Server;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/blockdb.json")
}

fn generated() -> String {
    let mut text = blockdb_server::api::rest::openapi().to_pretty_json().expect("serializes");
    text.push('\n');
    text
}

#[test]
fn the_committed_document_matches_the_code() {
    let path = committed_path();
    if std::env::var_os("BLOCKDB_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, generated()).expect("write openapi/blockdb.json");
    }
    let committed = std::fs::read_to_string(&path).expect("read openapi/blockdb.json");
    assert!(
        committed == generated(),
        "openapi/blockdb.json is stale; regenerate it with \
         BLOCKDB_UPDATE_OPENAPI=1 cargo test -p blockdb-server --test openapi"
    );
    let doc: serde_json::Value = serde_json::from_str(&committed).expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", doc["openapi"]);
}

/// The Python with the OpenAPI tools (`make openapi-tools` installs them), if present.
fn tools_python() -> Option<PathBuf> {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/openapi-venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the OpenAPI tools are missing; `make openapi-tools` installs them"
    );
    println!("skipped: the OpenAPI tools are not installed (run `make openapi-tools`)");
    None
}

#[test]
fn the_served_document_is_valid_openapi_3_1_and_generates_a_working_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::must_start(dir.path(), &[]);
    let (status, served) = server.get_bytes("/openapi.json");
    assert_eq!(status, 200);
    let served: serde_json::Value = serde_json::from_slice(&served).expect("json");
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(committed_path()).expect("read"))
            .expect("json");
    assert_eq!(served, committed, "the node serves the committed document");
    // The docs UI is there, offline (vendored).
    let (status, page) = server.get_bytes("/docs/");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("swagger"), "the docs UI page");

    let Some(python) = tools_python() else { return };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/check_client.py");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(&python)
        .arg(&script)
        .arg(committed_path())
        .arg(server.url(""))
        .arg(out_dir.path())
        .output()
        .expect("run openapi/check_client.py");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // The generated client wrote through the API: the record is there, proven.
    let bundle = server.must_get_verified(b"from-generated-client", None);
    assert_eq!(bundle.record.value.as_deref(), Some(&b"hello"[..]));
    server.must_stop();
}
