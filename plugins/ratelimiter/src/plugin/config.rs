//! The plugin's config string, validated once at `create`.

use crate::wire::{Mode, MAX_LIMIT, MAX_WINDOW_MS};
use plugin_api::{Config, PluginError, PluginResult};
use std::path::PathBuf;

pub const KEYS: &[&str] = &[
    "env",
    "mode",
    "limit",
    "window_ms",
    "flush_ms",
    "redis_timeout_ms",
    "key",
    "load_rps",
    "poll_ms",
    "drift_tolerance",
    "hold_ms",
    "nodes",
    "redis",
    "containers",
    "redis_container",
    "project",
    "compose_file",
    "node_bin",
    "redis_bin",
    "fault_proxy",
    "proxy_api",
    "redis_latency_ms",
    "standby",
    "redis_in_network",
    "standby_in_network",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvKind {
    /// redis-server and three nodes as child processes on free loopback ports.
    Local,
    /// An already running cluster (docker-compose) at the given endpoints.
    Compose,
}

#[derive(Debug, Clone)]
pub struct PluginConfig {
    pub env: EnvKind,
    pub mode: Mode,
    /// The demo key and its limit per window.
    pub key: String,
    pub limit: u64,
    pub window_ms: u64,
    pub flush_ms: u64,
    /// Local env: the nodes' Redis timeout (strict checks fail closed after it).
    pub redis_timeout_ms: u64,
    /// Checks per second of the steady background load.
    pub load_rps: u64,
    pub poll_ms: u64,
    /// How far Redis and the nodes' acknowledged counts may differ before `counter drift` fires.
    pub drift_tolerance: u64,
    /// How long a seen over-allowance keeps `ghost allowing` violated.
    pub hold_ms: u64,
    /// Compose: node URLs, Redis URL, and node container names (for node-kill).
    pub nodes: Vec<String>,
    pub redis: String,
    pub containers: Vec<String>,
    /// Compose: Redis's container (for redis-freeze); by default named like the nodes' (`<prefix>-redis`).
    pub redis_container: String,
    /// Compose: the project `env-up`/`env-down` manage, and its file (None: found from the library).
    pub project: String,
    pub compose_file: Option<PathBuf>,
    pub node_bin: Option<PathBuf>,
    pub redis_bin: String,
    /// Local env: each node reaches Redis through its own route of an
    /// in-process fault proxy (`fault_proxy=on`, the default), which the
    /// network chaos actions need; `off` connects the nodes to Redis directly.
    pub fault_proxy: bool,
    /// Compose: the fault proxy container's HTTP API.
    pub proxy_api: String,
    /// Above this median round trip from a node to Redis, `redis latency` is violated.
    pub redis_latency_ms: u64,
    /// Compose: the standby Redis the failover-redis remedy promotes, unless `standby=off`.
    pub standby: Option<ComposeStandby>,
}

/// Compose: where the standby Redis is reached from here, and the two Redis
/// servers' addresses inside the project's network, where the nodes and the
/// servers themselves reach each other (the compose file's service names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeStandby {
    /// `standby=`: its published port, from the plugin.
    pub url: String,
    /// `standby_in_network=`: what the nodes are repointed to, and what the
    /// primary replicates when failing back.
    pub in_network: String,
    /// `redis_in_network=`: what the standby replicates again after a fail-back.
    pub primary_in_network: String,
}

