//! `update(&mut Demo, now, Action) -> Vec<Effect>`: every rule of the demo.

use super::action::{Action, Effect};
use super::state::{
    ChapterPhase, ChapterRecord, Demo, DiagnosisPanel, DiagnosisRun, InvariantVerdict, Mode, Picker,
};
use crate::diagnosis::{self, ObservationWindow};
use plugin_api::{HealthSnapshot, InvariantStatus, Level, OnEnter};

/// How long a headless run dwells on a chapter with nothing to wait for.
pub const HEADLESS_DWELL_MS: u64 = 300;
/// How much history before the anomaly a diagnosis sees.
const WINDOW_LEAD_MS: u64 = 20_000;
/// Most snapshots sent to a diagnoser; longer windows are thinned evenly.
const WINDOW_MAX_SNAPSHOTS: usize = 120;

pub fn update(demo: &mut Demo, now_ms: u64, action: Action) -> Vec<Effect> {
    demo.now_ms = now_ms;
    let mut fx = Vec::new();
    match action {
        Action::Tick => tick(demo, &mut fx),
        Action::Next => next(demo, &mut fx),
        Action::Prev => {
            if demo.chapter > 0 && demo.ui.review.is_none() {
                close_chapter(demo);
                demo.chapter -= 1;
                // Going back shows the chapter again without re-running its action.
                open_record(demo, None);
                demo.phase = ChapterPhase::Settled { since_ms: now_ms };
                demo.finished = false;
            }
        }
        Action::Quit => {
            demo.ui.quitting = true;
            let ids = demo.chaos.begin_recover_all();
            if !ids.is_empty() {
                demo.log.push(
                    now_ms,
                    Level::Info,
                    "host",
                    format!("quitting: recovering {} active fault(s)", ids.len()),
                );
            }
            fx.extend(ids.into_iter().map(|fault_id| Effect::Recover { fault_id }));
            exit_if_clean(demo, &mut fx);
        }
        Action::ToggleHelp => demo.ui.help = !demo.ui.help,
        Action::SwitchSubject => fx.push(Effect::Discover),
        Action::OpenPicker(entries) => {
            demo.ui.picker = Some(Picker {
                entries,
                selected: 0,
            });
        }
        Action::PickerMove(delta) => {
            if let Some(p) = demo.ui.picker.as_mut() {
                let n = p.entries.len() as i64;
                if n > 0 {
                    p.selected = (p.selected as i64 + delta as i64).rem_euclid(n) as usize;
                }
            }
        }
        Action::PickerChoose => {
            if let Some(p) = demo.ui.picker.take() {
                if let Some((_, path)) = p.entries.get(p.selected) {
                    fx.push(Effect::Swap(path.clone()));
                }
            }
        }
        Action::Reload => fx.push(Effect::Reload),
        Action::RecoverAll => {
            let ids = demo.chaos.begin_recover_all();
            let msg = if ids.is_empty() {
                "no active chaos to recover".to_string()
            } else {
                format!("recovering {} fault(s)", ids.len())
            };
            demo.log.push(now_ms, Level::Info, "chaos", msg);
            fx.extend(ids.into_iter().map(|fault_id| Effect::Recover { fault_id }));
        }
        Action::Diagnose => start_diagnosis(demo, &mut fx),
        Action::FilterStart => demo.ui.filter_editing = true,
        Action::FilterInput(c) => {
            if demo.ui.filter_editing {
                demo.ui.filter.push(c);
                demo.ui.log_scroll = 0;
            }
        }
        Action::FilterBackspace => {
            demo.ui.filter.pop();
        }
        Action::FilterEnd { keep } => {
            demo.ui.filter_editing = false;
            if !keep {
                demo.ui.filter.clear();
            }
        }
        Action::ScrollLog(delta) => {
            let max = demo.log.filtered(&demo.ui.filter).count().saturating_sub(1);
            demo.ui.log_scroll =
                (demo.ui.log_scroll as i64 + delta as i64).clamp(0, max as i64) as usize;
        }
        Action::Back => {
            if demo.ui.help {
                demo.ui.help = false;
            } else if demo.ui.picker.is_some() {
                demo.ui.picker = None;
            } else if demo.ui.filter_editing || !demo.ui.filter.is_empty() {
                demo.ui.filter_editing = false;
                demo.ui.filter.clear();
            } else {
                demo.ui.notice = None;
            }
        }
        Action::HealthPolled(Ok(snapshot)) => observe(demo, snapshot),
        Action::HealthPolled(Err(e)) => {
            if demo.health_error.as_ref() != Some(&e) {
                demo.log.push(
                    now_ms,
                    Level::Error,
                    "plugin",
                    format!("health poll failed: {e}"),
                );
                demo.health_error = Some(e);
            }
        }
        Action::StepDone { chapter, result } => {
            match result {
                Ok(msg) => demo.log.push_unique(now_ms, Level::Info, "plugin", msg),
                Err(e) => action_failed(demo, chapter, e.to_string()),
            }
            settle_if(demo, chapter);
        }
        Action::Injected {
            chapter,
            action,
            result,
        } => {
            demo.chaos.injecting = None;
            match result {
                Ok(fault) => {
                    demo.log.push(
                        now_ms,
                        Level::Warn,
                        "chaos",
                        format!("injected {}: {}", fault.action_id, fault.summary),
                    );
                    let id = fault.fault_id.clone();
                    demo.chaos.started(fault);
                    if demo.ui.quitting {
                        if let Some(f) = demo
                            .chaos
                            .active
                            .iter_mut()
                            .find(|f| f.fault.fault_id == id)
                        {
                            f.recovering = true;
                        }
                        fx.push(Effect::Recover { fault_id: id });
                    }
                }
                Err(e) => {
                    action_failed(demo, chapter, format!("chaos action {action} failed: {e}"))
                }
            }
            settle_if(demo, chapter);
            exit_if_clean(demo, &mut fx);
        }
        Action::Recovered { fault_id, result } => {
            match result {
                Ok(()) => {
                    demo.log.push(
                        now_ms,
                        Level::Info,
                        "chaos",
                        format!("recovered {fault_id}"),
                    );
                    demo.chaos.ended(&fault_id, now_ms);
                }
                Err(e) if demo.ui.quitting => {
                    demo.log.push(now_ms, Level::Error, "chaos", format!("could not recover {fault_id}: {e}; it stays recorded for leftover recovery"));
                    demo.chaos.ended(&fault_id, now_ms);
                }
                Err(e) => {
                    demo.log.push(
                        now_ms,
                        Level::Error,
                        "chaos",
                        format!("could not recover {fault_id}: {e}; press x to try again"),
                    );
                    if let Some(f) = demo
                        .chaos
                        .active
                        .iter_mut()
                        .find(|f| f.fault.fault_id == fault_id)
                    {
                        f.recovering = false;
                    }
                }
            }
            if matches!(&demo.phase, ChapterPhase::Running { what } if what == "recovery")
                && demo.chaos.active.iter().all(|f| !f.recovering)
            {
                demo.phase = ChapterPhase::Settled { since_ms: now_ms };
            }
            exit_if_clean(demo, &mut fx);
        }
        Action::DiagnosisChunk(text) => {
            if let DiagnosisPanel::Running { text: t, .. } = &mut demo.diagnosis {
                t.push_str(&text);
            }
        }
        Action::DiagnosisDone(result) => finish_diagnosis(demo, result),
        Action::Log {
            at_ms,
            level,
            source,
            message,
        } => demo.log.push_unique(at_ms, level, source, message),
    }
    fx
}

