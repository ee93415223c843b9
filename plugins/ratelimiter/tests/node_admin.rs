//! The node's admin endpoints against real redis-servers: the counting mode and
//! the Redis in use change at run time, bad requests change nothing.

mod common;
use common::*;
use ratelimiter_node::wire::AdminView;

async fn put(http: &reqwest::Client, url: &str, body: serde_json::Value) -> (u16, String) {
    let r = http.put(url).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[test]
fn put_admin_mode_switches_cached_nodes_to_strict_counting() {
    let redis = RedisGuard::start();
    let nodes = cluster(&redis, "cached", 1000);
    let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    let rt = runtime();
    rt.block_on(async {
        let http = reqwest::Client::new();
        put_limit(&http, &urls[0], "m", 100, 60_000).await;
        for u in &urls {
            let (status, body) = put(
                &http,
                &format!("{u}/admin/mode"),
                serde_json::json!({"mode": "strict"}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let view: AdminView = serde_json::from_str(&body).unwrap();
            assert_eq!(
                (view.mode.as_str(), view.previous_mode.as_str()),
                ("strict", "cached")
            );
            assert_eq!(view.redis, redis.url());
        }
        let (allowed, denied, other) = burst(&http, &urls, "m", 600).await;
        assert_eq!(allowed, 100, "strict counting allows exactly the limit");
        assert_eq!((denied, other), (500, 0));
        let health: serde_json::Value = get_json(&http, &format!("{}/health", urls[1])).await;
        assert_eq!(health["mode"], "strict");

        let (status, body) = put(
            &http,
            &format!("{}/admin/mode", urls[0]),
            serde_json::json!({"mode": "fast"}),
        )
        .await;
        assert_eq!(status, 400);
        assert!(body.contains("use `strict` or `cached`"), "{body}");
        let view: AdminView = get_json(&http, &format!("{}/admin", urls[0])).await;
        assert_eq!(view.mode, "strict", "a refused change changes nothing");
    });
    assert_eq!(redis.cli(&["ZCARD", "rl:s:m"]), "100");
}

#[test]
fn put_admin_redis_repoints_a_node_and_refuses_a_redis_that_does_not_answer() {
    let first = RedisGuard::start();
    let second = RedisGuard::start();
    let nodes = cluster(&first, "cached", 50);
    let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    let rt = runtime();
    rt.block_on(async {
        let http = reqwest::Client::new();
        // The limit is set in the second Redis only: the nodes find it once repointed.
        let (status, _) = put(
            &http,
            &format!("{}/admin/redis", urls[0]),
            serde_json::json!({"url": second.url()}),
        )
        .await;
        assert_eq!(status, 200);
        put_limit(&http, &urls[0], "r", 10, 60_000).await;
        assert_eq!(second.cli(&["HGET", "rl:limit:r", "limit"]), "10");
        assert_eq!(first.cli(&["EXISTS", "rl:limit:r"]), "0");
        let r = http
            .post(format!("{}/check", urls[1]))
            .json(&serde_json::json!({"key": "r"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "node-2 still uses the first Redis");

        let dead = format!(
            "redis://127.0.0.1:{}",
            ratelimiter_node::cluster::free_ports(1).unwrap()[0]
        );
        let (status, body) = put(
            &http,
            &format!("{}/admin/redis", urls[1]),
            serde_json::json!({"url": dead}),
        )
        .await;
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("does not answer PING"), "{body}");
        let view: AdminView = get_json(&http, &format!("{}/admin", urls[1])).await;
        assert_eq!(view.redis, first.url(), "a refused change changes nothing");
    });
    // Increments counted on node-1 are flushed to the Redis it uses now.
    let window = subject_ratelimiter::now_ms() / 60_000;
    rt.block_on(async {
        let http = reqwest::Client::new();
        let (allowed, _, _) = burst(&http, &urls[..1], "r", 5).await;
        assert_eq!(allowed, 5);
    });
    wait_for(
        std::time::Duration::from_secs(5),
        "the flush to the second Redis",
        || {
            // The window the checks fell in: this one, or the next if it just rolled over.
            let n: u64 = [window, window + 1]
                .iter()
                .map(|w| {
                    second
                        .cli(&["GET", &format!("rl:c:r:{w}")])
                        .parse::<u64>()
                        .unwrap_or(0)
                })
                .sum();
            (n == 5).then_some(())
        },
    );
}
