//! What a plugin crate needs on the machine, checked before it is built.
//!
//! A newcomer must hear that `redis-server` is missing in well under a
//! second, not after minutes of compiling: the crate's manifest declares its
//! prerequisites (`[package.metadata.demo-host]`, read by `prereq`), and this
//! step checks them for the chosen environment and offers to install them.

use super::locate::{self, LocateError};
use crate::cli::prompt::confirm;
use prereq::{Plan, Prerequisite};
use std::io::IsTerminal;
use std::path::Path;

/// How to treat missing prerequisites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Ask on a terminal; without one, stop with the command to run.
    Ask,
    /// `--yes` / `DEMO_HOST_YES=1`: run the install command without asking.
    Yes,
}

#[derive(Debug, thiserror::Error)]
pub enum PrerequisiteError {
    #[error(transparent)]
    Locate(#[from] LocateError),
    #[error("{plan}{hint}")]
    Missing { plan: String, hint: &'static str },
    #[error("{plan}\nnot installed: you declined")]
    Declined { plan: String },
    #[error("installing the prerequisites failed")]
    Install(#[from] prereq::InstallError),
    #[error("could not read the answer: {0}")]
    Prompt(std::io::Error),
}

/// Checks the prerequisites `--plugin arg` declares for the environment of
/// `config`, and installs missing ones as `consent` allows. A `.so` file
/// declares none (its plugin says what is missing when `setup` runs).
pub fn ensure(arg: &Path, config: &str, consent: Consent) -> Result<(), PrerequisiteError> {
    let Some(krate) = locate::plugin_crate(arg)? else {
        return Ok(());
    };
    let env = environment(config, krate.declared.default_environment());
    let missing = prereq::missing(&krate.declared.prerequisites, &env);
    let (optional, required): (Vec<&Prerequisite>, Vec<&Prerequisite>) =
        missing.into_iter().partition(|p| p.optional);
    for p in optional {
        eprintln!(
            "note: `{}` is not on PATH; {} may need it: {}",
            p.binary, krate.package, p.why
        );
    }
    if required.is_empty() {
        return Ok(());
    }
    let plan = Plan::new(format!("plugin {} (env={env})", krate.package), required);
    let text = plan.describe();
    let ask = consent == Consent::Ask;
    let installable = plan.command_line().is_some();
    if !installable || (ask && !std::io::stdin().is_terminal()) {
        let hint = if installable {
            "\nrun that, or rerun with --yes (or DEMO_HOST_YES=1) to let demo-host run it"
        } else {
            ""
        };
        return Err(PrerequisiteError::Missing { plan: text, hint });
    }
    eprintln!("{text}");
    if ask && !confirm("Run it now? [Y/n] ").map_err(PrerequisiteError::Prompt)? {
        return Err(PrerequisiteError::Declined { plan: text });
    }
    plan.install()?;
    eprintln!("prerequisites installed");
    Ok(())
}

/// `env=` of the config, else the crate's default environment.
fn environment(config: &str, default: Option<&str>) -> String {
    plugin_api::Config::parse(config)
        .ok()
        .and_then(|c| c.get("env").map(str::to_string))
        .or_else(|| default.map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_environment_is_the_configs_else_the_declared_default() {
        assert_eq!(super::environment("env=compose", Some("local")), "compose");
        assert_eq!(super::environment("mode=strict", Some("local")), "local");
        assert_eq!(super::environment("", None), "");
    }
}
