//! Each node's way to Redis: `redis latency` (a slow way) and `node cut off`
//! (no way, while Redis answers everyone else).

use super::*;

/// How many of a node's latest pings to Redis its round trip is judged on.
pub const LINK_POLLS: usize = 5;
/// Answered pings among them needed for a round trip: a median of at least
/// three, so that one slow answer on a busy machine is not a slow link.
const LINK_MIN_ANSWERED: usize = 3;

/// One node's way to Redis, as its `/health` reports it poll after poll (the
/// node PINGs Redis over its own connection, so through its proxy route).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeLink {
    pub id: String,
    /// The node answered its latest `/health`.
    pub answering: bool,
    /// Its latest pings to Redis, oldest first: the round trip in ms, or
    /// `None` when it failed or timed out.
    pub pings: Vec<Option<f64>>,
    /// It says its flushes fail (cached mode's partitioned flag).
    pub flushes_failing: bool,
}

impl NodeLink {
    /// The median round trip of its answered pings among the last
    /// [`LINK_POLLS`], when at least three answered.
    pub fn rtt_ms(&self) -> Option<f64> {
        let start = self.pings.len().saturating_sub(LINK_POLLS);
        let mut ok: Vec<f64> = self.pings[start..].iter().flatten().copied().collect();
        if ok.len() < LINK_MIN_ANSWERED {
            return None;
        }
        ok.sort_by(f64::total_cmp);
        Some(ok[ok.len() / 2])
    }

    /// Answering, but its latest ping to Redis failed, and so did the one
    /// before or its flushes: one failed ping alone may be a busy machine.
    pub fn cut(&self) -> bool {
        let failed = |back: usize| {
            self.pings
                .len()
                .checked_sub(back)
                .and_then(|i| self.pings.get(i))
                .is_some_and(Option::is_none)
        };
        self.answering && failed(1) && (failed(2) || self.flushes_failing)
    }
}
/// `redis latency`: violated while a node's median round trip to Redis is
/// above the bound. When every measured node is slow at once the component
/// is `redis` (the store, or the way every node takes to it); otherwise the
/// slow nodes, whose own links are slow. Unknown while Redis does not answer
/// the plugin: then `redis down` speaks.
pub fn redis_latency(
    links: &[NodeLink],
    bound_ms: f64,
    redis_reachable: bool,
    at: u64,
) -> Invariant {
    let measured: Vec<(&NodeLink, f64)> = links
        .iter()
        .filter(|l| l.answering)
        .filter_map(|l| l.rtt_ms().map(|r| (l, r)))
        .collect();
    let readings = measured
        .iter()
        .map(|(l, r)| format!("{} {r:.1} ms", l.id))
        .collect::<Vec<_>>()
        .join(", ");
    let (status, detail) = if !redis_reachable {
        (
            InvariantStatus::Unknown,
            "redis does not answer the plugin, so the nodes' round trips say nothing of a slow link".to_string(),
        )
    } else if measured.is_empty() {
        (
            InvariantStatus::Unknown,
            format!("no node has {LINK_MIN_ANSWERED} answered pings to redis among its last {LINK_POLLS}"),
        )
    } else {
        let slow = measured.iter().filter(|(_, r)| *r > bound_ms).count();
        let verdict = if slow == 0 {
            "all within the bound".to_string()
        } else if slow == measured.len() && measured.len() > 1 {
            "every node at once: redis, or the way every node takes to it".to_string()
        } else {
            "only these nodes' links".to_string()
        };
        (
            ok_if(slow > 0),
            format!("round trip to redis (median of the last {LINK_POLLS} pings): {readings}; bound {bound_ms} ms; {verdict}"),
        )
    };
    let mut i = inv(
        REDIS_LATENCY,
        AnomalyClass::LatencySpike,
        status,
        detail,
        at,
    );
    if status == InvariantStatus::Violated {
        let slow: Vec<String> = measured
            .iter()
            .filter(|(_, r)| *r > bound_ms)
            .map(|(l, _)| l.id.clone())
            .collect();
        i.components = if slow.len() == measured.len() && measured.len() > 1 {
            vec!["redis".into()]
        } else {
            slow
        };
    }
    i.observed = measured.iter().map(|(_, r)| *r).reduce(f64::max);
    i.bound = Some(bound_ms);
    i
}

