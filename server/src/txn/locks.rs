//! The lock manager of a node: shared and exclusive locks per (shard, key) for the transactions
//! whose steps run on this node's shard leaders, a wait-for graph, and deadlock detection.
//!
//! A lock request that cannot be granted waits — for the holders to release, or for the prepared
//! transaction whose durable lock is in the way ([`crate::ledger::txn`]) to be decided — until
//! its deadline. While it waits, its edges (waiter → each holder) are in the wait-for graph; a
//! request whose edges close a cycle is refused at once with [`LockError::Deadlock`]: the
//! requester is the victim, so that one transaction of the cycle aborts and releases its locks,
//! and the others go on. A transaction's locks go at [`LockManager::release`] (commit, abort,
//! the end of a prepare) or when its lease runs out (a coordinator that vanished).
//!
//! The local graph spans every shard this node leads. A cycle through shards led by different
//! nodes is found by the cluster's [`Detector`], which runs on the leader of shard 0 (as TiKV's
//! deadlock detector runs on one leader): every waiting request reports its edges to it each
//! time it looks again, edges not reported again soon are forgotten, and a report that closes a
//! cycle makes its reporter the victim. If the detector cannot be reached, the wait deadline
//! still ends every wait.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use blockdb_verifier::{ShardId, TxnId};
use tokio::sync::Notify;

/// How a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// For reads and checks: many transactions may hold it together.
    Shared,
    /// For writes: one transaction alone.
    Exclusive,
}

/// Why a lock was not granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Waiting would close a cycle of transactions waiting for each other: this one is the
    /// victim.
    #[error("deadlock: transaction {txn} would wait for {cycle}", cycle = fmt_cycle(.cycle))]
    Deadlock {
        /// The victim.
        txn: TxnId,
        /// The cycle, from the victim's first holder back to the victim.
        cycle: Vec<TxnId>,
    },
    /// The deadline passed while `holder` held the key.
    #[error("timed out waiting for a lock held by transaction {holder}")]
    Timeout {
        /// A holder at the deadline.
        holder: TxnId,
    },
}

fn fmt_cycle(cycle: &[TxnId]) -> String {
    cycle.iter().map(ToString::to_string).collect::<Vec<_>>().join(" → ")
}

/// A lock's name: a key of a shard.
type LockId = (ShardId, Vec<u8>);

#[derive(Debug, Default)]
struct Held {
    exclusive: Option<TxnId>,
    shared: BTreeSet<TxnId>,
}

impl Held {
    fn blockers(&self, txn: TxnId, mode: Mode) -> Vec<TxnId> {
        let mut b: Vec<TxnId> = self.exclusive.filter(|h| *h != txn).into_iter().collect();
        if mode == Mode::Exclusive {
            b.extend(self.shared.iter().filter(|h| **h != txn));
        }
        b
    }
}

#[derive(Debug)]
struct Owner {
    keys: Vec<(ShardId, Vec<u8>)>,
    lease_until: Instant,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<(ShardId, Vec<u8>), Held>,
    owners: HashMap<TxnId, Owner>,
    /// Who each waiting transaction waits for, per shard (a transaction's steps in several
    /// shards run at once).
    waits: HashMap<(TxnId, ShardId), Vec<TxnId>>,
    /// The requests waiting for each key, oldest first: a request is granted only when no older
    /// conflicting request waits, so a stream of shared locks cannot starve a writer.
    queues: HashMap<LockId, Vec<(TxnId, Mode)>>,
    last_sweep: Option<Instant>,
}

/// The lock manager of one node.
#[derive(Debug, Default)]
pub struct LockManager {
    state: Mutex<State>,
    released: Notify,
}

/// A lock request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The transaction asking.
    pub txn: TxnId,
    /// The key's shard.
    pub shard: ShardId,
    /// The key.
    pub key: &'a [u8],
    /// How it wants the key.
    pub mode: Mode,
    /// When it stops waiting.
    pub deadline: Instant,
    /// How long its locks are held at most after this grant (a later grant to the same
    /// transaction extends it), unless released.
    pub lease: Duration,
}

/// How often a waiting request looks again even if nothing told it to (a prepared transaction
/// decided on another path, a lease that ran out).
const RECHECK: Duration = Duration::from_millis(50);

impl LockManager {
    /// An empty lock manager.
    pub fn new() -> LockManager {
        LockManager::default()
    }

