//! Gathering facts: what the window shows, extracted once. Invariant records,
//! nodes that left `up`, metrics before against during the anomaly, warnings.

use crate::diagnosis::window::ObservationWindow;
use plugin_api::{
    AnomalyClass, BoundIs, ComponentKind, HealthSnapshot, InvariantStatus, Level, NodeHealth,
    NodeStatus,
};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Warnings this long before the anomaly start still count as its precursors.
const PRECURSOR_MS: u64 = 5_000;

/// An invariant's record over the window.
#[derive(Debug, Clone)]
pub(super) struct InvariantRecord {
    pub(super) name: String,
    pub(super) class: AnomalyClass,
    pub(super) first_violated: Option<u64>,
    /// Polls in which it was seen violated.
    pub(super) violated_polls: usize,
    /// Times it went into violation.
    pub(super) onsets: usize,
    pub(super) violated_at_end: bool,
    pub(super) ever_unknown: bool,
    /// Its latest violated reading: detail, components, observed, bound.
    pub(super) detail: String,
    pub(super) components: Vec<String>,
    pub(super) observed: Option<f64>,
    pub(super) bound: Option<f64>,
    pub(super) bound_is: BoundIs,
}

impl InvariantRecord {
    /// Half the bound's size past it or more, for ceilings and floors alike
    /// ("lag ≤ 5 s" at 7.5 s, "hit ratio ≥ 0.8" at 0.4).
    pub(super) fn exceeds_clearly(&self) -> bool {
        match (self.observed, self.bound) {
            (Some(o), Some(b)) if b.abs() < f64::EPSILON => match self.bound_is {
                BoundIs::Ceiling => o > 0.0,
                BoundIs::Floor => o < 0.0,
            },
            (Some(o), Some(b)) => self.bound_is.excess(o, b) >= 0.5,
            _ => false,
        }
    }

    pub(super) fn reading(&self) -> String {
        match (self.observed, self.bound) {
            (Some(o), Some(b)) => format!(
                "{}: {} (observed {}, bound {})",
                self.name,
                self.detail,
                num(o),
                num(b)
            ),
            _ => format!("{}: {}", self.name, self.detail),
        }
    }
}

/// A node that left the `up` state during the window.
#[derive(Debug, Clone)]
pub(super) struct NodeChange {
    pub(super) id: String,
    pub(super) label: String,
    pub(super) at_ms: u64,
    pub(super) from: NodeStatus,
    pub(super) to: NodeStatus,
    /// The plugin says it is a dependency the members share.
    pub(super) shared_dependency: bool,
}

#[derive(Debug, Clone)]
pub(super) struct MetricDelta {
    pub(super) name: String,
    pub(super) node: Option<String>,
    pub(super) unit: String,
    pub(super) before: f64,
    pub(super) during: f64,
    /// When `during` was first reached (its peak poll).
    pub(super) at_ms: u64,
    /// The change stands out from the noise seen before the anomaly.
    pub(super) significant: bool,
}

impl MetricDelta {
    pub(super) fn ratio(&self) -> f64 {
        if self.before.abs() < f64::EPSILON {
            if self.during.abs() < f64::EPSILON {
                1.0
            } else {
                f64::INFINITY
            }
        } else {
            self.during / self.before
        }
    }

    /// A latency reading: named like one (generic words only), in a time unit if it has one.
    pub(super) fn time_like(&self) -> bool {
        let unit = self.unit.to_ascii_lowercase();
        let name = self.name.to_ascii_lowercase();
        let time_unit = unit.is_empty()
            || matches!(
                unit.as_str(),
                "ms" | "s" | "us" | "µs" | "ns" | "seconds" | "milliseconds"
            );
        let named = [
            "latency",
            "p99",
            "p95",
            "p90",
            "p50",
            "duration",
            "response time",
        ]
        .iter()
        .any(|w| name.contains(w));
        time_unit && named
    }

