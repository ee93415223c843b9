//! The chapter engine's rules, driven action by action.

use super::fixture::{self, T0};
use super::state::{ChapterPhase, DiagnosisPanel};
use super::{start, update, Action, Demo, Effect, Mode};
use crate::engine::chaos::ChaosStatus;

fn injects(fx: &[Effect]) -> bool {
    fx.iter()
        .any(|e| matches!(e, Effect::Inject { action, .. } if action == "pause"))
}

/// Drives to chapter 2 ("Break it") and through its countdown.
fn into_chaos(demo: &mut Demo) -> Vec<Effect> {
    start(demo);
    update(demo, T0 + 10, Action::Next);
    assert!(matches!(demo.phase, ChapterPhase::Countdown { .. }));
    update(demo, T0 + 3010, Action::Tick)
}

/// The inject call of chapter 2 returns: the fault took effect 50 ms before `at`.
fn landed(demo: &mut Demo, at: u64, id: &str, expires: Option<u64>) -> Vec<Effect> {
    let fault = fixture::fault(id, at - 50, expires);
    update(
        demo,
        at,
        Action::Injected {
            chapter: 1,
            action: "pause".into(),
            result: Ok(fault),
        },
    )
}

fn diagnosis(anomaly: &str, components: &[&str]) -> crate::diagnosis::Diagnosis {
    serde_json::from_value(serde_json::json!({
        "anomaly": anomaly, "class": "state_divergence", "affected_components": components,
        "timeline": [], "metric_readings": [], "evidence": [], "alternatives": [],
        "likely_cause": "c", "severity": "high", "recommended_action": "a", "confidence": 0.8,
        "narrative": "n", "backend": "test", "rule_findings": []
    }))
    .expect("a diagnosis")
}

#[test]
fn chaos_waits_for_its_countdown_and_blocks_advance_until_injected() {
    let mut demo = fixture::demo(Mode::Interactive);
    start(&mut demo);
    update(&mut demo, T0 + 10, Action::Next);
    assert_eq!(demo.chapter, 1);
    assert!(matches!(
        demo.chaos_status(),
        ChaosStatus::Countdown { left_ms: 3000, .. }
    ));
    assert!(
        !injects(&update(&mut demo, T0 + 1000, Action::Tick)),
        "no injection before the countdown ends"
    );
    update(&mut demo, T0 + 1100, Action::Next);
    assert_eq!(demo.chapter, 1, "a blocking chapter refuses to advance");
    assert!(demo
        .ui
        .notice
        .as_deref()
        .unwrap_or("")
        .contains("counting down"));
    let fx = update(&mut demo, T0 + 3010, Action::Tick);
    assert!(injects(&fx));
    assert!(matches!(
        demo.chaos_status(),
        ChaosStatus::Injecting { left_ms: None, .. }
    ));
    update(&mut demo, T0 + 3020, Action::Next);
    assert_eq!(demo.chapter, 1, "still blocked while the inject call runs");
    landed(&mut demo, T0 + 3100, "f1", Some(T0 + 5050));
    assert!(matches!(demo.phase, ChapterPhase::Settled { .. }));
    assert!(matches!(
        demo.chaos_status(),
        ChaosStatus::Injecting {
            left_ms: Some(1950),
            ..
        }
    ));
    update(&mut demo, T0 + 3200, Action::Next);
    assert_eq!(demo.chapter, 2);
}

#[test]
fn a_self_recovering_fault_is_confirmed_recovered_when_it_expires() {
    let mut demo = fixture::demo(Mode::Interactive);
    into_chaos(&mut demo);
    landed(&mut demo, T0 + 3100, "f1", Some(T0 + 5050));
    assert!(update(&mut demo, T0 + 5000, Action::Tick).is_empty());
    let fx = update(&mut demo, T0 + 5060, Action::Tick);
    assert!(matches!(fx.as_slice(), [Effect::Recover { fault_id }] if fault_id == "f1"));
    assert!(matches!(
        demo.chaos_status(),
        ChaosStatus::Recovering { faults: 1 }
    ));
    assert!(
        update(&mut demo, T0 + 5100, Action::Tick).is_empty(),
        "asked once"
    );
    update(
        &mut demo,
        T0 + 5200,
        Action::Recovered {
            fault_id: "f1".into(),
            result: Ok(()),
        },
    );
    assert_eq!(demo.chaos_status(), ChaosStatus::Normal);
    assert_eq!(demo.chaos.windows[0].ended_ms, Some(T0 + 5200));
}

