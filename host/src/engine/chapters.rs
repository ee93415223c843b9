//! Entering, advancing and settling chapters: the tick that moves a demo on,
//! the expectations a headless run waits for, and each chapter's record.

use super::action::Effect;
use super::diagnose::start_diagnosis;
use super::faults::{start_inject, start_inject_with};
use super::state::{ChapterPhase, ChapterRecord, Demo, DiagnosisPanel, Mode};
use crate::plugin::session::CallError;
use plugin_api::{InvariantStatus, Level, OnEnter};

/// How long a headless run dwells on a chapter with nothing to wait for.
pub const HEADLESS_DWELL_MS: u64 = 300;

pub(super) fn tick(demo: &mut Demo, fx: &mut Vec<Effect>) {
    timeout(demo, fx);
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

/// A headless chapter that outlives its timeout is a miss or a failure; the
/// run moves on, so that recovery chapters still run.
fn timeout(demo: &mut Demo, fx: &mut Vec<Effect>) {
    let Some(limit) = demo.chapter_timeout_ms else {
        return;
    };
    let now = demo.now_ms;
    let started = demo.chapters.last().map_or(now, |r| r.started_ms);
    if demo.ui.quitting || demo.finished || now.saturating_sub(started) <= limit {
        return;
    }
    let title = demo.current().map(|c| c.title.clone()).unwrap_or_default();
    // Waiting on an expectation is a miss the journal names (not detected, not
    // diagnosed); an action that never finished is an error of its own.
    let stuck = !matches!(demo.phase, ChapterPhase::Settled { .. });
    let what = if stuck {
        "its action did not finish"
    } else {
        "its expectation was not met"
    };
    let msg = format!(
        "chapter {} ({title}): {what} within {:.1}s",
        demo.chapter + 1,
        limit as f64 / 1000.0
    );
    demo.log.push(now, Level::Error, "host", msg.clone());
    if stuck {
        demo.failures.push(msg);
    }
    if demo.chapter + 1 < demo.chapter_count() {
        enter(demo, demo.chapter + 1, fx);
    } else {
        demo.finished = true;
        close_chapter(demo);
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

pub(super) fn next(demo: &mut Demo, fx: &mut Vec<Effect>) {
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

pub(super) fn prev(demo: &mut Demo) {
    if demo.chapter > 0 && demo.ui.review.is_none() {
        close_chapter(demo);
        demo.chapter -= 1;
        // Going back shows the chapter again without re-running its action.
        open_record(demo, None);
        demo.phase = ChapterPhase::Settled {
            since_ms: demo.now_ms,
        };
        demo.finished = false;
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
            // Said as when it is seen in this chapter: headless progress and the log show it.
            demo.log
                .push(at, Level::Info, "host", format!("detected: {expected}"));
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
            super::remedy::withdraw_proposal(demo, "the chaos was recovered first");
            let ids = demo.chaos.begin_recover_all();
            if !ids.is_empty() {
                demo.phase = ChapterPhase::Running {
                    what: "recovery".into(),
                };
                fx.extend(ids.into_iter().map(|fault_id| Effect::Recover { fault_id }));
            } else {
                super::remedy::fail_back(demo, fx);
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

pub(super) fn close_chapter(demo: &mut Demo) {
    if let Some(r) = demo.chapters.last_mut() {
        r.ended_ms.get_or_insert(demo.now_ms);
    }
}

/// A chapter's step answered: log its message or record its failure, then settle.
pub(super) fn step_done(demo: &mut Demo, chapter: usize, result: Result<String, CallError>) {
    match result {
        Ok(msg) => demo
            .log
            .push_unique(demo.now_ms, Level::Info, "plugin", msg),
        Err(e) => action_failed(demo, chapter, e.to_string()),
    }
    settle_if(demo, chapter);
}

pub(super) fn settle_if(demo: &mut Demo, chapter: usize) {
    if chapter == demo.chapter && matches!(demo.phase, ChapterPhase::Running { .. }) {
        demo.phase = ChapterPhase::Settled {
            since_ms: demo.now_ms,
        };
    }
}

pub(super) fn action_failed(demo: &mut Demo, chapter: usize, message: String) {
    demo.log
        .push(demo.now_ms, Level::Error, "plugin", message.clone());
    if let Some(r) = demo.chapters.iter_mut().rev().find(|r| r.index == chapter) {
        r.action_error = Some(message);
    }
}
