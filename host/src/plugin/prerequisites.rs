//! What a plugin crate needs on the machine, checked before it is built.
//!
//! A newcomer must hear that `redis-server` is missing in well under a
//! second, not after minutes of compiling: the crate's manifest declares its
//! prerequisites (`[package.metadata.demo-host]`, read by `prereq`), and this
//! step checks them for the chosen environment and offers to install them.

use super::locate::{self, LocateError};
use prereq::{Consent, Plan, Prerequisite};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum PrerequisiteError {
    #[error(transparent)]
    Locate(#[from] LocateError),
    #[error(transparent)]
    Ensure(#[from] prereq::EnsureError),
}

/// Checks the prerequisites `--plugin arg` declares for the environment of
/// `config`, and installs missing ones as `consent` allows. A `.so` file
/// declares none (its plugin says what is missing when `setup` runs).
pub fn ensure(arg: &Path, config: &str, consent: Consent) -> Result<(), PrerequisiteError> {
    let Some(krate) = locate::plugin_crate(arg)? else {
        return Ok(());
    };
    let env = super::environment(config, krate.declared.default_environment()).unwrap_or_default();
    let missing = prereq::missing(&krate.declared.prerequisites, &env);
    let (optional, required): (Vec<&Prerequisite>, Vec<&Prerequisite>) =
        missing.into_iter().partition(|p| p.optional);
    for p in optional {
        eprintln!(
            "note: `{}` is not on PATH; {} may need it: {}",
            p.binary, krate.package, p.why
        );
    }
    let plan = Plan::new(format!("plugin {} (env={env})", krate.package), required);
    Ok(prereq::ensure(&plan, consent)?)
}
