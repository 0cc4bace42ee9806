//! Checks the generated crate against the API it must offer: the descriptor that gRPC reflection
//! serves holds the `blockdb.v1.Ledger` service with every RPC, with the right request and response
//! types, streaming only where intended, and commented (the .proto is the API's documentation);
//! tonic-reflection (v1 and v1alpha) accepts the descriptor; and the generated messages survive a
//! protobuf round trip with optional fields both set and unset.

use std::collections::BTreeSet;

use blockdb_proto::FILE_DESCRIPTOR_SET;
use blockdb_proto::v1::{
    ConsistencyProof, ProofBundle, Record, WatchEvent,
    ledger_client::LedgerClient,
    ledger_server::{self, Ledger, LedgerServer},
    watch_event,
};
use prost::Message as _;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

const PROTO_FILE: &str = "blockdb/v1/ledger.proto";

/// Every RPC of `blockdb.v1.Ledger`: name, request type, response type, server streaming.
const RPCS: &[(&str, &str, &str, bool)] = &[
    ("Insert", "InsertRequest", "WriteResponse", false),
    ("Append", "AppendRequest", "WriteResponse", false),
    ("Transact", "TransactRequest", "TransactResponse", false),
    ("TxnBegin", "TxnBeginRequest", "TxnBeginResponse", false),
    ("TxnRead", "TxnReadRequest", "TxnReadResult", false),
    ("TxnWrite", "TxnWriteRequest", "TxnWriteResponse", false),
    ("TxnCommit", "TxnCommitRequest", "TransactResponse", false),
    ("TxnAbort", "TxnAbortRequest", "TxnAbortResponse", false),
    ("Get", "GetRequest", "ProofBundle", false),
    ("Batch", "BatchRequest", "BatchResponse", false),
    ("History", "HistoryRequest", "HistoryResponse", false),
    ("Scan", "ScanRequest", "ScanResponse", false),
    ("GetEntry", "GetEntryRequest", "EntryResponse", false),
    ("GetCheckpoint", "GetCheckpointRequest", "CheckpointResponse", false),
    ("GetConsistency", "GetConsistencyRequest", "ConsistencyResponse", false),
    ("GetBlock", "GetBlockRequest", "BlockResponse", false),
    ("Watch", "WatchRequest", "WatchEvent", true),
    ("NodeInfo", "NodeInfoRequest", "NodeInfoResponse", false),
    ("ClusterStatus", "ClusterStatusRequest", "ClusterStatusResponse", false),
    ("AddMember", "AddMemberRequest", "MembershipResponse", false),
    ("RemoveMember", "RemoveMemberRequest", "MembershipResponse", false),
];

// Field numbers of descriptor.proto, for paths into `SourceCodeInfo`.
const FILE_MESSAGE_TYPE: i32 = 4;
const FILE_ENUM_TYPE: i32 = 5;
const FILE_SERVICE: i32 = 6;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_ONEOF: i32 = 8;
const ENUM_VALUE: i32 = 2;
const SERVICE_METHOD: i32 = 2;

fn must_decode_file() -> FileDescriptorProto {
    let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("FILE_DESCRIPTOR_SET decodes");
    let mut files = set.file.into_iter().filter(|f| f.name() == PROTO_FILE);
    let file = files.next().expect("the descriptor set holds ledger.proto");
    assert!(files.next().is_none(), "ledger.proto appears once");
    file
}

#[test]
fn ledger_service_has_every_rpc_with_its_types() {
    let file = must_decode_file();
    assert_eq!(file.package(), "blockdb.v1");
    assert_eq!(file.syntax(), "proto3");

    // Phase 1: exactly one service, named as clients and reflection address it.
    let [service] = file.service.as_slice() else {
        panic!("expected one service, found {}", file.service.len());
    };
    assert_eq!(service.name(), "Ledger");
    assert_eq!(ledger_server::SERVICE_NAME, "blockdb.v1.Ledger");

    // Phase 2: the RPCs are exactly the expected ones, with their types and streaming.
    let got: BTreeSet<&str> = service.method.iter().map(|m| m.name()).collect();
    let want: BTreeSet<&str> = RPCS.iter().map(|r| r.0).collect();
    assert_eq!(got, want, "the service's RPCs");
    for &(name, input, output, server_streaming) in RPCS {
        let method = service.method.iter().find(|m| m.name() == name).expect("checked above");
        assert_eq!(method.input_type(), format!(".blockdb.v1.{input}"), "{name} request");
        assert_eq!(method.output_type(), format!(".blockdb.v1.{output}"), "{name} response");
        assert_eq!(method.server_streaming(), server_streaming, "{name} server streaming");
        assert!(!method.client_streaming(), "{name} client streaming");
    }
}

