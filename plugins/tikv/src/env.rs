//! Bringing a TiKV cluster up and down: docker-compose (`env=compose`) or
//! `tiup playground` (`env=local`). A cluster that already answers at the PD
//! address is used as it is and left running at teardown.

use crate::config::{Env, TikvConfig};
use crate::pd::PdClient;
use docker_chaos::compose::ComposeError;
use plugin_api::{Logger, PluginError, PluginResult};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh cluster may take until PD reports an Up store (below the host's 120 s setup timeout).
const CLUSTER_START: Duration = Duration::from_secs(100);

/// The tiup playground version started by `env=local`.
pub const PLAYGROUND_VERSION: &str = "v8.5.5";

/// What `setup` started, so `teardown` stops exactly that.
#[derive(Debug, Default)]
pub enum Started {
    #[default]
    Nothing,
    Compose,
    Playground(Child),
}

pub use docker_chaos::compose::on_path;

/// `docker-compose -f <file> -p <project> <args>`, with the output as the error on failure.
pub fn compose(cfg: &TikvConfig, args: &[&str]) -> PluginResult<String> {
    let project = docker_chaos::compose::Project {
        file: cfg.compose_file.clone(),
        name: cfg.project.clone(),
        env: Vec::new(),
    };
    project.run(args).map_err(|e| match e {
        ComposeError::Missing => PluginError::Missing(format!("{e}, or use env=local")),
        ComposeError::Failed { pull_failed: true, .. } => PluginError::failed(format!(
            "{e} (the images must be present locally: `docker load` them or set PD_IMAGE / TIKV_IMAGE / YCSB_IMAGE)"
        )),
        other => PluginError::failed(other),
    })
}

async fn cluster_answers(pd: &PdClient) -> bool {
    matches!(pd.stores().await, Ok(s) if s.stores.iter().any(|s| s.store.state_name == "Up"))
}

async fn wait_for_cluster(pd: &PdClient, what: &str) -> PluginResult<()> {
    let started = Instant::now();
    while started.elapsed() < CLUSTER_START {
        if cluster_answers(pd).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(PluginError::failed(format!(
        "{what} started, but PD at {} reported no Up store within {} s",
        pd.base(),
        CLUSTER_START.as_secs()
    )))
}

/// The reserved step ids behind `demo-host up` and `demo-host down`.
pub const ENV_UP: &str = "env-up";
pub const ENV_DOWN: &str = "env-down";

/// `docker-compose up -d` of PD and the three stores, then waits until PD reports an Up store.
/// On failure the project is taken down again, so nothing half-created stays.
async fn compose_up(cfg: &TikvConfig, pd: &PdClient, log: &Logger) -> PluginResult<()> {
    if !cfg.docker {
        return Err(PluginError::Missing(format!(
            "PD does not answer at {} and docker=off: start a cluster or the PD fixture (`pd-fixture`) there",
            pd.base()
        )));
    }
    docker_chaos::docker_available()
        .await
        .map_err(|e| PluginError::Missing(e.to_string()))?;
    if !Path::new(&cfg.compose_file).is_file() {
        return Err(PluginError::Missing(format!(
            "compose file {} not found: run from the demo-host checkout or set compose_file=",
            cfg.compose_file.display()
        )));
    }
    log.info(format!(
        "starting compose project `{}` from {}",
        cfg.project,
        cfg.compose_file.display()
    ));
    let up = match compose(cfg, &["up", "-d", "pd", "tikv0", "tikv1", "tikv2"]) {
        Ok(_) => {
            log.info(format!(
                "containers started; waiting for PD at {} to report a store Up",
                pd.base()
            ));
            wait_for_cluster(pd, "docker-compose").await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = up {
        stop(cfg, &mut Started::Compose, log);
        return Err(e);
    }
    Ok(())
}

/// One line on the cluster as PD sees it.
async fn summary(pd: &PdClient) -> String {
    match pd.stores().await {
        Ok(s) => {
            let up = s
                .stores
                .iter()
                .filter(|s| s.store.state_name == "Up")
                .count();
            format!(
                "PD at {} reports {up} of {} stores Up",
                pd.base(),
                s.stores.len()
            )
        }
        Err(e) => e.to_string(),
    }
}

/// `env-up`: brings the compose cluster up and leaves it running after the host exits.
pub async fn env_up(cfg: &TikvConfig, pd: &PdClient, log: &Logger) -> PluginResult<String> {
    if cfg.env == Env::Local {
        return Err(PluginError::Unsupported(format!(
            "env-up with env=local: the demo starts tiup playground itself for its duration; to keep one running, \
             run `tiup playground {PLAYGROUND_VERSION} --mode tikv-slim --pd 1 --kv 3` yourself"
        )));
    }
    if !cluster_answers(pd).await {
        compose_up(cfg, pd, log).await?;
    }
    Ok(summary(pd).await)
}

/// `env-down`: removes the compose project's containers, network and volumes (load profile included).
pub fn env_down(cfg: &TikvConfig, log: &Logger) -> PluginResult<String> {
    if cfg.env == Env::Local {
        return Err(PluginError::Unsupported(
            "env-down with env=local: stop your tiup playground with Ctrl-C".into(),
        ));
    }
    log.info(format!("taking compose project `{}` down", cfg.project));
    compose(
        cfg,
        &["--profile", "load", "down", "-v", "--remove-orphans"],
    )?;
    Ok(format!("compose project `{}` is down", cfg.project))
}

/// Brings the cluster up unless PD already answers.
pub async fn setup(cfg: &TikvConfig, pd: &PdClient, log: &Logger) -> PluginResult<Started> {
    if cluster_answers(pd).await {
        log.info(format!(
            "using the TiKV cluster already answering at {}",
            pd.base()
        ));
        return Ok(Started::Nothing);
    }
    match cfg.env {
        Env::Compose => {
            compose_up(cfg, pd, log).await?;
            Ok(Started::Compose)
        }
        Env::Local => {
            if !on_path("tiup") {
                return Err(PluginError::Missing(format!(
                    "PD does not answer at {} and tiup is not installed: install it with \
                     `curl --proto '=https' --tlsv1.2 -sSf https://tiup-mirrors.pingcap.com/install.sh | sh`, \
                     or use env=compose with Docker",
                    pd.base()
                )));
            }
            log.info(format!(
                "starting `tiup playground {PLAYGROUND_VERSION}` with 1 PD and 3 TiKV"
            ));
            let child = Command::new("tiup")
                .args([
                    "playground",
                    PLAYGROUND_VERSION,
                    "--mode",
                    "tikv-slim",
                    "--pd",
                    "1",
                    "--kv",
                    "3",
                ])
                .args(["--without-monitor", "--tag", "demo-host"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| PluginError::failed(format!("cannot start tiup playground: {e}")))?;
            let mut started = Started::Playground(child);
            if let Err(e) = wait_for_cluster(pd, "tiup playground").await {
                stop(cfg, &mut started, log);
                return Err(e);
            }
            Ok(started)
        }
    }
}

/// Stops what `setup` started.
pub fn stop(cfg: &TikvConfig, started: &mut Started, log: &Logger) {
    match std::mem::take(started) {
        Started::Nothing => {}
        Started::Compose => match compose(cfg, &["--profile", "load", "down"]) {
            Ok(_) => log.info(format!("compose project `{}` is down", cfg.project)),
            Err(e) => log.warn(e.to_string()),
        },
        Started::Playground(mut child) => {
            // SIGINT lets tiup stop the PD and TiKV processes it started; SIGKILL would orphan them.
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    log.info("tiup playground stopped");
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = child.kill();
            let _ = child.wait();
            log.warn("tiup playground did not stop on SIGINT within 30 s; killed it");
        }
    }
}
