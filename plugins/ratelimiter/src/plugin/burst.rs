//! The burst: `multiplier × limit` concurrent checks round-robin over the nodes,
//! all inside one fixed window of a fresh key, with the burst's own accounting.
//!
//! It is sent the way a load generator sends, so that the client is not what
//! limits the rate: a fixed set of workers, each bound to one node and owning
//! one HTTP/1.1 keep-alive connection that it drives on its own task, sending
//! a request built from pre-built parts and merging its outcomes into the
//! shared [`Accounting`] every [`MERGE_EVERY`] checks instead of locking per check.

use super::check_conn::{check, check_body, Conn, Target, CONNECT_TIMEOUT};
use super::load::{Accounting, NodeTally, Outcome};
use crate::wire::{CountersView, Limit};
use futures::future::join_all;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// At most this many checks of a burst are in flight at once.
pub const MAX_CONCURRENCY: usize = 256;

/// Checks a worker tallies locally before it merges them into the shared
/// accounting, so that the health poller's lock is taken once per this many.
pub const MERGE_EVERY: u64 = 64;

/// What one burst did, from its own accounting and the nodes' counters afterwards.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BurstRecord {
    pub key: String,
    pub limit: u64,
    pub window_ms: u64,
    pub window: u64,
    pub sent: u64,
    pub allowed: u64,
    pub denied: u64,
    pub errors: u64,
    pub unknown: u64,
    /// Allowed answers per node, in node order.
    pub allowed_by_node: Vec<u64>,
    /// Sum of the nodes' own allowed counts for the window, when all nodes answered.
    pub nodes_allowed: Option<u64>,
    pub finished_ms: u64,
}

/// Waits for the start of a window if the current one has less than half left,
/// so that the whole burst lands in one window.
pub async fn align_to_window(window_ms: u64) -> u64 {
    let now = crate::now_ms();
    let into = now % window_ms;
    if into > window_ms / 2 {
        tokio::time::sleep(Duration::from_millis(window_ms - into + 5)).await;
    }
    crate::now_ms() / window_ms
}

/// Sends the burst inside `window`, which the caller waited for with [`align_to_window`].
pub async fn run(
    http: reqwest::Client,
    acc: Arc<Accounting>,
    nodes: Vec<String>,
    key: String,
    limit: Limit,
    count: u64,
    window: u64,
) -> BurstRecord {
    let mut rec = BurstRecord {
        key: key.clone(),
        limit: limit.limit,
        window_ms: limit.window_ms,
        window,
        sent: count,
        allowed_by_node: vec![0; nodes.len()],
        ..BurstRecord::default()
    };
    for (i, c) in send(&acc, &nodes, &key, count).await.iter().enumerate() {
        rec.allowed += c.allowed;
        rec.denied += c.denied;
        rec.errors += c.errors;
        rec.unknown += c.unknown;
        rec.allowed_by_node[i] = c.allowed;
    }
    let views = join_all(nodes.iter().map(|url| {
        let http = http.clone();
        let url = format!("{url}/api/counters?key={key}");
        async move {
            let r = http
                .get(url)
                .timeout(Duration::from_millis(500))
                .send()
                .await
                .ok()?;
            r.json::<CountersView>().await.ok()
        }
    }))
    .await;
    rec.nodes_allowed = views
        .iter()
        .map(|v| v.as_ref().map(|v| v.window(window).allowed))
        .sum();
    rec.finished_ms = crate::now_ms();
    rec
}

/// A node's outcomes as the record counts them: rejected and not delivered are errors.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    allowed: u64,
    denied: u64,
    errors: u64,
    unknown: u64,
}

