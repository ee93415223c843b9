//! The node's HTTP API against a real redis-server: limits, headers, bad input,
//! read-only read paths, metrics, registry and Redis outages.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn limits_set_through_the_api_are_used_by_check_on_every_node() {
    let redis = RedisGuard::start();
    let nodes = cluster(&redis, "cached", 100);
    let rt = runtime();
    rt.block_on(async {
        let http = reqwest::Client::new();
        put_limit(&http, &nodes[0].url(), "k1", 3, 60_000).await;
        // node-2 learns the limit from Redis, not from node-1.
        let r = http
            .get(format!("{}/api/limits/k1", nodes[1].url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["limit"], 3);
        let mut statuses = vec![];
        for _ in 0..4 {
            let r = http
                .post(format!("{}/check", nodes[1].url()))
                .json(&serde_json::json!({"key": "k1"}))
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
            if r.status() == 429 {
                assert!(r.headers().contains_key("retry-after"));
                assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
                let body: serde_json::Value = r.json().await.unwrap();
                assert!(body["retry_after"].as_f64().unwrap() > 0.0);
            } else {
                assert_eq!(r.headers()["x-ratelimit-limit"], "3");
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["node"], "node-2");
                assert_eq!(body["allowed"], true);
            }
        }
        assert_eq!(statuses, vec![200, 200, 200, 429]);
    });
}

#[test]
fn bad_input_gets_a_json_4xx_never_a_panic() {
    let redis = RedisGuard::start();
    let node = redis.node("node-1", "strict", 100);
    let rt = runtime();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let url = node.url();
        let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
            (
                http.post(format!("{url}/check"))
                    .json(&serde_json::json!({"key": "nobody"})),
                404,
                "no limit is configured",
            ),
            (
                http.post(format!("{url}/check")).body("{\"key\":"),
                400,
                "not the expected JSON",
            ),
            (
                http.post(format!("{url}/check"))
                    .json(&serde_json::json!({"key": "bad key!"})),
                400,
                "characters",
            ),
            (
                http.post(format!("{url}/check")).body(vec![b'x'; 10_000]),
                413,
                "larger than",
            ),
            (
                http.put(format!("{url}/api/limits/k"))
                    .json(&serde_json::json!({"limit": 0, "window_ms": 1000})),
                400,
                "limit must be",
            ),
            (
                http.put(format!("{url}/api/limits/k"))
                    .json(&serde_json::json!({"limit": -5, "window_ms": 1000})),
                400,
                "limit must be",
            ),
            (
                http.put(format!("{url}/api/limits/k"))
                    .json(&serde_json::json!({"limit": 5, "window_ms": 100_000_000_000u64})),
                400,
                "window_ms must be",
            ),
            (http.get(format!("{url}/api/counters")), 400, "give the key"),
            (http.get(format!("{url}/nowhere")), 404, "no such endpoint"),
            (
                http.delete(format!("{url}/check")),
                405,
                "method not allowed",
            ),
        ];
        for (req, status, text) in cases {
            let r = req.send().await.unwrap();
            assert_eq!(r.status().as_u16(), status);
            let body: serde_json::Value = r.json().await.expect("error bodies are JSON");
            assert!(body["error"].as_str().unwrap().contains(text), "{body}");
        }
        // The node is still serving.
        assert!(http
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success());
    });
}

#[test]
fn read_paths_do_not_write_and_metrics_are_filled() {
    let redis = RedisGuard::start();
    let nodes = cluster(&redis, "strict", 100);
    let rt = runtime();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
        put_limit(&http, &urls[0], "r", 5, 60_000).await;
        let (allowed, denied, _) = burst(&http, &urls, "r", 8).await;
        assert_eq!((allowed, denied), (5, 3));
        let keys_before = redis.cli(&["DBSIZE"]);
        let log_before = redis.cli(&["ZCARD", "rl:s:r"]);
        for path in [
            "/health",
            "/api/nodes",
            "/api/counters?key=r",
            "/api/limits/r",
            "/metrics",
        ] {
            let r = http.get(format!("{}{path}", urls[0])).send().await.unwrap();
            assert!(r.status().is_success(), "{path}");
        }
        assert_eq!(redis.cli(&["DBSIZE"]), keys_before);
        assert_eq!(redis.cli(&["ZCARD", "rl:s:r"]), log_before);
        let c: serde_json::Value = http
            .get(format!("{}/api/counters?key=r", urls[0]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(c["redis_count"], 5);
        let nodes_seen: Vec<serde_json::Value> = http
            .get(format!("{}/api/nodes", urls[2]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<&str> = nodes_seen
            .iter()
            .map(|n| n["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["node-1", "node-2", "node-3"]);
        let metrics = http
            .get(format!("{}/metrics", urls[0]))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let s = subject_ratelimiter::wire::scrape::Scrape::parse(&metrics);
        assert_eq!(
            s.allowed + s.denied,
            3,
            "node-1 got 3 of the 8 round-robin checks"
        );
        assert_eq!(
            *s.check_buckets.last().unwrap(),
            3,
            "the latency histogram is filled"
        );
        assert!(metrics.contains("ratelimiter_redis_duration_seconds_count"));
        let r = http
            .post(format!("{}/api/counters/r/reset", urls[1]))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let (allowed, _, _) = burst(&http, &urls, "r", 3).await;
        assert_eq!(allowed, 3, "reset cleared the shared count");
    });
}

#[test]
fn redis_outage_fails_closed_in_strict_mode_and_nodes_reconnect() {
    let redis = RedisGuard::start();
    let strict = redis.node("node-1", "strict", 100);
    let cached = redis.node("node-2", "cached", 100);
    let rt = runtime();
    let http = reqwest::Client::new();
    rt.block_on(async {
        put_limit(&http, &strict.url(), "o", 1000, 60_000).await;
        let (a, _, _) = burst(&http, &[strict.url(), cached.url()], "o", 4).await;
        assert_eq!(a, 4);
    });
    redis.kill();
    rt.block_on(async {
        let r = http
            .post(format!("{}/check", strict.url()))
            .json(&serde_json::json!({"key": "o"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "strict fails closed");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["allowed"], false);
        // cached serves from its local count while partitioned.
        let r = http
            .post(format!("{}/check", cached.url()))
            .json(&serde_json::json!({"key": "o"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let h: serde_json::Value = http
            .get(format!("{}/health", strict.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(h["redis_reachable"], false);
    });
    redis.restart();
    rt.block_on(async {
        put_limit(&http, &strict.url(), "o", 1000, 60_000).await;
        for url in [strict.url(), cached.url()] {
            let mut ok = false;
            for _ in 0..200 {
                let h: serde_json::Value = get_json(&http, &format!("{url}/health")).await;
                if h["redis_reachable"] == true && h["partitioned"] == false {
                    ok = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            assert!(ok, "{url} reconnected to redis by itself");
        }
        let r = http
            .post(format!("{}/check", strict.url()))
            .json(&serde_json::json!({"key": "o"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
}