    pub(super) fn label(&self) -> String {
        match &self.node {
            Some(n) => format!("{} on {n}", self.name),
            None => self.name.clone(),
        }
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "{} went from {} to {}{}",
            self.label(),
            num(self.before),
            num(self.during),
            unit_suffix(&self.unit)
        )
    }
}

/// What the window shows, extracted once.
pub(super) struct Facts {
    pub(super) origin_ms: u64,
    pub(super) polls: usize,
    pub(super) invariants: Vec<InvariantRecord>,
    pub(super) node_changes: Vec<NodeChange>,
    /// Latest known node of each id.
    pub(super) nodes: Vec<NodeHealth>,
    pub(super) metric_deltas: Vec<MetricDelta>,
    pub(super) warnings: Vec<(u64, Level, String)>,
    /// Components of kind member (see [`ComponentKind`]).
    pub(super) member_count: usize,
}

impl Facts {
    pub(super) fn gather(window: &ObservationWindow) -> Self {
        let origin_ms = window
            .snapshots
            .first()
            .map(|s| s.at_ms)
            .into_iter()
            .chain(window.invariant_changes.first().map(|c| c.at_ms))
            .min()
            .unwrap_or(0);
        let nodes = latest_nodes(&window.snapshots);
        // What a component is comes from the plugin, never from its role or
        // name: a Raft leader is unique by role and still a member.
        let declared: BTreeMap<&str, ComponentKind> = window
            .context
            .components
            .iter()
            .map(|c| (c.name.as_str(), c.kind))
            .collect();
        let kind_of = |n: &NodeHealth| match (n.kind, declared.get(n.id.as_str())) {
            (ComponentKind::Member, Some(k)) => *k,
            (k, _) => k,
        };
        let shared = |n: &NodeHealth| kind_of(n) == ComponentKind::Dependency;
        let member_count = nodes
            .iter()
            .filter(|n| kind_of(n) == ComponentKind::Member)
            .count();
        let changes = node_changes(&window.snapshots);
        let invariants = invariant_records(window);
        // Where "before" ends: as the engine saw it, else the first sign of trouble.
        let start_ms = window
            .anomaly_started_ms
            .or_else(|| invariants.iter().filter_map(|i| i.first_violated).min())
            .or_else(|| changes.iter().map(|c| c.1).min());
        let node_changes = changes
            .into_iter()
            .map(|(node, at_ms, from, to)| NodeChange {
                id: node.id.clone(),
                label: node_label(&node),
                at_ms,
                from,
                to,
                shared_dependency: shared(&node),
            })
            .collect();
        let warnings = window
            .events
            .iter()
            .chain(window.snapshots.iter().flat_map(|s| s.events.iter()))
            .filter(|e| e.level >= Level::Warn)
            .filter(|e| start_ms.is_none_or(|start| e.at_ms + PRECURSOR_MS >= start))
            .map(|e| (e.at_ms, e.level, e.message.clone()))
            .fold(Vec::new(), |mut acc: Vec<(u64, Level, String)>, e| {
                if !acc.contains(&e) {
                    acc.push(e);
                }
                acc
            });
        Facts {
            origin_ms,
            polls: window.snapshots.len(),
            invariants,
            node_changes,
            nodes,
            metric_deltas: metric_deltas(&window.snapshots, start_ms),
            warnings,
            member_count,
        }
    }

    pub(super) fn rel(&self, at_ms: u64) -> String {
        format!(
            "+{:.1}s",
            at_ms.saturating_sub(self.origin_ms) as f64 / 1000.0
        )
    }

    pub(super) fn violated(&self) -> impl Iterator<Item = &InvariantRecord> {
        self.invariants
            .iter()
            .filter(|i| i.first_violated.is_some())
    }

    pub(super) fn first_violation(&self) -> Option<u64> {
        self.violated().filter_map(|i| i.first_violated).min()
    }