impl PluginConfig {
    pub fn parse(c: &Config) -> PluginResult<PluginConfig> {
        c.reject_unknown(KEYS)?;
        let env = match c.get_or("env", "local") {
            "local" => EnvKind::Local,
            "compose" => EnvKind::Compose,
            other => {
                return Err(PluginError::invalid(format!(
                    "env `{other}` is not offered; use env=local or env=compose"
                )))
            }
        };
        let mode = match c.get_or("mode", "cached") {
            "cached" => Mode::Cached,
            "strict" => Mode::Strict,
            other => {
                return Err(PluginError::invalid(format!(
                    "mode `{other}` is unknown; use mode=cached or mode=strict"
                )))
            }
        };
        let ranged = |key: &str, default: u64, min: u64, max: u64| -> PluginResult<u64> {
            let v: u64 = c.parse_or(key, default)?;
            if v < min || v > max {
                return Err(PluginError::invalid(format!(
                    "config `{key}={v}` is out of range: it takes {min} to {max}"
                )));
            }
            Ok(v)
        };
        let list = |key: &str, default: &str| -> Vec<String> {
            c.get_or(key, default)
                .split('+')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let key = c.get_or("key", "demo").to_string();
        if key.is_empty()
            || !key
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.:".contains(ch))
        {
            return Err(PluginError::invalid(format!(
                "config `key={key}`: use letters, digits and - _ . : only"
            )));
        }
        let mut cfg = PluginConfig {
            env,
            mode,
            key,
            limit: ranged("limit", 2000, 1, MAX_LIMIT)?,
            window_ms: ranged("window_ms", 10_000, 100, MAX_WINDOW_MS)?,
            flush_ms: ranged("flush_ms", 100, 10, 60_000)?,
            redis_timeout_ms: ranged("redis_timeout_ms", 250, 10, 60_000)?,
            load_rps: ranged("load_rps", 100, 0, 1000)?,
            poll_ms: ranged("poll_ms", 100, 20, 10_000)?,
            drift_tolerance: ranged("drift_tolerance", 10, 0, MAX_LIMIT)?,
            hold_ms: ranged("hold_ms", 60_000, 0, 3_600_000)?,
            nodes: list(
                "nodes",
                "http://127.0.0.1:8001+http://127.0.0.1:8002+http://127.0.0.1:8003",
            ),
            redis: c.get_or("redis", "redis://127.0.0.1:6379").to_string(),
            containers: list(
                "containers",
                "ratelimiter-node-1+ratelimiter-node-2+ratelimiter-node-3",
            ),
            redis_container: String::new(),
            project: c.get_or("project", "ratelimiter").to_string(),
            compose_file: c.get("compose_file").map(PathBuf::from),
            node_bin: c.get("node_bin").map(PathBuf::from),
            redis_bin: c.get_or("redis_bin", "redis-server").to_string(),
            fault_proxy: match c.get_or("fault_proxy", "on") {
                "on" => true,
                "off" => false,
                other => {
                    return Err(PluginError::invalid(format!(
                        "config `fault_proxy={other}`: use fault_proxy=on or fault_proxy=off"
                    )))
                }
            },
            proxy_api: c
                .get_or("proxy_api", "http://127.0.0.1:8474")
                .trim_end_matches('/')
                .to_string(),
            redis_latency_ms: ranged("redis_latency_ms", 15, 1, 60_000)?,
            standby: match c.get_or("standby", "redis://127.0.0.1:6380") {
                "off" => None,
                url => Some(ComposeStandby {
                    url: url.to_string(),
                    in_network: c
                        .get_or("standby_in_network", "redis://redis-standby:6379")
                        .to_string(),
                    primary_in_network: c
                        .get_or("redis_in_network", "redis://redis:6379")
                        .to_string(),
                }),
            },
        };
        if env == EnvKind::Compose {
            if cfg.nodes.is_empty() || cfg.nodes.len() > 3 {
                return Err(PluginError::invalid(
                    "config `nodes=` takes one to three node URLs joined by `+`",
                ));
            }
            for url in &cfg.nodes {
                reqwest::Url::parse(url).map_err(|e| {
                    PluginError::invalid(format!("config `nodes`: `{url}` is not a URL ({e})"))
                })?;
            }
            reqwest::Url::parse(&cfg.proxy_api).map_err(|e| {
                PluginError::invalid(format!(
                    "config `proxy_api={}` is not a URL ({e})",
                    cfg.proxy_api
                ))
            })?;
            redis::Client::open(cfg.redis.as_str()).map_err(|e| {
                PluginError::invalid(format!(
                    "config `redis={}` is not a Redis URL ({e})",
                    cfg.redis
                ))
            })?;
            if let Some(s) = &cfg.standby {
                for (key, url) in [
                    ("standby", &s.url),
                    ("standby_in_network", &s.in_network),
                    ("redis_in_network", &s.primary_in_network),
                ] {
                    redis::Client::open(url.as_str()).map_err(|e| {
                        PluginError::invalid(format!(
                            "config `{key}={url}` is not a Redis URL ({e}); `standby=off` runs without a standby"
                        ))
                    })?;
                }
            }
        }
        cfg.redis_container = match c.get("redis_container") {
            Some(name) => name.to_string(),
            None => format!("{}-redis", container_prefix(&cfg.containers)),
        };
        Ok(cfg)
    }

    pub fn node_ids(&self, count: usize) -> Vec<String> {
        (1..=count).map(|i| format!("node-{i}")).collect()
    }
}

/// The prefix the compose file gives container names (`RL_CONTAINER_PREFIX`),
/// read off the first node container's name (`<prefix>-node-1`).
pub fn container_prefix(containers: &[String]) -> String {
    containers
        .first()
        .and_then(|c| c.strip_suffix("-node-1"))
        .unwrap_or("ratelimiter")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> PluginResult<PluginConfig> {
        PluginConfig::parse(&Config::parse(s)?)
    }

    #[test]
    fn defaults_and_errors_name_the_key() {
        let c = parse("").unwrap();
        assert_eq!(
            (c.env, c.mode, c.limit, c.window_ms),
            (EnvKind::Local, Mode::Cached, 2000, 10_000)
        );
        assert!(parse("colour=red")
            .unwrap_err()
            .to_string()
            .contains("unknown config key `colour`"));
        assert!(parse("mode=fast")
            .unwrap_err()
            .to_string()
            .contains("mode=strict"));
        assert!(parse("limit=0")
            .unwrap_err()
            .to_string()
            .contains("`limit=0` is out of range"));
        assert!(parse("window_ms=99999999999")
            .unwrap_err()
            .to_string()
            .contains("window_ms"));
        assert!(parse("env=compose nodes=nope")
            .unwrap_err()
            .to_string()
            .contains("not a URL"));
        assert!(parse("fault_proxy=maybe")
            .unwrap_err()
            .to_string()
            .contains("fault_proxy=on or fault_proxy=off"));
        assert!(c.fault_proxy && !parse("fault_proxy=off").unwrap().fault_proxy);
        assert!(parse("redis_latency_ms=0")
            .unwrap_err()
            .to_string()
            .contains("redis_latency_ms"));
        assert!(parse("env=compose proxy_api=nope")
            .unwrap_err()
            .to_string()
            .contains("proxy_api=nope"));
        let c = parse("env=compose nodes=http://127.0.0.1:9001+http://127.0.0.1:9002 redis=redis://127.0.0.1:7000").unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(
            c.standby,
            Some(ComposeStandby {
                url: "redis://127.0.0.1:6380".into(),
                in_network: "redis://redis-standby:6379".into(),
                primary_in_network: "redis://redis:6379".into(),
            })
        );
        assert_eq!(parse("env=compose standby=off").unwrap().standby, None);
        assert!(parse("env=compose standby=nope")
            .unwrap_err()
            .to_string()
            .contains("`standby=nope` is not a Redis URL"));
    }
}
