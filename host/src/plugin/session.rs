//! A running plugin instance, called off the render loop with a timeout.
//!
//! Each call runs on a thread of its own rather than tokio's blocking pool:
//! a plugin call that never returns must not hold up the runtime's shutdown.
//! Such a call is abandoned after its timeout, and its thread and the instance
//! it references stay alive until the process exits: one leaked thread per
//! stuck call, reported in the event log.
//!
//! Health is polled on a timer, so an abandoned health call would be followed
//! by another and another, each on a thread of its own: the session lets at
//! most one health call run at a time ([`Gate`]) and answers
//! [`CallError::Busy`] meanwhile.
//!
//! Everything a call returns goes through [`sanitize`] before the host uses it;
//! the warnings wait in [`Session::take_warnings`] for the poller to log them.

use super::loader::LoadedPlugin;
use super::log_cap::LogCap;
use super::sanitize::{self, Warned};
use plugin_api::client::Instance;
use plugin_api::{ActiveFault, HealthSnapshot, Level, ParamValue, PluginError, RemedyOutcome};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// A remedy may restart a process or promote a standby.
    pub remedy: Duration,
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
            remedy: Duration::from_secs(60),
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
            remedy: d,
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
    #[error("plugin call `{call}` is still running from an earlier poll; no second one starts until it returns")]
    Busy { call: &'static str },
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
    health_gate: Gate,
    warned: Warned,
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
        let warned = Warned::default();
        warned.add(plugin.warnings.clone());
        let log = {
            let (warned, id) = (warned.clone(), plugin.description.info.id.clone());
            let cap = LogCap::default();
            move |level: Level, message: &str| {
                let (keep, warning) = cap.admit(&id);
                if let Some(w) = warning {
                    warned.add(vec![w]);
                }
                if !keep {
                    return;
                }
                let mut message = message.to_string();
                warned.add(sanitize::message(&id, &mut message));
                log(level, &message)
            }
        };
        let instance = run_off_loop("create", timeouts.create, move || {
            module.create(&cfg, &dir, log)
        })
        .await?;
        Ok(Session {
            plugin,
            config: config.to_string(),
            instance: Arc::new(instance),
            timeouts,
            health_gate: Gate::default(),
            warned,
        })
    }

    /// Warnings about the plugin's data not shown yet, each kind once per instance.
    pub fn take_warnings(&self) -> Vec<String> {
        self.warned.take()
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
        let result = run_off_loop(call, limit, move || f(&instance)).await;
        self.checked_error(result)
    }

    /// Cuts the plugin's text in an error to the limits.
    fn checked_error<T>(&self, result: Result<T, CallError>) -> Result<T, CallError> {
        result.map_err(|mut e| {
            if let CallError::Plugin { err, .. } = &mut e {
                self.warned.add(sanitize::error(self.subject_id(), err));
            }
            e
        })
    }

    pub async fn setup(&self) -> Result<(), CallError> {
        self.call("setup", self.timeouts.setup, |i| i.setup()).await
    }

    pub async fn teardown(&self) -> Result<(), CallError> {
        self.call("teardown", self.timeouts.teardown, |i| i.teardown())
            .await
    }

    pub async fn health(&self) -> Result<HealthSnapshot, CallError> {
        let instance = Arc::clone(&self.instance);
        let result = gated(
            &self.health_gate,
            "health",
            self.timeouts.health,
            move || instance.health(),
        )
        .await;
        let mut snapshot = self.checked_error(result)?;
        self.warned
            .add(sanitize::snapshot(self.subject_id(), &mut snapshot));
        self.warned.add(super::vocabulary::check_snapshot(
            self.subject_id(),
            &self.plugin.description,
            &snapshot,
        ));
        Ok(snapshot)
    }

    pub async fn inject(
        &self,
        action: &str,
        params: Vec<(String, ParamValue)>,
    ) -> Result<ActiveFault, CallError> {
        let action = action.to_string();
        let mut fault = self
            .call("inject", self.timeouts.inject, move |i| {
                i.inject(&action, &params)
            })
            .await?;
        self.warned
            .add(sanitize::fault(self.subject_id(), &mut fault));
        Ok(fault)
    }

    pub async fn recover(&self, fault_id: &str) -> Result<(), CallError> {
        let id = fault_id.to_string();
        self.call("recover", self.timeouts.recover, move |i| i.recover(&id))
            .await
    }

    pub async fn run_step(&self, step: &str) -> Result<String, CallError> {
        let step = step.to_string();
        let mut summary = self
            .call("step", self.timeouts.step, move |i| i.run_step(&step))
            .await?;
        self.warned
            .add(sanitize::message(self.subject_id(), &mut summary));
        Ok(summary)
    }

    pub async fn recover_leftover(&self, undo: &str) -> Result<(), CallError> {
        let undo = undo.to_string();
        self.call("recover_leftover", self.timeouts.recover, move |i| {
            i.recover_leftover(&undo)
        })
        .await
    }

    /// Runs a declared remedy (the plugin validates its id and parameters).
    pub async fn remediate(
        &self,
        remedy: &str,
        params: Vec<(String, ParamValue)>,
        target: &str,
    ) -> Result<RemedyOutcome, CallError> {
        let (remedy, target) = (remedy.to_string(), target.to_string());
        let mut outcome = self
            .call("remediate", self.timeouts.remedy, move |i| {
                i.remediate(&remedy, &params, &target)
            })
            .await?;
        self.warned
            .add(sanitize::message(self.subject_id(), &mut outcome.summary));
        Ok(outcome)
    }

    /// Calls `health` on the current thread (benchmarks measure the ABI itself).
    pub fn health_blocking(&self) -> Result<HealthSnapshot, PluginError> {
        self.instance.health()
    }
}

