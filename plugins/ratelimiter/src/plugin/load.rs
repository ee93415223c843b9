//! Checks the plugin sends (steady load and bursts) and their client-side
//! accounting, Jepsen-style: every attempt ends in exactly one outcome, and an
//! attempt whose fate is uncertain (timeout, reset) is `unknown`, not guessed.

use crate::wire::scrape::Scrape;
use crate::wire::{CheckRequest, CheckResponse};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Timeout of one check sent by the plugin.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied,
    /// The node answered that it could not decide (503).
    Error,
    /// The node refused the request as bad input (4xx other than 429); not a check.
    Rejected,
    /// Sent, but no answer: the node may or may not have counted it.
    Unknown,
    /// Never reached the node (connection refused).
    NotDelivered,
}

/// Answers of one node process (instance), as counted by the plugin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answered {
    pub allowed: u64,
    pub denied: u64,
    pub errors: u64,
    pub unknown: u64,
}

impl Answered {
    pub fn total(&self) -> u64 {
        self.allowed + self.denied + self.errors
    }
}

/// The plugin's accounting of the checks it sent to one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeTally {
    pub sent: u64,
    pub in_flight: u64,
    pub allowed: u64,
    pub denied: u64,
    pub errors: u64,
    pub rejected: u64,
    pub unknown: u64,
    pub not_delivered: u64,
    /// The node instance last seen answering; uncertain attempts are charged to it.
    pub last_instance: u64,
    pub by_instance: HashMap<u64, Answered>,
}

impl NodeTally {
    /// Adds `other`'s outcome counts (not what was sent or is in flight).
    pub fn add_outcomes(&mut self, other: &NodeTally) {
        self.allowed += other.allowed;
        self.denied += other.denied;
        self.errors += other.errors;
        self.unknown += other.unknown;
        self.rejected += other.rejected;
        self.not_delivered += other.not_delivered;
    }
}

#[derive(Debug, Default)]
pub struct Accounting(
    Mutex<Vec<NodeTally>>,
    Mutex<HashMap<(usize, u64), Answered>>,
);

impl Accounting {
    pub fn new(nodes: usize) -> Accounting {
        Accounting(
            Mutex::new(vec![NodeTally::default(); nodes]),
            Mutex::default(),
        )
    }

    /// Takes off a scrape of node `i` what its process had counted before
    /// anything of this instance reached it: an earlier host's load on a
    /// cluster that outlived it (a second demo against the same compose
    /// cluster, a killed host). Read at the first scrape of a process while
    /// the plugin has nothing in flight to it and no answer from it (`after`
    /// is the tally taken after that scrape); a process first scraped after
    /// ours reached it keeps a zero baseline, which never hides a check.
    pub fn exclude_foreign(&self, i: usize, scrape: &mut Scrape, after: &NodeTally) {
        let mut baselines = self.1.lock().unwrap_or_else(|p| p.into_inner());
        let untouched = after.in_flight == 0 && !after.by_instance.contains_key(&scrape.instance);
        let base = *baselines
            .entry((i, scrape.instance))
            .or_insert_with(|| match untouched {
                true => Answered {
                    allowed: scrape.allowed,
                    denied: scrape.denied,
                    errors: scrape.errors,
                    unknown: 0,
                },
                false => Answered::default(),
            });
        scrape.allowed = scrape.allowed.saturating_sub(base.allowed);
        scrape.denied = scrape.denied.saturating_sub(base.denied);
        scrape.errors = scrape.errors.saturating_sub(base.errors);
    }

