//! Shared test helpers: a real redis-server and real ratelimiter-node processes
//! on free loopback ports, each stopped by a Drop guard (also when a test fails).

#![allow(dead_code)]

pub mod subject;

use ratelimiter_node::cluster::{Cluster, Logs, NodeArgs};
use ratelimiter_node::wire::Mode;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `ratelimiter-node`, built into this test's target directory and profile
/// (it is another package's binary, so cargo does not build it for these
/// tests; cargo itself decides whether it is stale).
pub fn node_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/<test>
        let profile_dir = exe
            .parent()
            .and_then(|d| d.parent())
            .expect("target/<profile>");
        let target = profile_dir.parent().expect("target/");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(name) => name,
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "-p", "ratelimiter-node", "--profile", profile])
            .env("CARGO_TARGET_DIR", target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "cargo build -p ratelimiter-node failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        profile_dir.join("ratelimiter-node")
    })
    .clone()
}

/// Where the plugin finds `ratelimiter-node` (beside its library, as cargo puts them).
pub fn node_bin_dir() -> PathBuf {
    node_bin().parent().expect("a directory").to_path_buf()
}

fn mode(name: &str) -> Mode {
    match name {
        "strict" => Mode::Strict,
        "cached" => Mode::Cached,
        other => panic!("no mode {other}"),
    }
}

/// A redis-server child on a free port, the cluster its nodes join.
pub struct RedisGuard {
    pub port: u16,
    cluster: Cluster,
}

impl RedisGuard {
    pub fn start() -> RedisGuard {
        let cluster = Cluster::redis("redis-server", Logs::Discard)
            .expect("redis-server must be installed (Debian package redis-server)");
        RedisGuard {
            port: cluster.redis_port(),
            cluster,
        }
    }

    pub fn url(&self) -> String {
        self.cluster.redis_url()
    }

    /// Starts Redis again on the same port, empty.
    pub fn restart(&self) {
        self.cluster.restart_redis().expect("redis-server restarts");
    }

    pub fn kill(&self) {
        self.cluster.kill_redis().expect("redis-server is killed");
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A node against this Redis; it is killed when the guard drops.
    pub fn node(&self, id: &str, mode_name: &str, flush_ms: u64) -> NodeGuard<'_> {
        self.node_with(id, NodeArgs::new(mode(mode_name)).flush_ms(flush_ms))
    }

    pub fn node_with(&self, id: &str, args: NodeArgs) -> NodeGuard<'_> {
        let i = self
            .cluster
            .add_node(&node_bin(), id, args)
            .unwrap_or_else(|e| panic!("{id} does not start: {e}"));
        NodeGuard {
            port: self.cluster.node_ports()[i],
            i,
            cluster: &self.cluster,
        }
    }
}

/// A ratelimiter-node child of a [`RedisGuard`]'s cluster.
pub struct NodeGuard<'a> {
    pub port: u16,
    i: usize,
    cluster: &'a Cluster,
}

impl NodeGuard<'_> {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for NodeGuard<'_> {
    fn drop(&mut self) {
        let _ = self.cluster.kill_node(self.i);
    }
}

/// Three nodes against one Redis.
pub fn cluster<'a>(redis: &'a RedisGuard, mode: &str, flush_ms: u64) -> Vec<NodeGuard<'a>> {
    (1..=3)
        .map(|i| redis.node(&format!("node-{i}"), mode, flush_ms))
        .collect()
}

/// `n` strict nodes against one Redis, with a generous Redis timeout: a check
/// that times out fails closed, which would make the count fall short of the
/// limit on a loaded test machine.
pub fn strict_nodes(redis: &RedisGuard, n: usize) -> Vec<NodeGuard<'_>> {
    (1..=n)
        .map(|i| {
            let args = NodeArgs::new(Mode::Strict)
                .flush_ms(100)
                .redis_timeout_ms(5000);
            redis.node_with(&format!("node-{i}"), args)
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

/// Sets a key's limit through a node's API; panics when it is refused.
pub async fn put_limit(http: &reqwest::Client, url: &str, key: &str, limit: u64, window_ms: u64) {
    ratelimiter_node::cluster::put_limit(http, url, key, limit, window_ms)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
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
