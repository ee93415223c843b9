//! The errors of every Docker chaos operation, worded for the person at the terminal.

/// What went wrong talking to the Docker engine.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// Nothing answers on the engine's socket.
    #[error("no Docker engine answers at {socket}: start dockerd or set DOCKER_HOST ({detail})")]
    NoEngine { socket: String, detail: String },
    /// A label selector matched no running container.
    #[error("no running container with labels {labels}; is the compose project up (`docker-compose ps`)?")]
    NoRunningContainer { labels: String },
    /// A container did not reach the wanted state in time.
    #[error("container {name} did not become {wanted} within {waited_ms} ms (last state: {last})")]
    Timeout {
        name: String,
        wanted: String,
        waited_ms: u64,
        last: String,
    },
    /// The engine refused an operation.
    #[error("Docker could not {action} {target}: {source}")]
    Engine {
        action: String,
        target: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// The engine does not offer the operation (for example, network disconnect on host networking).
    #[error("the Docker engine does not allow to {action} {target}: {detail}")]
    Unsupported {
        action: String,
        target: String,
        detail: String,
    },
    /// An undo record from an earlier process could not be read.
    #[error("undo record is not valid JSON of docker-chaos: {0}")]
    BadUndo(String),
    /// Building a stand-in image failed (missing static binary, build error).
    #[error("stand-in image: {0}")]
    Standin(String),
}

impl ChaosError {
    pub(crate) fn engine(action: &str, target: &str, source: bollard::errors::Error) -> Self {
        ChaosError::Engine {
            action: action.to_string(),
            target: target.to_string(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, ChaosError>;
