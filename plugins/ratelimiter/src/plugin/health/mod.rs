//! The poller: every `poll_ms` it asks each node (health, metrics, counters)
//! and Redis itself, each with a short timeout, and keeps the latest
//! observation. `health()` only reads what the poller stored, so it returns
//! at once however slow or dead a node is, and one node down never blinds it.

use super::invariants::{
    self, DriftMeasure, GhostEvidence, NodeLink, NodeObs, Observation, RedisObs, LINK_POLLS,
};
use super::Shared;
use crate::wire::scrape::{quantile, Scrape};
use crate::wire::Mode;
use crate::wire::{keys, CountersView, HealthView};
use futures::future::join_all;
use plugin_api::{
    ComponentKind, Event, HealthSnapshot, Invariant, Level, Metric, NodeHealth, NodeStatus,
};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod snapshot;
pub use snapshot::{event, snapshot};

const NODE_TIMEOUT: Duration = Duration::from_millis(400);
const REDIS_TIMEOUT: Duration = Duration::from_millis(300);
/// Rates and latency quantiles are computed over about this span.
const RATE_SPAN_MS: u64 = 1000;

/// Cluster-wide totals of one poll, kept for rates.
#[derive(Debug, Clone)]
struct Sample {
    at_ms: u64,
    allowed: u64,
    denied: u64,
    errors: u64,
    buckets: Vec<u64>,
}

#[derive(Default)]
pub struct PollState {
    pub latest: Option<Observation>,
    pub drift: Option<DriftMeasure>,
    pub drift_over_before: bool,
    samples: VecDeque<Sample>,
    pub evidence: Vec<GhostEvidence>,
    node_up: Vec<Option<bool>>,
    first_instance: Vec<Option<u64>>,
    /// Each node's latest pings to Redis (from its `/health`), oldest first.
    pings: Vec<VecDeque<Option<f64>>>,
    cut_before: Vec<bool>,
}

impl PollState {
    /// Each node of `obs` with its way to Redis as the polls so far saw it.
    pub fn links(&self, obs: &Observation) -> Vec<NodeLink> {
        obs.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| NodeLink {
                id: n.id.clone(),
                answering: n.up(),
                pings: self
                    .pings
                    .get(i)
                    .map(|p| p.iter().copied().collect())
                    .unwrap_or_default(),
                flushes_failing: n.health.as_ref().is_some_and(|h| h.partitioned),
            })
            .collect()
    }

    /// Keeps the latest ping of each answering node; a node that does not
    /// answer starts afresh (it may come back as another process).
    fn remember_pings(&mut self, obs: &Observation) {
        self.pings.resize(obs.nodes.len(), VecDeque::new());
        for (n, pings) in obs.nodes.iter().zip(self.pings.iter_mut()) {
            match &n.health {
                None => pings.clear(),
                Some(h) => {
                    let rtt = if h.redis_reachable {
                        Some(h.redis_latency_ms.unwrap_or(0.0))
                    } else {
                        None
                    };
                    pings.push_back(rtt);
                    while pings.len() > LINK_POLLS {
                        pings.pop_front();
                    }
                }
            }
        }
    }
}

pub async fn poll_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(shared.cfg.poll_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        poll_once(&shared).await;
    }
}

/// One observation, recorded. Setup runs one before any check is sent, so
/// each node's counts from before this instance (a cluster that outlived
/// an earlier host) become its baseline (`Accounting::exclude_foreign`).
pub async fn poll_once(shared: &Shared) {
    let mut obs = observe(shared).await;
    mark_restarts(shared, &mut obs);
    record(shared, obs);
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: String,
) -> Result<T, String> {
    let r = http
        .get(url)
        .timeout(NODE_TIMEOUT)
        .send()
        .await
        .map_err(|e| short(&e))?;
    r.json::<T>().await.map_err(|e| short(&e))
}

fn short(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused".into()
    } else {
        e.to_string()
    }
}

