//! Loading plugin libraries, several per process, and rebuilt ones without restart.
//!
//! abi_stable never unloads a library, and `RootModule::load_from` caches one
//! module per type, so each file is loaded on its own (`lib_header_from_path` +
//! `init_root_module`). glibc's `dlopen` returns the cached handle for a path it
//! has opened before, so a rebuilt file at the same path would come back as the
//! old code: each file is therefore loaded from a sealed copy in memory of its
//! own. The registry knows files by content hash, so an unchanged file is not
//! loaded twice.
//!
//! What a swap leaks, by design: the old library's code and static data stay
//! mapped (one copy per distinct build loaded), typically 5-20 MB of address
//! space that is mostly shared clean pages. Instances, their runtimes and their
//! threads are dropped at swap; only a call stuck past its timeout keeps its
//! instance alive (see `session`).

use super::elf::{self, ElfProblem};
use super::sanitize::{self, Warning};
use super::sealed::{CopyError, SealedCopy};
use abi_stable::library::{LibraryError, RootModuleError};
use plugin_api::client::Module;
use plugin_api::{PluginError, SubjectDescription};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin file {0} does not exist; check the path, or run `demo-host list` to see the plugins found")]
    NotFound(PathBuf),
    #[error("could not read plugin file {path}: {err}")]
    Unreadable { path: PathBuf, err: std::io::Error },
    #[error("{path} {problem}")]
    NotAPlugin { path: PathBuf, problem: ElfProblem },
    #[error("could not copy {path} into memory to load it: {err}")]
    Copy { path: PathBuf, err: CopyError },
    #[error("{0} changed while it was being loaded (is a build still writing it?); load it again when the build is done")]
    Changed(PathBuf),
    #[error("the dynamic loader refused {path}: {detail}; a library it links to may be missing (check with `ldd {path}`)")]
    Open { path: PathBuf, detail: String },
    #[error("{path} was built against plugin-api {plugin}, but this host uses plugin-api {host}; rebuild the plugin against plugin-api {host_major_minor}.x (or use a host built for {plugin})")]
    IncompatibleVersion {
        path: PathBuf,
        plugin: String,
        host: String,
        host_major_minor: String,
    },
    #[error("{path} was built against plugin-api {plugin} whose types do not match this host's plugin-api {host} (layout mismatch: {summary}); rebuild the plugin against plugin-api {host}")]
    LayoutMismatch {
        path: PathBuf,
        plugin: String,
        host: String,
        summary: String,
        /// abi_stable's full comparison of both layouts (thousands of lines).
        report: String,
    },
    #[error("{path} was built with an incompatible abi_stable ({detail}); rebuild it against plugin-api {host}")]
    AbiHeader {
        path: PathBuf,
        detail: String,
        host: String,
    },
    #[error("{path}: the plugin's root module failed while loading: {detail}")]
    RootModule { path: PathBuf, detail: String },
    #[error("{path}: the plugin could not describe itself: {err}")]
    Describe { path: PathBuf, err: PluginError },
}

/// A library that loaded and described itself.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// The path the user gave (after resolution), not the copy.
    pub source: PathBuf,
    /// The sealed copy in memory it was loaded from (`/proc/self/fd/N`).
    pub copy: PathBuf,
    pub hash: String,
    pub module: Module,
    pub description: Arc<SubjectDescription>,
    /// Time from reading the file to a described module (zero when served from the registry).
    pub load_time: Duration,
    /// What the description broke of the host's limits (it was cut to them).
    pub warnings: Vec<Warning>,
}

impl LoadedPlugin {
    /// Where binaries built with the plugin live: the directory of the original file.
    pub fn library_dir(&self) -> PathBuf {
        self.source
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("source", &self.source)
            .field("hash", &self.hash)
            .field("id", &self.description.info.id)
            .finish()
    }
}

/// Loads plugins into this process and remembers them by content hash.
#[derive(Default)]
pub struct Loader {
    loaded: Mutex<HashMap<String, LoadedPlugin>>,
}

