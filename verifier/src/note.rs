//! C2SP signed-note (v1.0.0) with Ed25519 signatures.
//!
//! ```text
//! <text, one or more lines, each ending in "\n">
//! <empty line>
//! — <key name> <base64(key ID[4] ‖ signature)>
//! — ...
//! ```
//!
//! - The text is everything up to and including the newline before the **last** empty line.
//! - A key is named by `(name, key ID)`; key ID = `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[:4]`,
//!   big-endian, for Ed25519 (signature type `0x01`).
//! - A verifier key string is `<name>+<hex key ID>+base64(0x01 ‖ pubkey)`.
//! - Verification ignores signatures by unknown keys, rejects the note when a known key's
//!   signature fails, and rejects it when no known key signed.
//!
//! Limits: a note is at most [`NOTE_LEN_MAX`] bytes with at most [`SIGNATURES_MAX`] signature lines
//! (the spec asks verifiers to accept at least 16).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signature type byte of Ed25519 signed-note keys.
pub const SIG_TYPE_ED25519: u8 = 0x01;
/// Longest note accepted, in bytes.
pub const NOTE_LEN_MAX: usize = 64 * 1024;
/// Most signature lines accepted in one note.
pub const SIGNATURES_MAX: usize = 64;
/// The em dash (U+2014) and space that open a signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a note, a key string or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is longer than [`NOTE_LEN_MAX`].
    #[error("note is {len} bytes, more than the limit of {NOTE_LEN_MAX}")]
    TooLong {
        /// Length of the input.
        len: usize,
    },
    /// The note is not valid UTF-8.
    #[error("note is not valid UTF-8")]
    NotUtf8,
    /// The note holds a control character other than newline.
    #[error("note holds control character {byte:#04x} at byte {offset}")]
    ControlCharacter {
        /// The character.
        byte: u8,
        /// Its offset in the note.
        offset: usize,
    },
    /// There is no empty line between text and signatures, or no text before it.
    #[error("note has no empty line separating text from signatures")]
    NoSeparator,
    /// The note has no signature line.
    #[error("note has no signature lines")]
    NoSignatures,
    /// More than [`SIGNATURES_MAX`] signature lines.
    #[error("note has more than {SIGNATURES_MAX} signature lines")]
    TooManySignatures,
    /// A signature line is not of the form `— name base64\n`.
    #[error("malformed signature line {line}: {reason}")]
    MalformedSignatureLine {
        /// 1-based number of the signature line.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key name is empty or holds a space or a `+`.
    #[error("invalid key name {0:?}: it must be non-empty with no spaces or '+'")]
    InvalidKeyName(String),
    /// A verifier key string is malformed.
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(&'static str),
    /// A signer key string is malformed.
    #[error("malformed signer key: {0}")]
    MalformedSignerKey(&'static str),
    /// A key string's key ID does not match its name and public key.
    #[error(
        "key ID {given:08x} of key {name:?} does not match its name and key (computed {computed:08x})"
    )]
    KeyIdMismatch {
        /// The key name.
        name: String,
        /// The key ID in the string.
        given: u32,
        /// The key ID computed from name and key.
        computed: u32,
    },
    /// A signature by a known key does not verify.
    #[error("signature by known key {name}+{key_id:08x} does not verify")]
    InvalidSignature {
        /// Name of the key.
        name: String,
        /// ID of the key.
        key_id: u32,
    },
    /// No signature by any known key.
    #[error("no signature by a known key")]
    NoKnownSignature,
    /// The text to sign is not a valid note text.
    #[error("invalid note text: {0}")]
    InvalidText(&'static str),
}

/// One signature line of a note.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Name of the key that signed.
    pub name: String,
    /// ID of the key that signed.
    pub key_id: u32,
    /// The signature bytes, after the key ID (64 bytes for Ed25519).
    pub signature: Vec<u8>,
}

impl fmt::Debug for NoteSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NoteSignature({}+{:08x}, {})",
            self.name,
            self.key_id,
            hex::encode(&self.signature)
        )
    }
}

impl NoteSignature {
    fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }
}

