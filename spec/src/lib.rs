//! BlockDB's own protocols as [stateright](https://www.stateright.rs) models, checked in
//! `cargo test` and explorable in a browser.
//!
//! openraft is tested by its authors; what BlockDB builds on top of it is ours to prove. Each
//! model here is finite (faults come from budgets), is checked exhaustively by a breadth-first
//! search at bounds that fit CI, and has three kinds of properties:
//!
//! - `always`: safety. The checker looks for a state that breaks it (a counterexample).
//! - `sometimes`: something the model must be able to do (a commit, a crash and recovery, a fork
//!   detected, …). A model that cannot reach them is vacuous, and the check fails.
//! - liveness, as an `always` property over the states where nothing more can happen: in a
//!   finite model without cycles every run ends in such a state, so "once the faults stop, X
//!   holds" is exact there (see [`check::find_cycle`] and [`check::is_quiescent`]).
//!
//! | model | what | shares code with |
//! |---|---|---|
//! | [`twopc`] | two-phase commit across shards, crashes of coordinator and participants, lost and reordered messages, recovery | [`twopc::protocol`] (the `blockdb-twopc` crate): the sans-IO transitions the server's `txn` module calls |
//! | [`checkpoint`] | clients tracking a log's checkpoints, an honest log and a malicious one that signs a fork, gossip | the client crate's own `blockdb_client::trust::TrustedState` (`observe`, `prove`, `compare`) and the verifier's `TrustPolicy::verify`, on real signed checkpoints and proofs |
//! | [`durability`] | Raft log writes, apply, memtable flush, applied index, crash at any step, replay | a transcription of the shard's apply rules ([`durability::shard`]) |
//!
//! Every model also has deliberately broken variants, each kept as a test that expects the
//! checker to find the counterexample for a named property: a model that catches no bug proves
//! nothing.
//!
//! # Running
//!
//! ```text
//! cargo test -p blockdb-spec -- --nocapture      # every check, with its state count
//! cargo run -p blockdb-spec -- explore twopc     # the explorer at http://localhost:3000/
//! cargo run -p blockdb-spec -- explore durability --bug replay-skips
//! cargo run -p blockdb-spec -- check all         # the CI checks, from the shell
//! cargo run -p blockdb-spec -- list              # models and broken variants
//! ```
//!
//! In the explorer, a state lists the actions enabled in it; clicking one follows it. The
//! properties' status (and a path to each discovery) is at the top.

#![deny(missing_docs)]

pub mod catalog;
pub mod check;
pub mod checkpoint;
pub mod durability;
pub mod twopc;
