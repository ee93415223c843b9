//! The prompt for model backends: a generic system prompt plus the window as
//! JSON. Every subject-specific word in it comes from the plugin's window.

use super::report::{class_key, NO_ANOMALY};
use super::summary;
use super::window::ObservationWindow;
use plugin_api::{AnomalyClass, HealthSnapshot, NodeStatus};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
    /// The answer's JSON schema: with the subject's remedy ids when it declares any.
    pub schema: serde_json::Value,
}

/// What each generic class means, in words that fit any subject.
fn class_meaning(class: AnomalyClass) -> &'static str {
    match class {
        AnomalyClass::NodeDown => "a member of the cluster stopped answering",
        AnomalyClass::DependencyDown => "a dependency that the members share stopped answering",
        AnomalyClass::StateDivergence => {
            "shared state disagrees with the members' local views of it"
        }
        AnomalyClass::BoundExceeded => "an acknowledged count went beyond its bound",
        AnomalyClass::LatencySpike => "latency jumped beyond its bound",
        AnomalyClass::Imbalance => "work or data is unevenly spread",
        AnomalyClass::CapacityExhausted => "a resource such as disk or memory is nearly used up",
        AnomalyClass::Accounting => "operations were lost or counted twice",
        AnomalyClass::Lag => {
            "work or data waits longer and longer (replication lag, consumer lag, a backlog)"
        }
        AnomalyClass::QuorumLoss => "a replicated group lost its quorum and cannot decide",
        AnomalyClass::ErrorBurst => {
            "errors arrived in a burst (failed requests, refused connections)"
        }
        AnomalyClass::Saturation => {
            "a component has more work than it can do: queues fill, requests are shed"
        }
        AnomalyClass::Other => "none of the above",
    }
}

pub fn system_prompt() -> String {
    let classes: String = AnomalyClass::ALL
        .iter()
        .map(|c| format!("- {}: {}\n", class_key(*c), class_meaning(*c)))
        .collect();
    format!(
        "You are a site reliability engineer diagnosing an anomaly in a distributed system \
from observations alone. You are given an observation window: the system's own description, \
its components and glossary, health snapshots (oldest first) from before and during the anomaly, \
invariant status changes with times, and events. Nothing else is known; in particular you are \
not told what fault, if any, was injected. In a large cluster a snapshot lists only the nodes \
that changed in the window; the others are summarised in its other_nodes: per role, kind and \
status, their count and each metric's min, mean and max.\n\n\
Reason from evidence:\n\
1. Build a timeline of what changed and when (times are unix milliseconds).\n\
2. Compare snapshots before and during the anomaly: node status, metric values, invariants.\n\
3. Consider several hypotheses; for each list supporting and contradicting evidence and \
conclude accepted, rejected or possible. Prefer the cause that appears first and explains \
the later symptoms.\n\
4. Pick one generic class for the anomaly:\n{classes}\
5. Name the anomaly with the glossary term whose class matches your class; if no term \
matches, use the class name. If nothing is wrong, answer \"{NO_ANOMALY}\" with class null \
and severity none.\n\
6. Name the affected components exactly as the window names them.\n\
When the window lists remedies (fixes the subject declares), propose the one that would fix \
the anomaly while it lasts, on the component it needs, or null when none fits; never invent one.\n\
7. Cite evidence with its time and values. Confidence is between 0 and 1; keep it low \
when the evidence is thin, brief or contradictory.\n\n\
Answer only with the {tool} JSON object described by the schema.",
        tool = super::report::ANSWER_NAME,
    )
}

/// Most snapshots a prompt carries: enough for the before/during picture and
/// every status change, small enough for a local model's context.
pub const PROMPT_SNAPSHOTS: usize = 10;

/// Most bytes of window JSON a prompt carries (with the system prompt, under
/// 32 KB: about 8k tokens); subjects with wordy snapshots get fewer of them.
pub const PROMPT_WINDOW_BYTES: usize = 26 * 1024;

/// The window as a model sees it: the snapshots where a node or invariant
/// changed status, the first, the last before the anomaly and the last, topped
/// up with evenly spaced others to [`PROMPT_SNAPSHOTS`]; events once, at the
/// window level. Invariant changes are kept whole.
pub fn condense(window: &ObservationWindow) -> ObservationWindow {
    condense_to(window, PROMPT_SNAPSHOTS)
}

