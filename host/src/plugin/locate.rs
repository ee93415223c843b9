//! Finding plugin libraries: a `.so` path, a plugin crate directory (built on
//! demand), or a name on the search path (`./plugins`, `DEMO_HOST_PLUGIN_PATH`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

pub const PATH_VAR: &str = "DEMO_HOST_PLUGIN_PATH";

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("plugin `{arg}` does not exist (looked at {looked}); give a .so file, a plugin crate directory such as plugins/ratelimiter, or a name found by `demo-host list`")]
    NotFound { arg: String, looked: String },
    #[error("directory {0} holds no plugin: no Cargo.toml of a cdylib crate and no lib*.so file; point --plugin at a plugin crate or its built library")]
    NoPluginInDir(PathBuf),
    #[error("directory {dir} holds several libraries ({names}); name the one to load")]
    Ambiguous { dir: PathBuf, names: String },
    #[error("plugin crate {dir} is not built (no {lib} in {searched}); build it with:\n    {command}\nor run demo-host without --no-build, which builds it")]
    NotBuilt {
        dir: PathBuf,
        lib: String,
        searched: String,
        command: String,
    },
    #[error("building plugin crate {dir} failed (`{command}` exited with {status}); fix the build errors above and try again")]
    BuildFailed {
        dir: PathBuf,
        command: String,
        status: String,
    },
    #[error("could not read {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path} is not a valid Cargo.toml: {err}")]
    BadManifest { path: PathBuf, err: String },
    #[error(transparent)]
    Metadata(#[from] prereq::ManifestError),
}

/// A plugin crate directory: what cargo builds and what the library is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCrate {
    pub dir: PathBuf,
    pub package: String,
    /// File name of the built library (`libsubject_x.so`).
    pub lib_file: String,
    /// `[package.metadata.demo-host]`: environments, prerequisites, packages built with it.
    pub declared: prereq::Declared,
    /// Where cargo puts what it builds for this crate (`cargo metadata`'s
    /// `target_directory`: honours `CARGO_TARGET_DIR`, `.cargo/config.toml`
    /// and crates outside this workspace).
    pub target_dir: PathBuf,
}

impl PluginCrate {
    /// Reads `dir/Cargo.toml`; `None` when it is not a cdylib crate.
    pub fn read(dir: &Path) -> Result<Option<PluginCrate>, LocateError> {
        let path = dir.join("Cargo.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(LocateError::Io { path, err }),
        };
        let manifest: toml::Value =
            text.parse()
                .map_err(|e: toml::de::Error| LocateError::BadManifest {
                    path: path.clone(),
                    err: e.to_string(),
                })?;
        let Some(package) = manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
        else {
            return Ok(None);
        };
        let lib = manifest.get("lib");
        let is_cdylib = lib
            .and_then(|l| l.get("crate-type"))
            .and_then(|t| t.as_array())
            .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("cdylib")));
        if !is_cdylib {
            return Ok(None);
        }
        let lib_name = lib
            .and_then(|l| l.get("name"))
            .and_then(|n| n.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| package.replace('-', "_"));
        let declared = prereq::Declared::parse(&text, &path, "package", "prerequisites")?;
        Ok(Some(PluginCrate {
            dir: dir.to_path_buf(),
            package: package.to_string(),
            lib_file: format!("lib{lib_name}.so"),
            declared,
            target_dir: target_dir(dir),
        }))
    }

    /// The packages one `cargo build` builds: the plugin and what it declares in `build-with`.
    fn packages(&self) -> Vec<&str> {
        std::iter::once(self.package.as_str())
            .chain(self.declared.build_with.iter().map(String::as_str))
            .collect()
    }

    pub fn build_command(&self) -> String {
        let release = if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        };
        let packages: Vec<String> = self.packages().iter().map(|p| format!(" -p {p}")).collect();
        format!("cargo build{release}{}", packages.concat())
    }

    /// The built library, newest first among the profile directories.
    pub fn built_library(&self) -> Option<PathBuf> {
        profile_dirs(&self.target_dir)
            .into_iter()
            .map(|d| d.join(&self.lib_file))
            .filter(|p| p.is_file())
            .max_by_key(|p| mtime(p))
    }

    /// True when a source file of the crate is newer than the built library.
    pub fn is_stale(&self, lib: &Path) -> bool {
        older_than_sources(lib, &[&self.dir])
    }

    pub fn build(&self) -> Result<PathBuf, LocateError> {
        let mut cmd = Command::new(cargo());
        cmd.arg("build").current_dir(&self.dir);
        for p in self.packages() {
            cmd.arg("-p").arg(p);
        }
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        // Said before cargo starts: a first build takes minutes, and its progress follows.
        eprintln!(
            "building plugin crate {} ({}, {} profile) with `{}`: a first build takes a few minutes",
            self.package,
            self.dir.display(),
            if cfg!(debug_assertions) { "dev" } else { "release" },
            self.build_command()
        );
        let status = cmd.status().map_err(|e| LocateError::BuildFailed {
            dir: self.dir.clone(),
            command: self.build_command(),
            status: e.to_string(),
        })?;
        if !status.success() {
            return Err(LocateError::BuildFailed {
                dir: self.dir.clone(),
                command: self.build_command(),
                status: status.to_string(),
            });
        }
        self.built_library().ok_or_else(|| self.not_built())
    }

    fn not_built(&self) -> LocateError {
        LocateError::NotBuilt {
            dir: self.dir.clone(),
            lib: self.lib_file.clone(),
            searched: profile_dirs(&self.target_dir)
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            command: self.build_command(),
        }
    }
}

