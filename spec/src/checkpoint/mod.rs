//! Model of client checkpoint tracking and fork detection (DESIGN.md, "Client verification").
//!
//! # Actors and state
//!
//! - **The log**, honest or malicious ([`LogBehaviour`]). It has no state in the model: it may
//!   answer any request with any checkpoint it has signed, at any time, which covers a lagging
//!   replica (an older checkpoint) as well as an attacker. The honest log has one history
//!   (branch A); the malicious one also signs a fork (branch B, which shares A's first `fork_at`
//!   leaves), and may send a consistency proof made in either branch's tree, or none. Beside them
//!   are an impostor's checkpoint (signed by a key the clients do not trust) and a checkpoint of
//!   another shard signed by the log's own key. All of them are real: see [`fixture`].
//! - **Clients** (two by default). Each keeps the checkpoint it trusts for the origin, as the
//!   client crate does on disk.
//!
//! # Actions
//!
//! - [`Serve`](CheckpointAction::Serve): the log answers a client's read with a checkpoint and,
//!   if the client trusts an older one, a consistency proof in the same response. The client runs
//!   [`tracker::verify_signed`] (signatures and origin) and [`tracker::advance`]
//!   ([`blockdb_verifier::verify_extends`]) and keeps the new checkpoint only if both pass.
//! - [`Gossip`](CheckpointAction::Gossip): a client shows its trusted checkpoint to another,
//!   which asks the log for a consistency proof between the two sizes and runs
//!   [`tracker::compare`]: consistent (it may take the newer), a fork (evidence), or unproven
//!   (the log gave no usable proof).
//!
//! Signatures are checked by the real [`blockdb_verifier::TrustPolicy::verify`] once per signed
//! checkpoint when the model is built ([`fixture::Fixture::verified`]): it is a pure function of
//! its input, and an Ed25519 verification in every transition would dominate the time of the
//! check. Consistency (hashing the proofs) runs in every transition.
//!
//! # Properties
//!
//! The truth about two checkpoints comes from the leaves ([`fixture::Fixture::consistent`]),
//! never from the code under test.
//!
//! - `always` **a client never accepts two inconsistent checkpoints for one origin**: all the
//!   checkpoints a client ever trusted are of one history.
//! - `always` **a client only accepts its origin's checkpoints, signed under its policy**.
//! - `always` **rollback is detected**: a checkpoint older than the trusted one is refused as
//!   stale, and the trusted size never decreases.
//! - `always` **a fork shown to two clients is detected once they compare**: when two clients
//!   compare checkpoints of different histories, the outcome is never "consistent", and whenever
//!   the log answers the proof request (or the sizes are equal) it is a fork. A log that refuses
//!   to answer leaves the comparison unproven: no fork is proven, none is accepted.
//! - `always` **no false alarm: an honest log is never reported**: a client raises evidence
//!   against the log ([`tracker::TrackError::is_evidence`]) only for a fork or for a proof that
//!   the log made in another tree than the checkpoint's. (The first version of the tracker
//!   called every failed proof a fork; the model showed a consistent pair with a forged proof,
//!   which is the log lying, not forking, and the tracker now says so.)
//! - `sometimes` (malicious log): a fork is shown to two clients (each trusts a different
//!   branch); a fork is detected by comparing; a forged consistency proof is refused; a rollback
//!   is refused; a client advances with a consistency proof; an impostor's checkpoint and another
//!   origin's checkpoint are refused. (Honest log: a rollback is refused; a client advances with
//!   a proof; two clients compare and agree.)
//!
//! # Bounds
//!
//! [`CheckpointConfig::ci_malicious`] and [`CheckpointConfig::ci_honest`]: 3 clients, trees of up
//! to 5 leaves, the fork after 2 (so the malicious log signs checkpoints of sizes 3, 4 and 5 on
//! both branches). The model is finite because a client's trusted size only grows and the
//! history is a few bits; no depth bound is needed. [`CheckpointConfig::explore`] has 2 clients
//! and 4 leaves.
//!
//! # Broken variants ([`ClientBug`])
//!
//! - [`ClientBug::SkipConsistencyCheck`]: a client takes any newer signed checkpoint without a
//!   proof: it ends up trusting both branches.
//! - [`ClientBug::NoRollbackCheck`]: a client takes an older checkpoint: rollback.
//! - [`ClientBug::SkipSignatureCheck`]: a client takes the impostor's checkpoint.
//! - [`ClientBug::TrustPeerWithoutProof`]: gossip takes the peer's checkpoint when the log gives
//!   no proof: the fork goes undetected.
//!
//! # Exploring
//!
//! `cargo run -p blockdb-spec -- explore checkpoint` (or `checkpoint-honest`; add
//! `--bug skip-consistency-check` to see a counterexample).

pub mod fixture;
mod model;
mod state;
pub mod tracker;

pub use model::CheckpointModel;
pub use state::{Accepted, CheckpointAction, CheckpointState, ClientState, Event, Ghost};

/// What the log does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogBehaviour {
    /// One history; checkpoints of any size up to the latest (a lagging replica serves older
    /// ones); honest proofs.
    Honest,
    /// Two histories, both signed; any checkpoint to anyone, proofs from either tree, or none.
    Malicious,
}

/// A deliberate bug in the client, to show that the checker finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientBug {
    /// Takes any signed checkpoint that is not older, with no consistency check.
    SkipConsistencyCheck,
    /// Takes a signed, consistent checkpoint even when it is older than the trusted one.
    NoRollbackCheck,
    /// Takes a checkpoint of the right origin whatever key signed it.
    SkipSignatureCheck,
    /// When comparing with a peer and the log gives no proof, takes the peer's checkpoint.
    TrustPeerWithoutProof,
}

/// The bounds and variant of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// What the log does.
    pub log: LogBehaviour,
    /// Number of clients (2 or more for gossip).
    pub clients: u8,
    /// Largest tree size.
    pub size_max: u8,
    /// Leaves both branches share.
    pub fork_at: u8,
    /// A deliberate bug, or `None` for the client as written.
    pub bug: Option<ClientBug>,
}

impl CheckpointConfig {
    /// The malicious log at the bounds checked in `cargo test`.
    pub fn ci_malicious() -> CheckpointConfig {
        CheckpointConfig {
            log: LogBehaviour::Malicious,
            clients: 3,
            size_max: 5,
            fork_at: 2,
            bug: None,
        }
    }

    /// The honest log at the bounds checked in `cargo test`.
    pub fn ci_honest() -> CheckpointConfig {
        CheckpointConfig { log: LogBehaviour::Honest, ..CheckpointConfig::ci_malicious() }
    }

    /// Bounds for the explorer: two clients and trees of up to 4 leaves, which keeps the list
    /// of actions at each state short enough to read.
    pub fn explore() -> CheckpointConfig {
        CheckpointConfig { clients: 2, size_max: 4, ..CheckpointConfig::ci_malicious() }
    }
}