/// A signed note: its text and its signature lines, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note. Signatures are not checked here; see [`Note::verify`].
    ///
    /// # Errors
    /// A [`NoteError`] naming what is malformed. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > NOTE_LEN_MAX {
            return Err(NoteError::TooLong { len: bytes.len() });
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
        check_no_controls(s)?;
        let split = s.rfind("\n\n").ok_or(NoteError::NoSeparator)?;
        let (text, sigs) = (&s[..split + 1], &s[split + 2..]);
        if sigs.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        if !sigs.ends_with('\n') {
            return Err(NoteError::MalformedSignatureLine {
                line: sigs.split('\n').count(),
                reason: "does not end in a newline",
            });
        }
        let lines: Vec<&str> = sigs[..sigs.len() - 1].split('\n').collect();
        if lines.len() > SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures);
        }
        let signatures = lines
            .iter()
            .enumerate()
            .map(|(i, line)| parse_signature_line(i + 1, line))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Note { text: text.to_owned(), signatures })
    }

    /// Signs `text` with each signer, in order.
    ///
    /// # Errors
    /// [`NoteError::InvalidText`] when `text` is not a valid note text (empty, not ending in a
    /// newline, holding a control character or an empty line at its end), and
    /// [`NoteError::NoSignatures`] when there are no signers.
    pub fn sign(text: &str, signers: &[&NoteSigner]) -> Result<Note, NoteError> {
        check_text(text)?;
        if signers.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        if signers.len() > SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures);
        }
        let signatures = signers.iter().map(|s| s.sign(text)).collect();
        Ok(Note { text: text.to_owned(), signatures })
    }

    /// Adds a signature line (for example a cosignature) at the end.
    pub fn push_signature(&mut self, signature: NoteSignature) {
        self.signatures.push(signature);
    }

    /// The signed text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// The note's bytes: text, empty line, signature lines.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for sig in &self.signatures {
            out.push_str(&sig.to_line());
        }
        out
    }

    /// Checks the signatures against `known` keys and returns the keys whose signatures verified,
    /// each once, in the order of `known`.
    ///
    /// # Errors
    /// [`NoteError::InvalidSignature`] when a known key's signature fails (the whole note is
    /// rejected, as the spec recommends), and [`NoteError::NoKnownSignature`] when no known key
    /// signed. Signatures by unknown `(name, key ID)` pairs are ignored.
    pub fn verify<'k>(&self, known: &'k [VerifierKey]) -> Result<Vec<&'k VerifierKey>, NoteError> {
        let mut verified = vec![false; known.len()];
        for sig in &self.signatures {
            for (i, key) in known.iter().enumerate() {
                if key.name != sig.name || key.key_id != sig.key_id {
                    continue;
                }
                if !key.verifies(self.text.as_bytes(), &sig.signature) {
                    return Err(NoteError::InvalidSignature {
                        name: key.name.clone(),
                        key_id: key.key_id,
                    });
                }
                verified[i] = true;
            }
        }
        let keys: Vec<&VerifierKey> =
            known.iter().zip(&verified).filter(|(_, ok)| **ok).map(|(k, _)| k).collect();
        if keys.is_empty() {
            return Err(NoteError::NoKnownSignature);
        }
        Ok(keys)
    }
}

fn check_no_controls(s: &str) -> Result<(), NoteError> {
    match s.bytes().enumerate().find(|(_, b)| (*b < 0x20 && *b != b'\n') || *b == 0x7f) {
        Some((offset, byte)) => Err(NoteError::ControlCharacter { byte, offset }),
        None => Ok(()),
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::InvalidText("it must be non-empty and end in a newline"));
    }
    if text.ends_with("\n\n") || text == "\n" {
        return Err(NoteError::InvalidText("it must not end in an empty line"));
    }
    if text.len() > NOTE_LEN_MAX / 2 {
        return Err(NoteError::InvalidText("it is too long"));
    }
    check_no_controls(text).map_err(|_| NoteError::InvalidText("it holds a control character"))
}

fn parse_signature_line(line_no: usize, line: &str) -> Result<NoteSignature, NoteError> {
    let bad = |reason| NoteError::MalformedSignatureLine { line: line_no, reason };
    let rest =
        line.strip_prefix(SIG_PREFIX).ok_or(bad("does not start with an em dash and a space"))?;
    let (name, b64) = rest.split_once(' ').ok_or(bad("has no space between name and signature"))?;
    check_key_name(name)?;
    let raw = STANDARD.decode(b64).map_err(|_| bad("signature is not canonical base64"))?;
    if raw.len() < 5 {
        return Err(bad("signature is shorter than a key ID and one byte"));
    }
    let key_id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    Ok(NoteSignature { name: name.to_owned(), key_id, signature: raw[4..].to_vec() })
}

fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(NoteError::InvalidKeyName(name.to_owned()));
    }
    Ok(())
}

/// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[:4]` as a big-endian u32.
pub fn ed25519_key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', SIG_TYPE_ED25519]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A public key that signed notes are checked against: `name+keyid+base64(0x01 ‖ pubkey)`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// The verifier key for an Ed25519 public key under `name`.
    ///
    /// # Errors
    /// [`NoteError::InvalidKeyName`].
    pub fn new(name: &str, key: VerifyingKey) -> Result<VerifierKey, NoteError> {
        check_key_name(name)?;
        Ok(VerifierKey { name: name.to_owned(), key_id: ed25519_key_id(name, key.as_bytes()), key })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }

    fn verifies(&self, msg: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(msg, &sig).is_ok()
    }
}

