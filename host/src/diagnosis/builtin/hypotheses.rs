//! Weighing hypotheses: each candidate class collects weighted supporting and
//! contradicting evidence from the facts.

use super::facts::{rel, status_word, Facts, InvariantRecord, MetricDelta, NodeChange};
use super::{round2, MAX_CONFIDENCE};
use plugin_api::{AnomalyClass, Level, NodeStatus};

/// A time-like metric rising by this factor counts as a latency jump.
const LATENCY_JUMP: f64 = 2.0;

/// Classes in the order they tend to cause one another: on a tie the earlier wins.
const PRECEDENCE: [AnomalyClass; 9] = [
    AnomalyClass::DependencyDown,
    AnomalyClass::NodeDown,
    AnomalyClass::CapacityExhausted,
    AnomalyClass::LatencySpike,
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

#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) at_ms: Option<u64>,
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
        let mut kinds: Vec<&str> = self
            .supporting
            .iter()
            .map(|i| i.source.split(' ').next().unwrap_or(""))
            .collect();
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
                format!("invariant {}", inv.name),
                format!("violated at {}: {}", rel(facts, at), inv.reading()),
                weight,
            );
            if inv.exceeds_clearly() {
                h.add_support(
                    at,
                    format!("invariant {}", inv.name),
                    "the observed value is well past its bound".into(),
                    0.1,
                );
            }
            if at.is_some() && at == first_overall {
                h.add_support(
                    at,
                    format!("invariant {}", inv.name),
                    "the first invariant to break in this window".into(),
                    0.15,
                );
            }
            if !inv.violated_at_end {
                h.contradicting.push(item(
                    None,
                    format!("invariant {}", inv.name),
                    "it holds again by the end of the window".into(),
                    0.05,
                ));
            }
            for c in &inv.components {
                push_unique(&mut h.components, facts.component_label(c));
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
                format!("invariant {}", inv.name),
                format!("held throughout ({})", inv.detail),
                0.2,
            ));
        }
        match class {
            AnomalyClass::NodeDown => h.weigh_nodes(facts, false),
            AnomalyClass::DependencyDown => h.weigh_nodes(facts, true),
            AnomalyClass::LatencySpike => h.weigh_latency(facts),
            _ => {}
        }
        h.weigh_component_metrics(facts);
        h.weigh_consequence(facts);
        h.weigh_events(facts);
        h
    }

    fn add_support(&mut self, at_ms: Option<u64>, source: String, text: String, weight: f64) {
        self.supporting.push(item(at_ms, source, text, weight));
    }

    /// A member (or a shared dependency) leaving the `up` state.
    fn weigh_nodes(&mut self, facts: &Facts, dependency: bool) {
        let relevant: Vec<&NodeChange> = facts
            .node_changes
            .iter()
            .filter(|c| c.shared_dependency == dependency)
            .collect();
        let what = if dependency {
            "shared dependency"
        } else {
            "member"
        };
        for c in &relevant {
            let weight = match c.to {
                NodeStatus::Down => 0.3,
                NodeStatus::Unknown => 0.2,
                _ => 0.1,
            };
            self.add_support(
                Some(c.at_ms),
                format!("node {}", c.id),
                format!(
                    "{what} {} went {} → {} at {}",
                    c.label,
                    status_word(c.from),
                    status_word(c.to),
                    facts.rel(c.at_ms)
                ),
                weight,
            );
            if matches!(c.to, NodeStatus::Down | NodeStatus::Unknown) {
                push_unique(&mut self.components, c.label.clone());
                self.first_seen = Some(self.first_seen.map_or(c.at_ms, |t| t.min(c.at_ms)));
            }
        }
        let dependency_down = facts
            .node_changes
            .iter()
            .filter(|c| c.shared_dependency && c.to == NodeStatus::Down)
            .min_by_key(|c| c.at_ms);
        if dependency {
            if let Some(dep) = dependency_down.map(|c| c.at_ms) {
                let followers = facts
                    .node_changes
                    .iter()
                    .filter(|c| !c.shared_dependency && c.at_ms >= dep && c.to != NodeStatus::Down)
                    .count();
                if followers > 0 {
                    self.add_support(
                        Some(dep),
                        "node members".into(),
                        format!("{followers} member(s) became degraded or unknown after it"),
                        0.1,
                    );
                }
            }
        } else if !relevant.iter().any(|c| c.to != NodeStatus::Degraded)
            && !facts.node_changes.iter().any(|c| c.shared_dependency)
            && relevant.len() >= facts.member_count.max(1)
            && facts.member_count > 1
        {
            self.contradicting.push(item(
                None,
                "node members".into(),
                "every member degraded at once, which points at something they share".into(),
                0.15,
            ));
        }
        if let (false, Some(dep)) = (dependency, dependency_down) {
            if !relevant.is_empty() && relevant.iter().all(|c| c.at_ms >= dep.at_ms) {
                self.contradicting.push(item(
                    Some(dep.at_ms),
                    format!("node {}", dep.id),
                    format!(
                        "the members changed only after {} went down, which explains them",
                        dep.label
                    ),
                    0.3,
                ));
            }
        }
        if !relevant.iter().any(|c| c.to != NodeStatus::Degraded) && !facts.nodes.is_empty() {
            self.contradicting.push(item(
                None,
                "node status".into(),
                format!("no {what} stopped answering"),
                0.3,
            ));
        }
    }

    fn weigh_latency(&mut self, facts: &Facts) {
        let timed: Vec<&MetricDelta> = facts
            .metric_deltas
            .iter()
            .filter(|d| d.time_like())
            .collect();
        let moved = |d: &MetricDelta| d.significant && d.during > d.before;
        let mut jumped = false;
        let mut weight_left: f64 = 0.3;
        for d in &timed {
            let ratio = d.ratio();
            if ratio >= LATENCY_JUMP && moved(d) {
                jumped = true;
                let w = 0.2_f64.min(weight_left);
                weight_left -= w;
                self.add_support(Some(d.at_ms), format!("metric {}", d.name), d.describe(), w);
                if let Some(node) = &d.node {
                    push_unique(&mut self.components, facts.component_label(node));
                }
                self.first_seen = Some(self.first_seen.map_or(d.at_ms, |t| t.min(d.at_ms)));
            } else if ratio >= 1.2 && moved(d) && weight_left > 0.0 {
                let w = 0.05_f64.min(weight_left);
                weight_left -= w;
                self.add_support(
                    Some(d.at_ms),
                    format!("metric {}", d.name),
                    format!("{} (a modest rise)", d.describe()),
                    w,
                );
            }
        }
        if !timed.is_empty() && !jumped {
            self.contradicting.push(item(
                None,
                "metrics".into(),
                "no latency reading even doubled".into(),
                0.2,
            ));
        }
    }

    /// Metrics of the named components that moved well beyond their noise.
    fn weigh_component_metrics(&mut self, facts: &Facts) {
        let ids: Vec<&str> = self
            .components
            .iter()
            .filter_map(|c| c.split(' ').next())
            .collect();
        let moved: Vec<&MetricDelta> = facts
            .metric_deltas
            .iter()
            .filter(|d| d.significant && !d.time_like())
            .filter(|d| d.node.as_deref().is_some_and(|n| ids.contains(&n)))
            .take(2)
            .collect();
        for d in moved {
            self.add_support(
                Some(d.at_ms),
                format!("metric {}", d.name),
                d.describe(),
                0.1,
            );
        }
    }

    /// Symptoms that began after a member or dependency stopped answering are
    /// more likely its consequences than a cause of their own.
    fn weigh_consequence(&mut self, facts: &Facts) {
        if matches!(
            self.class,
            AnomalyClass::NodeDown | AnomalyClass::DependencyDown
        ) {
            return;
        }
        let Some(first) = self.first_seen else { return };
        if let Some(c) = facts
            .node_changes
            .iter()
            .filter(|c| c.to == NodeStatus::Down && c.at_ms <= first)
            .min_by_key(|c| c.at_ms)
        {
            self.contradicting.push(item(
                Some(c.at_ms),
                format!("node {}", c.id),
                format!(
                    "it began after {} went down at {}, so it may be a consequence",
                    c.label,
                    facts.rel(c.at_ms)
                ),
                0.3,
            ));
        }
    }

    fn weigh_events(&mut self, facts: &Facts) {
        let mut weight_left: f64 = 0.15;
        for (at, level, message) in &facts.warnings {
            let lower = message.to_lowercase();
            let names_component = self.components.iter().any(|c| {
                let id = c.split(' ').next().unwrap_or(c).to_lowercase();
                !id.is_empty() && lower.contains(&id)
            });
            if names_component && weight_left > 0.0 {
                let w = 0.05_f64.min(weight_left);
                weight_left -= w;
                let lvl = if *level == Level::Error {
                    "error"
                } else {
                    "warning"
                };
                self.add_support(
                    Some(*at),
                    "event".into(),
                    format!("{lvl} at {}: {message}", facts.rel(*at)),
                    w,
                );
            }
        }
    }
}

fn item(at_ms: Option<u64>, source: String, text: String, weight: f64) -> Item {
    Item {
        at_ms,
        source,
        text,
        weight,
    }
}

fn push_unique(list: &mut Vec<String>, s: String) {
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
