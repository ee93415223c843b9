//! Ghost allowing from a real 2x burst: reported in cached mode (the default),
//! absent in strict mode under the same burst.

mod common;
use common::subject::Running;
use common::wait_for;
use plugin_api::*;
use std::time::Duration;

#[test]
fn a_2x_burst_in_cached_mode_is_reported_as_ghost_allowing() {
    // The default (cached) mode; a 1 s flush interval keeps the stale-count
    // window wide even when a loaded test machine sends the burst slowly.
    let s = Running::start("load_rps=20 flush_ms=1000 limit=500");
    s.0.run_step("set-limit").unwrap();
    s.wait(
        "ghost allowing",
        InvariantStatus::Ok,
        Duration::from_secs(10),
    );
    let fault = s.inject("burst", &[]).unwrap();
    assert_eq!(fault.targets, vec!["node-1", "node-2", "node-3"]);
    let ghost = s.wait(
        "ghost allowing",
        InvariantStatus::Violated,
        Duration::from_secs(15),
    );
    assert_eq!(ghost.class, AnomalyClass::BoundExceeded);
    assert_eq!(ghost.bound, Some(500.0));
    assert!(ghost.observed.unwrap() > 500.0, "{ghost:?}");
    assert!(!ghost.components.is_empty());
    let burst = wait_for(Duration::from_secs(15), "the burst's record", || {
        s.0.shared().bursts().pop()
    });
    assert_eq!(burst.sent, 1000);
    assert!(
        burst.allowed > 500,
        "the cluster allowed {} of 1000 against 500",
        burst.allowed
    );
    assert_eq!(
        burst.allowed + burst.denied + burst.errors + burst.unknown,
        burst.sent
    );
    s.wait("conservation", InvariantStatus::Ok, Duration::from_secs(5));
    s.0.recover(&fault.fault_id).unwrap();
    // Recovered: the violation is not carried into what comes next.
    s.wait(
        "ghost allowing",
        InvariantStatus::Ok,
        Duration::from_secs(5),
    );
}

#[test]
fn the_same_burst_in_strict_mode_allows_exactly_the_limit() {
    let s = Running::start("mode=strict limit=300 window_ms=4000 load_rps=0 redis_timeout_ms=3000");
    s.0.run_step("set-limit").unwrap();
    s.inject("burst", &[("multiplier", ParamValue::Float(2.0))])
        .unwrap();
    let burst = wait_for(Duration::from_secs(15), "the burst's record", || {
        s.0.shared().bursts().pop()
    });
    assert_eq!((burst.sent, burst.allowed, burst.denied), (600, 300, 300));
    assert_eq!(burst.nodes_allowed, Some(300));
    let ghost =
        s.0.health()
            .unwrap()
            .invariant("ghost allowing")
            .cloned()
            .unwrap();
    assert_eq!(ghost.status, InvariantStatus::Ok, "{ghost:?}");
}
