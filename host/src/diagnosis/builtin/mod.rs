//! The builtin diagnoser: offline, deterministic, evidence-based reasoning
//! over any subject's window. It knows only the generic anomaly classes; the
//! subject's words come from the window's glossary and invariants.
//!
//! Each candidate class collects weighted supporting and contradicting
//! evidence; the best supported class wins, ties going to what appeared first
//! and then to the class most likely to cause the others. Confidence follows
//! the weight of evidence and drops when it is thin, brief or contested.

mod dependencies;
mod evidence;
mod facts;
mod hypotheses;
mod metrics;
mod slots;
mod writeup;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;

use super::report::Diagnosis;
use super::window::ObservationWindow;
use facts::Facts;

/// Below this weight of evidence nothing is called an anomaly.
const MIN_SUPPORT: f64 = 0.2;
const MAX_CONFIDENCE: f64 = 0.95;

pub fn diagnose(window: &ObservationWindow) -> Diagnosis {
    let facts = Facts::gather(window);
    let hypotheses = hypotheses::ranked(&facts);
    let best = hypotheses
        .first()
        .filter(|h| h.support() >= MIN_SUPPORT && h.score() > 0.0);
    let mut d = match best {
        Some(best) => writeup::anomaly(window, &facts, best, &hypotheses),
        None => writeup::healthy(window, &facts, &hypotheses),
    };
    if d.class.is_some() && !window.remedies.is_empty() {
        let ids: Vec<String> = facts.nodes.iter().map(|n| n.id.clone()).collect();
        d.proposed_remedy =
            super::remedy::choose(&window.remedies, &d.anomaly, &d.affected_components, &ids);
    }
    d
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