impl FromStr for VerifierKey {
    type Err = NoteError;

    /// Parses `name+keyid+base64(0x01 ‖ pubkey)`, checking that the key ID matches.
    fn from_str(s: &str) -> Result<VerifierKey, NoteError> {
        let bad = NoteError::MalformedVerifierKey;
        let s = s.trim();
        let (name, rest) = s.split_once('+').ok_or(bad("expected name+keyid+key"))?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or(bad("expected name+keyid+key"))?;
        check_key_name(name)?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("key ID is not 8 hex digits"));
        }
        let given = u32::from_str_radix(id_hex, 16).map_err(|_| bad("key ID is not hex"))?;
        let raw = STANDARD.decode(key_b64).map_err(|_| bad("key is not canonical base64"))?;
        let [SIG_TYPE_ED25519, key @ ..] = raw.as_slice() else {
            return Err(bad("key type is not Ed25519 (0x01)"));
        };
        let key: &[u8; 32] = key.try_into().map_err(|_| bad("Ed25519 key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(key).map_err(|_| bad("not an Ed25519 point"))?;
        let vk = VerifierKey::new(name, key)?;
        if vk.key_id != given {
            return Err(NoteError::KeyIdMismatch {
                name: name.to_owned(),
                given,
                computed: vk.key_id,
            });
        }
        Ok(vk)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 33];
        raw[0] = SIG_TYPE_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.key_id, STANDARD.encode(raw))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

/// A named Ed25519 signing key. Its string form is
/// `PRIVATE+KEY+name+keyid+base64(0x01 ‖ seed)`, the form other signed-note tools use.
pub struct NoteSigner {
    verifier: VerifierKey,
    key: SigningKey,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteSigner({}, secret elided)", self.verifier)
    }
}

impl NoteSigner {
    /// A signer from an RFC 8032 private key seed.
    ///
    /// # Errors
    /// [`NoteError::InvalidKeyName`].
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<NoteSigner, NoteError> {
        let key = SigningKey::from_bytes(seed);
        let verifier = VerifierKey::new(name, key.verifying_key())?;
        Ok(NoteSigner { verifier, key })
    }

    /// The verifier key that checks this signer's signatures.
    pub fn verifier_key(&self) -> &VerifierKey {
        &self.verifier
    }

    /// Signs `text` (which must be a valid note text) and returns the signature line.
    pub fn sign(&self, text: &str) -> NoteSignature {
        NoteSignature {
            name: self.verifier.name.clone(),
            key_id: self.verifier.key_id,
            signature: self.key.sign(text.as_bytes()).to_bytes().to_vec(),
        }
    }

    /// The secret key string, `PRIVATE+KEY+name+keyid+base64(0x01 ‖ seed)`. Keep it secret.
    pub fn to_secret_string(&self) -> String {
        let mut raw = [0u8; 33];
        raw[0] = SIG_TYPE_ED25519;
        raw[1..].copy_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.verifier.name,
            self.verifier.key_id,
            STANDARD.encode(raw)
        )
    }

    /// Parses a secret key string made by [`NoteSigner::to_secret_string`].
    ///
    /// # Errors
    /// [`NoteError::MalformedSignerKey`] or [`NoteError::KeyIdMismatch`]. The message never holds
    /// secret material.
    pub fn from_secret_string(s: &str) -> Result<NoteSigner, NoteError> {
        let bad = NoteError::MalformedSignerKey;
        let rest = s.trim().strip_prefix("PRIVATE+KEY+").ok_or(bad("missing PRIVATE+KEY+"))?;
        let (name, rest) = rest.split_once('+').ok_or(bad("expected name+keyid+key"))?;
        let (id_hex, seed_b64) = rest.split_once('+').ok_or(bad("expected name+keyid+key"))?;
        if id_hex.len() != 8 {
            return Err(bad("key ID is not 8 hex digits"));
        }
        let given = u32::from_str_radix(id_hex, 16).map_err(|_| bad("key ID is not hex"))?;
        let raw = STANDARD.decode(seed_b64).map_err(|_| bad("key is not canonical base64"))?;
        let [SIG_TYPE_ED25519, seed @ ..] = raw.as_slice() else {
            return Err(bad("key type is not Ed25519 (0x01)"));
        };
        let seed: &[u8; 32] = seed.try_into().map_err(|_| bad("Ed25519 seed is not 32 bytes"))?;
        let signer = NoteSigner::from_seed(name, seed)?;
        if signer.verifier.key_id != given {
            return Err(NoteError::KeyIdMismatch {
                name: name.to_owned(),
                given,
                computed: signer.verifier.key_id,
            });
        }
        Ok(signer)
    }
}
