//! The builtin diagnoser: offline, deterministic, evidence-based reasoning
//! over any subject's window. It knows only the generic anomaly classes; the
//! subject's words come from the window's glossary and invariants.
//!
//! Each candidate class collects weighted supporting and contradicting
//! evidence; the best supported class wins, ties going to what appeared first
//! and then to the class most likely to cause the others. Confidence follows
//! the weight of evidence and drops when it is thin, brief or contested.

use super::report::{
    Alternative, Diagnosis, Evidence, MetricReading, Severity, TimelineEntry, NO_ANOMALY,
};
use super::window::ObservationWindow;
use plugin_api::{AnomalyClass, HealthSnapshot, InvariantStatus, Level, NodeHealth, NodeStatus};
use std::collections::BTreeMap;

/// Below this weight of evidence nothing is called an anomaly.
const MIN_SUPPORT: f64 = 0.2;
/// A time-like metric rising by this factor counts as a latency jump.
const LATENCY_JUMP: f64 = 2.0;
const MAX_CONFIDENCE: f64 = 0.95;
/// Warnings this long before the anomaly start still count as its precursors.
const PRECURSOR_MS: u64 = 5_000;

/// Classes in the order they tend to cause one another: on a tie the earlier wins.
const PRECEDENCE: [AnomalyClass; 9] = [
    AnomalyClass::DependencyDown,
    AnomalyClass::NodeDown,
    AnomalyClass::CapacityExhausted,
    AnomalyClass::LatencySpike,
    AnomalyClass::StateDivergence,
    AnomalyClass::BoundExceeded,
    AnomalyClass::Accounting,
    AnomalyClass::Imbalance,
    AnomalyClass::Other,
];

pub fn diagnose(window: &ObservationWindow) -> Diagnosis {
    let facts = Facts::gather(window);
    let mut hypotheses: Vec<Hypothesis> = candidate_classes(&facts)
        .into_iter()
        .map(|class| Hypothesis::weigh(class, &facts))
        .collect();
    hypotheses.sort_by(|a, b| {
        b.score()
            .total_cmp(&a.score())
            .then(
                a.first_seen
                    .unwrap_or(u64::MAX)
                    .cmp(&b.first_seen.unwrap_or(u64::MAX)),
            )
            .then(precedence(a.class).cmp(&precedence(b.class)))
    });
    let best = hypotheses
        .first()
        .filter(|h| h.support() >= MIN_SUPPORT && h.score() > 0.0);
    match best {
        Some(best) => anomaly(window, &facts, best, &hypotheses),
        None => healthy(window, &facts, &hypotheses),
    }
}

fn precedence(class: AnomalyClass) -> usize {
    PRECEDENCE
        .iter()
        .position(|c| *c == class)
        .unwrap_or(PRECEDENCE.len())
}

/// An invariant's record over the window.
#[derive(Debug, Clone)]
struct InvariantRecord {
    name: String,
    class: AnomalyClass,
    first_violated: Option<u64>,
    /// Polls in which it was seen violated.
    violated_polls: usize,
    /// Times it went into violation.
    onsets: usize,
    violated_at_end: bool,
    ever_unknown: bool,
    /// Its latest violated reading: detail, components, observed, bound.
    detail: String,
    components: Vec<String>,
    observed: Option<f64>,
    bound: Option<f64>,
}

impl InvariantRecord {
    fn exceeds_clearly(&self) -> bool {
        match (self.observed, self.bound) {
            (Some(o), Some(b)) if b.abs() < f64::EPSILON => o > 0.0,
            (Some(o), Some(b)) => o >= 1.5 * b,
            _ => false,
        }
    }

