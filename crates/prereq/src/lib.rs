//! What a plugin (or the test suite) needs on the machine, read from a
//! `Cargo.toml` *before* anything is built, checked against `PATH`, and turned
//! into the package manager's install command.
//!
//! A plugin crate declares its prerequisites in its manifest so that the host
//! (and `cargo xtask`) can tell a newcomer what is missing in well under a
//! second, instead of after minutes of compiling:
//!
//! ```toml
//! [package.metadata.demo-host]
//! environments = ["local", "compose"]   # the first is the default
//!
//! [[package.metadata.demo-host.prerequisites]]
//! binary = "redis-server"
//! why = "the local environment runs Redis as a process"
//! environments = ["local"]              # omitted: every environment
//! apt = "redis-server"                  # per package manager
//! dnf = "redis"
//! brew = "redis"
//! optional = false                      # true: only warn when missing
//! ```
//!
//! The crate has no dependency beyond `toml`, so `cargo xtask` can check
//! prerequisites after compiling a handful of small crates.

// The host never panics on a plugin's behalf, and a plugin never panics on its own: no unwrap outside tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod consent;
mod install;
mod manifest;
mod path;

pub use consent::{confirm, ensure, Consent, EnsureError};
pub use install::{InstallError, Manager, Plan};
pub use manifest::{Declared, ManifestError, Prerequisite};
pub use path::find_on_path;

/// The prerequisites of `declared` that apply to `environment` and are not on `PATH`.
pub fn missing<'a>(declared: &'a [Prerequisite], environment: &str) -> Vec<&'a Prerequisite> {
    declared
        .iter()
        .filter(|p| p.applies_to(environment))
        .filter(|p| p.find().is_none())
        .collect()
}
