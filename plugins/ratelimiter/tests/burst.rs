//! The burst generator run directly against real nodes: exact accounting in
//! strict mode, a dead address that fails fast, and a stopped burst that
//! takes back what it never sent.

mod common;
use common::*;
use ratelimiter_node::cluster::free_ports;
use std::sync::Arc;
use std::time::Duration;
use subject_ratelimiter::plugin::burst::{self, BurstRecord, MAX_CONCURRENCY};
use subject_ratelimiter::plugin::load::Accounting;
use subject_ratelimiter::wire::{CountersView, HealthView, Limit};

async fn burst_of(
    acc: &Arc<Accounting>,
    urls: &[String],
    key: &str,
    limit: Limit,
    count: u64,
) -> BurstRecord {
    let window = burst::align_to_window(limit.window_ms).await;
    let run = burst::run(
        reqwest::Client::new(),
        Arc::clone(acc),
        urls.to_vec(),
        key.to_string(),
        limit,
        count,
        window,
    );
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the burst finishes")
}

#[test]
fn a_strict_burst_allows_exactly_the_limit_and_accounts_for_every_check() {
    let redis = RedisGuard::start();
    let nodes = strict_nodes(&redis, 3);
    let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    let limit = Limit {
        limit: 300,
        window_ms: 4000,
    };
    // Over MAX_CONCURRENCY, so that workers reuse their connections and merge
    // their tallies more than once.
    let count = 1000;
    let acc = Arc::new(Accounting::new(3));
    let rt = runtime();
    let (rec, views, instances) = rt.block_on(async {
        let http = reqwest::Client::new();
        put_limit(&http, &urls[0], "b", limit.limit, limit.window_ms).await;
        let rec = burst_of(&acc, &urls, "b", limit, count).await;
        let mut views = Vec::new();
        let mut instances = Vec::new();
        for url in &urls {
            let v: CountersView = get_json(&http, &format!("{url}/api/counters?key=b")).await;
            views.push(v);
            let h: HealthView = get_json(&http, &format!("{url}/health")).await;
            instances.push(h.instance);
        }
        (rec, views, instances)
    });
    assert_eq!(rec.sent, count);
    assert_eq!(
        rec.allowed, limit.limit,
        "strict mode allows exactly the limit"
    );
    assert_eq!(rec.allowed + rec.denied, count, "{rec:?}");
    assert_eq!((rec.errors, rec.unknown), (0, 0));
    assert_eq!(rec.allowed_by_node.iter().sum::<u64>(), limit.limit);
    assert_eq!(rec.nodes_allowed, Some(limit.limit));
    assert_eq!(redis.cli(&["ZCARD", "rl:s:b"]), "300");

    let tallies = acc.all();
    // Check n goes to node n % 3.
    let shares = [334, 333, 333];
    let mut denied = 0;
    for (i, t) in tallies.iter().enumerate() {
        assert_eq!(t.sent, shares[i], "node {i}: {t:?}");
        assert_eq!(t.in_flight, 0, "node {i}: {t:?}");
        assert_eq!(t.allowed + t.denied, shares[i], "node {i}: {t:?}");
        assert_eq!(t.allowed, rec.allowed_by_node[i], "node {i}: {t:?}");
        assert_eq!(
            (t.errors, t.unknown, t.rejected, t.not_delivered),
            (0, 0, 0, 0)
        );
        assert_eq!(t.last_instance, instances[i]);
        let a = t.by_instance[&instances[i]];
        assert_eq!((a.allowed, a.denied), (t.allowed, t.denied));
        assert_eq!(t.by_instance.len(), 1, "node {i}: {t:?}");
        // The node counted what the plugin says it answered.
        let counted = views[i].window(rec.window).allowed;
        assert_eq!(counted, t.allowed, "node {i}: {:?}", views[i]);
        denied += t.denied;
    }
    assert_eq!(denied, rec.denied);
}

#[test]
fn a_burst_where_nothing_listens_is_not_delivered_and_ends_promptly() {
    let url = format!("http://127.0.0.1:{}", free_ports(1).unwrap()[0]);
    let acc = Arc::new(Accounting::new(1));
    let limit = Limit {
        limit: 250,
        window_ms: 60_000,
    };
    let rt = runtime();
    let rec = rt.block_on(async {
        let run = burst::run(
            reqwest::Client::new(),
            Arc::clone(&acc),
            vec![url],
            "dead".into(),
            limit,
            500,
            0,
        );
        // Refused connections fail at once; the checks' own timeout is 2 s.
        tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("a burst at a dead address ends promptly")
    });
    assert_eq!(rec.sent, 500);
    assert_eq!(rec.errors, 500, "{rec:?}");
    assert_eq!((rec.allowed, rec.denied, rec.unknown), (0, 0, 0));
    assert_eq!(rec.nodes_allowed, None);
    let t = &acc.all()[0];
    assert_eq!(
        (t.sent, t.not_delivered, t.in_flight),
        (500, 500, 0),
        "{t:?}"
    );
}

#[test]
fn a_stopped_burst_takes_back_what_it_never_sent() {
    let redis = RedisGuard::start();
    let nodes = strict_nodes(&redis, 1);
    let url = nodes[0].url();
    let acc = Arc::new(Accounting::new(1));
    let limit = Limit {
        limit: 100,
        window_ms: 60_000,
    };
    // Far more than the test lets it send.
    let count = 10_000_000;
    let rt = runtime();
    rt.block_on(put_limit(
        &reqwest::Client::new(),
        &url,
        "stop",
        limit.limit,
        limit.window_ms,
    ));
    let task = rt.spawn(burst::run(
        reqwest::Client::new(),
        Arc::clone(&acc),
        vec![url],
        "stop".into(),
        limit,
        count,
        0,
    ));
    // Stopped once workers have merged answers, as `recover` stops a burst.
    wait_for(Duration::from_secs(20), "answers merged", || {
        let t = &acc.all()[0];
        (t.allowed + t.denied > 0).then_some(())
    });
    task.abort();
    let err = rt.block_on(task).expect_err("the burst was stopped");
    assert!(err.is_cancelled());
    // The workers' tallies merge as the aborted workers drop, on the runtime.
    let t = wait_for(Duration::from_secs(10), "the workers to stop", || {
        let t = acc.all().remove(0);
        (t.in_flight <= MAX_CONCURRENCY as u64).then_some(t)
    });
    let finished = t.allowed + t.denied + t.errors + t.unknown + t.rejected + t.not_delivered;
    assert!(t.sent < count, "{t:?}");
    assert_eq!(t.sent, finished + t.in_flight, "{t:?}");
    assert!(t.allowed <= limit.limit, "{t:?}");
}
