//! The gRPC adapter: the `blockdb.v1.Ledger` service of `proto/blockdb/v1/ledger.proto` over
//! [`Node`], with the standard health and reflection services, as one axum router that the REST
//! layer merges into the node's single client address.
//!
//! ```text
//!  router(node) ── /blockdb.v1.Ledger/*                        ledger::LedgerService ──► Node
//!               ── /grpc.health.v1.Health/*                    health::NodeHealth ─────► Node::is_ready
//!               ── /grpc.reflection.v1.ServerReflection/*      tonic-reflection (descriptors)
//!               ── /grpc.reflection.v1alpha.ServerReflection/*
//! ```
//!
//! The adapter only translates: it checks the shape of each request (key limits, version 0, a
//! scan's range, page sizes), calls [`Node`] and the [`crate::ledger::ShardView`] it hands out,
//! and converts the results to protobuf messages (`convert`). Reads are proven against the view
//! they came from, so every bundle of one response carries the same checkpoint.
//!
//! Errors go through one function, `status::to_status`, which maps each stable
//! [`ErrorCode`](crate::error::ErrorCode) to a gRPC code and puts the code's name in the
//! `blockdb-error-code` metadata (and the key's version in `blockdb-current-version` for
//! conflicts), so gRPC and REST clients match on the same strings:
//!
//! | error code                                                   | gRPC status          |
//! |--------------------------------------------------------------|----------------------|
//! | invalid_argument, key_too_large, value_too_large, payload_too_large | INVALID_ARGUMENT |
//! | not_found                                                    | NOT_FOUND            |
//! | already_exists                                               | ALREADY_EXISTS       |
//! | version_mismatch                                             | FAILED_PRECONDITION  |
//! | out_of_range                                                 | OUT_OF_RANGE         |
//! | not_leader, unavailable                                      | UNAVAILABLE          |
//! | timeout                                                      | DEADLINE_EXCEEDED    |
//! | internal                                                     | INTERNAL             |
//! | method_not_allowed                                           | UNIMPLEMENTED        |
//! | aborted, locked, deadlock                                    | ABORTED              |
//!
//! The router has no fallback of its own (tonic's `Routes::default()` would add one), so that
//! it merges into the REST router, which has one; a path outside the four services gets the REST
//! layer's 404, which gRPC clients see as UNIMPLEMENTED.
//!
//! Storage reads run on tokio's blocking pool, and every queue is bounded: a page of History or
//! Scan stops at 1000 bundles or about 3 MiB of encoded bundles (below the 4 MiB that gRPC
//! clients accept by default), and a Watch stream has a bounded channel and ends a consumer that stops reading
//! (see `watch`).

use std::sync::Arc;

use blockdb_proto::v1::ledger_server::LedgerServer;
use tonic::service::Routes;
use tonic_health::pb::health_server::HealthServer;

use crate::node::Node;

mod convert;
mod health;
mod ledger;
pub mod status;
mod watch;

/// Smallest limit on a decoded request, whatever the node's key and value limits: tonic's
/// default, 4 MiB.
const DECODE_BYTES_MIN: usize = 4 << 20;

/// The gRPC services (Ledger, health, reflection v1 and v1alpha) as an axum router without a
/// fallback, ready to be merged with the REST router.
///
/// Requires a tokio runtime only when requests arrive (no task is spawned here).
pub fn router(node: Arc<Node>) -> axum::Router {
    // A request must be able to carry the largest record the node accepts, so that an oversized
    // value is refused by `check_record` (with its error code) rather than by the decoder.
    let config = node.config();
    let decode_max = (config.key_len_max + config.value_len_max + 64 * 1024).max(DECODE_BYTES_MIN);
    let ledger = LedgerServer::new(ledger::LedgerService::new(Arc::clone(&node)))
        .max_decoding_message_size(decode_max);
    let health = HealthServer::new(health::NodeHealth::new(node));
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(blockdb_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .expect("the descriptor sets are compiled in and decode (tests/grpc_api.rs lists them)");
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("the descriptor sets are compiled in and decode (tests/grpc_api.rs lists them)");
    // Routes::from(Router::new()) rather than Routes::default(): the default adds a fallback,
    // and axum refuses to merge two routers that both have one.
    Routes::from(axum::Router::new())
        .add_service(ledger)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .into_axum_router()
}
