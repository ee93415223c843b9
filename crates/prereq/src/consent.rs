//! Installing only with the user's consent: asked on a terminal, given in
//! advance with `--yes`, and never assumed without a terminal.

use crate::install::{InstallError, Plan};
use std::io::{IsTerminal, Write};

/// How to treat missing prerequisites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Ask on a terminal; without one, stop with the command to run.
    Ask,
    /// `--yes` / `DEMO_HOST_YES=1`: run the install command without asking.
    Yes,
}

impl Consent {
    /// `Yes` when `DEMO_HOST_YES` is 1/true/yes, else `Ask`.
    pub fn from_env() -> Consent {
        let yes = std::env::var("DEMO_HOST_YES")
            .is_ok_and(|v| matches!(v.trim().to_lowercase().as_str(), "1" | "true" | "yes"));
        if yes {
            Consent::Yes
        } else {
            Consent::Ask
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnsureError {
    #[error("{plan}{hint}")]
    Missing { plan: String, hint: &'static str },
    #[error("{0}\nnot installed: you declined")]
    Declined(String),
    #[error("installing the prerequisites failed")]
    Install(#[from] InstallError),
    #[error("could not read the answer: {0}")]
    Prompt(std::io::Error),
}

/// Makes sure nothing in `plan` is missing: installs it as `consent`
/// allows, or fails with the message that says what to run.
pub fn ensure(plan: &Plan, consent: Consent) -> Result<(), EnsureError> {
    if plan.is_empty() {
        return Ok(());
    }
    let text = plan.describe();
    let installable = plan.command_line().is_some();
    let ask = consent == Consent::Ask;
    if !installable || (ask && !std::io::stdin().is_terminal()) {
        let hint = if installable {
            "\nrun that, or rerun with --yes (or DEMO_HOST_YES=1) to let demo-host run it"
        } else {
            ""
        };
        return Err(EnsureError::Missing { plan: text, hint });
    }
    eprintln!("{text}");
    if ask && !confirm("Run it now? [Y/n] ").map_err(EnsureError::Prompt)? {
        return Err(EnsureError::Declined(text));
    }
    plan.install()?;
    eprintln!("prerequisites installed");
    Ok(())
}

/// Asks on stderr and reads a line from stdin; an empty answer is yes.
pub fn confirm(prompt: &str) -> std::io::Result<bool> {
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let answer = line.trim().to_lowercase();
    Ok(answer.is_empty() || answer == "y" || answer == "yes")
}
