//! The REST adapter: JSON over HTTP under `/v1`, tlog-tiles under `/tlog/{shard}`, and the
//! operational endpoints (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/docs`).
//!
//! Handlers only translate: parameters in, [`Node`] calls, JSON out. Every error leaves through
//! [`error::ApiError`] as `{"code", "message"}` with a stable code, including the ones axum would
//! answer in plain text: malformed bodies and parameters, bodies over the limit, unknown routes
//! (404) and undeclared methods (405, with `Allow`).
//!
//! The OpenAPI 3.1 document is generated from the handlers' annotations ([`openapi`]); the copy
//! committed under `openapi/` is checked against it by a test.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ErrorCode, RequestError};
use crate::metrics::{Metrics, RequestLabels};
use crate::node::Node;

pub mod cluster;
pub mod error;
pub mod log;
pub mod records;
pub mod tiles;
pub mod txn;
pub mod types;

use error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "BlockDB",
        description = "A replicated, append-only, verifiable ledger database. Every read returns \
            a proof bundle that the `blockdb-verifier` crate or `blockdb-verify` checks offline \
            against the node's verifier key. Keys and values are base64; errors are \
            `{\"code\", \"message\"}` with a stable `code`.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "records", description = "Write records and read them with proofs"),
        (name = "log", description = "A shard's log: entries, checkpoints, consistency proofs"),
        (name = "blocks", description = "The hash-chained block view over a shard's log"),
        (name = "tlog-tiles", description = "C2SP tlog-tiles, one prefix per shard"),
        (name = "node", description = "The node"),
        (name = "cluster", description = "The cluster's members and their state"),
        (name = "transactions", description = "Serializable transactions across keys and shards"),
    ),
    components(schemas(error::ErrorBody, ErrorCode, types::ConsistencyParam))
)]
struct ApiDoc;

fn api_routes() -> OpenApiRouter<Arc<Node>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(records::insert))
        .routes(routes!(records::append))
        .routes(routes!(records::get_record))
        .routes(routes!(records::history))
        .routes(routes!(records::scan))
        .routes(routes!(txn::transact))
        .routes(routes!(txn::begin))
        .routes(routes!(txn::read))
        .routes(routes!(txn::write))
        .routes(routes!(txn::commit))
        .routes(routes!(txn::abort))
        .routes(routes!(log::entry))
        .routes(routes!(log::checkpoint))
        .routes(routes!(log::consistency))
        .routes(routes!(log::latest_block))
        .routes(routes!(log::block))
        .routes(routes!(log::blocks))
        .routes(routes!(log::node_info))
        .routes(routes!(cluster::status))
        .routes(routes!(cluster::add_member))
        .routes(routes!(cluster::remove_member))
        .routes(routes!(tiles::checkpoint))
}

/// The OpenAPI document of the REST API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = api_routes().split_for_parts();
    doc.merge(tiles_doc());
    doc
}

/// The tile route takes a wildcard path, which utoipa-axum's router cannot register, so it is
/// routed by hand and documented here.
fn tiles_doc() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(paths(tiles::tile))]
    struct TilesDoc;
    TilesDoc::openapi()
}

/// The client address's whole HTTP service: REST, tiles, operations, docs, and `grpc`.
pub fn router(node: Arc<Node>, metrics: Arc<Metrics>, grpc: Router) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let body_max = node.config().value_len_max * 4 / 3 + node.config().key_len_max * 4 / 3 + 4096;
    let ops = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state((Arc::clone(&node), Arc::clone(&metrics)));
    api.route("/tlog/{shard}/tile/{*path}", get(tiles::tile))
        .with_state(node)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi()))
        .merge(ops)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_max))
        .merge(grpc)
        .layer(middleware::from_fn_with_state(metrics, track))
}

/// Headers saying how stale the answering replica of `shard` may be: its applied Raft index,
/// the committed entries it had not applied when its leader last spoke, and how long ago that
/// was. Reads carry them whatever their consistency; they matter for `consistency=stale`.
pub(crate) fn staleness(
    node: &Node,
    shard: blockdb_verifier::ShardId,
) -> Result<axum::http::HeaderMap, ApiError> {
    let s = node.staleness(shard)?;
    let mut h = axum::http::HeaderMap::new();
    h.insert("blockdb-applied-index", s.applied_index.into());
    h.insert("blockdb-behind-entries", s.behind.into());
    if let Some(ms) = s.millis_since_leader {
        h.insert("blockdb-millis-since-leader", ms.into());
    }
    Ok(h)
}

async fn not_found() -> ApiError {
    ApiError(RequestError::new(ErrorCode::NotFound, "no such route"))
}

async fn method_not_allowed() -> ApiError {
    ApiError(RequestError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take this method; see the Allow header",
    ))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State((node, _)): State<(Arc<Node>, Arc<Metrics>)>) -> Response {
    if node.is_ready() {
        axum::Json(serde_json::json!({ "status": "ready" })).into_response()
    } else {
        ApiError(RequestError::new(ErrorCode::Unavailable, "a shard has no leader yet"))
            .into_response()
    }
}

async fn render_metrics(State((node, metrics)): State<(Arc<Node>, Arc<Metrics>)>) -> Response {
    let text = metrics.render(&node).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_owned(),
        None if grpc => req.uri().path().to_owned(),
        None => "unmatched".to_owned(),
    };
    let response = next.run(req).await;
    let status = response.status();
    let labels = RequestLabels {
        api: if grpc { "grpc" } else { "rest" }.into(),
        route,
        status: status.as_u16(),
    };
    metrics.observe(labels, start.elapsed());
    response
}