    /// Takes the request's key of its shard in its mode for its transaction, waiting until its
    /// deadline. `durable` names a prepared transaction (other than the requester) whose
    /// replicated lock on the key conflicts, if any; it is asked again whenever the request
    /// looks again. The lock is held until [`LockManager::release`] or until `lease` after the
    /// latest grant to the transaction.
    ///
    /// # Errors
    /// [`LockError::Deadlock`] when waiting would close a cycle, [`LockError::Timeout`] at the
    /// deadline.
    pub async fn acquire<F>(
        &self,
        request: Request<'_>,
        durable: impl Fn() -> Option<TxnId>,
        detect: impl Fn(Vec<TxnId>) -> F,
    ) -> Result<(), LockError>
    where
        F: std::future::Future<Output = Option<Vec<TxnId>>>,
    {
        let Request { txn, shard, key, mode, deadline, lease } = request;
        // Whatever way this ends (granted, refused, or the caller gone), the request leaves the
        // queue and the graph.
        let _leave = Leave { manager: self, txn, shard, key };
        loop {
            let notified = self.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let waiting = {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                Self::sweep(&mut s, &self.released);
                let id = (shard, key.to_vec());
                let mut blockers = s.keys.get(&id).map_or_else(Vec::new, |h| h.blockers(txn, mode));
                if let Some(p) = durable().filter(|p| *p != txn) {
                    blockers.push(p);
                }
                let queued = s.queues.get(&id).map_or(&[][..], Vec::as_slice);
                let ahead = queued
                    .iter()
                    .take_while(|(t, _)| *t != txn)
                    .filter(|(t, m)| {
                        *t != txn && (*m == Mode::Exclusive || mode == Mode::Exclusive)
                    })
                    .map(|(t, _)| *t);
                for t in ahead {
                    if !blockers.contains(&t) {
                        blockers.push(t);
                    }
                }
                if blockers.is_empty() {
                    s.waits.remove(&(txn, shard));
                    leave_queue(&mut s, &id, txn);
                    let held = s.keys.entry(id.clone()).or_default();
                    let fresh = match mode {
                        Mode::Exclusive => {
                            let fresh = held.exclusive != Some(txn);
                            held.exclusive = Some(txn);
                            held.shared.remove(&txn);
                            fresh
                        }
                        Mode::Shared => held.exclusive != Some(txn) && held.shared.insert(txn),
                    };
                    let owner = s
                        .owners
                        .entry(txn)
                        .or_insert_with(|| Owner { keys: Vec::new(), lease_until: Instant::now() });
                    if fresh && !owner.keys.contains(&id) {
                        owner.keys.push(id);
                    }
                    owner.lease_until = Instant::now() + lease;
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    s.waits.remove(&(txn, shard));
                    return Err(LockError::Timeout { holder: blockers[0] });
                }
                if let Some(cycle) = find_cycle(&merged(&s.waits), txn, &blockers) {
                    s.waits.remove(&(txn, shard));
                    return Err(LockError::Deadlock { txn, cycle });
                }
                s.waits.insert((txn, shard), blockers.clone());
                let queue = s.queues.entry(id).or_default();
                if !queue.iter().any(|(t, _)| *t == txn) {
                    queue.push((txn, mode));
                }
                blockers
            };
            if let Some(cycle) = detect(waiting).await {
                self.state.lock().unwrap_or_else(|p| p.into_inner()).waits.remove(&(txn, shard));
                return Err(LockError::Deadlock { txn, cycle });
            }
            let until = deadline.min(Instant::now() + RECHECK);
            let _ = tokio::time::timeout_at(until.into(), notified).await;
        }
    }

