//! Shared setup of the engine tests: skip loudly without an engine, unique project names.

use docker_chaos::standin::{static_busybox, StandinProject};
use docker_chaos::Engine;
use std::sync::atomic::{AtomicU32, Ordering};

/// The engine and a fresh stand-in project, or `None` after one loud line when
/// this machine has no Docker engine or no static busybox to build the image from.
pub async fn project(test: &str) -> Option<(Engine, StandinProject)> {
    let engine = match Engine::connect().await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("SKIPPED {test}: no Docker engine: {e}");
            return None;
        }
    };
    if let Err(e) = static_busybox() {
        eprintln!("SKIPPED {test}: {e}");
        return None;
    }
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "dctest{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let project = StandinProject::create(&engine, &name)
        .await
        .expect("build stand-in image");
    Some((engine, project))
}
