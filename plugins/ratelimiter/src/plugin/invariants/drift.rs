//! `counter drift`: Redis's counter outside what the nodes account for.

use super::*;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::invariants::fixtures::*;

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
