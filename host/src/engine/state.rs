//! Everything the screen and the journal show, in one plain struct.

use super::chaos::{Chaos, ChaosStatus};
use super::incidents::Incidents;
use super::log::EventLog;
use super::timeline::Timeline;
use crate::diagnosis::{Diagnosis, ObservationWindow, Score};
use plugin_api::{InvariantStatus, OnEnter, SubjectDescription};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Interactive (a presenter drives) or headless (the engine advances by itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Interactive,
    Headless,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChapterPhase {
    /// Counting down to a chaos action.
    Countdown { action: String, ends_at_ms: u64 },
    /// The on-enter action is in flight.
    Running { what: String },
    /// Nothing left to run; `since_ms` starts the auto-advance delay.
    Settled { since_ms: u64 },
}

/// The result of a chapter's on-enter action, for the journal.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChapterRecord {
    pub index: usize,
    pub title: String,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    pub action: Option<String>,
    pub action_error: Option<String>,
    /// For detection chapters: when the expected violation was first seen in this chapter.
    pub detected_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DiagnosisPanel {
    Idle,
    Running {
        started_ms: u64,
        text: String,
    },
    Done {
        diagnosis: Box<Diagnosis>,
        score: Option<Score>,
    },
    Failed {
        message: String,
    },
}

/// One finished diagnosis: what it was given, what it said, how it scored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiagnosisRun {
    pub chapter: usize,
    /// When the diagnosis arrived (0 in journals written before it was recorded).
    #[serde(default)]
    pub finished_ms: u64,
    pub diagnosis: Diagnosis,
    pub score: Option<Score>,
    pub expected: Option<plugin_api::ExpectedDiagnosis>,
    /// Targets of the latest fault: used for scoring only, never part of the window.
    pub chaos_targets: Vec<String>,
    /// Stored with only the nodes that changed from poll to poll (see
    /// [`crate::diagnosis::stored`]); read back whole.
    #[serde(with = "crate::diagnosis::stored")]
    pub window: ObservationWindow,
}

/// What an invariant has shown over the run, for the journal's verdicts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InvariantVerdict {
    pub status: InvariantStatus,
    pub detail: String,
    pub since_ms: u64,
    pub first_violation_ms: Option<u64>,
    pub violations: u32,
}

/// Overlays and input modes of the interactive screen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UiState {
    pub help: bool,
    /// The log filter; `editing` while the presenter types it.
    pub filter: String,
    pub filter_editing: bool,
    /// Lines scrolled back from the newest log entry.
    pub log_scroll: usize,
    /// Node rows scrolled past at the top of the health table.
    pub health_scroll: usize,
    /// Rows of the diagnosis's details scrolled past (its conclusion stays).
    pub diagnosis_scroll: usize,
    /// The subject picker: entries and the highlighted one.
    pub picker: Option<Picker>,
    /// Why the last advance was refused, shown in the header.
    pub notice: Option<String>,
    /// A diagnosis missed its expectation: the demo pauses for review until confirmed.
    pub review: Option<String>,
    pub quitting: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Picker {
    pub entries: Vec<(String, std::path::PathBuf)>,
    pub selected: usize,
}

/// The demo's state for one loaded subject.
#[derive(Debug, Clone)]
pub struct Demo {
    pub subject: Arc<SubjectDescription>,
    pub environment: String,
    pub mode: Mode,
    pub countdown_ms: u64,
    pub chapter: usize,
    pub phase: ChapterPhase,
    pub chapters: Vec<ChapterRecord>,
    pub chaos: Chaos,
    pub timeline: Timeline,
    pub health_error: Option<crate::plugin::session::CallError>,
    pub verdicts: BTreeMap<String, InvariantVerdict>,
    pub incidents: Incidents,
    pub remediation: super::remedy::Remediation,
    pub log: EventLog,
    pub diagnosis: DiagnosisPanel,
    /// Every finished diagnosis, for the journal.
    pub diagnoses: Vec<DiagnosisRun>,
    /// The window the running diagnosis was given.
    pub diagnosis_window: Option<Box<ObservationWindow>>,
    /// The chapter the running (or last) diagnosis belongs to.
    pub diagnosis_chapter: usize,
    pub ui: UiState,
    pub now_ms: u64,
    /// The demo reached its last chapter and settled there.
    pub finished: bool,
    /// Headless: longest a chapter may take before the run moves on (and
    /// fails, when its action never finished). None: a presenter decides.
    pub chapter_timeout_ms: Option<u64>,
    /// What went wrong that the journal must report as errors.
    pub failures: Vec<String>,
}

impl Demo {
    pub fn new(
        subject: Arc<SubjectDescription>,
        environment: String,
        mode: Mode,
        countdown_ms: u64,
        now_ms: u64,
    ) -> Self {
        Demo {
            subject,
            environment,
            mode,
            countdown_ms,
            chapter: 0,
            phase: ChapterPhase::Settled { since_ms: now_ms },
            chapters: Vec::new(),
            chaos: Chaos::default(),
            timeline: Timeline::default(),
            health_error: None,
            verdicts: BTreeMap::new(),
            incidents: Incidents::default(),
            remediation: Default::default(),
            log: EventLog::default(),
            diagnosis: DiagnosisPanel::Idle,
            diagnoses: Vec::new(),
            diagnosis_window: None,
            diagnosis_chapter: 0,
            ui: UiState::default(),
            now_ms,
            finished: false,
            chapter_timeout_ms: None,
            failures: Vec::new(),
        }
    }

    pub fn chapter_count(&self) -> usize {
        self.subject.chapters.len()
    }

    pub fn current(&self) -> Option<&plugin_api::Chapter> {
        self.subject.chapters.get(self.chapter)
    }

    pub fn chaos_status(&self) -> ChaosStatus {
        let countdown = match &self.phase {
            ChapterPhase::Countdown { action, ends_at_ms } => Some((action.as_str(), *ends_at_ms)),
            _ => None,
        };
        self.chaos.status(self.now_ms, countdown)
    }

    /// Why advancing is not possible right now, if it is not.
    pub fn advance_blocked(&self) -> Option<String> {
        if self.ui.review.is_some() {
            return Some("diagnosis missed its expectation: review it, then press enter".into());
        }
        // A fix is judged by the invariants while the fault lasts: moving on
        // (to a recovery chapter, say) would credit it with the demo's undo.
        if let Some(run) = self.remediation.pending() {
            use super::remedy::Stage;
            match run.stage {
                Stage::Running | Stage::Probing => {
                    return Some(format!("waiting for the fix ({}) to finish", run.name));
                }
                Stage::Verifying { deadline_ms } => {
                    return Some(format!(
                        "waiting: the fix is being verified ({:.1}s left)",
                        deadline_ms.saturating_sub(self.now_ms) as f64 / 1000.0
                    ));
                }
                _ => {}
            }
        }
        let chapter = self.current()?;
        if !chapter.blocks_advance {
            return None;
        }
        match &self.phase {
            ChapterPhase::Countdown { action, .. } => {
                Some(format!("waiting: {action} is counting down"))
            }
            ChapterPhase::Running { what } => Some(format!("waiting for {what} to finish")),
            ChapterPhase::Settled { .. } if matches!(chapter.on_enter, Some(OnEnter::Diagnose)) => {
                matches!(self.diagnosis, DiagnosisPanel::Running { .. })
                    .then(|| "waiting for the diagnosis".to_string())
            }
            ChapterPhase::Settled { .. } => None,
        }
    }
}
