//! Stand-in containers for tests on a machine without a registry: a FROM-scratch
//! image around a static busybox, and containers labelled like a compose project.
//! A [`StandinProject`] removes its containers, networks and image when dropped,
//! also when the test that owns it fails.

use crate::container::{ContainerInfo, NUMBER_LABEL, PROJECT_LABEL, SERVICE_LABEL};
use crate::engine::Engine;
use crate::error::{ChaosError, Result};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, ListContainersOptions, ListNetworksOptions,
    RemoveContainerOptions, RemoveImageOptions,
};
use futures::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Label on everything a stand-in project creates; its value is the project name.
pub const STANDIN_LABEL: &str = "demo-host.standin";
/// Environment variable naming a static busybox to use instead of the usual paths.
pub const BUSYBOX_ENV: &str = "DEMO_HOST_STATIC_BUSYBOX";

const DOCKERFILE: &str =
    "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sleep\", \"3600\"]\n";

/// Finds a statically linked busybox (Debian: `apt-get install busybox-static`).
pub fn static_busybox() -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os(BUSYBOX_ENV)
        .map(PathBuf::from)
        .into_iter()
        .chain(["/bin/busybox", "/usr/bin/busybox"].map(PathBuf::from))
        .collect();
    for path in &candidates {
        if let Ok(bytes) = std::fs::read(path) {
            if is_static_elf(&bytes) {
                return Ok(path.clone());
            }
        }
    }
    Err(ChaosError::Standin(format!(
        "no statically linked busybox at {}: install it (`apt-get install busybox-static`) or set {BUSYBOX_ENV}",
        candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )))
}

/// A 64-bit little-endian ELF without a PT_INTERP program header needs no loader,
/// so it runs in an image that holds nothing else.
fn is_static_elf(b: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap_or_default()) as usize;
    let (entsize, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).all(|i| {
        let at = phoff + i * entsize;
        b.get(at..at + 4)
            .map(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != PT_INTERP)
            .unwrap_or(false)
    })
}

/// One file of a ustar archive (the build context Docker's /build endpoint takes).
fn tar_entry(out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
    let mut header = [0u8; 512];
    let mut put =
        |at: usize, text: &str| header[at..at + text.len()].copy_from_slice(text.as_bytes());
    put(0, name);
    put(100, &format!("{mode:07o}\0"));
    put(108, "0000000\0");
    put(116, "0000000\0");
    put(124, &format!("{:011o}\0", data.len()));
    put(136, "00000000000\0");
    put(148, "        ");
    put(156, "0");
    put(257, "ustar\0");
    put(263, "00");
    let sum: u32 = header.iter().map(|&b| b as u32).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn build_context(busybox: &Path) -> Result<Vec<u8>> {
    let binary = std::fs::read(busybox)
        .map_err(|e| ChaosError::Standin(format!("cannot read {}: {e}", busybox.display())))?;
    let mut tar = Vec::with_capacity(binary.len() + 4096);
    tar_entry(&mut tar, "Dockerfile", 0o644, DOCKERFILE.as_bytes());
    tar_entry(&mut tar, "busybox", 0o755, &binary);
    tar.resize(tar.len() + 1024, 0);
    Ok(tar)
}

/// Builds the stand-in image under `tag` with the classic builder (nothing is pulled).
pub async fn build_image(
    engine: &Engine,
    tag: &str,
    labels: HashMap<String, String>,
) -> Result<()> {
    let context = build_context(&static_busybox()?)?;
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(tag.to_string()),
        rm: true,
        forcerm: true,
        // Shared cached layers would let one project's image removal race another's build.
        nocache: true,
        labels: Some(labels),
        ..Default::default()
    };
    let mut stream = engine.client().build_image(
        options,
        None,
        Some(bollard::body_full(bytes::Bytes::from(context))),
    );
    while let Some(step) = stream.next().await {
        let info = step.map_err(|e| ChaosError::engine("build stand-in image", tag, e))?;
        if let Some(error) = info.error {
            return Err(ChaosError::Standin(format!(
                "building {tag} failed: {error}"
            )));
        }
    }
    Ok(())
}

