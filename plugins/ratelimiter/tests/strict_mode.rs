//! Strict mode never allows more than the limit: ≥1,000 concurrent checks over
//! three nodes, with Redis healthy and with Redis writes paused.

mod common;
use common::*;

#[test]
fn strict_allows_exactly_the_limit_out_of_1200_concurrent_checks() {
    let redis = RedisGuard::start();
    let nodes = strict_nodes(&redis, 3);
    let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    let rt = runtime();
    rt.block_on(async {
        let http = reqwest::Client::new();
        put_limit(&http, &urls[0], "s", 100, 60_000).await;
        let (allowed, denied, other) = burst(&http, &urls, "s", 1200).await;
        assert_eq!(allowed, 100, "strict mode allows exactly the limit");
        assert_eq!((denied, other), (1100, 0));
    });
    assert_eq!(redis.cli(&["ZCARD", "rl:s:s"]), "100");
}

#[test]
fn strict_denies_while_redis_writes_are_paused_and_never_over_allows() {
    let redis = RedisGuard::start();
    let nodes = cluster(&redis, "strict", 100);
    let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    let rt = runtime();
    rt.block_on(async {
        let http = reqwest::Client::new();
        put_limit(&http, &urls[0], "p", 50, 60_000).await;
        let (before, _, _) = burst(&http, &urls, "p", 20).await;
        assert_eq!(before, 20);
        assert_eq!(redis.cli(&["CLIENT", "PAUSE", "3000", "WRITE"]), "OK");
        let (during, denied, other) = burst(&http, &urls, "p", 1000).await;
        assert_eq!(during, 0, "no check is allowed while Redis cannot write");
        assert_eq!(denied + other, 1000);
        redis.cli(&["CLIENT", "UNPAUSE"]);
        // The timed-out scripts still run once Redis resumes: they may only make
        // the count higher (over-deny), never let more than the limit through.
        let (after, _, _) = burst(&http, &urls, "p", 1000).await;
        assert!(
            before + during + after <= 50,
            "allowed {before} + {during} + {after} > 50"
        );
        assert!(after <= 30);
    });
}
