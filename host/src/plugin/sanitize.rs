//! The host's limits on what a plugin hands over, applied once, right where
//! the data arrives (`Loader::load` for the description, `Session` for each
//! health snapshot, fault, step result and error).
//!
//! A plugin is any third party's code: it may send a 100 MB string, a million
//! events per poll, NaN metrics, duplicate node ids or empty names. Past a
//! limit the data is cut (never refused: the demo goes on) and a warning names
//! the plugin and the limit; each kind of warning is given once per instance
//! (see [`Warned`]). The limits are tabled in `docs/limits.md`.

use crate::text::{prefix, printable};
use plugin_api::{
    ActiveFault, ChaosKind, Component, HealthSnapshot, Metric, OnEnter, ParamSpec, ParamValue,
    PluginError, SubjectDescription,
};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub const MAX_NODES: usize = 4096;
pub const MAX_NODE_METRICS: usize = 64;
pub const MAX_SUBJECT_METRICS: usize = 256;
pub const MAX_INVARIANTS: usize = 128;
pub const MAX_EVENTS: usize = 256;
/// Components of one invariant, targets of one fault.
pub const MAX_ITEMS: usize = 64;
pub const MAX_CHAPTERS: usize = 128;
pub const MAX_ACTIONS: usize = 64;
pub const MAX_PARAMS: usize = 32;
pub const MAX_GLOSSARY: usize = 256;
pub const MAX_COMPONENTS: usize = 256;
pub const MAX_ENVIRONMENTS: usize = 16;
pub const MAX_REMEDIES: usize = 64;
pub const MAX_PREREQUISITES: usize = 32;
/// Ids, names, roles, addresses, units, titles: one line on screen.
pub const MAX_NAME_BYTES: usize = 256;
/// Narration, descriptions, details, messages, errors: a paragraph.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

/// What the host shows for a name the plugin left empty.
pub const UNNAMED: &str = "(unnamed)";

/// One kind of problem; each is warned about once per plugin instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    TooMany(&'static str),
    LongName,
    LongText,
    NonFinite,
    DuplicateId,
    EmptyName,
    /// A chapter expects an anomaly the glossary cannot name (`vocabulary`).
    Vocabulary,
    /// The plugin's remediation module does not match the host's: no remedies.
    Remediation,
    /// An invariant's class has no glossary term (`vocabulary::check_snapshot`).
    UnnamedClass,
    /// A `depends_on` names nothing known (`vocabulary::check_snapshot`).
    UnknownDependency,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub kind: Kind,
    pub message: String,
}

/// The warnings of one instance not yet shown, and the kinds already given.
#[derive(Debug, Default, Clone)]
pub struct Warned(Arc<Mutex<(HashSet<Kind>, Vec<String>)>>);

impl Warned {
    /// Keeps the warnings of a kind not warned about before.
    pub fn add(&self, found: Vec<Warning>) {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (kinds, pending) = &mut *guard;
        for w in found {
            if kinds.insert(w.kind) {
                pending.push(w.message);
            }
        }
    }

    /// The warnings to show now (each once).
    pub fn take(&self) -> Vec<String> {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut guard.1)
    }
}

