//! C2SP tlog-checkpoint (v1.0.0): the signed statement "the log `origin` has `size` leaves with
//! root `root`", carried as the text of a signed note.
//!
//! ```text
//! <origin>\n
//! <tree size, decimal, no leading zeros>\n
//! <base64 of the 32-byte root>\n
//! [<extension line>\n ...]
//! ```
//!
//! BlockDB's origins are `<cluster origin>/shard/<n>`, one per shard; see [`shard_origin`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::hash::Hash;
use crate::ids::{ShardId, TreeSize};
use crate::note::{Note, NoteError, NoteSigner};

/// Most extension lines accepted after the root.
pub const EXTENSIONS_MAX: usize = 16;

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note around it is malformed or its signatures fail.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The text has fewer than three lines.
    #[error("checkpoint text has {0} lines; it needs origin, size and root")]
    TooFewLines(usize),
    /// The origin line is empty.
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    /// The size line is not a canonical decimal u64.
    #[error("checkpoint size {0:?} is not a decimal number without leading zeros")]
    BadSize(String),
    /// The root line is not base64 of 32 bytes.
    #[error("checkpoint root {0:?} is not the base64 of 32 bytes")]
    BadRoot(String),
    /// An extension line is empty, or there are too many.
    #[error("checkpoint extension lines: {0}")]
    BadExtensions(&'static str),
}

/// The contents of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The log's identity, e.g. `blockdb.local/3f2a.../shard/0`.
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: TreeSize,
    /// RFC 6962 root of the tree.
    pub root: Hash,
    /// Extension lines after the root, without their newlines.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses a checkpoint's note text (with its final newline).
    ///
    /// # Errors
    /// A [`CheckpointError`] naming the bad line. Never panics.
    pub fn from_text(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text.strip_suffix('\n').ok_or(CheckpointError::TooFewLines(0))?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines(lines.len()));
        };
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let canonical = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (*size == "0" || !size.starts_with('0'));
        let size_value = size
            .parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| CheckpointError::BadSize((*size).to_owned()))?;
        let root_bytes =
            STANDARD.decode(root).map_err(|_| CheckpointError::BadRoot((*root).to_owned()))?;
        let root_hash = Hash::from_slice(&root_bytes)
            .map_err(|_| CheckpointError::BadRoot((*root).to_owned()))?;
        if extensions.len() > EXTENSIONS_MAX {
            return Err(CheckpointError::BadExtensions("too many"));
        }
        if extensions.iter().any(|l| l.is_empty()) {
            return Err(CheckpointError::BadExtensions("an extension line is empty"));
        }
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size: TreeSize(size_value),
            root: root_hash,
            extensions: extensions.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// The note text of this checkpoint.
    pub fn to_text(&self) -> String {
        let mut out =
            format!("{}\n{}\n{}\n", self.origin, self.size.0, STANDARD.encode(self.root.0));
        for ext in &self.extensions {
            out.push_str(ext);
            out.push('\n');
        }
        out
    }

    /// Signs this checkpoint with each signer.
    ///
    /// # Errors
    /// [`CheckpointError::Note`] when the text is not a valid note text (for example an origin
    /// with a control character) or there are no signers.
    pub fn sign(&self, signers: &[&NoteSigner]) -> Result<SignedCheckpoint, CheckpointError> {
        let text = self.to_text();
        // Parse our own text back, so that we never sign what a verifier would refuse.
        let parsed = Checkpoint::from_text(&text)?;
        assert_eq!(&parsed, self, "a checkpoint's text parses back to the same checkpoint");
        let note = Note::sign(&text, signers)?;
        Ok(SignedCheckpoint { checkpoint: parsed, note })
    }

    /// The shard of a BlockDB origin `<cluster origin>/shard/<n>`, if the origin has that form.
    pub fn shard(&self) -> Option<ShardId> {
        origin_shard(&self.origin)
    }
}

/// The shard of a BlockDB origin `<cluster origin>/shard/<n>` ([`shard_origin`]'s inverse), if the
/// origin has that form with `n` a canonical decimal `u32`.
pub fn origin_shard(origin: &str) -> Option<ShardId> {
    let (_, n) = origin.rsplit_once("/shard/")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0'))
    {
        return None;
    }
    n.parse().ok().map(ShardId)
}

/// The origin of shard `shard` of the cluster whose origin is `cluster_origin`.
pub fn shard_origin(cluster_origin: &str, shard: ShardId) -> String {
    format!("{cluster_origin}/shard/{}", shard.0)
}

/// A checkpoint with the note that carries it. Parsing checks the form, not the signatures:
/// see [`crate::TrustPolicy::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    note: Note,
}

impl SignedCheckpoint {
    /// Parses a signed checkpoint note.
    ///
    /// # Errors
    /// [`CheckpointError`] for a malformed note or checkpoint text. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<SignedCheckpoint, CheckpointError> {
        let note = Note::parse(bytes)?;
        let checkpoint = Checkpoint::from_text(note.text())?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// The checkpoint, not yet verified.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The note that carries it.
    pub fn note(&self) -> &Note {
        &self.note
    }

    /// The note's bytes.
    pub fn to_text(&self) -> String {
        self.note.to_text()
    }
}
