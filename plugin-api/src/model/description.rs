//! What a subject says of itself: info, prerequisites, chapters and their
//! expectations, and its vocabulary for the diagnoser.

use super::*;
use serde::{Deserialize, Serialize};

/// Static description of a subject: everything `demo-host inspect` shows,
/// available without creating an instance or touching the system under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectDescription {
    pub info: SubjectInfo,
    pub chapters: Vec<Chapter>,
    pub chaos_actions: Vec<ChaosAction>,
    pub diagnosis: DiagnosisContext,
    /// Fixes an operator would apply in production, which the diagnosis may
    /// propose and the presenter may approve (see [`Remedy`]). Empty: none.
    #[serde(default)]
    pub remedies: Vec<Remedy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectInfo {
    /// Short machine id (`ratelimiter`, `tikv`), used in journals and the picker.
    pub id: String,
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    pub description: String,
    /// The plugin-api version the plugin was compiled against (set by the export macro).
    pub api_version: String,
    /// Environments the plugin supports (`local`, `compose`, ...); the first is the default.
    pub environments: Vec<String>,
    /// What the subject needs on the machine: the same list as the crate's
    /// `[package.metadata.demo-host]`, which the host reads before building.
    #[serde(default)]
    pub prerequisites: Vec<Prerequisite>,
}

/// A program the subject needs on the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prerequisite {
    /// Looked up on `PATH` (or an absolute path).
    pub binary: String,
    pub why: String,
    /// The environments that need it; empty: every environment.
    #[serde(default)]
    pub environments: Vec<String>,
    /// Only a note when missing (a running system may make it unneeded).
    #[serde(default)]
    pub optional: bool,
}

/// One narrated step of the demo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chapter {
    pub title: String,
    pub narration: String,
    pub key_hint: String,
    /// Move on by itself this many milliseconds after the on-enter action finished.
    pub auto_advance_ms: Option<u64>,
    /// Refuse to advance until the on-enter action has finished.
    pub blocks_advance: bool,
    pub on_enter: Option<OnEnter>,
    /// For detection chapters: the invariant that must be seen violated here.
    pub expect_violation: Option<String>,
    /// For diagnosis chapters: what the diagnosis must name.
    pub expect_diagnosis: Option<ExpectedDiagnosis>,
}

impl Chapter {
    /// A chapter that only narrates and waits for the presenter.
    pub fn narrate(title: impl Into<String>, narration: impl Into<String>) -> Self {
        Chapter {
            title: title.into(),
            narration: narration.into(),
            key_hint: "space/enter: next · q: quit".into(),
            auto_advance_ms: None,
            blocks_advance: false,
            on_enter: None,
            expect_violation: None,
            expect_diagnosis: None,
        }
    }

    pub fn key_hint(mut self, hint: impl Into<String>) -> Self {
        self.key_hint = hint.into();
        self
    }

    pub fn on_enter(mut self, action: OnEnter) -> Self {
        self.on_enter = Some(action);
        self
    }

    pub fn auto_advance(mut self, after_ms: u64) -> Self {
        self.auto_advance_ms = Some(after_ms);
        self
    }

    pub fn blocking(mut self) -> Self {
        self.blocks_advance = true;
        self
    }

    pub fn expect_violation(mut self, invariant: impl Into<String>) -> Self {
        self.expect_violation = Some(invariant.into());
        self
    }

    pub fn expect_diagnosis(mut self, anomaly: impl Into<String>, component: Component) -> Self {
        self.expect_diagnosis = Some(ExpectedDiagnosis {
            anomaly: anomaly.into(),
            component,
        });
        self
    }
}

/// What happens when a chapter is entered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OnEnter {
    /// Inject a chaos action (after the host's 3-2-1 countdown).
    Chaos {
        action: String,
        params: Vec<(String, ParamValue)>,
    },
    /// Recover every active chaos action.
    Recover,
    /// Run one of the subject's own steps (set a limit, start load, ...).
    Step { id: String },
    /// Ask the host's diagnoser for a diagnosis of the current anomaly.
    Diagnose,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedDiagnosis {
    /// The anomaly type the diagnosis must name, in the subject's words.
    pub anomaly: String,
    pub component: Component,
}

/// Which component a diagnosis must name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Component {
    /// No component check.
    Any,
    /// A fixed component name, matched by identity (`pg-1` does not match `pg-10`).
    Named(String),
    /// Any one of these components (a fault that two names describe equally well).
    OneOf(Vec<String>),
    /// Whatever the most recent chaos action reported as its target
    /// (a store chosen at random, say). Used for scoring only, never shown to the diagnoser.
    ChaosTarget,
}

/// The subject's vocabulary for the host's generic diagnoser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DiagnosisContext {
    /// One or two sentences on what the system is.
    pub system: String,
    pub components: Vec<ComponentInfo>,
    pub glossary: Vec<GlossaryEntry>,
}

/// A component the subject always has, described for the diagnoser: the
/// dependencies and logical parts worth a sentence. Nodes that come and go are
/// described by their [`NodeHealth::kind`] in each snapshot instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentInfo {
    pub name: String,
    pub kind: ComponentKind,
    pub description: String,
    /// Names of the components this one needs.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlossaryEntry {
    pub term: String,
    pub meaning: String,
    /// When the term names an anomaly: the generic class it is an instance of.
    pub class: Option<AnomalyClass>,
}
