//! How the builtin reads the plugin-api 0.2 fields, end to end: component
//! kinds, events tied to a component, floor bounds, a lost majority, overload
//! and its symptoms. Each test is a small window diagnosed whole.

use super::diagnose;
use super::facts::mentions;
use super::fixture::{invariant, node};
use crate::diagnosis::window::ObservationWindow;
use plugin_api::{
    AnomalyClass, BoundIs, ComponentKind, DiagnosisContext, Event, HealthSnapshot, Level,
    NodeStatus,
};

/// Three members and a resource; from poll 5 the resource degrades and a
/// lag invariant about it breaks.
fn lagging_resource(event: Option<Event>) -> ObservationWindow {
    let snaps = (0..10u64)
        .map(|k| {
            let bad = k >= 5;
            let mut queue = node("q-1").kind(ComponentKind::Resource);
            if bad {
                queue.status = NodeStatus::Degraded;
            }
            HealthSnapshot {
                at_ms: k * 500,
                nodes: vec![node("m-1"), node("m-2"), node("m-3"), queue],
                invariants: vec![invariant("behind", AnomalyClass::Lag, bad, &["q-1"])],
                events: event.iter().filter(|_| k == 6).cloned().collect(),
                ..Default::default()
            }
        })
        .collect();
    ObservationWindow::from_snapshots("s", DiagnosisContext::default(), snaps)
}

#[test]
fn a_degraded_resource_is_evidence_for_its_anomaly_not_a_node_down() {
    let d = diagnose(&lagging_resource(None));
    assert_eq!(d.class, Some(AnomalyClass::Lag));
    assert_eq!(d.affected_components, vec!["q-1".to_string()]);
    assert!(
        d.evidence
            .iter()
            .any(|e| e.observation.starts_with("resource q-1")),
        "{:?}",
        d.evidence
    );
    let node_down = d
        .alternatives
        .iter()
        .find(|a| a.hypothesis == "node down")
        .expect("node down weighed");
    assert!(node_down.supporting.is_empty(), "{node_down:?}");
}

#[test]
fn an_event_tied_to_a_component_counts_for_it_whatever_it_says() {
    let tied = Event::new(3_000, Level::Warn, "consumers slow").about("q-1");
    let untied = Event::new(3_000, Level::Warn, "consumers slow");
    let with = diagnose(&lagging_resource(Some(tied)));
    let without = diagnose(&lagging_resource(Some(untied)));
    assert!(with.evidence.iter().any(|e| e.source == "event"));
    assert!(!without.evidence.iter().any(|e| e.source == "event"));
    assert!(with.confidence > without.confidence);
}

#[test]
fn an_id_is_mentioned_only_as_a_whole_word() {
    assert!(mentions("q-1 is behind", "q-1"));
    assert!(mentions("lost q-1: refused", "q-1"));
    assert!(!mentions("q-10 is behind", "q-1"));
    assert!(!mentions("update applied", "pd"));
    assert!(!mentions("anything", ""));
}

#[test]
fn a_floor_bound_well_past_counts_like_a_ceiling() {
    let window = |bound_is: BoundIs, observed: f64, bound: f64| {
        let snaps = (0..10u64)
            .map(|k| {
                let mut inv = invariant("room", AnomalyClass::CapacityExhausted, k >= 5, &["m-1"]);
                inv.bound_is = bound_is;
                (inv.observed, inv.bound) = (Some(observed), Some(bound));
                HealthSnapshot {
                    at_ms: k * 500,
                    nodes: vec![node("m-1"), node("m-2")],
                    invariants: vec![inv],
                    ..Default::default()
                }
            })
            .collect();
        ObservationWindow::from_snapshots("s", DiagnosisContext::default(), snaps)
    };
    let well_past = |d: &crate::diagnosis::report::Diagnosis| {
        d.evidence
            .iter()
            .any(|e| e.observation.contains("well past its bound"))
    };
    // "free ≥ 10" at 2 and "used ≤ 10" at 18: both 80 % of the bound past it.
    let floor = diagnose(&window(BoundIs::Floor, 2.0, 10.0));
    let ceiling = diagnose(&window(BoundIs::Ceiling, 18.0, 10.0));
    assert!(well_past(&floor) && well_past(&ceiling));
    assert_eq!(floor.confidence, ceiling.confidence);
    assert!(!well_past(&diagnose(&window(BoundIs::Floor, 8.0, 10.0))));
}