#[test]
fn auto_advance_chapters_move_on_after_their_delay() {
    let mut demo = fixture::demo(Mode::Interactive);
    into_chaos(&mut demo);
    landed(&mut demo, T0 + 3100, "f1", None);
    update(&mut demo, T0 + 3200, Action::Next);
    assert_eq!(demo.chapter, 2);
    update(&mut demo, T0 + 3250, Action::Tick);
    assert_eq!(demo.chapter, 2, "not before 100 ms");
    let fx = update(&mut demo, T0 + 3310, Action::Tick);
    assert_eq!(demo.chapter, 3, "moved on by itself");
    assert!(
        matches!(fx.as_slice(), [Effect::Diagnose(_)]),
        "the diagnosis chapter starts a diagnosis"
    );
}

#[test]
fn headless_runs_wait_for_the_expected_violation() {
    let mut demo = fixture::demo(Mode::Headless);
    into_chaos(&mut demo);
    landed(&mut demo, T0 + 3100, "f1", None);
    update(&mut demo, T0 + 3500, Action::Tick);
    assert_eq!(
        demo.chapter, 2,
        "headless advances by itself after the dwell"
    );
    for t in [3600, 4000, 9000] {
        update(
            &mut demo,
            T0 + t,
            Action::HealthPolled(Ok(fixture::snapshot(T0 + t, false, false))),
        );
        update(&mut demo, T0 + t + 1, Action::Tick);
        assert_eq!(demo.chapter, 2, "waits while the invariant holds");
    }
    update(
        &mut demo,
        T0 + 9100,
        Action::HealthPolled(Ok(fixture::snapshot(T0 + 9100, true, false))),
    );
    assert_eq!(demo.chapters.last().unwrap().detected_ms, Some(T0 + 9100));
    update(&mut demo, T0 + 9300, Action::Tick);
    assert_eq!(demo.chapter, 3, "advances once detected");
    assert_eq!(
        demo.verdicts["views agree"].first_violation_ms,
        Some(T0 + 9100)
    );
}

#[test]
fn a_violation_seen_before_the_detection_chapter_still_counts() {
    let mut demo = fixture::demo(Mode::Headless);
    into_chaos(&mut demo);
    landed(&mut demo, T0 + 3100, "f1", None);
    update(
        &mut demo,
        T0 + 3150,
        Action::HealthPolled(Ok(fixture::snapshot(T0 + 3150, true, false))),
    );
    update(&mut demo, T0 + 3500, Action::Tick);
    assert_eq!(demo.chapter, 2);
    assert_eq!(demo.chapters.last().unwrap().detected_ms, Some(T0 + 3150));
    // And it is said, so a headless run prints its "detected" line.
    assert!(
        demo.log
            .iter()
            .any(|e| e.message == "detected: views agree" && e.at_ms == T0 + 3150),
        "{:?}",
        demo.log.iter().map(|e| &e.message).collect::<Vec<_>>()
    );
}

#[test]
fn a_diagnosis_that_misses_pauses_an_interactive_demo_for_review() {
    let mut demo = fixture::demo(Mode::Interactive);
    into_chaos(&mut demo);
    landed(&mut demo, T0 + 3100, "f1", None);
    update(&mut demo, T0 + 3200, Action::Next);
    update(&mut demo, T0 + 3310, Action::Tick);
    assert_eq!(demo.chapter, 3);
    update(
        &mut demo,
        T0 + 3400,
        Action::DiagnosisChunk("thinking".into()),
    );
    assert!(matches!(&demo.diagnosis, DiagnosisPanel::Running { text, .. } if text == "thinking"));
    update(&mut demo, T0 + 3500, Action::Next);
    assert_eq!(demo.chapter, 3, "blocked while diagnosing");
    update(
        &mut demo,
        T0 + 3600,
        Action::DiagnosisDone(Box::new(Ok(diagnosis("node down", &["node-1"])))),
    );
    assert!(demo.ui.review.is_some(), "a miss pauses the demo");
    update(&mut demo, T0 + 3700, Action::Next);
    assert_eq!(demo.chapter, 3, "the first enter confirms the review");
    assert!(demo.ui.review.is_none());
    update(&mut demo, T0 + 3800, Action::Next);
    assert_eq!(demo.chapter, 4);
}

