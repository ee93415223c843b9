//! Writing the report: the conclusion drawn from the best hypothesis (or
//! none), its confidence, severity, likely cause, timeline and alternatives.

use super::facts::{rel, status_word, Facts};
use super::hypotheses::{confidence, Hypothesis};
use super::{round2, MAX_CONFIDENCE, MIN_SUPPORT};
use crate::diagnosis::report::{
    Alternative, Diagnosis, Evidence, MetricReading, Severity, TimelineEntry, NO_ANOMALY,
};
use crate::diagnosis::score::normalize;
use crate::diagnosis::window::{self, ObservationWindow};
use plugin_api::{AnomalyClass, InvariantStatus, NodeStatus};

/// The glossary term for a class: when several terms share it, the one that
/// is a violated invariant's very name (case and spacing ignored), else the
/// first; the class label if none. Names are compared for identity only,
/// never searched inside one another, so a renamed subject keeps its answer.
fn term_for(window: &ObservationWindow, facts: &Facts, class: AnomalyClass) -> String {
    let terms: Vec<&str> = window
        .context
        .glossary
        .iter()
        .filter(|g| g.class == Some(class))
        .map(|g| g.term.as_str())
        .collect();
    let violated: Vec<String> = facts
        .violated()
        .filter(|i| i.class == class)
        .map(|i| normalize(&i.name))
        .collect();
    terms
        .iter()
        .find(|t| violated.contains(&normalize(t)))
        .or(terms.first())
        .map(|t| t.to_string())
        .unwrap_or_else(|| class.label().to_string())
}

fn severity(class: AnomalyClass, facts: &Facts, best: &Hypothesis) -> Severity {
    let base = match class {
        AnomalyClass::DependencyDown => Severity::Critical,
        AnomalyClass::NodeDown => {
            let down = facts
                .node_changes
                .iter()
                .filter(|c| c.member() && c.to == NodeStatus::Down)
                .count();
            if facts.member_count > 0 && down * 2 >= facts.member_count {
                Severity::Critical
            } else {
                Severity::High
            }
        }
        AnomalyClass::QuorumLoss => Severity::Critical,
        AnomalyClass::BoundExceeded
        | AnomalyClass::Accounting
        | AnomalyClass::CapacityExhausted
        | AnomalyClass::ErrorBurst => Severity::High,
        AnomalyClass::StateDivergence
        | AnomalyClass::LatencySpike
        | AnomalyClass::Lag
        | AnomalyClass::Saturation
        | AnomalyClass::Other => Severity::Medium,
        AnomalyClass::Imbalance => Severity::Low,
    };
    if best.brief || best.resolved {
        base.min(Severity::Medium).max(Severity::Low)
    } else {
        base
    }
}

fn recommended_action(class: AnomalyClass, components: &str) -> String {
    match class {
        AnomalyClass::NodeDown => format!("Bring {components} back (restart the process or container), find out why it stopped answering, and confirm the remaining members carried its work."),
        AnomalyClass::DependencyDown => format!("Restore {components}, which the members share; check its process, network and resources, then watch the invariants recover."),
        AnomalyClass::StateDivergence => format!("Compare the shared state of {components} with the members' local views, find the writes that were missed or bypassed, and reconcile before trusting either."),
        AnomalyClass::BoundExceeded => format!("Treat the bound on {components} as broken: find which path acknowledged work without counting it, and audit what was let through."),
        AnomalyClass::LatencySpike => format!("Look at load and resource pressure on {components}; shed or spread load and check for a slow dependency."),
        AnomalyClass::Imbalance => format!("Rebalance work or data away from {components}."),
        AnomalyClass::CapacityExhausted => format!("Free or add capacity on {components} before it runs out."),
        AnomalyClass::Accounting => format!("Reconcile the counts on {components}: find operations that were lost or counted twice."),
        AnomalyClass::Lag => format!("Find what holds {components} back (a slow link, a stalled apply or consumer, too much write load) and let it catch up before relying on its data."),
        AnomalyClass::QuorumLoss => format!("Restore enough members of {components} to regain a quorum and a leader; do not force a new one while the old may still be alive."),
        AnomalyClass::ErrorBurst => format!("Look at what {components} returns errors for and when they began; roll back or isolate the change or the member that causes them."),
        AnomalyClass::Saturation => format!("Shed or spread the load on {components}, or add capacity, before its queues overflow."),
        AnomalyClass::Other => format!("Inspect {components} and the violated invariants."),
    }
}

