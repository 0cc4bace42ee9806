//! A real `blockdb` process for end-to-end tests, and a small JSON-over-HTTP client.
#![allow(dead_code, reason = "each test file uses a different part of this module")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blockdb_verifier::{ProofBundle, TrustPolicy, VerifierKey, verify_bundle};
use serde_json::Value;

pub mod cluster;
pub mod grpc;

/// A running `blockdb serve`.
pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub verifier_key: String,
    pub data_dir: PathBuf,
    agent: ureq::Agent,
}

impl Server {
    /// Starts a node on a free loopback port with its data in `data_dir`, and waits until it
    /// prints its address (it does so once every shard has a leader).
    pub fn must_start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_blockdb"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            // Quiet unless the test's environment asks for more.
            .env(
                "BLOCKDB_LOG_LEVEL",
                std::env::var("BLOCKDB_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn blockdb");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut addr, mut key) = (None, None);
        while addr.is_none() || key.is_none() {
            let line = lines.next().expect("blockdb exited before it was ready").expect("read");
            if let Some(rest) = line.strip_prefix("blockdb listening on http://") {
                addr = rest.split_whitespace().next().map(str::to_owned);
            }
            if let Some(rest) = line.strip_prefix("verifier key: ") {
                key = Some(rest.trim().to_owned());
            }
        }
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Server {
            child: Some(child),
            addr: addr.expect("address"),
            verifier_key: key.expect("key"),
            data_dir: data_dir.to_owned(),
            agent,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GET `path`; the status and the body as JSON (or as a string value if it is not JSON).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let mut r = self.agent.get(self.url(path)).call().expect("GET");
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// GET `path` as bytes.
    pub fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let mut r = self.agent.get(self.url(path)).call().expect("GET");
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_vec().expect("body"))
    }

    /// Sends `body` with `method` to `path` as JSON; the status and the JSON answer.
    pub fn send(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        self.try_send(method, path, body).expect("the request reaches the node")
    }

    /// As [`Server::send`], `None` when the node cannot be reached or the answer is cut off
    /// (the outcome of a write is then unknown).
    pub fn try_send(&self, method: &str, path: &str, body: &str) -> Option<(u16, Value)> {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .expect("request");
        let mut r = self.agent.run(req).ok()?;
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().ok()?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// `append`, `None` when the outcome is unknown.
    pub fn try_append(&self, key: &[u8], value: &[u8]) -> Option<(u16, Value)> {
        let body =
            serde_json::json!({ "key": STANDARD.encode(key), "value": STANDARD.encode(value) });
        self.try_send("POST", "/v1/append", &body.to_string())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// GET `path`; the status and the response headers (lower-case names).
    pub fn get_headers(&self, path: &str) -> (u16, Vec<(String, String)>) {
        let r = self.agent.get(self.url(path)).call().expect("GET");
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        (r.status().as_u16(), headers)
    }

    /// Sends SIGKILL to the node now, while other threads may be using it.
    pub fn kill_now(&self) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        assert!(status.expect("kill").success());
    }

    pub fn insert(&self, key: &[u8], value: &[u8]) -> (u16, Value) {
        let body =
            serde_json::json!({ "key": STANDARD.encode(key), "value": STANDARD.encode(value) });
        self.send("POST", "/v1/insert", &body.to_string())
    }

    pub fn append(&self, key: &[u8], value: &[u8], expected: Option<u64>) -> (u16, Value) {
        let mut body =
            serde_json::json!({ "key": STANDARD.encode(key), "value": STANDARD.encode(value) });
        if let Some(e) = expected {
            body["expected_version"] = e.into();
        }
        self.send("POST", "/v1/append", &body.to_string())
    }

    /// The record's bundle, verified against this node's key; panics if anything is off.
    pub fn must_get_verified(&self, key: &[u8], version: Option<u64>) -> ProofBundle {
        let mut path = format!("/v1/records?key={}", enc(key));
        if let Some(v) = version {
            path.push_str(&format!("&version={v}"));
        }
        let (status, body) = self.get(&path);
        assert_eq!(status, 200, "{body}");
        let bundle = ProofBundle::from_json(body.to_string().as_bytes()).expect("bundle parses");
        verify_bundle(&bundle, &self.policy(), None).expect("bundle verifies");
        bundle
    }

    pub fn policy(&self) -> TrustPolicy {
        let key: VerifierKey = self.verifier_key.parse().expect("verifier key parses");
        TrustPolicy::new(vec![key], 1).expect("policy")
    }

    /// The shard's checkpoint: (tree size, root hex).
    pub fn checkpoint(&self, shard: u32) -> (u64, String) {
        let (status, body) = self.get(&format!("/v1/shards/{shard}/checkpoint"));
        assert_eq!(status, 200, "{body}");
        (body["tree_size"].as_u64().expect("size"), body["root"].as_str().expect("root").into())
    }

    /// Stops the node with SIGTERM and waits for it to exit.
    pub fn must_stop(mut self) {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        assert!(status.expect("kill").success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                assert!(s.success(), "blockdb exited with {s}");
                return;
            }
            assert!(Instant::now() < deadline, "blockdb did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the node with SIGKILL.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("wait");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A key or value as a URL query parameter (base64, percent-encoded).
pub fn enc(bytes: &[u8]) -> String {
    STANDARD.encode(bytes).replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
}

/// Runs `blockdb serve` expecting it to refuse to start; returns its stderr.
pub fn must_fail_to_start(data_dir: &Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_blockdb"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .output()
        .expect("run blockdb");
    assert!(!out.status.success(), "blockdb started: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}
