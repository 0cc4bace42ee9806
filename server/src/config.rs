//! Configuration of `blockdb serve`: command-line flags, `BLOCKDB_*` environment variables and a
//! TOML file, in that order of precedence, over built-in defaults.
//!
//! ```toml
//! # blockdb.toml — every field is optional
//! data_dir = "./blockdb-data"
//! listen = "127.0.0.1:7070"
//! node_name = "blockdb-node-1"
//! shards = 1
//! key_len_max = 1024
//! value_len_max = 1048576
//! batch_records_max = 256
//! write_timeout_ms = 10000
//! log_format = "text"   # or "json"
//! log_level = "info,openraft=error,openraft::replication=off"   # a tracing filter
//! # A node of a cluster (see the README's cluster section):
//! node_id = 1
//! peer_listen = "127.0.0.1:7071"
//! peers = "1=127.0.0.1:7071,2=127.0.0.1:7073,3=127.0.0.1:7075"   # or: join = "127.0.0.1:7071"
//! cluster_token = "blockdb"
//! heartbeat_ms = 100
//! election_timeout_ms = 250
//! snapshot_entries = 20000
//! txn_timeout_ms = 10000
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::node::NodeConfig;
use crate::raft::NodeId;

/// The log filter unless configured. openraft reports every election at `info`, benign vote
/// races at `warn`, and every failed replication attempt to a down peer at `error` (several a
/// second); the peer network logs the start and end of each peer outage itself instead.
pub const DEFAULT_LOG_LEVEL: &str = "info,openraft=error,openraft::replication=off";

