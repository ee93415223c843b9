//! Snapshots of every panel state, drawn on ratatui's `TestBackend`.
//! Timestamps come from the fixture's fixed clock, so no text is volatile.

use crate::engine::fixture::{self, T0};
use crate::engine::{start, update, Action, Demo, Mode};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn draw(demo: &Demo, width: u16, height: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    terminal.draw(|f| super::render(demo, f)).expect("render");
    terminal.backend().clone()
}

/// A demo with 30 s of healthy polls behind it, in the first chapter.
fn healthy_demo() -> Demo {
    let mut demo = fixture::demo(Mode::Interactive);
    start(&mut demo);
    for i in 0..60 {
        let t = T0 + i * 500;
        update(
            &mut demo,
            t,
            Action::HealthPolled(Ok(fixture::snapshot(t, false, false))),
        );
    }
    update(&mut demo, T0 + 30_000, Action::Tick);
    demo
}

fn injected() -> Demo {
    let mut demo = healthy_demo();
    update(&mut demo, T0 + 30_100, Action::Next);
    update(&mut demo, T0 + 33_200, Action::Tick);
    update(
        &mut demo,
        T0 + 33_300,
        Action::Injected {
            chapter: 1,
            action: "pause".into(),
            result: Ok(fixture::fault("pause-1", T0 + 33_250, Some(T0 + 43_250))),
        },
    );
    demo
}

fn violated_demo() -> Demo {
    let mut demo = injected();
    for i in 0..10 {
        let t = T0 + 33_500 + i * 500;
        update(
            &mut demo,
            t,
            Action::HealthPolled(Ok(fixture::snapshot(t, true, i > 5))),
        );
    }
    update(&mut demo, T0 + 38_400, Action::Next);
    update(&mut demo, T0 + 38_500, Action::Tick);
    demo
}

#[test]
fn healthy() {
    insta::assert_snapshot!(draw(&healthy_demo(), 120, 40));
}

#[test]
fn countdown() {
    let mut demo = healthy_demo();
    update(&mut demo, T0 + 30_100, Action::Next);
    update(&mut demo, T0 + 31_200, Action::Tick);
    insta::assert_snapshot!(draw(&demo, 120, 40));
}

#[test]
fn injecting() {
    insta::assert_snapshot!(draw(&injected(), 120, 40));
}

#[test]
fn violated() {
    insta::assert_snapshot!(draw(&violated_demo(), 120, 40));
}

#[test]
fn diagnosing() {
    let mut demo = violated_demo();
    update(&mut demo, T0 + 38_600, Action::Tick);
    update(
        &mut demo,
        T0 + 38_700,
        Action::DiagnosisChunk("{\"anomaly\": \"view dri".into()),
    );
    update(&mut demo, T0 + 39_300, Action::Tick);
    insta::assert_snapshot!(draw(&demo, 120, 40));
}

#[test]
fn diagnosed() {
    let mut demo = violated_demo();
    update(&mut demo, T0 + 38_600, Action::Tick);
    let d = serde_json::from_value(serde_json::json!({
        "anomaly": "view drift", "class": "state_divergence", "affected_components": ["store"],
        "timeline": [], "metric_readings": [], "evidence": [], "alternatives": [],
        "likely_cause": "the store stopped taking writes while nodes kept counting",
        "severity": "high", "recommended_action": "restore writes to the store", "confidence": 0.86,
        "narrative": "Local views ran ahead of the store.", "backend": "builtin",
        "rule_findings": ["views agree violated: store is 42 behind the nodes"],
        "proposed_remedy": {"id": "resync", "target": "", "params": [],
            "rationale": "resync the store addresses view drift, on the cluster"}
    }))
    .expect("a diagnosis");
    update(
        &mut demo,
        T0 + 39_000,
        Action::DiagnosisDone(Box::new(Ok(d))),
    );
    insta::assert_snapshot!(draw(&demo, 120, 40));
}

#[test]
fn plugin_error() {
    let mut demo = healthy_demo();
    update(
        &mut demo,
        T0 + 30_200,
        Action::HealthPolled(Err(crate::plugin::session::CallError::TimedOut {
            call: "health",
            after: std::time::Duration::from_secs(3),
        })),
    );
    insta::assert_snapshot!(draw(&demo, 120, 40));
}

#[test]
fn large_terminal() {
    insta::assert_snapshot!(draw(&violated_demo(), 250, 70));
}

#[test]
fn tiny_terminal() {
    insta::assert_snapshot!(draw(&healthy_demo(), 60, 15));
}

#[test]
fn help_overlay() {
    let mut demo = healthy_demo();
    update(&mut demo, T0 + 30_100, Action::ToggleHelp);
    insta::assert_snapshot!(draw(&demo, 120, 40));
}

