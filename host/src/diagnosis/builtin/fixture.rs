//! Windows the builtin diagnoser's unit tests share.

use crate::diagnosis::window::ObservationWindow;
use plugin_api::{
    AnomalyClass, DiagnosisContext, GlossaryEntry, HealthSnapshot, Invariant, InvariantStatus,
    NodeHealth, NodeStatus,
};

pub(super) fn invariant(
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
        ..Default::default()
    }
}

pub(super) fn node(id: &str) -> NodeHealth {
    NodeHealth {
        id: id.into(),
        role: "member".into(),
        address: String::new(),
        status: NodeStatus::Up,
        metrics: vec![],
        ..Default::default()
    }
}

/// Two invariants of different classes break in the same poll, nothing else moves.
pub(super) fn twin_breakage() -> ObservationWindow {
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

pub(super) fn divergence(violated_at: &[u64]) -> ObservationWindow {
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