impl Loader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads `path`: preflight, hash, copy, `dlopen`, ABI checks, describe.
    pub fn load(&self, path: &Path) -> Result<LoadedPlugin, LoadError> {
        let started = Instant::now();
        let unreadable = |err: std::io::Error| match err.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound(path.to_path_buf()),
            _ => LoadError::Unreadable {
                path: path.to_path_buf(),
                err,
            },
        };
        let file = File::open(path).map_err(unreadable)?;
        // Copied, then checked: the original is never mapped, so a build
        // truncating it meanwhile cannot crash the host (see `sealed`).
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into());
        let sealed = SealedCopy::of(path, file, &stem).map_err(|err| match err {
            CopyError::Changed => LoadError::Changed(path.to_path_buf()),
            err => LoadError::Copy {
                path: path.to_path_buf(),
                err,
            },
        })?;
        let bytes = sealed.map().map_err(|err| LoadError::Copy {
            path: path.to_path_buf(),
            err: err.into(),
        })?;
        elf::check(&bytes).map_err(|problem| LoadError::NotAPlugin {
            path: path.to_path_buf(),
            problem,
        })?;
        let hash = content_hash(&bytes);
        drop(bytes);
        if let Some(known) = self.registry().get(&hash) {
            let mut again = known.clone();
            again.source = path.to_path_buf();
            again.load_time = Duration::ZERO;
            return Ok(again);
        }
        let copy = sealed.keep();
        let (module, remediation_error) = open(path, &copy)?;
        let mut description = module.describe().map_err(|mut err| {
            sanitize::error(&path.display().to_string(), &mut err);
            LoadError::Describe {
                path: path.to_path_buf(),
                err,
            }
        })?;
        let id = description.info.id.clone();
        let name = crate::text::prefix(&id, 64);
        let mut warnings = sanitize::description(name, &mut description);
        warnings.extend(super::vocabulary::check(name, &description));
        if let Some(e) = remediation_error {
            warnings.push(sanitize::Warning {
                kind: sanitize::Kind::Remediation,
                message: format!("{name}: {e}; it loads and offers no remedies (rebuild it against plugin-api {})", plugin_api::API_VERSION),
            });
        }
        let plugin = LoadedPlugin {
            source: path.to_path_buf(),
            copy,
            hash: hash.clone(),
            module,
            description: Arc::new(description),
            load_time: started.elapsed(),
            warnings,
        };
        self.registry().insert(hash, plugin.clone());
        Ok(plugin)
    }

    /// How many distinct library files this process has loaded (each stays mapped).
    pub fn loaded_count(&self) -> usize {
        self.registry().len()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<String, LoadedPlugin>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A content hash, not a security check: it names the copy and tells a rebuild
/// from an unchanged file (XXH3 reads a 60 MB debug build in a few ms).
fn content_hash(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// The module, and why its remediation capability was not taken (if so).
fn open(
    source: &Path,
    copy: &Path,
) -> Result<(Module, Option<plugin_api::client::RemediationMismatch>), LoadError> {
    Module::open(copy)
        .map(|o| (o.module, o.remediation_error))
        .map_err(|(version, e)| map_error(source, version.as_deref(), e))
}

fn map_error(path: &Path, plugin_version: Option<&str>, err: LibraryError) -> LoadError {
    let path = path.to_path_buf();
    let host = plugin_api::API_VERSION.to_string();
    let plugin = plugin_version.unwrap_or("an unknown version").to_string();
    match err {
        LibraryError::OpenError { err, .. } => LoadError::Open {
            path,
            detail: err.to_string(),
        },
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin {
            path,
            problem: ElfProblem::NoRootModule {
                symbol: abi_stable::library::ROOT_MODULE_LOADER_NAME.to_string(),
            },
        },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadError::IncompatibleVersion {
            path,
            plugin: actual_version.to_string(),
            host: expected_version.to_string(),
            host_major_minor: format!("{}.{}", expected_version.major, expected_version.minor),
        },
        LibraryError::AbiInstability(report) => {
            let report = report.to_string();
            LoadError::LayoutMismatch {
                path,
                plugin,
                host,
                summary: summarize_layout_report(&report),
                report,
            }
        }
        LibraryError::InvalidAbiHeader(h) => LoadError::AbiHeader {
            path,
            detail: format!("{h:?}"),
            host,
        },
        LibraryError::InvalidCAbi { expected, found } => LoadError::AbiHeader {
            path,
            detail: format!("C ABI differs: expected {expected}, found {found}"),
            host,
        },
        LibraryError::RootModule { err, .. } => LoadError::RootModule {
            path,
            detail: match err {
                RootModuleError::Unwound => "it panicked".to_string(),
                RootModuleError::Returned(e) => e.to_string(),
            },
        },
        LibraryError::ParseVersionError(e) => LoadError::RootModule {
            path,
            detail: format!("its version string does not parse: {e}"),
        },
        LibraryError::Many(errors) => {
            let first = errors.into_iter().next();
            match first {
                Some(e) => map_error(&path, plugin_version, e),
                None => LoadError::RootModule {
                    path,
                    detail: "unknown loading error".into(),
                },
            }
        }
    }
}

/// Reduces abi_stable's layout comparison to its error lines:
/// `unexpected field: expected value: f64, found unit: RString`.
fn summarize_layout_report(report: &str) -> String {
    let lines: Vec<&str> = report.lines().map(str::trim).collect();
    let mut out: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(kind) = line.strip_prefix("Error:") else {
            continue;
        };
        let describe = |label: &str| {
            let start = lines[i..].iter().position(|l| *l == label)? + i;
            let field = lines[start..]
                .iter()
                .find_map(|l| l.strip_prefix("field_name:"))?;
            let ty = lines[start..]
                .iter()
                .find_map(|l| l.strip_prefix("type:"))?;
            Some(format!("{field}: {ty}"))
        };
        let entry = match (describe("Expected:"), describe("Found:")) {
            (Some(e), Some(f)) => format!("{kind}: expected {e}, found {f}"),
            _ => kind.to_string(),
        };
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    if out.is_empty() {
        "the type layouts differ".into()
    } else {
        out.join("; ")
    }
}
