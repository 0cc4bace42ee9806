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

/// Labels of a per-shard, per-peer series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    /// The shard.
    pub shard: u32,
    /// The peer's node id.
    pub peer: u64,
}

/// Labels of a per-shard Raft series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RaftLabels {
    /// The shard.
    pub shard: u32,
    /// What: `term`, `leader` (node id, 0 for none), `is_leader`, `last_log_index`,
    /// `committed_index`, `snapshot_index`, `purged_index`, `voters`, `learners`, `corrupt`,
    /// `read_barrier_rounds` and `read_barrier_reads` (rounds run as leader since the start, and
    /// the linearizable reads they answered).
    pub what: String,
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
    raft: Family<RaftLabels, Gauge>,
    lag: Family<PeerLabels, Gauge>,
    txns: Family<RaftLabels, Gauge>,
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
        let raft = Family::<RaftLabels, Gauge>::default();
        let lag = Family::<PeerLabels, Gauge>::default();
        let txns = Family::<RaftLabels, Gauge>::default();
        registry.register(
            "txns",
            "Open transactions in each shard's applied state on this node: prepared = \
             participants holding locks until their decision, undecided = records without one",
            txns.clone(),
        );
        registry.register(
            "raft",
            "Raft state of each shard on this node (term, leader, indexes, membership size, \
             corrupt = 1 when the replica diverged and stopped serving the shard, read barrier \
             rounds and the reads they answered)",
            raft.clone(),
        );
        registry.register(
            "replication_lag_entries",
            "On a shard's leader: entries each peer's log is behind",
            lag.clone(),
        );
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
            raft,
            lag,
            txns,
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
                let t = |what: &str| RaftLabels { shard: s, what: what.into() };
                let txns = view.txns();
                self.txns.get_or_create(&t("prepared")).set(txns.prepared().len() as i64);
                self.txns.get_or_create(&t("undecided")).set(txns.undecided().len() as i64);
            }
        }
        // Only the current leader's peers have a lag; a former leader's series go.
        self.lag.clear();
        for shard in node.local_status().shards {
            let g = |what: &str| {
                self.raft
                    .get_or_create(&RaftLabels { shard: shard.shard, what: what.into() })
                    .clone()
            };
            let opt = |v: Option<u64>| v.map_or(-1, |v| v as i64);
            g("term").set(shard.term as i64);
            g("leader").set(shard.leader.unwrap_or(0) as i64);
            g("is_leader").set(i64::from(shard.role == "leader"));
            g("last_log_index").set(opt(shard.last_log_index));
            g("committed_index").set(opt(shard.committed_index));
            g("snapshot_index").set(opt(shard.snapshot_index));
            g("purged_index").set(opt(shard.purged_index));
            g("voters").set(shard.voters.len() as i64);
            g("learners").set(shard.learners.len() as i64);
            g("corrupt").set(i64::from(shard.corruption.is_some()));
            if let Some((rounds, reads)) = node.read_barrier_counts(ShardId(shard.shard)) {
                g("read_barrier_rounds").set(rounds as i64);
                g("read_barrier_reads").set(reads as i64);
            }
            for r in &shard.replication {
                let l = PeerLabels { shard: shard.shard, peer: r.node_id };
                self.lag.get_or_create(&l).set(r.lag as i64);
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