#[test]
fn every_declaration_of_the_proto_is_commented() {
    let file = must_decode_file();
    let info = file.source_code_info.as_ref().expect("the descriptor keeps source info");
    let commented: BTreeSet<&[i32]> = info
        .location
        .iter()
        .filter(|l| l.leading_comments.as_deref().is_some_and(|c| !c.trim().is_empty()))
        .map(|l| l.path.as_slice())
        .collect();

    // Phase 1: list the path and name of every declaration a reader of the API sees.
    let mut declarations: Vec<(Vec<i32>, String)> = Vec::new();
    for (s, service) in (0..).zip(&file.service) {
        declarations.push((vec![FILE_SERVICE, s], service.name().to_owned()));
        for (m, method) in (0..).zip(&service.method) {
            declarations.push((vec![FILE_SERVICE, s, SERVICE_METHOD, m], method.name().to_owned()));
        }
    }
    for (i, message) in (0..).zip(&file.message_type) {
        assert!(
            message.nested_type.is_empty(),
            "{}: nested messages are not walked",
            message.name()
        );
        declarations.push((vec![FILE_MESSAGE_TYPE, i], message.name().to_owned()));
        for (f, field) in (0..).zip(&message.field) {
            let path = vec![FILE_MESSAGE_TYPE, i, MESSAGE_FIELD, f];
            declarations.push((path, format!("{}.{}", message.name(), field.name())));
        }
        for (o, oneof) in (0..).zip(&message.oneof_decl) {
            // proto3 `optional` fields have synthetic oneofs (`_name`) that the source has not.
            if oneof.name().starts_with('_') {
                continue;
            }
            let path = vec![FILE_MESSAGE_TYPE, i, MESSAGE_ONEOF, o];
            declarations.push((path, format!("{}.{}", message.name(), oneof.name())));
        }
    }
    for (e, enumeration) in (0..).zip(&file.enum_type) {
        declarations.push((vec![FILE_ENUM_TYPE, e], enumeration.name().to_owned()));
        for (v, value) in (0..).zip(&enumeration.value) {
            declarations.push((vec![FILE_ENUM_TYPE, e, ENUM_VALUE, v], value.name().to_owned()));
        }
    }
    // A walk that found almost nothing would pass vacuously.
    assert!(declarations.len() > 100, "only {} declarations found", declarations.len());

    // Phase 2: each has a leading comment.
    let missing: Vec<&str> = declarations
        .iter()
        .filter(|(path, _)| !commented.contains(path.as_slice()))
        .map(|(_, name)| name.as_str())
        .collect();
    assert!(missing.is_empty(), "declarations without a comment: {missing:?}");
}

#[test]
fn proof_bundle_round_trips() {
    // Phase 1: every field set, including the optional value and consistency proof.
    let full = ProofBundle {
        record: Some(Record { key: b"k\x00ey".to_vec(), version: 3, value: Some(b"v".to_vec()) }),
        leaf: vec![1; 120],
        inclusion_proof: vec![vec![0xaa; 32], vec![0xbb; 32]],
        checkpoint: "blockdb.local/c/shard/0\n5\nAAAA\n\n— node abc=\n".to_owned(),
        consistency_proof: Some(ConsistencyProof {
            from_size: 2,
            to_size: 5,
            hashes: vec![vec![0xcc; 32]],
        }),
        shard: 7,
        log_index: 4,
    };
    let bytes = full.encode_to_vec();
    assert_eq!(ProofBundle::decode(bytes.as_slice()).expect("decodes"), full);

    // Phase 2: a redacted value and an empty value stay distinct, and an absent consistency proof
    // stays absent, across the wire.
    let redacted = ProofBundle {
        record: Some(Record { key: b"k".to_vec(), version: 1, value: None }),
        consistency_proof: None,
        ..full.clone()
    };
    let empty = ProofBundle {
        record: Some(Record { key: b"k".to_vec(), version: 1, value: Some(Vec::new()) }),
        ..redacted.clone()
    };
    for bundle in [&redacted, &empty] {
        let decoded = ProofBundle::decode(bundle.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(&decoded, bundle);
    }
    assert_ne!(redacted.encode_to_vec(), empty.encode_to_vec());

    // Phase 3: a truncated message is an error, not a panic or a partial bundle.
    assert!(ProofBundle::decode(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn watch_event_oneof_round_trips() {
    let event = WatchEvent {
        event: Some(watch_event::Event::Checkpoint(blockdb_proto::v1::CheckpointEvent {
            checkpoint: "origin\n1\nAAAA\n\n— node abc=\n".to_owned(),
            tree_size: 1,
        })),
    };
    let decoded = WatchEvent::decode(event.encode_to_vec().as_slice()).expect("decodes");
    assert_eq!(decoded, event);
}

/// The paths a server and a client name; this fails to compile if the generated names change.
#[expect(dead_code, reason = "only type-checked: names the generated server and client types")]
fn generated_paths_exist<T: Ledger>(service: T) -> LedgerServer<T> {
    let _client: Option<LedgerClient<tonic::transport::Channel>> = None;
    LedgerServer::new(service)
}

#[test]
fn reflection_accepts_the_descriptor_set() {
    // tonic-reflection resolves every type of the set when it builds; a descriptor that lacks a
    // file or a type makes these fail. Both protocol versions are served, so both must accept it.
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1();
    assert!(v1.is_ok(), "reflection v1: {:?}", v1.err());
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1alpha();
    assert!(v1alpha.is_ok(), "reflection v1alpha: {:?}", v1alpha.err());
}
