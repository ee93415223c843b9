//! `env-up` / `env-down`: the compose project of `compose/ratelimiter/docker-compose.yml`,
//! with its ports and container names taken from the config, so the plugin
//! then finds the cluster where it brought it up.

use super::config::{container_prefix, PluginConfig};
use docker_chaos::compose::{ComposeError, Project};
use plugin_api::{Logger, PluginError, PluginResult};
use ratelimiter_node::cluster::{http_ok, redis_ping, replica_synced, wait_until};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long the cluster may take to answer after `up -d` (below the host's 600 s step limit).
const HEALTHY_WITHIN: Duration = Duration::from_secs(120);

/// Images built here by `docker/build-images.sh`, used when no image is named and they exist.
const LOCAL_IMAGES: [(&str, &str); 3] = [
    ("REDIS_IMAGE", "demo-host/redis:local"),
    ("RATELIMITER_IMAGE", "demo-host/ratelimiter-node:local"),
    ("FAULT_PROXY_IMAGE", "demo-host/fault-proxy:local"),
];

pub fn project(cfg: &PluginConfig, library_dir: &Path) -> PluginResult<Project> {
    let file = cfg.compose_file.clone().unwrap_or_else(|| {
        docker_chaos::compose::find_file(
            library_dir,
            Path::new("compose/ratelimiter/docker-compose.yml"),
        )
    });
    if !file.is_file() {
        return Err(PluginError::Missing(format!(
            "compose file {} not found: run from the demo-host checkout or set compose_file=",
            file.display()
        )));
    }
    let mut env = vec![(
        "RL_CONTAINER_PREFIX".to_string(),
        container_prefix(&cfg.containers),
    )];
    env.push(("RL_REDIS_PORT".into(), port_of(&cfg.redis)?.to_string()));
    for (i, url) in cfg.nodes.iter().enumerate() {
        env.push((format!("RL_NODE{}_PORT", i + 1), port_of(url)?.to_string()));
    }
    env.push(("RL_PROXY_PORT".into(), port_of(&cfg.proxy_api)?.to_string()));
    if let Some(standby) = &cfg.standby {
        env.push(("RL_STANDBY_PORT".into(), port_of(&standby.url)?.to_string()));
    }
    for (var, image) in LOCAL_IMAGES {
        if std::env::var_os(var).is_none() && image_exists(image) {
            env.push((var.into(), image.into()));
        }
    }
    Ok(Project {
        file,
        name: cfg.project.clone(),
        env,
    })
}

/// `docker-compose up -d`, then waits until Redis and every node answer.
pub fn up(project: &Project, cfg: &PluginConfig, log: &Logger) -> PluginResult<String> {
    log.info(format!(
        "docker-compose -p {} up -d ({})",
        project.name,
        project.file.display()
    ));
    project.run(&["up", "-d"]).map_err(compose_error)?;
    let redis_port = port_of(&cfg.redis)?;
    if !wait_until(HEALTHY_WITHIN, || redis_ping(redis_port)) {
        return Err(PluginError::failed(format!(
            "redis did not answer on 127.0.0.1:{redis_port} within {HEALTHY_WITHIN:?}"
        )));
    }
    log.info("redis answers");
    if let Some(standby) = &cfg.standby {
        // Synced before any fault, so that a failover finds every count there.
        let port = port_of(&standby.url)?;
        if !wait_until(HEALTHY_WITHIN, || replica_synced(port)) {
            return Err(PluginError::failed(format!(
                "the standby redis did not sync from redis at {} within {HEALTHY_WITHIN:?}",
                standby.url
            )));
        }
        log.info("the standby redis replicates redis");
    }
    let proxy_port = port_of(&cfg.proxy_api)?;
    if !wait_until(HEALTHY_WITHIN, || http_ok(proxy_port, "/routes")) {
        return Err(PluginError::failed(format!(
            "the fault proxy's API did not answer at {} within {HEALTHY_WITHIN:?}",
            cfg.proxy_api
        )));
    }
    log.info("the fault proxy answers");
    for (i, url) in cfg.nodes.iter().enumerate() {
        let port = port_of(url)?;
        if !wait_until(HEALTHY_WITHIN, || http_ok(port, "/health")) {
            return Err(PluginError::failed(format!(
                "node-{} did not become healthy at {url} within {HEALTHY_WITHIN:?}",
                i + 1
            )));
        }
        log.info(format!("node-{} healthy at {url}", i + 1));
    }
    Ok(format!(
        "compose project `{}` is up: redis {}, nodes {}; run the demo with env=compose",
        project.name,
        cfg.redis,
        cfg.nodes.join(" ")
    ))
}

/// `docker-compose down`, leaving no container, network or volume behind.
pub fn down(project: &Project, log: &Logger) -> PluginResult<String> {
    log.info(format!(
        "docker-compose -p {} down -v --remove-orphans",
        project.name
    ));
    project
        .run(&["down", "-v", "--remove-orphans", "--timeout", "2"])
        .map_err(compose_error)?;
    Ok(format!("compose project `{}` is down", project.name))
}

fn compose_error(e: ComposeError) -> PluginError {
    match e {
        ComposeError::Missing => PluginError::Missing(e.to_string()),
        ComposeError::Failed { pull_failed: true, .. } => PluginError::failed(format!(
            "{e} (no image registry answers here: build the local images with docker/build-images.sh, or set REDIS_IMAGE / RATELIMITER_IMAGE / FAULT_PROXY_IMAGE)"
        )),
        other => PluginError::failed(other),
    }
}

fn port_of(url: &str) -> PluginResult<u16> {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .ok_or_else(|| PluginError::invalid(format!("`{url}` has no port")))
}

fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
