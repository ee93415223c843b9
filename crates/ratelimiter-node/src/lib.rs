//! The rate limiter of the demo: the `ratelimiter-node` service ([`server`],
//! feature `server`), the JSON and metrics shapes both the service and the
//! plugin read ([`wire`]), and a launcher of local clusters ([`cluster`],
//! feature `cluster`) shared by the plugin, the tests and the bench.

// No unwrap outside tests: a panic here would be the host's problem.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

#[cfg(feature = "cluster")]
pub mod cluster;
#[cfg(feature = "server")]
pub mod server;
pub mod wire;

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
