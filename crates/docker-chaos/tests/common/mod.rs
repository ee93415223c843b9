//! Shared setup of the engine tests: skip loudly without an engine, unique project names.

use docker_chaos::standin::StandinProject;
use docker_chaos::Engine;

/// The engine and a fresh stand-in project, or `None` after one loud line when
/// this machine has no Docker engine or no static busybox to build the image from.
pub async fn project(test: &str) -> Option<(Engine, StandinProject)> {
    docker_chaos::standin::for_test(test, "dctest").await
}
