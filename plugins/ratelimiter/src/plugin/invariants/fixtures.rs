//! Observations made up for the invariants' tests.

use super::*;
use crate::wire::{Limit, WindowView};

pub const W: u64 = 1000;
pub const LIMIT: Limit = Limit {
    limit: 100,
    window_ms: 10_000,
};

pub fn settings() -> Settings {
    Settings {
        mode: Mode::Cached,
        flush_ms: 100,
        drift_tolerance: 10,
        hold_ms: 60_000,
    }
}

pub fn node(i: usize, allowed: u64, flushed: u64, partitioned: bool, at: u64) -> NodeObs {
    let view = CountersView {
        node: format!("node-{i}"),
        instance: 1,
        mode: "cached".into(),
        key: "k".into(),
        limit: Some(LIMIT),
        window: W,
        windows: vec![WindowView {
            window: W,
            allowed,
            flushed,
            pending: allowed - flushed,
            remote: 0,
        }],
        partitioned,
        last_flush_ok_ms: Some(at),
        redis_count: None,
    };
    NodeObs {
        id: format!("node-{i}"),
        health: Some(HealthView {
            node: format!("node-{i}"),
            instance: 1,
            mode: "cached".into(),
            status: "ok".into(),
            redis_reachable: true,
            redis_latency_ms: Some(0.1),
            redis_error: None,
            partitioned,
        }),
        counters: [("k".to_string(), view.clone())].into(),
        counters_after: [("k".to_string(), view)].into(),
        ..NodeObs::default()
    }
}

pub fn obs(nodes: Vec<NodeObs>, redis: u64) -> Observation {
    Observation {
        at_ms: 5_000,
        nodes,
        redis: RedisObs {
            reachable: true,
            latency_ms: Some(0.1),
            error: None,
            counts: [(("k".to_string(), W), redis)].into(),
        },
    }
}
