//! The evidence a hypothesis collects beyond its own invariants: components
//! that stopped answering or degraded, latency, a lost majority, metrics and
//! events of the components it names, and what it may be a consequence of.
//!
//! Components are compared by id only; names are never measured, sorted or
//! searched inside one another, so renaming a subject changes no weight.

use super::facts::{mentions, status_word, Facts, InvariantRecord, MetricDelta, NodeChange};
use super::hypotheses::{item, push_unique, Hypothesis, Kind};
use plugin_api::{AnomalyClass, ComponentKind, Level, NodeStatus};

/// A time-like metric rising by this factor counts as a latency jump.
const LATENCY_JUMP: f64 = 2.0;

/// (cause, symptom): classes whose lasting violation explains another on the
/// same components. More work than capacity makes requests wait, fail and
/// fall behind; so does a resource that ran out.
const SYMPTOMS: [(AnomalyClass, AnomalyClass); 5] = [
    (AnomalyClass::Saturation, AnomalyClass::LatencySpike),
    (AnomalyClass::Saturation, AnomalyClass::ErrorBurst),
    (AnomalyClass::Saturation, AnomalyClass::Lag),
    (AnomalyClass::CapacityExhausted, AnomalyClass::LatencySpike),
    (AnomalyClass::CapacityExhausted, AnomalyClass::ErrorBurst),
];

impl Hypothesis {
    pub(super) fn add_support(
        &mut self,
        at_ms: Option<u64>,
        kind: Kind,
        source: String,
        text: String,
        weight: f64,
    ) {
        self.supporting
            .push(item(at_ms, kind, source, text, weight));
    }

    fn add_against(
        &mut self,
        at_ms: Option<u64>,
        kind: Kind,
        source: String,
        text: String,
        weight: f64,
    ) {
        self.contradicting
            .push(item(at_ms, kind, source, text, weight));
    }

    fn seen_at(&mut self, at_ms: u64) {
        self.first_seen = Some(self.first_seen.map_or(at_ms, |t| t.min(at_ms)));
    }

