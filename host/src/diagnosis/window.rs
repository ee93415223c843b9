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
