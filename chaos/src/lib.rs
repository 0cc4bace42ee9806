//! BlockDB's chaos harness: it runs a real cluster under faults, records what every client saw
//! as a [`history::History`], and checks the history.
//!
//! | module | what |
//! |---|---|
//! | [`mod@bench`] | BlockDB against etcd: throughput and latency per workload and concurrency, side by side |
//! | [`etcd`] | etcd processes on loopback, for the benchmarks |
//! | [`scale`] | one node's proof latency and size, memory, disk and recovery as its log grows |
//! | [`cluster`] | N real `blockdb` processes on loopback: start, kill, restart, pause, resume |
//! | [`proxy`] | fault-injecting TCP proxies between the nodes: cut, delay or stall single links |
//! | [`nemesis`] | partition shapes (isolate, halves, bridge, majorities-ring) over a [`nemesis::Network`] |
//! | [`workload`] | what client processes do (register, set) and how outcomes become history events |
//! | [`run`] | one run: cluster, workload, nemesis, final reads, checkers, the run's folder |
//! | [`plot`] | SVG plots of a run: latency and throughput over time, with the faults shaded |
//! | [`set_check`] | the `set` workload's checker: lost, unexpected and recovered elements of the final read |
//! | [`timeline`] | the nemesis timeline: each fault's start and end on the history's clock |
//! | [`history`] | the history format (JSON lines of invoke / ok / fail / info events) |
//! | [`model`] | sequential specifications: Jepsen's register, and BlockDB's versioned keys |
//! | [`linearizability`] | the Wing–Gong–Lowe linearizability checker, one key at a time |
//! | [`jepsen`] | a reader for Jepsen's etcd register logs, the checker's third-party test data |
//!
//! ```text
//!   run (faults + workload) ──► history.jsonl ──► check ──► per-key verdicts
//!   Jepsen etcd log ──► jepsen::parse_log ──┘
//! ```
//!
//! `blockdb-chaos check HISTORY.jsonl` re-checks a saved history; see the binary's `--help`.

#![deny(missing_docs)]

pub mod bench;
pub mod cluster;
pub mod etcd;
pub mod history;
pub mod jepsen;
pub mod linearizability;
pub mod model;
pub mod nemesis;
pub mod plot;
pub mod proxy;
pub mod run;
pub mod scale;
pub mod set_check;
pub mod timeline;
pub mod txn_check;
pub mod txn_workload;
pub mod workload;