fn tick(demo: &mut Demo, fx: &mut Vec<Effect>) {
    let now = demo.now_ms;
    if let ChapterPhase::Countdown { action, ends_at_ms } = &demo.phase {
        if now >= *ends_at_ms {
            let action = action.clone();
            start_inject(demo, &action, fx);
        }
    }
    for fault_id in demo.chaos.expired(now) {
        demo.log.push(
            now,
            Level::Info,
            "chaos",
            format!("{fault_id} has run its course; confirming recovery"),
        );
        fx.push(Effect::Recover { fault_id });
    }
    let ChapterPhase::Settled { since_ms } = demo.phase else {
        return;
    };
    let Some(chapter) = demo.current() else {
        return;
    };
    let last = demo.chapter + 1 >= demo.chapter_count();
    let dwell = match (chapter.auto_advance_ms, demo.mode) {
        (Some(ms), _) => Some(ms),
        (None, Mode::Headless) => Some(HEADLESS_DWELL_MS),
        (None, Mode::Interactive) => None,
    };
    let waited = dwell.is_some_and(|d| now >= since_ms + d);
    if waited && expectations_met(demo) && demo.advance_blocked().is_none() {
        if last {
            if !demo.finished {
                demo.finished = true;
                close_chapter(demo);
                demo.log.push(now, Level::Info, "host", "demo complete");
            }
        } else {
            enter(demo, demo.chapter + 1, fx);
        }
    }
}

