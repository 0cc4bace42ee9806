//! Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! Request counters and latency histograms are updated as requests finish; the node's state
//! (applied index, tree size, storage engine counters) is read when the metrics are scraped, so
//! it costs nothing between scrapes.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use blockdb_verifier::ShardId;

use crate::node::{Consistency, Node};

/// Labels of a request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `rest` or `grpc`.
    pub api: String,
    /// The route (its template) or gRPC method.
    pub route: String,
    /// The HTTP status code.
    pub status: u16,
}

/// Labels of a shard's gauges.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabels {
    /// The shard.
    pub shard: u32,
}

/// Labels of a storage engine counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StorageLabels {
    /// What is counted.
    pub what: String,
}

/// The node's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    applied_index: Family<ShardLabels, Gauge>,
    tree_size: Family<ShardLabels, Gauge>,
    storage: Family<StorageLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("blockdb");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        let applied_index = Family::<ShardLabels, Gauge>::default();
        let tree_size = Family::<ShardLabels, Gauge>::default();
        let storage = Family::<StorageLabels, Gauge>::default();
        registry.register("requests", "Requests served", requests.clone());
        registry.register("request_duration_seconds", "Request latency", latency.clone());
        registry.register("applied_index", "Last applied Raft index", applied_index.clone());
        registry.register("tree_size", "Leaves in the shard's Merkle log", tree_size.clone());
        registry.register(
            "storage",
            "Storage engine counters and sizes (bytes written by kind, fsyncs, flushes, \
             compactions, memtable and table bytes)",
            storage.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            applied_index,
            tree_size,
            storage,
        }
    }

    /// Records a finished request.
    pub fn observe(&self, labels: RequestLabels, elapsed: Duration) {
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// The metrics in the Prometheus text format, with the node's state read now.
    pub async fn render(&self, node: &Node) -> String {
        for s in 0..node.shard_count() {
            if let Ok(view) = node.view(ShardId(s), Consistency::Stale).await {
                let l = ShardLabels { shard: s };
                self.applied_index.get_or_create(&l).set(view.applied_index() as i64);
                self.tree_size.get_or_create(&l).set(view.tree_size().0 as i64);
            }
        }
        let stats = node.engine().stats();
        let table_bytes: u64 = node.engine().level_bytes().iter().sum();
        for (what, value) in [
            ("user_bytes", stats.user_bytes),
            ("wal_bytes", stats.wal_bytes),
            ("wal_fsyncs", stats.wal_syncs),
            ("flush_bytes", stats.flush_bytes),
            ("compaction_bytes", stats.compaction_bytes),
            ("flushes", stats.flushes),
            ("compactions", stats.compactions),
            ("memtable_bytes", stats.memtable_bytes),
            ("table_bytes", table_bytes),
        ] {
            self.storage.get_or_create(&StorageLabels { what: what.into() }).set(value as i64);
        }
        let mut out = String::new();
        let registry = self.registry.lock().expect("no panic while holding the registry lock");
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}
