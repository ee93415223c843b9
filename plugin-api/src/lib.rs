//! The stable plugin ABI of demo-host.
//!
//! Plugin authors implement [`Subject`] over the plain types in [`model`] and
//! call [`export_subject!`]; the host loads the library and talks to it through
//! [`client`]. See `plugin-api/README.md` for the guide.

// The host never panics on a plugin's behalf, and a plugin never panics on its own: no unwrap outside tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod client;
pub mod config;
pub mod error;
pub mod export;
pub mod ffi;
pub mod model;
pub mod params;
pub mod process;
pub mod since;
pub mod subject;
#[cfg(feature = "testing")]
pub mod testing;

pub use abi_stable;
pub use config::Config;
pub use error::{PluginError, PluginResult};
pub use model::*;
pub use params::Params;
pub use since::SinceTracker;
pub use subject::{InstanceContext, Logger, Subject};

/// The plugin-api version, compiled into every plugin and checked at load.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");