/// Cuts a health snapshot to the limits; what was wrong with it.
pub fn snapshot(plugin: &str, s: &mut HealthSnapshot) -> Vec<Warning> {
    let mut c = Check::new(plugin, "in one snapshot");
    c.cap(&mut s.nodes, MAX_NODES, "nodes", Keep::First);
    for n in &mut s.nodes {
        c.name(&mut n.id, "node id");
        c.name(&mut n.role, "node role");
        c.name(&mut n.address, "node address");
        c.names(
            &mut n.depends_on,
            MAX_ITEMS,
            "dependencies of one node",
            "node dependency",
        );
        c.cap(
            &mut n.metrics,
            MAX_NODE_METRICS,
            "metrics on one node",
            Keep::First,
        );
        c.metrics(&mut n.metrics);
    }
    c.unique(s.nodes.iter_mut().map(|n| &mut n.id), "nodes", "id");
    c.cap(
        &mut s.metrics,
        MAX_SUBJECT_METRICS,
        "subject metrics",
        Keep::First,
    );
    c.metrics(&mut s.metrics);
    c.cap(&mut s.invariants, MAX_INVARIANTS, "invariants", Keep::First);
    for i in &mut s.invariants {
        c.name(&mut i.name, "invariant name");
        c.text(&mut i.detail, "invariant detail");
        c.names(
            &mut i.components,
            MAX_ITEMS,
            "components of one invariant",
            "invariant component",
        );
        i.observed = c.finite(i.observed, &i.name, "observed value");
        i.bound = c.finite(i.bound, &i.name, "bound");
    }
    c.unique(
        s.invariants.iter_mut().map(|i| &mut i.name),
        "invariants",
        "name",
    );
    // Events are oldest first: the newest are the ones worth keeping.
    c.cap(&mut s.events, MAX_EVENTS, "events", Keep::Last);
    for e in &mut s.events {
        c.text(&mut e.message, "event message");
        if let Some(component) = &mut e.component {
            c.name(component, "event component");
        }
    }
    c.found
}

/// Cuts a description to the limits; what was wrong with it.
pub fn description(plugin: &str, d: &mut SubjectDescription) -> Vec<Warning> {
    let mut c = Check::new(plugin, "in its description");
    let i = &mut d.info;
    c.name(&mut i.id, "subject id");
    c.required(&mut i.id, "a subject", "id");
    for (s, what) in [
        (&mut i.name, "subject name"),
        (&mut i.version, "version"),
        (&mut i.api_version, "plugin-api version"),
    ] {
        c.name(s, what);
    }
    c.text(&mut i.description, "subject description");
    c.names(
        &mut i.environments,
        MAX_ENVIRONMENTS,
        "environments",
        "environment",
    );
    c.cap(
        &mut i.prerequisites,
        MAX_PREREQUISITES,
        "prerequisites",
        Keep::First,
    );
    for p in &mut i.prerequisites {
        c.name(&mut p.binary, "prerequisite binary");
        c.text(&mut p.why, "prerequisite reason");
        c.names(
            &mut p.environments,
            MAX_ENVIRONMENTS,
            "environments of a prerequisite",
            "environment",
        );
    }
    c.cap(&mut d.chapters, MAX_CHAPTERS, "chapters", Keep::First);
    for ch in &mut d.chapters {
        c.name(&mut ch.title, "chapter title");
        c.text(&mut ch.narration, "chapter narration");
        c.name(&mut ch.key_hint, "key hint");
        match &mut ch.on_enter {
            Some(OnEnter::Chaos { action, params }) => {
                c.name(action, "chaos action id");
                c.cap(params, MAX_PARAMS, "parameters of one action", Keep::First);
                for (name, value) in params {
                    c.name(name, "parameter name");
                    c.value(value);
                }
            }
            Some(OnEnter::Step { id }) => c.name(id, "step id"),
            _ => {}
        }
        if let Some(v) = &mut ch.expect_violation {
            c.name(v, "expected invariant");
        }
        if let Some(e) = &mut ch.expect_diagnosis {
            c.name(&mut e.anomaly, "expected anomaly");
            if let Component::Named(n) = &mut e.component {
                c.name(n, "expected component");
            }
        }
    }
    c.cap(
        &mut d.chaos_actions,
        MAX_ACTIONS,
        "chaos actions",
        Keep::First,
    );
    for a in &mut d.chaos_actions {
        c.name(&mut a.id, "chaos action id");
        c.name(&mut a.name, "chaos action name");
        c.text(&mut a.description, "chaos action description");
        if let ChaosKind::Custom(k) = &mut a.kind {
            c.name(k, "chaos kind");
        }
        c.param_specs(&mut a.params, "parameters of one action");
    }
    c.unique(
        d.chaos_actions.iter_mut().map(|a| &mut a.id),
        "chaos actions",
        "id",
    );
    let dx = &mut d.diagnosis;
    c.text(&mut dx.system, "system summary");
    c.cap(
        &mut dx.components,
        MAX_COMPONENTS,
        "components",
        Keep::First,
    );
    for comp in &mut dx.components {
        c.name(&mut comp.name, "component name");
        c.names(
            &mut comp.depends_on,
            MAX_ITEMS,
            "dependencies of one component",
            "component dependency",
        );
        c.text(&mut comp.description, "component description");
    }
    c.cap(
        &mut dx.glossary,
        MAX_GLOSSARY,
        "glossary entries",
        Keep::First,
    );
    for g in &mut dx.glossary {
        c.name(&mut g.term, "glossary term");
        c.text(&mut g.meaning, "glossary meaning");
    }
    c.cap(&mut d.remedies, MAX_REMEDIES, "remedies", Keep::First);
    for r in &mut d.remedies {
        c.name(&mut r.id, "remedy id");
        c.name(&mut r.name, "remedy name");
        c.text(&mut r.description, "remedy description");
        c.text(&mut r.undo, "remedy undo");
        c.names(
            &mut r.addresses,
            MAX_ITEMS,
            "anomalies one remedy addresses",
            "anomaly a remedy addresses",
        );
        c.param_specs(&mut r.params, "parameters of one remedy");
        if let Some(step) = &mut r.probe_step {
            c.name(step, "remedy probe step");
        }
    }
    c.unique(d.remedies.iter_mut().map(|r| &mut r.id), "remedies", "id");
    c.found
}