/// Flags of `blockdb serve`; each can also come from its `BLOCKDB_*` variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags and environment override it).
    #[arg(long, env = "BLOCKDB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the node keeps its data [default: ./blockdb-data].
    #[arg(long, env = "BLOCKDB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Client address: REST, gRPC and tlog-tiles on one port [default: 127.0.0.1:7070].
    #[arg(long, env = "BLOCKDB_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The node's name in its verifier key [default: blockdb-node-ID, with this node's id].
    #[arg(long, env = "BLOCKDB_NODE_NAME")]
    pub node_name: Option<String>,
    /// Shards of a new data directory (an existing one keeps its own) [default: 1].
    #[arg(long, env = "BLOCKDB_SHARDS")]
    pub shards: Option<u32>,
    /// Longest key accepted, in bytes [default: 1024].
    #[arg(long, env = "BLOCKDB_KEY_LEN_MAX")]
    pub key_len_max: Option<usize>,
    /// Longest value accepted, in bytes [default: 1048576].
    #[arg(long, env = "BLOCKDB_VALUE_LEN_MAX")]
    pub value_len_max: Option<usize>,
    /// Writes per Raft entry (per block), at most [default: 256].
    #[arg(long, env = "BLOCKDB_BATCH_RECORDS_MAX")]
    pub batch_records_max: Option<usize>,
    /// How long a write waits for its commit, in milliseconds [default: 10000].
    #[arg(long, env = "BLOCKDB_WRITE_TIMEOUT_MS")]
    pub write_timeout_ms: Option<u64>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "BLOCKDB_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, as tracing's EnvFilter reads it [default: info,openraft=error,openraft::replication=off].
    #[arg(long, env = "BLOCKDB_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// This node's id in its cluster, from 1 [default: 1].
    #[arg(long, env = "BLOCKDB_NODE_ID")]
    pub node_id: Option<NodeId>,
    /// Peer address: Raft and forwarded requests from the other nodes [default: this node's
    /// address in --peers; none for a node alone].
    #[arg(long, env = "BLOCKDB_PEER_LISTEN")]
    pub peer_listen: Option<SocketAddr>,
    /// Members of a new cluster, the same list on every node: `ID=HOST:PORT,...` with each
    /// node's peer address. Used only when the data directory is new.
    #[arg(long, env = "BLOCKDB_PEERS")]
    pub peers: Option<String>,
    /// Join an existing cluster through a member's peer address; the cluster then adds this node
    /// (`blockctl cluster add`). Used only when the data directory is new.
    #[arg(long, env = "BLOCKDB_JOIN")]
    pub join: Option<String>,
    /// Mixed into a new cluster's id, so that clusters made from the same --peers differ
    /// [default: blockdb].
    #[arg(long, env = "BLOCKDB_CLUSTER_TOKEN")]
    pub cluster_token: Option<String>,
    /// Raft heartbeat interval, in milliseconds [default: 100].
    #[arg(long, env = "BLOCKDB_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Shortest Raft election timeout, in milliseconds; the longest is 1.5 times this. A dead
    /// leader is replaced 2.5 to 3 times this after its last heartbeat [default: 250].
    #[arg(long, env = "BLOCKDB_ELECTION_TIMEOUT_MS")]
    pub election_timeout_ms: Option<u64>,
    /// Applied Raft entries between snapshots; the log is purged behind each [default: 20000].
    #[arg(long, env = "BLOCKDB_SNAPSHOT_ENTRIES")]
    pub snapshot_entries: Option<u64>,
    /// The local IP address connections to peers are made from [default: any]. The chaos
    /// harness gives each node its own loopback address so that its proxies can cut single
    /// links.
    #[arg(long, env = "BLOCKDB_PEER_SOURCE_IP")]
    pub peer_source_ip: Option<std::net::IpAddr>,
    /// Breaks linearizable reads on followers on purpose, for the chaos harness's self-test.
    #[arg(long, hide = true)]
    pub unsafe_follower_reads: bool,
    /// Skews this node's clock by this many milliseconds (may be negative), for tests: commit
    /// times come from the leader's clock, and nothing safety-related depends on it [default: 0].
    #[arg(long, env = "BLOCKDB_CLOCK_SKEW_MS", allow_hyphen_values = true)]
    pub clock_skew_ms: Option<i64>,
    /// How long a transaction may take, in milliseconds; a transaction left undecided (its
    /// coordinator died) is finished by recovery after twice this [default: 10000].
    #[arg(long, env = "BLOCKDB_TXN_TIMEOUT_MS")]
    pub txn_timeout_ms: Option<u64>,
    /// Makes this node exit abruptly at a step of two-phase commit it coordinates, for the
    /// crash tests: `after-begin`, `after-first-prepare`, `after-decide`.
    #[arg(long, hide = true)]
    pub txn_crash_at: Option<crate::node::TxnCrashPoint>,
    /// Breaks transactions on purpose (their checks are not enforced), for the chaos harness's
    /// self-test.
    #[arg(long, hide = true)]
    pub unsafe_txn_skip_checks: bool,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    node_name: Option<String>,
    shards: Option<u32>,
    key_len_max: Option<usize>,
    value_len_max: Option<usize>,
    batch_records_max: Option<usize>,
    write_timeout_ms: Option<u64>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    node_id: Option<NodeId>,
    peer_listen: Option<SocketAddr>,
    peers: Option<String>,
    join: Option<String>,
    cluster_token: Option<String>,
    heartbeat_ms: Option<u64>,
    election_timeout_ms: Option<u64>,
    snapshot_entries: Option<u64>,
    peer_source_ip: Option<std::net::IpAddr>,
    txn_timeout_ms: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The node's settings.
    pub node: NodeConfig,
    /// The client address.
    pub listen: SocketAddr,
    /// Where the peer service listens, if anywhere.
    pub peer_listen: Option<SocketAddr>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML of this schema.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl ServeConfig {
    /// Resolves flags (with their environment variables) over the file over the defaults.
    ///
    /// # Errors
    /// [`ConfigError`] for an unreadable or malformed file, or settings out of range.
    pub fn resolve(args: ServeArgs) -> Result<ServeConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(|| "./blockdb-data".into());
        let mut node = NodeConfig::new(data_dir);
        node.shards = args.shards.or(file.shards);
        if let Some(v) = args.key_len_max.or(file.key_len_max) {
            node.key_len_max = v;
        }
        if let Some(v) = args.value_len_max.or(file.value_len_max) {
            node.value_len_max = v;
        }
        if let Some(v) = args.batch_records_max.or(file.batch_records_max) {
            node.batch_records_max = v;
        }
        if let Some(v) = args.write_timeout_ms.or(file.write_timeout_ms) {
            node.write_timeout_ms = v;
        }
        if let Some(v) = args.node_id.or(file.node_id) {
            node.node_id = v;
        }
        node.node_name = args
            .node_name
            .or(file.node_name)
            .unwrap_or_else(|| format!("blockdb-node-{}", node.node_id));
        if let Some(v) = args.peers.or(file.peers) {
            node.initial_members = parse_peers(&v)?;
        }
        node.join = args.join.or(file.join);
        if let Some(v) = args.cluster_token.or(file.cluster_token) {
            node.cluster_token = v;
        }
        if let Some(v) = args.heartbeat_ms.or(file.heartbeat_ms) {
            node.raft.heartbeat_ms = v;
        }
        if let Some(v) = args.election_timeout_ms.or(file.election_timeout_ms) {
            node.raft.election_timeout_ms = v;
        }
        if let Some(v) = args.snapshot_entries.or(file.snapshot_entries) {
            node.raft.snapshot_entries = v;
        }
        node.peer_source_ip = args.peer_source_ip.or(file.peer_source_ip);
        node.unsafe_follower_reads = args.unsafe_follower_reads;
        node.clock_skew_ms = args.clock_skew_ms.unwrap_or(0);
        if let Some(v) = args.txn_timeout_ms.or(file.txn_timeout_ms) {
            node.txn_timeout_ms = v;
        }
        node.txn_crash_at = args.txn_crash_at;
        node.unsafe_txn_skip_checks = args.unsafe_txn_skip_checks;
        if node.unsafe_txn_skip_checks {
            eprintln!("blockdb: --unsafe-txn-skip-checks: transactions are NOT serializable");
        }
        if let Some(point) = node.txn_crash_at {
            eprintln!("blockdb: --txn-crash-at {point:?}: this node exits in the middle of 2PC");
        }
        if node.unsafe_follower_reads {
            eprintln!("blockdb: --unsafe-follower-reads: linearizable reads are NOT linearizable");
        }
        check(&node)?;
        let listen = args.listen.or(file.listen).unwrap_or_else(|| ([127, 0, 0, 1], 7070).into());
        let mut peer_listen = args.peer_listen.or(file.peer_listen);
        if peer_listen.is_none()
            && let Some(mine) = node.initial_members.get(&node.node_id)
        {
            peer_listen = Some(mine.parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "this node's peer address {mine} in --peers is not an IP address and port; \
                     give --peer-listen"
                ))
            })?);
        }
        if node.join.is_some() && peer_listen.is_none() {
            return Err(ConfigError::Invalid("--join needs --peer-listen".into()));
        }
        Ok(ServeConfig {
            node,
            listen,
            peer_listen,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            log_level: args
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| DEFAULT_LOG_LEVEL.into()),
        })
    }
}

