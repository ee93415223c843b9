//! The `env=compose` path against a cluster started by the test: Redis down is
//! reported (the poll never fails) and clears after a restart; conservation
//! holds for the plugin's own traffic and fails on traffic it did not send.

mod common;
use common::subject::Running;
use common::*;
use plugin_api::*;
use std::time::Duration;

fn config(redis: &RedisGuard, nodes: &[NodeGuard<'_>]) -> String {
    let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    format!(
        "env=compose flush_ms=100 load_rps=30 nodes={} redis={}",
        urls.join("+"),
        redis.url()
    )
}

#[test]
fn redis_down_is_reported_without_failing_the_poll_and_clears_after_restart() {
    let redis = RedisGuard::start();
    let nodes = cluster(&redis, "cached", 100);
    let s = Running::start(&config(&redis, &nodes));
    s.0.run_step("set-limit").unwrap();
    s.wait("redis down", InvariantStatus::Ok, Duration::from_secs(10));
    redis.kill();
    let down = s.wait(
        "redis down",
        InvariantStatus::Violated,
        Duration::from_secs(5),
    );
    assert_eq!(down.components, vec!["redis"]);
    assert_eq!(down.class, AnomalyClass::DependencyDown);
    // The poll never fails while Redis is down; how fast it answers is demo-bench's job.
    let snap = s.0.health().unwrap();
    assert_eq!(
        snap.nodes.iter().find(|n| n.id == "redis").unwrap().status,
        NodeStatus::Down
    );
    assert_eq!(
        snap.invariant("node down").unwrap().status,
        InvariantStatus::Ok,
        "nodes still answer"
    );
    assert_eq!(
        snap.invariant("counter drift").unwrap().status,
        InvariantStatus::Unknown
    );
    redis.restart();
    s.0.run_step("set-limit").unwrap();
    s.wait("redis down", InvariantStatus::Ok, Duration::from_secs(10));
}

#[test]
fn conservation_holds_for_own_traffic_and_fails_on_unaccounted_checks() {
    let redis = RedisGuard::start();
    let nodes = cluster(&redis, "cached", 100);
    let s = Running::start(&config(&redis, &nodes));
    s.0.run_step("set-limit").unwrap();
    wait_for(Duration::from_secs(10), "some load", || {
        let snap = s.0.health().unwrap();
        (snap.metric("allowed").map_or(0.0, |m| m.value) >= 20.0).then_some(())
    });
    s.wait("conservation", InvariantStatus::Ok, Duration::from_secs(5));
    // Checks the plugin never sent: node-1's counts now exceed what the plugin can account for.
    let rt = runtime();
    rt.block_on(async {
        let http = reqwest::Client::new();
        burst(&http, &[nodes[0].url()], "demo", 5).await;
    });
    let c = s.wait(
        "conservation",
        InvariantStatus::Violated,
        Duration::from_secs(5),
    );
    assert_eq!(c.components, vec!["node-1"]);
    assert_eq!(c.class, AnomalyClass::Accounting);
}

#[test]
fn checks_a_node_counted_before_this_instance_are_not_its_to_account_for() {
    // A second demo against a compose cluster that outlived the first host:
    // the nodes' counters hold the first host's checks.
    let redis = RedisGuard::start();
    let nodes = cluster(&redis, "cached", 100);
    let rt = runtime();
    let http = reqwest::Client::new();
    rt.block_on(async {
        put_limit(&http, &nodes[0].url(), "demo", 100_000, 60_000).await;
        burst(&http, &[nodes[0].url()], "demo", 7).await
    });
    let counted = rt.block_on(async {
        let text = http
            .get(format!("{}/metrics", nodes[0].url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        subject_ratelimiter::wire::scrape::Scrape::parse(&text)
    });
    assert!(
        counted.allowed + counted.denied >= 7,
        "the earlier checks are counted by the node: {counted:?}"
    );
    let s = Running::start(&config(&redis, &nodes));
    // Without the baseline, node-1 stays 7 checks over for good.
    s.0.run_step("set-limit").unwrap();
    wait_for(Duration::from_secs(10), "some load", || {
        let snap = s.0.health().unwrap();
        (snap.metric("allowed").map_or(0.0, |m| m.value) >= 20.0).then_some(())
    });
    s.wait("conservation", InvariantStatus::Ok, Duration::from_secs(5));
    // Checks someone else sends while this instance watches still count.
    rt.block_on(burst(&http, &[nodes[0].url()], "demo", 5));
    let c = s.wait(
        "conservation",
        InvariantStatus::Violated,
        Duration::from_secs(5),
    );
    assert_eq!(c.components, vec!["node-1"]);
}
