//! The Batch call end to end, on a real node in-process: each call of a batch is answered as it
//! would have been alone (writes with their receipts, reads with bundles that verify, errors
//! with their gRPC code, stable code and current version), independently of the others; a batch
//! that is malformed as a whole is refused and changes nothing.

mod common;

use blockdb_proto::v1 as pb;
use common::grpc::{get, must_fail, must_insert, must_serve, must_trusted, must_verify};
use pb::batch_call::Call;
use pb::batch_result::Result as Answer;
use tonic::Code;

fn insert(key: &[u8], value: &[u8]) -> pb::BatchCall {
    pb::BatchCall {
        call: Some(Call::Insert(pb::InsertRequest { key: key.into(), value: value.into() })),
    }
}

fn append(key: &[u8], value: &[u8], expected_version: Option<u64>) -> pb::BatchCall {
    pb::BatchCall {
        call: Some(Call::Append(pb::AppendRequest {
            key: key.into(),
            value: value.into(),
            expected_version,
        })),
    }
}

fn read(key: &[u8]) -> pb::BatchCall {
    pb::BatchCall { call: Some(Call::Get(get(key))) }
}

fn must_error<'a>(answer: &'a Option<Answer>, grpc: Code, code: &str) -> &'a pb::CallError {
    match answer {
        Some(Answer::Error(e)) => {
            assert_eq!((Code::from(e.grpc_code), e.error_code.as_str()), (grpc, code), "{e:?}");
            e
        }
        other => panic!("expected the error {code}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_of_a_batch_is_answered_as_if_alone() {
    let served = must_serve().await;
    let mut client = served.client.clone();
    must_insert(&mut client, b"old", b"o1").await;

    let calls = vec![
        insert(b"a", b"va"),
        insert(b"old", b"again"),
        append(b"old", b"o2", Some(1)),
        append(b"b", b"vb", Some(7)),
        read(b"old"),
        read(b"missing"),
        insert(b"", b"no key"),
        append(b"c", b"vc", None),
    ];
    let answer = client.batch(pb::BatchRequest { calls }).await.expect("batch").into_inner();
    let results: Vec<_> = answer.results.into_iter().map(|r| r.result).collect();
    assert_eq!(results.len(), 8, "one result per call");

    // The writes that could commit did, each with a receipt whose checkpoint verifies.
    let mut written = Vec::new();
    for (i, (key, version)) in [(0, (&b"a"[..], 1)), (2, (b"old", 2)), (7, (b"c", 1))] {
        let Some(Answer::Write(w)) = &results[i] else { panic!("call {i}: {:?}", results[i]) };
        assert_eq!((w.key.as_slice(), w.version), (key, version), "call {i}");
        must_trusted(&served.policy, &w.checkpoint);
        written.push(w.log_index);
    }
    written.sort_unstable();
    written.dedup();
    assert_eq!(written.len(), 3, "each write has a leaf of its own");

    // The refusals carry what a single call's status would: code, stable code, current version.
    let e = must_error(&results[1], Code::AlreadyExists, "already_exists");
    assert!(e.current_version.is_some_and(|v| v >= 1), "{e:?}");
    let e = must_error(&results[3], Code::FailedPrecondition, "version_mismatch");
    assert_eq!(e.current_version, Some(0));
    must_error(&results[5], Code::NotFound, "not_found");
    must_error(&results[6], Code::InvalidArgument, "key_too_large");

    // The read proves what it read.
    let Some(Answer::Bundle(b)) = &results[4] else { panic!("call 4: {:?}", results[4]) };
    let record = must_verify(&served.policy, b, None);
    assert_eq!(record.key, b"old".to_vec());
    assert!(record.version >= 1);

    // The refused calls wrote nothing: 1 seeded record and 3 writes.
    let size = client.get(get(b"c")).await.expect("get").into_inner();
    assert_eq!(must_verify(&served.policy, &size, None).version, 1);
    assert_eq!(common::grpc::must_tree_size(&mut client).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_batch_is_refused_whole_and_changes_nothing() {
    let served = must_serve().await;
    let mut client = served.client.clone();
    must_insert(&mut client, b"k", b"v").await;

    // A call without its call, after good ones.
    let calls = vec![insert(b"x", b"1"), pb::BatchCall { call: None }];
    let status = client.batch(pb::BatchRequest { calls }).await;
    must_fail(status, Code::InvalidArgument, "invalid_argument");

    // More calls than a batch holds.
    let calls = (0..1025).map(|i| insert(format!("k{i}").as_bytes(), b"v")).collect();
    let status = client.batch(pb::BatchRequest { calls }).await;
    must_fail(status, Code::InvalidArgument, "invalid_argument");

    // An empty batch is answered with nothing.
    let empty = client.batch(pb::BatchRequest { calls: vec![] }).await.expect("empty batch");
    assert!(empty.into_inner().results.is_empty());

    assert_eq!(common::grpc::must_tree_size(&mut client).await, 1, "nothing was written");
    let bundle = client.get(get(b"x")).await;
    must_fail(bundle, Code::NotFound, "not_found");
}
