//! The plain-Rust data model that plugins and the host work with.
//!
//! Nothing here is FFI-safe on purpose: these are ordinary types with `String`,
//! `Vec` and `Option`. The [`crate::ffi`] module mirrors them with abi_stable
//! types, and [`crate::convert`] is the one place that translates between both.

use serde::{Deserialize, Serialize};
use std::fmt;

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

/// A fault the subject knows how to inject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChaosAction {
    pub id: String,
    pub name: String,
    pub kind: ChaosKind,
    pub description: String,
    pub params: Vec<ParamSpec>,
    pub recovery: Recovery,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum ChaosKind {
    ContainerKill,
    ProcessKill,
    RedisPause,
    BurstTraffic,
    /// A subject's own kind of fault.
    Custom(String),
}

impl fmt::Display for ChaosKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChaosKind::ContainerKill => f.write_str("container kill"),
            ChaosKind::ProcessKill => f.write_str("process kill"),
            ChaosKind::RedisPause => f.write_str("redis pause"),
            ChaosKind::BurstTraffic => f.write_str("burst traffic"),
            ChaosKind::Custom(name) => f.write_str(name),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// The fault ends by itself (a pause with a duration, a burst).
    SelfRecovering,
    /// The host must call `recover` (a killed node is restarted).
    ExplicitRecover,
}

/// A typed parameter of a chaos action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub description: String,
    pub kind: ParamKind,
    pub default: ParamValue,
    /// Inclusive bounds for numeric kinds.
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub unit: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    Integer,
    Float,
    DurationMs,
    Bool,
    Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl ParamValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            _ => None,
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Text(s) => f.write_str(s),
        }
    }
}

/// A fault that is in effect, as reported by the plugin that injected it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveFault {
    /// Unique per injection; `recover` takes it.
    pub fault_id: String,
    pub action_id: String,
    /// What was hit (a node id, a container name, "redis").
    pub targets: Vec<String>,
    pub summary: String,
    pub started_ms: u64,
    /// When a self-recovering fault ends by itself.
    pub expires_ms: Option<u64>,
    /// An opaque record from which the plugin can undo the fault in a later
    /// process (leftover recovery after the host was killed).
    pub undo: String,
}

/// One poll of the subject's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HealthSnapshot {
    /// Unix time in milliseconds.
    pub at_ms: u64,
    pub nodes: Vec<NodeHealth>,
    pub metrics: Vec<Metric>,
    pub invariants: Vec<Invariant>,
    /// Recent events or log lines of the subject.
    pub events: Vec<Event>,
}

impl HealthSnapshot {
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    pub fn invariant(&self, name: &str) -> Option<&Invariant> {
        self.invariants.iter().find(|i| i.name == name)
    }
}

/// One component's health: a process, a container, or a logical part such as
/// a queue or a consumer group (`kind` says which).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NodeHealth {
    pub id: String,
    /// Shown beside the id; the diagnoser never infers anything from it.
    pub role: String,
    pub address: String,
    pub status: NodeStatus,
    pub metrics: Vec<Metric>,
    /// What this component is to the system; the diagnoser reasons with this.
    #[serde(default)]
    pub kind: ComponentKind,
    /// Ids of the components this one needs to work (its database, its leader).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The metrics are the last ones read before the component stopped
    /// answering, kept for context: not current readings, never zeros.
    #[serde(default)]
    pub stale: bool,
}

impl NodeHealth {
    /// A member with no metrics; add them with [`NodeHealth::metric`].
    pub fn new(
        id: impl Into<String>,
        role: impl Into<String>,
        address: impl Into<String>,
        status: NodeStatus,
    ) -> Self {
        NodeHealth {
            id: id.into(),
            role: role.into(),
            address: address.into(),
            status,
            ..NodeHealth::default()
        }
    }

