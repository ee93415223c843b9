//! Health, invariants and node mapping against PD's JSON served over real HTTP
//! by the fixture server: generated answers, recorded answers, PD down, slow and garbage.

use crate::support;

use plugin_api::{AnomalyClass, InvariantStatus, NodeStatus, Subject};
use std::time::Duration;
use subject_tikv::fixture::{FixtureOptions, Mode, PdFixture, HEALTH, REGIONS, STORES};
use support::{invariant, node, status, subject};

fn fixture() -> PdFixture {
    PdFixture::start(FixtureOptions::three_stores()).expect("fixture starts")
}

#[test]
fn a_healthy_cluster_shows_every_store_and_member_up() {
    let pd = fixture();
    let s = subject(&format!("pd={} docker=off", pd.url()));
    let h = s.health().unwrap();
    for (id, address) in [
        ("store-1", "tikv0:20160"),
        ("store-2", "tikv1:20160"),
        ("store-3", "tikv2:20160"),
    ] {
        let n = node(&h, id);
        assert_eq!(
            (n.role.as_str(), n.address.as_str(), n.status),
            ("tikv", address, NodeStatus::Up)
        );
        assert_eq!(
            n.metrics
                .iter()
                .find(|m| m.name == "regions")
                .map(|m| m.value),
            Some(30.0)
        );
        let disk = n
            .metrics
            .iter()
            .find(|m| m.name == "disk used")
            .unwrap()
            .value;
        assert!(
            (disk - 20.0).abs() < 0.1,
            "100 GiB capacity, 80 GiB available: {disk}"
        );
    }
    let pd_node = node(&h, "pd");
    assert_eq!(
        (pd_node.role.as_str(), pd_node.status),
        ("pd", NodeStatus::Up)
    );
    assert_eq!(pd_node.address, pd.url());
    for name in [
        "store down",
        "leader balance",
        "regions without leader",
        "pd healthy",
        "disk usage",
    ] {
        assert_eq!(
            status(&h, name),
            InvariantStatus::Ok,
            "{:?}",
            invariant(&h, name)
        );
    }
    assert_eq!(
        status(&h, "p99 latency"),
        InvariantStatus::Unknown,
        "no load, no metrics"
    );
    assert_eq!(h.metric("leaders").map(|m| m.value), Some(30.0));
    assert_eq!(h.metric("stores up").map(|m| m.value), Some(3.0));
}

#[test]
fn disconnected_and_down_stores_are_down_and_named() {
    let pd = fixture();
    let s = subject(&format!("pd={} docker=off", pd.url()));
    let before = s.health().unwrap();
    pd.set_state(2, Some("Disconnected"));
    let h = s.health().unwrap();
    let inv = invariant(&h, "store down");
    assert_eq!(inv.status, InvariantStatus::Violated);
    assert_eq!(inv.class, AnomalyClass::NodeDown);
    assert_eq!(
        inv.components,
        vec!["store-2".to_string(), "tikv1:20160".to_string()]
    );
    assert_eq!((inv.observed, inv.bound), (Some(1.0), Some(0.0)));
    assert!(inv.since_ms >= invariant(&before, "store down").since_ms);
    assert_eq!(node(&h, "store-2").status, NodeStatus::Down);
    assert!(
        h.events
            .iter()
            .any(|e| e.message.contains("store-2") && e.message.contains("Up -> Disconnected")),
        "{:?}",
        h.events
    );
    // Leaders moved to the two Up stores.
    assert_eq!(
        node(&h, "store-2")
            .metrics
            .iter()
            .find(|m| m.name == "leaders")
            .unwrap()
            .value,
        0.0
    );

    pd.set_state(3, Some("Down"));
    let h = s.health().unwrap();
    let inv = invariant(&h, "store down");
    assert_eq!(
        inv.components,
        vec!["store-2", "tikv1:20160", "store-3", "tikv2:20160"]
    );
    let since = inv.since_ms;
    let again = s.health().unwrap();
    assert_eq!(
        invariant(&again, "store down").since_ms,
        since,
        "since stays while the status holds"
    );

    pd.set_state(2, None);
    pd.set_state(3, None);
    assert_eq!(
        status(&s.health().unwrap(), "store down"),
        InvariantStatus::Ok
    );
}

