//! Testing a plugin the way the host loads it (feature `testing`).
//!
//! `cargo test` builds a plugin crate as an rlib only, so a test that calls
//! the `Subject` directly never crosses the ABI. These helpers build the
//! crate's cdylib, load it through the same checked path as the host
//! ([`Module::open`]: plugin-api version and type layouts compared before any
//! plugin code runs), and drive an instance through the FFI boundary.
//!
//! ```no_run
//! use plugin_api::testing;
//! use std::time::Duration;
//!
//! let plugin = testing::build_and_load(env!("CARGO_MANIFEST_DIR")).unwrap();
//! assert_eq!(plugin.description.info.id, "mysystem");
//! let subject = plugin.instance("").unwrap();
//! subject.setup().unwrap();
//! let healthy = subject
//!     .health_until(Duration::from_secs(10), |h| h.nodes.iter().all(|n| n.status == plugin_api::NodeStatus::Up))
//!     .unwrap();
//! # let _ = healthy;
//! // teardown runs on drop, also when the test fails
//! ```

use crate::client::{Instance, Module};
use crate::model::{ActiveFault, HealthSnapshot, Level, ParamValue, SubjectDescription};
use crate::PluginError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    #[error("`{command}` failed ({status}):\n{output}")]
    Build {
        command: String,
        status: String,
        output: String,
    },
    #[error("`{command}` built no cdylib: is `crate-type = [\"cdylib\", \"rlib\"]` set in [lib]?")]
    NoLibrary { command: String },
    #[error("loading {path}: {detail}")]
    Load { path: PathBuf, detail: String },
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("no health snapshot met the condition within {0:?}; the last one: {1}")]
    Timeout(Duration, String),
}

/// A plugin library built and loaded in this process.
pub struct Loaded {
    pub library: PathBuf,
    pub module: Module,
    pub description: SubjectDescription,
}

/// Builds the cdylib of the crate at `manifest_dir` (pass
/// `env!("CARGO_MANIFEST_DIR")`) and loads it as the host would.
pub fn build_and_load(manifest_dir: impl AsRef<Path>) -> Result<Loaded, TestingError> {
    load(&build(manifest_dir.as_ref())?)
}

/// `cargo build --lib` of the crate; returns the `.so` cargo reports.
pub fn build(manifest_dir: &Path) -> Result<PathBuf, TestingError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = manifest_dir.join("Cargo.toml");
    let command = format!("{cargo} build --lib --manifest-path {}", manifest.display());
    let out = Command::new(&cargo)
        .args([
            "build",
            "--lib",
            "--message-format",
            "json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .map_err(|e| TestingError::Build {
            command: command.clone(),
            status: e.to_string(),
            output: String::new(),
        })?;
    if !out.status.success() {
        return Err(TestingError::Build {
            command,
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    // The artifact messages name the files: right for any target dir or profile.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .find(|f| f.extension().is_some_and(|e| e == "so"))
        .ok_or(TestingError::NoLibrary { command })
}

/// Loads a plugin library through [`Module::open`] and describes it.
pub fn load(library: &Path) -> Result<Loaded, TestingError> {
    let module = Module::open(library)
        .map_err(|(_, e)| TestingError::Load {
            path: library.to_path_buf(),
            detail: e.to_string(),
        })?
        .module;
    let description = module.describe()?;
    Ok(Loaded {
        library: library.to_path_buf(),
        module,
        description,
    })
}

impl Loaded {
    /// Creates an instance with `config`; its log lines are kept in [`TestInstance::log`].
    pub fn instance(&self, config: &str) -> Result<TestInstance, TestingError> {
        let log: Arc<Mutex<Vec<(Level, String)>>> = Arc::default();
        let sink = Arc::clone(&log);
        let dir = self
            .library
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let inner = self.module.create(config, &dir, move |level, message| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((level, message.to_string()));
        })?;
        Ok(TestInstance {
            inner,
            log,
            set_up: Mutex::new(false),
        })
    }
}

/// An instance across the ABI that tears itself down when dropped.
pub struct TestInstance {
    inner: Instance,
    log: Arc<Mutex<Vec<(Level, String)>>>,
    set_up: Mutex<bool>,
}

impl TestInstance {
    pub fn setup(&self) -> Result<(), TestingError> {
        *self.set_up.lock().unwrap_or_else(|p| p.into_inner()) = true;
        Ok(self.inner.setup()?)
    }

    pub fn teardown(&self) -> Result<(), TestingError> {
        *self.set_up.lock().unwrap_or_else(|p| p.into_inner()) = false;
        Ok(self.inner.teardown()?)
    }

    pub fn health(&self) -> Result<HealthSnapshot, TestingError> {
        Ok(self.inner.health()?)
    }

    /// Polls health every 50 ms until `cond` holds or `limit` passes.
    pub fn health_until(
        &self,
        limit: Duration,
        mut cond: impl FnMut(&HealthSnapshot) -> bool,
    ) -> Result<HealthSnapshot, TestingError> {
        let deadline = Instant::now() + limit;
        loop {
            let h = self.health()?;
            if cond(&h) {
                return Ok(h);
            }
            if Instant::now() >= deadline {
                return Err(TestingError::Timeout(limit, format!("{h:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn inject(
        &self,
        action: &str,
        params: &[(String, ParamValue)],
    ) -> Result<ActiveFault, TestingError> {
        Ok(self.inner.inject(action, params)?)
    }

    pub fn recover(&self, fault_id: &str) -> Result<(), TestingError> {
        Ok(self.inner.recover(fault_id)?)
    }

    pub fn run_step(&self, step: &str) -> Result<String, TestingError> {
        Ok(self.inner.run_step(step)?)
    }

    /// The plugin's log lines so far.
    pub fn log(&self) -> Vec<(Level, String)> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for TestInstance {
    fn drop(&mut self) {
        if *self.set_up.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = self.inner.teardown();
        }
    }
}
