//! The health poller: one call in flight at a time, at a fixed interval.
//!
//! The poller awaits each call before the next tick, and the session refuses
//! a second health call while an abandoned one still runs on its thread
//! (`CallError::Busy`), so a plugin whose health call hangs costs one thread,
//! not one per tick. The render loop never waits for either.

use crate::engine::Action;
use crate::plugin::session::Session;
use plugin_api::Level;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

pub fn spawn(session: Session, every: Duration, tx: UnboundedSender<Action>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let result = session.health().await;
            // What the plugin's data broke of the host's limits, once per kind.
            for message in session.take_warnings() {
                let _ = tx.send(Action::Log {
                    at_ms: plugin_api::now_ms(),
                    level: Level::Warn,
                    source: "host",
                    message,
                });
            }
            if tx.send(Action::HealthPolled(result)).is_err() {
                return;
            }
        }
    })
}
