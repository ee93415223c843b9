//! The health gate between trials: every invariant ok before the next trial starts.

use crate::plugin::session::Session;
use plugin_api::InvariantStatus;
use std::time::{Duration, Instant};
use tokio::signal::unix::Signal;

/// How long the subject may take to settle, and how often it is asked.
pub struct Gate {
    pub limit: Duration,
    pub poll: Duration,
}

/// Why the gate did not open.
#[derive(Debug, PartialEq)]
pub enum Unsettled {
    /// Ctrl-C while waiting.
    Interrupted,
    /// What was still wrong at the deadline.
    Still(String),
}

impl Gate {
    /// Waits until every invariant is ok, polling at the campaign's interval.
    pub async fn wait(&self, session: &Session, sigint: &mut Signal) -> Result<(), Unsettled> {
        tokio::select! {
            r = self.poll_until_ok(session) => r.map_err(Unsettled::Still),
            _ = sigint.recv() => Err(Unsettled::Interrupted),
        }
    }

    async fn poll_until_ok(&self, session: &Session) -> Result<(), String> {
        let deadline = Instant::now() + self.limit;
        loop {
            let why = match session.health().await {
                Ok(s) if s.invariants.iter().all(|i| i.status == InvariantStatus::Ok) => {
                    return Ok(())
                }
                Ok(s) => s
                    .invariants
                    .iter()
                    .filter(|i| i.status != InvariantStatus::Ok)
                    .map(|i| format!("`{}` {:?}: {}", i.name, i.status, i.detail))
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(e) => format!("health failed: {e}"),
            };
            if Instant::now() >= deadline {
                return Err(why);
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}
