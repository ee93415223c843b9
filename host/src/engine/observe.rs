//! Folding a health poll into the demo, or noting that it failed.

use super::state::{Demo, InvariantVerdict};
use crate::plugin::session::CallError;
use plugin_api::{HealthSnapshot, InvariantStatus, Level};

/// Folds a health poll in: history, verdicts, detection, incidents, plugin events.
pub(super) fn observe(demo: &mut Demo, snapshot: HealthSnapshot) {
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

/// Logs a failed poll once, not on every poll that fails the same way.
pub(super) fn poll_failed(demo: &mut Demo, e: CallError) {
    if demo.health_error.as_ref() != Some(&e) {
        demo.log.push(
            demo.now_ms,
            Level::Error,
            "plugin",
            format!("health poll failed: {e}"),
        );
        demo.health_error = Some(e);
    }
}
