//! The standard gRPC health service (`grpc.health.v1.Health`, tonic-health's generated server)
//! over [`Node::is_ready`].
//!
//! The overall status (service `""`) and the Ledger's (`blockdb.v1.Ledger`) are SERVING while
//! the node leads every shard and can take writes, NOT_SERVING otherwise; any other service name
//! is NOT_FOUND, as tonic-health answers for a service it does not know.
//!
//! The status is read from the node on each Check rather than pushed into tonic-health's
//! `HealthReporter` by a background task: it can never be stale, and nothing runs while nobody
//! asks. A Watch polls the node every [`WATCH_POLL`] and sends the status when it changes; its
//! task holds the node weakly and ends when the client goes away or the node is dropped.

use std::sync::{Arc, Weak};
use std::time::Duration;

use blockdb_proto::v1::ledger_server::SERVICE_NAME as LEDGER;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::node::Node;

/// How often a Watch looks at the node's readiness.
const WATCH_POLL: Duration = Duration::from_secs(1);

/// Statuses buffered for a Watch client, at most; a client that does not read blocks only its
/// own task.
const WATCH_CHANNEL: usize = 4;

type Item = Result<HealthCheckResponse, Status>;

/// The health service of one node.
#[derive(Debug)]
pub(super) struct NodeHealth {
    node: Arc<Node>,
}

impl NodeHealth {
    pub(super) fn new(node: Arc<Node>) -> NodeHealth {
        NodeHealth { node }
    }
}

/// Whether the health service answers for `service`.
fn is_known(service: &str) -> bool {
    service.is_empty() || service == LEDGER
}

fn status_of(node: &Node) -> ServingStatus {
    if node.is_ready() { ServingStatus::Serving } else { ServingStatus::NotServing }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse { status: status as i32 }
}

fn unknown(service: &str) -> Status {
    Status::not_found(format!("no health status for service {service:?}"))
}

#[tonic::async_trait]
impl Health for NodeHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        if !is_known(&service) {
            return Err(unknown(&service));
        }
        Ok(Response::new(response(status_of(&self.node))))
    }

    type WatchStream = ReceiverStream<Item>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        if !is_known(&service) {
            return Err(unknown(&service));
        }
        let (tx, rx) = mpsc::channel(WATCH_CHANNEL);
        tokio::spawn(follow(Arc::downgrade(&self.node), tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Sends the node's status now and whenever it changes, until the client goes away; when the
/// node is dropped, sends NOT_SERVING and ends.
async fn follow(node: Weak<Node>, tx: mpsc::Sender<Item>) {
    let mut sent = None;
    let mut ticks = tokio::time::interval(WATCH_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = tx.closed() => return,
        }
        let status = node.upgrade().map_or(ServingStatus::NotServing, |n| status_of(&n));
        if sent != Some(status) {
            if tx.send(Ok(response(status))).await.is_err() {
                return;
            }
            sent = Some(status);
        }
        if node.strong_count() == 0 {
            return;
        }
    }
}
