//! Checkers for transactional histories: Elle-style list-append anomalies, and the bank
//! invariant. Both are pure functions over recorded histories; they do no I/O and never panic on
//! what the history holds.
//!
//! # List-append
//!
//! BlockDB keys have versioned histories: each append to a key creates version n + 1 (versions
//! start at 1; 0 means "no version yet"), and a version's element never changes. A transaction
//! ([`TxnRecord`]) is a list of micro-operations ([`MicroOp`]): reads, which see a key's latest
//! version and its element, and appends. At the end of the run the harness reads every key's
//! whole version history: the [`FinalState`]. [`check_list_append`] then looks for
//!
//! | kind | what it means |
//! |---|---|
//! | `internal` | an ok txn disagrees with itself: a read after its own append does not see that append, two reads of a key without an append between differ, or an append's version does not follow what the txn saw just before |
//! | `incompatible-read` | a read's version and element are not in the final state (element differs, or the version is past its end) |
//! | `lost-append` | an ok append (or one of a committed info txn) is missing from the final state |
//! | `wrong-version` | an ok append's reported version does not hold its element in the final state |
//! | `duplicate-element` | an element appended twice to a key, or present twice in its final history |
//! | `phantom-element` | an element in the final state that no txn appended |
//! | `aborted-write-visible` | a failed txn's append is in the final state |
//! | `malformed-read` | an ok txn's read without a version, or whose element does not fit its version |
//! | `G1a` | aborted read: an ok txn read an element appended by a failed txn |
//! | `G1b` | intermediate read: a txn appended to a key twice, and another read the first version |
//! | `G0`, `G1c`, `G-single`, `G2` | a cycle in the dependency graph (below) |
//! | `…-realtime` | the same, but the cycle needs a real-time edge |
//!
//! # The dependency graph
//!
//! Its nodes are the txns that committed: the ok ones, and the info ones whose appends are in the
//! final state (those contribute only their appends; their reads are unknown). Failed txns, and
//! info txns none of whose appends are visible, are left out. The edges, from the final state's
//! version order:
//!
//! ```text
//!   ww  writer of version v ──► writer of version v+1 of the same key
//!   wr  writer of version v ──► ok txn that read version v
//!   rw  ok txn that read version v ──► writer of version v+1   (version 0: ──► writer of 1)
//!   rt  ok txn that completed ──► txn invoked after that (a transitive reduction, see below)
//! ```
//!
//! A serializable execution orders the txns along every ww, wr and rw edge, so a cycle of them
//! is a violation; strict serializability also orders them along rt edges. Cycles are found as
//! strongly connected components (Tarjan's algorithm, iterative so that 100 000 txns do not
//! overflow the stack). In each component the checker looks for the weakest cycle, in Adya's
//! order: only ww edges (`G0`), then ww and wr (`G1c`), then exactly one rw (`G-single`), then
//! any (`G2`); each search is a breadth-first search, so the witness is short. The components are
//! searched first without rt edges, one anomaly each, reported under the plain name. Then the
//! components of the whole graph are searched for a cycle that no plain cycle explains: one
//! holding an edge between two different plain components (a plain cycle through both ends
//! would have put them in one component). Such a cycle needs an rt edge, and is reported with
//! the suffix `-realtime`, one per component of the whole graph; a run of rt edges in it is
//! shown as one (real time is transitive).
//!
//! Real-time edges are not all O(n²) pairs. Sweeping invokes and completions in time order, the
//! checker keeps a *frontier*: the ok txns that completed and are not yet implied by a later
//! one. An invoked txn gets an edge from every frontier txn; when an ok txn completes, it joins
//! the frontier and the txns it got edges from leave it, since they now reach later txns through
//! it. So T1 reaches T2 along rt edges exactly when T1 completed ok before T2 was invoked, and
//! the edges number O(n · f) for a frontier of at most f txns (about the number of clients).
//! Times are milliseconds; equal times are concurrent. An info txn, or one that never completed,
//! completes at +∞: it never precedes anything in real time.
//!
//! # Bank
//!
//! [`check_bank`] checks reads of every account of a bank whose transfers keep the total: each
//! read (and the final state) must hold exactly the configured accounts, none negative, summing
//! to the configured total.
//!
//! # Layout
//!
//! | file | what |
//! |---|---|
//! | `record.rs` | the history's types, serde-friendly for JSON lines |
//! | `report.rs` | anomalies and the list-append report |
//! | `list_append.rs` | the list-append checker: the per-txn checks and the graph's edges |
//! | `graph.rs` | the graph, real-time edges, Tarjan and the cycle searches; knows nothing of keys |
//! | `bank.rs` | the bank checker |

mod bank;
mod graph;
mod list_append;
mod record;
mod report;

pub use bank::{BadRead, BankConfig, BankProblem, BankRead, BankReport, check_bank};
pub use list_append::check_list_append;
pub use record::{FinalState, MicroOp, TxnOutcome, TxnRecord};
pub use report::{Anomaly, AnomalyKind, ListAppendReport};

/// The most examples a report keeps of each kind of problem; counts are never capped.
pub const EXAMPLES_MAX: usize = 20;
