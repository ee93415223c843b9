//! A running plugin instance, called off the render loop with a timeout.
//!
//! Each call runs on a thread of its own rather than tokio's blocking pool:
//! a plugin call that never returns must not hold up the runtime's shutdown.
//! Such a call is abandoned after its timeout, and its thread and the instance
//! it references stay alive until the process exits: one leaked thread per
//! stuck call, reported in the event log.

use super::loader::LoadedPlugin;
use plugin_api::client::Instance;
use plugin_api::{ActiveFault, HealthSnapshot, Level, ParamValue, PluginError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Per-call time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub create: Duration,
    pub setup: Duration,
    pub health: Duration,
    pub inject: Duration,
    pub recover: Duration,
    pub step: Duration,
    pub teardown: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            create: Duration::from_secs(10),
            setup: Duration::from_secs(120),
            health: Duration::from_secs(3),
            inject: Duration::from_secs(30),
            recover: Duration::from_secs(60),
            step: Duration::from_secs(60),
            teardown: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// Every limit set to `d` (tests, impatient demos).
    pub fn all(d: Duration) -> Self {
        Timeouts {
            create: d,
            setup: d,
            health: d,
            inject: d,
            recover: d,
            step: d,
            teardown: d,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum CallError {
    #[error("plugin call `{call}` failed: {err}")]
    Plugin {
        call: &'static str,
        err: PluginError,
    },
    #[error("plugin call `{call}` did not return within {after:?}; the plugin seems stuck (its thread is abandoned); try `r` to reload it or check the subject")]
    TimedOut { call: &'static str, after: Duration },
    #[error("plugin call `{call}` could not start a thread: {detail}")]
    Thread { call: &'static str, detail: String },
}

impl CallError {
    pub fn is_panic(&self) -> bool {
        matches!(
            self,
            CallError::Plugin {
                err: PluginError::Panicked(_),
                ..
            }
        )
    }
}

/// A plugin instance plus the loaded plugin it came from.
#[derive(Clone)]
pub struct Session {
    pub plugin: LoadedPlugin,
    pub config: String,
    instance: Arc<Instance>,
    pub timeouts: Timeouts,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("plugin", &self.plugin)
            .finish()
    }
}

impl Session {
    /// Creates an instance (does not run `setup`). Plugin log lines reach `log`.
    pub async fn create(
        plugin: LoadedPlugin,
        config: &str,
        timeouts: Timeouts,
        log: impl Fn(Level, &str) + Send + Sync + 'static,
    ) -> Result<Session, CallError> {
        let module = plugin.module;
        let dir = plugin.library_dir();
        let cfg = config.to_string();
        let instance = run_off_loop("create", timeouts.create, move || {
            module.create(&cfg, &dir, log)
        })
        .await?;
        Ok(Session {
            plugin,
            config: config.to_string(),
            instance: Arc::new(instance),
            timeouts,
        })
    }

    pub fn subject_id(&self) -> &str {
        &self.plugin.description.info.id
    }

    async fn call<T: Send + 'static>(
        &self,
        call: &'static str,
        limit: Duration,
        f: impl FnOnce(&Instance) -> Result<T, PluginError> + Send + 'static,
    ) -> Result<T, CallError> {
        let instance = Arc::clone(&self.instance);
        run_off_loop(call, limit, move || f(&instance)).await
    }

    pub async fn setup(&self) -> Result<(), CallError> {
        self.call("setup", self.timeouts.setup, |i| i.setup()).await
    }

    pub async fn teardown(&self) -> Result<(), CallError> {
        self.call("teardown", self.timeouts.teardown, |i| i.teardown())
            .await
    }

    pub async fn health(&self) -> Result<HealthSnapshot, CallError> {
        self.call("health", self.timeouts.health, |i| i.health())
            .await
    }

    pub async fn inject(
        &self,
        action: &str,
        params: Vec<(String, ParamValue)>,
    ) -> Result<ActiveFault, CallError> {
        let action = action.to_string();
        self.call("inject", self.timeouts.inject, move |i| {
            i.inject(&action, &params)
        })
        .await
    }

    pub async fn recover(&self, fault_id: &str) -> Result<(), CallError> {
        let id = fault_id.to_string();
        self.call("recover", self.timeouts.recover, move |i| i.recover(&id))
            .await
    }

    pub async fn run_step(&self, step: &str) -> Result<String, CallError> {
        let step = step.to_string();
        self.call("step", self.timeouts.step, move |i| i.run_step(&step))
            .await
    }

    pub async fn recover_leftover(&self, undo: &str) -> Result<(), CallError> {
        let undo = undo.to_string();
        self.call("recover_leftover", self.timeouts.recover, move |i| {
            i.recover_leftover(&undo)
        })
        .await
    }

    /// Calls `health` on the current thread (benchmarks measure the ABI itself).
    pub fn health_blocking(&self) -> Result<HealthSnapshot, PluginError> {
        self.instance.health()
    }
}

/// Runs `f` on its own thread and waits for it at most `limit`.
async fn run_off_loop<T: Send + 'static>(
    call: &'static str,
    limit: Duration,
    f: impl FnOnce() -> Result<T, PluginError> + Send + 'static,
) -> Result<T, CallError> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("plugin-{call}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| CallError::Thread {
            call,
            detail: e.to_string(),
        })?;
    match tokio::time::timeout(limit, rx).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(err))) => Err(CallError::Plugin { call, err }),
        // The sender vanished without a value: the thread died (a panic the plugin did not catch).
        Ok(Err(_)) => Err(CallError::Plugin {
            call,
            err: PluginError::Panicked("the call's thread ended without a result".into()),
        }),
        Err(_) => Err(CallError::TimedOut { call, after: limit }),
    }
}
