//! Model of client checkpoint tracking and fork detection (DESIGN.md, "Client verification").
//!
//! The model runs the client's own code: each client's state is a
//! [`blockdb_client::TrustedState`], and every transition calls [`blockdb_client::trust`]
//! ([`TrustedState::observe`](blockdb_client::TrustedState::observe),
//! [`TrustedState::prove`](blockdb_client::TrustedState::prove),
//! [`TrustedState::compare`](blockdb_client::TrustedState::compare)) as `Client::observe` does,
//! so a bug in that code is a bug in the model. Only the I/O around it (fetching a proof,
//! saving the state) is the model's.
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
//! - **Clients** (three at CI bounds). Each keeps a [`blockdb_client::TrustedState`].
//!
//! # Actions
//!
//! - [`Serve`](CheckpointAction::Serve): the log answers a client's linearizable read with a
//!   checkpoint. The client does what `Client::observe` does: the trust policy
//!   ([`blockdb_verifier::TrustPolicy::verify`]), the origin, then
//!   `TrustedState::observe(checkpoint, None, false)`; on `NeedsProof { from, to }` it asks the
//!   log for a consistency proof, which the log makes in either branch's tree (a real proof or
//!   a forged one) or refuses, and gives it to `TrustedState::prove`.
//! - [`Gossip`](CheckpointAction::Gossip): a client shows its trusted checkpoint to another,
//!   which checks its signatures and origin and runs `TrustedState::compare`; on `NeedsProof` it
//!   asks the log for the proof between the two sizes and compares again: consistent (it then
//!   takes a newer checkpoint as a read's, through `observe` and `prove`), a fork (evidence),
//!   or unproven (the log gave no proof).
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
//!   against the log ([`blockdb_client::VerifyError::is_fork`]) only for a fork or for a proof
//!   that the log made in another tree than the checkpoint's.
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
//! Each is the model misusing the client API, not a change to it:
//!
//! - [`ClientBug::SkipConsistencyCheck`]: a client sets any signed checkpoint that is not older
//!   with `TrustedState::insert` instead of `observe`: it ends up trusting both branches.
//! - [`ClientBug::NoRollbackCheck`]: a client passes `allow_older = true` on a linearizable
//!   read, so an older checkpoint is accepted as the read's answer (once proven a prefix):
//!   rollback.
//! - [`ClientBug::SkipSignatureCheck`]: a client does not run the trust policy (it still checks
//!   the origin): it takes the impostor's checkpoint.
//! - [`ClientBug::TrustPeerWithoutProof`]: when `compare` needs a proof and the log gives none,
//!   the client sets the peer's larger checkpoint with `TrustedState::insert`: the fork goes
//!   undetected.
//!
//! # Exploring
//!
//! `cargo run -p blockdb-spec -- explore checkpoint` (or `checkpoint-honest`; add
//! `--bug skip-consistency-check` to see a counterexample).

pub mod fixture;
mod model;
mod state;

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
    /// Takes any signed checkpoint that is not older with `TrustedState::insert`, with no
    /// consistency check.
    SkipConsistencyCheck,
    /// Passes `allow_older = true` to `TrustedState::observe` on a linearizable read: an older
    /// checkpoint, proven a prefix of the trusted one, is accepted as the answer.
    NoRollbackCheck,
    /// Takes a checkpoint of the right origin whatever key signed it.
    SkipSignatureCheck,
    /// When comparing with a peer needs a proof and the log gives none, takes the peer's
    /// checkpoint with `TrustedState::insert`.
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