#[test]
fn recorded_pd_answers_with_every_state_parse() {
    let pd = fixture();
    pd.set_raw(STORES, Some(include_str!("../data/stores_all_states.json")));
    pd.set_raw(
        REGIONS,
        Some(include_str!("../data/regions_in_election.json")),
    );
    pd.set_raw(
        HEALTH,
        Some(include_str!("../data/health_one_unhealthy.json")),
    );
    let s = subject(&format!("pd={} docker=off", pd.url()));
    let h = s.health().unwrap();
    let statuses: Vec<(String, NodeStatus)> = h
        .nodes
        .iter()
        .filter(|n| n.role == "tikv")
        .map(|n| (n.id.clone(), n.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("store-1".into(), NodeStatus::Up),
            ("store-2".into(), NodeStatus::Down),
            ("store-3".into(), NodeStatus::Down),
            ("store-4".into(), NodeStatus::Degraded),
            ("store-5".into(), NodeStatus::Unknown),
            ("store-6".into(), NodeStatus::Up),
        ]
    );
    // "1.8TiB" capacity with "1.2TiB" available: a third used.
    let disk = node(&h, "store-1")
        .metrics
        .iter()
        .find(|m| m.name == "disk used")
        .unwrap()
        .value;
    assert!((disk - 100.0 / 3.0).abs() < 0.01, "{disk}");
    assert!(
        node(&h, "store-6").metrics.is_empty(),
        "a store without status figures has no metrics"
    );
    let down = invariant(&h, "store down");
    assert_eq!(
        down.components,
        vec!["store-2", "tikv1:20160", "store-3", "tikv2:20160"]
    );
    let leaderless = invariant(&h, "regions without leader");
    assert_eq!(leaderless.status, InvariantStatus::Violated);
    assert_eq!(leaderless.components, vec!["region-6", "region-10"]);
    let pd_inv = invariant(&h, "pd healthy");
    assert_eq!(pd_inv.status, InvariantStatus::Violated);
    assert_eq!(pd_inv.components, vec!["pd1"]);
    assert_eq!(node(&h, "pd1").status, NodeStatus::Down);
    assert_eq!(
        node(&h, "pd2").address,
        pd.url(),
        "a member without client_urls falls back to the PD address"
    );
}

#[test]
fn pd_down_is_reported_not_failed() {
    let pd = fixture();
    let url = pd.url();
    let s = subject(&format!("pd={url} docker=off"));
    s.health().unwrap();
    drop(pd);
    let h = s.health().expect("health must not fail while PD is down");
    let inv = invariant(&h, "pd healthy");
    assert_eq!(inv.status, InvariantStatus::Violated);
    assert_eq!(inv.class, AnomalyClass::DependencyDown);
    assert_eq!(inv.components, vec!["pd".to_string(), url.clone()]);
    assert!(inv.detail.contains("does not answer"), "{}", inv.detail);
    assert_eq!(node(&h, "pd").status, NodeStatus::Down);
    assert_eq!(
        node(&h, "store-1").status,
        NodeStatus::Unknown,
        "last known stores shown as unknown"
    );
    assert_eq!(status(&h, "store down"), InvariantStatus::Unknown);
}

#[test]
fn slow_garbage_and_failing_pd_are_named() {
    let pd = fixture();
    let s = subject(&format!("pd={} docker=off", pd.url()));
    pd.set_mode(Mode::Slow(Duration::from_secs(5)));
    let h = s.health().unwrap();
    assert!(
        invariant(&h, "pd healthy").detail.contains("timed out"),
        "{}",
        invariant(&h, "pd healthy").detail
    );

    pd.set_mode(Mode::Garbage);
    let h = s.health().unwrap();
    let detail = &invariant(&h, "pd healthy").detail;
    assert!(detail.contains("not PD's JSON"), "{detail}");
    assert_eq!(status(&h, "store down"), InvariantStatus::Unknown);

    pd.set_mode(Mode::Error);
    let h = s.health().unwrap();
    assert!(invariant(&h, "pd healthy").detail.contains("HTTP 500"));

    pd.set_mode(Mode::Normal);
    assert_eq!(
        status(&s.health().unwrap(), "pd healthy"),
        InvariantStatus::Ok
    );
}