#[test]
fn a_matching_diagnosis_is_scored_and_attached_to_the_incident() {
    let mut demo = fixture::demo(Mode::Headless);
    into_chaos(&mut demo);
    landed(&mut demo, T0 + 3100, "f1", None);
    update(
        &mut demo,
        T0 + 3150,
        Action::HealthPolled(Ok(fixture::snapshot(T0 + 3150, true, false))),
    );
    update(&mut demo, T0 + 3500, Action::Tick);
    update(&mut demo, T0 + 3700, Action::Tick);
    assert_eq!(demo.chapter, 3);
    update(
        &mut demo,
        T0 + 3800,
        Action::DiagnosisDone(Box::new(Ok(diagnosis("view drift", &["store"])))),
    );
    let run = demo.diagnoses.last().unwrap();
    assert!(run.score.as_ref().unwrap().passed(), "{:?}", run.score);
    assert_eq!(
        run.chaos_targets,
        ["store"],
        "scored against the fault's targets"
    );
    assert!(
        !run.window.snapshots.is_empty(),
        "the window it was given is kept"
    );
    assert_eq!(
        demo.incidents.list[0].diagnosis.as_deref(),
        Some("view drift")
    );
    let fx = update(&mut demo, T0 + 4200, Action::Tick);
    assert_eq!(demo.chapter, 4, "headless moves on once diagnosed");
    assert!(
        matches!(fx.as_slice(), [Effect::Recover { .. }]),
        "the recovery chapter recovers the fault"
    );
}

#[test]
fn quitting_recovers_every_fault_before_exit() {
    let mut demo = fixture::demo(Mode::Interactive);
    into_chaos(&mut demo);
    landed(&mut demo, T0 + 3100, "f1", None);
    let fx = update(&mut demo, T0 + 3200, Action::Quit);
    assert!(
        matches!(fx.as_slice(), [Effect::Recover { fault_id }] if fault_id == "f1"),
        "{fx:?}"
    );
    let fx = update(
        &mut demo,
        T0 + 3300,
        Action::Recovered {
            fault_id: "f1".into(),
            result: Ok(()),
        },
    );
    assert!(matches!(fx.as_slice(), [Effect::Exit]));
}

#[test]
fn quitting_during_an_injection_recovers_it_when_it_lands() {
    let mut demo = fixture::demo(Mode::Interactive);
    into_chaos(&mut demo);
    assert!(
        update(&mut demo, T0 + 3050, Action::Quit).is_empty(),
        "nothing to recover yet, and no exit while injecting"
    );
    let fx = landed(&mut demo, T0 + 3100, "f1", None);
    assert!(matches!(fx.as_slice(), [Effect::Recover { .. }]), "{fx:?}");
    let fx = update(
        &mut demo,
        T0 + 3200,
        Action::Recovered {
            fault_id: "f1".into(),
            result: Err(failed("recover", "store gone")),
        },
    );
    assert!(
        matches!(fx.as_slice(), [Effect::Exit]),
        "a failed recovery on quit is logged, not a hang"
    );
}

#[test]
fn going_back_does_not_rerun_a_chapter_action() {
    let mut demo = fixture::demo(Mode::Interactive);
    into_chaos(&mut demo);
    landed(&mut demo, T0 + 3100, "f1", None);
    update(&mut demo, T0 + 3200, Action::Next);
    let fx = update(&mut demo, T0 + 3210, Action::Prev);
    assert_eq!(demo.chapter, 1);
    assert!(fx.is_empty());
    assert!(matches!(demo.phase, ChapterPhase::Settled { .. }));
}

#[test]
fn steps_and_failures_reach_the_record_and_log() {
    let mut demo = fixture::demo(Mode::Interactive);
    start(&mut demo);
    let mut fx = Vec::new();
    super::update::enter(&mut demo, 5, &mut fx);
    assert!(matches!(fx.as_slice(), [Effect::RunStep { id, .. }] if id == "warm"));
    update(
        &mut demo,
        T0 + 100,
        Action::StepDone {
            chapter: 5,
            result: Err(failed("run_step", "no such table")),
        },
    );
    assert_eq!(
        demo.chapters.last().unwrap().action_error.as_deref(),
        Some("plugin call `run_step` failed: no such table")
    );
    assert!(demo.log.iter().any(|e| e.message.contains("no such table")));
    assert!(matches!(demo.phase, ChapterPhase::Settled { .. }));
}

#[test]
fn plugin_errors_are_logged_once_per_change() {
    let mut demo = fixture::demo(Mode::Interactive);
    for t in 0..5 {
        update(
            &mut demo,
            T0 + t,
            Action::HealthPolled(Err(failed("health", "connection refused"))),
        );
    }
    assert_eq!(
        demo.log
            .iter()
            .filter(|e| e.message.contains("connection refused"))
            .count(),
        1
    );
    update(
        &mut demo,
        T0 + 10,
        Action::HealthPolled(Ok(fixture::snapshot(T0 + 10, false, false))),
    );
    assert!(demo.health_error.is_none());
}