    /// Releases every lock of `txn` and forgets that it waits.
    pub fn release(&self, txn: TxnId) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Self::release_locked(&mut s, txn, None);
        drop(s);
        self.released.notify_waiters();
    }

    /// Releases the locks of `txn` on keys of `shard` only (the end of one step; the
    /// transaction's steps in other shards may still run on this node).
    pub fn release_in(&self, txn: TxnId, shard: ShardId) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Self::release_locked(&mut s, txn, Some(shard));
        drop(s);
        self.released.notify_waiters();
    }

    /// How many transactions hold locks, and how many wait.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (s.owners.len(), s.waits.len())
    }

    /// Whether `txn` holds any lock.
    pub fn holds(&self, txn: TxnId) -> bool {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.owners.contains_key(&txn)
    }

    fn release_locked(s: &mut State, txn: TxnId, only: Option<ShardId>) {
        s.queues.retain(|(shard, _), q| {
            if only.is_none_or(|o| o == *shard) {
                q.retain(|(t, _)| *t != txn);
            }
            !q.is_empty()
        });
        s.waits.retain(|(t, shard), _| *t != txn || only.is_some_and(|o| o != *shard));
        let Some(mut owner) = s.owners.remove(&txn) else { return };
        let keys: Vec<_> = match only {
            None => std::mem::take(&mut owner.keys),
            Some(shard) => {
                let (gone, kept) = owner.keys.drain(..).partition(|(s, _)| *s == shard);
                owner.keys = kept;
                gone
            }
        };
        if !owner.keys.is_empty() {
            s.owners.insert(txn, owner);
        }
        for id in keys {
            if let Some(h) = s.keys.get_mut(&id) {
                if h.exclusive == Some(txn) {
                    h.exclusive = None;
                }
                h.shared.remove(&txn);
                if h.exclusive.is_none() && h.shared.is_empty() {
                    s.keys.remove(&id);
                }
            }
        }
    }

    /// Releases the locks of transactions whose lease ran out (at most every [`RECHECK`]).
    fn sweep(s: &mut State, released: &Notify) {
        let now = Instant::now();
        if s.last_sweep.is_some_and(|t| now < t + RECHECK) {
            return;
        }
        s.last_sweep = Some(now);
        let expired: Vec<TxnId> =
            s.owners.iter().filter(|(_, o)| o.lease_until <= now).map(|(t, _)| *t).collect();
        for txn in &expired {
            tracing::info!(txn = %txn, "a transaction's lock lease ran out; its locks are released");
            Self::release_locked(s, *txn, None);
        }
        if !expired.is_empty() {
            released.notify_waiters();
        }
    }
}

fn leave_queue(s: &mut State, id: &(ShardId, Vec<u8>), txn: TxnId) {
    if let Some(q) = s.queues.get_mut(id) {
        q.retain(|(t, _)| *t != txn);
        if q.is_empty() {
            s.queues.remove(id);
        }
    }
}

/// Takes a lock request out of its key's queue and the wait-for graph when it ends.
struct Leave<'a> {
    manager: &'a LockManager,
    txn: TxnId,
    shard: ShardId,
    key: &'a [u8],
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut s = self.manager.state.lock().unwrap_or_else(|p| p.into_inner());
        let id = (self.shard, self.key.to_vec());
        let was_queued = s.queues.get(&id).is_some_and(|q| q.iter().any(|(t, _)| *t == self.txn));
        leave_queue(&mut s, &id, self.txn);
        s.waits.remove(&(self.txn, self.shard));
        drop(s);
        if was_queued {
            // Requests behind this one may go now.
            self.manager.released.notify_waiters();
        }
    }
}

/// How long the detector keeps a waiter's edges that were not reported again.
const EDGES_KEPT: Duration = Duration::from_millis(400);

/// Per waiter and shard: whom it waits for, and when it last said so.
type ReportedWaits = HashMap<(TxnId, ShardId), (Vec<TxnId>, Instant)>;

/// The cluster-wide wait-for graph, kept by the node that leads shard 0.
#[derive(Debug, Default)]
pub struct Detector {
    waits: Mutex<ReportedWaits>,
}

impl Detector {
    /// An empty graph.
    pub fn new() -> Detector {
        Detector::default()
    }

    /// `waiter` waits in `shard` for `blockers`: records the edges and returns the cycle they
    /// close, if any (then the waiter is the victim and its edges are dropped).
    pub fn report(
        &self,
        waiter: TxnId,
        shard: ShardId,
        blockers: Vec<TxnId>,
    ) -> Option<Vec<TxnId>> {
        let mut w = self.waits.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        w.retain(|_, (_, at)| now.duration_since(*at) < EDGES_KEPT);
        let mut edges: HashMap<TxnId, Vec<TxnId>> = HashMap::new();
        for ((t, _), (b, _)) in w.iter() {
            edges.entry(*t).or_default().extend(b);
        }
        if let Some(cycle) = find_cycle(&edges, waiter, &blockers) {
            w.retain(|(t, _), _| *t != waiter);
            return Some(cycle);
        }
        w.insert((waiter, shard), (blockers, now));
        None
    }
}

/// The waits of every shard merged per transaction.
fn merged(waits: &HashMap<(TxnId, ShardId), Vec<TxnId>>) -> HashMap<TxnId, Vec<TxnId>> {
    let mut edges: HashMap<TxnId, Vec<TxnId>> = HashMap::new();
    for ((t, _), b) in waits {
        edges.entry(*t).or_default().extend(b);
    }
    edges
}

