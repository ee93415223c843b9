//! Remediation's rules, driven action by action: proposal, approval (and the
//! second one a high-risk fix asks for), rejection, the kill switch, headless
//! policies, verification by invariants and its deadline, probes, and undoing
//! every lasting change before exit.

use super::fixture::{self, T0};
use super::incidents::IncidentState;
use super::remedy::{Policy, Stage};
use super::{update, Action, Demo, Effect, Mode};
use crate::plugin::session::CallError;
use plugin_api::{RemedyOutcome, RemedyTarget, Risk};
use std::sync::Arc;

/// A diagnosis of `anomaly` on `components` that proposes what the builtin
/// would choose among `demo`'s remedies.
fn diagnosis(demo: &Demo, anomaly: &str, components: &[&str]) -> crate::diagnosis::Diagnosis {
    let mut d: crate::diagnosis::Diagnosis = serde_json::from_value(serde_json::json!({
        "anomaly": anomaly, "class": "state_divergence", "affected_components": components,
        "timeline": [], "metric_readings": [], "evidence": [], "alternatives": [],
        "likely_cause": "c", "severity": "high", "recommended_action": "a", "confidence": 0.8,
        "narrative": "n", "backend": "test", "rule_findings": []
    }))
    .expect("a diagnosis");
    let ids: Vec<String> = demo
        .timeline
        .latest()
        .map(|s| s.nodes.iter().map(|n| n.id.clone()).collect())
        .unwrap_or_default();
    d.proposed_remedy = crate::diagnosis::remedy::choose(
        &demo.subject.remedies,
        anomaly,
        &d.affected_components,
        &ids,
    );
    d
}

/// A demo whose subject declares `remedy`, with "views agree" violated and a
/// diagnosis of "view drift" just finished.
fn diagnosed(mode: Mode, remedy: plugin_api::Remedy, policy: Policy) -> (Demo, Vec<Effect>) {
    let mut description = fixture::description();
    description.remedies = vec![remedy];
    let mut demo = Demo::new(Arc::new(description), "local".into(), mode, 0, T0);
    demo.remediation.policy = policy;
    update(
        &mut demo,
        T0 + 100,
        Action::HealthPolled(Ok(fixture::snapshot(T0 + 100, true, false))),
    );
    update(&mut demo, T0 + 150, Action::Diagnose);
    let d = diagnosis(&demo, "View Drift", &["store (127.0.0.1:6379)"]);
    let fx = update(&mut demo, T0 + 200, Action::DiagnosisDone(Box::new(Ok(d))));
    (demo, fx)
}

fn stage(demo: &Demo) -> Stage {
    demo.remediation.latest().expect("a proposal").stage.clone()
}

fn remediates(fx: &[Effect]) -> bool {
    fx.iter().any(|e| matches!(e, Effect::Remediate { .. }))
}

fn answered(demo: &mut Demo, at: u64, undo: &str) -> Vec<Effect> {
    update(
        demo,
        at,
        Action::Remediated {
            record: (!undo.is_empty()).then(|| "remedy:resync-1".to_string()),
            result: Ok(RemedyOutcome {
                summary: "resynced the store".into(),
                undo: undo.into(),
            }),
        },
    )
}

fn poll(demo: &mut Demo, at: u64, drift: bool) -> Vec<Effect> {
    update(
        demo,
        at,
        Action::HealthPolled(Ok(fixture::snapshot(at, drift, false))),
    )
}

#[test]
fn a_diagnosis_proposes_the_declared_remedy_for_its_anomaly_and_waits_for_the_presenter() {
    let (demo, fx) = diagnosed(
        Mode::Interactive,
        fixture::remedy("resync", Risk::Medium, RemedyTarget::Component),
        Policy::Auto,
    );
    assert!(!remediates(&fx), "interactive runs wait for the presenter");
    let run = demo.remediation.latest().expect("a proposal");
    assert_eq!(run.stage, Stage::Proposed);
    assert_eq!(run.target, "store", "the diagnosed component, by identity");
    assert_eq!(run.invariants, ["views agree"]);
    assert!(run.rationale.contains("View Drift"), "{}", run.rationale);
}

