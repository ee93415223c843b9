//! From "these programs are missing" to the exact command that installs them,
//! and running it when the user agreed.

use crate::manifest::Prerequisite;
use crate::path::find_on_path;
use std::fmt::Write as _;
use std::process::Command;

/// A package manager the machine has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Apt,
    Dnf,
    Brew,
}

impl Manager {
    /// The key of its package names in the manifest.
    pub fn key(self) -> &'static str {
        match self {
            Manager::Apt => "apt",
            Manager::Dnf => "dnf",
            Manager::Brew => "brew",
        }
    }

    fn program(self) -> &'static str {
        match self {
            Manager::Apt => "apt-get",
            Manager::Dnf => "dnf",
            Manager::Brew => "brew",
        }
    }

    /// The first of apt-get, dnf and brew found on `PATH`.
    pub fn detect() -> Option<Manager> {
        [Manager::Apt, Manager::Dnf, Manager::Brew]
            .into_iter()
            .find(|m| find_on_path(m.program()).is_some())
    }

    fn commands(self, packages: &[String], sudo: bool) -> Vec<Vec<String>> {
        let prefix: Vec<String> = if sudo {
            vec!["sudo".into()]
        } else {
            Vec::new()
        };
        let with = |args: &[&str]| -> Vec<String> {
            prefix
                .iter()
                .cloned()
                .chain(args.iter().map(|s| s.to_string()))
                .chain(packages.iter().cloned())
                .collect()
        };
        match self {
            // A fresh Debian machine has no package lists yet.
            Manager::Apt => vec![
                prefix
                    .iter()
                    .cloned()
                    .chain(["apt-get".into(), "update".into()])
                    .collect(),
                with(&["apt-get", "install", "-y"]),
            ],
            Manager::Dnf => vec![with(&["dnf", "install", "-y"])],
            Manager::Brew => vec![with(&["brew", "install"])],
        }
    }

    /// Root-only managers need sudo when we are not root.
    fn needs_root(self) -> bool {
        !matches!(self, Manager::Brew)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "no package manager found (looked for apt-get, dnf and brew on PATH); install by hand: {0}"
    )]
    NoManager(String),
    #[error("not root and no sudo on PATH: run as root: {0}")]
    NeedsRoot(String),
    #[error("no {manager} package is known for {binaries}; install by hand")]
    Unpackaged {
        manager: &'static str,
        binaries: String,
    },
    #[error("`{command}` failed ({status})")]
    Failed { command: String, status: String },
    #[error("still missing after the install: {0}")]
    StillMissing(String),
}

/// The missing prerequisites of one subject (or the tests), and how to get them.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Who needs them: "the rate limiter plugin (env=local)", "the tests".
    pub needed_by: String,
    pub missing: Vec<Prerequisite>,
    pub manager: Option<Manager>,
    sudo: bool,
}

impl Plan {
    pub fn new(needed_by: impl Into<String>, missing: Vec<&Prerequisite>) -> Plan {
        let manager = Manager::detect();
        let sudo = manager.is_some_and(Manager::needs_root) && !is_root();
        Plan {
            needed_by: needed_by.into(),
            missing: missing.into_iter().cloned().collect(),
            manager,
            sudo,
        }
    }

    /// For tests: a plan with a given manager and root state.
    pub fn with_manager(mut self, manager: Option<Manager>, sudo: bool) -> Plan {
        self.manager = manager;
        self.sudo = sudo;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
    }

    fn packages(&self, manager: Manager) -> (Vec<String>, Vec<&str>) {
        let mut packages: Vec<String> = Vec::new();
        let mut unpackaged = Vec::new();
        for p in &self.missing {
            match p.package(manager.key()) {
                Some(name) if !packages.iter().any(|q| q == name) => {
                    packages.push(name.to_string())
                }
                Some(_) => {}
                None => unpackaged.push(p.binary.as_str()),
            }
        }
        (packages, unpackaged)
    }

    /// The commands that install everything, when this machine can.
    pub fn commands(&self) -> Result<Vec<Vec<String>>, InstallError> {
        let Some(manager) = self.manager else {
            return Err(InstallError::NoManager(self.by_hand()));
        };
        let (packages, unpackaged) = self.packages(manager);
        if !unpackaged.is_empty() {
            return Err(InstallError::Unpackaged {
                manager: manager.key(),
                binaries: unpackaged.join(", "),
            });
        }
        if self.sudo && find_on_path("sudo").is_none() {
            return Err(InstallError::NeedsRoot(command_line(
                &manager.commands(&packages, false),
            )));
        }
        Ok(manager.commands(&packages, self.sudo))
    }

