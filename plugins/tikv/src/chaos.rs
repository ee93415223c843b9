//! The `store-kill` fault: SIGKILL a TiKV store's container through the Docker
//! API, chosen among the stores PD reports Up whose container actually runs,
//! matched through the store's address (never through guessed container names).

use crate::assess::store_node_id;
use crate::pd::{PdClient, StoreInfo};
use docker_chaos::{ContainerInfo, Engine, Selector, Undo};
use plugin_api::{PluginError, PluginResult};
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

pub const STORE_KILL: &str = "store-kill";

/// The undo record of a store kill: enough to restart it and to know when PD sees it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreKillUndo {
    pub store_id: u64,
    pub address: String,
    pub docker: Undo,
}

/// The host part of a store address: `tikv1:20160` -> `tikv1`, `[::1]:20160` -> `::1`.
pub fn host_of(address: &str) -> &str {
    let a = address.trim();
    let a = a.split_once("://").map_or(a, |(_, rest)| rest);
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    a.rsplit_once(':').map_or(a, |(host, _)| host)
}

/// The container a store runs in: the one whose service, name, hostname, alias or IP is the address's host.
pub fn container_of<'a>(
    store: &StoreInfo,
    containers: &'a [ContainerInfo],
) -> Option<&'a ContainerInfo> {
    let host = host_of(&store.store.address);
    containers.iter().find(|c| c.answers_to(host))
}

/// Chooses the store to kill: `wanted` = 0 picks at random among Up stores with a running container.
pub async fn pick(
    pd: &PdClient,
    engine: &Engine,
    project: &str,
    wanted: u64,
) -> PluginResult<(StoreInfo, ContainerInfo)> {
    let stores = pd
        .stores()
        .await
        .map_err(|e| PluginError::failed(format!("cannot choose a store: {e}")))?;
    let running = engine
        .find_running(&Selector::project(project))
        .await
        .map_err(|e| PluginError::failed(format!("cannot choose a store: {e}")))?;
    let up: Vec<&StoreInfo> = stores
        .stores
        .iter()
        .filter(|s| s.store.state_name == "Up")
        .collect();
    let mapped: Vec<(&StoreInfo, &ContainerInfo)> = up
        .iter()
        .filter_map(|s| Some((*s, container_of(s, &running)?)))
        .collect();
    let running_names = || {
        running
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = if wanted == 0 {
        mapped.choose(&mut rand::rng()).copied().ok_or_else(|| {
            PluginError::failed(format!(
                "no Up store maps to a running container of project `{project}` (Up stores: {}; running containers: {})",
                up.iter().map(|s| s.store.address.as_str()).collect::<Vec<_>>().join(", "),
                running_names()
            ))
        })?
    } else {
        let store = stores
            .stores
            .iter()
            .find(|s| s.store.id == wanted)
            .ok_or_else(|| {
                let ids: Vec<String> = stores
                    .stores
                    .iter()
                    .map(|s| s.store.id.to_string())
                    .collect();
                PluginError::invalid(format!(
                    "PD has no store {wanted}; its stores are {}",
                    ids.join(", ")
                ))
            })?;
        if store.store.state_name != "Up" {
            return Err(PluginError::invalid(format!(
                "store {wanted} is {}, not Up; choose another store or store=0 for a random Up one",
                store.store.state_name
            )));
        }
        let container = container_of(store, &running).ok_or_else(|| {
            PluginError::failed(format!(
                "store {wanted} at {} maps to no running container of project `{project}` (running: {})",
                store.store.address,
                running_names()
            ))
        })?;
        (store, container)
    };
    Ok((chosen.0.clone(), chosen.1.clone()))
}

/// SIGKILLs the store's container; the returned record undoes it.
pub async fn kill(
    engine: &Engine,
    store: &StoreInfo,
    container: &ContainerInfo,
) -> PluginResult<StoreKillUndo> {
    let undo = engine.kill(container).await.map_err(|e| {
        PluginError::failed(format!(
            "cannot kill {}: {e}",
            store_node_id(store.store.id)
        ))
    })?;
    Ok(StoreKillUndo {
        store_id: store.store.id,
        address: store.store.address.clone(),
        docker: undo,
    })
}

/// Restarts the container and waits until PD reports the store Up again.
pub async fn recover(
    engine: &Engine,
    pd: &PdClient,
    undo: &StoreKillUndo,
    timeout: Duration,
) -> PluginResult<()> {
    let started = Instant::now();
    engine.undo(&undo.docker, timeout).await.map_err(|e| {
        PluginError::failed(format!(
            "cannot restart {}: {e}",
            store_node_id(undo.store_id)
        ))
    })?;
    let mut last = String::from("no answer from PD");
    while started.elapsed() < timeout {
        match pd.stores().await {
            Ok(stores) => match stores.stores.iter().find(|s| s.store.id == undo.store_id) {
                Some(s) if s.store.state_name == "Up" => return Ok(()),
                Some(s) => last = format!("PD reports it {}", s.store.state_name),
                None => last = "PD does not list it".into(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(PluginError::failed(format!(
        "{} ({}) was restarted but PD did not report it Up within {} s: {last}",
        store_node_id(undo.store_id),
        undo.address,
        timeout.as_secs()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_cut_from_store_addresses() {
        assert_eq!(host_of("tikv1:20160"), "tikv1");
        assert_eq!(host_of("172.18.0.4:20160"), "172.18.0.4");
        assert_eq!(host_of("[::1]:20160"), "::1");
        assert_eq!(host_of("http://pd:2379"), "pd");
        assert_eq!(host_of("tikv2"), "tikv2");
    }
}