    fn with<R>(&self, i: usize, f: impl FnOnce(&mut NodeTally) -> R) -> Option<R> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.get_mut(i).map(f)
    }

    pub fn snapshot(&self, i: usize) -> NodeTally {
        self.with(i, |t| t.clone()).unwrap_or_default()
    }

    pub fn all(&self) -> Vec<NodeTally> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn start(&self, i: usize) {
        self.with(i, |t| {
            t.sent += 1;
            t.in_flight += 1;
        });
    }

    /// Counts `n` checks to node `i` as sent and in flight at once, before a burst
    /// sends any: the bracket around a node scrape then stays an upper bound
    /// without a lock per check.
    pub fn start_many(&self, i: usize, n: u64) {
        self.with(i, |t| {
            t.sent += n;
            t.in_flight += n;
        });
    }

    /// Takes back `n` checks of a [`Accounting::start_many`] that were never sent
    /// (the burst was stopped first).
    pub fn withdraw_many(&self, i: usize, n: u64) {
        self.with(i, |t| {
            t.sent -= n;
            t.in_flight -= n;
        });
    }

    /// Accounts, under one lock, for checks to node `i` started with
    /// [`Accounting::start_many`] that a burst worker has finished. `done` holds
    /// their outcomes; its `by_instance` the answers per instance, and its
    /// `last_instance` the instance last seen answering when any answered.
    /// Unknown outcomes missing from `by_instance` came before the worker saw an
    /// instance: like in `finish`, they are charged to the last instance seen.
    pub fn finish_many(&self, i: usize, done: &NodeTally) {
        let answered = done.allowed + done.denied + done.errors;
        let n = answered + done.rejected + done.unknown + done.not_delivered;
        if n == 0 {
            return;
        }
        self.with(i, |t| {
            t.in_flight -= n;
            t.add_outcomes(done);
            let charged: u64 = done.by_instance.values().map(|a| a.unknown).sum();
            if done.unknown > charged {
                t.by_instance.entry(t.last_instance).or_default().unknown += done.unknown - charged;
            }
            for (inst, d) in &done.by_instance {
                let a = t.by_instance.entry(*inst).or_default();
                a.allowed += d.allowed;
                a.denied += d.denied;
                a.errors += d.errors;
                a.unknown += d.unknown;
            }
            if answered > 0 {
                t.last_instance = done.last_instance;
            }
        });
    }

    fn finish(&self, i: usize, outcome: Outcome, instance: Option<u64>) {
        self.with(i, |t| {
            t.in_flight -= 1;
            if let Some(inst) = instance {
                t.last_instance = inst;
            }
            let inst = t.last_instance;
            let a = t.by_instance.entry(inst).or_default();
            match outcome {
                Outcome::Allowed => {
                    t.allowed += 1;
                    a.allowed += 1;
                }
                Outcome::Denied => {
                    t.denied += 1;
                    a.denied += 1;
                }
                Outcome::Error => {
                    t.errors += 1;
                    a.errors += 1;
                }
                Outcome::Unknown => {
                    t.unknown += 1;
                    a.unknown += 1;
                }
                Outcome::Rejected => t.rejected += 1,
                Outcome::NotDelivered => t.not_delivered += 1,
            }
        });
    }
}

/// Sends one check for `key` to node `i` and accounts for its outcome.
pub async fn send_check(
    http: &reqwest::Client,
    acc: &Accounting,
    i: usize,
    url: &str,
    key: &str,
) -> Outcome {
    acc.start(i);
    let req = http
        .post(format!("{url}/check"))
        .timeout(CHECK_TIMEOUT)
        .json(&CheckRequest {
            key: key.to_string(),
        })
        .send()
        .await;
    let (outcome, instance) = match req {
        Err(e) if e.is_connect() => (Outcome::NotDelivered, None),
        Err(_) => (Outcome::Unknown, None),
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.json::<CheckResponse>().await {
                Ok(body) => {
                    let o = match status {
                        200 => Outcome::Allowed,
                        429 => Outcome::Denied,
                        _ => Outcome::Error,
                    };
                    (o, Some(body.instance))
                }
                Err(_) if (400..500).contains(&status) => (Outcome::Rejected, None),
                Err(_) => (Outcome::Unknown, None),
            }
        }
    };
    acc.finish(i, outcome, instance);
    outcome
}

/// Sends `rps` checks per second for `key`, round-robin over the nodes, until stopped.
/// Each check runs on its own task so that a stalled node does not slow the others.
pub async fn run(
    http: reqwest::Client,
    acc: Arc<Accounting>,
    nodes: Vec<String>,
    key: String,
    rps: u64,
    stop: Arc<AtomicBool>,
) {
    if rps == 0 || nodes.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next = 0usize;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let i = next % nodes.len();
        next += 1;
        let (http, acc, url, key) = (
            http.clone(),
            Arc::clone(&acc),
            nodes[i].clone(),
            key.clone(),
        );
        tokio::spawn(async move {
            send_check(&http, &acc, i, &url, &key).await;
        });
    }
}
