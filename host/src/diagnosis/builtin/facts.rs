//! Gathering facts: what the window shows, extracted once. Invariant records,
//! nodes that left `up`, metrics before against during the anomaly, warnings.

use crate::diagnosis::window::ObservationWindow;
use plugin_api::{
    AnomalyClass, BoundIs, ComponentKind, HealthSnapshot, InvariantStatus, Level, NodeHealth,
    NodeStatus,
};
use std::collections::BTreeMap;

use super::dependencies::Dependencies;
pub(super) use super::metrics::MetricDelta;
use super::metrics::{num, MetricSeries};
use super::slots::Slots;

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
    /// What the plugin says the component is (see [`ComponentKind`]).
    pub(super) kind: ComponentKind,
    /// The plugin says it is a dependency the members share.
    pub(super) shared_dependency: bool,
}

impl NodeChange {
    /// One of the peers: its leaving is a *node down*.
    pub(super) fn member(&self) -> bool {
        self.kind == ComponentKind::Member
    }

    /// It stopped answering (as opposed to answering badly).
    pub(super) fn stopped(&self) -> bool {
        matches!(self.to, NodeStatus::Down | NodeStatus::Unknown)
    }
}

/// A warning or error of the subject, with the component it is about: the
/// one the plugin tied it to, as a component id.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Warning {
    pub(super) at_ms: u64,
    pub(super) level: Level,
    pub(super) message: String,
    pub(super) component: Option<String>,
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
    pub(super) warnings: Vec<Warning>,
    /// Components of kind member (see [`ComponentKind`]).
    pub(super) member_count: usize,
    /// What needs what, as the plugin declared it.
    pub(super) dependencies: Dependencies,
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
        let mut series = MetricSeries::new();
        let (nodes, changes) = nodes_and_changes(&window.snapshots, &mut series);
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
                kind: kind_of(&node),
                shared_dependency: shared(&node),
            })
            .collect();
        let warnings = window
            .events
            .iter()
            .chain(window.snapshots.iter().flat_map(|s| s.events.iter()))
            .filter(|e| e.level >= Level::Warn)
            .filter(|e| start_ms.is_none_or(|start| e.at_ms + PRECURSOR_MS >= start))
            .map(|e| Warning {
                at_ms: e.at_ms,
                level: e.level,
                message: e.message.clone(),
                component: e.component.as_deref().map(|c| resolve(&nodes, c)),
            })
            .fold(Vec::new(), |mut acc: Vec<Warning>, e| {
                if !acc.contains(&e) {
                    acc.push(e);
                }
                acc
            });
        let dependencies = Dependencies::declared(&nodes, &window.context.components, |name| {
            resolve(&nodes, name)
        });
        Facts {
            origin_ms,
            polls: window.snapshots.len(),
            invariants,
            node_changes,
            nodes,
            metric_deltas: series.deltas(start_ms),
            warnings,
            member_count,
            dependencies,
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

    /// The id a component name stands for: a node named by its id or its
    /// address is its id; any other name (a resource the plugin did not
    /// report as a node) is itself.
    pub(super) fn resolve(&self, name: &str) -> String {
        resolve(&self.nodes, name)
    }
}

fn resolve(nodes: &[NodeHealth], name: &str) -> String {
    nodes
        .iter()
        .find(|n| n.id == name || n.address == name)
        .map_or_else(|| name.to_string(), |n| n.id.clone())
}

/// Whether `text` mentions the id `id` as a whole word: `pg-1` is not in
/// `pg-10`, `pd` is not in `update`. Only the characters around a match
/// decide, never the id's length or letters, so renaming ids to other ids
/// keeps every answer.
pub(super) fn mentions(text: &str, id: &str) -> bool {
    if id.is_empty() {
        return false;
    }
    let part_of_id = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_');
    text.match_indices(id).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + id.len()..].chars().next();
        !before.is_some_and(part_of_id) && !after.is_some_and(part_of_id)
    })
}

/// `id (address)`, or the id alone when the address adds nothing. Display
/// only: the reasoning keeps ids and never parses a label.
fn node_label(n: &NodeHealth) -> String {
    if n.address.is_empty() || n.address.contains(&n.id) {
        n.id.clone()
    } else {
        format!("{} ({})", n.id, n.address)
    }
}

/// A node's first departure from `up` (or from its first status): the node
/// as it was then, when, from what, and the worst status it reached after.
pub(super) type Change = (NodeHealth, u64, NodeStatus, NodeStatus);

/// Each node's latest reading, in the order nodes first appeared; and each
/// node's first departure from `up` (or from its first status), with its
/// worst status after (a node that first shows up later, already down,
/// counts as a change from unknown). One pass, each node by its slot and
/// cloned once, its metric readings handed to `metrics` on the way: a
/// window of a thousand-node cluster must cost neither nodes² comparisons
/// nor a clone of every reading, and is read from memory once.
pub(super) fn nodes_and_changes<'a>(
    snapshots: &'a [HealthSnapshot],
    metrics: &mut MetricSeries<'a>,
) -> (Vec<NodeHealth>, Vec<Change>) {
    // By node slot: its latest reading, its first status, its change if any.
    let mut latest: Vec<&NodeHealth> = Vec::new();
    let mut first: Vec<NodeStatus> = Vec::new();
    let mut changed: Vec<Option<usize>> = Vec::new();
    let mut changes: Vec<Change> = Vec::new();
    let mut slots = Slots::new();
    for (i, snap) in snapshots.iter().enumerate() {
        metrics.poll(i, snap.at_ms);
        for m in &snap.metrics {
            metrics.reading(None, m);
        }
        for (position, n) in snap.nodes.iter().enumerate() {
            let (slot, new) = slots.slot(position, n.id.as_str());
            // A stale reading is the last one before the component stopped
            // answering: it says nothing about now, so it is no reading at
            // all (a frozen counter would otherwise read as a collapse to zero).
            if !n.stale {
                for m in &n.metrics {
                    metrics.reading(Some((slot, n.id.as_str())), m);
                }
            }
            if new {
                latest.push(n);
                first.push(n.status);
                changed.push(None);
                if i > 0 && n.status == NodeStatus::Down {
                    changed[slot] = Some(changes.len());
                    changes.push((n.clone(), snap.at_ms, NodeStatus::Unknown, n.status));
                }
                continue;
            }
            latest[slot] = n;
            let initial = first[slot];
            if n.status == initial {
                continue;
            }
            match changed[slot].map(|c| &mut changes[c]) {
                Some(change) if badness(n.status) > badness(change.3) => change.3 = n.status,
                Some(_) => {}
                None if badness(n.status) > badness(initial) => {
                    changed[slot] = Some(changes.len());
                    changes.push((n.clone(), snap.at_ms, initial, n.status));
                }
                None => {}
            }
        }
    }
    (latest.into_iter().cloned().collect(), changes)
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

pub(super) fn rel(facts: &Facts, at: Option<u64>) -> String {
    at.map(|t| facts.rel(t))
        .unwrap_or_else(|| "an unknown time".into())
}

#[cfg(test)]
mod tests {

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