/// Cuts what `inject` reported (the undo record is kept whole: it must round-trip).
pub fn fault(plugin: &str, f: &mut ActiveFault) -> Vec<Warning> {
    let mut c = Check::new(plugin, "for a fault");
    c.name(&mut f.fault_id, "fault id");
    c.name(&mut f.action_id, "chaos action id");
    c.names(
        &mut f.targets,
        MAX_ITEMS,
        "targets of one fault",
        "fault target",
    );
    c.text(&mut f.summary, "fault summary");
    c.found
}

/// Cuts a free text the plugin returned (a step's result, an error, a log
/// line) and strips its control characters: such text is quoted in messages
/// printed outside the TUI (`demo-host up`, error exits), not only drawn.
pub fn message(plugin: &str, s: &mut String) -> Vec<Warning> {
    let mut c = Check::new(plugin, "as a message");
    c.text(s, "message");
    if let Cow::Owned(clean) = printable(s) {
        *s = clean;
    }
    c.found
}

/// Cuts the message of an error the plugin returned.
pub fn error(plugin: &str, err: &mut PluginError) -> Vec<Warning> {
    let (PluginError::InvalidInput(m)
    | PluginError::Missing(m)
    | PluginError::Unsupported(m)
    | PluginError::Panicked(m)
    | PluginError::Failed(m)) = err;
    message(plugin, m)
}

enum Keep {
    First,
    Last,
}

struct Check<'a> {
    plugin: &'a str,
    scope: &'static str,
    found: Vec<Warning>,
}

impl<'a> Check<'a> {
    fn new(plugin: &'a str, scope: &'static str) -> Self {
        Check {
            plugin,
            scope,
            found: Vec::new(),
        }
    }

    fn note(&mut self, kind: Kind, message: impl FnOnce(&str) -> String) {
        if !self.found.iter().any(|w| w.kind == kind) {
            let message = message(self.plugin);
            self.found.push(Warning { kind, message });
        }
    }

    fn cap<T>(&mut self, list: &mut Vec<T>, max: usize, what: &'static str, keep: Keep) {
        let n = list.len();
        if n <= max {
            return;
        }
        let scope = self.scope;
        let (which, cut) = match keep {
            Keep::First => ("first", max..n),
            Keep::Last => ("newest", 0..n - max),
        };
        list.drain(cut);
        self.note(Kind::TooMany(what), |p| {
            format!("plugin `{p}` sent {n} {what} {scope}; the host keeps the {which} {max} (limit: {max} {what} {scope}, see docs/limits.md)")
        });
    }

