//! A synthetic subject and health snapshots for the engine's and the screen's tests.

use super::{Demo, Mode};
use plugin_api::*;
use std::sync::Arc;

pub const T0: u64 = 1_800_000_000_000;

pub fn description() -> SubjectDescription {
    SubjectDescription {
        info: SubjectInfo {
            id: "fixture".into(),
            name: "Fixture cluster".into(),
            version: "1.0.0".into(),
            description: "three nodes and a shared store".into(),
            api_version: API_VERSION.into(),
            environments: vec!["local".into()],
            prerequisites: Vec::new(),
        },
        chapters: vec![
            Chapter::narrate("Welcome", "Three nodes share one store."),
            Chapter::narrate("Break it", "Pause the store.")
                .on_enter(OnEnter::Chaos {
                    action: "pause".into(),
                    params: vec![("duration_ms".into(), ParamValue::Int(2000))],
                })
                .blocking(),
            Chapter::narrate("Detection", "The views drift apart.")
                .expect_violation("views agree")
                .auto_advance(100),
            Chapter::narrate("Diagnosis", "Ask the diagnoser.")
                .on_enter(OnEnter::Diagnose)
                .expect_diagnosis("view drift", Component::ChaosTarget)
                .blocking(),
            Chapter::narrate("Recovery", "Undo everything.")
                .on_enter(OnEnter::Recover)
                .blocking(),
            Chapter::narrate("Set up more", "A subject's own step.")
                .on_enter(OnEnter::Step { id: "warm".into() })
                .blocking(),
            Chapter::narrate("Done", "The end."),
        ],
        chaos_actions: vec![],
        diagnosis: DiagnosisContext {
            system: "three nodes and a store".into(),
            components: vec![],
            glossary: vec![GlossaryEntry {
                term: "view drift".into(),
                meaning: "local views disagree with the store".into(),
                class: Some(AnomalyClass::StateDivergence),
            }],
        },
        remedies: vec![remedy("resync", Risk::Medium, RemedyTarget::Cluster)],
    }
}

/// A remedy for "view drift" that changes something lasting (its undo is not empty).
pub fn remedy(id: &str, risk: Risk, target: RemedyTarget) -> Remedy {
    Remedy {
        id: id.into(),
        name: format!("{id} the store"),
        description: "bring the store's view back in line".into(),
        addresses: vec!["view drift".into()],
        params: vec![],
        target,
        risk,
        undo: "put the store's old sync mode back".into(),
        verify_within_ms: 2000,
        probe_step: None,
    }
}

pub fn demo(mode: Mode) -> Demo {
    Demo::new(Arc::new(description()), "local".into(), mode, 3000, T0)
}

pub fn fault(id: &str, at: u64, expires: Option<u64>) -> ActiveFault {
    ActiveFault {
        fault_id: id.into(),
        action_id: "pause".into(),
        targets: vec!["store".into()],
        summary: "store paused".into(),
        started_ms: at,
        expires_ms: expires,
        undo: String::new(),
    }
}

/// A poll of three nodes and a store; `drift` breaks the "views agree" invariant.
pub fn snapshot(at: u64, drift: bool, node3_down: bool) -> HealthSnapshot {
    let node = |i: u32, status| NodeHealth {
        id: format!("node-{i}"),
        role: "node".into(),
        address: format!("127.0.0.1:80{i:02}"),
        status,
        metrics: vec![Metric::new("rps", 40.0 + i as f64, "/s")],
        ..Default::default()
    };
    HealthSnapshot {
        at_ms: at,
        nodes: vec![
            node(1, NodeStatus::Up),
            node(2, NodeStatus::Up),
            node(
                3,
                if node3_down {
                    NodeStatus::Down
                } else {
                    NodeStatus::Up
                },
            ),
            NodeHealth {
                id: "store".into(),
                role: "store".into(),
                kind: ComponentKind::Dependency,
                address: "127.0.0.1:6379".into(),
                status: if drift {
                    NodeStatus::Degraded
                } else {
                    NodeStatus::Up
                },
                metrics: vec![],
                ..Default::default()
            },
        ],
        metrics: vec![
            Metric::new(
                "requests",
                120.0 + ((at - T0) / 100 % 7) as f64 * 10.0,
                "/s",
            ),
            Metric::new("drift", if drift { 42.0 } else { 0.0 }, "ops"),
        ],
        invariants: vec![
            Invariant {
                name: "views agree".into(),
                status: if drift {
                    InvariantStatus::Violated
                } else {
                    InvariantStatus::Ok
                },
                detail: if drift {
                    "store is 42 behind the nodes".into()
                } else {
                    "within 5".into()
                },
                since_ms: at,
                class: AnomalyClass::StateDivergence,
                components: if drift { vec!["store".into()] } else { vec![] },
                observed: Some(if drift { 42.0 } else { 0.0 }),
                bound: Some(5.0),
                ..Default::default()
            },
            Invariant {
                name: "nodes up".into(),
                status: if node3_down {
                    InvariantStatus::Violated
                } else {
                    InvariantStatus::Ok
                },
                detail: if node3_down {
                    "node-3 down".into()
                } else {
                    "3 of 3 up".into()
                },
                since_ms: at,
                class: AnomalyClass::NodeDown,
                components: if node3_down {
                    vec!["node-3".into()]
                } else {
                    vec![]
                },
                observed: None,
                bound: None,
                ..Default::default()
            },
        ],
        events: vec![],
    }
}