/// A Docker test that cannot run here says so in one loud line, past the
/// harness's capture, and passes; unless `DEMO_HOST_REQUIRE_DOCKER=1`
/// (`cargo xtask test` sets it where an engine answers, CI always): then a
/// skip is a failure, so a broken engine cannot pass as a green run.
pub fn skip(test: &str, why: impl std::fmt::Display) {
    if std::env::var("DEMO_HOST_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("{test} would skip ({why}), but DEMO_HOST_REQUIRE_DOCKER=1 says Docker tests must run here");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// A compose-like project of stand-in containers, removed again on drop.
pub struct StandinProject {
    engine: Engine,
    project: String,
    image: String,
}

/// For a test: the engine and a fresh project named `<prefix><pid>x<n>`, or
/// `None` after one loud `SKIPPED` line when this machine has no Docker engine
/// or no static busybox to build the stand-in image from.
pub async fn for_test(test: &str, prefix: &str) -> Option<(Engine, StandinProject)> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let engine = match Engine::connect().await {
        Ok(e) => e,
        Err(e) => {
            skip(test, format!("no Docker engine: {e}"));
            return None;
        }
    };
    if let Err(e) = static_busybox() {
        skip(test, e);
        return None;
    }
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = format!("{prefix}{}x{n}", std::process::id());
    let project = StandinProject::create(&engine, &name)
        .await
        .expect("the stand-in image builds");
    Some((engine, project))
}

impl StandinProject {
    /// Builds the image for a new project. The name should be unique per test
    /// (for example with the process id) so parallel tests do not share containers.
    pub async fn create(engine: &Engine, project: &str) -> Result<StandinProject> {
        let project = StandinProject {
            engine: engine.clone(),
            project: project.to_string(),
            image: format!("demo-host-standin:{project}"),
        };
        build_image(engine, &project.image, project.labels()).await?;
        Ok(project)
    }

    pub fn name(&self) -> &str {
        &self.project
    }

    pub fn image(&self) -> &str {
        &self.image
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([(STANDIN_LABEL.to_string(), self.project.clone())])
    }

    /// Creates a bridge network `<project>_default`, labelled for cleanup.
    pub async fn network(&self, name: &str) -> Result<String> {
        let full = format!("{}_{name}", self.project);
        let mut labels = self.labels();
        labels.insert(PROJECT_LABEL.into(), self.project.clone());
        let request = NetworkCreateRequest {
            name: full.clone(),
            driver: Some("bridge".into()),
            labels: Some(labels),
            ..Default::default()
        };
        self.engine
            .client()
            .create_network(request)
            .await
            .map_err(|e| ChaosError::engine("create network", &full, e))?;
        Ok(full)
    }

    /// Creates and starts `<project>-<service>-1`, labelled like docker-compose labels it,
    /// with the service name as hostname and, on `network`, as alias.
    pub async fn service(&self, service: &str, network: Option<&str>) -> Result<ContainerInfo> {
        self.service_with_cmd(service, network, &[]).await
    }

    /// Like [`StandinProject::service`], running `cmd` (busybox applets, e.g. `["/bin/busybox", "sh", "-c", "..."]`)
    /// instead of the image's `sleep`.
    pub async fn service_with_cmd(
        &self,
        service: &str,
        network: Option<&str>,
        cmd: &[&str],
    ) -> Result<ContainerInfo> {
        let name = format!("{}-{service}-1", self.project);
        let mut labels = self.labels();
        labels.insert(PROJECT_LABEL.into(), self.project.clone());
        labels.insert(SERVICE_LABEL.into(), service.to_string());
        labels.insert(NUMBER_LABEL.into(), "1".into());
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            hostname: Some(service.to_string()),
            cmd: (!cmd.is_empty()).then(|| cmd.iter().map(|c| c.to_string()).collect()),
            labels: Some(labels),
            stop_timeout: Some(1),
            networking_config: network.map(|n| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    n.to_string(),
                    EndpointSettings {
                        aliases: Some(vec![service.to_string()]),
                        ..Default::default()
                    },
                )])),
            }),
            host_config: network.map(|n| bollard::models::HostConfig {
                network_mode: Some(n.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            platform: String::new(),
        };
        let created = self
            .engine
            .client()
            .create_container(Some(options), body)
            .await
            .map_err(|e| ChaosError::engine("create container", &name, e))?;
        self.engine.start(&created.id).await?;
        self.engine
            .wait_running(&created.id, Duration::from_secs(20))
            .await
    }
}

impl Drop for StandinProject {
    fn drop(&mut self) {
        let (project, image) = (self.project.clone(), self.image.clone());
        // Drop may run inside a runtime (a failing #[tokio::test]): clean up on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(remove_project(&project, &image));
        });
        let _ = cleanup.join();
    }
}

/// Removes every container and network labelled as the stand-in project, then its image.
pub async fn remove_project(project: &str, image: &str) {
    let Ok(engine) = Engine::connect().await else {
        return;
    };
    let docker = engine.client();
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{STANDIN_LABEL}={project}")],
    )]);
    let list = ListContainersOptions {
        all: true,
        filters: Some(filters.clone()),
        ..Default::default()
    };
    for c in docker.list_containers(Some(list)).await.unwrap_or_default() {
        if let Some(id) = c.id {
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            let _ = docker.remove_container(&id, Some(options)).await;
        }
    }
    let networks = ListNetworksOptions {
        filters: Some(filters),
    };
    for n in docker
        .list_networks(Some(networks))
        .await
        .unwrap_or_default()
    {
        if let Some(name) = n.name {
            let _ = docker.remove_network(&name).await;
        }
    }
    let options = RemoveImageOptions {
        force: true,
        noprune: false,
    };
    let _ = docker.remove_image(image, Some(options), None).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_headers_carry_a_valid_checksum_and_padding() {
        let mut tar = Vec::new();
        tar_entry(&mut tar, "Dockerfile", 0o644, b"FROM scratch\n");
        assert_eq!(tar.len(), 1024);
        let mut header = tar[..512].to_vec();
        let stored =
            u32::from_str_radix(std::str::from_utf8(&header[148..154]).unwrap(), 8).unwrap();
        header[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, header.iter().map(|&b| b as u32).sum::<u32>());
        assert_eq!(&tar[512..525], b"FROM scratch\n");
    }

    #[test]
    fn only_loader_free_elf_counts_as_static() {
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        let own = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        // A test binary built by cargo is dynamically linked unless built with crt-static.
        assert!(!is_static_elf(&own));
    }
}