pub async fn observe(shared: &Shared) -> Observation {
    let urls = shared.node_urls();
    let watched = shared.watched_keys();
    let node_obs = join_all(
        urls.iter()
            .enumerate()
            .map(|(i, url)| observe_node(shared, i, url, &watched)),
    );
    let (mut nodes, redis) = tokio::join!(node_obs, ping_redis(shared));
    // Redis's counts are read between two reads of the nodes' counters, so that
    // a flush landing meanwhile stays inside the bounds `invariants::measure_drift`
    // sets: Redis holds at least what was acknowledged before, at most what was allowed after.
    let redis = read_counts(shared, redis, &watched).await;
    if !redis.counts.is_empty() {
        // Not from a node that cannot reach Redis: its counters answer only
        // after their own Redis read times out, which would hold the whole
        // poll (and the detection of that very cut) a Redis timeout longer.
        // Its drift then has only the lower bound, which is what matters for
        // a node whose increments are not landing.
        let second = |n: &NodeObs| n.health.as_ref().is_some_and(|h| h.redis_reachable);
        let after = join_all(
            urls.iter()
                .zip(&nodes)
                .filter(|(_, n)| second(n))
                .map(|(url, _)| read_counters(&shared.http, url, &watched)),
        )
        .await;
        for (n, counters) in nodes.iter_mut().filter(|n| second(n)).zip(after) {
            n.counters_after = counters;
        }
    }
    Observation {
        at_ms: crate::now_ms(),
        nodes,
        redis,
    }
}

async fn observe_node(shared: &Shared, i: usize, url: &str, watched: &[String]) -> NodeObs {
    let http = &shared.http;
    let tally_before = shared.acc.snapshot(i);
    let scrape = async {
        let r = http
            .get(format!("{url}/metrics"))
            .timeout(NODE_TIMEOUT)
            .send()
            .await
            .ok()?;
        Some(Scrape::parse(&r.text().await.ok()?))
    }
    .await;
    let tally_after = shared.acc.snapshot(i);
    let scrape = scrape.map(|mut s| {
        shared.acc.exclude_foreign(i, &mut s, &tally_after);
        s
    });
    let health = get_json::<HealthView>(http, format!("{url}/health"));
    let (health, counters) = tokio::join!(health, read_counters(http, url, watched));
    NodeObs {
        id: format!("node-{}", i + 1),
        url: url.to_string(),
        error: health.as_ref().err().cloned(),
        health: health.ok(),
        scrape,
        tally_before,
        tally_after,
        counters,
        counters_after: HashMap::new(),
        restarted: false,
    }
}

/// The node's view of each watched key; a key it did not answer for is left out.
async fn read_counters(
    http: &reqwest::Client,
    url: &str,
    watched: &[String],
) -> HashMap<String, CountersView> {
    join_all(watched.iter().map(|k| async move {
        let c = get_json::<CountersView>(http, format!("{url}/api/counters?key={k}")).await;
        c.ok().map(|c| (k.clone(), c))
    }))
    .await
    .into_iter()
    .flatten()
    .collect()
}

async fn ping_redis(shared: &Shared) -> RedisObs {
    let Some(mut conn) = shared.redis_read() else {
        return RedisObs {
            error: Some("not connected yet".into()),
            ..RedisObs::default()
        };
    };
    let start = Instant::now();
    let ping = tokio::time::timeout(
        REDIS_TIMEOUT,
        redis::cmd("PING").query_async::<String>(&mut conn),
    )
    .await;
    let latency = start.elapsed().as_secs_f64() * 1000.0;
    let error = match ping {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {REDIS_TIMEOUT:?}")),
    };
    RedisObs {
        reachable: error.is_none(),
        latency_ms: error.is_none().then_some(latency),
        error,
        ..RedisObs::default()
    }
}

/// What Redis holds for each watched key, when it answered the PING.
async fn read_counts(shared: &Shared, mut obs: RedisObs, watched: &[String]) -> RedisObs {
    if !obs.reachable || watched.is_empty() {
        return obs;
    }
    let Some(mut conn) = shared.redis_read() else {
        return obs;
    };
    let window_ms = shared.cfg.window_ms;
    let current = crate::now_ms() / window_ms;
    let mut pipe = redis::pipe();
    let mut asked = Vec::new();
    // A window that began before a remedy switched the counting mode holds
    // counts of both modes: it is not compared.
    let judged = |w: u64| w * window_ms >= super::remedy::reconfig(shared).since_ms;
    for k in watched {
        match shared.mode() {
            Mode::Strict if !judged(current) => {}
            Mode::Cached => {
                for w in [current.saturating_sub(1), current]
                    .into_iter()
                    .filter(|w| judged(*w))
                {
                    pipe.cmd("GET").arg(keys::window_counter(k, w));
                    asked.push((k.clone(), w));
                }
            }
            Mode::Strict => {
                let start = current * window_ms;
                pipe.cmd("ZCOUNT")
                    .arg(keys::strict_log(k))
                    .arg(start)
                    .arg(format!("({}", start + window_ms));
                asked.push((k.clone(), current));
            }
        }
    }
    if let Ok(Ok(values)) = tokio::time::timeout(
        REDIS_TIMEOUT,
        pipe.query_async::<Vec<Option<u64>>>(&mut conn),
    )
    .await
    {
        obs.counts = asked
            .into_iter()
            .zip(values)
            .map(|(k, v)| (k, v.unwrap_or(0)))
            .collect();
    }
    obs
}

