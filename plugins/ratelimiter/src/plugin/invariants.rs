//! The invariants, computed from one observation of the cluster plus the
//! plugin's own accounting. Pure functions, so each verdict can be shown to
//! pass and to fail on constructed observations as well as on a live cluster.

use super::burst::BurstRecord;
use super::load::NodeTally;
use crate::wire::scrape::Scrape;
use crate::wire::Mode;
use crate::wire::{CountersView, HealthView};
use plugin_api::{AnomalyClass, Invariant, InvariantStatus};
use std::collections::HashMap;

pub const COUNTER_DRIFT: &str = "counter drift";
pub const GHOST_ALLOWING: &str = "ghost allowing";
pub const CONSERVATION: &str = "conservation";
pub const NODE_DOWN: &str = "node down";
pub const REDIS_DOWN: &str = "redis down";
pub const REDIS_LATENCY: &str = "redis latency";
pub const NODE_CUT_OFF: &str = "node cut off";

/// How many of a node's latest pings to Redis its round trip is judged on.
pub const LINK_POLLS: usize = 5;
/// Answered pings among them needed for a round trip: a median of at least
/// three, so that one slow answer on a busy machine is not a slow link.
const LINK_MIN_ANSWERED: usize = 3;

/// One node's way to Redis, as its `/health` reports it poll after poll (the
/// node PINGs Redis over its own connection, so through its proxy route).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeLink {
    pub id: String,
    /// The node answered its latest `/health`.
    pub answering: bool,
    /// Its latest pings to Redis, oldest first: the round trip in ms, or
    /// `None` when it failed or timed out.
    pub pings: Vec<Option<f64>>,
    /// It says its flushes fail (cached mode's partitioned flag).
    pub flushes_failing: bool,
}

impl NodeLink {
    /// The median round trip of its answered pings among the last
    /// [`LINK_POLLS`], when at least three answered.
    pub fn rtt_ms(&self) -> Option<f64> {
        let start = self.pings.len().saturating_sub(LINK_POLLS);
        let mut ok: Vec<f64> = self.pings[start..].iter().flatten().copied().collect();
        if ok.len() < LINK_MIN_ANSWERED {
            return None;
        }
        ok.sort_by(f64::total_cmp);
        Some(ok[ok.len() / 2])
    }

    /// Answering, but its latest ping to Redis failed, and so did the one
    /// before or its flushes: one failed ping alone may be a busy machine.
    pub fn cut(&self) -> bool {
        let failed = |back: usize| {
            self.pings
                .len()
                .checked_sub(back)
                .and_then(|i| self.pings.get(i))
                .is_some_and(Option::is_none)
        };
        self.answering && failed(1) && (failed(2) || self.flushes_failing)
    }
}

/// One node as seen by one poll.
#[derive(Debug, Clone, Default)]
pub struct NodeObs {
    pub id: String,
    pub url: String,
    pub health: Option<HealthView>,
    pub error: Option<String>,
    pub scrape: Option<Scrape>,
    /// The plugin's accounting for this node just before and just after `/metrics` was read.
    pub tally_before: NodeTally,
    pub tally_after: NodeTally,
    pub counters: HashMap<String, CountersView>,
    /// The same views read again after Redis's counts (empty when not read).
    pub counters_after: HashMap<String, CountersView>,
    /// The node runs a different process than when the plugin first saw it.
    pub restarted: bool,
}

impl NodeObs {
    pub fn up(&self) -> bool {
        self.health.is_some()
    }
}

#[derive(Debug, Clone, Default)]
pub struct RedisObs {
    pub reachable: bool,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    /// What Redis holds per (key, window): the window counter (cached) or the
    /// entries of the sliding log inside the window (strict).
    pub counts: HashMap<(String, u64), u64>,
}

#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub at_ms: u64,
    pub nodes: Vec<NodeObs>,
    pub redis: RedisObs,
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub mode: Mode,
    pub flush_ms: u64,
    pub drift_tolerance: u64,
    pub hold_ms: u64,
}

fn inv(
    name: &str,
    class: AnomalyClass,
    status: InvariantStatus,
    detail: String,
    at: u64,
) -> Invariant {
    Invariant {
        name: name.into(),
        status,
        detail,
        since_ms: at,
        class,
        components: vec![],
        observed: None,
        bound: None,
        ..Default::default()
    }
}

fn ok_if(violated: bool) -> InvariantStatus {
    if violated {
        InvariantStatus::Violated
    } else {
        InvariantStatus::Ok
    }
}

