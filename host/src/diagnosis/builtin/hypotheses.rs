//! Weighing hypotheses: each candidate class collects weighted supporting and
//! contradicting evidence from the facts.

use super::facts::{rel, Facts, InvariantRecord};
use super::{round2, MAX_CONFIDENCE};
use plugin_api::AnomalyClass;

/// Classes in the order they tend to cause one another: on a tie the earlier
/// wins (a member down makes a group lose its leader, which stalls work,
/// which fills queues and slows requests).
const PRECEDENCE: [AnomalyClass; 13] = [
    AnomalyClass::DependencyDown,
    AnomalyClass::NodeDown,
    AnomalyClass::QuorumLoss,
    AnomalyClass::CapacityExhausted,
    AnomalyClass::Saturation,
    AnomalyClass::LatencySpike,
    AnomalyClass::ErrorBurst,
    AnomalyClass::Lag,
    AnomalyClass::StateDivergence,
    AnomalyClass::BoundExceeded,
    AnomalyClass::Accounting,
    AnomalyClass::Imbalance,
    AnomalyClass::Other,
];

/// Every candidate class weighed, best first: by score, then by what appeared
/// first, then by the class most likely to cause the others.
pub(super) fn ranked(facts: &Facts) -> Vec<Hypothesis> {
    let mut hypotheses: Vec<Hypothesis> = candidate_classes(facts)
        .into_iter()
        .map(|class| Hypothesis::weigh(class, facts))
        .collect();
    hypotheses.sort_by(|a, b| {
        b.score()
            .total_cmp(&a.score())
            .then(
                a.first_seen
                    .unwrap_or(u64::MAX)
                    .cmp(&b.first_seen.unwrap_or(u64::MAX)),
            )
            .then(precedence(a.class).cmp(&precedence(b.class)))
    });
    hypotheses
}

fn precedence(class: AnomalyClass) -> usize {
    PRECEDENCE
        .iter()
        .position(|c| *c == class)
        .unwrap_or(PRECEDENCE.len())
}

/// The classes worth weighing: those any evidence points at, plus the usual
/// rivals (a member down, a dependency down, slowness) so they get ruled out explicitly.
fn candidate_classes(facts: &Facts) -> Vec<AnomalyClass> {
    let mut classes: Vec<AnomalyClass> = facts.violated().map(|i| i.class).collect();
    classes.extend([
        AnomalyClass::NodeDown,
        AnomalyClass::DependencyDown,
        AnomalyClass::LatencySpike,
    ]);
    let mut unique = Vec::new();
    for c in classes {
        if !unique.contains(&c) {
            unique.push(c);
        }
    }
    unique
}

/// What kind of observation an item of evidence is: confidence wants more
/// than one kind to agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Invariant,
    Node,
    Metric,
    Event,
}

#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) at_ms: Option<u64>,
    pub(super) kind: Kind,
    pub(super) source: String,
    pub(super) text: String,
    pub(super) weight: f64,
}

#[derive(Debug, Clone)]
pub(super) struct Hypothesis {
    pub(super) class: AnomalyClass,
    pub(super) supporting: Vec<Item>,
    pub(super) contradicting: Vec<Item>,
    pub(super) first_seen: Option<u64>,
    /// Ids of the components it is about (labels are for the report only).
    pub(super) components: Vec<String>,
    /// Its violations were seen in a single poll and then cleared.
    pub(super) brief: bool,
    /// Its violations so far were seen only in the latest poll.
    pub(super) fresh: bool,
    /// Every violation of this class had cleared by the end of the window.
    pub(super) resolved: bool,
    /// A violation of this class came and went more than once.
    pub(super) flapping: bool,
}

impl Hypothesis {
    pub(super) fn support(&self) -> f64 {
        self.supporting.iter().map(|i| i.weight).sum()
    }

    pub(super) fn score(&self) -> f64 {
        self.support() - self.contradicting.iter().map(|i| i.weight).sum::<f64>()
    }