/// Parses `ID=HOST:PORT,...`.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the bad item.
pub fn parse_peers(text: &str) -> Result<BTreeMap<NodeId, String>, ConfigError> {
    let bad = |m: String| ConfigError::Invalid(format!("--peers: {m}"));
    let mut out = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) =
            item.split_once('=').ok_or_else(|| bad(format!("{item:?} is not ID=HOST:PORT")))?;
        let id: NodeId =
            id.trim().parse().map_err(|_| bad(format!("{id:?} in {item:?} is not a node id")))?;
        if id == 0 {
            return Err(bad("node ids start at 1".into()));
        }
        let addr = addr.trim();
        if crate::raft::network::endpoint(addr).is_err() {
            return Err(bad(format!("{addr:?} of node {id} is not HOST:PORT")));
        }
        if out.insert(id, addr.to_owned()).is_some() {
            return Err(bad(format!("node {id} is listed twice")));
        }
    }
    if out.is_empty() {
        return Err(bad("no members".into()));
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    toml::from_str(&text)
        .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })
}

fn check(node: &NodeConfig) -> Result<(), ConfigError> {
    let bad = |m: String| Err(ConfigError::Invalid(m));
    if let Some(n) = node.shards.filter(|n| !(1..=1024).contains(n)) {
        return bad(format!("shards must be 1 to 1024, not {n}"));
    }
    // The leaf format bounds the key length (it holds values only by their digest).
    if !(1..=blockdb_verifier::leaf::KEY_LEN_MAX).contains(&node.key_len_max) {
        return bad(format!(
            "key_len_max must be 1 to {}, not {}",
            blockdb_verifier::leaf::KEY_LEN_MAX,
            node.key_len_max
        ));
    }
    if !(1..=64 << 20).contains(&node.value_len_max) {
        return bad(format!("value_len_max must be 1 to 67108864, not {}", node.value_len_max));
    }
    if !(1..=10_000).contains(&node.batch_records_max) {
        return bad(format!(
            "batch_records_max must be 1 to 10000, not {}",
            node.batch_records_max
        ));
    }
    if node.write_timeout_ms == 0 {
        return bad("write_timeout_ms must be positive".into());
    }
    if node.node_id == 0 {
        return bad("node_id must be 1 or more".into());
    }
    if !node.initial_members.is_empty() && !node.initial_members.contains_key(&node.node_id) {
        return bad(format!("node {} is not in --peers", node.node_id));
    }
    if !node.initial_members.is_empty() && node.join.is_some() {
        return bad("give --peers (a new cluster) or --join (an existing one), not both".into());
    }
    let r = node.raft;
    if !(10..=60_000).contains(&r.heartbeat_ms) {
        return bad(format!("heartbeat_ms must be 10 to 60000, not {}", r.heartbeat_ms));
    }
    if r.election_timeout_ms < 2 * r.heartbeat_ms || r.election_timeout_ms > 600_000 {
        return bad(format!(
            "election_timeout_ms must be at least twice heartbeat_ms ({}) and at most 600000, \
             not {}",
            r.heartbeat_ms, r.election_timeout_ms
        ));
    }
    if node.txn_timeout_ms == 0 || node.txn_timeout_ms > 3_600_000 {
        return bad("txn_timeout_ms must be from 1 to 3600000".into());
    }
    if r.snapshot_entries == 0 {
        return bad("snapshot_entries must be positive".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.toml");
        std::fs::write(
            &path,
            "shards = 4\nlisten = \"127.0.0.1:9000\"\nnode_name = \"from-file\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            node_name: Some("from-flag".into()),
            ..ServeArgs::default()
        };
        let c = ServeConfig::resolve(args).unwrap();
        assert_eq!(c.node.shards, Some(4));
        assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.node.node_name, "from-flag");
        assert_eq!(c.node.data_dir, PathBuf::from("./blockdb-data"));
        assert_eq!(c.node.value_len_max, 1 << 20);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.toml");
        std::fs::write(&path, "shard = 4\n").unwrap();
        let args = ServeArgs { config: Some(path.clone()), ..ServeArgs::default() };
        assert!(matches!(ServeConfig::resolve(args), Err(ConfigError::Parse { .. })));
        let args = ServeArgs { shards: Some(0), ..ServeArgs::default() };
        assert!(matches!(ServeConfig::resolve(args), Err(ConfigError::Invalid(_))));
        let args = ServeArgs { key_len_max: Some(1 << 20), ..ServeArgs::default() };
        assert!(matches!(ServeConfig::resolve(args), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn a_member_list_parses_and_bad_ones_say_why() {
        let m = parse_peers("1=127.0.0.1:7071, 2=127.0.0.1:7073,3=node-3:7075").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[&3], "node-3:7075");
        for (bad, says) in [
            ("", "no members"),
            ("1=127.0.0.1:7071,1=127.0.0.1:7073", "listed twice"),
            ("0=127.0.0.1:7071", "start at 1"),
            ("x=127.0.0.1:7071", "not a node id"),
            ("1=127.0.0.1", "not HOST:PORT"),
            ("127.0.0.1:7071", "not ID=HOST:PORT"),
        ] {
            let e = parse_peers(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        // This node must be in the list; its peer address comes from it.
        let args = ServeArgs {
            node_id: Some(4),
            peers: Some("1=127.0.0.1:7071,2=127.0.0.1:7073".into()),
            ..ServeArgs::default()
        };
        let e = ServeConfig::resolve(args).unwrap_err().to_string();
        assert!(e.contains("node 4 is not in --peers"), "{e}");
        let args = ServeArgs {
            node_id: Some(2),
            peers: Some("1=127.0.0.1:7071,2=127.0.0.1:7073".into()),
            ..ServeArgs::default()
        };
        let c = ServeConfig::resolve(args).unwrap();
        assert_eq!(c.peer_listen, Some("127.0.0.1:7073".parse().unwrap()));
        let args = ServeArgs {
            election_timeout_ms: Some(150),
            heartbeat_ms: Some(100),
            ..ServeArgs::default()
        };
        assert!(ServeConfig::resolve(args).unwrap_err().to_string().contains("twice"));
    }
}
