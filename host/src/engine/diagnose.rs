//! The diagnosis window: which snapshots a diagnoser sees, starting a
//! diagnosis, streaming its text and scoring what it concluded.

use super::action::Effect;
use super::state::{ChapterPhase, Demo, DiagnosisPanel, DiagnosisRun, Mode};
use crate::diagnosis::{self, ObservationWindow};
use plugin_api::{HealthSnapshot, InvariantStatus, Level};

/// How much history before the anomaly a diagnosis sees.
const WINDOW_LEAD_MS: u64 = 20_000;
/// Most snapshots sent to a diagnoser; longer windows are thinned evenly.
const WINDOW_MAX_SNAPSHOTS: usize = 120;

pub(super) fn start_diagnosis(demo: &mut Demo, fx: &mut Vec<Effect>) {
    if matches!(demo.diagnosis, DiagnosisPanel::Running { .. }) {
        demo.ui.notice = Some("a diagnosis is already running".into());
        return;
    }
    let window = observation_window(demo);
    demo.diagnosis = DiagnosisPanel::Running {
        started_ms: demo.now_ms,
        text: String::new(),
    };
    demo.diagnosis_chapter = demo.chapter;
    demo.log.push(
        demo.now_ms,
        Level::Info,
        "diagnosis",
        format!("diagnosing {} snapshot(s)", window.snapshots.len()),
    );
    let window = Box::new(window);
    demo.diagnosis_window = Some(window.clone());
    fx.push(Effect::Diagnose(window));
}

/// Moves the window's start past violations it opens with that clear before
/// the latest fault: a subject notices a repair a poll or two late, and that
/// tail of an earlier episode is no evidence about the fault that followed.
fn past_lingering_violations(demo: &Demo, from: u64, fault_started_ms: u64) -> u64 {
    let violated = |s: &HealthSnapshot, name: &str| {
        s.invariants
            .iter()
            .any(|i| i.name == name && i.status == InvariantStatus::Violated)
    };
    let Some(first) = demo.timeline.since(from).next() else {
        return from;
    };
    let lingering: Vec<&str> = first
        .invariants
        .iter()
        .filter(|i| i.status == InvariantStatus::Violated)
        .map(|i| i.name.as_str())
        .collect();
    if lingering.is_empty() {
        return from;
    }
    demo.timeline
        .since(from)
        .take_while(|s| s.at_ms <= fault_started_ms)
        .find(|s| lingering.iter().all(|name| !violated(s, name)))
        .map_or(from, |s| s.at_ms)
}

/// The snapshots around the anomaly: from a lead before the latest fault or
/// violation to now, but not reaching back past the end of an earlier fault,
/// whose resolved episode would only mislead. Which fault was injected is not part of it.
pub fn observation_window(demo: &Demo) -> ObservationWindow {
    let latest_fault = demo.chaos.windows.last();
    let anchor = latest_fault
        .map(|w| w.started_ms)
        .into_iter()
        .chain(
            demo.verdicts
                .values()
                .filter(|v| v.status == InvariantStatus::Violated)
                .map(|v| v.since_ms),
        )
        .max()
        .unwrap_or(demo.now_ms);
    let previous_fault_end = demo
        .chaos
        .windows
        .iter()
        .rev()
        .skip(1)
        .filter_map(|w| w.ended_ms)
        .max()
        .unwrap_or(0);
    let mut from = anchor
        .saturating_sub(WINDOW_LEAD_MS)
        .max(previous_fault_end);
    if let Some(fault) = latest_fault {
        from = past_lingering_violations(demo, from, fault.started_ms);
    }
    let all: Vec<_> = demo.timeline.since(from).cloned().collect();
    let snapshots = if all.len() > WINDOW_MAX_SNAPSHOTS {
        let step = all.len().div_ceil(WINDOW_MAX_SNAPSHOTS);
        let last = all.len() - 1;
        all.into_iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i == last)
            .map(|(_, s)| s)
            .collect()
    } else {
        all
    };
    let mut window = ObservationWindow::from_snapshots(
        demo.subject.info.name.clone(),
        demo.subject.diagnosis.clone(),
        snapshots,
    );
    // Plugins log their own injections; a diagnosis that read them would not be earned.
    let mut needles: Vec<&str> = Vec::new();
    for w in &demo.chaos.windows {
        needles.extend([
            w.fault_id.as_str(),
            w.summary.as_str(),
            w.action_id.as_str(),
        ]);
        if let Some(a) = demo
            .subject
            .chaos_actions
            .iter()
            .find(|a| a.id == w.action_id)
        {
            needles.push(a.name.as_str());
        }
    }
    window.redact_mentions(&needles);
    window.remedies = demo.subject.remedies.clone();
    // Snapshots carry the plugin's recent events, some older than the window itself.
    let start = window.snapshots.first().map_or(from, |s| s.at_ms.min(from));
    window.events.retain(|e| e.at_ms >= start);
    for s in &mut window.snapshots {
        s.events.retain(|e| e.at_ms >= start);
    }
    window
}

