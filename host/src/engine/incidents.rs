//! Incidents: each invariant violation, deduplicated by invariant and component,
//! with first/last seen, occurrences, and open → diagnosed → resolved.

use plugin_api::Invariant;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    Diagnosed,
    /// An approved remedy is running or being verified.
    Remediating,
    /// A remedy ran and the violation did not clear in time.
    RemedyFailed,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u32,
    pub invariant: String,
    pub components: Vec<String>,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// How many separate times the violation began.
    pub occurrences: u32,
    pub state: IncidentState,
    pub detail: String,
    /// The anomaly named by the diagnosis attached to this incident.
    pub diagnosis: Option<String>,
    /// The remedy approved for it, who approved it and when.
    #[serde(default)]
    pub remedy: Option<String>,
    #[serde(default)]
    pub approved_by: Option<String>,
    #[serde(default)]
    pub approved_ms: Option<u64>,
}

#[derive(Debug, Default, Clone)]
pub struct Incidents {
    pub list: Vec<Incident>,
    next_id: u32,
}

impl Incidents {
    /// Folds one poll's invariants in. Returns ids of incidents opened or reopened.
    ///
    /// One episode is one incident: while an incident of an invariant is
    /// unresolved, a violation of it joins that incident even when the
    /// components it names change from poll to poll (a drift that spreads from
    /// one node to three is still one drift); the components are merged.
    pub fn observe(&mut self, at_ms: u64, invariants: &[Invariant]) -> Vec<u32> {
        let mut opened = Vec::new();
        for inv in invariants {
            match inv.status {
                plugin_api::InvariantStatus::Violated => {
                    if let Some(id) = self.violated(at_ms, inv) {
                        opened.push(id);
                    }
                }
                plugin_api::InvariantStatus::Ok => {
                    for i in self
                        .list
                        .iter_mut()
                        .filter(|i| i.invariant == inv.name && i.state != IncidentState::Resolved)
                    {
                        i.state = IncidentState::Resolved;
                    }
                }
                plugin_api::InvariantStatus::Unknown => {}
            }
        }
        opened
    }

    /// Returns the id when an incident opened or reopened.
    fn violated(&mut self, at_ms: u64, inv: &Invariant) -> Option<u32> {
        let ongoing = self
            .list
            .iter_mut()
            .find(|i| i.invariant == inv.name && i.state != IncidentState::Resolved);
        if let Some(i) = ongoing {
            for c in &inv.components {
                if !i.components.contains(c) {
                    i.components.push(c.clone());
                }
            }
            i.last_seen_ms = at_ms;
            i.detail = inv.detail.clone();
            return None;
        }
        let earlier = self
            .list
            .iter_mut()
            .find(|i| i.invariant == inv.name && i.components == inv.components);
        if let Some(i) = earlier {
            i.state = IncidentState::Open;
            i.occurrences += 1;
            i.last_seen_ms = at_ms;
            i.detail = inv.detail.clone();
            return Some(i.id);
        }
        self.next_id += 1;
        self.list.push(Incident {
            id: self.next_id,
            invariant: inv.name.clone(),
            components: inv.components.clone(),
            first_seen_ms: at_ms,
            last_seen_ms: at_ms,
            occurrences: 1,
            state: IncidentState::Open,
            detail: inv.detail.clone(),
            diagnosis: None,
            remedy: None,
            approved_by: None,
            approved_ms: None,
        });
        Some(self.next_id)
    }

    /// Attaches a diagnosis to the unresolved incidents (or, failing those, the latest one).
    pub fn attach_diagnosis(&mut self, anomaly: &str) {
        let mut attached = false;
        for i in self
            .list
            .iter_mut()
            .filter(|i| i.state != IncidentState::Resolved)
        {
            i.state = IncidentState::Diagnosed;
            i.diagnosis = Some(anomaly.to_string());
            attached = true;
        }
        if !attached {
            if let Some(last) = self.list.last_mut() {
                last.diagnosis = Some(anomaly.to_string());
            }
        }
    }

    /// An approved remedy started on the unresolved incidents.
    pub fn remediating(&mut self, remedy: &str, by: &str, at_ms: u64) {
        for i in self.unresolved() {
            i.state = IncidentState::Remediating;
            i.remedy = Some(remedy.to_string());
            i.approved_by = Some(by.to_string());
            i.approved_ms = Some(at_ms);
        }
    }

    /// The remedy did not clear them: they stay open, marked so.
    pub fn remedy_failed(&mut self) {
        for i in self.unresolved() {
            i.state = IncidentState::RemedyFailed;
        }
    }

    fn unresolved(&mut self) -> impl Iterator<Item = &mut Incident> {
        self.list
            .iter_mut()
            .filter(|i| i.state != IncidentState::Resolved)
    }

    pub fn open_count(&self) -> usize {
        self.list
            .iter()
            .filter(|i| i.state != IncidentState::Resolved)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{AnomalyClass, InvariantStatus};

    fn inv(status: InvariantStatus, comps: &[&str]) -> Invariant {
        Invariant {
            name: "drift".into(),
            status,
            detail: "d".into(),
            since_ms: 0,
            class: AnomalyClass::StateDivergence,
            components: comps.iter().map(|c| c.to_string()).collect(),
            observed: None,
            bound: None,
            ..Default::default()
        }
    }

    #[test]
    fn violations_are_deduplicated_and_resolve_and_reopen() {
        let mut inc = Incidents::default();
        assert_eq!(
            inc.observe(1, &[inv(InvariantStatus::Violated, &["a"])]),
            vec![1]
        );
        assert!(inc
            .observe(2, &[inv(InvariantStatus::Violated, &["a"])])
            .is_empty());
        assert_eq!(inc.list.len(), 1);
        assert_eq!(inc.list[0].last_seen_ms, 2);
        // While it is open, a violation that names another component is the same episode.
        assert!(inc
            .observe(3, &[inv(InvariantStatus::Violated, &["a", "b"])])
            .is_empty());
        assert_eq!(inc.list.len(), 1);
        assert_eq!(inc.list[0].components, ["a", "b"]);
        inc.observe(4, &[inv(InvariantStatus::Ok, &[])]);
        assert!(inc.list.iter().all(|i| i.state == IncidentState::Resolved));
        // A later episode on another component is another incident...
        assert_eq!(
            inc.observe(5, &[inv(InvariantStatus::Violated, &["b"])]),
            vec![2]
        );
        inc.observe(6, &[inv(InvariantStatus::Ok, &[])]);
        // ...and one on the same components reopens the first.
        assert_eq!(
            inc.observe(7, &[inv(InvariantStatus::Violated, &["a", "b"])]),
            vec![1]
        );
        assert_eq!(inc.list[0].occurrences, 2);
        assert_eq!(inc.list[0].first_seen_ms, 1);
        inc.attach_diagnosis("counter drift");
        assert_eq!(inc.list[0].state, IncidentState::Diagnosed);
        assert_eq!(inc.list[1].state, IncidentState::Resolved);
        // Unknown neither opens nor resolves.
        inc.observe(8, &[inv(InvariantStatus::Unknown, &["a"])]);
        assert_eq!(inc.list[0].state, IncidentState::Diagnosed);
    }
}