/// Sends `count` checks for `key`, check n to node n % nodes as a round robin
/// would, by at most [`MAX_CONCURRENCY`] workers; returns each node's counts.
async fn send(acc: &Arc<Accounting>, nodes: &[String], key: &str, count: u64) -> Vec<Counts> {
    if nodes.is_empty() {
        return Vec::new();
    }
    let body = check_body(key);
    let targets = join_all(nodes.iter().map(|url| Target::new(url, &body))).await;
    let n = nodes.len() as u64;
    let shares: Vec<u64> = (0..n)
        .map(|i| count / n + u64::from(i < count % n))
        .collect();
    for (i, share) in shares.iter().enumerate() {
        acc.start_many(i, *share);
    }
    let shared = Arc::new(Shared {
        acc: Arc::clone(acc),
        next: shares.iter().map(|s| (AtomicU64::new(0), *s)).collect(),
        count,
        finished: AtomicU64::new(0),
        all_finished: Notify::new(),
        counts: Mutex::new(vec![Counts::default(); nodes.len()]),
    });
    let mut workers = tokio::task::JoinSet::new();
    let mut per_node = vec![0u64; nodes.len()];
    // Interleaved over the nodes, so that every node's connections open at once.
    for w in 0..MAX_CONCURRENCY {
        let i = w % nodes.len();
        if per_node[i] == shares[i] {
            continue;
        }
        per_node[i] += 1;
        let tally = Tally::new(Arc::clone(&shared), i);
        workers.spawn(worker(targets[i].clone(), tally));
    }
    // Done when every check is, not when every worker is: a worker may still
    // be connecting, which holds no check.
    tokio::select! {
        _ = shared.all_finished.notified() => {}
        _ = async { while workers.join_next().await.is_some() {} } => {}
    }
    workers.abort_all();
    // Each worker's tally merges as its task drops, before its join ends.
    while workers.join_next().await.is_some() {}
    let counts = shared.counts.lock().unwrap_or_else(|p| p.into_inner());
    counts.clone()
}

/// What a burst's workers share.
struct Shared {
    acc: Arc<Accounting>,
    /// Per node: the next check number of its share, and the share.
    next: Vec<(AtomicU64, u64)>,
    /// The checks of the whole burst, and how many have an outcome.
    count: u64,
    finished: AtomicU64,
    all_finished: Notify,
    /// The workers' counts, added as each one ends.
    counts: Mutex<Vec<Counts>>,
}

impl Drop for Shared {
    /// Once no worker is left, also when the burst was stopped: takes back the
    /// checks of each share that no worker took (they were counted as sent).
    fn drop(&mut self) {
        for (i, (next, share)) in self.next.iter_mut().enumerate() {
            let taken = (*next.get_mut()).min(*share);
            if taken < *share {
                self.acc.withdraw_many(i, *share - taken);
            }
        }
    }
}

/// Sends checks to one node until its share is taken, over one connection
/// that is reopened when it fails.
async fn worker(target: Option<Arc<Target>>, mut tally: Tally) {
    let mut conn = None;
    loop {
        // Connected before taking a check, so that a slow connect holds none.
        let opening = match (&target, &conn) {
            (Some(t), None) => {
                let permit = t.opening.acquire().await.ok();
                conn = tokio::time::timeout(CONNECT_TIMEOUT, Conn::open(t))
                    .await
                    .ok()
                    .and_then(Result::ok);
                permit
            }
            _ => None,
        };
        let (next, share) = &tally.shared.next[tally.node];
        if next.fetch_add(1, Ordering::Relaxed) >= *share {
            return;
        }
        let (outcome, instance) = match &target {
            Some(t) if conn.is_some() => check(&mut conn, t).await,
            _ => (Outcome::NotDelivered, None),
        };
        // The node has accepted the connection, or it failed.
        drop(opening);
        tally.add(outcome, instance);
    }
}

/// One worker's outcomes: its totals for the record, and a batch not yet
/// merged into the shared accounting. Merged every [`MERGE_EVERY`] checks and
/// when dropped, so that a stopped burst still accounts for what it finished.
struct Tally {
    shared: Arc<Shared>,
    node: usize,
    batch: NodeTally,
    pending: u64,
    /// The node instance this worker last saw answering.
    instance: Option<u64>,
    counts: Counts,
}

impl Tally {
    fn new(shared: Arc<Shared>, node: usize) -> Tally {
        Tally {
            shared,
            node,
            batch: NodeTally::default(),
            pending: 0,
            instance: None,
            counts: Counts::default(),
        }
    }