fn likely_cause(class: AnomalyClass, facts: &Facts, best: &Hypothesis) -> String {
    let node = |dep: bool| {
        facts
            .node_changes
            .iter()
            .filter(|c| if dep { c.shared_dependency } else { c.member() })
            .filter(|c| c.to != NodeStatus::Degraded)
            .min_by_key(|c| c.at_ms)
    };
    let inv = facts
        .violated()
        .filter(|i| i.class == class)
        .min_by_key(|i| i.first_violated);
    let surge = facts
        .metric_deltas
        .iter()
        .filter(|d| !d.time_like() && d.significant && d.ratio() >= 2.0 && d.node.is_none())
        .max_by(|a, b| a.ratio().total_cmp(&b.ratio()));
    match (class, node(class == AnomalyClass::DependencyDown), inv) {
        (AnomalyClass::NodeDown | AnomalyClass::DependencyDown, Some(c), _) => format!(
            "{} stopped answering at {} ({} → {}){}",
            c.label,
            facts.rel(c.at_ms),
            status_word(c.from),
            status_word(c.to),
            if c.shared_dependency {
                "; the members depend on it"
            } else {
                ""
            }
        ),
        (_, _, Some(i)) => {
            let mut s = format!(
                "{} broke at {}: {}",
                i.name,
                rel(facts, i.first_violated),
                i.reading()
            );
            if let Some(d) = surge {
                s.push_str(&format!(", while {}", d.describe()));
            }
            s
        }
        _ => match best.supporting.first() {
            Some(first) => first.text.clone(),
            None => "unclear from the observations".into(),
        },
    }
}

fn timeline(window: &ObservationWindow, facts: &Facts) -> Vec<TimelineEntry> {
    let mut t = Vec::new();
    if let Some(first) = window.snapshots.first() {
        let up = first
            .nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Up)
            .count();
        let violated = first
            .invariants
            .iter()
            .filter(|i| i.status == InvariantStatus::Violated)
            .count();
        t.push(TimelineEntry {
            at_ms: first.at_ms,
            event: format!(
                "observation starts: {up} of {} nodes up, {violated} of {} invariants violated",
                first.nodes.len(),
                first.invariants.len()
            ),
        });
    }
    for c in &facts.node_changes {
        t.push(TimelineEntry {
            at_ms: c.at_ms,
            event: format!(
                "{} {} → {}",
                c.label,
                status_word(c.from),
                status_word(c.to)
            ),
        });
    }
    let changes = if window.invariant_changes.is_empty() {
        window::changes_between(&window.snapshots)
    } else {
        window.invariant_changes.clone()
    };
    for c in &changes {
        t.push(TimelineEntry {
            at_ms: c.at_ms,
            event: format!(
                "{} {} → {}: {}",
                c.invariant,
                inv_word(c.from),
                inv_word(c.to),
                c.detail
            ),
        });
    }
    for w in facts.warnings.iter().take(8) {
        t.push(TimelineEntry {
            at_ms: w.at_ms,
            event: w.message.clone(),
        });
    }
    t.sort_by_key(|e| e.at_ms);
    t
}

fn inv_word(s: InvariantStatus) -> &'static str {
    match s {
        InvariantStatus::Ok => "ok",
        InvariantStatus::Violated => "violated",
        InvariantStatus::Unknown => "unknown",
    }
}

fn metric_readings(facts: &Facts) -> Vec<MetricReading> {
    facts
        .metric_deltas
        .iter()
        .filter(|d| d.significant)
        .take(8)
        .map(|d| MetricReading {
            metric: d.name.clone(),
            component: d.node.clone(),
            before: Some(d.before),
            during: Some(d.during),
            unit: d.unit.clone(),
        })
        .collect()
}

fn alternatives(hypotheses: &[Hypothesis], chosen: Option<AnomalyClass>) -> Vec<Alternative> {
    hypotheses
        .iter()
        .map(|h| {
            let verdict = if Some(h.class) == chosen {
                "accepted: best supported by the evidence".to_string()
            } else if h.support() >= MIN_SUPPORT && h.score() > 0.0 {
                format!(
                    "possible: supported (weight {:.2}) but less than the accepted one",
                    h.score()
                )
            } else if h.supporting.is_empty() {
                "rejected: nothing observed supports it".to_string()
            } else {
                "rejected: the contradicting evidence outweighs the supporting".to_string()
            };
            Alternative {
                hypothesis: h.class.label().to_string(),
                supporting: h.supporting.iter().map(|i| i.text.clone()).collect(),
                contradicting: h.contradicting.iter().map(|i| i.text.clone()).collect(),
                conclusion: verdict,
            }
        })
        .collect()
}