#[test]
fn the_log_filters_and_scrolls() {
    let mut demo = fixture::demo(Mode::Interactive);
    for i in 0..30 {
        let message = if i % 3 == 0 {
            format!("drift {i}")
        } else {
            format!("other {i}")
        };
        update(
            &mut demo,
            T0 + i,
            Action::Log {
                at_ms: T0 + i,
                level: plugin_api::Level::Info,
                source: "plugin",
                message,
            },
        );
    }
    update(&mut demo, T0 + 40, Action::FilterStart);
    for c in "drift".chars() {
        update(&mut demo, T0 + 41, Action::FilterInput(c));
    }
    update(&mut demo, T0 + 42, Action::FilterEnd { keep: true });
    assert_eq!(demo.log.filtered(&demo.ui.filter).count(), 10);
    update(&mut demo, T0 + 43, Action::ScrollLog(100));
    assert_eq!(demo.ui.log_scroll, 9, "clamped to the filtered length");
    update(&mut demo, T0 + 44, Action::Back);
    assert!(demo.ui.filter.is_empty());
}

#[test]
fn the_diagnosis_window_leaves_out_an_earlier_resolved_episode() {
    let mut demo = fixture::demo(Mode::Interactive);
    into_chaos(&mut demo);
    landed(&mut demo, T0 + 3100, "f1", None);
    for t in (3200..6000).step_by(200) {
        update(
            &mut demo,
            T0 + t,
            Action::HealthPolled(Ok(fixture::snapshot(T0 + t, true, false))),
        );
    }
    update(
        &mut demo,
        T0 + 6000,
        Action::Recovered {
            fault_id: "f1".into(),
            result: Ok(()),
        },
    );
    // The subject notices the repair two polls late: the drift lingers past the recovery.
    for t in (6000..8000).step_by(100) {
        update(
            &mut demo,
            T0 + t,
            Action::HealthPolled(Ok(fixture::snapshot(T0 + t, t < 6200, false))),
        );
    }
    demo.chaos.started(fixture::fault("f2", T0 + 8000, None));
    for t in (8100..9000).step_by(200) {
        update(
            &mut demo,
            T0 + t,
            Action::HealthPolled(Ok(fixture::snapshot(T0 + t, false, true))),
        );
    }
    let window = super::update::observation_window(&demo);
    assert!(
        window.snapshots.iter().all(|s| s.at_ms >= T0 + 6200),
        "nothing from the first episode, nor its tail past the recovery"
    );
    assert!(
        window.snapshots.iter().any(|s| s.at_ms < T0 + 8000),
        "some calm before the second fault"
    );
    assert!(window
        .invariant_changes
        .iter()
        .all(|c| c.invariant != "views agree" || c.to != plugin_api::InvariantStatus::Violated));
}

#[test]
fn the_diagnosis_window_never_mentions_the_injected_fault() {
    let mut demo = fixture::demo(Mode::Interactive);
    into_chaos(&mut demo);
    landed(&mut demo, T0 + 3100, "pause-7", None);
    let mut s = fixture::snapshot(T0 + 3200, true, false);
    s.events = vec![
        plugin_api::Event {
            at_ms: T0 + 3060,
            level: plugin_api::Level::Warn,
            message: "injected pause-7: store paused".into(),
            component: None,
        },
        plugin_api::Event {
            at_ms: T0 + 3150,
            level: plugin_api::Level::Warn,
            message: "flush to the store timed out".into(),
            component: None,
        },
    ];
    update(&mut demo, T0 + 3200, Action::HealthPolled(Ok(s)));
    let window = super::update::observation_window(&demo);
    let text = serde_json::to_string(&window).unwrap();
    assert!(
        !text.contains("pause-7") && !text.contains("store paused"),
        "{text}"
    );
    assert!(
        text.contains("flush to the store timed out"),
        "observations stay"
    );
}

/// A plugin's own error, as the session reports it.
fn failed(call: &'static str, message: &str) -> crate::plugin::session::CallError {
    crate::plugin::session::CallError::Plugin {
        call,
        err: plugin_api::PluginError::Failed(message.into()),
    }
}

#[test]
fn a_log_line_keeps_the_time_it_was_said_not_the_time_it_was_read() {
    let mut demo = fixture::demo(Mode::Interactive);
    for (said, line) in [(T0 + 10, "starting redis"), (T0 + 900, "starting node-1")] {
        update(
            &mut demo,
            T0 + 5_000,
            Action::Log {
                at_ms: said,
                level: plugin_api::Level::Info,
                source: "plugin",
                message: line.into(),
            },
        );
    }
    let times: Vec<u64> = demo
        .log
        .iter()
        .filter(|e| e.source == "plugin")
        .map(|e| e.at_ms)
        .collect();
    assert_eq!(times, [T0 + 10, T0 + 900]);
}

