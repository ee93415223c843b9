//! Faults: the chaos actions a subject offers, their typed parameters, and
//! a fault in effect.

use serde::{Deserialize, Serialize};
use std::fmt;

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
