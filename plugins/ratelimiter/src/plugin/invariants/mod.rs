//! The invariants, computed from one observation of the cluster plus the
//! plugin's own accounting. Pure functions, so each verdict can be shown to
//! pass and to fail on constructed observations as well as on a live cluster.
//!
//! Here: what one poll observed and the settings the verdicts read. One
//! module per concern: the nodes and Redis being up (`availability`), each
//! node's way to Redis (`link`), counters that disagree (`drift`), more
//! allowed than the limit (`ghost`), and checks nobody accounts for
//! (`conservation`).

use crate::plugin::load::NodeTally;
use crate::wire::scrape::Scrape;
use crate::wire::Mode;
use crate::wire::{CountersView, HealthView};
use plugin_api::{AnomalyClass, Invariant, InvariantStatus};
use std::collections::HashMap;

mod availability;
mod conservation;
mod drift;
#[cfg(test)]
mod fixtures;
mod ghost;
mod link;

pub use availability::{node_down, redis_down};
pub use conservation::conservation;
pub use drift::{attribute_drift, counter_drift, drift_over, measure_drift, DriftMeasure};
pub use ghost::{ghost_allowing, ghost_evidence, GhostEvidence};
pub use link::{node_cut_off, redis_latency, NodeLink, LINK_POLLS};

pub const COUNTER_DRIFT: &str = "counter drift";
pub const GHOST_ALLOWING: &str = "ghost allowing";
pub const CONSERVATION: &str = "conservation";
pub const NODE_DOWN: &str = "node down";
pub const REDIS_DOWN: &str = "redis down";
pub const REDIS_LATENCY: &str = "redis latency";
pub const NODE_CUT_OFF: &str = "node cut off";

/// One node as seen by one poll.
#[derive(Debug, Clone, Default)]
pub struct NodeObs {
    pub id: String,
    pub url: String,
    pub health: Option<HealthView>,
    pub error: Option<String>,
    pub scrape: Option<Scrape>,
    /// The plugin's accounting for this node just before and just after `/metrics` was read.
    pub tally_before: NodeTally,
    pub tally_after: NodeTally,
    pub counters: HashMap<String, CountersView>,
    /// The same views read again after Redis's counts (empty when not read).
    pub counters_after: HashMap<String, CountersView>,
    /// The node runs a different process than when the plugin first saw it.
    pub restarted: bool,
}

impl NodeObs {
    pub fn up(&self) -> bool {
        self.health.is_some()
    }
}

#[derive(Debug, Clone, Default)]
pub struct RedisObs {
    pub reachable: bool,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    /// What Redis holds per (key, window): the window counter (cached) or the
    /// entries of the sliding log inside the window (strict).
    pub counts: HashMap<(String, u64), u64>,
}

#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub at_ms: u64,
    pub nodes: Vec<NodeObs>,
    pub redis: RedisObs,
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub mode: Mode,
    pub flush_ms: u64,
    pub drift_tolerance: u64,
    pub hold_ms: u64,
}

fn inv(
    name: &str,
    class: AnomalyClass,
    status: InvariantStatus,
    detail: String,
    at: u64,
) -> Invariant {
    Invariant {
        name: name.into(),
        status,
        detail,
        since_ms: at,
        class,
        components: vec![],
        observed: None,
        bound: None,
        ..Default::default()
    }
}

fn ok_if(violated: bool) -> InvariantStatus {
    if violated {
        InvariantStatus::Violated
    } else {
        InvariantStatus::Ok
    }
}