#[test]
fn an_invariant_that_becomes_known_is_ok_not_ok_again() {
    let mut demo = fixture::demo(Mode::Interactive);
    let mut unknown = fixture::snapshot(T0, false, false);
    for i in &mut unknown.invariants {
        i.status = plugin_api::InvariantStatus::Unknown;
    }
    update(&mut demo, T0, Action::HealthPolled(Ok(unknown)));
    update(
        &mut demo,
        T0 + 100,
        Action::HealthPolled(Ok(fixture::snapshot(T0 + 100, false, false))),
    );
    let lines: Vec<&str> = demo
        .log
        .iter()
        .filter(|e| e.source == "invariant")
        .map(|e| e.message.as_str())
        .collect();
    assert!(lines.iter().any(|l| l.contains(": ok (")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("ok again")), "{lines:?}");
    update(
        &mut demo,
        T0 + 200,
        Action::HealthPolled(Ok(fixture::snapshot(T0 + 200, true, false))),
    );
    update(
        &mut demo,
        T0 + 300,
        Action::HealthPolled(Ok(fixture::snapshot(T0 + 300, false, false))),
    );
    assert!(demo.log.iter().any(|e| e.message.contains("ok again")));
    assert_eq!(demo.incidents.list.len(), 1, "one drift, one incident");
}

/// Found by the engine's property test: back and forth over a chaos chapter
/// while its inject call is in flight, then quit. The countdown is called
/// off, and the demo exits only once the first call has answered.
#[test]
fn quitting_calls_off_a_countdown_and_waits_for_every_inject_in_flight() {
    let mut demo = fixture::demo(Mode::Headless);
    assert!(injects(&into_chaos(&mut demo)));
    update(&mut demo, T0 + 3100, Action::Prev);
    update(&mut demo, T0 + 3200, Action::Next);
    assert!(matches!(demo.phase, ChapterPhase::Countdown { .. }));
    assert!(
        update(&mut demo, T0 + 3300, Action::Quit).is_empty(),
        "an inject is in flight"
    );
    let fx = update(&mut demo, T0 + 7000, Action::Tick);
    assert!(!injects(&fx), "no injection after quitting: {fx:?}");
    let fx = landed(&mut demo, T0 + 7100, "f1", None);
    assert!(
        matches!(fx.as_slice(), [Effect::Recover { fault_id }] if fault_id == "f1"),
        "the fault that landed after the quit is recovered: {fx:?}"
    );
    let fx = update(
        &mut demo,
        T0 + 7200,
        Action::Recovered {
            fault_id: "f1".into(),
            result: Ok(()),
        },
    );
    assert!(matches!(fx.as_slice(), [Effect::Exit]), "{fx:?}");
}

#[test]
fn a_headless_chapter_past_its_timeout_moves_on_and_a_stuck_action_fails_the_run() {
    // Waiting on an expectation past the timeout: a miss, and the run goes on.
    let mut demo = fixture::demo(Mode::Headless);
    demo.chapter_timeout_ms = Some(5_000);
    into_chaos(&mut demo);
    landed(&mut demo, T0 + 3100, "f1", None);
    update(&mut demo, T0 + 3500, Action::Tick);
    assert_eq!(demo.chapter, 2, "the detection chapter waits");
    update(&mut demo, T0 + 8400, Action::Tick);
    assert_eq!(demo.chapter, 2, "within its timeout");
    update(&mut demo, T0 + 8600, Action::Tick);
    assert_eq!(demo.chapter, 3, "moved on past its timeout");
    assert!(demo.failures.is_empty(), "a miss is the journal's to name");
    assert!(demo.log.iter().any(|e| e
        .message
        .contains("its expectation was not met within 5.0s")));

    // An action that never answers: an error of its own.
    let mut demo = fixture::demo(Mode::Headless);
    demo.chapter_timeout_ms = Some(5_000);
    into_chaos(&mut demo);
    update(&mut demo, T0 + 8200, Action::Tick);
    assert_eq!(demo.chapter, 2);
    assert_eq!(demo.failures.len(), 1);
    assert!(
        demo.failures[0].contains("chapter 2 (Break it): its action did not finish"),
        "{:?}",
        demo.failures
    );

    // Interactive demos have no timeout: the presenter decides.
    let mut demo = fixture::demo(Mode::Interactive);
    into_chaos(&mut demo);
    update(&mut demo, T0 + 600_000, Action::Tick);
    assert_eq!(demo.chapter, 1);
}