#[test]
fn a_proposal_of_an_undeclared_remedy_or_a_missing_component_runs_nothing() {
    let (mut demo, _) = diagnosed(
        Mode::Headless,
        fixture::remedy("resync", Risk::Low, RemedyTarget::Component),
        Policy::Auto,
    );
    assert!(
        demo.remediation.latest().is_some(),
        "the fitting one is taken up"
    );
    demo.remediation.runs.clear();
    for (id, target, says) in [
        ("reboot", "store", "does not declare"),
        ("resync", "store-2", "does not have"),
    ] {
        let mut d = diagnosis(&demo, "view drift", &["store"]);
        d.proposed_remedy = Some(crate::diagnosis::remedy::ProposedRemedy {
            id: id.into(),
            target: target.into(),
            params: vec![],
            rationale: "r".into(),
        });
        update(&mut demo, T0 + 250, Action::Diagnose);
        let fx = update(&mut demo, T0 + 300, Action::DiagnosisDone(Box::new(Ok(d))));
        assert!(!remediates(&fx), "{id} on {target}");
        assert!(demo.remediation.latest().is_none());
        assert!(demo
            .log
            .iter()
            .any(|e| e.source == "remedy" && e.message.contains(says)));
    }
}

#[test]
fn an_approved_remedy_is_resolved_when_its_invariants_are_ok_and_its_change_is_undone_at_quit() {
    let (mut demo, _) = diagnosed(
        Mode::Interactive,
        fixture::remedy("resync", Risk::Medium, RemedyTarget::Cluster),
        Policy::Never,
    );
    let fx = update(&mut demo, T0 + 300, Action::ApproveRemedy);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Remediate { remedy, target, .. } if remedy == "resync" && target.is_empty()
    )));
    assert_eq!(stage(&demo), Stage::Running);
    assert!(demo
        .incidents
        .list
        .iter()
        .all(|i| i.state == IncidentState::Remediating
            && i.approved_by.as_deref() == Some("presenter")));
    assert!(
        !remediates(&update(&mut demo, T0 + 310, Action::ApproveRemedy)),
        "a remedy never runs twice at once"
    );
    answered(&mut demo, T0 + 400, "sync=old");
    assert!(matches!(stage(&demo), Stage::Verifying { deadline_ms } if deadline_ms == T0 + 2400));
    // The demo does not move on (to a recovery, say) while the fix is judged.
    let chapter = demo.chapter;
    update(&mut demo, T0 + 450, Action::Next);
    assert_eq!(demo.chapter, chapter);
    assert!(demo
        .ui
        .notice
        .as_deref()
        .unwrap_or("")
        .contains("being verified"));
    poll(&mut demo, T0 + 500, true);
    assert!(matches!(stage(&demo), Stage::Verifying { .. }));
    poll(&mut demo, T0 + 600, false);
    assert_eq!(stage(&demo), Stage::Resolved);
    let run = demo.remediation.latest().unwrap();
    assert_eq!(run.times_to_resolve().2, Some(300), "from approval");
    assert!(run.times_to_resolve().1.is_some(), "from detection");

    // Quitting puts the lasting change back before the demo may exit.
    let fx = update(&mut demo, T0 + 700, Action::Quit);
    assert!(fx.iter().any(
        |e| matches!(e, Effect::UndoRemedy { record, undo } if record == "remedy:resync-1" && undo == "sync=old")
    ));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Exit)));
    let fx = update(
        &mut demo,
        T0 + 800,
        Action::RemedyUndone {
            record: "remedy:resync-1".into(),
            result: Ok(()),
        },
    );
    assert!(fx.iter().any(|e| matches!(e, Effect::Exit)));
}

#[test]
fn a_remedy_whose_invariants_stay_violated_past_its_deadline_fails_and_the_incident_stays_open() {
    let (mut demo, _) = diagnosed(
        Mode::Interactive,
        fixture::remedy("resync", Risk::Low, RemedyTarget::Cluster),
        Policy::Never,
    );
    update(&mut demo, T0 + 300, Action::ApproveRemedy);
    answered(&mut demo, T0 + 400, "");
    poll(&mut demo, T0 + 2300, true);
    assert!(matches!(stage(&demo), Stage::Verifying { .. }));
    update(&mut demo, T0 + 2401, Action::Tick);
    let Stage::Failed { reason } = stage(&demo) else {
        panic!("expected a failure, got {:?}", stage(&demo));
    };
    assert!(reason.contains("views agree"), "{reason}");
    assert!(demo
        .incidents
        .list
        .iter()
        .any(|i| i.state == IncidentState::RemedyFailed));
    assert!(
        demo.remediation.applied.is_empty(),
        "nothing lasting to undo"
    );
}

