//! Carries out the engine's effects in background tasks that report back as actions.

use crate::diagnosis::{self, BackendConfig, DiagnoseOptions};
use crate::engine::{Action, Effect};
use crate::leftovers::{is_remedy_record, REMEDY_RECORD};
use crate::leftovers::{Leftover, Leftovers};
use crate::plugin::session::{CallError, Session};
use plugin_api::{ActiveFault, Level, RemedyOutcome};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc::{self, UnboundedSender};

/// What the loop itself must handle: the effects that replace the session or end the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    Swap(PathBuf),
    Reload,
    Exit,
}

#[derive(Clone)]
pub struct Executor {
    pub session: Session,
    pub tx: UnboundedSender<Action>,
    pub diagnoser: Arc<BackendConfig>,
    pub diagnose_options: DiagnoseOptions,
    pub leftovers: Arc<Leftovers>,
}

impl Executor {
    /// Recovers one fault and, once it is undone, clears its leftover record:
    /// the one way a fault this host injected ends (effect, swap, error exit).
    pub async fn recover_and_clear(&self, fault_id: &str) -> Result<(), CallError> {
        self.session.recover(fault_id).await?;
        self.clear_record(fault_id);
        Ok(())
    }

    /// Undoes a fault an earlier host recorded and did not live to recover, then clears its record.
    pub async fn undo_leftover_and_clear(&self, leftover: &Leftover) -> Result<(), CallError> {
        self.session.recover_leftover(&leftover.fault.undo).await?;
        self.clear_record(&leftover.fault.fault_id);
        Ok(())
    }

    /// Puts back what a remedy changed, then clears its record.
    pub async fn undo_remedy_and_clear(&self, record: &str, undo: &str) -> Result<(), CallError> {
        self.session.recover_leftover(undo).await?;
        self.clear_record(record);
        Ok(())
    }

    /// Ends a record this host left: a remedy's change is put back with its
    /// undo record, a fault is recovered by its id (the error exit).
    pub async fn end_own_record(&self, leftover: &Leftover) -> Result<(), CallError> {
        if is_remedy_record(&leftover.fault.action_id) {
            self.undo_leftover_and_clear(leftover).await
        } else {
            self.recover_and_clear(&leftover.fault.fault_id).await
        }
    }

    /// Records a remedy's lasting change like a fault, so a killed host's
    /// next start puts it back through `recover_leftover`.
    fn record_remedy(&self, remedy: &str, target: &str, outcome: &RemedyOutcome) -> Option<String> {
        if outcome.undo.is_empty() {
            return None;
        }
        let now = plugin_api::now_ms();
        let record = ActiveFault {
            fault_id: format!("{REMEDY_RECORD}{remedy}-{now}"),
            action_id: format!("{REMEDY_RECORD}{remedy}"),
            targets: if target.is_empty() {
                vec![]
            } else {
                vec![target.to_string()]
            },
            summary: format!("remedy {remedy}: {}", outcome.summary),
            started_ms: now,
            expires_ms: None,
            undo: outcome.undo.clone(),
        };
        if let Err(e) =
            self.leftovers
                .record(self.session.subject_id(), &self.session.config, &record)
        {
            let _ = self.tx.send(Action::Log {
                at_ms: now,
                level: Level::Warn,
                source: "host",
                message: format!(
                    "could not record remedy {remedy} for leftover recovery at {}: {e}",
                    self.leftovers.path().display()
                ),
            });
        }
        Some(record.fault_id)
    }

    /// A record that cannot be cleared is only a warning: the next start
    /// offers to recover a fault that already ended, which plugins accept.
    fn clear_record(&self, fault_id: &str) {
        if let Err(e) = self.leftovers.remove(fault_id) {
            let _ = self.tx.send(Action::Log {
                at_ms: plugin_api::now_ms(),
                level: Level::Warn,
                source: "host",
                message: format!(
                    "recovered {fault_id}, but could not clear its record in {}: {e}",
                    self.leftovers.path().display()
                ),
            });
        }
    }

    pub fn run(&self, effects: Vec<Effect>) -> Vec<Control> {
        effects
            .into_iter()
            .filter_map(|e| self.run_one(e))
            .collect()
    }