#[test]
fn leaderless_regions_imbalance_and_full_disks_are_violations() {
    let pd = fixture();
    let s = subject(&format!("pd={} docker=off", pd.url()));
    pd.set_leaderless_regions(4);
    let h = s.health().unwrap();
    let inv = invariant(&h, "regions without leader");
    assert_eq!(
        (inv.status, inv.observed),
        (InvariantStatus::Violated, Some(4.0))
    );
    assert_eq!(inv.class, AnomalyClass::Other);

    pd.set_leaders(1, Some(0));
    pd.set_leaders(2, Some(15));
    pd.set_leaders(3, Some(15));
    let h = s.health().unwrap();
    let inv = invariant(&h, "leader balance");
    assert_eq!(
        (inv.status, inv.class),
        (InvariantStatus::Violated, AnomalyClass::Imbalance)
    );
    assert_eq!(inv.components, vec!["store-1"]);
    pd.set_leaders(1, Some(9));
    pd.set_leaders(2, Some(11));
    pd.set_leaders(3, Some(10));
    assert_eq!(
        status(&s.health().unwrap(), "leader balance"),
        InvariantStatus::Ok,
        "small deviations are balance"
    );

    pd.set_disk_used(2, 0.85);
    let h = s.health().unwrap();
    let inv = invariant(&h, "disk usage");
    assert_eq!(
        (inv.status, inv.class),
        (InvariantStatus::Violated, AnomalyClass::CapacityExhausted)
    );
    assert_eq!(inv.components, vec!["store-2", "tikv1:20160"]);
    assert_eq!(inv.bound, Some(70.0));
    assert!((inv.observed.unwrap() - 85.0).abs() < 0.1);
}