/// Headless runs wait on a chapter's expectations; interactive ones only on its delay.
fn expectations_met(demo: &Demo) -> bool {
    if demo.mode == Mode::Interactive {
        return true;
    }
    let Some(chapter) = demo.current() else {
        return true;
    };
    let record = demo.chapters.last();
    let detected =
        chapter.expect_violation.is_none() || record.is_some_and(|r| r.detected_ms.is_some());
    let diagnosing = matches!(demo.diagnosis, DiagnosisPanel::Running { .. });
    let needs_diagnosis =
        matches!(chapter.on_enter, Some(OnEnter::Diagnose)) || chapter.expect_diagnosis.is_some();
    let diagnosed = !needs_diagnosis
        || (!diagnosing && demo.diagnoses.iter().any(|r| r.chapter == demo.chapter));
    detected && diagnosed
}

fn next(demo: &mut Demo, fx: &mut Vec<Effect>) {
    if demo.ui.help {
        demo.ui.help = false;
        return;
    }
    if demo.ui.review.take().is_some() {
        demo.log.push(
            demo.now_ms,
            Level::Info,
            "host",
            "diagnosis reviewed; the demo continues",
        );
        return;
    }
    if let Some(why) = demo.advance_blocked() {
        demo.ui.notice = Some(why);
        return;
    }
    if demo.chapter + 1 < demo.chapter_count() {
        enter(demo, demo.chapter + 1, fx);
    } else if !demo.finished {
        demo.finished = true;
        close_chapter(demo);
    }
}

/// Enters chapter `index` and starts its on-enter action.
pub fn enter(demo: &mut Demo, index: usize, fx: &mut Vec<Effect>) {
    close_chapter(demo);
    demo.chapter = index;
    demo.ui.notice = None;
    let now = demo.now_ms;
    let Some(chapter) = demo.subject.chapters.get(index).cloned() else {
        return;
    };
    open_record(demo, chapter.on_enter.as_ref().map(describe_on_enter));
    if let Some(expected) = &chapter.expect_violation {
        // The anomaly may already be showing from the chapter before.
        let since = demo.chaos.windows.last().map(|w| w.started_ms).unwrap_or(0);
        let seen = demo.verdicts.get(expected).and_then(|v| {
            let latest_start = (v.status == InvariantStatus::Violated).then_some(v.since_ms);
            latest_start
                .or(v.first_violation_ms)
                .filter(|t| *t >= since)
        });
        if let (Some(at), Some(r)) = (seen, demo.chapters.last_mut()) {
            r.detected_ms = Some(at);
        }
    }
    demo.phase = ChapterPhase::Settled { since_ms: now };
    match chapter.on_enter {
        None => {}
        Some(OnEnter::Chaos { action, params }) => {
            if demo.countdown_ms == 0 {
                start_inject_with(demo, &action, params, fx);
            } else {
                demo.phase = ChapterPhase::Countdown {
                    action,
                    ends_at_ms: now + demo.countdown_ms,
                };
            }
        }
        Some(OnEnter::Recover) => {
            let ids = demo.chaos.begin_recover_all();
            if !ids.is_empty() {
                demo.phase = ChapterPhase::Running {
                    what: "recovery".into(),
                };
                fx.extend(ids.into_iter().map(|fault_id| Effect::Recover { fault_id }));
            }
        }
        Some(OnEnter::Step { id }) => {
            demo.phase = ChapterPhase::Running {
                what: format!("step {id}"),
            };
            fx.push(Effect::RunStep { chapter: index, id });
        }
        Some(OnEnter::Diagnose) => start_diagnosis(demo, fx),
    }
}

fn describe_on_enter(on: &OnEnter) -> String {
    match on {
        OnEnter::Chaos { action, .. } => format!("chaos {action}"),
        OnEnter::Recover => "recover".into(),
        OnEnter::Step { id } => format!("step {id}"),
        OnEnter::Diagnose => "diagnose".into(),
    }
}

fn start_inject(demo: &mut Demo, action: &str, fx: &mut Vec<Effect>) {
    let params = match demo.current().and_then(|c| c.on_enter.clone()) {
        Some(OnEnter::Chaos { action: a, params }) if a == action => params,
        _ => Vec::new(),
    };
    start_inject_with(demo, action, params, fx);
}

fn start_inject_with(
    demo: &mut Demo,
    action: &str,
    params: Vec<(String, plugin_api::ParamValue)>,
    fx: &mut Vec<Effect>,
) {
    demo.phase = ChapterPhase::Running {
        what: format!("chaos {action}"),
    };
    demo.chaos.injecting = Some(action.to_string());
    fx.push(Effect::Inject {
        chapter: demo.chapter,
        action: action.to_string(),
        params,
    });
}

fn open_record(demo: &mut Demo, action: Option<String>) {
    let title = demo.current().map(|c| c.title.clone()).unwrap_or_default();
    demo.chapters.push(ChapterRecord {
        index: demo.chapter,
        title,
        started_ms: demo.now_ms,
        ended_ms: None,
        action,
        action_error: None,
        detected_ms: None,
    });
}

