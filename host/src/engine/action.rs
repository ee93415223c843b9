//! What changes the demo (actions) and what the demo asks the runtime to do (effects).

use crate::diagnosis::{Diagnosis, DiagnosisError, ObservationWindow};
use crate::plugin::session::CallError;
use plugin_api::{ActiveFault, HealthSnapshot, Level, ParamValue, RemedyOutcome};
use std::path::PathBuf;

/// Errors stay typed across the channel: the engine can tell a panic or a
/// timeout from a plugin's own error, and messages are made where they are shown.
#[derive(Debug, Clone)]
pub enum Action {
    Tick,
    Next,
    Prev,
    /// Quit after recovering active chaos.
    Quit,
    ToggleHelp,
    /// The presenter asked to switch subject: the runtime discovers plugins.
    SwitchSubject,
    OpenPicker(Vec<(String, PathBuf)>),
    PickerMove(i32),
    PickerChoose,
    Reload,
    RecoverAll,
    Diagnose,
    FilterStart,
    FilterInput(char),
    FilterBackspace,
    FilterEnd {
        keep: bool,
    },
    ScrollLog(i32),
    /// The presenter approves the proposed fix (twice for a high-risk one).
    ApproveRemedy,
    RejectRemedy,
    /// Refuses every remedy for the rest of the run.
    KillSwitch,
    /// `remediate` answered; `record` is its leftover record when it changed something lasting.
    Remediated {
        record: Option<String>,
        result: Result<RemedyOutcome, CallError>,
    },
    /// A remedy's probe step answered.
    Probed(Result<String, CallError>),
    /// A remedy's lasting change was put back (or not).
    RemedyUndone {
        record: String,
        result: Result<(), CallError>,
    },
    /// Scrolls the health table of a large cluster (worst nodes come first).
    ScrollHealth(i32),
    /// Scrolls the diagnosis's details; its conclusion and fix stay in view.
    ScrollDiagnosis(i32),
    /// Escape: closes the topmost overlay.
    Back,
    HealthPolled(Result<HealthSnapshot, CallError>),
    StepDone {
        chapter: usize,
        result: Result<String, CallError>,
    },
    Injected {
        chapter: usize,
        action: String,
        result: Result<ActiveFault, CallError>,
    },
    Recovered {
        fault_id: String,
        result: Result<(), CallError>,
    },
    DiagnosisChunk(String),
    /// Boxed: a diagnosis is the largest payload by far, and every other action moves through the same channel.
    DiagnosisDone(Box<Result<Diagnosis, DiagnosisError>>),
    /// A line for the event log, stamped when it was said: a plugin's lines
    /// during a long `setup` reach the engine only afterwards.
    Log {
        at_ms: u64,
        level: Level,
        source: &'static str,
        message: String,
    },
}

#[derive(Debug, Clone)]
pub enum Effect {
    Inject {
        chapter: usize,
        action: String,
        params: Vec<(String, ParamValue)>,
    },
    Recover {
        fault_id: String,
    },
    RunStep {
        chapter: usize,
        id: String,
    },
    Diagnose(Box<ObservationWindow>),
    /// Run an approved remedy.
    Remediate {
        remedy: String,
        params: Vec<(String, ParamValue)>,
        target: String,
    },
    /// Run a remedy's probe step.
    Probe {
        step: String,
    },
    /// Put back what a remedy changed, and clear its leftover record.
    UndoRemedy {
        record: String,
        undo: String,
    },
    /// Find the plugins on the search path for the picker.
    Discover,
    /// Swap to another plugin file (or reload this one when it is the same path).
    Swap(PathBuf),
    Reload,
    /// Every fault is recovered (or none was active): the runtime may exit.
    Exit,
}