    fn reading(&self) -> String {
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
struct NodeChange {
    id: String,
    label: String,
    at_ms: u64,
    from: NodeStatus,
    to: NodeStatus,
    /// No other node shares its role: a dependency the members share.
    shared_dependency: bool,
}

#[derive(Debug, Clone)]
struct MetricDelta {
    name: String,
    node: Option<String>,
    unit: String,
    before: f64,
    during: f64,
    /// When `during` was first reached (its peak poll).
    at_ms: u64,
    /// The change stands out from the noise seen before the anomaly.
    significant: bool,
}

impl MetricDelta {
    fn ratio(&self) -> f64 {
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
    fn time_like(&self) -> bool {
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

    fn label(&self) -> String {
        match &self.node {
            Some(n) => format!("{} on {n}", self.name),
            None => self.name.clone(),
        }
    }

    fn describe(&self) -> String {
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
struct Facts {
    origin_ms: u64,
    polls: usize,
    invariants: Vec<InvariantRecord>,
    node_changes: Vec<NodeChange>,
    /// Latest known node of each id.
    nodes: Vec<NodeHealth>,
    metric_deltas: Vec<MetricDelta>,
    warnings: Vec<(u64, Level, String)>,
    /// Nodes that share their role with another node.
    member_count: usize,
}

impl Facts {
    fn gather(window: &ObservationWindow) -> Self {
        let origin_ms = window
            .snapshots
            .first()
            .map(|s| s.at_ms)
            .into_iter()
            .chain(window.invariant_changes.first().map(|c| c.at_ms))
            .min()
            .unwrap_or(0);
        let nodes = latest_nodes(&window.snapshots);
        // How many nodes share a role at once (a node may be renamed between polls).
        let mut role_counts: BTreeMap<&str, usize> = BTreeMap::new();
        for snap in &window.snapshots {
            let mut here: BTreeMap<&str, usize> = BTreeMap::new();
            for n in &snap.nodes {
                *here.entry(n.role.as_str()).or_default() += 1;
            }
            for (role, count) in here {
                let max = role_counts.entry(role).or_default();
                *max = (*max).max(count);
            }
        }
        let has_group = role_counts.values().any(|c| *c >= 2);
        let shared = |n: &NodeHealth| has_group && role_counts.get(n.role.as_str()) == Some(&1);
        let member_count = nodes.iter().filter(|n| !shared(n)).count();
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

    fn rel(&self, at_ms: u64) -> String {
        format!(
            "+{:.1}s",
            at_ms.saturating_sub(self.origin_ms) as f64 / 1000.0
        )
    }

    fn violated(&self) -> impl Iterator<Item = &InvariantRecord> {
        self.invariants
            .iter()
            .filter(|i| i.first_violated.is_some())
    }

    fn first_violation(&self) -> Option<u64> {
        self.violated().filter_map(|i| i.first_violated).min()
    }

    /// The display label of a component name: a node's id with its address.
    fn component_label(&self, name: &str) -> String {
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

fn latest_nodes(snapshots: &[HealthSnapshot]) -> Vec<NodeHealth> {
    let mut nodes: Vec<NodeHealth> = Vec::new();
    for n in snapshots.iter().flat_map(|s| s.nodes.iter()) {
        match nodes.iter_mut().find(|x| x.id == n.id) {
            Some(x) => *x = n.clone(),
            None => nodes.push(n.clone()),
        }
    }
    nodes
}

/// First departure of each node from `up` (or from its first status), with
/// its worst status after. A node that first shows up later, already down,
/// counts as a change from unknown.
fn node_changes(snapshots: &[HealthSnapshot]) -> Vec<(NodeHealth, u64, NodeStatus, NodeStatus)> {
    let mut first: Vec<(String, NodeStatus)> = Vec::new();
    let mut changes: Vec<(NodeHealth, u64, NodeStatus, NodeStatus)> = Vec::new();
    for (i, snap) in snapshots.iter().enumerate() {
        for n in &snap.nodes {
            let Some(initial) = first.iter().find(|(id, _)| *id == n.id).map(|(_, s)| *s) else {
                first.push((n.id.clone(), n.status));
                if i > 0 && n.status == NodeStatus::Down {
                    changes.push((n.clone(), snap.at_ms, NodeStatus::Unknown, n.status));
                }
                continue;
            };
            if n.status == initial {
                continue;
            }
            match changes.iter_mut().find(|(node, ..)| node.id == n.id) {
                Some(change) if badness(n.status) > badness(change.3) => change.3 = n.status,
                Some(_) => {}
                None if badness(n.status) > badness(initial) => {
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

fn status_word(s: NodeStatus) -> &'static str {
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
    let mut keys: Vec<(Option<String>, String, String)> = Vec::new();
    for s in snapshots {
        let node_metrics = s
            .nodes
            .iter()
            .flat_map(|n| n.metrics.iter().map(move |m| (Some(n.id.clone()), m)));
        for (node, m) in s.metrics.iter().map(|m| (None, m)).chain(node_metrics) {
            let key = (node, m.name.clone(), m.unit.clone());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    let value = |s: &HealthSnapshot, node: &Option<String>, name: &str| -> Option<f64> {
        match node {
            None => s.metric(name).map(|m| m.value),
            Some(id) => s
                .nodes
                .iter()
                .find(|n| &n.id == id)
                .and_then(|n| n.metrics.iter().find(|m| m.name == name))
                .map(|m| m.value),
        }
    };
    let mut deltas: Vec<MetricDelta> = keys
        .into_iter()
        .filter_map(|(node, name, unit)| {
            let series: Vec<(u64, f64)> = snapshots
                .iter()
                .filter_map(|s| value(s, &node, &name).map(|v| (s.at_ms, v)))
                .collect();
            match as_rates(&series, start) {
                Some(rates) => delta(
                    node,
                    format!("{name} rate"),
                    format!("{unit}/s").trim_start_matches('/').to_string(),
                    &rates,
                    start,
                ),
                None => delta(node, name, unit, &series, start),
            }
        })
        .collect();
    deltas.sort_by(|a, b| relative_change(b).total_cmp(&relative_change(a)));
    deltas
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

/// The classes worth weighing: those any evidence points at, plus the usual
/// rivals (a member down, a dependency down, slowness) so they get ruled out explicitly.
fn candidate_classes(facts: &Facts) -> Vec<AnomalyClass> {
    let mut classes: Vec<AnomalyClass> = facts.violated().map(|i| i.class).collect();
    classes.extend([
        AnomalyClass::NodeDown,
        AnomalyClass::DependencyDown,
        AnomalyClass::LatencySpike,
    ]);
    let mut unique = Vec::new();
    for c in classes {
        if !unique.contains(&c) {
            unique.push(c);
        }
    }
    unique
}

#[derive(Debug, Clone)]
struct Item {
    at_ms: Option<u64>,
    source: String,
    text: String,
    weight: f64,
}

#[derive(Debug, Clone)]
struct Hypothesis {
    class: AnomalyClass,
    supporting: Vec<Item>,
    contradicting: Vec<Item>,
    first_seen: Option<u64>,
    components: Vec<String>,
    /// Its violations were seen in a single poll and then cleared.
    brief: bool,
    /// Its violations so far were seen only in the latest poll.
    fresh: bool,
    /// Every violation of this class had cleared by the end of the window.
    resolved: bool,
    /// A violation of this class came and went more than once.
    flapping: bool,
}

impl Hypothesis {
    fn support(&self) -> f64 {
        self.supporting.iter().map(|i| i.weight).sum()
    }

    fn score(&self) -> f64 {
        self.support() - self.contradicting.iter().map(|i| i.weight).sum::<f64>()
    }

    fn kinds_of_evidence(&self) -> usize {
        let mut kinds: Vec<&str> = self
            .supporting
            .iter()
            .map(|i| i.source.split(' ').next().unwrap_or(""))
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds.len()
    }

    fn weigh(class: AnomalyClass, facts: &Facts) -> Self {
        let mut h = Hypothesis {
            class,
            supporting: Vec::new(),
            contradicting: Vec::new(),
            first_seen: None,
            components: Vec::new(),
            brief: false,
            fresh: false,
            resolved: false,
            flapping: false,
        };
        let first_overall = facts.first_violation();
        let own: Vec<&InvariantRecord> = facts
            .invariants
            .iter()
            .filter(|i| i.class == class)
            .collect();
        let own_violated: Vec<&InvariantRecord> = own
            .iter()
            .copied()
            .filter(|i| i.first_violated.is_some())
            .collect();
        for inv in &own_violated {
            let at = inv.first_violated;
            let weight =
                if inv.violated_polls >= 2 || (inv.violated_polls == 0 && inv.violated_at_end) {
                    0.45
                } else {
                    0.25
                };
            h.add_support(
                at,
                format!("invariant {}", inv.name),
                format!("violated at {}: {}", rel(facts, at), inv.reading()),
                weight,
            );
            if inv.exceeds_clearly() {
                h.add_support(
                    at,
                    format!("invariant {}", inv.name),
                    "the observed value is well past its bound".into(),
                    0.1,
                );
            }
            if at.is_some() && at == first_overall {
                h.add_support(
                    at,
                    format!("invariant {}", inv.name),
                    "the first invariant to break in this window".into(),
                    0.15,
                );
            }
            if !inv.violated_at_end {
                h.contradicting.push(item(
                    None,
                    format!("invariant {}", inv.name),
                    "it holds again by the end of the window".into(),
                    0.05,
                ));
            }
            for c in &inv.components {
                push_unique(&mut h.components, facts.component_label(c));
            }
            h.first_seen = match (h.first_seen, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let single = !own_violated.is_empty() && own_violated.iter().all(|i| i.violated_polls <= 1);
        h.fresh = single && own_violated.iter().any(|i| i.violated_at_end);
        h.brief = single && !h.fresh;
        h.resolved = !own_violated.is_empty() && own_violated.iter().all(|i| !i.violated_at_end);
        h.flapping = own_violated.iter().any(|i| i.onsets >= 2);
        for inv in own
            .iter()
            .filter(|i| i.first_violated.is_none() && !i.ever_unknown && facts.polls > 1)
        {
            h.contradicting.push(item(
                None,
                format!("invariant {}", inv.name),
                format!("held throughout ({})", inv.detail),
                0.2,
            ));
        }
        match class {
            AnomalyClass::NodeDown => h.weigh_nodes(facts, false),
            AnomalyClass::DependencyDown => h.weigh_nodes(facts, true),
            AnomalyClass::LatencySpike => h.weigh_latency(facts),
            _ => {}
        }
        h.weigh_component_metrics(facts);
        h.weigh_consequence(facts);
        h.weigh_events(facts);
        h
    }

    fn add_support(&mut self, at_ms: Option<u64>, source: String, text: String, weight: f64) {
        self.supporting.push(item(at_ms, source, text, weight));
    }

    /// A member (or a shared dependency) leaving the `up` state.
    fn weigh_nodes(&mut self, facts: &Facts, dependency: bool) {
        let relevant: Vec<&NodeChange> = facts
            .node_changes
            .iter()
            .filter(|c| c.shared_dependency == dependency)
            .collect();
        let what = if dependency {
            "shared dependency"
        } else {
            "member"
        };
        for c in &relevant {
            let weight = match c.to {
                NodeStatus::Down => 0.3,
                NodeStatus::Unknown => 0.2,
                _ => 0.1,
            };
            self.add_support(
                Some(c.at_ms),
                format!("node {}", c.id),
                format!(
                    "{what} {} went {} → {} at {}",
                    c.label,
                    status_word(c.from),
                    status_word(c.to),
                    facts.rel(c.at_ms)
                ),
                weight,
            );
            if matches!(c.to, NodeStatus::Down | NodeStatus::Unknown) {
                push_unique(&mut self.components, c.label.clone());
                self.first_seen = Some(self.first_seen.map_or(c.at_ms, |t| t.min(c.at_ms)));
            }
        }
        let dependency_down = facts
            .node_changes
            .iter()
            .filter(|c| c.shared_dependency && c.to == NodeStatus::Down)
            .min_by_key(|c| c.at_ms);
        if dependency {
            if let Some(dep) = dependency_down.map(|c| c.at_ms) {
                let followers = facts
                    .node_changes
                    .iter()
                    .filter(|c| !c.shared_dependency && c.at_ms >= dep && c.to != NodeStatus::Down)
                    .count();
                if followers > 0 {
                    self.add_support(
                        Some(dep),
                        "node members".into(),
                        format!("{followers} member(s) became degraded or unknown after it"),
                        0.1,
                    );
                }
            }
        } else if !relevant.iter().any(|c| c.to != NodeStatus::Degraded)
            && !facts.node_changes.iter().any(|c| c.shared_dependency)
            && relevant.len() >= facts.member_count.max(1)
            && facts.member_count > 1
        {
            self.contradicting.push(item(
                None,
                "node members".into(),
                "every member degraded at once, which points at something they share".into(),
                0.15,
            ));
        }
        if let (false, Some(dep)) = (dependency, dependency_down) {
            if !relevant.is_empty() && relevant.iter().all(|c| c.at_ms >= dep.at_ms) {
                self.contradicting.push(item(
                    Some(dep.at_ms),
                    format!("node {}", dep.id),
                    format!(
                        "the members changed only after {} went down, which explains them",
                        dep.label
                    ),
                    0.3,
                ));
            }
        }
        if !relevant.iter().any(|c| c.to != NodeStatus::Degraded) && !facts.nodes.is_empty() {
            self.contradicting.push(item(
                None,
                "node status".into(),
                format!("no {what} stopped answering"),
                0.3,
            ));
        }
    }

    fn weigh_latency(&mut self, facts: &Facts) {
        let timed: Vec<&MetricDelta> = facts
            .metric_deltas
            .iter()
            .filter(|d| d.time_like())
            .collect();
        let moved = |d: &MetricDelta| d.significant && d.during > d.before;
        let mut jumped = false;
        let mut weight_left: f64 = 0.3;
        for d in &timed {
            let ratio = d.ratio();
            if ratio >= LATENCY_JUMP && moved(d) {
                jumped = true;
                let w = 0.2_f64.min(weight_left);
                weight_left -= w;
                self.add_support(Some(d.at_ms), format!("metric {}", d.name), d.describe(), w);
                if let Some(node) = &d.node {
                    push_unique(&mut self.components, facts.component_label(node));
                }
                self.first_seen = Some(self.first_seen.map_or(d.at_ms, |t| t.min(d.at_ms)));
            } else if ratio >= 1.2 && moved(d) && weight_left > 0.0 {
                let w = 0.05_f64.min(weight_left);
                weight_left -= w;
                self.add_support(
                    Some(d.at_ms),
                    format!("metric {}", d.name),
                    format!("{} (a modest rise)", d.describe()),
                    w,
                );
            }
        }
        if !timed.is_empty() && !jumped {
            self.contradicting.push(item(
                None,
                "metrics".into(),
                "no latency reading even doubled".into(),
                0.2,
            ));
        }
    }

    /// Metrics of the named components that moved well beyond their noise.
    fn weigh_component_metrics(&mut self, facts: &Facts) {
        let ids: Vec<&str> = self
            .components
            .iter()
            .filter_map(|c| c.split(' ').next())
            .collect();
        let moved: Vec<&MetricDelta> = facts
            .metric_deltas
            .iter()
            .filter(|d| d.significant && !d.time_like())
            .filter(|d| d.node.as_deref().is_some_and(|n| ids.contains(&n)))
            .take(2)
            .collect();
        for d in moved {
            self.add_support(
                Some(d.at_ms),
                format!("metric {}", d.name),
                d.describe(),
                0.1,
            );
        }
    }

    /// Symptoms that began after a member or dependency stopped answering are
    /// more likely its consequences than a cause of their own.
    fn weigh_consequence(&mut self, facts: &Facts) {
        if matches!(
            self.class,
            AnomalyClass::NodeDown | AnomalyClass::DependencyDown
        ) {
            return;
        }
        let Some(first) = self.first_seen else { return };
        if let Some(c) = facts
            .node_changes
            .iter()
            .filter(|c| c.to == NodeStatus::Down && c.at_ms <= first)
            .min_by_key(|c| c.at_ms)
        {
            self.contradicting.push(item(
                Some(c.at_ms),
                format!("node {}", c.id),
                format!(
                    "it began after {} went down at {}, so it may be a consequence",
                    c.label,
                    facts.rel(c.at_ms)
                ),
                0.3,
            ));
        }
    }

    fn weigh_events(&mut self, facts: &Facts) {
        let mut weight_left: f64 = 0.15;
        for (at, level, message) in &facts.warnings {
            let lower = message.to_lowercase();
            let names_component = self.components.iter().any(|c| {
                let id = c.split(' ').next().unwrap_or(c).to_lowercase();
                !id.is_empty() && lower.contains(&id)
            });
            if names_component && weight_left > 0.0 {
                let w = 0.05_f64.min(weight_left);
                weight_left -= w;
                let lvl = if *level == Level::Error {
                    "error"
                } else {
                    "warning"
                };
                self.add_support(
                    Some(*at),
                    "event".into(),
                    format!("{lvl} at {}: {message}", facts.rel(*at)),
                    w,
                );
            }
        }
    }
}

fn item(at_ms: Option<u64>, source: String, text: String, weight: f64) -> Item {
    Item {
        at_ms,
        source,
        text,
        weight,
    }
}

fn push_unique(list: &mut Vec<String>, s: String) {
    if !list.contains(&s) {
        list.push(s);
    }
}

fn rel(facts: &Facts, at: Option<u64>) -> String {
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

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn unit_suffix(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    }
}

/// The glossary term for a class: the one matching a violated invariant's name
/// if several share the class, else the first; the class label if none.
fn term_for(window: &ObservationWindow, facts: &Facts, class: AnomalyClass) -> String {
    let terms: Vec<&str> = window
        .context
        .glossary
        .iter()
        .filter(|g| g.class == Some(class))
        .map(|g| g.term.as_str())
        .collect();
    let violated: Vec<String> = facts
        .violated()
        .filter(|i| i.class == class)
        .map(|i| i.name.to_lowercase())
        .collect();
    terms
        .iter()
        .find(|t| {
            violated
                .iter()
                .any(|v| v.contains(&t.to_lowercase()) || t.to_lowercase().contains(v))
        })
        .or(terms.first())
        .map(|t| t.to_string())
        .unwrap_or_else(|| class.label().to_string())
}

fn confidence(best: &Hypothesis, runner_up: Option<&Hypothesis>) -> (f64, Vec<String>) {
    let mut why = Vec::new();
    let mut c = 1.0 - (-1.6 * best.score()).exp();
    if let Some(r) = runner_up.filter(|r| r.score() > 0.0) {
        let gap = best.score() - r.score();
        if gap < 0.25 {
            c *= 0.55 + gap;
            why.push(format!("{} is nearly as well supported", r.class.label()));
        }
    }
    if best.brief {
        c = c.min(0.4);
        why.push("the violation was seen in a single poll".into());
    }
    if best.fresh {
        c = c.min(0.75);
        why.push("so far only the latest poll shows the violation".into());
    }
    if best.flapping {
        c *= 0.85;
        why.push("the violation came and went".into());
    }
    if best.resolved {
        c *= 0.8;
        why.push("it had cleared by the end of the window".into());
    }
    if best.kinds_of_evidence() < 2 {
        c = c.min(0.6);
        why.push("only one kind of evidence points at it".into());
    }
    (round2(c.clamp(0.05, MAX_CONFIDENCE)), why)
}

fn severity(class: AnomalyClass, facts: &Facts, best: &Hypothesis) -> Severity {
    let base = match class {
        AnomalyClass::DependencyDown => Severity::Critical,
        AnomalyClass::NodeDown => {
            let down = facts
                .node_changes
                .iter()
                .filter(|c| !c.shared_dependency && c.to == NodeStatus::Down)
                .count();
            if facts.member_count > 0 && down * 2 >= facts.member_count {
                Severity::Critical
            } else {
                Severity::High
            }
        }
        AnomalyClass::BoundExceeded
        | AnomalyClass::Accounting
        | AnomalyClass::CapacityExhausted => Severity::High,
        AnomalyClass::StateDivergence | AnomalyClass::LatencySpike | AnomalyClass::Other => {
            Severity::Medium
        }
        AnomalyClass::Imbalance => Severity::Low,
    };
    if best.brief || best.resolved {
        base.min(Severity::Medium).max(Severity::Low)
    } else {
        base
    }
}

fn recommended_action(class: AnomalyClass, components: &str) -> String {
    match class {
        AnomalyClass::NodeDown => format!("Bring {components} back (restart the process or container), find out why it stopped answering, and confirm the remaining members carried its work."),
        AnomalyClass::DependencyDown => format!("Restore {components}, which the members share; check its process, network and resources, then watch the invariants recover."),
        AnomalyClass::StateDivergence => format!("Compare the shared state of {components} with the members' local views, find the writes that were missed or bypassed, and reconcile before trusting either."),
        AnomalyClass::BoundExceeded => format!("Treat the bound on {components} as broken: find which path acknowledged work without counting it, and audit what was let through."),
        AnomalyClass::LatencySpike => format!("Look at load and resource pressure on {components}; shed or spread load and check for a slow dependency."),
        AnomalyClass::Imbalance => format!("Rebalance work or data away from {components}."),
        AnomalyClass::CapacityExhausted => format!("Free or add capacity on {components} before it runs out."),
        AnomalyClass::Accounting => format!("Reconcile the counts on {components}: find operations that were lost or counted twice."),
        AnomalyClass::Other => format!("Inspect {components} and the violated invariants."),
    }
}

fn likely_cause(class: AnomalyClass, facts: &Facts, best: &Hypothesis) -> String {
    let node = |dep: bool| {
        facts
            .node_changes
            .iter()
            .filter(|c| c.shared_dependency == dep && c.to != NodeStatus::Degraded)
            .min_by_key(|c| c.at_ms)
    };
    let inv = facts
        .violated()
        .filter(|i| i.class == class)
        .min_by_key(|i| i.first_violated);
    let surge = facts
        .metric_deltas
        .iter()
        .filter(|d| !d.time_like() && d.significant && d.ratio() >= 2.0 && d.node.is_none())
        .max_by(|a, b| a.ratio().total_cmp(&b.ratio()));
    match (class, node(class == AnomalyClass::DependencyDown), inv) {
        (AnomalyClass::NodeDown | AnomalyClass::DependencyDown, Some(c), _) => format!(
            "{} stopped answering at {} ({} → {}){}",
            c.label,
            facts.rel(c.at_ms),
            status_word(c.from),
            status_word(c.to),
            if c.shared_dependency {
                "; the members depend on it"
            } else {
                ""
            }
        ),
        (_, _, Some(i)) => {
            let mut s = format!(
                "{} broke at {}: {}",
                i.name,
                rel(facts, i.first_violated),
                i.reading()
            );
            if let Some(d) = surge {
                s.push_str(&format!(", while {}", d.describe()));
            }
            s
        }
        _ => match best.supporting.first() {
            Some(first) => first.text.clone(),
            None => "unclear from the observations".into(),
        },
    }
}

fn timeline(window: &ObservationWindow, facts: &Facts) -> Vec<TimelineEntry> {
    let mut t = Vec::new();
    if let Some(first) = window.snapshots.first() {
        let up = first
            .nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Up)
            .count();
        let violated = first
            .invariants
            .iter()
            .filter(|i| i.status == InvariantStatus::Violated)
            .count();
        t.push(TimelineEntry {
            at_ms: first.at_ms,
            event: format!(
                "observation starts: {up} of {} nodes up, {violated} of {} invariants violated",
                first.nodes.len(),
                first.invariants.len()
            ),
        });
    }
    for c in &facts.node_changes {
        t.push(TimelineEntry {
            at_ms: c.at_ms,
            event: format!(
                "{} {} → {}",
                c.label,
                status_word(c.from),
                status_word(c.to)
            ),
        });
    }
    let changes = if window.invariant_changes.is_empty() {
        super::window::changes_between(&window.snapshots)
    } else {
        window.invariant_changes.clone()
    };
    for c in &changes {
        t.push(TimelineEntry {
            at_ms: c.at_ms,
            event: format!(
                "{} {} → {}: {}",
                c.invariant,
                inv_word(c.from),
                inv_word(c.to),
                c.detail
            ),
        });
    }
    for (at, _, message) in facts.warnings.iter().take(8) {
        t.push(TimelineEntry {
            at_ms: *at,
            event: message.clone(),
        });
    }
    t.sort_by_key(|e| e.at_ms);
    t
}

fn inv_word(s: InvariantStatus) -> &'static str {
    match s {
        InvariantStatus::Ok => "ok",
        InvariantStatus::Violated => "violated",
        InvariantStatus::Unknown => "unknown",
    }
}

fn metric_readings(facts: &Facts) -> Vec<MetricReading> {
    facts
        .metric_deltas
        .iter()
        .filter(|d| d.significant)
        .take(8)
        .map(|d| MetricReading {
            metric: d.name.clone(),
            component: d.node.clone(),
            before: Some(d.before),
            during: Some(d.during),
            unit: d.unit.clone(),
        })
        .collect()
}

fn alternatives(hypotheses: &[Hypothesis], chosen: Option<AnomalyClass>) -> Vec<Alternative> {
    hypotheses
        .iter()
        .map(|h| {
            let verdict = if Some(h.class) == chosen {
                "accepted: best supported by the evidence".to_string()
            } else if h.support() >= MIN_SUPPORT && h.score() > 0.0 {
                format!(
                    "possible: supported (weight {:.2}) but less than the accepted one",
                    h.score()
                )
            } else if h.supporting.is_empty() {
                "rejected: nothing observed supports it".to_string()
            } else {
                "rejected: the contradicting evidence outweighs the supporting".to_string()
            };
            Alternative {
                hypothesis: h.class.label().to_string(),
                supporting: h.supporting.iter().map(|i| i.text.clone()).collect(),
                contradicting: h.contradicting.iter().map(|i| i.text.clone()).collect(),
                conclusion: verdict,
            }
        })
        .collect()
}

fn anomaly(
    window: &ObservationWindow,
    facts: &Facts,
    best: &Hypothesis,
    all: &[Hypothesis],
) -> Diagnosis {
    let class = best.class;
    let term = term_for(window, facts, class);
    let runner_up = all.iter().find(|h| h.class != class);
    let (confidence, why) = confidence(best, runner_up);
    let components = if best.components.is_empty() {
        "the subject".to_string()
    } else {
        best.components.join(", ")
    };
    let cause = likely_cause(class, facts, best);
    let since = best
        .first_seen
        .map(|t| format!(" since {}", facts.rel(t)))
        .unwrap_or_default();
    let doubt = if why.is_empty() {
        "several independent observations agree".to_string()
    } else {
        why.join("; ")
    };
    let class_note = if term.eq_ignore_ascii_case(class.label()) {
        String::new()
    } else {
        format!(" ({})", class.label())
    };
    let narrative = format!(
        "{term}{class_note} on {components}{since}. Likely cause: {cause}. Confidence {:.0}%: {doubt}.",
        confidence * 100.0
    );
    Diagnosis {
        anomaly: term,
        class: Some(class),
        affected_components: best.components.clone(),
        timeline: timeline(window, facts),
        metric_readings: metric_readings(facts),
        evidence: best
            .supporting
            .iter()
            .map(|i| Evidence {
                at_ms: i.at_ms,
                source: i.source.clone(),
                observation: i.text.clone(),
            })
            .collect(),
        alternatives: alternatives(all, Some(class)),
        likely_cause: cause,
        severity: severity(class, facts, best),
        recommended_action: recommended_action(class, &components),
        confidence,
        narrative,
        backend: "builtin".into(),
        rule_findings: Vec::new(),
    }
}

fn healthy(window: &ObservationWindow, facts: &Facts, all: &[Hypothesis]) -> Diagnosis {
    let unknown: Vec<&str> = facts
        .invariants
        .iter()
        .filter(|i| i.ever_unknown)
        .map(|i| i.name.as_str())
        .collect();
    let weak: Vec<&Hypothesis> = all.iter().filter(|h| h.support() > 0.0).collect();
    let mut confidence: f64 = match facts.polls {
        0 => 0.2,
        1 => 0.5,
        2..=3 => 0.7,
        _ => 0.9,
    };
    let mut doubts = Vec::new();
    if !unknown.is_empty() {
        confidence -= 0.2;
        doubts.push(format!("could not evaluate {}", unknown.join(", ")));
    }
    if !weak.is_empty() {
        confidence -= 0.15;
        doubts.push("some weak signals (see alternatives)".to_string());
    }
    let confidence = round2(confidence.clamp(0.05, MAX_CONFIDENCE));
    let nodes_up = facts
        .nodes
        .iter()
        .filter(|n| n.status == NodeStatus::Up)
        .count();
    let evidence = vec![Evidence {
        at_ms: window.snapshots.last().map(|s| s.at_ms),
        source: "invariants".into(),
        observation: format!(
            "{} polls: no invariant violated, {nodes_up} of {} nodes up",
            facts.polls,
            facts.nodes.len()
        ),
    }];
    let narrative = format!(
        "No anomaly in {} polls: every invariant held and no node stopped answering. Confidence {:.0}%{}.",
        facts.polls,
        confidence * 100.0,
        if doubts.is_empty() { String::new() } else { format!(" ({})", doubts.join("; ")) }
    );
    Diagnosis {
        anomaly: NO_ANOMALY.into(),
        class: None,
        affected_components: Vec::new(),
        timeline: timeline(window, facts),
        metric_readings: metric_readings(facts),
        evidence,
        alternatives: alternatives(all, None),
        likely_cause: "nothing is wrong as far as the observations show".into(),
        severity: Severity::None,
        recommended_action: "None; keep watching.".into(),
        confidence,
        narrative,
        backend: "builtin".into(),
        rule_findings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{DiagnosisContext, GlossaryEntry, Invariant};

    fn invariant(
        name: &str,
        class: AnomalyClass,
        violated: bool,
        components: &[&str],
    ) -> Invariant {
        Invariant {
            name: name.into(),
            status: if violated {
                InvariantStatus::Violated
            } else {
                InvariantStatus::Ok
            },
            detail: if violated {
                format!("{name} broken")
            } else {
                format!("{name} holds")
            },
            since_ms: 0,
            class,
            components: if violated {
                components.iter().map(|c| c.to_string()).collect()
            } else {
                vec![]
            },
            observed: Some(if violated { 10.0 } else { 0.0 }),
            bound: Some(3.0),
        }
    }

    fn node(id: &str) -> NodeHealth {
        NodeHealth {
            id: id.into(),
            role: "member".into(),
            address: String::new(),
            status: NodeStatus::Up,
            metrics: vec![],
        }
    }

    /// Two invariants of different classes break in the same poll, nothing else moves.
    fn twin_breakage() -> ObservationWindow {
        let snaps = (0..10u64)
            .map(|k| {
                let bad = k >= 5;
                HealthSnapshot {
                    at_ms: 1_000 + k * 500,
                    nodes: vec![node("m-1"), node("m-2"), node("m-3")],
                    metrics: vec![],
                    invariants: vec![
                        invariant("views agree", AnomalyClass::StateDivergence, bad, &["m-2"]),
                        invariant("count bound", AnomalyClass::BoundExceeded, bad, &["m-2"]),
                    ],
                    events: vec![],
                }
            })
            .collect();
        let context = DiagnosisContext {
            system: "three members".into(),
            components: vec![],
            glossary: vec![GlossaryEntry {
                term: "split views".into(),
                meaning: "members disagree".into(),
                class: Some(AnomalyClass::StateDivergence),
            }],
        };
        ObservationWindow::from_snapshots("s", context, snaps)
    }

    #[test]
    fn contested_evidence_gives_low_confidence() {
        let d = diagnose(&twin_breakage());
        assert!(d.class.is_some());
        assert!(
            d.confidence < 0.5,
            "confidence {} with an equally supported rival",
            d.confidence
        );
        assert!(d
            .alternatives
            .iter()
            .any(|a| a.conclusion.starts_with("possible")));
    }

    fn divergence(violated_at: &[u64]) -> ObservationWindow {
        let snaps = (0..12u64)
            .map(|k| HealthSnapshot {
                at_ms: k * 500,
                nodes: vec![node("m-1"), node("m-2"), node("m-3")],
                invariants: vec![invariant(
                    "views agree",
                    AnomalyClass::StateDivergence,
                    violated_at.contains(&k),
                    &["m-2"],
                )],
                ..Default::default()
            })
            .collect();
        ObservationWindow::from_snapshots("s", DiagnosisContext::default(), snaps)
    }

    #[test]
    fn flapping_violation_is_less_certain_than_a_steady_one() {
        let steady = diagnose(&divergence(&[6, 7, 8, 9, 10, 11]));
        let flapping = diagnose(&divergence(&[6, 7, 9, 10, 11]));
        assert_eq!(steady.class, flapping.class);
        assert!(
            flapping.confidence < steady.confidence,
            "{} vs {}",
            flapping.confidence,
            steady.confidence
        );
        assert!(
            flapping.narrative.contains("came and went"),
            "{}",
            flapping.narrative
        );
    }

    #[test]
    fn class_label_is_used_when_the_glossary_has_no_term() {
        let mut w = twin_breakage();
        w.context.glossary.clear();
        let d = diagnose(&w);
        assert_eq!(d.anomaly, d.class.expect("a class").label());
    }

    #[test]
    fn empty_window_is_no_anomaly_with_low_confidence() {
        let w = ObservationWindow::from_snapshots("s", DiagnosisContext::default(), vec![]);
        let d = diagnose(&w);
        assert_eq!(d.anomaly, NO_ANOMALY);
        assert!(d.confidence <= 0.3);
    }

    #[test]
    fn changes_alone_are_enough_to_name_the_anomaly() {
        let mut w = twin_breakage();
        w.snapshots.clear();
        w.invariant_changes.retain(|c| c.invariant == "views agree");
        let d = diagnose(&w);
        assert_eq!(d.anomaly, "split views");
        assert_eq!(d.affected_components, vec!["m-2".to_string()]);
    }

    #[test]
    fn a_member_going_down_without_an_invariant_is_still_seen() {
        let snaps = (0..8u64)
            .map(|k| {
                let mut nodes = vec![node("m-1"), node("m-2"), node("m-3")];
                if k >= 4 {
                    nodes[2].status = NodeStatus::Down;
                }
                HealthSnapshot {
                    at_ms: k * 500,
                    nodes,
                    ..Default::default()
                }
            })
            .collect();
        let d = diagnose(&ObservationWindow::from_snapshots(
            "s",
            DiagnosisContext::default(),
            snaps,
        ));
        assert_eq!(d.class, Some(AnomalyClass::NodeDown));
        assert_eq!(d.affected_components, vec!["m-3".to_string()]);
        assert!(
            d.confidence <= 0.6,
            "one kind of evidence only: {}",
            d.confidence
        );
    }
}