    fn cut(&mut self, s: &mut String, max: usize, kind: Kind, what: &'static str) {
        if s.len() <= max {
            return;
        }
        let len = s.len();
        let keep = prefix(s, max - '…'.len_utf8()).len();
        s.truncate(keep);
        s.push('…');
        let scope = self.scope;
        self.note(kind, |p| {
            format!("plugin `{p}` sent a {len}-byte {what} {scope}; it is cut to {max} bytes (limit: see docs/limits.md)")
        });
    }

    fn name(&mut self, s: &mut String, what: &'static str) {
        self.cut(s, MAX_NAME_BYTES, Kind::LongName, what);
    }

    /// A list of names: the first `max` kept, each cut to a name's length.
    fn names(
        &mut self,
        list: &mut Vec<String>,
        max: usize,
        list_what: &'static str,
        what: &'static str,
    ) {
        self.cap(list, max, list_what, Keep::First);
        for s in list {
            self.name(s, what);
        }
    }

    /// The typed parameters of a chaos action or a remedy.
    fn param_specs(&mut self, params: &mut Vec<ParamSpec>, list_what: &'static str) {
        self.cap(params, MAX_PARAMS, list_what, Keep::First);
        for p in params {
            self.name(&mut p.name, "parameter name");
            self.text(&mut p.description, "parameter description");
            self.name(&mut p.unit, "parameter unit");
            self.value(&mut p.default);
            p.min = self.finite(p.min, &p.name, "minimum");
            p.max = self.finite(p.max, &p.name, "maximum");
        }
    }

    fn text(&mut self, s: &mut String, what: &'static str) {
        self.cut(s, MAX_TEXT_BYTES, Kind::LongText, what);
    }

    fn value(&mut self, v: &mut ParamValue) {
        match v {
            ParamValue::Text(t) => self.text(t, "parameter value"),
            ParamValue::Float(f) if !f.is_finite() => {
                let bad = *f;
                *v = ParamValue::Float(0.0);
                self.note(Kind::NonFinite, |p| {
                    format!("plugin `{p}` sent a parameter value of {bad}; it is replaced by 0")
                });
            }
            _ => {}
        }
    }

    /// An empty name becomes [`UNNAMED`].
    fn required(&mut self, s: &mut String, owner: &'static str, field: &'static str) {
        if s.trim().is_empty() {
            *s = UNNAMED.to_string();
            self.note(Kind::EmptyName, |p| {
                format!(
                    "plugin `{p}` sent {owner} with an empty {field}; it is shown as `{UNNAMED}`"
                )
            });
        }
    }

