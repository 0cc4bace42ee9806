//! BlockDB's LSM storage engine: the durable home of a node's state (the Raft log and the ledger's
//! state machine both sit on it).
//!
//! ```text
//!  write(batch) ──► group commit ──► WAL segment (append; fsyncs shared by the writers waiting)
//!                        │
//!                        ▼
//!                    memtable ──(full: frozen)──► flush ──► level-0 table
//!                                                             │
//!  get / scan / snapshot ◄── memtables + tables ◄── compaction (levels 1..6)
//!                                                             │
//!                                        MANIFEST (live tables, rewritten atomically)
//! ```
//!
//! # Files of a store
//!
//! | file            | what                                                       | module       |
//! |-----------------|------------------------------------------------------------|--------------|
//! | `BLOCKDB-STORE` | marks the directory as a store, with its format version    | `manifest`   |
//! | `LOCK`          | held (`flock`) by the one process that has the store open  | `engine`     |
//! | `MANIFEST`      | the live tables by level, the log's start, counters        | `manifest`   |
//! | `NNNNNN.wal`    | write-ahead log segments                                   | `wal`        |
//! | `NNNNNN.sst`    | sorted tables                                              | [`sstable`]  |
//!
//! # Promises
//!
//! - A write returns only after its batch is in the log and fsynced (unless the caller asked for
//!   `sync = false`). After a crash every acknowledged batch is present, and every batch is
//!   present whole or not at all. (A batch is visible to reads from when it is in the log, which
//!   may be a moment before its fsync ends.)
//! - Reads see a consistent state: a get or a scan reads at one sequence number and never sees
//!   part of a batch; a [`Snapshot`] keeps reading the state it was taken at.
//! - Damaged files are reported (file and offset), never read as data and never skipped; a torn
//!   tail of the log (an interrupted, unacknowledged write) is cut at recovery.
//! - A failed log write or fsync, or a failed flush or compaction, stops writes until the store is
//!   reopened; reads go on.
//!
//! # Crash points
//!
//! Every step of a flush, a compaction and a manifest change is marked in the code with a
//! `Crash point:` comment saying what recovery does if the process dies there. The rule that makes
//! them all safe: a file becomes part of the store only when a manifest naming it is durable, and
//! files no manifest names are deleted at open.

mod background;
pub mod batch;
pub mod cache;
mod compaction;
mod engine;
pub mod error;
pub mod iter;
pub mod key;
mod manifest;
mod memtable;
mod merge;
mod options;
mod recovery;
pub mod sstable;
mod sync;
mod version;
mod wal;
mod write;

pub use batch::WriteBatch;
pub use engine::{Engine, Snapshot, Stats};
pub use error::{Result, StorageError};
pub use key::{SeqNo, ValueKind};
pub use merge::ScanIter;
pub use options::Options;
