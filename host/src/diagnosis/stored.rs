//! How a journal stores a diagnosis's observation window: each poll keeps
//! its subject-wide metrics, invariants and events, but of its nodes only
//! those that changed since the poll before (and of those, only what
//! changed: status, staleness or metric values). A window of a thousand-node
//! cluster would otherwise repeat every node's id, role, address and metric
//! names in each of up to 120 polls (about 220 KB a poll).
//!
//! Reading gives back the very same window (floats bit for bit). Journals
//! written before this format (every poll whole) read as they are; a format
//! newer than this host knows is an error naming it.
//!
//! Use with `#[serde(with = "crate::diagnosis::stored")]`.

use super::window::ObservationWindow;
use plugin_api::{Event, HealthSnapshot, Invariant, Metric, NodeHealth, NodeStatus};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The format this host writes and reads (besides whole polls).
pub const FORMAT: u32 = 1;

/// A window as written: its fields, with `snapshots` left empty and the
/// polls under `snapshot_changes` instead.
#[derive(Serialize)]
struct Out<'a> {
    #[serde(flatten)]
    window: &'a ObservationWindow,
    snapshot_changes: Polls,
}

#[derive(Deserialize)]
struct In {
    #[serde(flatten)]
    window: ObservationWindow,
    /// Absent in journals of hosts before this format.
    #[serde(default)]
    snapshot_changes: Option<Polls>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Polls {
    format: u32,
    polls: Vec<Poll>,
}

/// One poll, with its nodes whole (the first poll, or one whose node ids or
/// their order differ from the poll before) or as changes to the poll before.
#[derive(Debug, Serialize, Deserialize)]
struct Poll {
    at_ms: u64,
    metrics: Vec<Metric>,
    invariants: Vec<Invariant>,
    events: Vec<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nodes: Option<Vec<NodeHealth>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    changed: Vec<NodeChange>,
}

/// A node that changed since the poll before: at position `at` of both.
#[derive(Debug, Serialize, Deserialize)]
struct NodeChange {
    at: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<NodeStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stale: Option<bool>,
    /// Every metric's value, in order, when any changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    values: Option<Vec<f64>>,
    /// The whole node, when more than these changed (a role, a metric's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<NodeHealth>,
}

pub fn serialize<S: Serializer>(window: &ObservationWindow, s: S) -> Result<S::Ok, S::Error> {
    let rest = ObservationWindow {
        subject: window.subject.clone(),
        context: window.context.clone(),
        snapshots: Vec::new(),
        invariant_changes: window.invariant_changes.clone(),
        events: window.events.clone(),
        anomaly_started_ms: window.anomaly_started_ms,
        remedies: window.remedies.clone(),
    };
    Out {
        window: &rest,
        snapshot_changes: encode(&window.snapshots),
    }
    .serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ObservationWindow, D::Error> {
    let stored = In::deserialize(d)?;
    let mut window = stored.window;
    if let Some(polls) = stored.snapshot_changes {
        window.snapshots = decode(polls).map_err(serde::de::Error::custom)?;
    }
    Ok(window)
}

fn encode(snapshots: &[HealthSnapshot]) -> Polls {
    let mut polls = Vec::with_capacity(snapshots.len());
    let mut previous: Option<&HealthSnapshot> = None;
    for s in snapshots {
        let same_ids = previous.is_some_and(|p| {
            p.nodes.len() == s.nodes.len()
                && p.nodes.iter().zip(&s.nodes).all(|(a, b)| a.id == b.id)
        });
        let (nodes, changed) = match previous {
            Some(p) if same_ids => (
                None,
                p.nodes
                    .iter()
                    .zip(&s.nodes)
                    .enumerate()
                    .filter_map(|(at, (a, b))| change(at, a, b))
                    .collect(),
            ),
            _ => (Some(s.nodes.clone()), Vec::new()),
        };
        polls.push(Poll {
            at_ms: s.at_ms,
            metrics: s.metrics.clone(),
            invariants: s.invariants.clone(),
            events: s.events.clone(),
            nodes,
            changed,
        });
        previous = Some(s);
    }
    Polls {
        format: FORMAT,
        polls,
    }
}

/// What changed from `a` to `b` (the same id), or `None` when nothing did.
fn change(at: usize, a: &NodeHealth, b: &NodeHealth) -> Option<NodeChange> {
    let same_shape = a.role == b.role
        && a.address == b.address
        && a.kind == b.kind
        && a.depends_on == b.depends_on
        && a.metrics.len() == b.metrics.len()
        && a.metrics.iter().zip(&b.metrics).all(|(x, y)| {
            x.name == y.name && x.unit == y.unit && x.kind == y.kind && x.worse == y.worse
        });
    if !same_shape {
        return Some(NodeChange {
            at,
            status: None,
            stale: None,
            values: None,
            node: Some(b.clone()),
        });
    }
    // Bit for bit: -0 is not 0 to a reader that must get the window back.
    let values_moved = a
        .metrics
        .iter()
        .zip(&b.metrics)
        .any(|(x, y)| x.value.to_bits() != y.value.to_bits());
    let c = NodeChange {
        at,
        status: (a.status != b.status).then_some(b.status),
        stale: (a.stale != b.stale).then_some(b.stale),
        values: values_moved.then(|| b.metrics.iter().map(|m| m.value).collect()),
        node: None,
    };
    (c.status.is_some() || c.stale.is_some() || c.values.is_some()).then_some(c)
}

/// Why stored polls cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum StoredWindowError {
    #[error(
        "the window's polls are stored in format {0}, which this host (demo-host {host}) cannot read: it reads format {FORMAT}",
        host = env!("CARGO_PKG_VERSION")
    )]
    Format(u32),
    #[error("poll {poll} of the window lists node changes but no poll before it")]
    NoPrevious { poll: usize },
    #[error("poll {poll} of the window changes node {at} of a poll of {nodes} nodes")]
    OutOfRange {
        poll: usize,
        at: usize,
        nodes: usize,
    },
    #[error("poll {poll} of the window changes {values} metric values of node {at}, which has {metrics}")]
    Values {
        poll: usize,
        at: usize,
        values: usize,
        metrics: usize,
    },
}

