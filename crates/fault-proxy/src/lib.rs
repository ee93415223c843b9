//! A fault-injecting TCP proxy: network faults without netem (issue 17; this
//! kernel has no `CONFIG_NET_SCH_NETEM`, and containers share it).
//!
//! A [`Proxy`] owns named routes. Each route listens on a port (0 picks a
//! free one) and forwards every connection to its upstream `host:port`,
//! byte-exact, half-close included. Faults are added per route and per
//! [`Direction`] (upstream = client → server, downstream = server → client):
//! latency with jitter, a bandwidth limit, a blackhole (a partition), a
//! timeout, a reset; each may apply to a fraction of connections, drawn per
//! connection from a seedable RNG. Adding or removing a fault acts on open
//! connections at once. [`Proxy::reset`] undoes everything. The same control
//! is served over HTTP by [`api::router`] (the `fault-proxy` binary), as
//! described in `docs/network-faults.md`.
//!
//! # In a plugin's local environment
//!
//! A plugin starts the proxy on its own runtime, puts one route in front of
//! the dependency per node, points each node at its route, and undoes all
//! chaos with one call:
//!
//! ```no_run
//! use fault_proxy::{Direction, Fault, Proxy, RouteSpec};
//!
//! # fn main() -> Result<(), fault_proxy::Error> {
//! let rt = tokio::runtime::Runtime::new().expect("runtime");
//! let proxy = Proxy::new();
//! let mut redis_for = Vec::new();
//! for node in ["node-1", "node-2", "node-3"] {
//!     let route = rt.block_on(proxy.add_route(RouteSpec::loopback(
//!         format!("redis-{node}"),
//!         "127.0.0.1:6379",
//!     )))?;
//!     // Start the node with `--redis redis://{route.listen}`.
//!     redis_for.push(route.listen);
//! }
//! // Redis is slow for node-1 (answers 50 ± 10 ms late); node-3 is cut off.
//! proxy.add_fault(
//!     "redis-node-1",
//!     Fault::latency(50.0, 10.0).direction(Direction::Downstream),
//! )?;
//! proxy.add_fault("redis-node-3", Fault::blackhole().named("partition"))?;
//! // Heal node-3 alone, then undo everything else.
//! proxy.remove_fault("redis-node-3", "partition")?;
//! rt.block_on(proxy.reset())?;
//! # Ok(())
//! # }
//! ```
//!
//! The routes live as long as a handle to the proxy does (and its runtime):
//! dropping the last `Proxy` closes every listener and connection.

pub mod api;
mod conn;
mod fault;
mod proxy;
mod pump;
mod state;

pub use fault::{Direction, Fault, FaultKind, KINDS, MAX_MS};
pub use proxy::{Proxy, RouteInfo, RouteSpec};

use std::net::SocketAddr;

/// What the control API refuses, and why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown route `{0}`")]
    UnknownRoute(String),
    #[error("a route named `{0}` already exists")]
    DuplicateRoute(String),
    #[error("invalid route: {0}")]
    InvalidRoute(String),
    #[error("route `{route}` has no fault named `{fault}`")]
    UnknownFault { route: String, fault: String },
    #[error("route `{route}` already has a fault named `{fault}` (name the new one, or remove that one first)")]
    DuplicateFault { route: String, fault: String },
    #[error("invalid fault: {0}")]
    InvalidFault(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short machine-readable name, as the HTTP API reports it.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnknownRoute(_) => "unknown_route",
            Error::DuplicateRoute(_) => "duplicate_route",
            Error::InvalidRoute(_) => "invalid_route",
            Error::UnknownFault { .. } => "unknown_fault",
            Error::DuplicateFault { .. } => "duplicate_fault",
            Error::InvalidFault(_) => "invalid_fault",
            Error::Bind { .. } => "bind_failed",
        }
    }
}