const METRICS_BEFORE: &str = "\
tikv_storage_command_total{type=\"get\"} 1000
tikv_storage_command_total{type=\"prewrite\"} 500
tikv_grpc_msg_duration_seconds_bucket{type=\"kv_get\",le=\"0.001\"} 100
tikv_grpc_msg_duration_seconds_bucket{type=\"kv_get\",le=\"0.25\"} 100
tikv_grpc_msg_duration_seconds_bucket{type=\"kv_get\",le=\"+Inf\"} 100
";

const METRICS_AFTER: &str = "\
tikv_storage_command_total{type=\"get\"} 2000
tikv_storage_command_total{type=\"prewrite\"} 1000
tikv_grpc_msg_duration_seconds_bucket{type=\"kv_get\",le=\"0.001\"} 100
tikv_grpc_msg_duration_seconds_bucket{type=\"kv_get\",le=\"0.25\"} 200
tikv_grpc_msg_duration_seconds_bucket{type=\"kv_get\",le=\"+Inf\"} 200
";

#[test]
fn qps_and_p99_come_from_prometheus_deltas() {
    let pd = fixture();
    pd.set_metrics(METRICS_BEFORE);
    let s = subject(&format!(
        "pd={} docker=off metrics={}/metrics",
        pd.url(),
        pd.url()
    ));
    let first = s.health().unwrap();
    let p99 = invariant(&first, "p99 latency");
    assert_eq!(
        p99.status,
        InvariantStatus::Ok,
        "all of the first 100 requests took under 1 ms: {p99:?}"
    );
    pd.set_metrics(METRICS_AFTER);
    let h = s.health().unwrap();
    let qps = h.metric("qps").expect("qps from the counter delta").value;
    assert!(qps > 0.0, "{qps}");
    // The 100 requests between the scrapes all fell in (1 ms, 250 ms]: p99 interpolates to 247.5 ms.
    let inv = invariant(&h, "p99 latency");
    assert_eq!(
        (inv.status, inv.class),
        (InvariantStatus::Violated, AnomalyClass::LatencySpike)
    );
    assert!((inv.observed.unwrap() - 247.51).abs() < 0.01, "{inv:?}");
    assert_eq!(inv.bound, Some(100.0));
}

#[test]
fn setup_uses_a_cluster_that_answers_and_names_what_is_missing_otherwise() {
    let pd = fixture();
    let s = subject(&format!("pd={} docker=off", pd.url()));
    s.setup().unwrap();
    s.teardown().unwrap();
    assert_eq!(
        status(&s.health().unwrap(), "pd healthy"),
        InvariantStatus::Ok,
        "teardown leaves a cluster it did not start"
    );

    let url = pd.url();
    drop(pd);
    let err = subject(&format!("pd={url} docker=off"))
        .setup()
        .unwrap_err();
    assert!(matches!(err, plugin_api::PluginError::Missing(_)), "{err}");
    assert!(err.to_string().contains("pd-fixture"), "{err}");
    if !subject_tikv::env::on_path("tiup") {
        let err = subject(&format!("pd={url} env=local"))
            .setup()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tiup is not installed") && err.contains("install.sh"),
            "{err}"
        );
    }
}

#[test]
fn load_steps_are_named_and_can_be_switched_off() {
    let pd = fixture();
    let s = subject(&format!("pd={} docker=off load=off", pd.url()));
    assert!(s.run_step("start-load").unwrap().contains("load=off"));
    assert!(s.run_step("stop-load").unwrap().contains("no load"));
    let err = s.run_step("warp-speed").unwrap_err().to_string();
    assert!(
        err.contains("start-load") && err.contains("stop-load"),
        "{err}"
    );
    let s = subject(&format!("pd={} docker=off", pd.url()));
    assert!(matches!(
        s.run_step("start-load"),
        Err(plugin_api::PluginError::Unsupported(_))
    ));
}

#[test]
fn env_up_reports_a_cluster_that_already_answers() {
    let pd = fixture();
    let s = subject(&format!("pd={} docker=off", pd.url()));
    let summary = s.run_step("env-up").unwrap();
    assert_eq!(
        summary,
        format!("PD at {} reports 3 of 3 stores Up", pd.url())
    );
    let local = subject(&format!("pd={} env=local", pd.url()));
    for step in ["env-up", "env-down"] {
        let err = local.run_step(step).unwrap_err();
        assert!(
            matches!(err, plugin_api::PluginError::Unsupported(_)),
            "{step}: {err}"
        );
    }
}

#[test]
fn a_pd_that_stops_answering_keeps_its_member_ids_and_the_stores_still_name_it() {
    // A component that goes down is the same component: its id does not
    // change, so the stores' `depends_on` still leads to it.
    let pd = fixture();
    pd.set_raw(
        HEALTH,
        Some(include_str!("../data/health_one_unhealthy.json")),
    );
    let s = subject(&format!("pd={} docker=off", pd.url()));
    let before = s.health().unwrap();
    assert_eq!(node(&before, "store-1").depends_on, ["pd0", "pd1", "pd2"]);
    drop(pd);
    let h = s.health().expect("health must not fail while PD is down");
    for id in ["pd0", "pd1", "pd2"] {
        let n = node(&h, id);
        assert_eq!(n.status, NodeStatus::Down, "{id}");
        assert!(n.stale, "{id}: its last reading, marked stale");
    }
    assert!(
        h.nodes.iter().all(|n| n.id != "pd"),
        "no new generic id once the members are known"
    );
    assert_eq!(node(&h, "store-1").depends_on, ["pd0", "pd1", "pd2"]);
    let inv = invariant(&h, "pd healthy");
    assert_eq!(&inv.components[..3], ["pd0", "pd1", "pd2"]);
}