fn decode(stored: Polls) -> Result<Vec<HealthSnapshot>, StoredWindowError> {
    if stored.format != FORMAT {
        return Err(StoredWindowError::Format(stored.format));
    }
    let mut snapshots: Vec<HealthSnapshot> = Vec::with_capacity(stored.polls.len());
    for (i, p) in stored.polls.into_iter().enumerate() {
        let poll = i + 1;
        let nodes = match p.nodes {
            Some(nodes) => nodes,
            None => {
                let mut nodes = snapshots
                    .last()
                    .map(|s| s.nodes.clone())
                    .ok_or(StoredWindowError::NoPrevious { poll })?;
                let count = nodes.len();
                for c in p.changed {
                    let node = nodes.get_mut(c.at).ok_or(StoredWindowError::OutOfRange {
                        poll,
                        at: c.at,
                        nodes: count,
                    })?;
                    apply(node, c, poll)?;
                }
                nodes
            }
        };
        snapshots.push(HealthSnapshot {
            at_ms: p.at_ms,
            nodes,
            metrics: p.metrics,
            invariants: p.invariants,
            events: p.events,
        });
    }
    Ok(snapshots)
}

fn apply(node: &mut NodeHealth, c: NodeChange, poll: usize) -> Result<(), StoredWindowError> {
    if let Some(whole) = c.node {
        *node = whole;
        return Ok(());
    }
    if let Some(status) = c.status {
        node.status = status;
    }
    if let Some(stale) = c.stale {
        node.stale = stale;
    }
    if let Some(values) = c.values {
        if values.len() != node.metrics.len() {
            return Err(StoredWindowError::Values {
                poll,
                at: c.at,
                values: values.len(),
                metrics: node.metrics.len(),
            });
        }
        for (m, v) in node.metrics.iter_mut().zip(values) {
            m.value = v;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{ComponentKind, DiagnosisContext};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        window: ObservationWindow,
    }

    fn node(id: &str, value: f64) -> NodeHealth {
        NodeHealth::new(id, "replica", format!("inprocess://{id}"), NodeStatus::Up)
            .metric(Metric::new("value", value, ""))
    }

    fn window(snapshots: Vec<HealthSnapshot>) -> ObservationWindow {
        ObservationWindow::from_snapshots("s", DiagnosisContext::default(), snapshots)
    }

    fn poll(at_ms: u64, nodes: Vec<NodeHealth>) -> HealthSnapshot {
        HealthSnapshot {
            at_ms,
            nodes,
            metrics: vec![Metric::counter("writes", at_ms as f64, "ops")],
            ..Default::default()
        }
    }

    fn round_trip(w: ObservationWindow) -> String {
        let held = Holder { window: w };
        let json = serde_json::to_string(&held).expect("serialize");
        let back: Holder = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, held);
        for (a, b) in held.window.snapshots.iter().zip(&back.window.snapshots) {
            for (x, y) in a.nodes.iter().zip(&b.nodes) {
                for (m, n) in x.metrics.iter().zip(&y.metrics) {
                    assert_eq!(m.value.to_bits(), n.value.to_bits(), "{}", x.id);
                }
            }
        }
        json
    }

    #[test]
    fn every_kind_of_change_reads_back_the_same() {
        let a = vec![node("a", 1.0), node("b", 2.0), node("c", 0.0)];
        let mut b = a.clone();
        b[0].metrics[0].value = 5.0;
        b[1].status = NodeStatus::Down;
        b[1].stale = true;
        b[2].metrics[0].value = -0.0;
        let mut c = b.clone();
        c[0].role = "leader".into();
        c[2].metrics.push(Metric::new("lag", 3.0, "ops"));
        c[2].kind = ComponentKind::Dependency;
        // Reordered, one gone, one new: stored whole.
        let d = vec![c[2].clone(), c[0].clone(), node("z", 9.0)];
        let e = vec![];
        let f = vec![node("a", 1.0)];
        let snaps = [a, b, c, d, e, f]
            .into_iter()
            .enumerate()
            .map(|(i, n)| poll(i as u64 * 100, n))
            .collect();
        round_trip(window(snaps));
        round_trip(window(vec![]));
    }

    #[test]
    fn later_polls_of_a_thousand_changing_nodes_cost_under_a_fifth_of_whole_ones() {
        let snaps: Vec<HealthSnapshot> = (0..10u64)
            .map(|k| {
                poll(
                    k * 100,
                    (0..1000)
                        .map(|i| node(&format!("r-{i}"), (k * 7 + i) as f64))
                        .collect(),
                )
            })
            .collect();
        let whole = serde_json::to_string(&window(snaps.clone()))
            .expect("whole")
            .len();
        let stored = round_trip(window(snaps)).len();
        // The first poll is whole; each of the 9 after it keeps one value per node.
        let first = whole / 10;
        assert!(
            (stored - first) * 5 < whole - first,
            "{stored} bytes stored against {whole}"
        );
        // Only what moved: unchanged nodes cost nothing.
        let steady: Vec<HealthSnapshot> = (0..10u64)
            .map(|k| {
                poll(
                    k * 100,
                    (0..1000)
                        .map(|i| node(&format!("r-{i}"), i as f64))
                        .collect(),
                )
            })
            .collect();
        let first = serde_json::to_string(&steady[0]).expect("poll").len();
        let stored = round_trip(window(steady)).len();
        assert!(
            stored < first + 2_000,
            "{stored} bytes for one poll of {first}"
        );
    }

    #[test]
    fn windows_stored_whole_still_read() {
        let w = window(vec![
            poll(0, vec![node("a", 1.0)]),
            poll(100, vec![node("a", 2.0)]),
        ]);
        #[derive(Serialize)]
        struct Old<'a> {
            window: &'a ObservationWindow,
        }
        let json = serde_json::to_string(&Old { window: &w }).expect("old");
        let back: Holder = serde_json::from_str(&json).expect("old format reads");
        assert_eq!(back.window, w);
    }

    #[test]
    fn a_newer_format_or_a_broken_change_is_an_error_naming_it() {
        let w = window(vec![
            poll(0, vec![node("a", 1.0)]),
            poll(100, vec![node("a", 2.0)]),
        ]);
        let json = serde_json::to_string(&Holder { window: w }).expect("json");
        let newer = json.replace("\"format\":1", "\"format\":7");
        let err = serde_json::from_str::<Holder>(&newer).expect_err("format 7");
        assert!(err.to_string().contains("format 7"), "{err}");
        let broken = json.replace("\"at\":0", "\"at\":4");
        let err = serde_json::from_str::<Holder>(&broken).expect_err("out of range");
        assert!(err.to_string().contains("node 4 of a poll of 1"), "{err}");
        let values = json.replace("\"values\":[2.0]", "\"values\":[2.0,3.0]");
        let err = serde_json::from_str::<Holder>(&values).expect_err("values");
        assert!(err.to_string().contains("2 metric values"), "{err}");
    }
}
