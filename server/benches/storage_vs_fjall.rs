//! BlockDB's storage engine against fjall, in one run, with the same durability and memory.
//!
//! # What is measured
//!
//! For each key count (10^6 by default, 10^7 for the big run) and each repeat, each engine gets a
//! fresh store and runs these phases in this order:
//!
//! 1. **Load**: the N keys in durable batches of 1000 from one thread (keys/s). Then the store is
//!    settled (ours: `flush` + `wait_for_compactions`; fjall: memtable rotated and flushed, then
//!    no compaction running for a second, as fjall has no "compactions done" call) and measured:
//!    - write amplification = bytes the process wrote to storage during load and settle
//!      (`/proc/self/io`: `write_bytes - cancelled_write_bytes`) / (N × 116); the same method
//!      for both engines. Ours is also shown from `Engine::stats()`
//!      (`(wal_bytes + flush_bytes + compaction_bytes) / user_bytes`);
//!    - space amplification = the bytes of all files in the store's directory (logs included)
//!      / (N × 116), twice: as allocated on disk (what `du` counts) and as file sizes. They
//!      differ where files are sparse: fjall sizes each new journal to 64 MiB without writing it.
//! 2. **Point reads** (run before the writes, so they read the settled store measured above):
//!    uniform over the loaded keys (hits) and over keys never written (misses), from 1 and 8
//!    threads (ops/s). Every hit's value and every miss is checked.
//! 3. **Range scans**: seek to a random loaded key and read the next 100 entries, from 1 and 8
//!    threads (scans/s). Order, first key and value length are checked.
//! 4. **Durable writes**: 1, 8 and 64 threads, each writing batches of 10 new keys (beyond N) for
//!    the phase's duration (batches/s and keys/s).
//! 5. **Mixed 50/50**: 8 threads; each operation is a read that hits or a durable one-key write of
//!    a new key, with probability 1/2 each (ops/s).
//!
//! Keys are 16 bytes: the big-endian image of a bijective mix of the key's index (so keys are
//! spread over the key space and distinct), then a second mix of that. Values are 100 bytes
//! derived from the index (pseudo-random, so compression gains nothing). Randomness is seeded;
//! both engines of one repeat see the same sequence of keys.
//!
//! # Fairness
//!
//! - Durability: every acknowledged batch is fdatasync'ed. Ours: `Engine::write` (concurrent
//!   writers share one fsync: group commit). Fjall: each batch committed with
//!   `PersistMode::SyncData` (one fdatasync per batch, under its journal lock).
//! - Memory: a 256 MiB block cache and 64 MiB memtables for both.
//! - Only one store is open at a time, so background threads of one engine do not take CPU or
//!   disk from the other, and `/proc/self/io` counts one engine's writes.
//! - The order of the engines alternates between repeats.
//! - Fjall keeps its defaults otherwise (lz4 for data blocks of levels 2 and deeper, journal
//!   compression only for values of 4 KiB and more, min(cores, 4) worker threads); ours compresses
//!   nothing. The output says so.
//!
//! # Ratios
//!
//! Each figure is the median over the repeats, per engine. The ratio is a ratio of medians, made
//! so that more than 1.0 means BlockDB is better: blockdb / fjall for throughputs, fjall / blockdb
//! for amplifications (rows marked "lower is better"). The goal is at least 1.0 on every row.
//!
//! # Running
//!
//! ```text
//! cargo bench -p blockdb-server --bench storage_vs_fjall
//! BLOCKDB_BENCH_QUICK=1 cargo bench -p blockdb-server --bench storage_vs_fjall   # smoke test
//! BLOCKDB_BENCH_KEYS=10000000 cargo bench -p blockdb-server --bench storage_vs_fjall
//! ```
//!
//! | variable                 | default                  | meaning                                |
//! |--------------------------|--------------------------|----------------------------------------|
//! | `BLOCKDB_BENCH_KEYS`     | `1000000`                | key counts, comma-separated            |
//! | `BLOCKDB_BENCH_SECONDS`  | `5`                      | seconds of each timed phase            |
//! | `BLOCKDB_BENCH_REPEATS`  | `3`                      | repeats; each row reports the median   |
//! | `BLOCKDB_BENCH_DIR`      | `target/tmp` (workspace) | where the stores go (not tmpfs!)       |
//! | `BLOCKDB_BENCH_QUICK`    | unset                    | `1`: 10^5 keys, 1 s phases, 1 repeat   |
//!
//! Explicit variables override the quick mode's values. The benchmark runs only under
//! `cargo bench` (which passes `--bench`); run by `cargo test --benches` it does nothing. A
//! watchdog ends the process (exit code 2) naming the engine and phase if one runs far past its
//! time, leaving the store on disk for inspection.
//!
//! This file is over the style guide's ~500-line soft limit: a bench target is one file, and it
//! holds both engines' adapters, the phases, the measurements and the report.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blockdb_server::storage::{Engine, Options, WriteBatch};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const KEY_BYTES: usize = 16;
const VALUE_BYTES: usize = 100;
/// User bytes of one entry: key and value.
const ENTRY_BYTES: u64 = (KEY_BYTES + VALUE_BYTES) as u64;
const LOAD_BATCH_KEYS: u64 = 1000;
const WRITE_BATCH_KEYS: u64 = 10;
const SCAN_ENTRIES: usize = 100;
const BLOCK_CACHE_BYTES: usize = 256 * 1024 * 1024;
const MEMTABLE_BYTES: usize = 64 * 1024 * 1024;
const WRITE_THREADS: [usize; 3] = [1, 8, 64];
const READ_THREADS: [usize; 2] = [1, 8];
const MIXED_THREADS: usize = 8;
/// Indices of keys that are never written; written indices stay far below.
const MISS_BASE: u64 = 1 << 62;
const SEED: u64 = 0x5eed_b10c_dbf1_a11e;
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
/// How long fjall must show no flush or compaction before it counts as settled.
const FJALL_QUIET: Duration = Duration::from_secs(1);

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and must stay fast.
    if !std::env::args().any(|a| a == "--bench") {
        println!("storage_vs_fjall: runs only under `cargo bench`; nothing to do");
        return;
    }
    let config = Config::from_env();
    let run_dir = tempfile::Builder::new()
        .prefix("storage_vs_fjall-")
        .tempdir_in(&config.base_dir)
        .unwrap_or_else(|e| {
            panic!("cannot create a directory in {}: {e}", config.base_dir.display())
        });
    print_settings(&config, run_dir.path());
    start_watchdog();
    for &keys in &config.key_counts {
        let samples = run_key_count(&config, keys, run_dir.path());
        print_table(&config, keys, &samples);
    }
}