    /// A member (or a shared dependency) leaving the `up` state. Resources,
    /// clients and other components are never a *node down*: they count for
    /// the hypotheses that name them ([`Hypothesis::weigh_component_status`]).
    pub(super) fn weigh_nodes(&mut self, facts: &Facts, dependency: bool) {
        let wanted = if dependency {
            ComponentKind::Dependency
        } else {
            ComponentKind::Member
        };
        let relevant: Vec<&NodeChange> = facts
            .node_changes
            .iter()
            .filter(|c| c.kind == wanted)
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
                Kind::Node,
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
            if c.stopped() {
                push_unique(&mut self.components, c.id.clone());
                self.seen_at(c.at_ms);
            }
        }
        self.weigh_dependents(facts, &relevant);
        let dependency_down = facts
            .node_changes
            .iter()
            .filter(|c| c.shared_dependency && c.to == NodeStatus::Down)
            .min_by_key(|c| c.at_ms);
        // With a declared graph, only what needs the fallen component can be
        // its consequence; without one, timing is all there is.
        let graph = &facts.dependencies;
        let explains =
            |dep: &NodeChange, c: &NodeChange| !graph.any() || graph.needs(&c.id, &dep.id);
        if dependency {
            if let Some(dep) = dependency_down {
                let followers = facts
                    .node_changes
                    .iter()
                    .filter(|c| c.member() && c.at_ms >= dep.at_ms && c.to != NodeStatus::Down)
                    .filter(|c| explains(dep, c))
                    .count();
                if followers > 0 {
                    let which = if graph.any() {
                        " that depend on it"
                    } else {
                        ""
                    };
                    self.add_support(
                        Some(dep.at_ms),
                        Kind::Node,
                        "node members".into(),
                        format!("{followers} member(s){which} became degraded or unknown after it"),
                        0.1,
                    );
                }
            }
        } else if !relevant.iter().any(|c| c.to != NodeStatus::Degraded)
            && !facts.node_changes.iter().any(|c| c.shared_dependency)
            && relevant.len() >= facts.member_count.max(1)
            && facts.member_count > 1
        {
            self.add_against(
                None,
                Kind::Node,
                "node members".into(),
                "every member degraded at once, which points at something they share".into(),
                0.15,
            );
        }
        if let (false, Some(dep)) = (dependency, dependency_down) {
            if !relevant.is_empty()
                && relevant
                    .iter()
                    .all(|c| c.at_ms >= dep.at_ms && explains(dep, c))
            {
                let why = if graph.any() {
                    "they depend on it"
                } else {
                    "which explains them"
                };
                self.add_against(
                    Some(dep.at_ms),
                    Kind::Node,
                    format!("node {}", dep.id),
                    format!(
                        "the members changed only after {} went down, and {why}",
                        dep.label
                    ),
                    0.3,
                );
            }
        }
        let quorum_broken = facts
            .violated()
            .any(|i| i.class == AnomalyClass::QuorumLoss);
        if let (false, true, Some(stopped)) = (dependency, quorum_broken, majority_stopped(facts)) {
            self.add_against(
                None,
                Kind::Node,
                "node members".into(),
                format!(
                    "{} of {} members stopped, a majority, and the group reports it cannot decide: more than a member down",
                    stopped.len(),
                    facts.member_count
                ),
                0.4,
            );
        }
        if !relevant.iter().any(|c| c.to != NodeStatus::Degraded) && !facts.nodes.is_empty() {
            self.add_against(
                None,
                Kind::Node,
                "node status".into(),
                format!("no {what} stopped answering"),
                0.3,
            );
        }
    }

    /// A component that stopped answering, and after it an invariant broke
    /// on a component that the plugin says needs it: the stop explains that
    /// violation too. Only a declared graph says so; timing alone does not.
    fn weigh_dependents(&mut self, facts: &Facts, stopped: &[&NodeChange]) {
        let graph = &facts.dependencies;
        if !graph.any() {
            return;
        }
        for c in stopped.iter().filter(|c| c.stopped()) {
            let dependent = facts
                .violated()
                .filter(|i| i.first_violated.is_some_and(|t| t >= c.at_ms))
                .find_map(|i| {
                    i.components
                        .iter()
                        .map(|x| facts.resolve(x))
                        .find(|x| *x != c.id && graph.needs(x, &c.id))
                        .map(|x| (i, x))
                });
            if let Some((inv, on)) = dependent {
                self.add_support(
                    inv.first_violated,
                    Kind::Invariant,
                    format!("invariant {}", inv.name),
                    format!(
                        "{} ({}) broke after it on {}, which depends on {}",
                        inv.name,
                        inv.class.label(),
                        facts.component_label(&on),
                        c.label
                    ),
                    0.15,
                );
                return;
            }
        }
    }

    /// Members that stopped answering, as many as a majority: the group can
    /// no longer decide, which is the mechanism of a quorum loss rather than
    /// a cause apart from it.
    pub(super) fn weigh_quorum(&mut self, facts: &Facts) {
        if let Some(stopped) = majority_stopped(facts) {
            let at = stopped.iter().map(|c| c.at_ms).max().unwrap_or(0);
            self.add_support(
                Some(at),
                Kind::Node,
                "node members".into(),
                format!(
                    "{} of {} members stopped answering by {}: no majority is left",
                    stopped.len(),
                    facts.member_count,
                    facts.rel(at)
                ),
                0.4,
            );
            for c in stopped {
                push_unique(&mut self.components, c.id.clone());
            }
        }
    }

    pub(super) fn weigh_latency(&mut self, facts: &Facts) {
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
                self.add_support(
                    Some(d.at_ms),
                    Kind::Metric,
                    format!("metric {}", d.name),
                    d.describe(),
                    w,
                );
                if let Some(node) = &d.node {
                    push_unique(&mut self.components, node.clone());
                }
                self.seen_at(d.at_ms);
            } else if ratio >= 1.2 && moved(d) && weight_left > 0.0 {
                let w = 0.05_f64.min(weight_left);
                weight_left -= w;
                self.add_support(
                    Some(d.at_ms),
                    Kind::Metric,
                    format!("metric {}", d.name),
                    format!("{} (a modest rise)", d.describe()),
                    w,
                );
            }
        }
        if !timed.is_empty() && !jumped {
            self.add_against(
                None,
                Kind::Metric,
                "metrics".into(),
                "no latency reading even doubled".into(),
                0.2,
            );
        }
    }

    /// A component the hypothesis names that left `up` without a hypothesis
    /// of its own: a resource or client that degraded or stopped (a consumer
    /// group falling behind), or a member or dependency that only degraded
    /// (a backend failing its health checks).
    pub(super) fn weigh_component_status(&mut self, facts: &Facts) {
        if matches!(
            self.class,
            AnomalyClass::NodeDown | AnomalyClass::DependencyDown
        ) {
            return;
        }
        let named: Vec<&NodeChange> = facts
            .node_changes
            .iter()
            .filter(|c| self.components.contains(&c.id))
            .filter(|c| {
                !matches!(c.kind, ComponentKind::Member | ComponentKind::Dependency)
                    || c.to == NodeStatus::Degraded
            })
            .take(2)
            .collect();
        for c in named {
            self.add_support(
                Some(c.at_ms),
                Kind::Node,
                format!("node {}", c.id),
                format!(
                    "{} {} went {} → {} at {}",
                    c.kind.label(),
                    c.label,
                    status_word(c.from),
                    status_word(c.to),
                    facts.rel(c.at_ms)
                ),
                0.1,
            );
        }
    }

    /// Metrics of the named components that moved well beyond their noise,
    /// in the direction the plugin calls bad.
    pub(super) fn weigh_component_metrics(&mut self, facts: &Facts) {
        let moved: Vec<&MetricDelta> = facts
            .metric_deltas
            .iter()
            .filter(|d| d.moved_badly() && !d.time_like())
            .filter(|d| d.node.as_ref().is_some_and(|n| self.components.contains(n)))
            .take(2)
            .collect();
        for d in moved {
            self.add_support(
                Some(d.at_ms),
                Kind::Metric,
                format!("metric {}", d.name),
                d.describe(),
                0.1,
            );
        }
    }

    /// Symptoms that began after a member or dependency stopped answering are
    /// more likely its consequences than a cause of their own. A quorum lost
    /// because a majority stopped is that stopping, not its consequence.
    ///
    /// When the plugin declares what needs what, the graph decides: a symptom
    /// on components that need the fallen one (or on that one itself) is its
    /// consequence; a symptom on components that do not need it only
    /// happened later, which counts for little.
    pub(super) fn weigh_consequence(&mut self, facts: &Facts) {
        if matches!(
            self.class,
            AnomalyClass::NodeDown | AnomalyClass::DependencyDown
        ) {
            return;
        }
        let majority_lost =
            self.class == AnomalyClass::QuorumLoss && majority_stopped(facts).is_some();
        let Some(first) = self.first_seen else { return };
        let mut earlier: Vec<&NodeChange> = facts
            .node_changes
            .iter()
            .filter(|c| c.to == NodeStatus::Down && c.at_ms <= first)
            .filter(|c| !(majority_lost && c.member()))
            .collect();
        earlier.sort_by_key(|c| c.at_ms);
        let graph = &facts.dependencies;
        let judged_by_graph = graph.any() && !self.components.is_empty();
        let explained_by = |c: &NodeChange| {
            if self.components.contains(&c.id) {
                Some(format!("{} itself", c.label))
            } else {
                graph
                    .dependent_of(&self.components, &c.id)
                    .map(|d| format!("{} depends on it", facts.component_label(d)))
            }
        };
        let (c, weight, text) = match (judged_by_graph, earlier.first()) {
            (_, None) => return,
            (false, Some(c)) => (
                *c,
                0.3,
                format!(
                    "it began after {} went down at {}, so it may be a consequence",
                    c.label,
                    facts.rel(c.at_ms)
                ),
            ),
            (true, Some(first_down)) => {
                match earlier
                    .iter()
                    .find_map(|c| explained_by(c).map(|why| (*c, why)))
                {
                    Some((c, why)) => (
                        c,
                        0.3,
                        format!(
                            "it began after {} went down at {}, and {why}: a consequence",
                            c.label,
                            facts.rel(c.at_ms)
                        ),
                    ),
                    None => (
                        *first_down,
                        0.05,
                        format!(
                            "it began after {} went down at {}, but nothing it names depends on it",
                            first_down.label,
                            facts.rel(first_down.at_ms)
                        ),
                    ),
                }
            }
        };
        self.add_against(
            Some(c.at_ms),
            Kind::Node,
            format!("node {}", c.id),
            text,
            weight,
        );
    }

    /// Overload and its symptoms. A component with more work than it can do
    /// (or out of a resource) makes requests wait, fail or fall behind,
    /// whichever of its checks happens to break first: a symptom on the same
    /// components is explained by a lasting cause, and the cause, explaining
    /// more of what was seen, is the better answer.
    pub(super) fn weigh_overload(&mut self, facts: &Facts) {
        let overlaps = |inv: &InvariantRecord, components: &[String]| {
            components.is_empty()
                || inv.components.is_empty()
                || inv
                    .components
                    .iter()
                    .any(|c| components.contains(&facts.resolve(c)))
        };
        let symptoms: Vec<AnomalyClass> = SYMPTOMS
            .iter()
            .filter(|(cause, _)| *cause == self.class)
            .map(|(_, symptom)| *symptom)
            .collect();
        let explained: Vec<&InvariantRecord> = facts
            .violated()
            .filter(|i| symptoms.contains(&i.class) && overlaps(i, &self.components))
            .collect();
        if let (Some(first), true) = (explained.first(), self.support() > 0.0) {
            self.add_support(
                first.first_violated,
                Kind::Invariant,
                format!("invariant {}", first.name),
                format!(
                    "it also explains {} ({}) on the same components",
                    first.name,
                    first.class.label()
                ),
                0.2,
            );
        }
        let causes: Vec<AnomalyClass> = SYMPTOMS
            .iter()
            .filter(|(_, symptom)| *symptom == self.class)
            .map(|(cause, _)| *cause)
            .collect();
        let cause = facts
            .violated()
            .filter(|i| causes.contains(&i.class))
            .filter(|i| i.violated_at_end && i.violated_polls >= 2)
            .filter(|i| overlaps(i, &self.components))
            .min_by_key(|i| i.first_violated);
        if let Some(inv) = cause {
            self.add_against(
                inv.first_violated,
                Kind::Invariant,
                format!("invariant {}", inv.name),
                format!(
                    "{} persists on the same components ({}), which explains it",
                    inv.class.label(),
                    inv.name
                ),
                0.45,
            );
        }
    }

    /// Warnings and errors about the named components: tied to one by the
    /// plugin, or (for events that name none) mentioning its id as a word.
    pub(super) fn weigh_events(&mut self, facts: &Facts) {
        let mut weight_left: f64 = 0.15;
        for w in &facts.warnings {
            if weight_left <= 0.0 {
                break;
            }
            let about = match &w.component {
                Some(c) => self.components.contains(c),
                None => self.components.iter().any(|id| mentions(&w.message, id)),
            };
            if about {
                let weight = 0.05_f64.min(weight_left);
                weight_left -= weight;
                let lvl = if w.level == Level::Error {
                    "error"
                } else {
                    "warning"
                };
                self.add_support(
                    Some(w.at_ms),
                    Kind::Event,
                    "event".into(),
                    format!("{lvl} at {}: {}", facts.rel(w.at_ms), w.message),
                    weight,
                );
            }
        }
    }
}

/// The members that stopped answering, when they are at least half of them.
fn majority_stopped(facts: &Facts) -> Option<Vec<&NodeChange>> {
    let stopped: Vec<&NodeChange> = facts
        .node_changes
        .iter()
        .filter(|c| c.member() && c.stopped())
        .collect();
    (facts.member_count >= 2 && stopped.len() * 2 >= facts.member_count).then_some(stopped)
}