pub(super) fn anomaly(
    window: &ObservationWindow,
    facts: &Facts,
    best: &Hypothesis,
    all: &[Hypothesis],
) -> Diagnosis {
    let class = best.class;
    let term = term_for(window, facts, class);
    let runner_up = all.iter().find(|h| h.class != class);
    let (confidence, why) = confidence(best, runner_up);
    let affected: Vec<String> = best
        .components
        .iter()
        .map(|c| facts.component_label(c))
        .collect();
    let components = if affected.is_empty() {
        "the subject".to_string()
    } else {
        affected.join(", ")
    };
    let cause = likely_cause(class, facts, best);
    let since = best
        .first_seen
        .map(|t| format!(" since {}", facts.rel(t)))
        .unwrap_or_default();
    let doubt = if why.is_empty() {
        "several independent observations agree".to_string()
    } else {
        why.join("; ")
    };
    let class_note = if term.eq_ignore_ascii_case(class.label()) {
        String::new()
    } else {
        format!(" ({})", class.label())
    };
    let narrative = format!(
        "{term}{class_note} on {components}{since}. Likely cause: {cause}. Confidence {:.0}%: {doubt}.",
        confidence * 100.0
    );
    Diagnosis {
        anomaly: term,
        class: Some(class),
        affected_components: affected,
        timeline: timeline(window, facts),
        metric_readings: metric_readings(facts),
        evidence: best
            .supporting
            .iter()
            .map(|i| Evidence {
                at_ms: i.at_ms,
                source: i.source.clone(),
                observation: i.text.clone(),
            })
            .collect(),
        alternatives: alternatives(all, Some(class)),
        likely_cause: cause,
        severity: severity(class, facts, best),
        recommended_action: recommended_action(class, &components),
        confidence,
        narrative,
        backend: "builtin".into(),
        rule_findings: Vec::new(),
        proposed_remedy: None,
        model_call: None,
    }
}

pub(super) fn healthy(window: &ObservationWindow, facts: &Facts, all: &[Hypothesis]) -> Diagnosis {
    let unknown: Vec<&str> = facts
        .invariants
        .iter()
        .filter(|i| i.ever_unknown)
        .map(|i| i.name.as_str())
        .collect();
    let weak: Vec<&Hypothesis> = all.iter().filter(|h| h.support() > 0.0).collect();
    let mut confidence: f64 = match facts.polls {
        0 => 0.2,
        1 => 0.5,
        2..=3 => 0.7,
        _ => 0.9,
    };
    let mut doubts = Vec::new();
    if !unknown.is_empty() {
        confidence -= 0.2;
        doubts.push(format!("could not evaluate {}", unknown.join(", ")));
    }
    if !weak.is_empty() {
        confidence -= 0.15;
        doubts.push("some weak signals (see alternatives)".to_string());
    }
    let confidence = round2(confidence.clamp(0.05, MAX_CONFIDENCE));
    let nodes_up = facts
        .nodes
        .iter()
        .filter(|n| n.status == NodeStatus::Up)
        .count();
    let evidence = vec![Evidence {
        at_ms: window.snapshots.last().map(|s| s.at_ms),
        source: "invariants".into(),
        observation: format!(
            "{} polls: no invariant violated, {nodes_up} of {} nodes up",
            facts.polls,
            facts.nodes.len()
        ),
    }];
    let narrative = format!(
        "No anomaly in {} polls: every invariant held and no node stopped answering. Confidence {:.0}%{}.",
        facts.polls,
        confidence * 100.0,
        if doubts.is_empty() { String::new() } else { format!(" ({})", doubts.join("; ")) }
    );
    Diagnosis {
        anomaly: NO_ANOMALY.into(),
        class: None,
        affected_components: Vec::new(),
        timeline: timeline(window, facts),
        metric_readings: metric_readings(facts),
        evidence,
        alternatives: alternatives(all, None),
        likely_cause: "nothing is wrong as far as the observations show".into(),
        severity: Severity::None,
        recommended_action: "None; keep watching.".into(),
        confidence,
        narrative,
        backend: "builtin".into(),
        rule_findings: Vec::new(),
        proposed_remedy: None,
        model_call: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::diagnose;
    use super::super::fixture::twin_breakage;
    use crate::diagnosis::report::NO_ANOMALY;
    use crate::diagnosis::window::ObservationWindow;
    use plugin_api::DiagnosisContext;

    #[test]
    fn class_label_is_used_when_the_glossary_has_no_term() {
        let mut w = twin_breakage();
        w.context.glossary.clear();
        let d = diagnose(&w);
        assert_eq!(d.anomaly, d.class.expect("a class").label());
    }

    #[test]
    fn empty_window_is_no_anomaly_with_low_confidence() {
        let w = ObservationWindow::from_snapshots("s", DiagnosisContext::default(), vec![]);
        let d = diagnose(&w);
        assert_eq!(d.anomaly, NO_ANOMALY);
        assert!(d.confidence <= 0.3);
    }
}
