//! Faults in effect, their windows over time, and the header's chaos status.

use plugin_api::ActiveFault;
use serde::Serialize;

/// A fault over its life, for the charts' shading and the journal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChaosWindow {
    pub fault_id: String,
    pub action_id: String,
    pub targets: Vec<String>,
    pub summary: String,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FaultView {
    pub fault: ActiveFault,
    /// A recover call is in flight.
    pub recovering: bool,
}

#[derive(Debug, Default, Clone)]
pub struct Chaos {
    pub active: Vec<FaultView>,
    pub windows: Vec<ChaosWindow>,
    /// A chaos action whose inject call is in flight (the latest, for the header).
    pub injecting: Option<String>,
    /// How many inject calls are in flight: going back and forth over a chaos
    /// chapter can start a second before the first answered, and the demo may
    /// not exit before every one has (its fault must be recovered).
    pub in_flight: usize,
    /// Targets of the most recent injection: used to score diagnoses, never shown to the diagnoser.
    pub last_targets: Vec<String>,
}

/// What the header's chaos indicator shows.
#[derive(Debug, Clone, PartialEq)]
pub enum ChaosStatus {
    Normal,
    Countdown {
        action: String,
        left_ms: u64,
    },
    Injecting {
        action: String,
        left_ms: Option<u64>,
    },
    Recovering {
        faults: usize,
    },
}

impl Chaos {
    pub fn started(&mut self, fault: ActiveFault) {
        self.last_targets = fault.targets.clone();
        self.windows.push(ChaosWindow {
            fault_id: fault.fault_id.clone(),
            action_id: fault.action_id.clone(),
            targets: fault.targets.clone(),
            summary: fault.summary.clone(),
            started_ms: fault.started_ms,
            ended_ms: None,
        });
        self.active.push(FaultView {
            fault,
            recovering: false,
        });
    }

    pub fn ended(&mut self, fault_id: &str, at_ms: u64) {
        self.active.retain(|f| f.fault.fault_id != fault_id);
        for w in self
            .windows
            .iter_mut()
            .filter(|w| w.fault_id == fault_id && w.ended_ms.is_none())
        {
            w.ended_ms = Some(at_ms);
        }
    }

    /// Marks every active fault as recovering and returns the ids to recover.
    pub fn begin_recover_all(&mut self) -> Vec<String> {
        self.active
            .iter_mut()
            .filter(|f| !f.recovering)
            .map(|f| {
                f.recovering = true;
                f.fault.fault_id.clone()
            })
            .collect()
    }

    /// Self-recovering faults whose time is up and that are not yet being recovered.
    pub fn expired(&mut self, now_ms: u64) -> Vec<String> {
        self.active
            .iter_mut()
            .filter(|f| !f.recovering && f.fault.expires_ms.is_some_and(|e| e <= now_ms))
            .map(|f| {
                f.recovering = true;
                f.fault.fault_id.clone()
            })
            .collect()
    }

    pub fn status(&self, now_ms: u64, countdown: Option<(&str, u64)>) -> ChaosStatus {
        if let Some((action, ends)) = countdown {
            return ChaosStatus::Countdown {
                action: action.to_string(),
                left_ms: ends.saturating_sub(now_ms),
            };
        }
        if let Some(action) = &self.injecting {
            return ChaosStatus::Injecting {
                action: action.clone(),
                left_ms: None,
            };
        }
        let recovering = self.active.iter().filter(|f| f.recovering).count();
        if recovering > 0 {
            return ChaosStatus::Recovering { faults: recovering };
        }
        match self.active.first() {
            None => ChaosStatus::Normal,
            Some(f) => ChaosStatus::Injecting {
                action: f.fault.action_id.clone(),
                left_ms: f.fault.expires_ms.map(|e| e.saturating_sub(now_ms)),
            },
        }
    }
}
