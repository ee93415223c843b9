//! `demo-host new NAME [--path DIR]`: a plugin crate of its own, outside this
//! workspace, that builds as it is and has a test loading it across the ABI.
//!
//! The code is the example plugin's (the guide's template), renamed, so the
//! scaffold cannot drift from what the host's own tests prove works.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

const EXAMPLE_SOURCE: &str = include_str!("../../../plugins/example/src/lib.rs");
/// The workspace's lock: the new crate starts from the versions tested here
/// (cargo drops what it does not use), so it also builds offline.
const WORKSPACE_LOCK: &str = include_str!("../../../Cargo.lock");
const ABI_STABLE: &str = "0.11.3";

/// What `new` was asked for.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    pub name: String,
    /// The directory the crate directory goes into.
    pub parent: PathBuf,
    /// The plugin-api crate to depend on by path.
    pub plugin_api: PathBuf,
}

/// The plugin-api this host was built from, when its source is still there.
pub fn default_plugin_api() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugin-api")
        .canonicalize()
        .ok()
        .filter(|p| p.join("Cargo.toml").is_file())
}

/// Writes the crate; returns its directory.
pub fn scaffold(req: &NewPlugin) -> Result<PathBuf> {
    check_name(&req.name)?;
    let dir = req.parent.join(&req.name);
    // A relative --plugin-api is taken from here, or else from the new crate.
    let api = req
        .plugin_api
        .canonicalize()
        .or_else(|e| match req.plugin_api.is_relative() {
            true => dir.join(&req.plugin_api).canonicalize(),
            false => Err(e),
        })
        .with_context(|| {
            format!(
                "plugin-api not found at {} (from here, or from {})",
                req.plugin_api.display(),
                dir.display()
            )
        })?;
    if !api.join("Cargo.toml").is_file() {
        bail!("{} holds no Cargo.toml: pass --plugin-api <the plugin-api crate of a demo-host checkout>", api.display());
    }
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{} already exists and is not empty: choose another NAME or --path",
            dir.display()
        );
    }
    let snake = req.name.replace('-', "_");
    let api_in_manifest = in_same_repository(&dir, &api).unwrap_or(api.clone());
    let files = [
        ("Cargo.toml", manifest(&req.name, &snake, &api_in_manifest)),
        ("Cargo.lock", WORKSPACE_LOCK.to_string()),
        ("src/lib.rs", source(&req.name)),
        ("tests/loads.rs", test_source(&req.name)),
        ("README.md", readme(&req.name)),
        (".gitignore", "/target\n".to_string()),
    ];
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// `api` relative to the new crate `dir` when both are in one git checkout (a
/// plugin kept beside the host, as examples/ are), so the checkout can move.
fn in_same_repository(dir: &Path, api: &Path) -> Option<PathBuf> {
    let parent = dir.parent()?.canonicalize().ok()?;
    let root = parent.ancestors().find(|a| a.join(".git").exists())?;
    let api_rest = api.strip_prefix(root).ok()?;
    let crate_rest = parent.join(dir.file_name()?);
    let crate_rest = crate_rest.strip_prefix(root).ok()?;
    let up = crate_rest.components().count();
    let mut rel = PathBuf::new();
    for _ in 0..up {
        rel.push("..");
    }
    Some(rel.join(api_rest))
}

fn check_name(name: &str) -> Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        bail!("`{name}` is not a plugin name: use lowercase letters, digits and dashes, starting with a letter (e.g. `pgreplica`)");
    }
    Ok(())
}

