//! The connection to the Docker engine, negotiated down to the engine's API version.

use crate::error::{ChaosError, Result};
use bollard::Docker;
use std::time::Duration;

/// How long a single engine request may take before it is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the first contact may take: a dead socket should be reported quickly.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected Docker engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Engine {
    docker: Docker,
    socket: String,
}

/// Where the engine is looked for, as the user would write it (`DOCKER_HOST` or the default socket).
pub fn socket_description() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.trim().is_empty() => host,
        _ => "unix:///var/run/docker.sock".to_string(),
    }
}

impl Engine {
    /// Connects to the local engine (`DOCKER_HOST` or the default socket) and
    /// negotiates the API version, so an older engine (20.10, API 1.41) is spoken to in its own version.
    pub async fn connect() -> Result<Engine> {
        let socket = socket_description();
        let no_engine = |detail: String| ChaosError::NoEngine {
            socket: socket.clone(),
            detail,
        };
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| no_engine(e.to_string()))?
            .with_timeout(PROBE_TIMEOUT);
        let mut docker = docker
            .negotiate_version()
            .await
            .map_err(|e| no_engine(e.to_string()))?;
        docker.set_timeout(REQUEST_TIMEOUT);
        Ok(Engine { docker, socket })
    }

    /// The bollard client, for operations this crate does not wrap.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// The socket or URL this engine was reached at.
    pub fn socket(&self) -> &str {
        &self.socket
    }
}

/// Whether a Docker engine answers; the error says where it was looked for and what to do.
pub async fn docker_available() -> Result<()> {
    let engine = Engine::connect().await?;
    engine
        .docker
        .ping()
        .await
        .map_err(|e| ChaosError::NoEngine {
            socket: engine.socket.clone(),
            detail: e.to_string(),
        })?;
    Ok(())
}