fn close_chapter(demo: &mut Demo) {
    if let Some(r) = demo.chapters.last_mut() {
        r.ended_ms.get_or_insert(demo.now_ms);
    }
}

fn settle_if(demo: &mut Demo, chapter: usize) {
    if chapter == demo.chapter && matches!(demo.phase, ChapterPhase::Running { .. }) {
        demo.phase = ChapterPhase::Settled {
            since_ms: demo.now_ms,
        };
    }
}

fn action_failed(demo: &mut Demo, chapter: usize, message: String) {
    demo.log
        .push(demo.now_ms, Level::Error, "plugin", message.clone());
    if let Some(r) = demo.chapters.iter_mut().rev().find(|r| r.index == chapter) {
        r.action_error = Some(message);
    }
}

fn exit_if_clean(demo: &Demo, fx: &mut Vec<Effect>) {
    if demo.ui.quitting && demo.chaos.active.is_empty() && demo.chaos.injecting.is_none() {
        fx.push(Effect::Exit);
    }
}

/// Folds a health poll in: history, verdicts, detection, incidents, plugin events.
fn observe(demo: &mut Demo, snapshot: HealthSnapshot) {
    let at = snapshot.at_ms;
    if demo.health_error.take().is_some() {
        demo.log.push(
            demo.now_ms,
            Level::Info,
            "plugin",
            "health polls answer again",
        );
    }
    let expected = demo.current().and_then(|c| c.expect_violation.clone());
    for inv in &snapshot.invariants {
        let verdict = demo
            .verdicts
            .entry(inv.name.clone())
            .or_insert(InvariantVerdict {
                status: InvariantStatus::Ok,
                detail: String::new(),
                since_ms: at,
                first_violation_ms: None,
                violations: 0,
            });
        if verdict.status != inv.status {
            let level = match inv.status {
                InvariantStatus::Violated => Level::Warn,
                InvariantStatus::Unknown => Level::Info,
                InvariantStatus::Ok => Level::Info,
            };
            // "again" only after a violation: unknown → ok at start is no recovery.
            let word = match (verdict.status, inv.status) {
                (_, InvariantStatus::Violated) => "VIOLATED",
                (_, InvariantStatus::Unknown) => "unknown",
                (InvariantStatus::Violated, InvariantStatus::Ok) => "ok again",
                (_, InvariantStatus::Ok) => "ok",
            };
            demo.log.push(
                at,
                level,
                "invariant",
                format!("{}: {word} ({})", inv.name, inv.detail),
            );
            if inv.status == InvariantStatus::Violated {
                verdict.first_violation_ms.get_or_insert(at);
                verdict.violations += 1;
            }
            verdict.since_ms = at;
        }
        verdict.status = inv.status;
        verdict.detail = inv.detail.clone();
        if inv.status == InvariantStatus::Violated && expected.as_deref() == Some(inv.name.as_str())
        {
            if let Some(r) = demo.chapters.last_mut().filter(|r| r.detected_ms.is_none()) {
                r.detected_ms = Some(at);
                demo.log
                    .push(at, Level::Info, "host", format!("detected: {}", inv.name));
            }
        }
    }
    demo.incidents.observe(at, &snapshot.invariants);
    let newest_logged = demo
        .timeline
        .latest()
        .and_then(|s| s.events.iter().map(|e| e.at_ms).max())
        .unwrap_or(0);
    for e in snapshot.events.iter().filter(|e| e.at_ms > newest_logged) {
        demo.log
            .push_unique(e.at_ms, e.level, "plugin", e.message.clone());
    }
    demo.timeline.push(snapshot);
}

fn start_diagnosis(demo: &mut Demo, fx: &mut Vec<Effect>) {
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
    // Snapshots carry the plugin's recent events, some older than the window itself.
    let start = window.snapshots.first().map_or(from, |s| s.at_ms.min(from));
    window.events.retain(|e| e.at_ms >= start);
    for s in &mut window.snapshots {
        s.events.retain(|e| e.at_ms >= start);
    }
    window
}

fn finish_diagnosis(
    demo: &mut Demo,
    result: Result<diagnosis::Diagnosis, diagnosis::DiagnosisError>,
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
                    diagnosis: d.clone(),
                    score: score.clone(),
                    expected,
                    chaos_targets: demo.chaos.last_targets.clone(),
                    window: *window,
                });
            }
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

/// Enters the first chapter; the runtime calls this once the subject is set up.
pub fn start(demo: &mut Demo) -> Vec<Effect> {
    let mut fx = Vec::new();
    enter(demo, 0, &mut fx);
    fx
}