    pub fn kind(mut self, kind: ComponentKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn depends_on(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.depends_on = ids.into_iter().map(Into::into).collect();
        self
    }

    pub fn metric(mut self, metric: Metric) -> Self {
        self.metrics.push(metric);
        self
    }

    pub fn stale(mut self, stale: bool) -> Self {
        self.stale = stale;
        self
    }
}

/// What a component is to the system. The builtin diagnoser tells "a member
/// failed" from "what every member needs failed" with this, and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    /// One of several peers doing the same job: a replica, a Raft member
    /// (leader included), a rate limiter node, a broker, a backend.
    #[default]
    Member,
    /// Something members share and need: a database, a coordinator, a cache.
    Dependency,
    /// What drives load into the system: a load generator, a client pool.
    Client,
    /// A logical part that is not a process: a queue, a topic, a consumer group, a shard.
    Resource,
    Other,
}

impl ComponentKind {
    pub fn label(self) -> &'static str {
        match self {
            ComponentKind::Member => "member",
            ComponentKind::Dependency => "dependency",
            ComponentKind::Client => "client",
            ComponentKind::Resource => "resource",
            ComponentKind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Up,
    Degraded,
    Down,
    #[default]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// A gauge is read as it is; a counter only grows and is read as a rate.
    #[serde(default)]
    pub kind: MetricKind,
    /// Which way is bad news, so a drop in hit ratio reads like a rise in latency.
    #[serde(default)]
    pub worse: Worse,
}

impl Metric {
    /// A gauge whose bad direction is not said.
    pub fn new(name: impl Into<String>, value: f64, unit: impl Into<String>) -> Self {
        Metric {
            name: name.into(),
            value,
            unit: unit.into(),
            kind: MetricKind::Gauge,
            worse: Worse::Unknown,
        }
    }

    /// A monotonically growing count (requests served, bytes sent).
    pub fn counter(name: impl Into<String>, value: f64, unit: impl Into<String>) -> Self {
        Metric {
            kind: MetricKind::Counter,
            ..Metric::new(name, value, unit)
        }
    }

    pub fn worse(mut self, worse: Worse) -> Self {
        self.worse = worse;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    #[default]
    Gauge,
    Counter,
}

/// Which direction of a metric or bound is bad news.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Worse {
    #[default]
    Unknown,
    /// Latency, errors, lag.
    Higher,
    /// Free disk, hit ratio, throughput.
    Lower,
}

/// A checked property of the subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Invariant {
    pub name: String,
    pub status: InvariantStatus,
    pub detail: String,
    /// Since when the current status holds (unix ms).
    pub since_ms: u64,
    /// The generic class of anomaly a violation signals; lets the host reason
    /// about any subject without knowing its vocabulary.
    pub class: AnomalyClass,
    /// Components the verdict is about (node ids, "redis", a store address).
    pub components: Vec<String>,
    /// The observed quantity and the bound it is checked against, when numeric.
    pub observed: Option<f64>,
    pub bound: Option<f64>,
    /// Whether `bound` is a ceiling (latency ≤ 50 ms) or a floor (free disk ≥ 10 %).
    #[serde(default)]
    pub bound_is: BoundIs,
}

/// The side of its bound an observed value must stay on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BoundIs {
    /// `observed ≤ bound` holds.
    #[default]
    Ceiling,
    /// `observed ≥ bound` holds.
    Floor,
}