/// Flags nodes whose process changed since the plugin first saw them.
fn mark_restarts(shared: &Shared, obs: &mut Observation) {
    let mut st = shared.poll();
    st.first_instance.resize(obs.nodes.len(), None);
    for (n, first) in obs.nodes.iter_mut().zip(st.first_instance.iter_mut()) {
        if let Some(h) = &n.health {
            let first = *first.get_or_insert(h.instance);
            n.restarted = first != h.instance;
        }
    }
}

fn record(shared: &Shared, obs: Observation) {
    let settings = shared.settings();
    let mut measure = invariants::measure_drift(&obs, &settings);
    // Only keys still watched: a poll that began before a burst was recovered
    // and forgotten must not bring its evidence back.
    let watched = shared.watched_keys();
    let new_evidence: Vec<_> = invariants::ghost_evidence(&obs)
        .into_iter()
        .filter(|e| watched.contains(&e.key))
        .collect();
    let mut events = Vec::new();
    let mut node_events: Vec<(Level, String, String)> = Vec::new();
    {
        let mut st = shared.poll();
        st.node_up.resize(obs.nodes.len(), None);
        for (n, was) in obs.nodes.iter().zip(st.node_up.iter_mut()) {
            if *was != Some(n.up()) {
                if was.is_some() {
                    events.push(if n.up() {
                        (Level::Info, format!("{} answers again", n.id))
                    } else {
                        (
                            Level::Warn,
                            format!(
                                "{} stopped answering: {}",
                                n.id,
                                n.error.as_deref().unwrap_or("?")
                            ),
                        )
                    });
                }
                *was = Some(n.up());
            }
        }
        st.remember_pings(&obs);
        let links = st.links(&obs);
        let cut: Vec<String> = if obs.redis.reachable {
            links
                .iter()
                .filter(|l| l.cut())
                .map(|l| l.id.clone())
                .collect()
        } else {
            Vec::new()
        };
        invariants::attribute_drift(&mut measure, &cut);
        st.cut_before.resize(links.len(), false);
        for (l, was) in links.iter().zip(st.cut_before.iter_mut()) {
            let now = cut.contains(&l.id);
            if now != *was {
                node_events.push(if now {
                    (
                        Level::Warn,
                        format!(
                            "{} cannot reach redis (its pings fail) while redis answers the plugin",
                            l.id
                        ),
                        l.id.clone(),
                    )
                } else {
                    (
                        Level::Info,
                        format!("{} reaches redis again", l.id),
                        l.id.clone(),
                    )
                });
                *was = now;
            }
        }
        st.drift_over_before = st
            .drift
            .as_ref()
            .is_some_and(|d| invariants::drift_over(d, &settings));
        st.drift = Some(measure);
        let hold = settings.hold_ms;
        st.evidence
            .retain(|e| obs.at_ms.saturating_sub(e.at_ms) <= hold);
        for e in new_evidence {
            match st
                .evidence
                .iter_mut()
                .find(|x| x.key == e.key && x.window == e.window)
            {
                Some(x) if x.allowed >= e.allowed => {}
                Some(x) => *x = e,
                None => st.evidence.push(e),
            }
        }
        let up: Vec<&Scrape> = obs.nodes.iter().filter_map(|n| n.scrape.as_ref()).collect();
        let mut sample = Sample {
            at_ms: obs.at_ms,
            allowed: up.iter().map(|s| s.allowed).sum(),
            denied: up.iter().map(|s| s.denied).sum(),
            errors: up.iter().map(|s| s.errors).sum(),
            buckets: vec![0; crate::wire::scrape::BUCKETS.len() + 1],
        };
        let width = sample.buckets.len();
        for s in up.iter().filter(|s| s.check_buckets.len() == width) {
            for (b, v) in sample.buckets.iter_mut().zip(&s.check_buckets) {
                *b += v;
            }
        }
        st.samples.push_back(sample);
        while st.samples.len() > 2 && st.samples[1].at_ms + RATE_SPAN_MS <= obs.at_ms {
            st.samples.pop_front();
        }
        st.latest = Some(obs);
    }
    for (level, msg) in events {
        shared.event(level, msg);
    }
    for (level, msg, node) in node_events {
        shared.event_on(level, msg, Some(node));
    }
}
