//! Where the trusted state lives between runs: in memory, or in a file written atomically
//! (a temporary file, fsynced, renamed over the old one, and the directory fsynced), so that a
//! crash leaves either the old state or the new one, never a torn file.
//!
//! # File format
//!
//! ```json
//! { "format": "blockdb-trusted-state/v1", "checkpoints": ["<checkpoint text>", "..."] }
//! ```
//!
//! Each entry is a checkpoint's body (origin, size, base64 root lines) as the C2SP
//! tlog-checkpoint spec writes it. The file is the client's own record of what it has verified,
//! like an SSH `known_hosts` file: protect it as you protect the trust policy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use blockdb_verifier::Checkpoint;
use serde::{Deserialize, Serialize};

/// The `format` value of the file.
pub const FORMAT: &str = "blockdb-trusted-state/v1";

/// Why the trusted state could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the file failed.
    #[error("trusted state {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a trusted-state file.
    #[error("trusted state {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Persistence of the trusted checkpoints.
pub trait TrustStore: Send + Sync {
    /// The checkpoints saved last (none the first time).
    ///
    /// # Errors
    /// [`StoreError`] when the saved state cannot be read.
    fn load(&self) -> Result<Vec<Checkpoint>, StoreError>;

    /// Replaces the saved checkpoints.
    ///
    /// # Errors
    /// [`StoreError`] when they cannot be saved; the previous state is then intact.
    fn save(&self, checkpoints: &[Checkpoint]) -> Result<(), StoreError>;
}

/// A store that keeps nothing past the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    saved: Mutex<Vec<Checkpoint>>,
}

impl TrustStore for MemoryStore {
    fn load(&self) -> Result<Vec<Checkpoint>, StoreError> {
        Ok(self.saved.lock().expect("no panic while holding the lock").clone())
    }

    fn save(&self, checkpoints: &[Checkpoint]) -> Result<(), StoreError> {
        *self.saved.lock().expect("no panic while holding the lock") = checkpoints.to_vec();
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    format: String,
    checkpoints: Vec<String>,
}

/// A store in one file, replaced atomically on every save.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store at `path` (created on the first save).
    pub fn new(path: impl Into<PathBuf>) -> FileStore {
        FileStore { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self) -> impl Fn(std::io::Error) -> StoreError + '_ {
        |source| StoreError::Io { path: self.path.clone(), source }
    }
}

impl TrustStore for FileStore {
    fn load(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io()(e)),
        };
        let bad = |reason: String| StoreError::Malformed { path: self.path.clone(), reason };
        let form: FileForm = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if form.format != FORMAT {
            return Err(bad(format!("format {:?}, expected {FORMAT:?}", form.format)));
        }
        form.checkpoints
            .iter()
            .map(|text| Checkpoint::from_text(text).map_err(|e| bad(e.to_string())))
            .collect()
    }

    fn save(&self, checkpoints: &[Checkpoint]) -> Result<(), StoreError> {
        let form = FileForm {
            format: FORMAT.into(),
            checkpoints: checkpoints.iter().map(Checkpoint::to_text).collect(),
        };
        let json = serde_json::to_vec_pretty(&form).expect("the state serializes");
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let io = |source| StoreError::Io { path: tmp.clone(), source };
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&json).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        // If the process dies here, the old file is intact and the temporary one is replaced by
        // the next save.
        std::fs::rename(&tmp, &self.path).map_err(self.io())?;
        let dir =
            self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(self.io())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use blockdb_verifier::{Hash, TreeSize};

    use super::*;

    #[test]
    fn the_file_store_round_trips_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("trusted.json"));
        assert!(store.load().unwrap().is_empty());
        let cps = vec![
            Checkpoint {
                origin: "a/shard/0".into(),
                size: TreeSize(3),
                root: Hash([7; 32]),
                extensions: vec![],
            },
            Checkpoint {
                origin: "a/shard/1".into(),
                size: TreeSize(0),
                root: Hash([1; 32]),
                extensions: vec![],
            },
        ];
        store.save(&cps).unwrap();
        assert_eq!(store.load().unwrap(), cps);
        std::fs::write(store.path(), b"{\"format\":\"x\",\"checkpoints\":[]}").unwrap();
        assert!(matches!(store.load(), Err(StoreError::Malformed { .. })));
        std::fs::write(store.path(), b"not json").unwrap();
        assert!(matches!(store.load(), Err(StoreError::Malformed { .. })));
    }
}
