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
//! log_level = "info,openraft=warn"   # a tracing filter
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::node::NodeConfig;

/// The log filter unless configured: openraft reports every election at `info`, which is noise
/// on a single node.
pub const DEFAULT_LOG_LEVEL: &str = "info,openraft=warn";

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
    /// The node's name in its verifier key [default: blockdb-node-1].
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
    /// Log filter, as tracing's EnvFilter reads it [default: info,openraft=warn].
    #[arg(long, env = "BLOCKDB_LOG_LEVEL")]
    pub log_level: Option<String>,
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
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The node's settings.
    pub node: NodeConfig,
    /// The client address.
    pub listen: SocketAddr,
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
        if let Some(v) = args.node_name.or(file.node_name) {
            node.node_name = v;
        }
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
        check(&node)?;
        let listen = args.listen.or(file.listen).unwrap_or_else(|| ([127, 0, 0, 1], 7070).into());
        Ok(ServeConfig {
            node,
            listen,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            log_level: args
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| DEFAULT_LOG_LEVEL.into()),
        })
    }
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
}