/// [`condense`] to at most `max` snapshots.
fn condense_to(window: &ObservationWindow, max: usize) -> ObservationWindow {
    let snaps = &window.snapshots;
    let n = snaps.len();
    let mut keep: Vec<usize> = Vec::new();
    let must = |i: usize, keep: &mut Vec<usize>| {
        if i < n && !keep.contains(&i) {
            keep.push(i);
        }
    };
    must(0, &mut keep);
    if let Some(start) = window.anomaly_started_ms {
        if let Some(last_before) = snaps.iter().rposition(|s| s.at_ms < start) {
            must(last_before, &mut keep);
        }
    }
    must(n.saturating_sub(1), &mut keep);
    let changed: Vec<usize> = (1..n)
        .filter(|&i| status_changed(&snaps[i - 1], &snaps[i]))
        .collect();
    for i in spread(&changed, max.saturating_sub(keep.len())) {
        must(i, &mut keep);
    }
    let rest: Vec<usize> = (0..n).filter(|i| !keep.contains(i)).collect();
    for i in spread(&rest, max.saturating_sub(keep.len())) {
        must(i, &mut keep);
    }
    keep.sort_unstable();
    let mut events = window.events.clone();
    for e in snaps.iter().flat_map(|s| s.events.iter()) {
        if !events.contains(e) {
            events.push(e.clone());
        }
    }
    events.sort_by_key(|e| e.at_ms);
    ObservationWindow {
        snapshots: keep
            .into_iter()
            .map(|i| HealthSnapshot {
                events: Vec::new(),
                ..snaps[i].clone()
            })
            .collect(),
        events,
        ..window.clone()
    }
}

fn status_changed(a: &HealthSnapshot, b: &HealthSnapshot) -> bool {
    // By id through a map: a thousand nodes are a thousand lookups, not a million.
    let before: HashMap<&str, NodeStatus> =
        a.nodes.iter().map(|n| (n.id.as_str(), n.status)).collect();
    let inv = |s: &HealthSnapshot, name: &str| s.invariant(name).map(|i| i.status);
    b.nodes
        .iter()
        .any(|n| before.get(n.id.as_str()) != Some(&n.status))
        || b.invariants
            .iter()
            .any(|i| inv(a, &i.name) != Some(i.status))
}

/// Up to `count` items, evenly spaced, first and last included.
fn spread(items: &[usize], count: usize) -> Vec<usize> {
    if items.len() <= count {
        return items.to_vec();
    }
    match count {
        0 => Vec::new(),
        1 => vec![items[items.len() - 1]],
        _ => (0..count)
            .map(|k| items[k * (items.len() - 1) / (count - 1)])
            .collect(),
    }
}

/// The full prompt for a window (mask the window first when identities must
/// not leave). The window is condensed and sent as compact JSON.
pub fn build_prompt(window: &ObservationWindow) -> Prompt {
    let json = window_json(window);
    let user = format!(
        "Subject: {}\nObservation window (JSON):\n{json}\n\nDiagnose the anomaly in this window.",
        window.subject
    );
    Prompt {
        system: system_prompt(),
        user,
        schema: super::report::answer_schema_for(&window.remedies),
    }
}

/// The window's JSON within [`PROMPT_WINDOW_BYTES`]: fewer snapshots until
/// it fits, the turning points kept first; when even the fewest are too
/// large (a cluster of hundreds of nodes), the nodes that did not change are
/// summarised (see [`super::summary`]), never the ones that did.
fn window_json(window: &ObservationWindow) -> String {
    let fits = |json: &String| json.len() <= PROMPT_WINDOW_BYTES;
    let fewest = serde_json::to_string(&condense_to(window, MIN_SNAPSHOTS)).unwrap_or_default();
    let tries = (MIN_SNAPSHOTS + 1..=PROMPT_SNAPSHOTS).rev();
    if fits(&fewest) {
        return tries
            .map(|max| serde_json::to_string(&condense_to(window, max)).unwrap_or_default())
            .find(fits)
            .unwrap_or(fewest);
    }
    let changed = summary::changed_nodes(window);
    let summarised = |max| summary::summarised(&condense_to(window, max), &changed).to_string();
    let fewest = summarised(MIN_SNAPSHOTS);
    if !fits(&fewest) {
        return fewest;
    }
    tries.map(summarised).find(fits).unwrap_or(fewest)
}

