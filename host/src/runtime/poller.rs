//! The health poller: one call in flight at a time, at a fixed interval.

use crate::engine::Action;
use crate::plugin::session::Session;
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
            if tx.send(Action::HealthPolled(result)).is_err() {
                return;
            }
        }
    })
}
