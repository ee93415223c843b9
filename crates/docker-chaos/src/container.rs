//! Finding containers of a compose project by their compose labels, never by guessed names.

use crate::engine::Engine;
use crate::error::{ChaosError, Result};
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions, LogsOptions};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The label docker-compose (v1 and v2) puts on every container with its project name.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
/// The label with the compose service name.
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
/// The label with the replica number of the service.
pub const NUMBER_LABEL: &str = "com.docker.compose.container-number";

/// Which containers an operation is about: a compose project, optionally one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    pub project: String,
    pub service: Option<String>,
}

impl Selector {
    /// Every container of a compose project.
    pub fn project(project: impl Into<String>) -> Self {
        Selector {
            project: project.into(),
            service: None,
        }
    }

    /// The containers of one service of a compose project.
    pub fn service(project: impl Into<String>, service: impl Into<String>) -> Self {
        Selector {
            project: project.into(),
            service: Some(service.into()),
        }
    }

    fn label_filters(&self) -> Vec<String> {
        let mut labels = vec![format!("{PROJECT_LABEL}={}", self.project)];
        if let Some(service) = &self.service {
            labels.push(format!("{SERVICE_LABEL}={service}"));
        }
        labels
    }

    /// The labels as shown in messages.
    pub fn describe(&self) -> String {
        self.label_filters().join(", ")
    }
}

/// A network a container is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    pub network: String,
    pub ip: Option<String>,
    pub aliases: Vec<String>,
}

/// What this crate knows of one container, read from `docker inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub id: String,
    /// The container name without Docker's leading slash.
    pub name: String,
    pub project: Option<String>,
    pub service: Option<String>,
    pub hostname: Option<String>,
    /// Docker's state word: running, paused, exited, created, restarting, dead.
    pub state: String,
    pub running: bool,
    pub paused: bool,
    pub networks: Vec<NetworkAttachment>,
    pub labels: BTreeMap<String, String>,
}

impl ContainerInfo {
    /// Running and not paused: the container's processes can answer.
    pub fn is_live(&self) -> bool {
        self.running && !self.paused
    }

    /// Whether `host` (the host part of an address such as `tikv1:20160`) names this container:
    /// its compose service, container name, hostname, a network alias, an IP, or its id prefix.
    pub fn answers_to(&self, host: &str) -> bool {
        let host = host.trim();
        if host.is_empty() {
            return false;
        }
        let named = [
            self.service.as_deref(),
            Some(self.name.as_str()),
            self.hostname.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|n| n == host);
        let on_network = self
            .networks
            .iter()
            .any(|n| n.ip.as_deref() == Some(host) || n.aliases.iter().any(|a| a == host));
        named || on_network || (host.len() >= 12 && self.id.starts_with(host))
    }

    pub(crate) fn from_inspect(c: ContainerInspectResponse) -> ContainerInfo {
        let labels: BTreeMap<String, String> = c
            .config
            .as_ref()
            .and_then(|cfg| cfg.labels.clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let state = c.state.as_ref();
        let networks = c
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_iter()
            .map(|(network, ep)| NetworkAttachment {
                network,
                ip: ep.ip_address.filter(|ip| !ip.is_empty()),
                aliases: ep.aliases.unwrap_or_default(),
            })
            .collect();
        ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            project: labels.get(PROJECT_LABEL).cloned(),
            service: labels.get(SERVICE_LABEL).cloned(),
            hostname: c.config.and_then(|cfg| cfg.hostname),
            state: state
                .and_then(|s| s.status)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into()),
            running: state.and_then(|s| s.running).unwrap_or(false),
            paused: state.and_then(|s| s.paused).unwrap_or(false),
            networks,
            labels,
        }
    }
}

impl Engine {
    /// Every container (any state) that carries the selector's labels, sorted by service then name.
    pub async fn find(&self, selector: &Selector) -> Result<Vec<ContainerInfo>> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), selector.label_filters());
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let summaries = self
            .client()
            .list_containers(Some(options))
            .await
            .map_err(|e| {
                ChaosError::engine("list containers with labels", &selector.describe(), e)
            })?;
        let mut found = Vec::with_capacity(summaries.len());
        for summary in summaries {
            let Some(id) = summary.id else { continue };
            match self.inspect(&id).await {
                Ok(info) => found.push(info),
                // Removed between list and inspect: it is simply not there any more.
                Err(ChaosError::Engine {
                    source:
                        bollard::errors::Error::DockerResponseServerError {
                            status_code: 404, ..
                        },
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        found.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
        Ok(found)
    }

    /// The running, unpaused containers with the selector's labels; an error when there is none.
    pub async fn find_running(&self, selector: &Selector) -> Result<Vec<ContainerInfo>> {
        let live: Vec<ContainerInfo> = self
            .find(selector)
            .await?
            .into_iter()
            .filter(ContainerInfo::is_live)
            .collect();
        if live.is_empty() {
            return Err(ChaosError::NoRunningContainer {
                labels: selector.describe(),
            });
        }
        Ok(live)
    }

    /// The current view of one container by id or name.
    pub async fn inspect(&self, id: &str) -> Result<ContainerInfo> {
        let c = self
            .client()
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| ChaosError::engine("inspect container", id, e))?;
        Ok(ContainerInfo::from_inspect(c))
    }

    /// The last `tail` lines the container wrote to stdout and stderr.
    pub async fn logs(&self, id: &str, tail: usize) -> Result<String> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: tail.to_string(),
            ..Default::default()
        };
        let mut stream = self.client().logs(id, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ChaosError::engine("read logs of", id, e))?;
            text.push_str(&chunk.to_string());
        }
        Ok(text)
    }
}
