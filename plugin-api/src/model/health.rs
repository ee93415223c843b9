//! One poll of a subject's health: its components, metrics, invariants and
//! events, and the generic anomaly classes invariants signal.

use serde::{Deserialize, Serialize};

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