    pub(super) fn kinds_of_evidence(&self) -> usize {
        let mut kinds: Vec<Kind> = self.supporting.iter().map(|i| i.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds.len()
    }

    fn weigh(class: AnomalyClass, facts: &Facts) -> Self {
        let mut h = Hypothesis {
            class,
            supporting: Vec::new(),
            contradicting: Vec::new(),
            first_seen: None,
            components: Vec::new(),
            brief: false,
            fresh: false,
            resolved: false,
            flapping: false,
        };
        let first_overall = facts.first_violation();
        let own: Vec<&InvariantRecord> = facts
            .invariants
            .iter()
            .filter(|i| i.class == class)
            .collect();
        let own_violated: Vec<&InvariantRecord> = own
            .iter()
            .copied()
            .filter(|i| i.first_violated.is_some())
            .collect();
        for inv in &own_violated {
            let at = inv.first_violated;
            let weight =
                if inv.violated_polls >= 2 || (inv.violated_polls == 0 && inv.violated_at_end) {
                    0.45
                } else {
                    0.25
                };
            h.add_support(
                at,
                Kind::Invariant,
                format!("invariant {}", inv.name),
                format!("violated at {}: {}", rel(facts, at), inv.reading()),
                weight,
            );
            if inv.exceeds_clearly() {
                h.add_support(
                    at,
                    Kind::Invariant,
                    format!("invariant {}", inv.name),
                    "the observed value is well past its bound".into(),
                    0.1,
                );
            }
            if at.is_some() && at == first_overall {
                h.add_support(
                    at,
                    Kind::Invariant,
                    format!("invariant {}", inv.name),
                    "the first invariant to break in this window".into(),
                    0.15,
                );
            }
            if !inv.violated_at_end {
                h.contradicting.push(item(
                    None,
                    Kind::Invariant,
                    format!("invariant {}", inv.name),
                    "it holds again by the end of the window".into(),
                    0.05,
                ));
            }
            for c in &inv.components {
                push_unique(&mut h.components, facts.resolve(c));
            }
            h.first_seen = match (h.first_seen, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let single = !own_violated.is_empty() && own_violated.iter().all(|i| i.violated_polls <= 1);
        h.fresh = single && own_violated.iter().any(|i| i.violated_at_end);
        h.brief = single && !h.fresh;
        h.resolved = !own_violated.is_empty() && own_violated.iter().all(|i| !i.violated_at_end);
        h.flapping = own_violated.iter().any(|i| i.onsets >= 2);
        for inv in own
            .iter()
            .filter(|i| i.first_violated.is_none() && !i.ever_unknown && facts.polls > 1)
        {
            h.contradicting.push(item(
                None,
                Kind::Invariant,
                format!("invariant {}", inv.name),
                format!("held throughout ({})", inv.detail),
                0.2,
            ));
        }
        match class {
            AnomalyClass::NodeDown => h.weigh_nodes(facts, false),
            AnomalyClass::DependencyDown => h.weigh_nodes(facts, true),
            AnomalyClass::LatencySpike => h.weigh_latency(facts),
            AnomalyClass::QuorumLoss => h.weigh_quorum(facts),
            _ => {}
        }
        h.weigh_component_status(facts);
        h.weigh_component_metrics(facts);
        h.weigh_consequence(facts);
        h.weigh_overload(facts);
        h.weigh_events(facts);
        h
    }
}

pub(super) fn item(
    at_ms: Option<u64>,
    kind: Kind,
    source: String,
    text: String,
    weight: f64,
) -> Item {
    Item {
        at_ms,
        kind,
        source,
        text,
        weight,
    }
}

pub(super) fn push_unique(list: &mut Vec<String>, s: String) {
    if !list.contains(&s) {
        list.push(s);
    }
}

/// How sure the best hypothesis is: the weight of its evidence, lowered when
/// a rival is close or the evidence is thin, brief or contested.
pub(super) fn confidence(best: &Hypothesis, runner_up: Option<&Hypothesis>) -> (f64, Vec<String>) {
    let mut why = Vec::new();
    let mut c = 1.0 - (-1.6 * best.score()).exp();
    if let Some(r) = runner_up.filter(|r| r.score() > 0.0) {
        let gap = best.score() - r.score();
        if gap < 0.25 {
            c *= 0.55 + gap;
            why.push(format!("{} is nearly as well supported", r.class.label()));
        }
    }
    if best.brief {
        c = c.min(0.4);
        why.push("the violation was seen in a single poll".into());
    }
    if best.fresh {
        c = c.min(0.75);
        why.push("so far only the latest poll shows the violation".into());
    }
    if best.flapping {
        c *= 0.85;
        why.push("the violation came and went".into());
    }
    if best.resolved {
        c *= 0.8;
        why.push("it had cleared by the end of the window".into());
    }
    if best.kinds_of_evidence() < 2 {
        c = c.min(0.6);
        why.push("only one kind of evidence points at it".into());
    }
    (round2(c.clamp(0.05, MAX_CONFIDENCE)), why)
}

#[cfg(test)]
mod tests {
    use super::super::diagnose;
    use super::super::fixture::{divergence, node, twin_breakage};
    use crate::diagnosis::window::ObservationWindow;
    use plugin_api::{AnomalyClass, DiagnosisContext, HealthSnapshot, NodeStatus};

    #[test]
    fn contested_evidence_gives_low_confidence() {
        let d = diagnose(&twin_breakage());
        assert!(d.class.is_some());
        assert!(
            d.confidence < 0.5,
            "confidence {} with an equally supported rival",
            d.confidence
        );
        assert!(d
            .alternatives
            .iter()
            .any(|a| a.conclusion.starts_with("possible")));
    }

    #[test]
    fn flapping_violation_is_less_certain_than_a_steady_one() {
        let steady = diagnose(&divergence(&[6, 7, 8, 9, 10, 11]));
        let flapping = diagnose(&divergence(&[6, 7, 9, 10, 11]));
        assert_eq!(steady.class, flapping.class);
        assert!(
            flapping.confidence < steady.confidence,
            "{} vs {}",
            flapping.confidence,
            steady.confidence
        );
        assert!(
            flapping.narrative.contains("came and went"),
            "{}",
            flapping.narrative
        );
    }

    #[test]
    fn a_member_going_down_without_an_invariant_is_still_seen() {
        let snaps = (0..8u64)
            .map(|k| {
                let mut nodes = vec![node("m-1"), node("m-2"), node("m-3")];
                if k >= 4 {
                    nodes[2].status = NodeStatus::Down;
                }
                HealthSnapshot {
                    at_ms: k * 500,
                    nodes,
                    ..Default::default()
                }
            })
            .collect();
        let d = diagnose(&ObservationWindow::from_snapshots(
            "s",
            DiagnosisContext::default(),
            snaps,
        ));
        assert_eq!(d.class, Some(AnomalyClass::NodeDown));
        assert_eq!(d.affected_components, vec!["m-3".to_string()]);
        assert!(
            d.confidence <= 0.6,
            "one kind of evidence only: {}",
            d.confidence
        );
    }
}
