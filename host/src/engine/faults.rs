//! A fault's life in the demo: injecting it, hearing it was injected or
//! recovered, recovering everything on request or on quit, and exiting once clean.

use super::action::Effect;
use super::chapters::{action_failed, settle_if};
use super::state::{ChapterPhase, Demo};
use crate::plugin::session::CallError;
use plugin_api::{ActiveFault, Level, OnEnter};

pub(super) fn start_inject(demo: &mut Demo, action: &str, fx: &mut Vec<Effect>) {
    let params = match demo.current().and_then(|c| c.on_enter.clone()) {
        Some(OnEnter::Chaos { action: a, params }) if a == action => params,
        _ => Vec::new(),
    };
    start_inject_with(demo, action, params, fx);
}

pub(super) fn start_inject_with(
    demo: &mut Demo,
    action: &str,
    params: Vec<(String, plugin_api::ParamValue)>,
    fx: &mut Vec<Effect>,
) {
    demo.phase = ChapterPhase::Running {
        what: format!("chaos {action}"),
    };
    demo.chaos.injecting = Some(action.to_string());
    demo.chaos.in_flight += 1;
    fx.push(Effect::Inject {
        chapter: demo.chapter,
        action: action.to_string(),
        params,
    });
}

/// Quitting recovers every active fault first; the demo exits once none is left.
pub(super) fn quit(demo: &mut Demo, fx: &mut Vec<Effect>) {
    let now_ms = demo.now_ms;
    demo.ui.quitting = true;
    // A countdown still running would inject after the quit: it is called off.
    if matches!(demo.phase, ChapterPhase::Countdown { .. }) {
        demo.phase = ChapterPhase::Settled { since_ms: now_ms };
        demo.log.push(
            now_ms,
            Level::Info,
            "chaos",
            "quitting: countdown called off",
        );
    }
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
    exit_if_clean(demo, fx);
}

pub(super) fn recover_all(demo: &mut Demo, fx: &mut Vec<Effect>) {
    let ids = demo.chaos.begin_recover_all();
    let msg = if ids.is_empty() {
        "no active chaos to recover".to_string()
    } else {
        format!("recovering {} fault(s)", ids.len())
    };
    demo.log.push(demo.now_ms, Level::Info, "chaos", msg);
    fx.extend(ids.into_iter().map(|fault_id| Effect::Recover { fault_id }));
}

/// An injection answered; a fault injected while quitting is recovered at once.
pub(super) fn injected(
    demo: &mut Demo,
    chapter: usize,
    action: String,
    result: Result<ActiveFault, CallError>,
    fx: &mut Vec<Effect>,
) {
    let now_ms = demo.now_ms;
    demo.chaos.in_flight = demo.chaos.in_flight.saturating_sub(1);
    if demo.chaos.in_flight == 0 {
        demo.chaos.injecting = None;
    }
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
        Err(e) => action_failed(demo, chapter, format!("chaos action {action} failed: {e}")),
    }
    settle_if(demo, chapter);
    exit_if_clean(demo, fx);
}

/// A recovery answered. A failed one while quitting stays recorded for leftover
/// recovery; otherwise it can be retried.
pub(super) fn recovered(
    demo: &mut Demo,
    fault_id: String,
    result: Result<(), CallError>,
    fx: &mut Vec<Effect>,
) {
    let now_ms = demo.now_ms;
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
            demo.log.push(
                now_ms,
                Level::Error,
                "chaos",
                format!(
                    "could not recover {fault_id}: {e}; it stays recorded for leftover recovery"
                ),
            );
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
        && !super::remedy::fail_back(demo, fx)
    {
        demo.phase = ChapterPhase::Settled { since_ms: now_ms };
    }
    exit_if_clean(demo, fx);
}

/// Quitting: once no fault is active and no inject or remedy call is in
/// flight, every lasting change a remedy made is put back (after the chaos:
/// failing back to a store needs that store to answer), then the demo exits.
pub(super) fn exit_if_clean(demo: &mut Demo, fx: &mut Vec<Effect>) {
    if !demo.ui.quitting
        || !demo.chaos.active.is_empty()
        || demo.chaos.in_flight != 0
        || demo.remediation.in_flight()
    {
        return;
    }
    if !demo.remediation.applied.is_empty() {
        super::remedy::undo_all(demo, fx);
    } else if demo.remediation.undoing == 0 {
        fx.push(Effect::Exit);
    }
}