    fn run_one(&self, effect: Effect) -> Option<Control> {
        trace(&effect);
        let session = self.session.clone();
        let tx = self.tx.clone();
        match effect {
            Effect::Inject {
                chapter,
                action,
                params,
            } => {
                let leftovers = Arc::clone(&self.leftovers);
                tokio::spawn(async move {
                    let result = session.inject(&action, params).await;
                    if let Ok(fault) = &result {
                        if let Err(e) =
                            leftovers.record(session.subject_id(), &session.config, fault)
                        {
                            let _ = tx.send(Action::Log {
                                at_ms: plugin_api::now_ms(),
                                level: Level::Warn,
                                source: "host",
                                message: format!(
                                    "could not record the fault for leftover recovery at {}: {e}",
                                    leftovers.path().display()
                                ),
                            });
                        }
                    }
                    let _ = tx.send(Action::Injected {
                        chapter,
                        action,
                        result,
                    });
                });
            }
            Effect::Recover { fault_id } => {
                let exec = self.clone();
                tokio::spawn(async move {
                    let result = exec.recover_and_clear(&fault_id).await;
                    let _ = tx.send(Action::Recovered { fault_id, result });
                });
            }
            Effect::RunStep { chapter, id } => {
                tokio::spawn(async move {
                    let result = session.run_step(&id).await;
                    let _ = tx.send(Action::StepDone { chapter, result });
                });
            }
            Effect::Diagnose(window) => {
                let cfg = Arc::clone(&self.diagnoser);
                let opts = self.diagnose_options.clone();
                tokio::spawn(async move {
                    let (chunk_tx, mut chunk_rx) = mpsc::unbounded_channel::<String>();
                    let forward = {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            while let Some(chunk) = chunk_rx.recv().await {
                                let _ = tx.send(Action::DiagnosisChunk(chunk));
                            }
                        })
                    };
                    let result = diagnosis::diagnose(&cfg, &window, &opts, chunk_tx).await;
                    let _ = forward.await;
                    let _ = tx.send(Action::DiagnosisDone(Box::new(result)));
                });
            }
            Effect::Remediate {
                remedy,
                params,
                target,
            } => {
                let exec = self.clone();
                tokio::spawn(async move {
                    let result = exec.session.remediate(&remedy, params, &target).await;
                    let record = result
                        .as_ref()
                        .ok()
                        .and_then(|o| exec.record_remedy(&remedy, &target, o));
                    let _ = tx.send(Action::Remediated { record, result });
                });
            }
            Effect::Probe { step } => {
                tokio::spawn(async move {
                    let result = session.run_step(&step).await;
                    let _ = tx.send(Action::Probed(result));
                });
            }
            Effect::UndoRemedy { record, undo } => {
                let exec = self.clone();
                tokio::spawn(async move {
                    let result = exec.undo_remedy_and_clear(&record, &undo).await;
                    let _ = tx.send(Action::RemedyUndone { record, result });
                });
            }
            Effect::Discover => {
                tokio::spawn(async move {
                    let found = tokio::task::spawn_blocking(crate::plugin::locate::discover)
                        .await
                        .unwrap_or_default();
                    let entries = found
                        .into_iter()
                        .map(|f| (f.name, f.library.unwrap_or(f.location)))
                        .collect();
                    let _ = tx.send(Action::OpenPicker(entries));
                });
            }
            Effect::Swap(path) => return Some(Control::Swap(path)),
            Effect::Reload => return Some(Control::Reload),
            Effect::Exit => return Some(Control::Exit),
        }
        None
    }
}

/// One `--log-file` line per effect, without the observation window's bulk.
fn trace(effect: &Effect) {
    match effect {
        Effect::Inject {
            chapter,
            action,
            params,
        } => {
            tracing::debug!(chapter, action, ?params, "effect: inject")
        }
        Effect::Recover { fault_id } => tracing::debug!(fault_id, "effect: recover"),
        Effect::RunStep { chapter, id } => tracing::debug!(chapter, id, "effect: run step"),
        Effect::Diagnose(window) => {
            tracing::debug!(snapshots = window.snapshots.len(), "effect: diagnose")
        }
        other => tracing::debug!(?other, "effect"),
    }
}
