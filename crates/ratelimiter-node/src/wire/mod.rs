//! What the service and the plugin must agree on: the JSON bodies of the
//! `ratelimiter-node` HTTP API, its counting modes and bounds, the Redis key
//! names, and how its `/metrics` are read back ([`scrape`]).

use serde::{Deserialize, Serialize};

pub mod scrape;

/// Largest accepted window: one day. Longer windows are almost always a unit mistake.
pub const MAX_WINDOW_MS: u64 = 86_400_000;
pub const MAX_LIMIT: u64 = 1_000_000_000;

/// How checks are counted; the trade-off between both is the subject of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "server", derive(clap::ValueEnum))]
pub enum Mode {
    /// One atomic Redis script per check; fail-closed. Never over-allows.
    Strict,
    /// Local counting with batched flushes to Redis (limitador's `redis_cached`). Fast, can over-allow.
    Cached,
}

impl Mode {
    /// The mode named `strict` or `cached`.
    pub fn parse(name: &str) -> Option<Mode> {
        match name {
            "strict" => Some(Mode::Strict),
            "cached" => Some(Mode::Cached),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Cached => "cached",
        }
    }
}

/// Body of `POST /check`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckRequest {
    pub key: String,
}

/// Answer of `POST /check` (200 when allowed, 429 when denied, 503 when the
/// node could not decide, which in strict mode means fail-closed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResponse {
    pub allowed: bool,
    pub current_count: u64,
    pub remaining: u64,
    pub limit: u64,
    pub node: String,
    /// Start time (unix ms) of the answering process: tells restarted nodes apart.
    pub instance: u64,
    /// Seconds until a retry may succeed (denials only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<f64>,
    /// Why the check was not decided normally (`redis timeout`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body of `PUT /api/limits/{key}` and answer of `GET /api/limits/{key}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub limit: u64,
    pub window_ms: u64,
}

/// Every error the API returns: a JSON object with a message that says what to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub instance: u64,
}

/// Answer of `GET /health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthView {
    pub node: String,
    pub instance: u64,
    pub mode: String,
    /// `ok`, or `degraded` when Redis does not answer or flushes fail.
    pub status: String,
    pub redis_reachable: bool,
    pub redis_latency_ms: Option<f64>,
    pub redis_error: Option<String>,
    /// Cached mode: the last flush failed or timed out and the node serves from local counts.
    pub partitioned: bool,
}

/// A node as registered in Redis by its heartbeat (`GET /api/nodes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    pub address: String,
    pub mode: String,
    pub instance: u64,
    pub heartbeat_ms: u64,
}

/// This node's own view of one key (`GET /api/counters?key=`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountersView {
    pub node: String,
    pub instance: u64,
    pub mode: String,
    pub key: String,
    pub limit: Option<Limit>,
    /// Index of the current fixed window (unix ms / window_ms).
    pub window: u64,
    pub windows: Vec<WindowView>,
    pub partitioned: bool,
    /// Unix ms of the last flush Redis acknowledged (cached mode).
    pub last_flush_ok_ms: Option<u64>,
    /// What Redis holds for the current window right now, if it answered.
    pub redis_count: Option<u64>,
}

impl CountersView {
    /// The counts of one window (zero when the node has none for it).
    pub fn window(&self, window: u64) -> WindowView {
        self.windows
            .iter()
            .find(|w| w.window == window)
            .copied()
            .unwrap_or_default()
    }
}

/// One window of a node's local counts for a key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowView {
    pub window: u64,
    /// Checks this node allowed (acknowledged to clients) in the window.
    pub allowed: u64,
    /// Of those, increments Redis has acknowledged.
    pub flushed: u64,
    /// Allowed but not yet acknowledged by Redis (cached mode).
    pub pending: u64,
    /// The shared count this node last read from Redis.
    pub remote: u64,
}

/// Redis key names, one place so that node and plugin agree.
pub mod keys {
    pub fn limit(key: &str) -> String {
        format!("rl:limit:{key}")
    }
    /// Strict mode: the sliding-window log (a sorted set of allowed checks).
    pub fn strict_log(key: &str) -> String {
        format!("rl:s:{key}")
    }
    /// Cached mode: the shared counter of one fixed window.
    pub fn window_counter(key: &str, window: u64) -> String {
        format!("rl:c:{key}:{window}")
    }
    pub fn node(id: &str) -> String {
        format!("rl:node:{id}")
    }
    pub const NODE_PATTERN: &str = "rl:node:*";
    /// Cached mode: marks a flush batch as applied, which makes a retried flush idempotent.
    pub fn batch(id: &str) -> String {
        format!("rl:batch:{id}")
    }
}

/// Body of `PUT /admin/mode`: the counting mode the node switches to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeChange {
    /// `strict` or `cached`.
    pub mode: String,
}

/// Body of `PUT /admin/redis`: the Redis the node uses from now on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedisChange {
    pub url: String,
}

/// Answer of the admin endpoints: the node's configuration after the change,
/// and what it was before (so an operator, or a remedy, can put it back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminView {
    pub node: String,
    pub instance: u64,
    pub mode: String,
    pub redis: String,
    pub previous_mode: String,
    pub previous_redis: String,
}