/// A path from one of `blockers` back to `txn` through the waits, if there is one.
fn find_cycle(
    waits: &HashMap<TxnId, Vec<TxnId>>,
    txn: TxnId,
    blockers: &[TxnId],
) -> Option<Vec<TxnId>> {
    // Depth-first, iterative, with the path kept for the report.
    let mut seen = HashSet::new();
    for &start in blockers {
        let mut stack = vec![(start, 0usize)];
        let mut path = vec![start];
        if start == txn {
            return Some(vec![txn]);
        }
        seen.insert(start);
        while let Some((node, next)) = stack.last_mut() {
            let edges = waits.get(node).map_or(&[][..], Vec::as_slice);
            if let Some(&to) = edges.get(*next) {
                *next += 1;
                if to == txn {
                    path.push(txn);
                    return Some(path);
                }
                if seen.insert(to) {
                    stack.push((to, 0));
                    path.push(to);
                }
            } else {
                stack.pop();
                path.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u8) -> TxnId {
        TxnId([n; 16])
    }

    const S: ShardId = ShardId(0);
    const LEASE: Duration = Duration::from_secs(30);

    fn req(
        txn: TxnId,
        shard: ShardId,
        key: &[u8],
        mode: Mode,
        deadline: Instant,
        lease: Duration,
    ) -> Request<'_> {
        Request { txn, shard, key, mode, deadline, lease }
    }

    async fn none(_: Vec<TxnId>) -> Option<Vec<TxnId>> {
        None
    }

    fn soon(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[tokio::test]
    async fn shared_locks_share_and_exclusive_ones_wait_for_release() {
        let m = std::sync::Arc::new(LockManager::new());
        m.acquire(req(t(1), S, b"k", Mode::Shared, soon(10), LEASE), || None, none).await.unwrap();
        m.acquire(req(t(2), S, b"k", Mode::Shared, soon(10), LEASE), || None, none).await.unwrap();
        let e =
            m.acquire(req(t(3), S, b"k", Mode::Exclusive, soon(30), LEASE), || None, none).await;
        assert!(matches!(e, Err(LockError::Timeout { .. })), "{e:?}");
        // Another shard's key of the same name is another lock.
        m.acquire(req(t(3), ShardId(1), b"k", Mode::Exclusive, soon(10), LEASE), || None, none)
            .await
            .unwrap();
        let waiter = {
            let m = std::sync::Arc::clone(&m);
            tokio::spawn(async move {
                m.acquire(req(t(3), S, b"k", Mode::Exclusive, soon(5_000), LEASE), || None, none)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        m.release(t(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "t(2) still shares the key");
        m.release(t(2));
        waiter.await.unwrap().unwrap();
        // An upgrade by the only holder is granted at once.
        m.acquire(req(t(4), S, b"u", Mode::Shared, soon(10), LEASE), || None, none).await.unwrap();
        m.acquire(req(t(4), S, b"u", Mode::Exclusive, soon(10), LEASE), || None, none)
            .await
            .unwrap();
        m.release(t(3));
        m.release(t(4));
        assert_eq!(m.counts(), (0, 0));
    }

    #[tokio::test]
    async fn opposite_orders_make_one_victim_and_the_other_goes_on() {
        let m = std::sync::Arc::new(LockManager::new());
        m.acquire(req(t(1), S, b"a", Mode::Exclusive, soon(10), LEASE), || None, none)
            .await
            .unwrap();
        m.acquire(req(t(2), S, b"b", Mode::Exclusive, soon(10), LEASE), || None, none)
            .await
            .unwrap();
        let first = {
            let m = std::sync::Arc::clone(&m);
            tokio::spawn(async move {
                m.acquire(req(t(1), S, b"b", Mode::Exclusive, soon(10_000), LEASE), || None, none)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        let e = m
            .acquire(req(t(2), S, b"a", Mode::Exclusive, soon(10_000), LEASE), || None, none)
            .await;
        let Err(LockError::Deadlock { txn, cycle }) = e else { panic!("{e:?}") };
        assert!(started.elapsed() < Duration::from_secs(1), "found at once, not by timeout");
        assert_eq!(txn, t(2));
        assert_eq!(cycle, vec![t(1), t(2)]);
        m.release(t(2));
        first.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_durable_prepared_lock_blocks_until_it_goes_and_counts_in_the_graph() {
        let m = std::sync::Arc::new(LockManager::new());
        let prepared = std::sync::Arc::new(std::sync::Mutex::new(Some(t(9))));
        let durable = {
            let p = std::sync::Arc::clone(&prepared);
            move || *p.lock().unwrap()
        };
        let e = m
            .acquire(req(t(1), S, b"k", Mode::Shared, soon(30), LEASE), durable.clone(), none)
            .await;
        assert_eq!(e, Err(LockError::Timeout { holder: t(9) }));
        // t(9) waits here for a key t(1) holds: t(1) waiting for t(9) closes the cycle.
        m.acquire(req(t(1), S, b"x", Mode::Exclusive, soon(10), LEASE), || None, none)
            .await
            .unwrap();
        let nine = {
            let m = std::sync::Arc::clone(&m);
            tokio::spawn(async move {
                m.acquire(req(t(9), S, b"x", Mode::Exclusive, soon(10_000), LEASE), || None, none)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let e = m
            .acquire(req(t(1), S, b"k", Mode::Shared, soon(10_000), LEASE), durable.clone(), none)
            .await;
        assert!(matches!(e, Err(LockError::Deadlock { .. })), "{e:?}");
        m.release(t(1));
        nine.await.unwrap().unwrap();
        // Once the prepared transaction is decided, the key is free.
        *prepared.lock().unwrap() = None;
        m.acquire(req(t(1), S, b"k", Mode::Shared, soon(200), LEASE), durable, none).await.unwrap();
    }

    #[tokio::test]
    async fn a_cycle_across_nodes_is_found_by_the_detector() {
        // Two nodes' lock managers, one detector: neither node sees the cycle alone.
        let detector = std::sync::Arc::new(Detector::new());
        let (n1, n2) = (std::sync::Arc::new(LockManager::new()), LockManager::new());
        let report = |d: std::sync::Arc<Detector>, txn: TxnId| {
            move |blockers: Vec<TxnId>| {
                let d = std::sync::Arc::clone(&d);
                async move { d.report(txn, S, blockers) }
            }
        };
        n1.acquire(req(t(1), S, b"a", Mode::Exclusive, soon(10), LEASE), || None, none)
            .await
            .unwrap();
        n2.acquire(req(t(2), ShardId(1), b"b", Mode::Exclusive, soon(10), LEASE), || None, none)
            .await
            .unwrap();
        let first = {
            let (n1, d) = (std::sync::Arc::clone(&n1), std::sync::Arc::clone(&detector));
            tokio::spawn(async move {
                // t(1) at node 2 waits for b (held by t(2)): modelled as a durable holder.
                let r = req(t(1), S, b"b", Mode::Exclusive, soon(10_000), LEASE);
                n1.acquire(r, || Some(t(2)), report(d, t(1))).await
            })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        let started = Instant::now();
        let r = req(t(2), ShardId(1), b"a", Mode::Exclusive, soon(10_000), LEASE);
        let e = n2.acquire(r, || Some(t(1)), report(std::sync::Arc::clone(&detector), t(2))).await;
        assert!(matches!(e, Err(LockError::Deadlock { txn, .. }) if txn == t(2)), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        // The victim's edges are gone: t(1)'s reports find no cycle any more.
        assert_eq!(detector.report(t(1), S, vec![t(2)]), None);
        first.abort();
    }

    #[tokio::test]
    async fn a_waiting_writer_is_not_starved_by_later_readers() {
        let m = std::sync::Arc::new(LockManager::new());
        m.acquire(req(t(1), S, b"k", Mode::Shared, soon(10), LEASE), || None, none).await.unwrap();
        let writer = {
            let m = std::sync::Arc::clone(&m);
            tokio::spawn(async move {
                m.acquire(req(t(2), S, b"k", Mode::Exclusive, soon(5_000), LEASE), || None, none)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // A later reader queues behind the writer instead of sharing with t(1).
        let e = m.acquire(req(t(3), S, b"k", Mode::Shared, soon(30), LEASE), || None, none).await;
        assert!(matches!(e, Err(LockError::Timeout { holder }) if holder == t(2)), "{e:?}");
        m.release(t(1));
        writer.await.unwrap().unwrap();
        // A request whose caller went away leaves the queue.
        let gone = {
            let m = std::sync::Arc::clone(&m);
            tokio::spawn(async move {
                m.acquire(req(t(4), S, b"k", Mode::Exclusive, soon(5_000), LEASE), || None, none)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        gone.abort();
        let _ = gone.await;
        m.release(t(2));
        m.acquire(req(t(5), S, b"k", Mode::Shared, soon(100), LEASE), || None, none).await.unwrap();
        assert_eq!(m.counts(), (1, 0));
    }

    #[tokio::test]
    async fn a_lease_that_runs_out_frees_the_locks() {
        let m = LockManager::new();
        let short = Duration::from_millis(30);
        m.acquire(req(t(1), S, b"k", Mode::Exclusive, soon(10), short), || None, none)
            .await
            .unwrap();
        assert!(m.holds(t(1)));
        m.acquire(req(t(2), S, b"k", Mode::Exclusive, soon(2_000), LEASE), || None, none)
            .await
            .unwrap();
        assert!(!m.holds(t(1)));
    }
}
