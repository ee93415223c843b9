//! The plugin as the host loads it: built as a cdylib, opened with the ABI
//! checks, driven across the boundary against real PostgreSQL servers.

use plugin_api::testing;
use plugin_api::{HealthSnapshot, InvariantStatus, NodeStatus};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn status(h: &HealthSnapshot, node: &str) -> NodeStatus {
    h.nodes.iter().find(|n| n.id == node).unwrap().status
}

fn invariant(h: &HealthSnapshot, name: &str) -> InvariantStatus {
    h.invariant(name).unwrap().status
}

#[test]
fn it_loads_and_both_faults_are_real_across_the_abi() {
    let plugin = testing::build_and_load(env!("CARGO_MANIFEST_DIR")).unwrap();
    assert_eq!(plugin.description.info.id, "postgres");
    assert_eq!(plugin.description.info.prerequisites.len(), 3);

    let subject = plugin.instance("env=local").unwrap();
    subject.setup().unwrap();
    let healthy = |h: &HealthSnapshot| {
        h.nodes.iter().all(|n| n.status == NodeStatus::Up)
            && invariant(h, "replication lag") == InvariantStatus::Ok
            && invariant(h, "servers up") == InvariantStatus::Ok
    };
    let h = subject.health_until(LIMIT, healthy).unwrap();
    let replica = h.nodes.iter().find(|n| n.id == "pg-replica").unwrap();
    assert_eq!(replica.depends_on, vec!["pg-primary".to_string()]);
    assert!(replica.metrics.iter().any(|m| m.name == "replay lag"));

    // Replay paused while the writer writes: the lag passes its bound.
    let lag = subject.inject("replica-lag", &[]).unwrap();
    assert_eq!(lag.targets, vec!["pg-replica".to_string()]);
    let h = subject
        .health_until(LIMIT, |h| {
            invariant(h, "replication lag") == InvariantStatus::Violated
        })
        .unwrap();
    let inv = h.invariant("replication lag").unwrap();
    assert!(inv.observed.unwrap() > inv.bound.unwrap());
    assert_eq!(inv.components, vec!["pg-replica".to_string()]);
    subject.recover(&lag.fault_id).unwrap();
    subject.health_until(LIMIT, healthy).unwrap();

    // SIGKILL of the primary: it is down (its metrics stale), the replica up.
    let kill = subject.inject("primary-kill", &[]).unwrap();
    let h = subject
        .health_until(LIMIT, |h| status(h, "pg-primary") == NodeStatus::Down)
        .unwrap();
    assert_eq!(status(&h, "pg-replica"), NodeStatus::Up);
    let primary = h.nodes.iter().find(|n| n.id == "pg-primary").unwrap();
    assert!(primary.stale && !primary.metrics.is_empty());
    assert_eq!(
        h.invariant("servers up").unwrap().components,
        vec!["pg-primary".to_string()]
    );
    assert_eq!(invariant(&h, "replication lag"), InvariantStatus::Unknown);
    let h = subject
        .health_until(LIMIT, |h| {
            h.events
                .iter()
                .any(|e| e.component.as_deref() == Some("pg-primary"))
        })
        .unwrap();
    assert!(h.events.iter().all(|e| !e.message.contains("primary-kill")));
    subject.recover(&kill.fault_id).unwrap();
    subject.health_until(LIMIT, healthy).unwrap();

    subject.teardown().unwrap();
    let h = subject.health().unwrap();
    assert!(h.nodes.is_empty(), "nothing runs after teardown");
}
