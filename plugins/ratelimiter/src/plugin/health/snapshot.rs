//! The snapshot the host sees, built from the poller's latest observation
//! without I/O: nodes, cluster metrics and rates, and every invariant.

use super::*;

/// Builds the snapshot from the latest observation (no I/O).
pub fn snapshot(shared: &Shared) -> HealthSnapshot {
    let settings = shared.settings();
    let bursts = shared.bursts();
    let st = shared.poll();
    let now = crate::now_ms();
    let Some(obs) = st.latest.as_ref() else {
        let nodes = shared
            .node_urls()
            .iter()
            .enumerate()
            .map(|(i, url)| NodeHealth {
                id: format!("node-{}", i + 1),
                role: "rate limiter node".into(),
                address: url.clone(),
                status: NodeStatus::Unknown,
                metrics: vec![],
                kind: ComponentKind::Member,
                depends_on: vec!["redis".into()],
                stale: false,
            })
            .collect();
        return HealthSnapshot {
            at_ms: now,
            nodes,
            events: shared.recent_events(),
            ..HealthSnapshot::default()
        };
    };
    let links = st.links(obs);
    let rtts: Vec<Option<f64>> = links.iter().map(NodeLink::rtt_ms).collect();
    let mut nodes: Vec<NodeHealth> = obs
        .nodes
        .iter()
        .zip(rtts.iter().chain(std::iter::repeat(&None)))
        .map(|(n, rtt)| node_health(n, *rtt))
        .collect();
    let mut redis_metrics: Vec<Metric> = obs
        .redis
        .latency_ms
        .map(|l| vec![Metric::new("ping", l, "ms")])
        .unwrap_or_default();
    let mut measured: Vec<f64> = rtts.iter().flatten().copied().collect();
    if !measured.is_empty() {
        measured.sort_by(f64::total_cmp);
        // The median over the nodes: it rises when Redis is slow for most of
        // them, not when one node's own link is.
        redis_metrics.push(Metric::new(
            "latency from nodes",
            measured[measured.len() / 2],
            "ms",
        ));
    }
    nodes.push(NodeHealth {
        id: "redis".into(),
        role: "store".into(),
        kind: ComponentKind::Dependency,
        address: shared.redis_url(),
        status: if obs.redis.reachable {
            NodeStatus::Up
        } else {
            NodeStatus::Down
        },
        metrics: redis_metrics,
        ..Default::default()
    });
    let mut metrics = Vec::new();
    if let (Some(first), Some(last)) = (st.samples.front(), st.samples.back()) {
        let secs = (last.at_ms.saturating_sub(first.at_ms)) as f64 / 1000.0;
        if secs > 0.0 {
            let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
            let allowed = rate(first.allowed, last.allowed);
            let denied = rate(first.denied, last.denied);
            let errors = rate(first.errors, last.errors);
            metrics.push(Metric::new("requests/s", allowed + denied + errors, "/s"));
            metrics.push(Metric::new("allowed/s", allowed, "/s"));
            metrics.push(Metric::new("denied/s", denied, "/s"));
            metrics.push(Metric::new("errors/s", errors, "/s"));
        }
        if let Some(p) = quantile(&first.buckets, &last.buckets, 0.5) {
            metrics.push(Metric::new("p50 latency", p * 1000.0, "ms"));
        }
        if let Some(p) = quantile(&first.buckets, &last.buckets, 0.99) {
            metrics.push(Metric::new("p99 latency", p * 1000.0, "ms"));
        }
        metrics.push(Metric::new("allowed", last.allowed as f64, "checks"));
        metrics.push(Metric::new("denied", last.denied as f64, "checks"));
    }
    let pending: u64 = obs
        .nodes
        .iter()
        .filter_map(|n| n.scrape.as_ref())
        .map(|s| s.pending)
        .sum();
    metrics.push(Metric::new("pending increments", pending as f64, "checks"));
    let drift = st
        .drift
        .clone()
        .unwrap_or_else(|| DriftMeasure::unknown("not measured yet"));
    if let Some(d) = drift.drift {
        metrics.push(Metric::new("counter drift", d as f64, "checks"));
    }
    // Over-allowance from before a remedy switched the counting mode is not
    // held against the mode that followed it.
    let since = crate::plugin::remedy::reconfig(shared).since_ms;
    let judged_bursts: Vec<_> = bursts
        .into_iter()
        .filter(|b| b.window * b.window_ms >= since)
        .collect();
    let judged_evidence: Vec<_> = st
        .evidence
        .iter()
        .filter(|e| e.window * shared.cfg.window_ms >= since)
        .cloned()
        .collect();
    let mut invariants: Vec<Invariant> = vec![
        invariants::counter_drift(&drift, st.drift_over_before, &settings, obs.at_ms),
        invariants::ghost_allowing(obs, &judged_bursts, &judged_evidence, &settings),
        invariants::conservation(obs),
        invariants::node_down(obs),
        invariants::redis_down(obs),
        invariants::redis_latency(
            &links,
            shared.cfg.redis_latency_ms as f64,
            obs.redis.reachable,
            obs.at_ms,
        ),
        invariants::node_cut_off(&links, obs.redis.reachable, obs.at_ms),
    ];
    for i in &mut invariants {
        i.since_ms = obs.at_ms;
    }
    let at_ms = obs.at_ms;
    drop(st);
    HealthSnapshot {
        at_ms,
        nodes,
        metrics,
        invariants,
        events: shared.recent_events(),
    }
}

fn node_health(n: &NodeObs, redis_rtt: Option<f64>) -> NodeHealth {
    let status = match &n.health {
        None => NodeStatus::Down,
        Some(h) if h.partitioned || !h.redis_reachable => NodeStatus::Degraded,
        Some(_) => NodeStatus::Up,
    };
    let mut metrics = Vec::new();
    if let Some(s) = &n.scrape {
        metrics.push(Metric::new("allowed", s.allowed as f64, "checks"));
        metrics.push(Metric::new("denied", s.denied as f64, "checks"));
        metrics.push(Metric::new("errors", s.errors as f64, "checks"));
        metrics.push(Metric::new("pending", s.pending as f64, "checks"));
        metrics.push(Metric::new(
            "partitioned",
            f64::from(u8::from(s.partitioned)),
            "",
        ));
    }
    if let Some(h) = &n.health {
        metrics.push(Metric::new(
            "redis reachable",
            f64::from(u8::from(h.redis_reachable)),
            "",
        ));
    }
    if let Some(rtt) = redis_rtt {
        metrics.push(Metric::new("redis rtt", rtt, "ms"));
    }
    NodeHealth {
        id: n.id.clone(),
        role: "rate limiter node".into(),
        address: n.url.clone(),
        status,
        metrics,
        kind: ComponentKind::Member,
        depends_on: vec!["redis".into()],
        stale: false,
    }
}

pub fn event(level: Level, message: String) -> Event {
    Event {
        at_ms: crate::now_ms(),
        level,
        message,
        component: None,
    }
}
