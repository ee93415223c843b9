//! Reading `[package.metadata.demo-host]` (a plugin crate) and
//! `[workspace.metadata.demo-host]` (the test suite) from a `Cargo.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One program the plugin or the tests need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prerequisite {
    /// The executable looked up on `PATH` (or an absolute path).
    pub binary: String,
    /// Why it is needed, in a few words a newcomer understands.
    pub why: String,
    /// The environments that need it; empty: all of them.
    pub environments: Vec<String>,
    /// The package that provides it, per package manager (`apt`, `dnf`, `brew`).
    pub packages: BTreeMap<String, String>,
    /// Needed only in some setups (a cluster that already runs needs no
    /// launcher): a missing one is a warning, not a stop.
    pub optional: bool,
    /// Directories looked in after `PATH`, where a package installs the
    /// binary off it (`/usr/lib/postgresql/*/bin`: one `*` component allowed).
    pub search: Vec<String>,
}

impl Prerequisite {
    pub fn applies_to(&self, environment: &str) -> bool {
        self.environments.is_empty() || self.environments.iter().any(|e| e == environment)
    }

    /// Where the binary is: on `PATH`, else in a `search` directory (the
    /// newest match of a `*` first).
    pub fn find(&self) -> Option<std::path::PathBuf> {
        crate::path::find_on_path(&self.binary).or_else(|| {
            self.search
                .iter()
                .find_map(|dir| crate::path::find_in(dir, &self.binary))
        })
    }

    /// The package that provides it under `manager` (`apt`, `dnf`, `brew`).
    pub fn package(&self, manager: &str) -> Option<&str> {
        self.packages.get(manager).map(String::as_str)
    }
}

/// What a manifest declares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Declared {
    /// The environments, default first (a plugin crate; empty for the test suite).
    pub environments: Vec<String>,
    /// Further packages cargo builds with the plugin (its service binaries).
    pub build_with: Vec<String>,
    pub prerequisites: Vec<Prerequisite>,
}

impl Declared {
    /// The environment a config without `env=` runs in.
    pub fn default_environment(&self) -> Option<&str> {
        self.environments.first().map(String::as_str)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("could not read {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path} is not valid TOML: {err}")]
    Toml { path: PathBuf, err: String },
    #[error("{path}: {table}: {problem}")]
    Invalid {
        path: PathBuf,
        table: String,
        problem: String,
    },
}

const MANAGERS: [&str; 3] = ["apt", "dnf", "brew"];

impl Declared {
    /// `[package.metadata.demo-host]` of a plugin crate's manifest; empty when absent.
    pub fn of_package(manifest: &Path) -> Result<Declared, ManifestError> {
        Self::read(manifest, "package", "prerequisites")
    }

    /// `[workspace.metadata.demo-host]`'s `test-prerequisites` of the workspace manifest.
    pub fn of_workspace_tests(manifest: &Path) -> Result<Declared, ManifestError> {
        Self::read(manifest, "workspace", "test-prerequisites")
    }

    fn read(manifest: &Path, root: &str, key: &str) -> Result<Declared, ManifestError> {
        let text = std::fs::read_to_string(manifest).map_err(|err| ManifestError::Io {
            path: manifest.to_path_buf(),
            err,
        })?;
        Self::parse(&text, manifest, root, key)
    }

