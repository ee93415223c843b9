//! Remedies: the fixes a subject declares, which a diagnosis may propose.

use super::*;
use serde::{Deserialize, Serialize};

/// A fix an operator would apply in production, without knowing that a fault
/// was injected: failing over to a standby, switching to a safer mode,
/// restarting a process. It is not a chaos action's `recover`, which is the
/// demo's undo. The host proposes it from a diagnosis, runs it only after
/// approval, and judges it by the invariants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remedy {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The anomalies it fixes: glossary terms of the subject.
    pub addresses: Vec<String>,
    pub params: Vec<ParamSpec>,
    pub target: RemedyTarget,
    pub risk: Risk,
    /// How the change is put back at teardown ("" when it changes nothing
    /// lasting, e.g. a restart).
    pub undo: String,
    /// The invariants must all be ok again this long after the remedy returned.
    pub verify_within_ms: u64,
    /// A step (`run_step` id) that must succeed once the invariants are ok,
    /// for what invariants alone cannot show (a probe burst, say).
    pub probe_step: Option<String>,
}

/// What a remedy acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemedyTarget {
    /// One component, named when the remedy runs.
    Component,
    /// The whole cluster.
    Cluster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn label(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// What running a remedy did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemedyOutcome {
    /// One line for the presenter ("promoted redis-standby; 3 nodes repointed").
    pub summary: String,
    /// An opaque record from which `recover_leftover` puts the change back
    /// (teardown, or the next start after a killed host); "" when nothing lasts.
    pub undo: String,
}
