//! The node's Ed25519 signing key: created at first start, kept in one file readable by the node's
//! user only, and used to sign the checkpoints the node serves.
//!
//! The file holds the key in the signed-note tools' text form,
//! `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ seed)>`, and a newline. It is created with mode
//! 0600 and written with `create_new`, so an existing key is never overwritten; a key file that
//! others can read is refused rather than used, because a leaked key lets anyone sign a fork.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use blockdb_verifier::{Checkpoint, NoteSigner, SignedCheckpoint, VerifierKey};
use sha2::{Digest, Sha256};

/// Why the node key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeKeyError {
    /// Reading, creating or writing the file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The key file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not a key of this node's name.
    #[error("{path}: {reason}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file can be read by other users.
    #[error(
        "{path} has mode {mode:o}; a signing key must be readable by its owner only (chmod 600)"
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// The node's signing key.
#[derive(Debug)]
pub struct NodeKey {
    signer: NoteSigner,
}

impl NodeKey {
    /// Loads the key at `path`, or creates one named `name` there if the file does not exist.
    /// `seed_source` supplies the 32 random bytes of a new key (the caller passes the operating
    /// system's randomness; tests pass fixed bytes).
    ///
    /// # Errors
    /// [`NodeKeyError`] for an unreadable, malformed or too-open file, or one holding a key of
    /// another name; nothing is written then.
    pub fn load_or_create(
        path: &Path,
        name: &str,
        seed_source: impl FnOnce() -> [u8; 32],
    ) -> Result<NodeKey, NodeKeyError> {
        match fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(NodeKeyError::TooOpen { path: path.to_owned(), mode });
                }
                let text = fs::read_to_string(path).map_err(|source| NodeKeyError::Io {
                    op: "read",
                    path: path.to_owned(),
                    source,
                })?;
                let malformed =
                    |reason: String| NodeKeyError::Malformed { path: path.to_owned(), reason };
                let signer =
                    NoteSigner::from_secret_string(&text).map_err(|e| malformed(e.to_string()))?;
                if signer.verifier_key().name() != name {
                    return Err(malformed(format!(
                        "the key is named {:?}, but this node signs as {name:?}",
                        signer.verifier_key().name()
                    )));
                }
                Ok(NodeKey { signer })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let signer = NoteSigner::from_seed(name, &seed_source()).map_err(|e| {
                    NodeKeyError::Malformed { path: path.to_owned(), reason: e.to_string() }
                })?;
                let io = |op| move |source| NodeKeyError::Io { op, path: path.to_owned(), source };
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io("create"))?;
                f.write_all(format!("{}\n", signer.to_secret_string()).as_bytes())
                    .map_err(io("write"))?;
                f.sync_all().map_err(io("fsync"))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsync directory"))?;
                }
                Ok(NodeKey { signer })
            }
            Err(source) => Err(NodeKeyError::Io { op: "stat", path: path.to_owned(), source }),
        }
    }

    /// The verifier key clients trust to check this node's checkpoints.
    pub fn verifier_key(&self) -> &VerifierKey {
        self.signer.verifier_key()
    }

    /// Signs a checkpoint.
    pub fn sign(&self, checkpoint: &Checkpoint) -> SignedCheckpoint {
        checkpoint.sign(&[&self.signer]).expect("a checkpoint formats as valid note text")
    }
}

/// 32 bytes for a new key from the operating system's randomness (`/dev/urandom`), hashed so
/// that the seed is uniform whatever the source's bias.
///
/// # Errors
/// I/O errors reading `/dev/urandom`.
pub fn os_random_seed() -> std::io::Result<[u8; 32]> {
    let mut buf = [0u8; 64];
    std::io::Read::read_exact(&mut File::open("/dev/urandom")?, &mut buf)?;
    Ok(Sha256::digest(buf).into())
}

#[cfg(test)]
mod tests {
    use blockdb_verifier::{Hash, TreeSize, TrustPolicy};

    use super::*;

    fn seed() -> [u8; 32] {
        Sha256::digest(b"node key test").into()
    }

    #[test]
    fn created_once_with_mode_600_then_loaded_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.key");
        let created = NodeKey::load_or_create(&path, "blockdb.local/n1", seed).expect("create");
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = NodeKey::load_or_create(&path, "blockdb.local/n1", || panic!("no new seed"))
            .expect("load");
        assert_eq!(loaded.verifier_key(), created.verifier_key());

        let checkpoint = Checkpoint {
            origin: "blockdb.local/c1/shard/0".into(),
            size: TreeSize(3),
            root: Hash([7; 32]),
            extensions: vec![],
        };
        let policy = TrustPolicy::new(vec![created.verifier_key().clone()], 1).expect("policy");
        policy.verify(&loaded.sign(&checkpoint)).expect("the loaded key's signature verifies");
    }

    #[test]
    fn bad_key_files_are_refused_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.key");
        NodeKey::load_or_create(&path, "n1", seed).expect("create");
        let err = NodeKey::load_or_create(&path, "n2", seed).expect_err("other name");
        assert!(err.to_string().contains("named \"n1\""), "{err}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = NodeKey::load_or_create(&path, "n1", seed).expect_err("too open");
        assert!(matches!(err, NodeKeyError::TooOpen { mode: 0o644, .. }), "{err}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        fs::write(&path, "not a key\n").expect("write");
        let err = NodeKey::load_or_create(&path, "n1", seed).expect_err("malformed");
        assert!(matches!(err, NodeKeyError::Malformed { .. }), "{err}");
        assert_eq!(fs::read_to_string(&path).expect("read"), "not a key\n", "nothing written");
    }

    #[test]
    fn os_seeds_differ() {
        assert_ne!(os_random_seed().expect("urandom"), os_random_seed().expect("urandom"));
    }
}
