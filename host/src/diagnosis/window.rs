//! The observation window: everything a diagnoser may look at.
//!
//! There is deliberately no field for the injected chaos action: a diagnosis
//! has to be earned from what was observed.

use plugin_api::{AnomalyClass, DiagnosisContext, Event, HealthSnapshot, InvariantStatus};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationWindow {
    /// Display name of the subject (`SubjectInfo.name`).
    pub subject: String,
    /// The subject's vocabulary: system sentence, components, glossary.
    pub context: DiagnosisContext,
    /// Health polls, oldest first, from before and during the anomaly.
    pub snapshots: Vec<HealthSnapshot>,
    pub invariant_changes: Vec<InvariantChange>,
    pub events: Vec<Event>,
    /// When the anomaly was first seen (unix ms), if the engine saw one.
    pub anomaly_started_ms: Option<u64>,
    /// The fixes the subject declares, one of which a diagnosis may propose.
    #[serde(default)]
    pub remedies: Vec<plugin_api::Remedy>,
}

/// One invariant changing status between two polls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvariantChange {
    pub at_ms: u64,
    pub invariant: String,
    pub from: InvariantStatus,
    pub to: InvariantStatus,
    pub detail: String,
    pub components: Vec<String>,
    pub class: AnomalyClass,
}

impl ObservationWindow {
    /// Builds a window from polls alone: invariant changes are derived by
    /// comparing consecutive snapshots, events are gathered from the snapshots
    /// (deduplicated), and the anomaly start is the first change to violated.
    pub fn from_snapshots(
        subject: impl Into<String>,
        context: DiagnosisContext,
        snapshots: Vec<HealthSnapshot>,
    ) -> Self {
        let invariant_changes = changes_between(&snapshots);
        let mut events: Vec<Event> = Vec::new();
        for e in snapshots.iter().flat_map(|s| s.events.iter()) {
            if !events.contains(e) {
                events.push(e.clone());
            }
        }
        events.sort_by_key(|e| e.at_ms);
        let anomaly_started_ms = invariant_changes
            .iter()
            .find(|c| c.to == InvariantStatus::Violated)
            .map(|c| c.at_ms);
        ObservationWindow {
            subject: subject.into(),
            context,
            snapshots,
            invariant_changes,
            events,
            anomaly_started_ms,
            remedies: Vec::new(),
        }
    }

    /// Drops every event that mentions one of `needles` (pass each injected
    /// fault's id and summary), in the window and in its snapshots. Plugins
    /// log their own injections, and a diagnosis that read them would not be
    /// earned from observations.
    pub fn redact_mentions<S: AsRef<str>>(&mut self, needles: &[S]) {
        let needles: Vec<&str> = needles
            .iter()
            .map(AsRef::as_ref)
            .filter(|n| !n.is_empty())
            .collect();
        let keep = |e: &Event| !needles.iter().any(|n| e.message.contains(n));
        self.events.retain(keep);
        for snap in &mut self.snapshots {
            snap.events.retain(keep);
        }
    }
}

/// Status changes of every invariant between consecutive snapshots; an
/// invariant first seen violated counts as a change from `Ok`.
pub fn changes_between(snapshots: &[HealthSnapshot]) -> Vec<InvariantChange> {
    let mut changes = Vec::new();
    let mut last: Vec<(String, InvariantStatus)> = Vec::new();
    for snap in snapshots {
        for inv in &snap.invariants {
            let previous = last.iter_mut().find(|(name, _)| *name == inv.name);
            let from = match &previous {
                Some((_, status)) => *status,
                None => InvariantStatus::Ok,
            };
            if from != inv.status {
                changes.push(InvariantChange {
                    at_ms: snap.at_ms,
                    invariant: inv.name.clone(),
                    from,
                    to: inv.status,
                    detail: inv.detail.clone(),
                    components: inv.components.clone(),
                    class: inv.class,
                });
            }
            match previous {
                Some(entry) => entry.1 = inv.status,
                None => last.push((inv.name.clone(), inv.status)),
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::Level;

    #[test]
    fn redaction_removes_every_mention_of_a_fault() {
        let event = |m: &str| Event {
            at_ms: 5,
            level: Level::Warn,
            message: m.into(),
            component: None,
        };
        let snap = HealthSnapshot {
            at_ms: 5,
            events: vec![
                event("injected pause-1: writes paused"),
                event("flush timed out"),
            ],
            ..Default::default()
        };
        let mut w = ObservationWindow::from_snapshots("s", DiagnosisContext::default(), vec![snap]);
        w.redact_mentions(&["pause-1", "writes paused", ""]);
        let json = serde_json::to_string(&w).unwrap();
        assert!(
            !json.contains("pause-1") && !json.contains("writes paused"),
            "{json}"
        );
        assert!(json.contains("flush timed out"), "unrelated events stay");
    }
}