    /// Empty names become [`UNNAMED`], repeated ones get `#2`, `#3`, ... so
    /// each row of a table, chart and verdict has a name of its own.
    fn unique<'s>(
        &mut self,
        names: impl Iterator<Item = &'s mut String>,
        what: &'static str,
        field: &'static str,
    ) {
        let mut seen: HashSet<String> = HashSet::new();
        for name in names {
            if name.trim().is_empty() {
                *name = UNNAMED.to_string();
                self.note(Kind::EmptyName, |p| {
                    format!("plugin `{p}` sent {what} with an empty {field}; they are shown as `{UNNAMED}`")
                });
            }
            if !seen.contains(name.as_str()) {
                seen.insert(name.clone());
                continue;
            }
            let original = name.clone();
            let mut n = 2;
            while seen.contains(&format!("{original}#{n}")) {
                n += 1;
            }
            *name = format!("{original}#{n}");
            seen.insert(name.clone());
            let renamed = name.clone();
            self.note(Kind::DuplicateId, |p| {
                format!("plugin `{p}` sent {what} with the same {field} `{original}`; the repeats are shown as `{renamed}`, ...")
            });
        }
    }

    /// Metrics without a name get one; non-finite ones are dropped, so they
    /// show as missing and charts leave them out instead of scaling to ∞.
    fn metrics(&mut self, metrics: &mut Vec<Metric>) {
        for m in metrics.iter_mut() {
            self.name(&mut m.name, "metric name");
            self.name(&mut m.unit, "metric unit");
            self.required(&mut m.name, "a metric", "name");
        }
        if let Some(bad) = metrics.iter().find(|m| !m.value.is_finite()) {
            let (name, value) = (bad.name.clone(), bad.value);
            self.note(Kind::NonFinite, |p| {
                format!("plugin `{p}` reported metric `{name}` as {value}; values that are not finite numbers are dropped (shown as missing, left out of charts)")
            });
        }
        metrics.retain(|m| m.value.is_finite());
    }

    fn finite(&mut self, v: Option<f64>, owner: &str, what: &'static str) -> Option<f64> {
        match v {
            Some(x) if !x.is_finite() => {
                let owner = owner.to_string();
                self.note(Kind::NonFinite, |p| {
                    format!("plugin `{p}` sent {x} as the {what} of `{owner}`; values that are not finite numbers are dropped (shown as missing)")
                });
                None
            }
            v => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{Event, Invariant, InvariantStatus, Level, NodeHealth, NodeStatus};

    fn node(id: &str) -> NodeHealth {
        NodeHealth {
            id: id.into(),
            role: "r".into(),
            address: "a".into(),
            status: NodeStatus::Up,
            metrics: vec![Metric::new("ops", 1.0, "/s")],
            ..Default::default()
        }
    }

    fn invariant(name: &str) -> Invariant {
        Invariant {
            name: name.into(),
            status: InvariantStatus::Ok,
            detail: String::new(),
            since_ms: 0,
            class: plugin_api::AnomalyClass::Other,
            components: vec![],
            observed: Some(f64::INFINITY),
            bound: Some(1.0),
            ..Default::default()
        }
    }

    #[test]
    fn a_flood_is_cut_to_the_limits_with_one_warning_per_kind() {
        let mut s = HealthSnapshot {
            at_ms: 1,
            nodes: (0..10_000).map(|i| node(&format!("n{i}"))).collect(),
            metrics: vec![],
            invariants: (0..1000).map(|i| invariant(&format!("i{i}"))).collect(),
            events: (0..100_000)
                .map(|i| Event {
                    at_ms: i,
                    level: Level::Info,
                    message: "x".repeat(if i == 5 { 10 * 1024 * 1024 } else { 3 }),
                    component: None,
                })
                .collect(),
        };
        let found = snapshot("hostile", &mut s);
        assert_eq!(s.nodes.len(), MAX_NODES);
        assert_eq!(s.nodes[0].id, "n0", "the first nodes are kept");
        assert_eq!(s.invariants.len(), MAX_INVARIANTS);
        assert_eq!(s.events.len(), MAX_EVENTS);
        assert_eq!(
            s.events[0].at_ms,
            100_000 - MAX_EVENTS as u64,
            "the newest events are kept"
        );
        let kinds: Vec<Kind> = found.iter().map(|w| w.kind).collect();
        assert_eq!(
            kinds,
            vec![
                Kind::TooMany("nodes"),
                Kind::TooMany("invariants"),
                Kind::NonFinite,
                Kind::TooMany("events"),
            ],
            "one each, though 128 invariants had an infinite value: {found:#?}"
        );
        let nodes = &found[0].message;
        assert!(
            nodes.contains("`hostile`") && nodes.contains("10000 nodes") && nodes.contains("4096"),
            "{nodes}"
        );
        assert_eq!(s.invariants[0].observed, None, "∞ is dropped");
        assert_eq!(s.invariants[0].bound, Some(1.0));
    }

    #[test]
    fn a_description_flooded_with_remedies_is_cut_and_their_ids_kept_unique() {
        let remedy = |i: usize| plugin_api::Remedy {
            id: if i < 2 {
                "same".into()
            } else {
                format!("r{i}")
            },
            name: "n".repeat(10_000),
            description: String::new(),
            addresses: vec!["t".into(); 1000],
            params: vec![],
            target: plugin_api::RemedyTarget::Cluster,
            risk: plugin_api::Risk::Low,
            undo: String::new(),
            verify_within_ms: 1,
            probe_step: None,
        };
        let mut d = crate::engine::fixture::description();
        d.remedies = (0..1000).map(remedy).collect();
        let found = description("hostile", &mut d);
        assert_eq!(d.remedies.len(), MAX_REMEDIES);
        assert_eq!(d.remedies[0].id, "same");
        assert_eq!(d.remedies[1].id, "same#2", "duplicates told apart");
        assert!(d.remedies.iter().all(|r| r.name.len() <= MAX_NAME_BYTES));
        assert!(d.remedies.iter().all(|r| r.addresses.len() <= MAX_ITEMS));
        let kinds: Vec<Kind> = found.iter().map(|w| w.kind).collect();
        assert!(kinds.contains(&Kind::TooMany("remedies")), "{found:#?}");
        assert!(kinds.contains(&Kind::DuplicateId), "{found:#?}");
    }

    #[test]
    fn long_strings_are_cut_on_a_character_boundary() {
        let mut s = HealthSnapshot {
            nodes: vec![node(&"→".repeat(1000))],
            events: vec![Event {
                at_ms: 1,
                level: Level::Warn,
                message: "y".repeat(100 * 1024 * 1024),
                component: None,
            }],
            ..HealthSnapshot::default()
        };
        let found = snapshot("p", &mut s);
        assert!(s.nodes[0].id.len() <= MAX_NAME_BYTES && s.nodes[0].id.ends_with('…'));
        assert!(s.events[0].message.len() <= MAX_TEXT_BYTES);
        assert_eq!(
            found.iter().map(|w| w.kind).collect::<Vec<_>>(),
            vec![Kind::LongName, Kind::LongText]
        );
        assert!(
            found[1].message.contains("104857600-byte event message"),
            "{}",
            found[1].message
        );
    }

    #[test]
    fn nan_metrics_duplicate_ids_and_empty_names_get_a_defined_display() {
        let mut bad = node("n1");
        bad.metrics = vec![
            Metric::new("cpu", f64::NAN, "%"),
            Metric::new("", 2.0, ""),
            Metric::new("mem", f64::NEG_INFINITY, "B"),
        ];
        let mut s = HealthSnapshot {
            nodes: vec![bad, node("n1"), node(""), node("n1"), node("")],
            invariants: vec![invariant("same"), invariant("same")],
            ..HealthSnapshot::default()
        };
        let found = snapshot("p", &mut s);
        let ids: Vec<&str> = s.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["n1", "n1#2", UNNAMED, "n1#3", "(unnamed)#2"]);
        assert_eq!(s.invariants[1].name, "same#2");
        let metrics: Vec<(&str, f64)> = s.nodes[0]
            .metrics
            .iter()
            .map(|m| (m.name.as_str(), m.value))
            .collect();
        assert_eq!(metrics, [(UNNAMED, 2.0)], "NaN and -∞ are dropped");
        let kinds: HashSet<Kind> = found.iter().map(|w| w.kind).collect();
        assert_eq!(
            kinds,
            HashSet::from([Kind::EmptyName, Kind::NonFinite, Kind::DuplicateId])
        );
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn a_good_snapshot_is_left_as_it_is() {
        let mut s = HealthSnapshot {
            at_ms: 7,
            nodes: vec![node("a"), node("b")],
            metrics: vec![Metric::new("total", 3.5, "ops")],
            invariants: vec![Invariant {
                observed: Some(1.0),
                ..invariant("x")
            }],
            events: vec![],
        };
        let before = s.clone();
        assert_eq!(snapshot("p", &mut s), vec![]);
        assert_eq!(s, before);
    }

    #[test]
    fn messages_and_errors_lose_their_control_characters() {
        let mut e = PluginError::Failed("bad\u{1b}[2J\nthing".into());
        assert_eq!(error("p", &mut e), vec![]);
        assert_eq!(e, PluginError::Failed("bad[2J thing".into()));
    }

    #[test]
    fn each_kind_is_warned_about_once_per_instance() {
        let warned = Warned::default();
        let flood = || HealthSnapshot {
            nodes: (0..MAX_NODES + 44).map(|i| node(&i.to_string())).collect(),
            ..HealthSnapshot::default()
        };
        warned.add(snapshot("p", &mut flood()));
        warned.add(snapshot("p", &mut flood()));
        assert_eq!(warned.take().len(), 1);
        warned.add(snapshot("p", &mut flood()));
        assert_eq!(warned.take(), Vec::<String>::new(), "already warned");
    }
}
