//! `ghost allowing`: more allowed in one window than the limit.

use super::*;
use crate::plugin::burst::BurstRecord;

/// An over-allowance seen in the nodes' own counters.
#[derive(Debug, Clone, PartialEq)]
pub struct GhostEvidence {
    pub key: String,
    pub window: u64,
    pub allowed: u64,
    pub limit: u64,
    pub nodes: Vec<String>,
    pub at_ms: u64,
}

/// Windows in which the nodes together allowed more than the limit.
pub fn ghost_evidence(obs: &Observation) -> Vec<GhostEvidence> {
    let mut sums: HashMap<(String, u64), (u64, u64, Vec<String>)> = HashMap::new();
    for n in obs.nodes.iter().filter(|n| n.up()) {
        for (key, c) in &n.counters {
            let Some(limit) = c.limit else { continue };
            for w in &c.windows {
                let e = sums
                    .entry((key.clone(), w.window))
                    .or_insert((0, limit.limit, vec![]));
                e.0 += w.allowed;
                if w.allowed > 0 {
                    e.2.push(n.id.clone());
                }
            }
        }
    }
    sums.into_iter()
        .filter(|(_, (allowed, limit, _))| allowed > limit)
        .map(|((key, window), (allowed, limit, nodes))| GhostEvidence {
            key,
            window,
            allowed,
            limit,
            nodes,
            at_ms: obs.at_ms,
        })
        .collect()
}

/// Violated when, within the hold period, a burst got more allowed answers
/// than the limit in one window, or the nodes' counters summed beyond it.
pub fn ghost_allowing(
    obs: &Observation,
    bursts: &[BurstRecord],
    evidence: &[GhostEvidence],
    s: &Settings,
) -> Invariant {
    let recent = |t: u64| obs.at_ms.saturating_sub(t) <= s.hold_ms;
    let node_ids: Vec<String> = obs.nodes.iter().map(|n| n.id.clone()).collect();
    let mut worst: Option<(u64, u64, String, Vec<String>)> = None;
    for b in bursts.iter().filter(|b| recent(b.finished_ms)) {
        let seen = b.allowed.max(b.nodes_allowed.unwrap_or(0));
        if seen > b.limit && worst.as_ref().is_none_or(|w| seen > w.0) {
            let nodes = b
                .allowed_by_node
                .iter()
                .enumerate()
                .filter(|(_, a)| **a > 0)
                .filter_map(|(i, _)| node_ids.get(i).cloned())
                .collect();
            let detail = format!(
                "burst on `{}`: {} checks sent in one {} ms window, {} allowed (the nodes counted {}) against a limit of {}",
                b.key,
                b.sent,
                b.window_ms,
                b.allowed,
                b.nodes_allowed.map_or("?".into(), |n| n.to_string()),
                b.limit
            );
            worst = Some((seen, b.limit, detail, nodes));
        }
    }
    for e in evidence.iter().filter(|e| recent(e.at_ms)) {
        if e.allowed > e.limit && worst.as_ref().is_none_or(|w| e.allowed > w.0) {
            let detail = format!(
                "key `{}` window {}: the nodes allowed {} together against a limit of {} ({})",
                e.key,
                e.window,
                e.allowed,
                e.limit,
                e.nodes.join(", ")
            );
            worst = Some((e.allowed, e.limit, detail, e.nodes.clone()));
        }
    }
    match worst {
        Some((seen, limit, detail, nodes)) => {
            let mut i = inv(
                GHOST_ALLOWING,
                AnomalyClass::BoundExceeded,
                InvariantStatus::Violated,
                detail,
                obs.at_ms,
            );
            i.components = nodes;
            i.observed = Some(seen as f64);
            i.bound = Some(limit as f64);
            i
        }
        None => {
            let down = obs.nodes.iter().any(|n| !n.up());
            let (status, detail) = if down {
                (
                    InvariantStatus::Unknown,
                    "a node does not answer, so the cluster's allowed count is incomplete"
                        .to_string(),
                )
            } else {
                (
                    InvariantStatus::Ok,
                    "no window had more checks allowed than its limit".to_string(),
                )
            };
            inv(
                GHOST_ALLOWING,
                AnomalyClass::BoundExceeded,
                status,
                detail,
                obs.at_ms,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::invariants::fixtures::*;

    #[test]
    fn ghost_allowing_fails_on_an_over_allowed_window_or_burst_and_passes_otherwise() {
        let s = settings();
        let within = obs(
            vec![
                node(1, 40, 40, false, 5_000),
                node(2, 40, 40, false, 5_000),
                node(3, 20, 20, false, 5_000),
            ],
            100,
        );
        assert!(ghost_evidence(&within).is_empty());
        assert_eq!(
            ghost_allowing(&within, &[], &[], &s).status,
            InvariantStatus::Ok
        );
        let over = obs(
            vec![
                node(1, 60, 60, false, 5_000),
                node(2, 60, 60, false, 5_000),
                node(3, 0, 0, false, 5_000),
            ],
            120,
        );
        let ev = ghost_evidence(&over);
        assert_eq!(ev.len(), 1);
        let i = ghost_allowing(&over, &[], &ev, &s);
        assert_eq!(i.status, InvariantStatus::Violated);
        assert_eq!((i.observed, i.bound), (Some(120.0), Some(100.0)));
        assert_eq!(i.components, vec!["node-1", "node-2"]);
        let burst = BurstRecord {
            key: "b".into(),
            limit: 100,
            sent: 200,
            allowed: 150,
            allowed_by_node: vec![50, 50, 50],
            finished_ms: 4_000,
            ..BurstRecord::default()
        };
        assert_eq!(
            ghost_allowing(&within, std::slice::from_ref(&burst), &[], &s).status,
            InvariantStatus::Violated
        );
        let old = BurstRecord {
            finished_ms: 0,
            ..burst
        };
        let held = Settings {
            hold_ms: 1_000,
            ..s
        };
        assert_eq!(
            ghost_allowing(&within, &[old], &[], &held).status,
            InvariantStatus::Ok,
            "the verdict expires after the hold"
        );
    }
}
