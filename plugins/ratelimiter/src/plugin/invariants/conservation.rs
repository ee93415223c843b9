//! `conservation`: what a node says it answered against what the plugin sent.

use super::*;

/// Per node: what the node says it answered must lie between what the plugin
/// saw answered before the scrape and what it had sent (answered, uncertain or
/// in flight) after it.
pub fn conservation(obs: &Observation) -> Invariant {
    let mut bad = Vec::new();
    let mut details = Vec::new();
    let mut unknown = false;
    let mut worst = 0u64;
    for n in &obs.nodes {
        let Some(s) = &n.scrape else {
            unknown = true;
            details.push(format!("{}: no metrics", n.id));
            continue;
        };
        let before = n
            .tally_before
            .by_instance
            .get(&s.instance)
            .copied()
            .unwrap_or_default();
        let after = n
            .tally_after
            .by_instance
            .get(&s.instance)
            .copied()
            .unwrap_or_default();
        let server = s.allowed + s.denied + s.errors;
        let low = before.total();
        let high = after.total() + after.unknown + n.tally_after.in_flight;
        let allowed_ok = s.allowed >= before.allowed
            && s.allowed <= after.allowed + after.unknown + n.tally_after.in_flight;
        if server < low || server > high || !allowed_ok {
            let off = if server < low {
                low - server
            } else {
                server.saturating_sub(high)
            };
            worst = worst.max(off.max(1));
            bad.push(n.id.clone());
            details.push(format!(
                "{}: the node counted {server} checks ({} allowed, {} denied, {} errors), the plugin had {} answered ({} allowed) + {} unknown + {} in flight",
                n.id, s.allowed, s.denied, s.errors, after.total(), after.allowed, after.unknown, n.tally_after.in_flight
            ));
        }
    }
    let totals = obs.nodes.iter().fold(NodeTally::default(), |mut t, n| {
        let a = &n.tally_after;
        t.sent += a.sent;
        t.in_flight += a.in_flight;
        t.add_outcomes(a);
        t
    });
    let summary = format!(
        "sent {} = allowed {} + denied {} + errors {} + unknown {} + rejected {} + not delivered {} + in flight {}",
        totals.sent, totals.allowed, totals.denied, totals.errors, totals.unknown, totals.rejected, totals.not_delivered, totals.in_flight
    );
    let status = if !bad.is_empty() {
        InvariantStatus::Violated
    } else if unknown {
        InvariantStatus::Unknown
    } else {
        InvariantStatus::Ok
    };
    let detail = if details.is_empty() {
        format!("every node's counts match; {summary}")
    } else {
        format!("{}; {summary}", details.join("; "))
    };
    let mut i = inv(
        CONSERVATION,
        AnomalyClass::Accounting,
        status,
        detail,
        obs.at_ms,
    );
    i.components = bad;
    i.observed = Some(worst as f64);
    i.bound = Some(0.0);
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::invariants::fixtures::*;

    #[test]
    fn conservation_fails_when_a_node_counted_checks_nobody_accounts_for() {
        let mut o = obs(vec![node(1, 0, 0, false, 0)], 0);
        let tally = NodeTally {
            sent: 10,
            allowed: 8,
            denied: 2,
            last_instance: 1,
            by_instance: [(
                1,
                crate::plugin::load::Answered {
                    allowed: 8,
                    denied: 2,
                    errors: 0,
                    unknown: 0,
                },
            )]
            .into(),
            ..NodeTally::default()
        };
        o.nodes[0].tally_before = tally.clone();
        o.nodes[0].tally_after = tally;
        o.nodes[0].scrape = Some(Scrape {
            instance: 1,
            allowed: 8,
            denied: 2,
            ..Scrape::default()
        });
        assert_eq!(conservation(&o).status, InvariantStatus::Ok);
        o.nodes[0].scrape = Some(Scrape {
            instance: 1,
            allowed: 13,
            denied: 2,
            ..Scrape::default()
        });
        let i = conservation(&o);
        assert_eq!(i.status, InvariantStatus::Violated);
        assert_eq!(i.components, vec!["node-1"]);
        o.nodes[0].scrape = None;
        assert_eq!(conservation(&o).status, InvariantStatus::Unknown);
    }
}
