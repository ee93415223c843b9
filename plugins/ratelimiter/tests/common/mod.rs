//! Shared test helpers: a real redis-server and real ratelimiter-node processes
//! on free loopback ports, each stopped by a Drop guard (also when a test fails).

#![allow(dead_code)]

pub mod subject;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use subject_ratelimiter::plugin::local_env::{
    free_ports, http_ok, redis_ping, redis_server_args, wait_until,
};

pub const NODE_BIN: &str = env!("CARGO_BIN_EXE_ratelimiter-node");

pub fn node_bin_dir() -> PathBuf {
    PathBuf::from(NODE_BIN).parent().unwrap().to_path_buf()
}

/// A redis-server child on a free port.
pub struct RedisGuard {
    pub port: u16,
    child: Option<Child>,
}

impl RedisGuard {
    pub fn start() -> RedisGuard {
        let port = free_ports(1).unwrap()[0];
        let mut g = RedisGuard { port, child: None };
        g.restart();
        g
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(redis_server_args(self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (Debian package redis-server)");
        self.child = Some(child);
        assert!(
            wait_until(Duration::from_secs(10), || redis_ping(self.port)),
            "redis-server did not answer"
        );
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A ratelimiter-node child.
pub struct NodeGuard {
    pub port: u16,
    child: Child,
}

impl NodeGuard {
    pub fn start(id: &str, redis: &str, mode: &str, flush_ms: u64) -> NodeGuard {
        NodeGuard::start_with(id, redis, mode, flush_ms, &[])
    }

    pub fn start_with(
        id: &str,
        redis: &str,
        mode: &str,
        flush_ms: u64,
        extra: &[&str],
    ) -> NodeGuard {
        let port = free_ports(1).unwrap()[0];
        let child = Command::new(NODE_BIN)
            .args([
                "--id",
                id,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--redis",
                redis,
                "--mode",
                mode,
            ])
            .args(["--flush-ms", &flush_ms.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || http_ok(port, "/health")),
            "node did not answer"
        );
        NodeGuard { port, child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three nodes against one Redis.
pub fn cluster(redis: &RedisGuard, mode: &str, flush_ms: u64) -> Vec<NodeGuard> {
    (1..=3)
        .map(|i| NodeGuard::start(&format!("node-{i}"), &redis.url(), mode, flush_ms))
        .collect()
}

/// `n` strict nodes against one Redis, with a generous Redis timeout: a check
/// that times out fails closed, which would make the count fall short of the
/// limit on a loaded test machine.
pub fn strict_nodes(redis: &RedisGuard, n: usize) -> Vec<NodeGuard> {
    (1..=n)
        .map(|i| {
            NodeGuard::start_with(
                &format!("node-{i}"),
                &redis.url(),
                "strict",
                100,
                &["--redis-timeout-ms", "5000"],
            )
        })
        .collect()
}

/// GETs `url` and reads its JSON answer; panics with the URL when either fails.
pub async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> T {
    let r = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: the answer is not the JSON expected: {e}"))
}

/// Polls `f` until it returns Some, or panics with `what` after the deadline.
pub fn wait_for<T>(deadline: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub async fn put_limit(http: &reqwest::Client, url: &str, key: &str, limit: u64, window_ms: u64) {
    let r = http
        .put(format!("{url}/api/limits/{key}"))
        .json(&serde_json::json!({"limit": limit, "window_ms": window_ms}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Sends `n` concurrent checks for `key` round-robin over `urls`; returns (allowed, denied, other).
pub async fn burst(
    http: &reqwest::Client,
    urls: &[String],
    key: &str,
    n: usize,
) -> (u64, u64, u64) {
    let sends = (0..n).map(|i| {
        let url = format!("{}/check", urls[i % urls.len()]);
        let http = http.clone();
        let body = serde_json::json!({"key": key});
        async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    });
    let codes = futures::future::join_all(sends).await;
    let allowed = codes.iter().filter(|c| **c == 200).count() as u64;
    let denied = codes.iter().filter(|c| **c == 429).count() as u64;
    (allowed, denied, n as u64 - allowed - denied)
}