/// Lets one call of a kind run at a time, counting an abandoned call until its
/// thread really returns.
#[derive(Debug, Default, Clone)]
struct Gate(Arc<AtomicBool>);

/// Held by the call's thread; opens the gate when dropped.
struct Pass(Arc<AtomicBool>);

impl Drop for Pass {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Gate {
    fn enter(&self) -> Option<Pass> {
        self.0
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Pass(Arc::clone(&self.0)))
    }
}

/// [`run_off_loop`] behind `gate`: [`CallError::Busy`] while an earlier call
/// (returned, timed out or not) is still running on its thread.
async fn gated<T: Send + 'static>(
    gate: &Gate,
    call: &'static str,
    limit: Duration,
    f: impl FnOnce() -> Result<T, PluginError> + Send + 'static,
) -> Result<T, CallError> {
    let pass = gate.enter().ok_or(CallError::Busy { call })?;
    run_off_loop(call, limit, move || {
        let _pass = pass;
        f()
    })
    .await
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    /// A health call that outlives its timeout: while its thread runs, later
    /// polls start nothing; once it returns, the next poll runs.
    #[tokio::test]
    async fn no_second_health_call_starts_while_one_is_in_flight() {
        let gate = Gate::default();
        let started = Arc::new(AtomicUsize::new(0));
        let (release, wait) = mpsc::channel::<()>();
        let (entered_tx, entered) = mpsc::channel::<()>();
        let slow = {
            let started = Arc::clone(&started);
            move || {
                started.fetch_add(1, Ordering::SeqCst);
                let _ = entered_tx.send(());
                let _ = wait.recv();
                Ok(1)
            }
        };
        let first = gated(&gate, "health", Duration::from_millis(50), slow).await;
        assert_eq!(
            first,
            Err(CallError::TimedOut {
                call: "health",
                after: Duration::from_millis(50)
            })
        );
        entered.recv().expect("the first call started");
        for _ in 0..3 {
            let counted = Arc::clone(&started);
            let again = gated(&gate, "health", Duration::from_secs(5), move || {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(2)
            })
            .await;
            assert_eq!(again, Err(CallError::Busy { call: "health" }));
        }
        assert_eq!(started.load(Ordering::SeqCst), 1, "no second call started");

        release.send(()).expect("release the first call");
        // The first call's thread drops its pass as it returns; wait for that.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let next = loop {
            let counted = Arc::clone(&started);
            match gated(&gate, "health", Duration::from_secs(5), move || {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(3)
            })
            .await
            {
                Err(CallError::Busy { .. }) if std::time::Instant::now() < deadline => {
                    tokio::task::yield_now().await
                }
                other => break other,
            }
        };
        assert_eq!(next, Ok(3));
        assert_eq!(started.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_call_that_panics_opens_the_gate_again() {
        let gate = Gate::default();
        let r: Result<(), CallError> =
            gated(&gate, "health", Duration::from_secs(5), || panic!("boom")).await;
        assert!(r.as_ref().is_err_and(CallError::is_panic), "{r:?}");
        assert_eq!(
            gated(&gate, "health", Duration::from_secs(5), || Ok(7)).await,
            Ok(7)
        );
    }
}
