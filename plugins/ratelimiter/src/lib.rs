//! The demo-host plugin of the rate limiter: it runs, watches and breaks a
//! cluster of `ratelimiter-node`s ([`plugin`]). The service, its wire types and
//! the cluster launcher live in the `ratelimiter-node` crate.

// No unwrap outside tests: a panic here would be the host's problem.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod plugin;
/// The shapes both the plugin and the service read and write.
pub use ratelimiter_node::wire;

plugin_api::export_subject!(plugin::RateLimiterSubject);

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    plugin_api::now_ms()
}
