//! BlockDB's verifier: the single definition of the hashes and wire formats that the server, the
//! client and offline auditors share, and the code that checks them.
//!
//! Everything here is pure: no I/O, no async, no clock. Every decoder of outside bytes returns an
//! error on bad input and never panics; every verification function states its preconditions and
//! says exactly what failed.
//!
//! ```text
//!  hash ──► frontier ──► proof ─────────────┐
//!   │                                       ▼
//!   └──► leaf ──────────────────────────► bundle  (verify_bundle)
//!  note ──► checkpoint ──► policy ──────────┘
//!
//!  hash, frontier, proof, checkpoint ──► block  (the hash chain of blocks over a log)
//!  block, policy ──► block_range                 (verify_block_range: a blocks response)
//!  tiles                                         (tlog-tiles paths and entry bundles)
//!  leaf, frontier, policy ──► export             (audit_export: a whole shard log, offline)
//!  bundle ──► txn                                (verify_receipt: a transaction's receipt)
//! ```
//!
//! - [`hash`]: RFC 6962 / RFC 9162 leaf and node hashing, and the [`Hash`](struct@Hash) type.
//! - [`frontier`]: the right edge of a Merkle tree, to compute roots incrementally.
//! - [`proof`]: inclusion and consistency proof verification (RFC 9162 §2.1.3.2, §2.1.4.2).
//! - [`note`]: C2SP signed-note with Ed25519 signatures and verifier keys.
//! - [`checkpoint`]: C2SP tlog-checkpoint on top of signed-note.
//! - [`policy`]: the trust policy "k of these verifier keys".
//! - [`leaf`]: the byte-exact leaf format of a committed record.
//! - [`bundle`]: the proof bundle a read returns, its JSON and binary forms, and
//!   [`verify_bundle`].
//! - [`chain`]: a chain of checkpoints linked by consistency proofs, for auditors.
//! - [`block`]: the hash-chained blocks that are a view over a shard's log, their encoding, and
//!   their verification against each other, the log's leaves and a checkpoint.
//! - [`block_range`]: the blocks response (a range of blocks, each proven against a signed
//!   checkpoint) and [`verify_block_range`].
//! - [`tiles`]: C2SP tlog-tiles paths, which tiles a tree has, and entry bundles.
//! - [`export`]: a shard's whole log in one file (`blockdb-export/v1`), and [`audit_export`],
//!   which re-derives its roots and checks them against its signed checkpoints.
//! - [`txn`]: multi-shard transactions as the ledger records them: the reserved system keys, the
//!   decision record at a transaction's decision key, the receipt a committed transaction
//!   returns, and [`verify_receipt`].

#![deny(missing_docs)]

pub mod block;
pub mod block_range;
pub mod bundle;
pub mod chain;
pub mod checkpoint;
mod codec;
pub mod export;
pub mod frontier;
pub mod hash;
mod ids;
pub mod leaf;
pub mod note;
pub mod policy;
pub mod proof;
mod serde_hex;
pub mod tiles;
pub mod txn;

pub use block::{Block, BlockError};
pub use block_range::{
    BlockRange, BlockRangeError, ProvenBlock, VerifiedBlocks, verify_block_range,
};
pub use bundle::{
    BundleError, ProofBundle, Record, VerifiedRecord, verify_bundle, verify_bundle_with,
};
pub use chain::{ChainError, CheckpointChain, ConsistencyStatus, ExtendError, verify_extends};
pub use checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
pub use codec::DecodeError;
pub use export::{AuditReport, ExportError, audit_export};
pub use frontier::Frontier;
pub use hash::{Hash, empty_root, leaf_hash, node_hash, root_of_leaf_hashes, root_of_leaves};
pub use ids::{LogIndex, ShardId, TreeSize, TxnId};
pub use leaf::{Leaf, LeafError};
pub use note::{Note, NoteError, NoteSignature, NoteSigner, VerifierKey};
pub use policy::{PolicyError, TrustPolicy, VerifiedCheckpoint};
pub use proof::{ConsistencyProof, ProofError, verify_consistency, verify_inclusion};
pub use tiles::{EntryBundleError, TileKind, TilePath, TilePathError, tile_width};
pub use txn::{
    DecisionError, DecisionRecord, Participant, Receipt, ReceiptError, ReceiptPart, TxnDecision,
    VerifiedReceipt, VerifiedWrite, decision_key, is_reserved_key, parse_decision_key,
    verify_receipt,
};
