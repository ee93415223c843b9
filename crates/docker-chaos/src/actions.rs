//! Chaos actions on one container. Each returns an [`Undo`] record that a later
//! process can replay (leftover recovery after the host itself was killed).

use crate::container::ContainerInfo;
use crate::engine::Engine;
use crate::error::{ChaosError, Result};
use bollard::errors::Error as BollardError;
use bollard::models::{EndpointSettings, NetworkConnectRequest, NetworkDisconnectRequest};
use bollard::query_parameters::{
    KillContainerOptions, RestartContainerOptions, StartContainerOptions, StopContainerOptions,
};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How often a wait re-reads the container's state.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The action an [`Undo`] reverses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// SIGKILL; undone by starting the container again.
    Kill,
    /// Freeze (cgroup freezer); undone by unpausing.
    Pause,
    /// Graceful stop; undone by starting.
    Stop,
    /// Network disconnect; undone by reconnecting with the same aliases.
    Disconnect,
}

/// A self-contained record of how to reverse one chaos action, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undo {
    pub action: Action,
    pub container_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

impl Undo {
    fn of(action: Action, c: &ContainerInfo) -> Undo {
        Undo {
            action,
            container_id: c.id.clone(),
            name: c.name.clone(),
            network: None,
            aliases: Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Undo> {
        serde_json::from_str(text).map_err(|e| ChaosError::BadUndo(format!("{e} in `{text}`")))
    }
}

/// Docker answers 304 when the container already is in the wanted state.
fn already(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 304,
            ..
        }
    )
}

impl Engine {
    /// Sends SIGKILL to the container: no shutdown, like a power cut of the node.
    pub async fn kill(&self, c: &ContainerInfo) -> Result<Undo> {
        let options = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        self.client()
            .kill_container(&c.id, Some(options))
            .await
            .map_err(|e| ChaosError::engine("SIGKILL container", &c.name, e))?;
        Ok(Undo::of(Action::Kill, c))
    }

    /// Freezes every process of the container.
    pub async fn pause(&self, c: &ContainerInfo) -> Result<Undo> {
        self.client()
            .pause_container(&c.id)
            .await
            .map_err(|e| ChaosError::engine("pause container", &c.name, e))?;
        Ok(Undo::of(Action::Pause, c))
    }

    /// Thaws a paused container; unpausing a container that is not paused is not an error.
    pub async fn unpause(&self, id: &str) -> Result<()> {
        if !self.inspect(id).await?.paused {
            return Ok(());
        }
        self.client()
            .unpause_container(id)
            .await
            .map_err(|e| ChaosError::engine("unpause container", id, e))
    }