#[test]
fn a_failing_or_panicking_remedy_is_a_clear_failure_and_the_demo_goes_on() {
    let (mut demo, _) = diagnosed(
        Mode::Interactive,
        fixture::remedy("resync", Risk::Low, RemedyTarget::Cluster),
        Policy::Never,
    );
    update(&mut demo, T0 + 300, Action::ApproveRemedy);
    update(
        &mut demo,
        T0 + 400,
        Action::Remediated {
            record: None,
            result: Err(CallError::Plugin {
                call: "remediate",
                err: plugin_api::PluginError::Panicked("remedy blew up".into()),
            }),
        },
    );
    let Stage::Failed { reason } = stage(&demo) else {
        panic!("expected a failure");
    };
    assert!(reason.contains("remedy blew up"), "{reason}");
    assert!(demo
        .log
        .iter()
        .any(|e| e.source == "remedy" && e.message.contains("remedy blew up")));
    let fx = update(&mut demo, T0 + 500, Action::Quit);
    assert!(fx.iter().any(|e| matches!(e, Effect::Exit)));
}

#[test]
fn a_high_risk_remedy_asks_for_a_second_approval_and_can_be_rejected() {
    let (mut demo, _) = diagnosed(
        Mode::Interactive,
        fixture::remedy("failover", Risk::High, RemedyTarget::Cluster),
        Policy::Never,
    );
    assert!(!remediates(&update(
        &mut demo,
        T0 + 300,
        Action::ApproveRemedy
    )));
    assert_eq!(stage(&demo), Stage::Confirming);
    assert!(demo
        .ui
        .notice
        .as_deref()
        .unwrap_or("")
        .contains("high risk"));
    update(&mut demo, T0 + 310, Action::RejectRemedy);
    assert_eq!(stage(&demo), Stage::Rejected);
    assert!(!remediates(&update(
        &mut demo,
        T0 + 320,
        Action::ApproveRemedy
    )));

    let (mut demo, _) = diagnosed(
        Mode::Interactive,
        fixture::remedy("failover", Risk::High, RemedyTarget::Cluster),
        Policy::Never,
    );
    update(&mut demo, T0 + 300, Action::ApproveRemedy);
    assert!(remediates(&update(
        &mut demo,
        T0 + 310,
        Action::ApproveRemedy
    )));
}

#[test]
fn the_kill_switch_refuses_the_waiting_remedy_and_every_later_one() {
    let (mut demo, _) = diagnosed(
        Mode::Interactive,
        fixture::remedy("resync", Risk::Low, RemedyTarget::Cluster),
        Policy::Never,
    );
    update(&mut demo, T0 + 300, Action::KillSwitch);
    assert!(matches!(stage(&demo), Stage::Refused { .. }));
    assert!(!remediates(&update(
        &mut demo,
        T0 + 310,
        Action::ApproveRemedy
    )));
    // A later diagnosis proposes again, and it is refused at once.
    update(&mut demo, T0 + 400, Action::Diagnose);
    let d = diagnosis(&demo, "view drift", &["store"]);
    let fx = update(&mut demo, T0 + 500, Action::DiagnosisDone(Box::new(Ok(d))));
    assert!(!remediates(&fx));
    assert_eq!(demo.remediation.runs.len(), 2);
    assert!(matches!(stage(&demo), Stage::Refused { .. }));
}

#[test]
fn headless_policies_decide_by_risk() {
    let cases = [
        (Policy::Never, Risk::Low, false),
        (Policy::LowRisk, Risk::Low, true),
        (Policy::LowRisk, Risk::Medium, false),
        (Policy::Auto, Risk::High, true),
    ];
    for (policy, risk, runs) in cases {
        let (demo, fx) = diagnosed(
            Mode::Headless,
            fixture::remedy("resync", risk, RemedyTarget::Cluster),
            policy,
        );
        assert_eq!(remediates(&fx), runs, "{policy:?} with {risk:?}");
        let run = demo.remediation.latest().unwrap();
        if runs {
            assert_eq!(
                run.approved_by.as_deref(),
                Some(format!("policy {}", policy.label()).as_str())
            );
        } else {
            assert!(
                matches!(&run.stage, Stage::Refused { reason } if reason.contains(policy.label()))
            );
        }
    }
}