    /// The display label of a component name: a node's id with its address.
    pub(super) fn component_label(&self, name: &str) -> String {
        self.nodes
            .iter()
            .find(|n| n.id == name || n.address == name)
            .map(node_label)
            .unwrap_or_else(|| name.to_string())
    }
}

fn node_label(n: &NodeHealth) -> String {
    if n.address.is_empty() || n.address.contains(&n.id) {
        n.id.clone()
    } else {
        format!("{} ({})", n.id, n.address)
    }
}

/// Each node's latest reading, in the order nodes first appeared. Indexed by
/// id and cloned once at the end: a window of a thousand-node cluster must
/// cost neither nodes² comparisons nor a clone of every reading.
fn latest_nodes(snapshots: &[HealthSnapshot]) -> Vec<NodeHealth> {
    let mut latest: Vec<&NodeHealth> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for n in snapshots.iter().flat_map(|s| s.nodes.iter()) {
        match at.get(n.id.as_str()) {
            Some(&i) => latest[i] = n,
            None => {
                at.insert(n.id.as_str(), latest.len());
                latest.push(n);
            }
        }
    }
    latest.into_iter().cloned().collect()
}

/// First departure of each node from `up` (or from its first status), with
/// its worst status after. A node that first shows up later, already down,
/// counts as a change from unknown.
fn node_changes(snapshots: &[HealthSnapshot]) -> Vec<(NodeHealth, u64, NodeStatus, NodeStatus)> {
    let mut first: HashMap<&str, NodeStatus> = HashMap::new();
    let mut changes: Vec<(NodeHealth, u64, NodeStatus, NodeStatus)> = Vec::new();
    let mut changed: HashMap<&str, usize> = HashMap::new();
    for (i, snap) in snapshots.iter().enumerate() {
        for n in &snap.nodes {
            let Some(&initial) = first.get(n.id.as_str()) else {
                first.insert(n.id.as_str(), n.status);
                if i > 0 && n.status == NodeStatus::Down {
                    changed.insert(n.id.as_str(), changes.len());
                    changes.push((n.clone(), snap.at_ms, NodeStatus::Unknown, n.status));
                }
                continue;
            };
            if n.status == initial {
                continue;
            }
            match changed.get(n.id.as_str()).map(|&c| &mut changes[c]) {
                Some(change) if badness(n.status) > badness(change.3) => change.3 = n.status,
                Some(_) => {}
                None if badness(n.status) > badness(initial) => {
                    changed.insert(n.id.as_str(), changes.len());
                    changes.push((n.clone(), snap.at_ms, initial, n.status));
                }
                None => {}
            }
        }
    }
    changes
}

fn badness(s: NodeStatus) -> u8 {
    match s {
        NodeStatus::Up => 0,
        NodeStatus::Degraded => 1,
        NodeStatus::Unknown => 2,
        NodeStatus::Down => 3,
    }
}

pub(super) fn status_word(s: NodeStatus) -> &'static str {
    match s {
        NodeStatus::Up => "up",
        NodeStatus::Degraded => "degraded",
        NodeStatus::Unknown => "unknown",
        NodeStatus::Down => "down",
    }
}