pub fn node_down(obs: &Observation) -> Invariant {
    let down: Vec<&NodeObs> = obs.nodes.iter().filter(|n| !n.up()).collect();
    let detail = if down.is_empty() {
        format!("all {} nodes answer /health", obs.nodes.len())
    } else {
        down.iter()
            .map(|n| {
                format!(
                    "{} ({}) does not answer: {}",
                    n.id,
                    n.url,
                    n.error.as_deref().unwrap_or("no answer")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut i = inv(
        NODE_DOWN,
        AnomalyClass::NodeDown,
        ok_if(!down.is_empty()),
        detail,
        obs.at_ms,
    );
    i.components = down.iter().map(|n| n.id.clone()).collect();
    i.observed = Some(down.len() as f64);
    i.bound = Some(0.0);
    i
}

pub fn redis_down(obs: &Observation) -> Invariant {
    let r = &obs.redis;
    let detail = if r.reachable {
        format!(
            "redis answers PING in {:.1} ms",
            r.latency_ms.unwrap_or(0.0)
        )
    } else {
        format!(
            "redis does not answer PING: {}",
            r.error.as_deref().unwrap_or("no answer")
        )
    };
    let mut i = inv(
        REDIS_DOWN,
        AnomalyClass::DependencyDown,
        ok_if(!r.reachable),
        detail,
        obs.at_ms,
    );
    if !r.reachable {
        i.components = vec!["redis".into()];
    }
    i
}

/// `redis latency`: violated while a node's median round trip to Redis is
/// above the bound. When every measured node is slow at once the component
/// is `redis` (the store, or the way every node takes to it); otherwise the
/// slow nodes, whose own links are slow. Unknown while Redis does not answer
/// the plugin: then `redis down` speaks.
pub fn redis_latency(
    links: &[NodeLink],
    bound_ms: f64,
    redis_reachable: bool,
    at: u64,
) -> Invariant {
    let measured: Vec<(&NodeLink, f64)> = links
        .iter()
        .filter(|l| l.answering)
        .filter_map(|l| l.rtt_ms().map(|r| (l, r)))
        .collect();
    let readings = measured
        .iter()
        .map(|(l, r)| format!("{} {r:.1} ms", l.id))
        .collect::<Vec<_>>()
        .join(", ");
    let (status, detail) = if !redis_reachable {
        (
            InvariantStatus::Unknown,
            "redis does not answer the plugin, so the nodes' round trips say nothing of a slow link".to_string(),
        )
    } else if measured.is_empty() {
        (
            InvariantStatus::Unknown,
            format!("no node has {LINK_MIN_ANSWERED} answered pings to redis among its last {LINK_POLLS}"),
        )
    } else {
        let slow = measured.iter().filter(|(_, r)| *r > bound_ms).count();
        let verdict = if slow == 0 {
            "all within the bound".to_string()
        } else if slow == measured.len() && measured.len() > 1 {
            "every node at once: redis, or the way every node takes to it".to_string()
        } else {
            "only these nodes' links".to_string()
        };
        (
            ok_if(slow > 0),
            format!("round trip to redis (median of the last {LINK_POLLS} pings): {readings}; bound {bound_ms} ms; {verdict}"),
        )
    };
    let mut i = inv(
        REDIS_LATENCY,
        AnomalyClass::LatencySpike,
        status,
        detail,
        at,
    );
    if status == InvariantStatus::Violated {
        let slow: Vec<String> = measured
            .iter()
            .filter(|(_, r)| *r > bound_ms)
            .map(|(l, _)| l.id.clone())
            .collect();
        i.components = if slow.len() == measured.len() && measured.len() > 1 {
            vec!["redis".into()]
        } else {
            slow
        };
    }
    i.observed = measured.iter().map(|(_, r)| *r).reduce(f64::max);
    i.bound = Some(bound_ms);
    i
}

/// `node cut off`: violated while a node answers its clients but not Redis's
/// pings, and Redis answers the plugin. Unknown when Redis does not answer
/// the plugin (an outage, not a cut) and when every answering node lost Redis
/// at once (a shared cause: one node cut off cannot explain the others).
pub fn node_cut_off(links: &[NodeLink], redis_reachable: bool, at: u64) -> Invariant {
    let answering = links.iter().filter(|l| l.answering).count();
    let cut: Vec<&NodeLink> = links.iter().filter(|l| l.cut()).collect();
    let names = cut
        .iter()
        .map(|l| l.id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let (status, detail) = if !redis_reachable {
        (
            InvariantStatus::Unknown,
            "redis does not answer the plugin either, so a node cut off cannot be told from redis down".to_string(),
        )
    } else if cut.is_empty() {
        (
            InvariantStatus::Ok,
            format!("every answering node ({answering}) reaches redis"),
        )
    } else if cut.len() == answering && answering > 1 {
        (
            InvariantStatus::Unknown,
            format!("every answering node ({names}) lost redis at once while it answers the plugin: a shared cause, not one node"),
        )
    } else {
        (
            InvariantStatus::Violated,
            if cut.len() == 1 {
                format!("{names} answers its clients but its pings to redis fail, while redis answers the plugin and the other nodes")
            } else {
                format!("{names} answer their clients but their pings to redis fail, while redis answers the plugin and the other nodes")
            },
        )
    };
    let mut i = inv(
        NODE_CUT_OFF,
        AnomalyClass::StateDivergence,
        status,
        detail,
        at,
    );
    if status == InvariantStatus::Violated {
        i.components = cut.iter().map(|l| l.id.clone()).collect();
    }
    i.observed = Some(cut.len() as f64);
    i.bound = Some(0.0);
    i
}

/// A drift whose stuck nodes are all cut off from a Redis that answers
/// everyone else is theirs, not Redis's: the components become those nodes.
pub fn attribute_drift(m: &mut DriftMeasure, cut: &[String]) {
    let stuck: Vec<&String> = m.components.iter().filter(|c| *c != "redis").collect();
    if m.stuck && !stuck.is_empty() && stuck.iter().all(|c| cut.contains(c)) {
        m.components.retain(|c| c != "redis");
        m.detail.push_str(&format!(
            "; {} cut off from redis, which answers the others",
            m.components.join(", ")
        ));
    }
}

/// A node counts as flushing normally when it says so and acknowledged a
/// flush recently; its pending increments are then legitimately in flight.
fn flushing_normally(c: &CountersView, s: &Settings, now: u64) -> bool {
    if s.mode == Mode::Strict {
        return true;
    }
    let stale_after = 4 * s.flush_ms + 250;
    // Before its first flush a node is judged by its own flag alone.
    !c.partitioned
        && c.last_flush_ok_ms
            .is_none_or(|t| now.saturating_sub(t) <= stale_after)
}

/// One measurement of counter drift (before the persistence rule).
#[derive(Debug, Clone, PartialEq)]
pub struct DriftMeasure {
    /// None when it cannot be measured (the detail says why).
    pub drift: Option<i64>,
    pub detail: String,
    pub components: Vec<String>,
    /// Whether a node in the worst window is not flushing normally: its pending
    /// increments are then stuck, not in flight, so one poll is evidence enough.
    pub stuck: bool,
}

impl DriftMeasure {
    /// Not measurable; `detail` says why.
    pub fn unknown(detail: impl Into<String>) -> DriftMeasure {
        DriftMeasure {
            drift: None,
            detail: detail.into(),
            components: vec![],
            stuck: false,
        }
    }
}

/// How far Redis's counter lies outside what the nodes account for, per key
/// and window. Redis must hold at least what it acknowledged to nodes flushing
/// normally (their pending increments are in flight) plus everything a
/// partitioned node allowed (its increments are not reaching Redis), and at
/// most what the nodes allowed. The poller reads Redis between two reads of the
/// nodes and takes the lower bound from the first and the upper from the
/// second, so a flush landing between the reads stays inside the bounds; the
/// drift is positive below the lower bound (increments lost) and negative
/// above the upper one (Redis counted more than was allowed).
pub fn measure_drift(obs: &Observation, s: &Settings) -> DriftMeasure {
    if !obs.redis.reachable {
        return DriftMeasure::unknown("redis does not answer, so its counters cannot be compared");
    }
    if let Some(n) = obs.nodes.iter().find(|n| !n.up()) {
        return DriftMeasure::unknown(format!(
            "{} does not answer, so its local counts are unknown",
            n.id
        ));
    }
    let mut worst: Option<(i64, String, Vec<String>, bool)> = None;
    let keys: Vec<&String> = obs.redis.counts.keys().map(|(k, _)| k).collect();
    for ((key, window), redis_count) in &obs.redis.counts {
        let mut at_least = 0i64;
        // None when a node's second read is missing: only the lower bound is then known.
        let mut at_most = Some(0i64);
        let mut partitioned = Vec::new();
        let mut pending_stuck = 0u64;
        let mut complete = true;
        for n in &obs.nodes {
            let Some(c) = n.counters.get(key) else {
                complete = false;
                break;
            };
            let Some(limit) = c.limit else {
                complete = false;
                break;
            };
            if n.restarted && c.instance > window * limit.window_ms {
                // The node (re)started inside this window: an earlier process's counts are gone.
                complete = false;
                break;
            }
            let w = c.window(*window);
            let after = n
                .counters_after
                .get(key)
                .filter(|a| a.instance == c.instance)
                .map(|a| a.window(*window).allowed as i64);
            at_most = at_most.zip(after).map(|(sum, a)| sum + a);
            if flushing_normally(c, s, obs.at_ms) {
                at_least += w.flushed as i64;
            } else {
                at_least += w.allowed as i64;
                pending_stuck += w.pending;
                partitioned.push(n.id.clone());
            }
        }
        if !complete {
            continue;
        }
        let held = *redis_count as i64;
        let above = at_most.map_or(0, |m| (held - m).max(0));
        let drift = (at_least - held).max(0) - above;
        let accounted = match at_most {
            Some(m) if m == at_least => m.to_string(),
            Some(m) => format!("{at_least} to {m}"),
            None => format!("at least {at_least}"),
        };
        let detail = format!(
            "key `{key}` window {window}: the nodes account for {accounted}, redis holds {held} (drift {drift:+}){}",
            if partitioned.is_empty() {
                String::new()
            } else {
                format!("; {} partitioned with {pending_stuck} increments not flushed", partitioned.join(", "))
            }
        );
        if worst.as_ref().is_none_or(|(d, ..)| drift.abs() > d.abs()) {
            let stuck = !partitioned.is_empty();
            let mut components = vec!["redis".to_string()];
            components.extend(partitioned);
            worst = Some((drift, detail, components, stuck));
        }
    }
    match worst {
        Some((drift, detail, components, stuck)) => DriftMeasure {
            drift: Some(drift),
            detail,
            components,
            stuck,
        },
        None if keys.is_empty() => DriftMeasure::unknown("no watched key has counts yet"),
        None => DriftMeasure::unknown(
            "a node restarted inside every watched window; its earlier counts are gone",
        ),
    }
}

/// `counter drift` is violated when the drift is beyond the tolerance in this
/// poll alone if a node's increments are stuck (it is partitioned), and
/// otherwise in this and the previous poll, so that one odd reading (a key
/// expiring between the reads, a flag that lags) is not called a drift.
pub fn counter_drift(now: &DriftMeasure, previous_over: bool, s: &Settings, at: u64) -> Invariant {
    let over = now
        .drift
        .is_some_and(|d| d.unsigned_abs() > s.drift_tolerance);
    let status = match now.drift {
        None => InvariantStatus::Unknown,
        Some(_) => ok_if(over && (previous_over || now.stuck)),
    };
    let mut i = inv(
        COUNTER_DRIFT,
        AnomalyClass::StateDivergence,
        status,
        format!("{} (tolerance {})", now.detail, s.drift_tolerance),
        at,
    );
    if status == InvariantStatus::Violated {
        i.components = now.components.clone();
    }
    i.observed = now.drift.map(|d| d.unsigned_abs() as f64);
    i.bound = Some(s.drift_tolerance as f64);
    i
}

pub fn drift_over(now: &DriftMeasure, s: &Settings) -> bool {
    now.drift
        .is_some_and(|d| d.unsigned_abs() > s.drift_tolerance)
}

/// An over-allowance seen in the nodes' own counters.
#[derive(Debug, Clone, PartialEq)]
pub struct GhostEvidence {
    pub key: String,
    pub window: u64,
    pub allowed: u64,
    pub limit: u64,
    pub nodes: Vec<String>,
    pub at_ms: u64,
}

/// Windows in which the nodes together allowed more than the limit.
pub fn ghost_evidence(obs: &Observation) -> Vec<GhostEvidence> {
    let mut sums: HashMap<(String, u64), (u64, u64, Vec<String>)> = HashMap::new();
    for n in obs.nodes.iter().filter(|n| n.up()) {
        for (key, c) in &n.counters {
            let Some(limit) = c.limit else { continue };
            for w in &c.windows {
                let e = sums
                    .entry((key.clone(), w.window))
                    .or_insert((0, limit.limit, vec![]));
                e.0 += w.allowed;
                if w.allowed > 0 {
                    e.2.push(n.id.clone());
                }
            }
        }
    }
    sums.into_iter()
        .filter(|(_, (allowed, limit, _))| allowed > limit)
        .map(|((key, window), (allowed, limit, nodes))| GhostEvidence {
            key,
            window,
            allowed,
            limit,
            nodes,
            at_ms: obs.at_ms,
        })
        .collect()
}

/// Violated when, within the hold period, a burst got more allowed answers
/// than the limit in one window, or the nodes' counters summed beyond it.
pub fn ghost_allowing(
    obs: &Observation,
    bursts: &[BurstRecord],
    evidence: &[GhostEvidence],
    s: &Settings,
) -> Invariant {
    let recent = |t: u64| obs.at_ms.saturating_sub(t) <= s.hold_ms;
    let node_ids: Vec<String> = obs.nodes.iter().map(|n| n.id.clone()).collect();
    let mut worst: Option<(u64, u64, String, Vec<String>)> = None;
    for b in bursts.iter().filter(|b| recent(b.finished_ms)) {
        let seen = b.allowed.max(b.nodes_allowed.unwrap_or(0));
        if seen > b.limit && worst.as_ref().is_none_or(|w| seen > w.0) {
            let nodes = b
                .allowed_by_node
                .iter()
                .enumerate()
                .filter(|(_, a)| **a > 0)
                .filter_map(|(i, _)| node_ids.get(i).cloned())
                .collect();
            let detail = format!(
                "burst on `{}`: {} checks sent in one {} ms window, {} allowed (the nodes counted {}) against a limit of {}",
                b.key,
                b.sent,
                b.window_ms,
                b.allowed,
                b.nodes_allowed.map_or("?".into(), |n| n.to_string()),
                b.limit
            );
            worst = Some((seen, b.limit, detail, nodes));
        }
    }
    for e in evidence.iter().filter(|e| recent(e.at_ms)) {
        if e.allowed > e.limit && worst.as_ref().is_none_or(|w| e.allowed > w.0) {
            let detail = format!(
                "key `{}` window {}: the nodes allowed {} together against a limit of {} ({})",
                e.key,
                e.window,
                e.allowed,
                e.limit,
                e.nodes.join(", ")
            );
            worst = Some((e.allowed, e.limit, detail, e.nodes.clone()));
        }
    }
    match worst {
        Some((seen, limit, detail, nodes)) => {
            let mut i = inv(
                GHOST_ALLOWING,
                AnomalyClass::BoundExceeded,
                InvariantStatus::Violated,
                detail,
                obs.at_ms,
            );
            i.components = nodes;
            i.observed = Some(seen as f64);
            i.bound = Some(limit as f64);
            i
        }
        None => {
            let down = obs.nodes.iter().any(|n| !n.up());
            let (status, detail) = if down {
                (
                    InvariantStatus::Unknown,
                    "a node does not answer, so the cluster's allowed count is incomplete"
                        .to_string(),
                )
            } else {
                (
                    InvariantStatus::Ok,
                    "no window had more checks allowed than its limit".to_string(),
                )
            };
            inv(
                GHOST_ALLOWING,
                AnomalyClass::BoundExceeded,
                status,
                detail,
                obs.at_ms,
            )
        }
    }
}

/// Per node: what the node says it answered must lie between what the plugin
/// saw answered before the scrape and what it had sent (answered, uncertain or
/// in flight) after it.
pub fn conservation(obs: &Observation) -> Invariant {
    let mut bad = Vec::new();
    let mut details = Vec::new();
    let mut unknown = false;
    let mut worst = 0u64;
    for n in &obs.nodes {
        let Some(s) = &n.scrape else {
            unknown = true;
            details.push(format!("{}: no metrics", n.id));
            continue;
        };
        let before = n
            .tally_before
            .by_instance
            .get(&s.instance)
            .copied()
            .unwrap_or_default();
        let after = n
            .tally_after
            .by_instance
            .get(&s.instance)
            .copied()
            .unwrap_or_default();
        let server = s.allowed + s.denied + s.errors;
        let low = before.total();
        let high = after.total() + after.unknown + n.tally_after.in_flight;
        let allowed_ok = s.allowed >= before.allowed
            && s.allowed <= after.allowed + after.unknown + n.tally_after.in_flight;
        if server < low || server > high || !allowed_ok {
            let off = if server < low {
                low - server
            } else {
                server.saturating_sub(high)
            };
            worst = worst.max(off.max(1));
            bad.push(n.id.clone());
            details.push(format!(
                "{}: the node counted {server} checks ({} allowed, {} denied, {} errors), the plugin had {} answered ({} allowed) + {} unknown + {} in flight",
                n.id, s.allowed, s.denied, s.errors, after.total(), after.allowed, after.unknown, n.tally_after.in_flight
            ));
        }
    }
    let totals = obs.nodes.iter().fold(NodeTally::default(), |mut t, n| {
        let a = &n.tally_after;
        t.sent += a.sent;
        t.in_flight += a.in_flight;
        t.add_outcomes(a);
        t
    });
    let summary = format!(
        "sent {} = allowed {} + denied {} + errors {} + unknown {} + rejected {} + not delivered {} + in flight {}",
        totals.sent, totals.allowed, totals.denied, totals.errors, totals.unknown, totals.rejected, totals.not_delivered, totals.in_flight
    );
    let status = if !bad.is_empty() {
        InvariantStatus::Violated
    } else if unknown {
        InvariantStatus::Unknown
    } else {
        InvariantStatus::Ok
    };
    let detail = if details.is_empty() {
        format!("every node's counts match; {summary}")
    } else {
        format!("{}; {summary}", details.join("; "))
    };
    let mut i = inv(
        CONSERVATION,
        AnomalyClass::Accounting,
        status,
        detail,
        obs.at_ms,
    );
    i.components = bad;
    i.observed = Some(worst as f64);
    i.bound = Some(0.0);
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::scrape::Scrape;
    use crate::wire::{Limit, WindowView};

    const W: u64 = 1000;
    const LIMIT: Limit = Limit {
        limit: 100,
        window_ms: 10_000,
    };

    fn settings() -> Settings {
        Settings {
            mode: Mode::Cached,
            flush_ms: 100,
            drift_tolerance: 10,
            hold_ms: 60_000,
        }
    }

    fn node(i: usize, allowed: u64, flushed: u64, partitioned: bool, at: u64) -> NodeObs {
        let view = CountersView {
            node: format!("node-{i}"),
            instance: 1,
            mode: "cached".into(),
            key: "k".into(),
            limit: Some(LIMIT),
            window: W,
            windows: vec![WindowView {
                window: W,
                allowed,
                flushed,
                pending: allowed - flushed,
                remote: 0,
            }],
            partitioned,
            last_flush_ok_ms: Some(at),
            redis_count: None,
        };
        NodeObs {
            id: format!("node-{i}"),
            health: Some(HealthView {
                node: format!("node-{i}"),
                instance: 1,
                mode: "cached".into(),
                status: "ok".into(),
                redis_reachable: true,
                redis_latency_ms: Some(0.1),
                redis_error: None,
                partitioned,
            }),
            counters: [("k".to_string(), view.clone())].into(),
            counters_after: [("k".to_string(), view)].into(),
            ..NodeObs::default()
        }
    }

    fn obs(nodes: Vec<NodeObs>, redis: u64) -> Observation {
        Observation {
            at_ms: 5_000,
            nodes,
            redis: RedisObs {
                reachable: true,
                latency_ms: Some(0.1),
                error: None,
                counts: [(("k".to_string(), W), redis)].into(),
            },
        }
    }

    #[test]
    fn drift_passes_when_pending_is_in_flight_and_fails_when_a_node_is_partitioned() {
        let s = settings();
        // Healthy nodes with a few pending increments: Redis holds what was flushed.
        let healthy = obs(
            vec![
                node(1, 30, 25, false, 5_000),
                node(2, 30, 30, false, 5_000),
                node(3, 10, 5, false, 5_000),
            ],
            60,
        );
        let m = measure_drift(&healthy, &s);
        assert_eq!(m.drift, Some(0));
        assert_eq!(counter_drift(&m, true, &s, 0).status, InvariantStatus::Ok);
        // node-2 is partitioned with 40 increments Redis never got.
        let stuck = obs(
            vec![
                node(1, 30, 30, false, 5_000),
                node(2, 70, 30, true, 4_000),
                node(3, 10, 10, false, 5_000),
            ],
            70,
        );
        let m = measure_drift(&stuck, &s);
        assert_eq!(m.drift, Some(40));
        assert!(m.stuck);
        let i = counter_drift(&m, false, &s, 0);
        assert_eq!(
            i.status,
            InvariantStatus::Violated,
            "stuck increments need no second poll"
        );
        assert_eq!(i.components, vec!["redis", "node-2"]);
        assert_eq!((i.observed, i.bound), (Some(40.0), Some(10.0)));
        // Between the two reads of the nodes, node-1 allowed 20 more checks and
        // flushed them with its pending 20: Redis holds more than was
        // acknowledged before and no more than was allowed after.
        let mut landed = obs(
            vec![
                node(1, 50, 30, false, 5_000),
                node(2, 30, 30, false, 5_000),
                node(3, 40, 30, false, 5_000),
            ],
            140,
        );
        landed.nodes[0].counters_after = node(1, 70, 70, false, 5_000).counters;
        let m = measure_drift(&landed, &s);
        assert_eq!(m.drift, Some(0), "{}", m.detail);
        assert_eq!(counter_drift(&m, true, &s, 0).status, InvariantStatus::Ok);
        // Redis holds more than the nodes allowed even after: the drift is negative.
        let mut over = landed.clone();
        over.redis.counts.insert(("k".to_string(), W), 160);
        assert_eq!(measure_drift(&over, &s).drift, Some(-20));
        // Without node-1's second read only the lower bound is known.
        over.nodes[0].counters_after.clear();
        assert_eq!(measure_drift(&over, &s).drift, Some(0));
        // Nodes flushing normally with increments missing from Redis: one poll
        // over the tolerance is not yet a drift (a flag may lag), two are.
        let lost = obs(
            vec![
                node(1, 30, 30, false, 5_000),
                node(2, 30, 30, false, 5_000),
                node(3, 30, 30, false, 5_000),
            ],
            75,
        );
        let m = measure_drift(&lost, &s);
        assert_eq!((m.drift, m.stuck), (Some(15), false));
        assert_eq!(counter_drift(&m, false, &s, 0).status, InvariantStatus::Ok);
        assert_eq!(
            counter_drift(&m, true, &s, 0).status,
            InvariantStatus::Violated
        );
        // A node whose last flush is stale counts as partitioned even if it does not say so.
        let stale = obs(
            vec![
                node(1, 30, 10, false, 100),
                node(2, 0, 0, false, 5_000),
                node(3, 0, 0, false, 5_000),
            ],
            10,
        );
        assert_eq!(measure_drift(&stale, &s).drift, Some(20));
        // Unknown when a node or Redis does not answer.
        let mut down = healthy.clone();
        down.nodes[0].health = None;
        assert_eq!(
            counter_drift(&measure_drift(&down, &s), true, &s, 0).status,
            InvariantStatus::Unknown
        );
        let mut no_redis = healthy;
        no_redis.redis.reachable = false;
        assert_eq!(measure_drift(&no_redis, &s).drift, None);
    }

    #[test]
    fn ghost_allowing_fails_on_an_over_allowed_window_or_burst_and_passes_otherwise() {
        let s = settings();
        let within = obs(
            vec![
                node(1, 40, 40, false, 5_000),
                node(2, 40, 40, false, 5_000),
                node(3, 20, 20, false, 5_000),
            ],
            100,
        );
        assert!(ghost_evidence(&within).is_empty());
        assert_eq!(
            ghost_allowing(&within, &[], &[], &s).status,
            InvariantStatus::Ok
        );
        let over = obs(
            vec![
                node(1, 60, 60, false, 5_000),
                node(2, 60, 60, false, 5_000),
                node(3, 0, 0, false, 5_000),
            ],
            120,
        );
        let ev = ghost_evidence(&over);
        assert_eq!(ev.len(), 1);
        let i = ghost_allowing(&over, &[], &ev, &s);
        assert_eq!(i.status, InvariantStatus::Violated);
        assert_eq!((i.observed, i.bound), (Some(120.0), Some(100.0)));
        assert_eq!(i.components, vec!["node-1", "node-2"]);
        let burst = BurstRecord {
            key: "b".into(),
            limit: 100,
            sent: 200,
            allowed: 150,
            allowed_by_node: vec![50, 50, 50],
            finished_ms: 4_000,
            ..BurstRecord::default()
        };
        assert_eq!(
            ghost_allowing(&within, std::slice::from_ref(&burst), &[], &s).status,
            InvariantStatus::Violated
        );
        let old = BurstRecord {
            finished_ms: 0,
            ..burst
        };
        let held = Settings {
            hold_ms: 1_000,
            ..s
        };
        assert_eq!(
            ghost_allowing(&within, &[old], &[], &held).status,
            InvariantStatus::Ok,
            "the verdict expires after the hold"
        );
    }

    #[test]
    fn conservation_fails_when_a_node_counted_checks_nobody_accounts_for() {
        let mut o = obs(vec![node(1, 0, 0, false, 0)], 0);
        let tally = NodeTally {
            sent: 10,
            allowed: 8,
            denied: 2,
            last_instance: 1,
            by_instance: [(
                1,
                crate::plugin::load::Answered {
                    allowed: 8,
                    denied: 2,
                    errors: 0,
                    unknown: 0,
                },
            )]
            .into(),
            ..NodeTally::default()
        };
        o.nodes[0].tally_before = tally.clone();
        o.nodes[0].tally_after = tally;
        o.nodes[0].scrape = Some(Scrape {
            instance: 1,
            allowed: 8,
            denied: 2,
            ..Scrape::default()
        });
        assert_eq!(conservation(&o).status, InvariantStatus::Ok);
        o.nodes[0].scrape = Some(Scrape {
            instance: 1,
            allowed: 13,
            denied: 2,
            ..Scrape::default()
        });
        let i = conservation(&o);
        assert_eq!(i.status, InvariantStatus::Violated);
        assert_eq!(i.components, vec!["node-1"]);
        o.nodes[0].scrape = None;
        assert_eq!(conservation(&o).status, InvariantStatus::Unknown);
    }

    #[test]
    fn node_and_redis_down_follow_the_observation() {
        let mut o = obs(vec![node(1, 0, 0, false, 0), node(2, 0, 0, false, 0)], 0);
        assert_eq!(node_down(&o).status, InvariantStatus::Ok);
        assert_eq!(redis_down(&o).status, InvariantStatus::Ok);
        o.nodes[1].health = None;
        o.redis.reachable = false;
        assert_eq!(node_down(&o).components, vec!["node-2"]);
        assert_eq!(redis_down(&o).components, vec!["redis"]);
    }

    fn link(id: &str, pings: &[Option<f64>], flushes_failing: bool) -> NodeLink {
        NodeLink {
            id: id.into(),
            answering: true,
            pings: pings.to_vec(),
            flushes_failing,
        }
    }

    #[test]
    fn redis_latency_names_redis_when_every_node_is_slow_and_the_nodes_otherwise() {
        let fast = [Some(0.3), Some(0.2), Some(0.4)];
        let slow = [Some(21.0), Some(19.0), Some(24.0)];
        // One slow answer among fast ones is not a slow link.
        let spike = link(
            "node-1",
            &[Some(0.3), Some(90.0), Some(0.2), Some(0.3)],
            false,
        );
        assert_eq!(spike.rtt_ms(), Some(0.3));
        let ok = redis_latency(&[spike, link("node-2", &fast, false)], 10.0, true, 0);
        assert_eq!(ok.status, InvariantStatus::Ok, "{}", ok.detail);
        let all = redis_latency(
            &[
                link("node-1", &slow, false),
                link("node-2", &slow, false),
                link("node-3", &slow, false),
            ],
            10.0,
            true,
            0,
        );
        assert_eq!(all.status, InvariantStatus::Violated);
        assert_eq!(all.class, AnomalyClass::LatencySpike);
        assert_eq!(all.components, vec!["redis"]);
        assert_eq!((all.observed, all.bound), (Some(21.0), Some(10.0)));
        let one = redis_latency(
            &[link("node-1", &fast, false), link("node-2", &slow, false)],
            10.0,
            true,
            0,
        );
        assert_eq!(one.components, vec!["node-2"]);
        // Too few answered pings, or Redis down for the plugin too: no verdict.
        let few = link("node-1", &[None, Some(30.0), None, None, Some(30.0)], false);
        assert_eq!(few.rtt_ms(), None);
        assert_eq!(
            redis_latency(&[few], 10.0, true, 0).status,
            InvariantStatus::Unknown
        );
        assert_eq!(
            redis_latency(&[link("node-1", &slow, false)], 10.0, false, 0).status,
            InvariantStatus::Unknown
        );
        // Only the last LINK_POLLS pings count.
        let healed = link(
            "node-1",
            &[
                Some(30.0),
                Some(30.0),
                Some(30.0),
                Some(0.2),
                Some(0.2),
                Some(0.2),
                Some(0.2),
                Some(0.2),
            ],
            false,
        );
        assert_eq!(healed.rtt_ms(), Some(0.2));
    }

    #[test]
    fn node_cut_off_names_the_one_node_and_not_an_outage_or_a_shared_cause() {
        let fine = link("node-1", &[Some(0.3), Some(0.3)], false);
        let cut = link("node-2", &[Some(0.3), None, None], false);
        let i = node_cut_off(&[fine.clone(), cut.clone()], true, 0);
        assert_eq!(i.status, InvariantStatus::Violated);
        assert_eq!(i.class, AnomalyClass::StateDivergence);
        assert_eq!(i.components, vec!["node-2"]);
        // One failed ping alone is not a cut, unless its flushes fail too.
        let once = link("node-2", &[Some(0.3), None], false);
        assert_eq!(
            node_cut_off(&[fine.clone(), once.clone()], true, 0).status,
            InvariantStatus::Ok
        );
        let once_failing = NodeLink {
            flushes_failing: true,
            ..once
        };
        assert_eq!(
            node_cut_off(&[fine.clone(), once_failing], true, 0).status,
            InvariantStatus::Violated
        );
        // Partitioned by a CLIENT PAUSE WRITE but still answering pings: not cut.
        let paused = link("node-2", &[Some(0.3), Some(0.4)], true);
        assert_eq!(
            node_cut_off(&[fine.clone(), paused], true, 0).status,
            InvariantStatus::Ok
        );
        // Redis down for the plugin too, or every node at once: not one node cut off.
        assert_eq!(
            node_cut_off(&[fine, cut.clone()], false, 0).status,
            InvariantStatus::Unknown
        );
        let both = [
            cut.clone(),
            NodeLink {
                id: "node-3".into(),
                ..cut.clone()
            },
        ];
        assert_eq!(
            node_cut_off(&both, true, 0).status,
            InvariantStatus::Unknown
        );
        // A node that does not answer is `node down`'s business.
        let dead = NodeLink {
            answering: false,
            ..cut
        };
        assert!(!dead.cut());
    }

    #[test]
    fn drift_of_a_cut_off_node_is_attributed_to_it() {
        let s = settings();
        let stuck = obs(
            vec![
                node(1, 30, 30, false, 5_000),
                node(2, 70, 30, true, 4_000),
                node(3, 10, 10, false, 5_000),
            ],
            70,
        );
        let mut m = measure_drift(&stuck, &s);
        assert_eq!(m.components, vec!["redis", "node-2"]);
        // Not cut off (a CLIENT PAUSE): Redis stays named.
        attribute_drift(&mut m, &[]);
        assert_eq!(m.components, vec!["redis", "node-2"]);
        attribute_drift(&mut m, &["node-2".to_string()]);
        assert_eq!(m.components, vec!["node-2"]);
        assert!(
            m.detail.contains("node-2 cut off from redis"),
            "{}",
            m.detail
        );
    }
}