    /// What to type, as one shell line.
    pub fn command_line(&self) -> Option<String> {
        self.commands().ok().map(|c| command_line(&c))
    }

    /// Every package name known for what is missing, for a message when no manager is found.
    fn by_hand(&self) -> String {
        self.missing
            .iter()
            .map(|p| match p.package("apt") {
                Some(pkg) => format!("{} (Debian package `{pkg}`)", p.binary),
                None => p.binary.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The message that names what is missing, why, and the command.
    pub fn describe(&self) -> String {
        let mut out = format!("missing prerequisites for {}:\n", self.needed_by);
        for p in &self.missing {
            let package = self
                .manager
                .and_then(|m| p.package(m.key()).map(|pkg| format!(" (package `{pkg}`)")))
                .unwrap_or_default();
            let why = if p.why.is_empty() {
                String::new()
            } else {
                format!(": {}", p.why)
            };
            let _ = writeln!(out, "  - `{}` not found on PATH{why}{package}", p.binary);
        }
        match self.commands() {
            Ok(c) => {
                let _ = write!(out, "install them with:\n    {}", command_line(&c));
            }
            Err(e) => {
                let _ = write!(out, "{e}");
            }
        }
        out
    }

    /// Runs the install commands with the terminal attached, then checks again.
    pub fn install(&self) -> Result<(), InstallError> {
        for command in self.commands()? {
            let line = command_line(std::slice::from_ref(&command));
            let status = Command::new(&command[0])
                .args(&command[1..])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .map_err(|e| InstallError::Failed {
                    command: line.clone(),
                    status: e.to_string(),
                })?;
            if !status.success() {
                return Err(InstallError::Failed {
                    command: line,
                    status: status.to_string(),
                });
            }
        }
        let still: Vec<&str> = self
            .missing
            .iter()
            .filter(|p| p.find().is_none())
            .map(|p| p.binary.as_str())
            .collect();
        if still.is_empty() {
            Ok(())
        } else {
            Err(InstallError::StillMissing(still.join(", ")))
        }
    }
}

fn command_line(commands: &[Vec<String>]) -> String {
    commands
        .iter()
        .map(|c| c.join(" "))
        .collect::<Vec<_>>()
        .join(" && ")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn prereq(binary: &str, apt: Option<&str>) -> Prerequisite {
        let mut packages = BTreeMap::new();
        if let Some(a) = apt {
            packages.insert("apt".to_string(), a.to_string());
        }
        Prerequisite {
            binary: binary.into(),
            why: "for the test".into(),
            environments: vec![],
            packages,
            optional: false,
            search: vec![],
        }
    }

    #[test]
    fn apt_updates_first_then_installs_every_package_once() {
        let a = prereq("redis-server", Some("redis-server"));
        let b = prereq("redis-cli", Some("redis-server"));
        let c = prereq("tmux", Some("tmux"));
        let plan = Plan::new("the tests", vec![&a, &b, &c]).with_manager(Some(Manager::Apt), false);
        assert_eq!(
            plan.command_line().unwrap(),
            "apt-get update && apt-get install -y redis-server tmux"
        );
        let msg = plan.describe();
        assert!(
            msg.contains("`redis-server` not found on PATH: for the test (package `redis-server`)"),
            "{msg}"
        );
        assert!(
            msg.ends_with("apt-get update && apt-get install -y redis-server tmux"),
            "{msg}"
        );
    }

    #[test]
    fn sudo_is_prefixed_when_not_root() {
        let a = prereq("redis-server", Some("redis-server"));
        let plan = Plan::new("x", vec![&a]).with_manager(Some(Manager::Apt), true);
        match plan.commands() {
            Ok(c) => assert_eq!(c[1][..2], ["sudo".to_string(), "apt-get".to_string()]),
            // A machine without sudo says to run as root instead.
            Err(e) => assert!(e.to_string().contains("run as root"), "{e}"),
        }
    }

    #[test]
    fn without_a_manager_or_a_package_the_message_says_what_to_get() {
        let a = prereq("redis-server", Some("redis-server"));
        let plan = Plan::new("x", vec![&a]).with_manager(None, false);
        let msg = plan.describe();
        assert!(
            msg.contains("no package manager found")
                && msg.contains("Debian package `redis-server`"),
            "{msg}"
        );
        let b = prereq("exotic", None);
        let plan = Plan::new("x", vec![&b]).with_manager(Some(Manager::Dnf), false);
        assert!(plan
            .describe()
            .contains("no dnf package is known for exotic"));
    }
}
