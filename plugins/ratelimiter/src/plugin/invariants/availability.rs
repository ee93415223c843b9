//! `node down` and `redis down`: what the poll could not reach.

use super::*;

pub fn node_down(obs: &Observation) -> Invariant {
    let down: Vec<&NodeObs> = obs.nodes.iter().filter(|n| !n.up()).collect();
    let detail = if down.is_empty() {
        format!("all {} nodes answer /health", obs.nodes.len())
    } else {
        down.iter()
            .map(|n| {
                format!(
                    "{} ({}) does not answer: {}",
                    n.id,
                    n.url,
                    n.error.as_deref().unwrap_or("no answer")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut i = inv(
        NODE_DOWN,
        AnomalyClass::NodeDown,
        ok_if(!down.is_empty()),
        detail,
        obs.at_ms,
    );
    i.components = down.iter().map(|n| n.id.clone()).collect();
    i.observed = Some(down.len() as f64);
    i.bound = Some(0.0);
    i
}

pub fn redis_down(obs: &Observation) -> Invariant {
    let r = &obs.redis;
    let detail = if r.reachable {
        format!(
            "redis answers PING in {:.1} ms",
            r.latency_ms.unwrap_or(0.0)
        )
    } else {
        format!(
            "redis does not answer PING: {}",
            r.error.as_deref().unwrap_or("no answer")
        )
    };
    let mut i = inv(
        REDIS_DOWN,
        AnomalyClass::DependencyDown,
        ok_if(!r.reachable),
        detail,
        obs.at_ms,
    );
    if !r.reachable {
        i.components = vec!["redis".into()];
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::invariants::fixtures::*;

    #[test]
    fn node_and_redis_down_follow_the_observation() {
        let mut o = obs(vec![node(1, 0, 0, false, 0), node(2, 0, 0, false, 0)], 0);
        assert_eq!(node_down(&o).status, InvariantStatus::Ok);
        assert_eq!(redis_down(&o).status, InvariantStatus::Ok);
        o.nodes[1].health = None;
        o.redis.reachable = false;
        assert_eq!(node_down(&o).components, vec!["node-2"]);
        assert_eq!(redis_down(&o).components, vec!["redis"]);
    }
}