fn invariant_records(window: &ObservationWindow) -> Vec<InvariantRecord> {
    let mut records: Vec<InvariantRecord> = Vec::new();
    let mut last_status: BTreeMap<String, InvariantStatus> = BTreeMap::new();
    for snap in &window.snapshots {
        for inv in &snap.invariants {
            let idx = match records.iter().position(|r| r.name == inv.name) {
                Some(i) => i,
                None => {
                    records.push(InvariantRecord {
                        name: inv.name.clone(),
                        class: inv.class,
                        first_violated: None,
                        violated_polls: 0,
                        onsets: 0,
                        violated_at_end: false,
                        ever_unknown: false,
                        detail: inv.detail.clone(),
                        components: inv.components.clone(),
                        observed: inv.observed,
                        bound: inv.bound,
                        bound_is: inv.bound_is,
                    });
                    records.len() - 1
                }
            };
            let r = &mut records[idx];
            let previous = last_status.insert(inv.name.clone(), inv.status);
            match inv.status {
                InvariantStatus::Violated => {
                    r.violated_polls += 1;
                    if previous != Some(InvariantStatus::Violated) {
                        r.onsets += 1;
                    }
                    r.first_violated.get_or_insert(snap.at_ms);
                    r.detail = inv.detail.clone();
                    r.components = inv.components.clone();
                    r.observed = inv.observed;
                    r.bound = inv.bound;
                    r.bound_is = inv.bound_is;
                }
                InvariantStatus::Unknown => r.ever_unknown = true,
                InvariantStatus::Ok => {}
            }
            r.violated_at_end = inv.status == InvariantStatus::Violated;
        }
    }
    // Windows may carry changes the polls did not (or carry no polls at all).
    for c in &window.invariant_changes {
        let idx = match records.iter().position(|r| r.name == c.invariant) {
            Some(i) => i,
            None => {
                records.push(InvariantRecord {
                    name: c.invariant.clone(),
                    class: c.class,
                    first_violated: None,
                    violated_polls: 0,
                    onsets: 0,
                    violated_at_end: false,
                    ever_unknown: false,
                    detail: c.detail.clone(),
                    components: c.components.clone(),
                    observed: None,
                    bound: None,
                    bound_is: BoundIs::Ceiling,
                });
                records.len() - 1
            }
        };
        let r = &mut records[idx];
        match c.to {
            InvariantStatus::Violated => {
                if r.first_violated.is_none_or(|t| c.at_ms < t) {
                    r.first_violated = Some(c.at_ms);
                }
                if r.violated_polls == 0 {
                    r.onsets += 1;
                    r.violated_at_end = true;
                    r.detail = c.detail.clone();
                    r.components = c.components.clone();
                }
            }
            InvariantStatus::Unknown => r.ever_unknown = true,
            InvariantStatus::Ok => {}
        }
    }
    records
}

/// Mean of each metric before the anomaly against its most extreme value during it.
fn metric_deltas(snapshots: &[HealthSnapshot], start_ms: Option<u64>) -> Vec<MetricDelta> {
    let Some(start) = start_ms else {
        return Vec::new();
    };
    // One pass over the polls: each (node, metric) reading goes straight to
    // its series, so a thousand-node window costs nodes × polls, not nodes².
    // Keys keep the order they first appear in; within a poll the first
    // reading of a name wins, as a search from the front would find it.
    let mut keys: Vec<(Option<&str>, &str, &str, usize)> = Vec::new();
    let mut seen: HashSet<(Option<&str>, &str, &str)> = HashSet::new();
    let mut index: HashMap<(Option<&str>, &str), usize> = HashMap::new();
    let mut series: Vec<Vec<(u64, f64)>> = Vec::new();
    let mut last_poll: Vec<usize> = Vec::new();
    for (i, s) in snapshots.iter().enumerate() {
        let node_metrics = s
            .nodes
            .iter()
            .flat_map(|n| n.metrics.iter().map(move |m| (Some(n.id.as_str()), m)));
        for (node, m) in s.metrics.iter().map(|m| (None, m)).chain(node_metrics) {
            let idx = *index.entry((node, m.name.as_str())).or_insert_with(|| {
                series.push(Vec::new());
                last_poll.push(usize::MAX);
                series.len() - 1
            });
            if seen.insert((node, m.name.as_str(), m.unit.as_str())) {
                keys.push((node, m.name.as_str(), m.unit.as_str(), idx));
            }
            if last_poll[idx] != i {
                last_poll[idx] = i;
                series[idx].push((s.at_ms, m.value));
            }
        }
    }
    let mut deltas: Vec<MetricDelta> = keys
        .into_iter()
        .filter_map(|(node, name, unit, idx)| {
            let node = node.map(str::to_string);
            let series = &series[idx];
            match as_rates(series, start) {
                Some(rates) => delta(node, format!("{name} rate"), rate_unit(unit), &rates, start),
                None => delta(node, name.to_string(), unit.to_string(), series, start),
            }
        })
        .collect();
    deltas.sort_by(|a, b| relative_change(b).total_cmp(&relative_change(a)));
    deltas
}

