//! One trial's result: the plain facts a campaign report is computed from,
//! taken from the trial's journal so every figure can be traced back to one.

use crate::diagnosis;
use crate::diagnosis::usage::ModelCall;
use crate::engine::state::DiagnosisRun;
use crate::journal::Journal;
use plugin_api::InvariantStatus;
use serde::{Deserialize, Serialize};

/// How the engine records a failed diagnosis in its chapter (`engine::diagnose`).
const DIAGNOSIS_FAILED: &str = "diagnosis failed: ";

/// What a remediation attempt achieved (absent when no remedy ran).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remediation {
    /// The remedy that ran.
    #[serde(default)]
    pub remedy: String,
    pub succeeded: bool,
    /// From the fault taking effect to the remedy verified.
    pub time_to_resolve_ms: Option<u64>,
    /// From approval to the remedy verified.
    #[serde(default)]
    pub time_from_approval_ms: Option<u64>,
}

/// Which cell of a campaign's matrix a trial belongs to: subject, diagnoser and policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cell {
    /// The subject's name in the campaign (its plugin's id unless named).
    pub subject: String,
    /// The diagnoser's label (`builtin`, `anthropic:claude-…`).
    pub diagnoser: String,
    /// The remediation policy (`never`, `low-risk`, `auto`).
    pub policy: String,
}

/// One trial of one fault. Times are from the fault taking effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialResult {
    pub fault: String,
    /// 0-based index of the trial within its fault.
    pub trial: usize,
    pub detected: bool,
    pub time_to_detect_ms: Option<u64>,
    /// A diagnosis arrived (right or wrong).
    pub diagnosed: bool,
    /// What the diagnosis concluded, if one arrived.
    pub anomaly: Option<String>,
    pub anomaly_correct: bool,
    pub component_correct: bool,
    /// The diagnosis's stated confidence, 0..=1.
    pub confidence: Option<f64>,
    /// The weighed alternatives, in the diagnosis's order.
    pub alternatives: Vec<String>,
    /// 1-based rank of the first correct hypothesis: 1 is the conclusion,
    /// 2.. the alternatives in order; `None` when none named the anomaly.
    pub correct_rank: Option<usize>,
    pub time_to_diagnose_ms: Option<u64>,
    /// How long the fault was in effect, when it ended within the trial.
    pub fault_duration_ms: Option<u64>,
    /// From the fault taking effect to every invariant ok again (self-healing or recovery).
    pub time_to_recover_ms: Option<u64>,
    pub remediation: Option<Remediation>,
    /// The trial's journal, relative to the report's directory.
    pub journal: Option<String>,
    /// What went wrong in the trial (the journal's failures).
    pub failures: Vec<String>,
    /// A trial without a fault saw an invariant violated.
    #[serde(default)]
    pub false_alarm: bool,
    /// The matrix cell the trial ran in (set by the campaign, not the journal).
    #[serde(default)]
    pub cell: Cell,
    /// The subject did not settle after this trial within the gate's deadline,
    /// and was torn down and set up again: what was still wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsettled: Option<String>,
    /// Why the diagnosis failed, when it did (`diagnosis failed: …` in the journal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis_error: Option<String>,
    /// A model backend's call for the diagnosis: latency and tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_call: Option<ModelCall>,
}

impl TrialResult {
    /// Both anomaly and component right.
    pub fn correct(&self) -> bool {
        self.anomaly_correct && self.component_correct
    }

    /// The model answered, but not in the diagnosis schema.
    pub fn schema_failure(&self) -> bool {
        self.diagnosis_error
            .as_deref()
            .is_some_and(|e| e.contains(diagnosis::SCHEMA_MISMATCH))
    }

    /// The result of a trial whose journal is `journal`: the first fault it
    /// injected, the first detection, and the first diagnosis that had an expectation.
    pub fn from_journal(fault: &str, trial: usize, journal: &Journal) -> TrialResult {
        let window = journal.chaos_windows.first();
        let started = window.map(|w| w.started_ms);
        let since = |at: u64| started.map(|s| at.saturating_sub(s));
        let detection = journal.detections.first();
        let detected = detection.is_some_and(|d| d.detected_ms.is_some());
        let run = journal
            .diagnoses
            .iter()
            .find(|r| r.expected.is_some())
            .or(journal.diagnoses.first());
        let score = run.and_then(|r| r.score.as_ref());
        let recovered = window
            .and_then(|w| w.ended_ms)
            .and_then(|end| all_ok_after(journal, end));
        TrialResult {
            fault: fault.to_string(),
            trial,
            detected,
            time_to_detect_ms: detection.and_then(|d| d.latency_ms),
            diagnosed: run.is_some(),
            anomaly: run.map(|r| r.diagnosis.anomaly.clone()),
            anomaly_correct: score.is_some_and(|s| s.anomaly_ok),
            component_correct: score.is_some_and(|s| s.component_ok),
            confidence: run.map(|r| r.diagnosis.confidence),
            alternatives: run
                .map(|r| {
                    r.diagnosis
                        .alternatives
                        .iter()
                        .map(|a| a.hypothesis.clone())
                        .collect()
                })
                .unwrap_or_default(),
            correct_rank: run.and_then(correct_rank),
            time_to_diagnose_ms: run
                .filter(|r| r.finished_ms > 0)
                .and_then(|r| since(r.finished_ms)),
            fault_duration_ms: window.and_then(|w| Some(w.ended_ms?.saturating_sub(w.started_ms))),
            time_to_recover_ms: recovered.and_then(since),
            remediation: journal
                .remedies
                .iter()
                .find(|r| r.approved_ms.is_some())
                .map(|r| Remediation {
                    remedy: r.remedy_id.clone(),
                    succeeded: r.stage == crate::engine::remedy::Stage::Resolved,
                    time_to_resolve_ms: r.resolved_ms.and_then(since),
                    time_from_approval_ms: r.times_to_resolve().2,
                }),
            journal: None,
            failures: journal.failures.clone(),
            false_alarm: window.is_none()
                && journal.health_timeline.iter().any(|p| {
                    p.invariants
                        .values()
                        .any(|s| *s == InvariantStatus::Violated)
                }),
            cell: Cell::default(),
            unsettled: None,
            diagnosis_error: journal.chapters.iter().find_map(|c| {
                c.action_error
                    .as_deref()?
                    .strip_prefix(DIAGNOSIS_FAILED)
                    .map(str::to_string)
            }),
            model_call: run.and_then(|r| r.diagnosis.model_call),
        }
    }
}

/// The rank of the first hypothesis that names the expected anomaly, scored
/// the way the conclusion itself is scored (`diagnosis::score`).
pub fn correct_rank(run: &DiagnosisRun) -> Option<usize> {
    let expected = run.expected.as_ref()?;
    let names = |hypothesis: &str| {
        let mut d = run.diagnosis.clone();
        d.anomaly = hypothesis.to_string();
        diagnosis::score(&d, expected, &run.chaos_targets).anomaly_ok
    };
    std::iter::once(run.diagnosis.anomaly.as_str())
        .chain(
            run.diagnosis
                .alternatives
                .iter()
                .map(|a| a.hypothesis.as_str()),
        )
        .position(names)
        .map(|i| i + 1)
}

/// The first health poll at or after `from_ms` in which every invariant is ok.
pub fn all_ok_after(journal: &Journal, from_ms: u64) -> Option<u64> {
    journal
        .health_timeline
        .iter()
        .filter(|p| p.at_ms >= from_ms && !p.invariants.is_empty())
        .find(|p| p.invariants.values().all(|s| *s == InvariantStatus::Ok))
        .map(|p| p.at_ms)
}