    pub fn parse(
        text: &str,
        manifest: &Path,
        root: &str,
        key: &str,
    ) -> Result<Declared, ManifestError> {
        let value: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ManifestError::Toml {
                    path: manifest.to_path_buf(),
                    err: e.to_string(),
                })?;
        let table_name = format!("[{root}.metadata.demo-host]");
        let invalid = |problem: String| ManifestError::Invalid {
            path: manifest.to_path_buf(),
            table: table_name.clone(),
            problem,
        };
        let Some(meta) = value
            .get(root)
            .and_then(|r| r.get("metadata"))
            .and_then(|m| m.get("demo-host"))
        else {
            return Ok(Declared::default());
        };
        let meta = meta
            .as_table()
            .ok_or_else(|| invalid("must be a table".into()))?;
        let strings = |field: &str| -> Result<Vec<String>, ManifestError> {
            match meta.get(field) {
                None => Ok(Vec::new()),
                Some(v) => string_list(v)
                    .ok_or_else(|| invalid(format!("`{field}` must be a list of strings"))),
            }
        };
        let environments = strings("environments")?;
        let build_with = strings("build-with")?;
        let mut prerequisites = Vec::new();
        if let Some(list) = meta.get(key) {
            let list = list.as_array().ok_or_else(|| {
                invalid(format!("`{key}` must be an array of tables ([[…{key}]])"))
            })?;
            for (i, entry) in list.iter().enumerate() {
                let at = |problem: &str| invalid(format!("{key} #{}: {problem}", i + 1));
                let entry = entry.as_table().ok_or_else(|| at("must be a table"))?;
                let text = |field: &str| {
                    entry
                        .get(field)
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                };
                let binary = text("binary")
                    .filter(|b| !b.trim().is_empty())
                    .ok_or_else(|| at("needs `binary = \"<program on PATH>\"`"))?;
                let why = text("why").unwrap_or_default();
                let optional = match entry.get("optional") {
                    None => false,
                    Some(v) => v
                        .as_bool()
                        .ok_or_else(|| at("`optional` must be true or false"))?,
                };
                let environments = match entry.get("environments") {
                    None => Vec::new(),
                    Some(v) => string_list(v)
                        .ok_or_else(|| at("`environments` must be a list of strings"))?,
                };
                let mut packages = BTreeMap::new();
                for m in MANAGERS {
                    if let Some(v) = entry.get(m) {
                        let p = v
                            .as_str()
                            .ok_or_else(|| at(&format!("`{m}` must be a package name")))?;
                        packages.insert(m.to_string(), p.to_string());
                    }
                }
                let search = match entry.get("search") {
                    None => Vec::new(),
                    Some(v) => string_list(v)
                        .ok_or_else(|| at("`search` must be a list of directories"))?,
                };
                if let Some(unknown) = entry.keys().find(|k| {
                    !["binary", "why", "environments", "optional", "search"].contains(&k.as_str())
                        && !MANAGERS.contains(&k.as_str())
                }) {
                    return Err(at(&format!(
                        "unknown key `{unknown}` (known: binary, why, environments, optional, search, {})",
                        MANAGERS.join(", ")
                    )));
                }
                prerequisites.push(Prerequisite {
                    binary,
                    why,
                    environments,
                    packages,
                    optional,
                    search,
                });
            }
        }
        Ok(Declared {
            environments,
            build_with,
            prerequisites,
        })
    }
}

fn string_list(v: &toml::Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLUGIN: &str = r#"
[package]
name = "subject-x"

[package.metadata.demo-host]
environments = ["local", "compose"]
build-with = ["x-node"]

[[package.metadata.demo-host.prerequisites]]
binary = "redis-server"
why = "Redis"
environments = ["local"]
apt = "redis-server"
brew = "redis"

[[package.metadata.demo-host.prerequisites]]
binary = "docker-compose"
environments = ["compose"]
apt = "docker-compose"
"#;

    fn parse(text: &str) -> Result<Declared, ManifestError> {
        Declared::parse(text, Path::new("Cargo.toml"), "package", "prerequisites")
    }

    #[test]
    fn reads_environments_build_with_and_prerequisites() {
        let d = parse(PLUGIN).unwrap();
        assert_eq!(d.environments, ["local", "compose"]);
        assert_eq!(d.default_environment(), Some("local"));
        assert_eq!(d.build_with, ["x-node"]);
        assert_eq!(d.prerequisites.len(), 2);
        let redis = &d.prerequisites[0];
        assert_eq!(redis.binary, "redis-server");
        assert_eq!(redis.package("apt"), Some("redis-server"));
        assert_eq!(redis.package("brew"), Some("redis"));
        assert_eq!(redis.package("dnf"), None);
        assert!(redis.applies_to("local") && !redis.applies_to("compose"));
    }

    #[test]
    fn a_manifest_without_the_table_declares_nothing() {
        assert_eq!(
            parse("[package]\nname = \"a\"\n").unwrap(),
            Declared::default()
        );
    }

    #[test]
    fn bad_entries_name_the_entry_and_the_problem() {
        let e = parse("[[package.metadata.demo-host.prerequisites]]\nwhy = \"x\"\n").unwrap_err();
        assert!(
            e.to_string().contains("prerequisites #1: needs `binary"),
            "{e}"
        );
        let e = parse(
            "[[package.metadata.demo-host.prerequisites]]\nbinary = \"x\"\napt-get = \"x\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown key `apt-get`"), "{e}");
    }

    #[test]
    fn broken_toml_names_the_line() {
        let e = parse("[package]\nname = \n").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("Cargo.toml is not valid TOML") && text.contains("line 2"),
            "{text}"
        );
    }
}
