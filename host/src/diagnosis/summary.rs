//! Summarising a large cluster for a prompt: the nodes that changed during
//! the window are sent whole, the rest as groups (role, kind, status) with
//! their count and each metric's min, mean and max per snapshot. A window of
//! a thousand nodes no longer fits a model's context, and what the model
//! needs of the nodes that behaved like their peers is how many there were
//! and what they read; the ones that did not behave are never summarised.

use super::window::ObservationWindow;
use plugin_api::{ComponentKind, HealthSnapshot, InvariantStatus, NodeHealth, NodeStatus};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The ids of the nodes that changed during the window: their status or
/// staleness changed or was not `up`; they came or went; an invariant that
/// did not hold, or an event, names them; or a metric of theirs moved unlike
/// the same metric of their peers (same role), as a lagging replica's count
/// stands still while the others' grow.
pub fn changed_nodes(window: &ObservationWindow) -> HashSet<String> {
    let snaps = &window.snapshots;
    let mut changed: HashSet<String> = HashSet::new();
    let mut first: HashMap<&str, &NodeHealth> = HashMap::new();
    let mut last: HashMap<&str, &NodeHealth> = HashMap::new();
    let mut seen_in: HashMap<&str, usize> = HashMap::new();
    for s in snaps {
        for n in &s.nodes {
            let f = *first.entry(n.id.as_str()).or_insert(n);
            last.insert(n.id.as_str(), n);
            *seen_in.entry(n.id.as_str()).or_default() += 1;
            if n.status != NodeStatus::Up || n.stale || n.status != f.status {
                changed.insert(n.id.clone());
            }
        }
    }
    changed.extend(
        seen_in
            .iter()
            .filter(|(_, &count)| count != snaps.len())
            .map(|(id, _)| id.to_string()),
    );
    let named = snaps
        .iter()
        .flat_map(|s| s.invariants.iter())
        .filter(|i| i.status != InvariantStatus::Ok)
        .flat_map(|i| i.components.iter())
        .chain(
            window
                .invariant_changes
                .iter()
                .flat_map(|c| c.components.iter()),
        )
        .chain(
            window
                .events
                .iter()
                .chain(snaps.iter().flat_map(|s| s.events.iter()))
                .filter_map(|e| e.component.as_ref()),
        );
    changed.extend(named.cloned());
    // How far each metric moved over the window, by role and metric name.
    let mut moves: BTreeMap<(&str, &str), Vec<(&str, f64)>> = BTreeMap::new();
    for (id, f) in &first {
        let Some(l) = last.get(id) else { continue };
        for m in &f.metrics {
            if let Some(to) = l.metrics.iter().find(|x| x.name == m.name) {
                moves
                    .entry((f.role.as_str(), m.name.as_str()))
                    .or_default()
                    .push((id, to.value - m.value));
            }
        }
    }
    for peers in moves.values() {
        changed.extend(unlike_peers(peers).map(str::to_string));
    }
    changed
}

/// The ids whose move stands out from their peers' median by more than three
/// median absolute deviations (and a fifth of the median itself): robust to
/// the few that moved, whichever way.
fn unlike_peers<'a>(moves: &'a [(&'a str, f64)]) -> impl Iterator<Item = &'a str> + 'a {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let mid = median(moves.iter().map(|m| m.1).collect());
    let mad = median(moves.iter().map(|m| (m.1 - mid).abs()).collect());
    let limit = (3.0 * mad).max(0.2 * mid.abs()).max(1e-9);
    moves
        .iter()
        .filter(move |m| (m.1 - mid).abs() > limit)
        .map(|m| m.0)
}

/// Nodes of one role, kind and status in one snapshot, summarised.
#[derive(Debug, Serialize)]
struct Group<'a> {
    role: &'a str,
    kind: ComponentKind,
    status: NodeStatus,
    count: usize,
    metrics: BTreeMap<&'a str, Spread>,
}

#[derive(Debug, Serialize)]
struct Spread {
    min: f64,
    mean: f64,
    max: f64,
}