/// Three members, all with a leader invariant; `stop` of them go down at poll 5.
fn group(stop: usize) -> ObservationWindow {
    let snaps = (0..10u64)
        .map(|k| {
            let mut nodes = vec![node("m-1"), node("m-2"), node("m-3")];
            let bad = k >= 5;
            if bad {
                nodes
                    .iter_mut()
                    .take(stop)
                    .for_each(|n| n.status = NodeStatus::Down);
            }
            let down: Vec<&str> = ["m-1", "m-2"][..stop].to_vec();
            HealthSnapshot {
                at_ms: k * 500,
                nodes,
                invariants: vec![
                    invariant("leader", AnomalyClass::QuorumLoss, bad, &["m-1"]),
                    invariant("members", AnomalyClass::NodeDown, bad, &down),
                ],
                ..Default::default()
            }
        })
        .collect();
    ObservationWindow::from_snapshots("s", DiagnosisContext::default(), snaps)
}

#[test]
fn a_lost_majority_is_a_quorum_loss_and_one_member_is_a_node_down() {
    assert_eq!(diagnose(&group(2)).class, Some(AnomalyClass::QuorumLoss));
    let one = diagnose(&group(1));
    assert_eq!(one.class, Some(AnomalyClass::NodeDown));
    assert_eq!(one.affected_components, vec!["m-1".to_string()]);
}

/// Latency breaks first, overload (a lasting saturation check on the same
/// members) a poll later: the overload explains the latency.
#[test]
fn a_latency_spike_on_saturated_members_is_read_as_their_overload() {
    let snaps = (0..12u64)
        .map(|k| {
            let mut slow = invariant("p99", AnomalyClass::LatencySpike, k >= 5, &[]);
            slow.components.clear();
            HealthSnapshot {
                at_ms: k * 500,
                nodes: vec![node("m-1"), node("m-2")],
                invariants: vec![
                    slow,
                    invariant("refused", AnomalyClass::Saturation, k >= 6, &["m-1", "m-2"]),
                ],
                ..Default::default()
            }
        })
        .collect();
    let d = diagnose(&ObservationWindow::from_snapshots(
        "s",
        DiagnosisContext::default(),
        snaps,
    ));
    assert_eq!(d.class, Some(AnomalyClass::Saturation), "{}", d.narrative);
    assert!(d
        .evidence
        .iter()
        .any(|e| e.observation.starts_with("it also explains p99")));
}

/// A primary, a replica that needs it, and an unrelated cache member; from
/// poll `down_at` the member `down` stops answering, and from poll 5 a lag
/// invariant on the replica breaks. `graph` declares what needs what.
fn replica_lag_after(down: &str, graph: bool) -> ObservationWindow {
    let snaps = (0..10u64)
        .map(|k| {
            let mut replica = node("db-replica");
            if graph {
                replica = replica.depends_on(["db-primary"]);
            }
            let mut nodes = vec![node("db-primary"), replica, node("cache-1")];
            for n in nodes.iter_mut().filter(|n| n.id == down && k >= 3) {
                n.status = NodeStatus::Down;
                n.stale = true;
            }
            HealthSnapshot {
                at_ms: k * 500,
                nodes,
                invariants: vec![invariant(
                    "replica caught up",
                    AnomalyClass::Lag,
                    k >= 5,
                    &["db-replica"],
                )],
                ..Default::default()
            }
        })
        .collect();
    ObservationWindow::from_snapshots("s", DiagnosisContext::default(), snaps)
}

#[test]
fn a_declared_dependency_makes_a_later_symptom_the_consequence_of_what_it_needs() {
    let d = diagnose(&replica_lag_after("db-primary", true));
    assert_eq!(d.class, Some(AnomalyClass::NodeDown), "{}", d.narrative);
    assert_eq!(d.affected_components, vec!["db-primary".to_string()]);
    assert!(
        d.evidence
            .iter()
            .any(|e| e.observation.contains("which depends on db-primary")),
        "{:?}",
        d.evidence
    );
    let lag = d
        .alternatives
        .iter()
        .find(|a| a.hypothesis == "lag")
        .expect("lag weighed");
    assert!(
        lag.contradicting
            .iter()
            .any(|e| e.contains("db-replica depends on it")),
        "{lag:?}"
    );
}

#[test]
fn without_a_dependency_the_same_stop_is_only_earlier_and_counts_for_little() {
    // The cache stops first, but nothing the lag names needs it: the graph
    // says the timing is a coincidence, and the lag is surer than when timing
    // is all there is.
    let graph = diagnose(&replica_lag_after("cache-1", true));
    let timing = diagnose(&replica_lag_after("cache-1", false));
    assert_eq!(graph.class, Some(AnomalyClass::Lag), "{}", graph.narrative);
    assert_eq!(graph.affected_components, vec!["db-replica".to_string()]);
    assert!(
        graph.confidence > timing.confidence,
        "graph {} vs timing {}",
        graph.confidence,
        timing.confidence
    );
    let against: Vec<&String> = graph
        .alternatives
        .iter()
        .filter(|a| a.hypothesis == "lag")
        .flat_map(|a| a.contradicting.iter())
        .collect();
    assert!(
        against
            .iter()
            .any(|e| e.contains("nothing it names depends on it")),
        "{against:?}"
    );
}