/// Whether to run cargo for a plugin crate whose library is missing or stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildPolicy {
    /// Build when missing or older than its sources.
    IfNeeded,
    /// Never build; a missing library is an error naming the build command.
    Never,
}

/// The plugin crate `--plugin` names, when it names a crate directory.
pub fn plugin_crate(arg: &Path) -> Result<Option<PluginCrate>, LocateError> {
    match existing(arg)? {
        found if found.is_dir() => PluginCrate::read(&found),
        _ => Ok(None),
    }
}

/// The first of the places `arg` may refer to that exists.
fn existing(arg: &Path) -> Result<PathBuf, LocateError> {
    let candidates = candidates(arg);
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or_else(|| LocateError::NotFound {
            arg: arg.display().to_string(),
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Resolves `--plugin` to a library file.
pub fn resolve(arg: &Path, policy: BuildPolicy) -> Result<PathBuf, LocateError> {
    let found = &existing(arg)?;
    if found.is_file() {
        return Ok(found.clone());
    }
    if let Some(krate) = PluginCrate::read(found)? {
        return match (krate.built_library(), policy) {
            (Some(lib), BuildPolicy::IfNeeded) if krate.is_stale(&lib) => krate.build(),
            (Some(lib), _) => Ok(lib),
            (None, BuildPolicy::IfNeeded) => krate.build(),
            (None, BuildPolicy::Never) => Err(krate.not_built()),
        };
    }
    let libs = libraries_in(found);
    match libs.len() {
        0 => Err(LocateError::NoPluginInDir(found.clone())),
        1 => Ok(libs[0].clone()),
        _ => Err(LocateError::Ambiguous {
            dir: found.clone(),
            names: libs
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The places a bare name may refer to, in order.
fn candidates(arg: &Path) -> Vec<PathBuf> {
    let mut out = vec![arg.to_path_buf()];
    let is_bare = arg.components().count() == 1 && arg.extension().is_none();
    if is_bare {
        let name = arg.to_string_lossy();
        for dir in search_path() {
            out.push(dir.join(&*name));
            out.push(dir.join(format!("libsubject_{name}.so")));
        }
    }
    out
}

/// `./plugins`, then each entry of `DEMO_HOST_PLUGIN_PATH`, then the host binary's directory.
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("plugins")];
    if let Some(var) = std::env::var_os(PATH_VAR) {
        dirs.extend(std::env::split_paths(&var).filter(|p| !p.as_os_str().is_empty()));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir);
    }
    dirs
}

/// A plugin found on the search path, for `demo-host list` and the picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    /// What to pass to `--plugin`.
    pub location: PathBuf,
    /// The library, when built.
    pub library: Option<PathBuf>,
    pub build_command: Option<String>,
}

/// Every plugin on the search path: crate directories and `libsubject_*.so` files.
pub fn discover() -> Vec<Found> {
    let mut found: Vec<Found> = Vec::new();
    for dir in search_path() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                if let Ok(Some(krate)) = PluginCrate::read(&path) {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    found.push(Found {
                        name,
                        location: path.clone(),
                        library: krate.built_library(),
                        build_command: Some(krate.build_command()),
                    });
                }
            } else if let Some(name) = subject_name(&path) {
                let canonical = path.canonicalize().ok();
                let duplicate = found
                    .iter()
                    .any(|f| f.library.as_ref().and_then(|l| l.canonicalize().ok()) == canonical);
                if !duplicate {
                    found.push(Found {
                        name,
                        location: path.clone(),
                        library: Some(path),
                        build_command: None,
                    });
                }
            }
        }
    }
    found
}

fn subject_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    file.strip_prefix("libsubject_")?
        .strip_suffix(".so")
        .map(str::to_string)
}

fn libraries_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut libs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "so"))
        .collect();
    libs.sort();
    libs
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The crate's target directory as cargo sees it; without cargo on the
/// machine, `CARGO_TARGET_DIR` or the enclosing workspace's `target/`.
fn target_dir(crate_dir: &Path) -> PathBuf {
    cargo_target_dir(crate_dir).unwrap_or_else(|| match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => workspace_root(crate_dir).join("target"),
    })
}

/// `cargo metadata --no-deps`'s `target_directory` (it resolves no dependency and reads no network).
fn cargo_target_dir(crate_dir: &Path) -> Option<PathBuf> {
    let out = Command::new(cargo())
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    meta.get("target_directory")?.as_str().map(PathBuf::from)
}

/// `debug` and `release` under `target`, this build's profile first.
fn profile_dirs(target: &Path) -> Vec<PathBuf> {
    let profiles: [&str; 2] = if cfg!(debug_assertions) {
        ["debug", "release"]
    } else {
        ["release", "debug"]
    };
    profiles.iter().map(|p| target.join(p)).collect()
}

fn workspace_root(crate_dir: &Path) -> PathBuf {
    let start = crate_dir
        .canonicalize()
        .unwrap_or_else(|_| crate_dir.to_path_buf());
    start
        .ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
        })
        .unwrap_or(&start)
        .to_path_buf()
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// True when a `Cargo.toml` or `src/` file of one of `crates` is newer than
/// the artifact `built`, or `built` is missing.
pub fn older_than_sources<P: AsRef<Path>>(built: &Path, crates: &[P]) -> bool {
    let newest = crates.iter().map(|c| newest_source(c.as_ref())).max();
    newest.is_some_and(|newest| newest > mtime(built))
}

fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = mtime(&dir.join("Cargo.toml"));
    let mut stack = vec![dir.join("src")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                newest = newest.max(mtime(&p));
            }
        }
    }
    newest
}