fn camel(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn manifest(name: &str, snake: &str, api: &Path) -> String {
    let api = api.display();
    format!(
        r#"[package]
name = "subject-{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
name = "subject_{snake}"          # the host finds libsubject_{snake}.so
crate-type = ["cdylib", "rlib"]   # cdylib for the host, rlib for unit tests

[dependencies]
plugin-api = {{ path = "{api}" }}
abi_stable = "{ABI_STABLE}"        # the export macro names this crate

[dev-dependencies]
# `testing`: build this crate's cdylib and load it the way the host does.
plugin-api = {{ path = "{api}", features = ["testing"] }}

# Read by demo-host before it builds this crate: environments (the first is
# the default) and what each needs on the machine. See plugin-api/README.md §1.
[package.metadata.demo-host]
environments = ["inprocess"]

# [[package.metadata.demo-host.prerequisites]]
# binary = "postgres"
# why = "the local environment starts a primary and a replica"
# environments = ["local"]
# apt = "postgresql"

# Never abort on panic: the ABI turns panics into errors by unwinding.
[profile.dev]
panic = "unwind"

[profile.release]
panic = "unwind"

# A crate of its own, even when its directory sits inside another workspace.
[workspace]
"#
    )
}

fn source(name: &str) -> String {
    let camel = camel(name);
    EXAMPLE_SOURCE
        .replace("ExampleSubject", &format!("{camel}Subject"))
        .replace("id: \"example\".into()", &format!("id: \"{name}\".into()"))
        .replace(
            "name: \"Example replicated counter\".into()",
            &format!("name: \"{camel} (from the demo-host template)\".into()"),
        )
        .replace("EXAMPLE_PLUGIN_BUILD_TAG", "PLUGIN_BUILD_TAG")
        .replace(
            "example plugin was asked to panic",
            "plugin was asked to panic",
        )
}

fn test_source(name: &str) -> String {
    format!(
        r#"//! The plugin as the host loads it: built as a cdylib, opened with the
//! ABI checks, driven across the boundary.

use plugin_api::testing;
use plugin_api::{{InvariantStatus, NodeStatus}};
use std::time::Duration;

#[test]
fn it_loads_describes_itself_and_runs_a_fault_across_the_abi() {{
    let plugin = testing::build_and_load(env!("CARGO_MANIFEST_DIR")).unwrap();
    assert_eq!(plugin.description.info.id, "{name}");
    assert!(!plugin.description.chapters.is_empty());

    let subject = plugin.instance("").unwrap();
    subject.setup().unwrap();
    subject
        .health_until(Duration::from_secs(10), |h| {{
            h.nodes.iter().all(|n| n.status == NodeStatus::Up)
        }})
        .unwrap();

    let fault = subject.inject("crash", &[]).unwrap();
    subject
        .health_until(Duration::from_secs(10), |h| {{
            h.invariants.iter().any(|i| i.status == InvariantStatus::Violated)
        }})
        .unwrap();
    // The declared fix works while the fault is still in effect.
    subject
        .remediate("restart-replica", &[], &fault.targets[0])
        .unwrap();
    subject
        .health_until(Duration::from_secs(10), |h| {{
            h.invariants.iter().all(|i| i.status == InvariantStatus::Ok)
        }})
        .unwrap();
    subject.recover(&fault.fault_id).unwrap();
    subject
        .health_until(Duration::from_secs(10), |h| {{
            h.nodes.iter().all(|n| n.status == NodeStatus::Up)
        }})
        .unwrap();
    // Teardown runs when `subject` is dropped, also if an assertion failed.
}}
"#
    )
}

fn readme(name: &str) -> String {
    format!(
        "# subject-{name}\n\nA demo-host subject plugin, scaffolded by `demo-host new {name}` from the \
example plugin. The guide is `plugin-api/README.md` of the demo-host checkout.\n\n\
```sh\ncargo test                                    # builds the cdylib and loads it across the ABI\n\
demo-host inspect .                           # what the host sees\n\
demo-host run --plugin . --headless           # plays every chapter\n```\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_turned_into_rust_names() {
        assert!(check_name("pg-replica").is_ok());
        for bad in ["", "Pg", "1pg", "pg_replica", "pg-", "pg replica"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(camel("pg-replica"), "PgReplica");
    }

    #[test]
    fn the_source_is_the_example_renamed() {
        let s = source("pg-replica");
        assert!(s.contains("export_subject!(PgReplicaSubject)"));
        assert!(s.contains("id: \"pg-replica\".into()"));
        assert!(!s.contains("ExampleSubject") && !s.contains("\"example\""));
    }

    #[test]
    fn a_crate_kept_in_the_checkout_names_plugin_api_by_a_relative_path() {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("plugin-api")).unwrap();
        std::fs::create_dir_all(root.join("examples")).unwrap();
        let api = root.join("plugin-api");
        assert_eq!(
            in_same_repository(&root.join("examples/pg"), &api),
            Some(PathBuf::from("../../plugin-api"))
        );
        let elsewhere = tempfile::tempdir().unwrap();
        assert_eq!(in_same_repository(&elsewhere.path().join("pg"), &api), None);
    }
}
