//! The prompt for model backends: a generic system prompt plus the window as
//! JSON. Every subject-specific word in it comes from the plugin's window.

use super::report::{class_key, NO_ANOMALY};
use super::window::ObservationWindow;
use plugin_api::AnomalyClass;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

/// What each generic class means, in words that fit any subject.
fn class_meaning(class: AnomalyClass) -> &'static str {
    match class {
        AnomalyClass::NodeDown => "a member of the cluster stopped answering",
        AnomalyClass::DependencyDown => "a dependency that the members share stopped answering",
        AnomalyClass::StateDivergence => {
            "shared state disagrees with the members' local views of it"
        }
        AnomalyClass::BoundExceeded => "an acknowledged count went beyond its bound",
        AnomalyClass::LatencySpike => "latency jumped beyond its bound",
        AnomalyClass::Imbalance => "work or data is unevenly spread",
        AnomalyClass::CapacityExhausted => "a resource such as disk or memory is nearly used up",
        AnomalyClass::Accounting => "operations were lost or counted twice",
        AnomalyClass::Other => "none of the above",
    }
}

pub fn system_prompt() -> String {
    let classes: String = AnomalyClass::ALL
        .iter()
        .map(|c| format!("- {}: {}\n", class_key(*c), class_meaning(*c)))
        .collect();
    format!(
        "You are a site reliability engineer diagnosing an anomaly in a distributed system \
from observations alone. You are given an observation window: the system's own description, \
its components and glossary, health snapshots (oldest first) from before and during the anomaly, \
invariant status changes with times, and events. Nothing else is known; in particular you are \
not told what fault, if any, was injected.\n\n\
Reason from evidence:\n\
1. Build a timeline of what changed and when (times are unix milliseconds).\n\
2. Compare snapshots before and during the anomaly: node status, metric values, invariants.\n\
3. Consider several hypotheses; for each list supporting and contradicting evidence and \
conclude accepted, rejected or possible. Prefer the cause that appears first and explains \
the later symptoms.\n\
4. Pick one generic class for the anomaly:\n{classes}\
5. Name the anomaly with the glossary term whose class matches your class; if no term \
matches, use the class name. If nothing is wrong, answer \"{NO_ANOMALY}\" with class null \
and severity none.\n\
6. Name the affected components exactly as the window names them.\n\
7. Cite evidence with its time and values. Confidence is between 0 and 1; keep it low \
when the evidence is thin, brief or contradictory.\n\n\
Answer only with the {tool} JSON object described by the schema.",
        tool = super::report::ANSWER_NAME,
    )
}

/// The full prompt for a window (mask the window first when identities must not leave).
pub fn build_prompt(window: &ObservationWindow) -> Prompt {
    let json = serde_json::to_string_pretty(window).unwrap_or_default();
    let user = format!(
        "Subject: {}\nObservation window (JSON):\n{json}\n\nDiagnose the anomaly in this window.",
        window.subject
    );
    Prompt {
        system: system_prompt(),
        user,
    }
}
