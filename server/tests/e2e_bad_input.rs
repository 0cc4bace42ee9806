//! End to end: a walk through bad REST input. Each case gets a 4xx with the JSON error shape and
//! its stable code, changes nothing (the tree size and root stay), and the node keeps serving.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Server, enc};

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::must_start(dir.path(), &["--value-len-max", "65536"]);
    assert_eq!(server.insert(b"present", b"v").0, 201);
    let before = server.checkpoint(0);

    let long_key = STANDARD.encode(vec![b'k'; 1025]);
    let long_value = STANDARD.encode(vec![0u8; 65537]);
    let huge_body = format!("{{\"key\":\"a2V5\",\"value\":\"{}\"}}", "A".repeat(200_000));
    let v = STANDARD.encode("v");
    // (method, path, body, expected status, expected code)
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        (
            "POST",
            "/v1/insert".into(),
            format!("{{\"key\":\"{long_key}\",\"value\":\"{v}\"}}"),
            400,
            "key_too_large",
        ),
        (
            "POST",
            "/v1/insert".into(),
            format!("{{\"key\":\"\",\"value\":\"{v}\"}}"),
            400,
            "key_too_large",
        ),
        (
            "POST",
            "/v1/insert".into(),
            format!("{{\"key\":\"a2V5\",\"value\":\"{long_value}\"}}"),
            400,
            "value_too_large",
        ),
        ("POST", "/v1/append".into(), huge_body, 413, "payload_too_large"),
        ("POST", "/v1/insert".into(), "{\"key\":\"a2V5\",".into(), 400, "invalid_argument"),
        ("POST", "/v1/insert".into(), "[1,2,3]".into(), 400, "invalid_argument"),
        (
            "POST",
            "/v1/insert".into(),
            format!("{{\"key\":\"not base64!\",\"value\":\"{v}\"}}"),
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/insert".into(),
            format!("{{\"key\":\"a2V5\",\"value\":\"{v}\",\"version\":3}}"),
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/append".into(),
            format!("{{\"key\":\"a2V5\",\"value\":\"{v}\",\"expected_version\":-1}}"),
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/append".into(),
            format!(
                "{{\"key\":\"a2V5\",\"value\":\"{v}\",\"expected_version\":18446744073709551616}}"
            ),
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/append".into(),
            format!("{{\"key\":\"cHJlc2VudA==\",\"value\":\"{v}\",\"expected_version\":7}}"),
            409,
            "version_mismatch",
        ),
        (
            "POST",
            "/v1/insert".into(),
            format!("{{\"key\":\"cHJlc2VudA==\",\"value\":\"{v}\"}}"),
            409,
            "already_exists",
        ),
        ("GET", format!("/v1/records?key={}", enc(b"absent")), String::new(), 404, "not_found"),
        (
            "GET",
            format!("/v1/records?key={}&version=0", enc(b"present")),
            String::new(),
            400,
            "invalid_argument",
        ),
        (
            "GET",
            format!("/v1/records?key={}&version=2", enc(b"present")),
            String::new(),
            404,
            "not_found",
        ),
        (
            "GET",
            format!("/v1/records?key={}&version=-3", enc(b"present")),
            String::new(),
            400,
            "invalid_argument",
        ),
        (
            "GET",
            format!("/v1/records?key={}&known_size=99", enc(b"present")),
            String::new(),
            400,
            "out_of_range",
        ),
        (
            "GET",
            format!("/v1/records?key={}&known_size=18446744073709551615", enc(b"present")),
            String::new(),
            400,
            "out_of_range",
        ),
        (
            "GET",
            format!("/v1/records?key={}&bogus=1", enc(b"present")),
            String::new(),
            400,
            "invalid_argument",
        ),
        ("GET", "/v1/records?key=%%%".into(), String::new(), 400, "invalid_argument"),
        ("GET", "/v1/records".into(), String::new(), 400, "invalid_argument"),
        (
            "GET",
            format!("/v1/history?key={}&limit=0", enc(b"present")),
            String::new(),
            400,
            "invalid_argument",
        ),
        (
            "GET",
            format!("/v1/history?key={}&limit=100000", enc(b"present")),
            String::new(),
            400,
            "invalid_argument",
        ),
        (
            "GET",
            "/v1/shards/0/entries/18446744073709551615".into(),
            String::new(),
            404,
            "not_found",
        ),
        (
            "GET",
            "/v1/shards/0/entries/18446744073709551616".into(),
            String::new(),
            400,
            "invalid_argument",
        ),
        ("GET", "/v1/shards/0/entries/-1".into(), String::new(), 400, "invalid_argument"),
        ("GET", "/v1/shards/7/checkpoint".into(), String::new(), 404, "not_found"),
        ("GET", "/v1/shards/0/consistency?from_size=0".into(), String::new(), 400, "out_of_range"),
        (
            "GET",
            "/v1/shards/0/consistency?from_size=5&to_size=2".into(),
            String::new(),
            400,
            "out_of_range",
        ),
        (
            "GET",
            "/v1/shards/0/consistency?from_size=1&to_size=1000".into(),
            String::new(),
            400,
            "out_of_range",
        ),
        ("GET", "/v1/blocks/99".into(), String::new(), 404, "not_found"),
        ("GET", "/v1/blocks/abc".into(), String::new(), 400, "invalid_argument"),
        ("GET", "/tlog/0/tile/0/1234".into(), String::new(), 400, "invalid_argument"),
        ("GET", "/tlog/0/tile/entries/000.p/0".into(), String::new(), 400, "invalid_argument"),
        ("GET", "/v1/nothing-here".into(), String::new(), 404, "not_found"),
        ("DELETE", "/v1/insert".into(), String::new(), 405, "method_not_allowed"),
        ("PUT", "/v1/records".into(), "{}".into(), 405, "method_not_allowed"),
    ];
    for (method, path, body, status, code) in &cases {
        let (got, answer) = server.send(method, path, body);
        assert_eq!(got, *status, "{method} {path}: {answer}");
        assert_eq!(answer["code"], *code, "{method} {path}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
        assert_eq!(server.checkpoint(0), before, "{method} {path} changed the log");
    }
    // 405 names the methods the route takes.
    let r = ureq::delete(server.url("/v1/insert"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("call");
    assert_eq!(r.headers().get("allow").map(|v| v.to_str().expect("ascii")), Some("POST"));
    // Still serving, and the one record is intact.
    assert_eq!(server.get("/healthz").0, 200);
    assert_eq!(server.must_get_verified(b"present", None).record.version, 1);
    server.must_stop();
}