/// `node cut off`: violated while a node answers its clients but not Redis's
/// pings, and Redis answers the plugin. Unknown when Redis does not answer
/// the plugin (an outage, not a cut) and when every answering node lost Redis
/// at once (a shared cause: one node cut off cannot explain the others).
pub fn node_cut_off(links: &[NodeLink], redis_reachable: bool, at: u64) -> Invariant {
    let answering = links.iter().filter(|l| l.answering).count();
    let cut: Vec<&NodeLink> = links.iter().filter(|l| l.cut()).collect();
    let names = cut
        .iter()
        .map(|l| l.id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let (status, detail) = if !redis_reachable {
        (
            InvariantStatus::Unknown,
            "redis does not answer the plugin either, so a node cut off cannot be told from redis down".to_string(),
        )
    } else if cut.is_empty() {
        (
            InvariantStatus::Ok,
            format!("every answering node ({answering}) reaches redis"),
        )
    } else if cut.len() == answering && answering > 1 {
        (
            InvariantStatus::Unknown,
            format!("every answering node ({names}) lost redis at once while it answers the plugin: a shared cause, not one node"),
        )
    } else {
        (
            InvariantStatus::Violated,
            if cut.len() == 1 {
                format!("{names} answers its clients but its pings to redis fail, while redis answers the plugin and the other nodes")
            } else {
                format!("{names} answer their clients but their pings to redis fail, while redis answers the plugin and the other nodes")
            },
        )
    };
    let mut i = inv(
        NODE_CUT_OFF,
        AnomalyClass::StateDivergence,
        status,
        detail,
        at,
    );
    if status == InvariantStatus::Violated {
        i.components = cut.iter().map(|l| l.id.clone()).collect();
    }
    i.observed = Some(cut.len() as f64);
    i.bound = Some(0.0);
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(id: &str, pings: &[Option<f64>], flushes_failing: bool) -> NodeLink {
        NodeLink {
            id: id.into(),
            answering: true,
            pings: pings.to_vec(),
            flushes_failing,
        }
    }

    #[test]
    fn redis_latency_names_redis_when_every_node_is_slow_and_the_nodes_otherwise() {
        let fast = [Some(0.3), Some(0.2), Some(0.4)];
        let slow = [Some(21.0), Some(19.0), Some(24.0)];
        // One slow answer among fast ones is not a slow link.
        let spike = link(
            "node-1",
            &[Some(0.3), Some(90.0), Some(0.2), Some(0.3)],
            false,
        );
        assert_eq!(spike.rtt_ms(), Some(0.3));
        let ok = redis_latency(&[spike, link("node-2", &fast, false)], 10.0, true, 0);
        assert_eq!(ok.status, InvariantStatus::Ok, "{}", ok.detail);
        let all = redis_latency(
            &[
                link("node-1", &slow, false),
                link("node-2", &slow, false),
                link("node-3", &slow, false),
            ],
            10.0,
            true,
            0,
        );
        assert_eq!(all.status, InvariantStatus::Violated);
        assert_eq!(all.class, AnomalyClass::LatencySpike);
        assert_eq!(all.components, vec!["redis"]);
        assert_eq!((all.observed, all.bound), (Some(21.0), Some(10.0)));
        let one = redis_latency(
            &[link("node-1", &fast, false), link("node-2", &slow, false)],
            10.0,
            true,
            0,
        );
        assert_eq!(one.components, vec!["node-2"]);
        // Too few answered pings, or Redis down for the plugin too: no verdict.
        let few = link("node-1", &[None, Some(30.0), None, None, Some(30.0)], false);
        assert_eq!(few.rtt_ms(), None);
        assert_eq!(
            redis_latency(&[few], 10.0, true, 0).status,
            InvariantStatus::Unknown
        );
        assert_eq!(
            redis_latency(&[link("node-1", &slow, false)], 10.0, false, 0).status,
            InvariantStatus::Unknown
        );
        // Only the last LINK_POLLS pings count.
        let healed = link(
            "node-1",
            &[
                Some(30.0),
                Some(30.0),
                Some(30.0),
                Some(0.2),
                Some(0.2),
                Some(0.2),
                Some(0.2),
                Some(0.2),
            ],
            false,
        );
        assert_eq!(healed.rtt_ms(), Some(0.2));
    }

    #[test]
    fn node_cut_off_names_the_one_node_and_not_an_outage_or_a_shared_cause() {
        let fine = link("node-1", &[Some(0.3), Some(0.3)], false);
        let cut = link("node-2", &[Some(0.3), None, None], false);
        let i = node_cut_off(&[fine.clone(), cut.clone()], true, 0);
        assert_eq!(i.status, InvariantStatus::Violated);
        assert_eq!(i.class, AnomalyClass::StateDivergence);
        assert_eq!(i.components, vec!["node-2"]);
        // One failed ping alone is not a cut, unless its flushes fail too.
        let once = link("node-2", &[Some(0.3), None], false);
        assert_eq!(
            node_cut_off(&[fine.clone(), once.clone()], true, 0).status,
            InvariantStatus::Ok
        );
        let once_failing = NodeLink {
            flushes_failing: true,
            ..once
        };
        assert_eq!(
            node_cut_off(&[fine.clone(), once_failing], true, 0).status,
            InvariantStatus::Violated
        );
        // Partitioned by a CLIENT PAUSE WRITE but still answering pings: not cut.
        let paused = link("node-2", &[Some(0.3), Some(0.4)], true);
        assert_eq!(
            node_cut_off(&[fine.clone(), paused], true, 0).status,
            InvariantStatus::Ok
        );
        // Redis down for the plugin too, or every node at once: not one node cut off.
        assert_eq!(
            node_cut_off(&[fine, cut.clone()], false, 0).status,
            InvariantStatus::Unknown
        );
        let both = [
            cut.clone(),
            NodeLink {
                id: "node-3".into(),
                ..cut.clone()
            },
        ];
        assert_eq!(
            node_cut_off(&both, true, 0).status,
            InvariantStatus::Unknown
        );
        // A node that does not answer is `node down`'s business.
        let dead = NodeLink {
            answering: false,
            ..cut
        };
        assert!(!dead.cut());
    }
}