#[test]
fn a_probe_must_pass_after_the_invariants_are_ok() {
    let mut remedy = fixture::remedy("resync", Risk::Low, RemedyTarget::Cluster);
    remedy.probe_step = Some("probe-burst".into());
    for (probe_ok, resolved) in [(true, true), (false, false)] {
        let (mut demo, _) = diagnosed(Mode::Headless, remedy.clone(), Policy::Auto);
        answered(&mut demo, T0 + 400, "");
        let fx = poll(&mut demo, T0 + 500, false);
        assert!(fx
            .iter()
            .any(|e| matches!(e, Effect::Probe { step } if step == "probe-burst")));
        assert_eq!(stage(&demo), Stage::Probing);
        let result = if probe_ok {
            Ok("allowed 100 of 200".into())
        } else {
            Err(CallError::Plugin {
                call: "step",
                err: plugin_api::PluginError::Failed("allowed 180 of 200".into()),
            })
        };
        update(&mut demo, T0 + 600, Action::Probed(result));
        assert_eq!(stage(&demo) == Stage::Resolved, resolved);
    }
}

#[test]
fn quitting_while_a_remedy_runs_waits_for_it_and_undoes_its_change() {
    let (mut demo, fx) = diagnosed(
        Mode::Headless,
        fixture::remedy("resync", Risk::Low, RemedyTarget::Cluster),
        Policy::Auto,
    );
    assert!(remediates(&fx));
    let fx = update(&mut demo, T0 + 300, Action::Quit);
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Exit)),
        "a remedy call is in flight"
    );
    let fx = answered(&mut demo, T0 + 400, "sync=old");
    assert!(fx.iter().any(|e| matches!(e, Effect::UndoRemedy { .. })));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Exit)));
    let fx = update(
        &mut demo,
        T0 + 500,
        Action::RemedyUndone {
            record: "remedy:resync-1".into(),
            result: Err(CallError::TimedOut {
                call: "recover_leftover",
                after: std::time::Duration::from_secs(60),
            }),
        },
    );
    assert!(
        fx.iter().any(|e| matches!(e, Effect::Exit)),
        "a change that could not be put back stays recorded for the next start"
    );
    assert!(demo
        .log
        .iter()
        .any(|e| e.message.contains("stays recorded for the next start")));
}

/// A fault `f1` in effect and a fix with a lasting change ("fail back") applied.
fn failed_over_during_a_fault() -> Demo {
    let (mut demo, _) = diagnosed(
        Mode::Interactive,
        fixture::remedy("failover", Risk::Low, RemedyTarget::Cluster),
        Policy::Never,
    );
    update(
        &mut demo,
        T0 + 250,
        Action::Injected {
            chapter: 0,
            action: "pause".into(),
            result: Ok(fixture::fault("f1", T0 + 240, None)),
        },
    );
    update(&mut demo, T0 + 300, Action::ApproveRemedy);
    answered(&mut demo, T0 + 400, "fail back");
    demo
}

#[test]
fn a_remedys_change_is_put_back_only_after_the_chaos_is_recovered() {
    let mut demo = failed_over_during_a_fault();
    let fx = update(&mut demo, T0 + 500, Action::Quit);
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Recover { fault_id } if fault_id == "f1")));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::UndoRemedy { .. })),
        "failing back needs the store the fault still holds"
    );
    let fx = update(
        &mut demo,
        T0 + 600,
        Action::Recovered {
            fault_id: "f1".into(),
            result: Ok(()),
        },
    );
    assert!(fx.iter().any(|e| matches!(e, Effect::UndoRemedy { .. })));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Exit)));
}

#[test]
fn a_recovery_chapter_puts_the_fixes_back_after_the_chaos_and_waits_for_it() {
    let mut demo = failed_over_during_a_fault();
    poll(&mut demo, T0 + 500, false);
    assert_eq!(stage(&demo), Stage::Resolved);
    // Into the recovery chapter (index 4 of the fixture).
    let mut fx = Vec::new();
    super::update::enter(&mut demo, 4, &mut fx);
    assert!(fx.iter().any(|e| matches!(e, Effect::Recover { .. })));
    assert!(!fx.iter().any(|e| matches!(e, Effect::UndoRemedy { .. })));
    let fx = update(
        &mut demo,
        T0 + 600,
        Action::Recovered {
            fault_id: "f1".into(),
            result: Ok(()),
        },
    );
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::UndoRemedy { undo, .. } if undo == "fail back")));
    assert!(
        demo.advance_blocked().is_some(),
        "the chapter waits for the fail-back"
    );
    update(
        &mut demo,
        T0 + 700,
        Action::RemedyUndone {
            record: "remedy:resync-1".into(),
            result: Ok(()),
        },
    );
    assert!(matches!(demo.phase, super::ChapterPhase::Settled { .. }));
    assert!(demo.remediation.applied.is_empty());
    // Nothing left to put back at quit.
    let fx = update(&mut demo, T0 + 800, Action::Quit);
    assert!(fx.iter().any(|e| matches!(e, Effect::Exit)));
}