/// Fewest snapshots a prompt carries: the first, the last before the anomaly, the last.
const MIN_SNAPSHOTS: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{Invariant, InvariantStatus};

    fn window(polls: u64, violated_from: u64) -> ObservationWindow {
        let snaps = (0..polls)
            .map(|k| HealthSnapshot {
                at_ms: k * 100,
                invariants: vec![Invariant {
                    name: "views agree".into(),
                    status: if k >= violated_from {
                        InvariantStatus::Violated
                    } else {
                        InvariantStatus::Ok
                    },
                    detail: String::new(),
                    since_ms: 0,
                    class: AnomalyClass::StateDivergence,
                    components: vec![],
                    observed: None,
                    bound: None,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        ObservationWindow::from_snapshots("s", Default::default(), snaps)
    }

    #[test]
    fn condensing_keeps_the_turning_points() {
        let w = window(120, 70);
        let c = condense(&w);
        let times: Vec<u64> = c.snapshots.iter().map(|s| s.at_ms).collect();
        assert_eq!(c.snapshots.len(), PROMPT_SNAPSHOTS);
        for t in [0, 6_900, 7_000, 11_900] {
            assert!(times.contains(&t), "{t} missing from {times:?}");
        }
        assert!(times.windows(2).all(|p| p[0] < p[1]), "in time order");
        assert_eq!(c.invariant_changes, w.invariant_changes);
    }

    /// A 1,000-node window (every node's count growing, as replicas' do)
    /// in which three nodes change: one goes down, one stands still, one
    /// degrades.
    fn cluster(nodes: usize) -> ObservationWindow {
        use plugin_api::{Metric, NodeHealth};
        let snaps = (0..120u64)
            .map(|k| HealthSnapshot {
                at_ms: k * 100,
                nodes: (0..nodes)
                    .map(|i| {
                        let mut status = NodeStatus::Up;
                        let mut value = (k * 10 + i as u64) as f64;
                        match i {
                            17 if k >= 80 => status = NodeStatus::Down,
                            500 if k >= 70 => value = (700 + i) as f64,
                            999 if k >= 90 => status = NodeStatus::Degraded,
                            _ => {}
                        }
                        NodeHealth::new(
                            format!("r-{i}"),
                            "replica",
                            format!("inprocess://r-{i}"),
                            status,
                        )
                        .metric(Metric::new("value", value, ""))
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        ObservationWindow::from_snapshots("s", Default::default(), snaps)
    }

    #[test]
    fn a_thousand_node_prompt_keeps_its_budget_and_every_node_that_changed() {
        let w = cluster(1000);
        let json = window_json(&w);
        assert!(json.len() <= PROMPT_WINDOW_BYTES, "{} bytes", json.len());
        let sent: serde_json::Value = serde_json::from_str(&json).expect("json");
        let last = sent["snapshots"]
            .as_array()
            .and_then(|s| s.last())
            .expect("a snapshot");
        let nodes = last["nodes"].as_array().expect("nodes");
        let ids: Vec<&str> = nodes.iter().filter_map(|n| n["id"].as_str()).collect();
        assert_eq!(ids, ["r-17", "r-500", "r-999"]);
        let value = |id: &str| {
            nodes
                .iter()
                .find(|n| n["id"] == id)
                .map(|n| n["metrics"][0]["value"].clone())
        };
        assert_eq!(value("r-17"), Some(serde_json::json!(1207.0)));
        assert_eq!(value("r-500"), Some(serde_json::json!(1200.0)));
        assert_eq!(value("r-999"), Some(serde_json::json!(2189.0)));
        assert_eq!(last["nodes"][0]["status"], "down");
        assert_eq!(last["other_nodes"][0]["count"], 997);
    }

    #[test]
    fn small_windows_are_sent_whole() {
        let w = window(6, 3);
        assert_eq!(condense(&w).snapshots, w.snapshots);
    }
}