impl BoundIs {
    /// How far `observed` is past `bound`, in multiples of the bound's size
    /// (0 when inside). The same for ceilings and floors, so "well past its
    /// bound" means the same for "lag ≤ 5 s" and "hit ratio ≥ 0.85".
    pub fn excess(self, observed: f64, bound: f64) -> f64 {
        let scale = bound.abs().max(f64::EPSILON);
        let past = match self {
            BoundIs::Ceiling => observed - bound,
            BoundIs::Floor => bound - observed,
        };
        (past / scale).max(0.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InvariantStatus {
    Ok,
    Violated,
    #[default]
    Unknown,
}

/// Generic anomaly classes the host's diagnoser reasons with.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyClass {
    /// A member of the cluster stopped answering.
    NodeDown,
    /// A dependency the members share (a database, a coordinator) stopped answering.
    DependencyDown,
    /// Shared state disagrees with the members' local views of it.
    StateDivergence,
    /// An acknowledged count went beyond its bound.
    BoundExceeded,
    /// Latency jumped beyond its bound.
    LatencySpike,
    /// Work or data is unevenly spread.
    Imbalance,
    /// A resource (disk, memory) is nearly used up.
    CapacityExhausted,
    /// Operations were lost or double counted (conservation).
    Accounting,
    /// Work or data waits longer and longer: replication lag, consumer lag, a backlog.
    Lag,
    /// A group lost its quorum or its leader and cannot decide.
    QuorumLoss,
    /// Errors came in a burst (failed requests, refused connections).
    ErrorBurst,
    /// A component has more work than it can do: queues fill, requests are shed.
    Saturation,
    #[default]
    Other,
}

impl AnomalyClass {
    pub const ALL: [AnomalyClass; 13] = [
        AnomalyClass::NodeDown,
        AnomalyClass::DependencyDown,
        AnomalyClass::StateDivergence,
        AnomalyClass::BoundExceeded,
        AnomalyClass::LatencySpike,
        AnomalyClass::Imbalance,
        AnomalyClass::CapacityExhausted,
        AnomalyClass::Accounting,
        AnomalyClass::Lag,
        AnomalyClass::QuorumLoss,
        AnomalyClass::ErrorBurst,
        AnomalyClass::Saturation,
        AnomalyClass::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AnomalyClass::NodeDown => "node down",
            AnomalyClass::DependencyDown => "dependency down",
            AnomalyClass::StateDivergence => "state divergence",
            AnomalyClass::BoundExceeded => "bound exceeded",
            AnomalyClass::LatencySpike => "latency spike",
            AnomalyClass::Imbalance => "imbalance",
            AnomalyClass::CapacityExhausted => "capacity exhausted",
            AnomalyClass::Accounting => "accounting mismatch",
            AnomalyClass::Lag => "lag",
            AnomalyClass::QuorumLoss => "quorum loss",
            AnomalyClass::ErrorBurst => "error burst",
            AnomalyClass::Saturation => "saturation",
            AnomalyClass::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at_ms: u64,
    pub level: Level,
    pub message: String,
    /// The component the event is about, when it is about one (its node id).
    #[serde(default)]
    pub component: Option<String>,
}

impl Event {
    pub fn new(at_ms: u64, level: Level, message: impl Into<String>) -> Self {
        Event {
            at_ms,
            level,
            message: message.into(),
            component: None,
        }
    }

    pub fn about(mut self, component: impl Into<String>) -> Self {
        self.component = Some(component.into());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
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

/// A fix an operator would apply in production, without knowing that a fault
/// was injected: failing over to a standby, switching to a safer mode,
/// restarting a process. It is not a chaos action's `recover`, which is the
/// demo's undo. The host proposes it from a diagnosis, runs it only after
/// approval, and judges it by the invariants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remedy {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The anomalies it fixes: glossary terms of the subject.
    pub addresses: Vec<String>,
    pub params: Vec<ParamSpec>,
    pub target: RemedyTarget,
    pub risk: Risk,
    /// How the change is put back at teardown ("" when it changes nothing
    /// lasting, e.g. a restart).
    pub undo: String,
    /// The invariants must all be ok again this long after the remedy returned.
    pub verify_within_ms: u64,
    /// A step (`run_step` id) that must succeed once the invariants are ok,
    /// for what invariants alone cannot show (a probe burst, say).
    pub probe_step: Option<String>,
}

/// What a remedy acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemedyTarget {
    /// One component, named when the remedy runs.
    Component,
    /// The whole cluster.
    Cluster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn label(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// What running a remedy did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemedyOutcome {
    /// One line for the presenter ("promoted redis-standby; 3 nodes repointed").
    pub summary: String,
    /// An opaque record from which `recover_leftover` puts the change back
    /// (teardown, or the next start after a killed host); "" when nothing lasts.
    pub undo: String,
}

/// Unix time in milliseconds, the clock every timestamp in the model uses.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