fn groups<'a>(s: &'a HealthSnapshot, changed: &HashSet<String>) -> Vec<Group<'a>> {
    let mut groups: Vec<Group<'a>> = Vec::new();
    let mut sums: Vec<BTreeMap<&'a str, (f64, usize)>> = Vec::new();
    for n in s.nodes.iter().filter(|n| !changed.contains(&n.id)) {
        let at = match groups
            .iter()
            .position(|g| g.role == n.role && g.kind == n.kind && g.status == n.status)
        {
            Some(at) => at,
            None => {
                groups.push(Group {
                    role: &n.role,
                    kind: n.kind,
                    status: n.status,
                    count: 0,
                    metrics: BTreeMap::new(),
                });
                sums.push(BTreeMap::new());
                groups.len() - 1
            }
        };
        groups[at].count += 1;
        for m in &n.metrics {
            let spread = groups[at].metrics.entry(&m.name).or_insert(Spread {
                min: m.value,
                mean: 0.0,
                max: m.value,
            });
            spread.min = spread.min.min(m.value);
            spread.max = spread.max.max(m.value);
            let sum = sums[at].entry(&m.name).or_insert((0.0, 0));
            sum.0 += m.value;
            sum.1 += 1;
        }
    }
    for (g, sums) in groups.iter_mut().zip(sums) {
        for (name, (sum, count)) in sums {
            if let Some(spread) = g.metrics.get_mut(name) {
                spread.mean = sum / count.max(1) as f64;
            }
        }
    }
    groups
}

/// The window as JSON with only the `changed` nodes in each snapshot's
/// `nodes`, and the others summarised in its `other_nodes`.
pub fn summarised(window: &ObservationWindow, changed: &HashSet<String>) -> Value {
    let others: Vec<Value> = window
        .snapshots
        .iter()
        .map(|s| serde_json::to_value(groups(s, changed)).unwrap_or(Value::Null))
        .collect();
    let kept = ObservationWindow {
        snapshots: window
            .snapshots
            .iter()
            .map(|s| HealthSnapshot {
                nodes: s
                    .nodes
                    .iter()
                    .filter(|n| changed.contains(&n.id))
                    .cloned()
                    .collect(),
                at_ms: s.at_ms,
                metrics: s.metrics.clone(),
                invariants: s.invariants.clone(),
                events: s.events.clone(),
            })
            .collect(),
        ..window.clone()
    };
    let mut value = serde_json::to_value(&kept).unwrap_or(Value::Null);
    if let Some(Value::Array(snaps)) = value.get_mut("snapshots") {
        for (s, other) in snaps.iter_mut().zip(others) {
            if let Value::Object(s) = s {
                s.insert("other_nodes".into(), other);
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{DiagnosisContext, Metric};

    fn snap(k: u64, n: usize) -> HealthSnapshot {
        HealthSnapshot {
            at_ms: k * 100,
            nodes: (0..n)
                .map(|i| {
                    NodeHealth::new(format!("r-{i}"), "replica", "", NodeStatus::Up)
                        .metric(Metric::new("value", (k * 10 + i as u64 % 3) as f64, ""))
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn peers_moving_together_are_unchanged_and_one_standing_still_is_not() {
        let mut snaps: Vec<HealthSnapshot> = (0..5).map(|k| snap(k, 50)).collect();
        for s in &mut snaps[2..] {
            s.nodes[7].metrics[0].value = 20.0;
        }
        snaps[4].nodes[9].status = NodeStatus::Degraded;
        let w = ObservationWindow::from_snapshots("s", DiagnosisContext::default(), snaps);
        let changed = changed_nodes(&w);
        let mut ids: Vec<&String> = changed.iter().collect();
        ids.sort();
        assert_eq!(ids, ["r-7", "r-9"]);
        let v = summarised(&w, &changed);
        let last = &v["snapshots"][4];
        assert_eq!(last["nodes"].as_array().map(Vec::len), Some(2));
        assert_eq!(last["other_nodes"][0]["count"], 48);
        assert_eq!(last["other_nodes"][0]["metrics"]["value"]["min"], 40.0);
        assert_eq!(last["other_nodes"][0]["metrics"]["value"]["max"], 42.0);
    }
}