/// The benchmark's settings, from the environment.
#[derive(Debug)]
struct Config {
    key_counts: Vec<u64>,
    phase: Duration,
    repeats: usize,
    base_dir: PathBuf,
}

impl Config {
    fn from_env() -> Config {
        let quick = env_string("BLOCKDB_BENCH_QUICK").is_some_and(|v| v == "1");
        let key_counts = match env_string("BLOCKDB_BENCH_KEYS") {
            Some(list) => list.split(',').map(|k| parse_number("BLOCKDB_BENCH_KEYS", k)).collect(),
            None => vec![if quick { 100_000 } else { 1_000_000 }],
        };
        assert!(
            key_counts.iter().all(|&k| k > 0 && k < MISS_BASE / 2),
            "BLOCKDB_BENCH_KEYS: every count must be in [1, 2^61)"
        );
        let seconds: f64 = match env_string("BLOCKDB_BENCH_SECONDS") {
            Some(s) => {
                s.trim().parse().unwrap_or_else(|e| panic!("BLOCKDB_BENCH_SECONDS={s}: {e}"))
            }
            None if quick => 1.0,
            None => 5.0,
        };
        assert!(seconds > 0.0 && seconds < 3600.0, "BLOCKDB_BENCH_SECONDS must be in (0, 3600)");
        let repeats = match env_string("BLOCKDB_BENCH_REPEATS") {
            Some(s) => parse_number("BLOCKDB_BENCH_REPEATS", &s),
            None if quick => 1,
            None => 3,
        };
        assert!((1..=100).contains(&repeats), "BLOCKDB_BENCH_REPEATS must be in [1, 100]");
        // Cargo points CARGO_TARGET_TMPDIR at the workspace's `target/tmp`: on the project's
        // disk, not on a /tmp that may live in memory.
        let base_dir = env_string("BLOCKDB_BENCH_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
        fs::create_dir_all(&base_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", base_dir.display()));
        Config {
            key_counts,
            phase: Duration::from_secs_f64(seconds),
            repeats: usize::try_from(repeats).expect("repeats were checked to be at most 100"),
            base_dir,
        }
    }
}

fn env_string(name: &str) -> Option<String> {
    let value = std::env::var_os(name)?;
    let value = value.into_string().unwrap_or_else(|v| panic!("{name}={v:?} is not UTF-8"));
    (!value.trim().is_empty()).then_some(value)
}

fn parse_number(name: &str, text: &str) -> u64 {
    text.trim().replace('_', "").parse().unwrap_or_else(|e| panic!("{name}: {text:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Keys and values

/// A bijection on u64 (the splitmix64 finalizer after adding a constant): distinct indices give
/// distinct keys, spread over the key space.
fn mix64(x: u64) -> u64 {
    let mut x = x.wrapping_add(GOLDEN);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The key of index `i`: 8 bytes that are unique per index, then 8 bytes derived from them.
fn key_of(i: u64) -> [u8; KEY_BYTES] {
    let head = mix64(i);
    let mut key = [0; KEY_BYTES];
    key[..8].copy_from_slice(&head.to_be_bytes());
    key[8..].copy_from_slice(&mix64(head).to_be_bytes());
    key
}

/// The value of index `i`: 100 pseudo-random bytes.
fn value_of(i: u64) -> [u8; VALUE_BYTES] {
    let mut value = [0; VALUE_BYTES];
    let mut state = mix64(i ^ SEED);
    for chunk in value.chunks_mut(8) {
        state = mix64(state);
        chunk.copy_from_slice(&state.to_be_bytes()[..chunk.len()]);
    }
    value
}

// ---------------------------------------------------------------------------------------------
// The two engines behind one interface

/// What the benchmark does to an engine. Every method panics, naming the engine, on an engine
/// error: a benchmark that goes on after one would report numbers of a broken store.
trait Store: Sync + Sized {
    const NAME: &'static str;
    fn open(dir: &Path) -> Self;
    /// Writes the keys of `indices` as one durable batch.
    fn write_durable(&self, indices: Range<u64>);
    /// Writes the key of `index` durably, alone.
    fn put_durable(&self, index: u64);
    /// Reads `key` and checks it reads as `expected` (`None`: absent); the error says how not.
    fn get_check(&self, key: &[u8], expected: Option<&[u8]>) -> Result<(), String>;
    /// Reads up to `limit` entries from `start` on, feeding each to `check`.
    fn scan_from(&self, start: &[u8], limit: usize, check: &mut ScanCheck);
    /// Waits until the memtable is in tables and background work is done.
    fn settle(&self);
    /// Write amplification by the engine's own counters, if it has them.
    fn counted_write_amp(&self) -> Option<f64>;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Says how a read value differs from the expected one, if it does.
fn compare(got: Option<&[u8]>, expected: Option<&[u8]>) -> Result<(), String> {
    match (got, expected) {
        (g, e) if g == e => Ok(()),
        (None, Some(_)) => Err("it is absent".into()),
        (Some(_), None) => Err("it is present".into()),
        (Some(g), Some(e)) => {
            let first = g.iter().zip(e).position(|(a, b)| a != b).unwrap_or(g.len().min(e.len()));
            Err(format!(
                "its value differs: {} bytes, expected {}, first difference at byte {first}",
                g.len(),
                e.len()
            ))
        }
        (None, None) => Ok(()),
    }
}

/// Checks a scan's output: it starts at the key sought (which exists), keys ascend, values have
/// the right length.
#[derive(Debug)]
struct ScanCheck {
    prev: Vec<u8>,
    entries: usize,
    ok: bool,
}

impl ScanCheck {
    fn new(start: &[u8]) -> ScanCheck {
        ScanCheck { prev: start.to_vec(), entries: 0, ok: true }
    }

    fn feed(&mut self, key: &[u8], value_len: usize) {
        let in_order = if self.entries == 0 { key == self.prev } else { key > &self.prev[..] };
        self.ok &= in_order && value_len == VALUE_BYTES;
        self.prev.clear();
        self.prev.extend_from_slice(key);
        self.entries += 1;
    }
}

#[derive(Debug)]
struct BlockDb {
    engine: Engine,
}

impl Store for BlockDb {
    const NAME: &'static str = "blockdb";

    fn open(dir: &Path) -> BlockDb {
        let options = Options {
            block_cache_bytes: BLOCK_CACHE_BYTES,
            memtable_bytes: MEMTABLE_BYTES,
            ..Options::default()
        };
        let engine = Engine::open(dir, options).unwrap_or_else(|e| panic!("blockdb: open: {e}"));
        BlockDb { engine }
    }

    fn write_durable(&self, indices: Range<u64>) {
        let mut batch = WriteBatch::new();
        for i in indices {
            batch.put(key_of(i), value_of(i));
        }
        self.engine.write(batch).unwrap_or_else(|e| panic!("blockdb: durable write: {e}"));
    }

    fn put_durable(&self, index: u64) {
        self.engine
            .put(&key_of(index), &value_of(index))
            .unwrap_or_else(|e| panic!("blockdb: durable put: {e}"));
    }

    fn get_check(&self, key: &[u8], expected: Option<&[u8]>) -> Result<(), String> {
        let got = self.engine.get(key).unwrap_or_else(|e| panic!("blockdb: get: {e}"));
        compare(got.as_deref(), expected)
    }

    fn scan_from(&self, start: &[u8], limit: usize, check: &mut ScanCheck) {
        for entry in self.engine.scan(start.to_vec()..).take(limit) {
            let (key, value) = entry.unwrap_or_else(|e| panic!("blockdb: scan: {e}"));
            check.feed(&key, value.len());
        }
    }

    fn settle(&self) {
        self.engine.flush().unwrap_or_else(|e| panic!("blockdb: flush: {e}"));
        self.engine
            .wait_for_compactions()
            .unwrap_or_else(|e| panic!("blockdb: wait_for_compactions: {e}"));
    }

    fn counted_write_amp(&self) -> Option<f64> {
        let s = self.engine.stats();
        let written = s.wal_bytes + s.flush_bytes + s.compaction_bytes;
        (s.user_bytes > 0).then(|| written as f64 / s.user_bytes as f64)
    }
}

struct Fjall {
    db: Database,
    keyspace: Keyspace,
}

impl fmt::Debug for Fjall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fjall").field("path", &self.keyspace.path()).finish_non_exhaustive()
    }
}

impl Fjall {
    /// A batch that returns only after its journal write is fdatasync'ed, as ours.
    fn durable_batch(&self) -> fjall::OwnedWriteBatch {
        self.db.batch().durability(Some(PersistMode::SyncData))
    }
}

impl Store for Fjall {
    const NAME: &'static str = "fjall";

    fn open(dir: &Path) -> Fjall {
        let db = Database::builder(dir)
            .cache_size(BLOCK_CACHE_BYTES as u64)
            .open()
            .unwrap_or_else(|e| panic!("fjall: open: {e}"));
        let keyspace = db
            .keyspace("bench", || {
                KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES as u64)
            })
            .unwrap_or_else(|e| panic!("fjall: open keyspace: {e}"));
        Fjall { db, keyspace }
    }

    fn write_durable(&self, indices: Range<u64>) {
        let mut batch = self.durable_batch();
        for i in indices {
            batch.insert(&self.keyspace, &key_of(i)[..], &value_of(i)[..]);
        }
        batch.commit().unwrap_or_else(|e| panic!("fjall: durable batch: {e}"));
    }

    fn put_durable(&self, index: u64) {
        let mut batch = self.durable_batch();
        batch.insert(&self.keyspace, &key_of(index)[..], &value_of(index)[..]);
        batch.commit().unwrap_or_else(|e| panic!("fjall: durable put: {e}"));
    }

    fn get_check(&self, key: &[u8], expected: Option<&[u8]>) -> Result<(), String> {
        let got = self.keyspace.get(key).unwrap_or_else(|e| panic!("fjall: get: {e}"));
        compare(got.as_deref(), expected)
    }

    fn scan_from(&self, start: &[u8], limit: usize, check: &mut ScanCheck) {
        for guard in self.keyspace.range(start..).take(limit) {
            let (key, value) = guard.into_inner().unwrap_or_else(|e| panic!("fjall: scan: {e}"));
            check.feed(&key, value.len());
        }
    }

    fn settle(&self) {
        self.db.persist(PersistMode::SyncData).unwrap_or_else(|e| panic!("fjall: persist: {e}"));
        self.keyspace.rotate_memtable_and_wait().unwrap_or_else(|e| panic!("fjall: flush: {e}"));
        // Fjall has no call that waits for compactions, and schedules them only after flushes:
        // wait until it has shown no flush or compaction for FJALL_QUIET. The watchdog bounds
        // this loop.
        let mut quiet_since = Instant::now();
        loop {
            if self.db.active_compactions() > 0 || self.db.outstanding_flushes() > 0 {
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= FJALL_QUIET {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn counted_write_amp(&self) -> Option<f64> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Rows of the report

/// One row of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Metric {
    LoadKeysPerSec,
    WriteAmpIo,
    WriteAmpCounted,
    SpaceAmp,
    SpaceAmpApparent,
    WriteBatchesPerSec(usize),
    WriteKeysPerSec(usize),
    ReadHitPerSec(usize),
    ReadMissPerSec(usize),
    ScansPerSec(usize),
    MixedPerSec(usize),
}

impl Metric {
    /// The rows in report order (the issue's order, not the order the phases run in).
    fn report_order() -> Vec<Metric> {
        let mut rows = vec![Metric::LoadKeysPerSec];
        for t in WRITE_THREADS {
            rows.push(Metric::WriteBatchesPerSec(t));
            rows.push(Metric::WriteKeysPerSec(t));
        }
        rows.extend(READ_THREADS.map(Metric::ReadHitPerSec));
        rows.extend(READ_THREADS.map(Metric::ReadMissPerSec));
        rows.extend(READ_THREADS.map(Metric::ScansPerSec));
        rows.push(Metric::MixedPerSec(MIXED_THREADS));
        rows.extend([
            Metric::WriteAmpIo,
            Metric::WriteAmpCounted,
            Metric::SpaceAmp,
            Metric::SpaceAmpApparent,
        ]);
        rows
    }

    fn label(self) -> String {
        match self {
            Metric::LoadKeysPerSec => "load, 1 thread, batches of 1000 (keys/s)".into(),
            Metric::WriteAmpIo => "write amp, /proc/self/io (lower is better)".into(),
            Metric::WriteAmpCounted => "write amp, engine counters (lower is better)".into(),
            Metric::SpaceAmp => "space amp, allocated (lower is better)".into(),
            Metric::SpaceAmpApparent => "space amp, file sizes (lower is better)".into(),
            Metric::WriteBatchesPerSec(t) => format!("durable writes x10, {t} thr (batches/s)"),
            Metric::WriteKeysPerSec(t) => format!("durable writes x10, {t} thr (keys/s)"),
            Metric::ReadHitPerSec(t) => format!("point reads, hit, {t} thr (ops/s)"),
            Metric::ReadMissPerSec(t) => format!("point reads, miss, {t} thr (ops/s)"),
            Metric::ScansPerSec(t) => format!("scans of 100, {t} thr (scans/s)"),
            Metric::MixedPerSec(t) => format!("mixed 50/50 read/put, {t} thr (ops/s)"),
        }
    }

    fn lower_is_better(self) -> bool {
        matches!(
            self,
            Metric::WriteAmpIo
                | Metric::WriteAmpCounted
                | Metric::SpaceAmp
                | Metric::SpaceAmpApparent
        )
    }

    fn format(self, value: f64) -> String {
        if self.lower_is_better() { format!("{value:.2}") } else { group_digits(value) }
    }
}

/// `1234567.8` as `1,234,568`.
fn group_digits(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Samples per engine and row, one per repeat.
type Samples = BTreeMap<(&'static str, Metric), Vec<f64>>;

// ---------------------------------------------------------------------------------------------
// Running

fn run_key_count(config: &Config, keys: u64, run_dir: &Path) -> Samples {
    let mut samples = Samples::new();
    for repeat in 0..config.repeats {
        // Alternate which engine goes first, so neither always gets the cooler machine.
        let order = if repeat % 2 == 0 {
            [BlockDb::NAME, Fjall::NAME]
        } else {
            [Fjall::NAME, BlockDb::NAME]
        };
        for name in order {
            let started = Instant::now();
            let seed = SEED ^ (repeat as u64).wrapping_mul(GOLDEN);
            let rows = if name == BlockDb::NAME {
                run_once::<BlockDb>(config, keys, run_dir, seed)
            } else {
                run_once::<Fjall>(config, keys, run_dir, seed)
            };
            for (metric, value) in rows {
                if let Some(v) = value {
                    samples.entry((name, metric)).or_default().push(v);
                }
            }
            eprintln!(
                "  [{keys} keys] repeat {}/{}: {name} done in {:.0} s",
                repeat + 1,
                config.repeats,
                started.elapsed().as_secs_f64()
            );
        }
    }
    samples
}

/// One engine, one fresh store, every phase. Returns each row's value (`None`: not available).
fn run_once<S: Store>(
    config: &Config,
    keys: u64,
    run_dir: &Path,
    seed: u64,
) -> Vec<(Metric, Option<f64>)> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{}-", S::NAME))
        .tempdir_in(run_dir)
        .unwrap_or_else(|e| {
            panic!("cannot create a store directory in {}: {e}", run_dir.display())
        });
    let store = S::open(dir.path());
    let mut rows = load_phase(&store, keys, dir.path());
    rows.extend(read_phases(&store, config, keys, seed));
    rows.extend(write_phases(&store, config, keys, seed));
    // Close before the directory goes, and before the next engine opens.
    drop(store);
    drop(dir);
    rows
}

/// Phase 1: load, settle, then write and space amplification.
fn load_phase<S: Store>(store: &S, keys: u64, dir: &Path) -> Vec<(Metric, Option<f64>)> {
    // Generous: a slow disk may load 10^7 keys at a few thousand keys/s.
    let limit = Duration::from_secs(600 + keys / 2000);
    let io_before = ProcessIo::now();
    let load = watched(S::NAME, "load", limit, || {
        let started = Instant::now();
        let mut next = 0;
        while next < keys {
            let end = keys.min(next + LOAD_BATCH_KEYS);
            store.write_durable(next..end);
            next = end;
        }
        started.elapsed()
    });
    watched(S::NAME, "settle after load", limit, || store.settle());
    let io_after = ProcessIo::now();
    let user_bytes = (keys * ENTRY_BYTES) as f64;
    let io_amp = match (io_before, io_after) {
        (Some(before), Some(after)) => Some(after.written_since(&before) as f64 / user_bytes),
        _ => None,
    };
    let disk = dir_bytes(dir);
    vec![
        (Metric::LoadKeysPerSec, Some(keys as f64 / load.as_secs_f64())),
        (Metric::WriteAmpIo, io_amp),
        (Metric::WriteAmpCounted, store.counted_write_amp()),
        (Metric::SpaceAmp, Some(disk.allocated as f64 / user_bytes)),
        (Metric::SpaceAmpApparent, Some(disk.apparent as f64 / user_bytes)),
    ]
}

/// Phases 2 and 3: point reads (hits and misses) and scans, on the settled store.
fn read_phases<S: Store>(
    store: &S,
    config: &Config,
    keys: u64,
    seed: u64,
) -> Vec<(Metric, Option<f64>)> {
    let mut rows = Vec::new();
    for threads in READ_THREADS {
        let rate = timed(S::NAME, "point reads (hit)", threads, config.phase, seed ^ 1, |rng| {
            let i = rng.random_range(0..keys);
            if let Err(why) = store.get_check(&key_of(i), Some(&value_of(i))) {
                panic!("{}: point read of loaded key {i} ({}): {why}", S::NAME, hex(&key_of(i)));
            }
            1
        });
        rows.push((Metric::ReadHitPerSec(threads), Some(rate)));
        let rate = timed(S::NAME, "point reads (miss)", threads, config.phase, seed ^ 2, |rng| {
            let i = MISS_BASE + rng.random_range(0..keys);
            if let Err(why) = store.get_check(&key_of(i), None) {
                panic!(
                    "{}: point read of never-written key {i} ({}): {why}",
                    S::NAME,
                    hex(&key_of(i))
                );
            }
            1
        });
        rows.push((Metric::ReadMissPerSec(threads), Some(rate)));
    }
    for threads in READ_THREADS {
        let rate = timed(S::NAME, "range scans", threads, config.phase, seed ^ 3, |rng| {
            let start = key_of(rng.random_range(0..keys));
            let mut check = ScanCheck::new(&start);
            store.scan_from(&start, SCAN_ENTRIES, &mut check);
            assert!(
                check.ok && check.entries > 0,
                "{}: a scan from a loaded key returned {} entries, not starting at the key, \
                 out of order, or with a value of the wrong length",
                S::NAME,
                check.entries
            );
            1
        });
        rows.push((Metric::ScansPerSec(threads), Some(rate)));
    }
    rows
}

/// Phases 4 and 5: durable batched writes, then the mixed load. New keys start at index `keys`.
fn write_phases<S: Store>(
    store: &S,
    config: &Config,
    keys: u64,
    seed: u64,
) -> Vec<(Metric, Option<f64>)> {
    let next_index = AtomicU64::new(keys);
    let mut rows = Vec::new();
    for threads in WRITE_THREADS {
        let rate = timed(S::NAME, "durable writes", threads, config.phase, seed ^ 4, |_| {
            let first = next_index.fetch_add(WRITE_BATCH_KEYS, Ordering::Relaxed);
            store.write_durable(first..first + WRITE_BATCH_KEYS);
            1
        });
        rows.push((Metric::WriteBatchesPerSec(threads), Some(rate)));
        rows.push((Metric::WriteKeysPerSec(threads), Some(rate * WRITE_BATCH_KEYS as f64)));
    }
    let rate = timed(S::NAME, "mixed 50/50", MIXED_THREADS, config.phase, seed ^ 5, |rng| {
        if rng.random_bool(0.5) {
            let i = rng.random_range(0..keys);
            if let Err(why) = store.get_check(&key_of(i), Some(&value_of(i))) {
                panic!(
                    "{}: mixed load, read of loaded key {i} ({}): {why}",
                    S::NAME,
                    hex(&key_of(i))
                );
            }
        } else {
            store.put_durable(next_index.fetch_add(1, Ordering::Relaxed));
        }
        1
    });
    rows.push((Metric::MixedPerSec(MIXED_THREADS), Some(rate)));
    rows
}

/// Runs `op` on `threads` threads until `duration` has passed, and returns operations per second
/// (`op` returns how many operations it did). The time includes the operations still running at
/// the deadline.
fn timed<F>(engine: &str, phase: &str, threads: usize, duration: Duration, seed: u64, op: F) -> f64
where
    F: Fn(&mut SmallRng) -> u64 + Sync,
{
    let limit = duration + Duration::from_secs(300);
    watched(engine, &format!("{phase}, {threads} threads"), limit, || {
        let started = Instant::now();
        let deadline = started + duration;
        let done: u64 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads as u64)
                .map(|t| {
                    let op = &op;
                    scope.spawn(move || {
                        let mut rng = SmallRng::seed_from_u64(seed ^ t.wrapping_mul(GOLDEN));
                        let mut done = 0;
                        while Instant::now() < deadline {
                            done += op(&mut rng);
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a benchmark thread panicked (its message is above)"))
                .sum()
        });
        done as f64 / started.elapsed().as_secs_f64()
    })
}

// ---------------------------------------------------------------------------------------------
// Measuring the machine

/// The process's storage write counters from `/proc/self/io` (Linux).
#[derive(Debug, Clone, Copy)]
struct ProcessIo {
    write_bytes: u64,
    cancelled_write_bytes: u64,
}

impl ProcessIo {
    fn now() -> Option<ProcessIo> {
        let text = fs::read_to_string("/proc/self/io").ok()?;
        let field = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
        };
        Some(ProcessIo {
            write_bytes: field("write_bytes:")?,
            cancelled_write_bytes: field("cancelled_write_bytes:")?,
        })
    }

    /// Bytes sent to storage since `before`, less the dirty pages dropped before writeback
    /// (truncated or deleted files).
    fn written_since(&self, before: &ProcessIo) -> u64 {
        let written = self.write_bytes.saturating_sub(before.write_bytes);
        let cancelled = self.cancelled_write_bytes.saturating_sub(before.cancelled_write_bytes);
        written.saturating_sub(cancelled)
    }
}

/// Bytes of the files under `dir`: as allocated on disk (what `du` shows), and as file sizes.
/// They differ for sparse files: fjall sizes each new journal to 64 MiB up front without writing
/// it. Files deleted during the walk (by background work) are skipped.
fn dir_bytes(dir: &Path) -> DirBytes {
    let mut total = DirBytes { allocated: 0, apparent: 0 };
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        let entries = fs::read_dir(&d).unwrap_or_else(|e| panic!("list {}: {e}", d.display()));
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total.allocated += meta.blocks() * 512;
                total.apparent += meta.len();
            }
        }
    }
    total
}

/// See [`dir_bytes`].
#[derive(Debug, Clone, Copy)]
struct DirBytes {
    allocated: u64,
    apparent: u64,
}

/// The file system type and device of the mount holding `path`, from `/proc/mounts`.
fn mount_of(path: &Path) -> Option<(String, String)> {
    let path = fs::canonicalize(path).ok()?;
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point).then(|| (point.len(), kind.to_owned(), device.to_owned()))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, kind, device)| (kind, device))
}

// ---------------------------------------------------------------------------------------------
// Watchdog

/// The phase being watched: which engine, what, since when, and for how long at most.
#[derive(Debug)]
struct Watch {
    engine: String,
    what: String,
    since: Instant,
    limit: Duration,
}

static WATCH: Mutex<Option<Watch>> = Mutex::new(None);

fn set_watch(watch: Option<Watch>) {
    *WATCH.lock().unwrap_or_else(|p| p.into_inner()) = watch;
}

/// Runs `f` under the watchdog: if it takes longer than `limit`, the process ends naming it.
fn watched<T>(engine: &str, what: &str, limit: Duration, f: impl FnOnce() -> T) -> T {
    set_watch(Some(Watch {
        engine: engine.to_owned(),
        what: what.to_owned(),
        since: Instant::now(),
        limit,
    }));
    let out = f();
    set_watch(None);
    out
}

/// A thread that ends the process (exit code 2) when a watched phase runs past its limit: a hung
/// engine must be reported as hung, not wait forever. It runs until the process ends.
fn start_watchdog() {
    let spawned = std::thread::Builder::new().name("bench-watchdog".into()).spawn(|| {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let guard = WATCH.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(w) = guard.as_ref().filter(|w| w.since.elapsed() > w.limit) {
                eprintln!(
                    "watchdog: {} has been in phase \"{}\" for {:.0} s (limit {} s); giving up. \
                     The store is left on disk under the directory printed above.",
                    w.engine,
                    w.what,
                    w.since.elapsed().as_secs_f64(),
                    w.limit.as_secs()
                );
                std::process::exit(2);
            }
        }
    });
    spawned.expect("cannot start the watchdog thread");
}

// ---------------------------------------------------------------------------------------------
// Output

fn print_settings(config: &Config, run_dir: &Path) {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let fs_note = match mount_of(run_dir) {
        Some((kind, device)) => format!("{kind} on {device}"),
        None => "file system unknown".to_owned(),
    };
    println!("storage_vs_fjall: blockdb-server storage engine vs fjall 3.1");
    println!("machine:    {cores} cores (available_parallelism)");
    println!("stores in:  {} ({fs_note})", run_dir.display());
    println!(
        "workload:   {KEY_BYTES}-byte keys (spread, not sequential), {VALUE_BYTES}-byte \
         pseudo-random values; timed phases of {:.1} s; seed {SEED:#x}",
        config.phase.as_secs_f64()
    );
    println!(
        "durability: every acknowledged batch fdatasync'ed: blockdb Engine::write (group \
         commit); fjall batch durability PersistMode::SyncData (one fsync per batch)"
    );
    println!(
        "memory:     block cache {} MiB each; memtable {} MiB each (fjall max_memtable_size)",
        BLOCK_CACHE_BYTES >> 20,
        MEMTABLE_BYTES >> 20
    );
    println!("blockdb:    Options::default() otherwise (no compression, 1 background thread)");
    println!(
        "fjall:      defaults otherwise: data blocks lz4 on levels >= 2, journal lz4 only for \
         values >= 4 KiB (unused here), min(cores, 4) worker threads"
    );
    println!(
        "settle:     blockdb flush + wait_for_compactions; fjall rotate_memtable_and_wait, then \
         no flush or compaction running for {} s",
        FJALL_QUIET.as_secs()
    );
    println!(
        "amp:        user bytes = keys x {ENTRY_BYTES}; write = bytes written to storage in \
         load + settle (/proc/self/io write_bytes - cancelled_write_bytes) / user bytes; space = \
         bytes of the store directory after settle / user bytes, allocated (du; fjall's journal \
         is a sparse 64 MiB file) and as file sizes"
    );
    println!(
        "figures:    median of {} repeat(s), fresh stores, engine order alternating; ratio = \
         blockdb/fjall, or fjall/blockdb where lower is better: > 1.00 means blockdb is better",
        config.repeats
    );
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

fn print_table(config: &Config, keys: u64, samples: &Samples) {
    println!();
    println!(
        "== {} keys ({:.0} MiB of user data), median of {} ==",
        group_digits(keys as f64),
        (keys * ENTRY_BYTES) as f64 / (1024.0 * 1024.0),
        config.repeats
    );
    println!("{:<46} {:>12} {:>12} {:>8}  goal >= 1.0", "", "blockdb", "fjall", "ratio");
    for metric in Metric::report_order() {
        let ours = samples.get(&(BlockDb::NAME, metric)).and_then(|v| median(v));
        let theirs = samples.get(&(Fjall::NAME, metric)).and_then(|v| median(v));
        let cell = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| metric.format(v));
        let ratio = match (ours, theirs) {
            (Some(o), Some(t)) if o > 0.0 && t > 0.0 => {
                Some(if metric.lower_is_better() { t / o } else { o / t })
            }
            _ => None,
        };
        let (ratio_cell, goal) = match ratio {
            Some(r) => (format!("{r:.2}x"), if r >= 1.0 { "met" } else { "BELOW" }),
            None => ("-".to_owned(), "-"),
        };
        println!(
            "{:<46} {:>12} {:>12} {:>8}  {goal}",
            metric.label(),
            cell(ours),
            cell(theirs),
            ratio_cell
        );
    }
}