    /// Stops the container with SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&self, c: &ContainerInfo, grace: Duration) -> Result<Undo> {
        let options = StopContainerOptions {
            signal: None,
            t: Some(grace.as_secs().min(i32::MAX as u64) as i32),
        };
        match self.client().stop_container(&c.id, Some(options)).await {
            Ok(()) => {}
            Err(e) if already(&e) => {}
            Err(e) => return Err(ChaosError::engine("stop container", &c.name, e)),
        }
        Ok(Undo::of(Action::Stop, c))
    }

    /// Starts a stopped container; starting a running one is not an error.
    pub async fn start(&self, id: &str) -> Result<()> {
        match self
            .client()
            .start_container(id, None::<StartContainerOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if already(&e) => Ok(()),
            Err(e) => Err(ChaosError::engine("start container", id, e)),
        }
    }

    /// Disconnects the container from one of its networks, where the engine allows it
    /// (not for `host` or `none` networking, not for a network it is not on).
    pub async fn disconnect(&self, c: &ContainerInfo, network: &str) -> Result<Undo> {
        let unsupported = |detail: String| ChaosError::Unsupported {
            action: format!("disconnect network {network} from"),
            target: c.name.clone(),
            detail,
        };
        if network == "host" || network == "none" {
            return Err(unsupported(format!(
                "`{network}` networking cannot be disconnected"
            )));
        }
        let attachment = c
            .networks
            .iter()
            .find(|n| n.network == network)
            .ok_or_else(|| {
                let on: Vec<&str> = c.networks.iter().map(|n| n.network.as_str()).collect();
                unsupported(format!(
                    "it is not attached to it (attached to: {})",
                    on.join(", ")
                ))
            })?;
        let request = NetworkDisconnectRequest {
            container: Some(c.id.clone()),
            force: Some(true),
        };
        self.client()
            .disconnect_network(network, request)
            .await
            .map_err(|e| {
                ChaosError::engine(&format!("disconnect network {network} from"), &c.name, e)
            })?;
        let mut undo = Undo::of(Action::Disconnect, c);
        undo.network = Some(network.to_string());
        // Docker adds the short id as an alias by itself; keep only the names given at creation.
        undo.aliases = attachment
            .aliases
            .iter()
            .filter(|a| !c.id.starts_with(a.as_str()))
            .cloned()
            .collect();
        Ok(undo)
    }

    /// Connects the container to a network with the given aliases; already connected is not an error.
    pub async fn reconnect(&self, id: &str, network: &str, aliases: &[String]) -> Result<()> {
        if self
            .inspect(id)
            .await?
            .networks
            .iter()
            .any(|n| n.network == network)
        {
            return Ok(());
        }
        let request = NetworkConnectRequest {
            container: Some(id.to_string()),
            endpoint_config: Some(EndpointSettings {
                aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
                ..Default::default()
            }),
        };
        self.client()
            .connect_network(network, request)
            .await
            .map_err(|e| ChaosError::engine(&format!("connect network {network} to"), id, e))
    }

    /// Reverses the action recorded in `undo`. Idempotent: undoing twice, or undoing
    /// an action whose effect has already ended, succeeds. Waits until the container runs again.
    pub async fn undo(&self, undo: &Undo, timeout: Duration) -> Result<ContainerInfo> {
        match undo.action {
            Action::Kill | Action::Stop => {
                let c = self.inspect(&undo.container_id).await?;
                if c.paused {
                    self.unpause(&c.id).await?;
                }
                if !c.running {
                    self.start(&c.id).await?;
                }
            }
            Action::Pause => self.unpause(&undo.container_id).await?,
            Action::Disconnect => {
                let network = undo.network.as_deref().ok_or_else(|| {
                    ChaosError::BadUndo(format!("disconnect of {} names no network", undo.name))
                })?;
                self.reconnect(&undo.container_id, network, &undo.aliases)
                    .await?;
            }
        }
        self.wait_running(&undo.container_id, timeout).await
    }

    /// Restarts the container (or starts it when it is not running) and waits until it runs.
    pub async fn restart_and_wait(&self, id: &str, timeout: Duration) -> Result<ContainerInfo> {
        let c = self.inspect(id).await?;
        if c.paused {
            self.unpause(id).await?;
        }
        if c.running {
            self.client()
                .restart_container(
                    id,
                    Some(RestartContainerOptions {
                        signal: None,
                        t: Some(1),
                    }),
                )
                .await
                .map_err(|e| ChaosError::engine("restart container", &c.name, e))?;
        } else {
            self.start(id).await?;
        }
        self.wait_running(id, timeout).await
    }

    /// Waits until the container runs and is not paused.
    pub async fn wait_running(&self, id: &str, timeout: Duration) -> Result<ContainerInfo> {
        self.wait_for(id, "running", timeout, ContainerInfo::is_live)
            .await
    }

    /// Waits until the container is no longer running (after a kill or stop).
    pub async fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<ContainerInfo> {
        self.wait_for(id, "stopped", timeout, |c| !c.running).await
    }

    /// Polls the container's state until `done` holds or `timeout` passes.
    pub async fn wait_for(
        &self,
        id: &str,
        wanted: &str,
        timeout: Duration,
        done: impl Fn(&ContainerInfo) -> bool,
    ) -> Result<ContainerInfo> {
        let started = Instant::now();
        loop {
            let c = self.inspect(id).await?;
            if done(&c) {
                return Ok(c);
            }
            if started.elapsed() >= timeout {
                return Err(ChaosError::Timeout {
                    name: c.name,
                    wanted: wanted.to_string(),
                    waited_ms: started.elapsed().as_millis() as u64,
                    last: c.state,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}