/// Streamed text of a running diagnosis; chunks arriving after it ended are dropped.
pub(super) fn chunk(demo: &mut Demo, text: String) {
    if let DiagnosisPanel::Running { text: t, .. } = &mut demo.diagnosis {
        t.push_str(&text);
    }
}

pub(super) fn finish_diagnosis(
    demo: &mut Demo,
    result: Result<diagnosis::Diagnosis, diagnosis::DiagnosisError>,
    fx: &mut Vec<Effect>,
) {
    let now = demo.now_ms;
    let chapter = demo.diagnosis_chapter;
    match result {
        Ok(d) => {
            let expected = demo
                .subject
                .chapters
                .get(chapter)
                .and_then(|c| c.expect_diagnosis.clone());
            let score = expected
                .as_ref()
                .map(|e| diagnosis::score(&d, e, &demo.chaos.last_targets));
            demo.incidents.attach_diagnosis(&d.anomaly);
            demo.log.push(
                now,
                Level::Info,
                "diagnosis",
                format!(
                    "{} ({:.0}% confidence): {}",
                    d.anomaly,
                    d.confidence * 100.0,
                    d.affected_components.join(", ")
                ),
            );
            if let Some(s) = score.as_ref().filter(|s| !(s.anomaly_ok && s.component_ok)) {
                demo.log.push(
                    now,
                    Level::Error,
                    "diagnosis",
                    format!("diagnosis missed its expectation: {}", s.detail),
                );
                if demo.mode == Mode::Interactive {
                    demo.ui.review = Some(s.detail.clone());
                }
            }
            if let Some(window) = demo.diagnosis_window.take() {
                demo.diagnoses.push(DiagnosisRun {
                    chapter,
                    finished_ms: now,
                    diagnosis: d.clone(),
                    score: score.clone(),
                    expected,
                    chaos_targets: demo.chaos.last_targets.clone(),
                    window: *window,
                });
            }
            super::remedy::propose(demo, &d, fx);
            demo.ui.diagnosis_scroll = 0;
            demo.diagnosis = DiagnosisPanel::Done {
                diagnosis: Box::new(d),
                score,
            };
        }
        Err(message) => {
            demo.diagnosis_window = None;
            demo.log.push(
                now,
                Level::Error,
                "diagnosis",
                format!("diagnosis failed: {message}"),
            );
            if let Some(r) = demo.chapters.iter_mut().rev().find(|r| r.index == chapter) {
                r.action_error = Some(format!("diagnosis failed: {message}"));
            }
            demo.diagnosis = DiagnosisPanel::Failed {
                message: message.to_string(),
            };
        }
    }
    if chapter == demo.chapter {
        if let ChapterPhase::Settled { since_ms } = &mut demo.phase {
            *since_ms = now;
        }
    }
}