#[test]
fn subject_picker() {
    let mut demo = healthy_demo();
    update(
        &mut demo,
        T0 + 30_100,
        Action::OpenPicker(vec![
            (
                "example".into(),
                "target/debug/libsubject_example.so".into(),
            ),
            (
                "ratelimiter".into(),
                "target/debug/libsubject_ratelimiter.so".into(),
            ),
        ]),
    );
    update(&mut demo, T0 + 30_200, Action::PickerMove(1));
    insta::assert_snapshot!(draw(&demo, 120, 40));
}

/// A healthy demo whose latest poll shows `n` replicas and two coordinators,
/// the last replicas down and degraded: a large cluster's worst nodes sit at
/// the end of what the plugin sends.
fn cluster_of(n: usize) -> Demo {
    let mut demo = healthy_demo();
    let t = T0 + 30_500;
    let mut s = fixture::snapshot(t, false, false);
    s.nodes = (1..=n)
        .map(|i| plugin_api::NodeHealth {
            id: format!("replica-{i}"),
            role: "replica".into(),
            address: format!("10.0.{}.{}:7000", i / 250, i % 250),
            status: match n - i {
                0 => plugin_api::NodeStatus::Down,
                1 | 2 => plugin_api::NodeStatus::Degraded,
                _ => plugin_api::NodeStatus::Up,
            },
            metrics: vec![plugin_api::Metric::new("value", i as f64, "")],
            ..Default::default()
        })
        .chain((1..=2).map(|i| plugin_api::NodeHealth {
            id: format!("coord-{i}"),
            role: "coordinator".into(),
            address: format!("10.1.0.{i}:2379"),
            status: plugin_api::NodeStatus::Up,
            metrics: vec![],
            ..Default::default()
        }))
        .collect();
    update(&mut demo, t, Action::HealthPolled(Ok(s)));
    demo
}

#[test]
fn cluster_of_10() {
    insta::assert_snapshot!(draw(&cluster_of(10), 120, 40));
}

#[test]
fn cluster_of_100() {
    insta::assert_snapshot!(draw(&cluster_of(100), 120, 40));
}

#[test]
fn cluster_of_1000() {
    insta::assert_snapshot!(draw(&cluster_of(1000), 120, 40));
}

#[test]
fn cluster_of_1000_large_terminal() {
    insta::assert_snapshot!(draw(&cluster_of(1000), 250, 70));
}

#[test]
fn cluster_of_1000_scrolled() {
    let mut demo = cluster_of(1000);
    update(&mut demo, T0 + 30_600, Action::ScrollHealth(10));
    insta::assert_snapshot!(draw(&demo, 120, 40));
}

/// A diagnosis longer than its panel: the conclusion and the proposed fix
/// stay in view while `{ }` scroll the details beneath them.
#[test]
fn a_long_diagnosis_keeps_its_conclusion_and_fix_in_view_while_scrolling() {
    let mut demo = violated_demo();
    update(&mut demo, T0 + 38_600, Action::Tick);
    let long = "the store stopped taking writes while nodes kept counting; ".repeat(12);
    let d = serde_json::from_value(serde_json::json!({
        "anomaly": "view drift", "class": "state_divergence", "affected_components": ["store"],
        "timeline": [], "metric_readings": [], "evidence": [], "alternatives": [],
        "likely_cause": long, "severity": "high", "recommended_action": "restore writes",
        "confidence": 0.86, "narrative": "Local views ran ahead of the store.", "backend": "builtin",
        "rule_findings": ["views agree violated: store is 42 behind the nodes"],
        "proposed_remedy": {"id": "resync", "target": "", "params": [], "rationale": "r"}
    }))
    .expect("a diagnosis");
    update(
        &mut demo,
        T0 + 39_000,
        Action::DiagnosisDone(Box::new(Ok(d))),
    );
    let text = |demo: &Demo| {
        let b = draw(demo, 120, 40);
        let buf = b.buffer();
        let mut s = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                s.push_str(buf[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    };
    let before = text(&demo);
    assert!(before.contains("{ } scroll · 0 of"), "{before}");
    for _ in 0..10 {
        update(&mut demo, T0 + 39_100, Action::ScrollDiagnosis(3));
    }
    let after = text(&demo);
    for kept in [
        "builtin concluded: view drift",
        "proposed fix: resync the store",
    ] {
        assert!(after.contains(kept), "{kept} scrolled away:\n{after}");
    }
    assert!(!after.contains("{ } scroll · 0 of"), "{after}");
    assert!(
        after.contains("Local views ran ahead"),
        "scrolled to the end:\n{after}"
    );
}