/// The unit of a counter's rate: `ops` → `ops/s`, none → `/s` (not `s`).
fn rate_unit(unit: &str) -> String {
    format!("{unit}/s")
}

/// A counter that keeps growing says more through its rate: per-second rates
/// between consecutive polls, or `None` when the series is not such a counter
/// (it must never fall, and rise in three of four polls before the anomaly).
fn as_rates(series: &[(u64, f64)], start: u64) -> Option<Vec<(u64, f64)>> {
    let baseline: Vec<&[(u64, f64)]> = series.windows(2).filter(|w| w[1].0 < start).collect();
    let rising = baseline.iter().filter(|w| w[1].1 > w[0].1).count();
    let grows = baseline.len() >= 3
        && series
            .windows(2)
            .all(|w| w[1].1 >= w[0].1 && w[1].0 > w[0].0)
        && rising * 4 >= baseline.len() * 3;
    grows.then(|| {
        series
            .windows(2)
            .map(|w| {
                (
                    w[1].0,
                    (w[1].1 - w[0].1) * 1000.0 / (w[1].0 - w[0].0) as f64,
                )
            })
            .collect()
    })
}

/// `(unix ms, value)` readings of one metric.
type Points = Vec<(u64, f64)>;

/// Mean before `start` against the most extreme value from `start` on.
fn delta(
    node: Option<String>,
    name: String,
    unit: String,
    series: &[(u64, f64)],
    start: u64,
) -> Option<MetricDelta> {
    let (before, during): (Points, Points) = series.iter().partition(|(t, _)| *t < start);
    if before.is_empty() || during.is_empty() {
        return None;
    }
    let n = before.len() as f64;
    let mean = before.iter().map(|x| x.1).sum::<f64>() / n;
    let sd = (before.iter().map(|x| (x.1 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let &(at_ms, peak) = during
        .iter()
        .max_by(|x, y| (x.1 - mean).abs().total_cmp(&(y.1 - mean).abs()))?;
    Some(MetricDelta {
        name,
        node,
        unit,
        before: mean,
        during: peak,
        at_ms,
        significant: (peak - mean).abs() > (3.0 * sd).max(0.2 * mean.abs()).max(1e-9),
    })
}

fn relative_change(d: &MetricDelta) -> f64 {
    let base = d.before.abs().max(1e-9);
    ((d.during - d.before).abs() / base).min(1e6)
}

pub(super) fn rel(facts: &Facts, at: Option<u64>) -> String {
    at.map(|t| facts.rel(t))
        .unwrap_or_else(|| "an unknown time".into())
}

fn num(x: f64) -> String {
    if x.is_infinite() {
        "∞".into()
    } else if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.2}")
    }
}

fn unit_suffix(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_counter_without_a_unit_has_its_rate_per_second() {
        assert_eq!(super::rate_unit(""), "/s");
        assert_eq!(super::rate_unit("ops"), "ops/s");
    }

    use super::super::diagnose;
    use super::super::fixture::twin_breakage;

    #[test]
    fn changes_alone_are_enough_to_name_the_anomaly() {
        let mut w = twin_breakage();
        w.snapshots.clear();
        w.invariant_changes.retain(|c| c.invariant == "views agree");
        let d = diagnose(&w);
        assert_eq!(d.anomaly, "split views");
        assert_eq!(d.affected_components, vec!["m-2".to_string()]);
    }
}
