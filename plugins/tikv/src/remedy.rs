//! The `restart-store` remedy: what an operator does about a store PD reports
//! down, without knowing why it went down: start its container again (or
//! restart it, when it runs but does not answer). The store's container is
//! found through its address, as the chaos action finds it.

use crate::assess::{self, store_node_id};
use crate::chaos::container_of;
use crate::pd::PdClient;
use docker_chaos::{Engine, Selector};
use plugin_api::{PluginError, PluginResult, Remedy, RemedyTarget, Risk};
use std::time::Duration;

pub const RESTART_STORE: &str = "restart-store";

/// How long the container may take to run again.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub fn remedies() -> Vec<Remedy> {
    vec![Remedy {
        id: RESTART_STORE.into(),
        name: "Restart the store".into(),
        description: "Start the container of the store PD reports down (restart it if it runs but the store does not heartbeat); PD reports the store Up once its heartbeats arrive again.".into(),
        addresses: vec![assess::STORE_DOWN.into()],
        params: vec![],
        target: RemedyTarget::Component,
        risk: Risk::Low,
        undo: String::new(),
        // TiKV heartbeats every 10 s; PD needs one to report the store Up again.
        verify_within_ms: 60_000,
        probe_step: None,
    }]
}

/// Restarts the container of `target` (`store-<id>`); returns the summary line.
pub async fn restart_store(
    pd: &PdClient,
    engine: &Engine,
    project: &str,
    target: &str,
) -> PluginResult<String> {
    let stores = pd
        .stores()
        .await
        .map_err(|e| PluginError::failed(format!("cannot find {target}: {e}")))?;
    let names = || {
        stores
            .stores
            .iter()
            .map(|s| store_node_id(s.store.id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let store = stores
        .stores
        .iter()
        .find(|s| store_node_id(s.store.id) == target)
        .ok_or_else(|| {
            PluginError::invalid(format!(
                "PD has no store `{target}`; its stores are {}",
                names()
            ))
        })?;
    let containers = engine
        .find(&Selector::project(project))
        .await
        .map_err(|e| PluginError::failed(format!("cannot find {target}'s container: {e}")))?;
    let container = container_of(store, &containers).ok_or_else(|| {
        PluginError::failed(format!(
            "{target} at {} maps to no container of project `{project}`",
            store.store.address
        ))
    })?;
    if container.is_live() && !assess::is_down(&store.store.state_name) {
        return Err(PluginError::invalid(format!(
            "{target} is {} and its container {} runs: there is nothing to restart",
            store.store.state_name, container.name
        )));
    }
    let was = container.state.clone();
    engine
        .restart_and_wait(&container.id, START_TIMEOUT)
        .await
        .map_err(|e| PluginError::failed(format!("cannot restart {target}: {e}")))?;
    Ok(format!(
        "{target} ({}): container {} {} (it was {was}, PD reported {})",
        store.store.address,
        container.name,
        if was == "running" {
            "restarted"
        } else {
            "started"
        },
        store.store.state_name
    ))
}
