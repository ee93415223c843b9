//! What a plugin author implements: an ordinary Rust trait over the plain model.

use crate::config::Config;
use crate::error::PluginResult;
use crate::model::{ActiveFault, HealthSnapshot, Level, RemedyOutcome, SubjectDescription};
use crate::params::Params;
use std::path::PathBuf;
use std::sync::Arc;

/// A subject under test. `export_subject!(MySubject)` makes it a plugin.
///
/// Every method is called by the host on a worker thread with a timeout, so a
/// method may block (start processes, wait for a port). The instance is shared:
/// `health` is polled while `inject` may be running, hence `&self` and `Sync`.
/// Async code runs on a runtime the instance owns (see the plugin guide).
pub trait Subject: Send + Sync + Sized + 'static {
    /// Static metadata: info, chapters, chaos actions, vocabulary. Must not do I/O.
    fn describe() -> SubjectDescription;

    /// Builds an instance from the config string. Should be cheap: heavy work goes in `setup`.
    fn create(ctx: InstanceContext) -> PluginResult<Self>;

    /// Brings the environment up (start processes, check endpoints).
    fn setup(&self) -> PluginResult<()>;

    /// Recovers every active fault and stops what `setup` started.
    fn teardown(&self) -> PluginResult<()>;

    fn health(&self) -> PluginResult<HealthSnapshot>;

    /// Injects a chaos action. `params` are already validated against the action's specs.
    fn inject(&self, action: &str, params: &Params) -> PluginResult<ActiveFault>;

    /// Undoes one fault; recovering a fault that already ended is not an error.
    fn recover(&self, fault_id: &str) -> PluginResult<()>;

    /// Runs one of the subject's own chapter steps (`OnEnter::Step`).
    fn run_step(&self, step: &str) -> PluginResult<String> {
        Err(crate::PluginError::Unsupported(format!("step `{step}`")))
    }

    /// Undoes a fault recorded by an earlier process that did not live to recover it.
    fn recover_leftover(&self, undo: &str) -> PluginResult<()> {
        let _ = undo;
        Err(crate::PluginError::Unsupported("leftover recovery".into()))
    }

    /// Runs one of the remedies of [`SubjectDescription::remedies`] on `target`
    /// (a component id, or "" for a cluster-wide remedy). `params` are already
    /// validated. It must work while the fault is still active, as an operator's
    /// fix would. What it changes for good is undone through the returned
    /// [`RemedyOutcome::undo`] record, passed to `recover_leftover` at teardown.
    fn remediate(
        &self,
        remedy: &str,
        params: &Params,
        target: &str,
    ) -> PluginResult<RemedyOutcome> {
        let _ = (params, target);
        Err(crate::PluginError::Unsupported(format!(
            "remedy `{remedy}`"
        )))
    }
}

/// What an instance is created with.
pub struct InstanceContext {
    pub config: Config,
    pub raw_config: String,
    /// Directory of the plugin library as the host found it (binaries built with it live there).
    pub library_dir: PathBuf,
    pub log: Logger,
}

/// Where log lines go: a function of level and message.
type Sink = dyn Fn(Level, &str) + Send + Sync;

/// The host's log sink. Cheap to clone; safe to use from any thread.
#[derive(Clone)]
pub struct Logger(Arc<Sink>);

impl Logger {
    pub fn new(sink: impl Fn(Level, &str) + Send + Sync + 'static) -> Self {
        Logger(Arc::new(sink))
    }

    /// A logger that drops everything (tests, tools).
    pub fn discard() -> Self {
        Logger::new(|_, _| {})
    }

    pub fn log(&self, level: Level, message: &str) {
        (self.0)(level, message)
    }

    pub fn debug(&self, message: impl AsRef<str>) {
        self.log(Level::Debug, message.as_ref())
    }

    pub fn info(&self, message: impl AsRef<str>) {
        self.log(Level::Info, message.as_ref())
    }

    pub fn warn(&self, message: impl AsRef<str>) {
        self.log(Level::Warn, message.as_ref())
    }

    pub fn error(&self, message: impl AsRef<str>) {
        self.log(Level::Error, message.as_ref())
    }
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Logger")
    }
}
