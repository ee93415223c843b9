//! Incidents: each invariant violation, deduplicated by invariant and component,
//! with first/last seen, occurrences, and open → diagnosed → resolved.

use plugin_api::Invariant;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    Diagnosed,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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
}

#[derive(Debug, Default, Clone)]
pub struct Incidents {
    pub list: Vec<Incident>,
    next_id: u32,
}

impl Incidents {
    /// Folds one poll's invariants in. Returns ids of incidents opened or reopened.
    pub fn observe(&mut self, at_ms: u64, invariants: &[Invariant]) -> Vec<u32> {
        let mut opened = Vec::new();
        for inv in invariants {
            let violated = inv.status == plugin_api::InvariantStatus::Violated;
            let key_matches = |i: &Incident| {
                i.invariant == inv.name && (i.components == inv.components || !violated)
            };
            if violated {
                match self.list.iter_mut().find(|i| key_matches(i)) {
                    Some(i) => {
                        if i.state == IncidentState::Resolved {
                            i.state = IncidentState::Open;
                            i.occurrences += 1;
                            opened.push(i.id);
                        }
                        i.last_seen_ms = at_ms;
                        i.detail = inv.detail.clone();
                    }
                    None => {
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
                        });
                        opened.push(self.next_id);
                    }
                }
            } else if inv.status == plugin_api::InvariantStatus::Ok {
                for i in self
                    .list
                    .iter_mut()
                    .filter(|i| i.invariant == inv.name && i.state != IncidentState::Resolved)
                {
                    i.state = IncidentState::Resolved;
                }
            }
        }
        opened
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
        // Another component is another incident.
        assert_eq!(
            inc.observe(3, &[inv(InvariantStatus::Violated, &["b"])]),
            vec![2]
        );
        inc.observe(4, &[inv(InvariantStatus::Ok, &[])]);
        assert!(inc.list.iter().all(|i| i.state == IncidentState::Resolved));
        assert_eq!(
            inc.observe(5, &[inv(InvariantStatus::Violated, &["a"])]),
            vec![1]
        );
        assert_eq!(inc.list[0].occurrences, 2);
        assert_eq!(inc.list[0].first_seen_ms, 1);
        inc.attach_diagnosis("counter drift");
        assert_eq!(inc.list[0].state, IncidentState::Diagnosed);
        assert_eq!(inc.list[1].state, IncidentState::Resolved);
        // Unknown neither opens nor resolves.
        inc.observe(6, &[inv(InvariantStatus::Unknown, &["a"])]);
        assert_eq!(inc.list[0].state, IncidentState::Diagnosed);
    }
}
