//! The error when no engine answers names the socket and what to do.
//! A file of its own: it changes DOCKER_HOST for the whole test process.

use docker_chaos::{docker_available, ChaosError, Engine};

#[tokio::test]
async fn a_missing_engine_is_reported_with_its_socket_and_the_fix() {
    let dir = std::env::temp_dir().join(format!("docker-chaos-no-engine-{}", std::process::id()));
    let socket = format!("unix://{}/docker.sock", dir.display());
    std::env::set_var("DOCKER_HOST", &socket);
    let err = Engine::connect().await.unwrap_err();
    assert!(matches!(err, ChaosError::NoEngine { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("no Docker engine answers at {socket}")),
        "{text}"
    );
    assert!(text.contains("start dockerd or set DOCKER_HOST"), "{text}");
    assert!(docker_available().await.is_err());
}
