//! The rate limiter subject: the `ratelimiter-node` service ([`node`]) and the
//! demo-host plugin that runs, watches and breaks a cluster of it ([`plugin`]).

pub mod node;
pub mod plugin;
pub mod wire;

plugin_api::export_subject!(plugin::RateLimiterSubject);

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    plugin_api::now_ms()
}