    fn add(&mut self, outcome: Outcome, instance: Option<u64>) {
        if let Some(inst) = instance {
            self.instance = Some(inst);
            self.batch.last_instance = inst;
        }
        let (b, c) = (&mut self.batch, &mut self.counts);
        match outcome {
            Outcome::Allowed => (b.allowed, c.allowed) = (b.allowed + 1, c.allowed + 1),
            Outcome::Denied => (b.denied, c.denied) = (b.denied + 1, c.denied + 1),
            Outcome::Error => (b.errors, c.errors) = (b.errors + 1, c.errors + 1),
            Outcome::Unknown => (b.unknown, c.unknown) = (b.unknown + 1, c.unknown + 1),
            Outcome::Rejected => (b.rejected, c.errors) = (b.rejected + 1, c.errors + 1),
            Outcome::NotDelivered => {
                (b.not_delivered, c.errors) = (b.not_delivered + 1, c.errors + 1)
            }
        }
        // Uncertain outcomes before any answer stay uncharged: `finish_many`
        // charges them to the instance last seen by anyone.
        if let Some(inst) = self.instance {
            let a = b.by_instance.entry(inst).or_default();
            match outcome {
                Outcome::Allowed => a.allowed += 1,
                Outcome::Denied => a.denied += 1,
                Outcome::Error => a.errors += 1,
                Outcome::Unknown => a.unknown += 1,
                Outcome::Rejected | Outcome::NotDelivered => {}
            }
        }
        self.pending += 1;
        if self.pending == MERGE_EVERY {
            self.merge();
        }
        let s = &self.shared;
        if s.finished.fetch_add(1, Ordering::AcqRel) + 1 == s.count {
            s.all_finished.notify_one();
        }
    }

    fn merge(&mut self) {
        if self.pending == 0 {
            return;
        }
        self.shared.acc.finish_many(self.node, &self.batch);
        let mut by_instance = std::mem::take(&mut self.batch.by_instance);
        by_instance.clear();
        self.batch = NodeTally {
            by_instance,
            ..NodeTally::default()
        };
        self.pending = 0;
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.merge();
        let mut all = self.shared.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (t, c) = (&mut all[self.node], self.counts);
        t.allowed += c.allowed;
        t.denied += c.denied;
        t.errors += c.errors;
        t.unknown += c.unknown;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::load::Answered;

    fn shared(acc: &Arc<Accounting>, taken: u64, share: u64) -> Arc<Shared> {
        acc.start_many(0, share);
        Arc::new(Shared {
            acc: Arc::clone(acc),
            next: vec![(AtomicU64::new(taken), share)],
            count: share,
            finished: AtomicU64::new(0),
            all_finished: Notify::new(),
            counts: Mutex::new(vec![Counts::default()]),
        })
    }

    #[test]
    fn workers_merge_once_and_charge_uncertain_outcomes_to_the_instance_last_seen() {
        let acc = Arc::new(Accounting::new(1));
        let s = shared(&acc, 4, 4);
        let mut a = Tally::new(Arc::clone(&s), 0);
        a.add(Outcome::Allowed, Some(7));
        a.add(Outcome::Unknown, None);
        // Not merged before MERGE_EVERY checks or the end.
        assert_eq!(acc.snapshot(0).in_flight, 4);
        drop(a);
        // This worker's unknown came before it saw any instance answer.
        let mut b = Tally::new(Arc::clone(&s), 0);
        b.add(Outcome::Unknown, None);
        b.add(Outcome::NotDelivered, None);
        drop(b);
        let t = acc.snapshot(0);
        assert_eq!(
            (t.sent, t.in_flight, t.allowed, t.unknown, t.not_delivered),
            (4, 0, 1, 2, 1)
        );
        assert_eq!(t.last_instance, 7);
        let seven = Answered {
            allowed: 1,
            unknown: 2,
            ..Answered::default()
        };
        assert_eq!(t.by_instance.get(&7), Some(&seven));
        assert_eq!(t.by_instance.len(), 1);
        let c = s.counts.lock().unwrap()[0];
        assert_eq!((c.allowed, c.denied, c.errors, c.unknown), (1, 0, 1, 2));
        assert_eq!(s.finished.load(Ordering::Relaxed), 4);
        drop(s);
        assert_eq!(acc.snapshot(0).sent, 4, "every check was taken");
    }

    #[test]
    fn checks_no_worker_took_are_taken_back() {
        let acc = Arc::new(Accounting::new(1));
        let s = shared(&acc, 1, 10);
        let mut w = Tally::new(Arc::clone(&s), 0);
        w.add(Outcome::Denied, Some(3));
        drop((w, s));
        let t = acc.snapshot(0);
        assert_eq!((t.sent, t.in_flight, t.denied), (1, 0, 1));
    }
}
