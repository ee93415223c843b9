//! Chaos on compose containers through the Docker API.
//!
//! Containers are found by their compose labels (`com.docker.compose.project`,
//! `com.docker.compose.service`), never by guessed names. Every action returns
//! an [`Undo`] record, plain JSON, that [`Engine::undo`] replays, also in a later
//! process when the one that injected the fault died before recovering it.
//!
//! ```no_run
//! # async fn demo() -> docker_chaos::Result<()> {
//! use docker_chaos::{Engine, Selector};
//! let engine = Engine::connect().await?;
//! let store = &engine.find_running(&Selector::service("tikv", "tikv1")).await?[0];
//! let undo = engine.kill(store).await?;
//! let saved = undo.to_json();
//! engine.undo(&docker_chaos::Undo::from_json(&saved)?, std::time::Duration::from_secs(30)).await?;
//! # Ok(()) }
//! ```

// No unwrap outside tests: a panic here would be the host's problem.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod actions;
pub mod compose;
mod container;
mod engine;
mod error;
#[cfg(feature = "standin")]
pub mod standin;

pub use actions::{Action, Undo};
pub use container::{
    ContainerInfo, NetworkAttachment, Selector, NUMBER_LABEL, PROJECT_LABEL, SERVICE_LABEL,
};
pub use engine::{docker_available, socket_description, Engine};
pub use error::{ChaosError, Result};
