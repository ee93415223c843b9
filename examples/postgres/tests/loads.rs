//! The plugin as the host loads it: built as a cdylib, opened with the
//! ABI checks, driven across the boundary.

use plugin_api::testing;
use plugin_api::{InvariantStatus, NodeStatus};
use std::time::Duration;

#[test]
fn it_loads_describes_itself_and_runs_a_fault_across_the_abi() {
    let plugin = testing::build_and_load(env!("CARGO_MANIFEST_DIR")).unwrap();
    assert_eq!(plugin.description.info.id, "postgres");
    assert!(!plugin.description.chapters.is_empty());

    let subject = plugin.instance("").unwrap();
    subject.setup().unwrap();
    subject
        .health_until(Duration::from_secs(10), |h| {
            h.nodes.iter().all(|n| n.status == NodeStatus::Up)
        })
        .unwrap();

    let fault = subject.inject("crash", &[]).unwrap();
    subject
        .health_until(Duration::from_secs(10), |h| {
            h.invariants.iter().any(|i| i.status == InvariantStatus::Violated)
        })
        .unwrap();
    subject.recover(&fault.fault_id).unwrap();
    subject
        .health_until(Duration::from_secs(10), |h| {
            h.nodes.iter().all(|n| n.status == NodeStatus::Up)
        })
        .unwrap();
    // Teardown runs when `subject` is dropped, also if an assertion failed.
}
