//! Where the cluster runs: child processes started here (the shared
//! `ratelimiter_node::cluster` launcher), or a compose stack reached at
//! configured endpoints.

use super::config::{ComposeStandby, EnvKind, PluginConfig};
use docker_chaos::Engine;
use plugin_api::{PluginError, PluginResult};
use ratelimiter_node::cluster::{which, Cluster, Logs, NodeArgs, RedisPath};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a restarted node container may take to run again.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(30);

pub fn docker_error(e: docker_chaos::ChaosError) -> PluginError {
    PluginError::failed(format!("docker: {e}"))
}

pub enum Env {
    /// Boxed: the cluster (with its proxy) is far larger than the compose endpoints.
    Local(Box<Cluster>),
    Compose {
        nodes: Vec<String>,
        redis: String,
        containers: Vec<String>,
        redis_container: String,
        /// The fault proxy container's HTTP API (`proxy_api=`), unless `fault_proxy=off`.
        proxy_api: Option<String>,
        /// The standby Redis service (`standby=`), unless `standby=off`.
        standby: Option<ComposeStandby>,
    },
}

/// The standby Redis a failover promotes, by the address each party reaches it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standby {
    /// From the plugin (REPLICAOF NO ONE, and its own reads after the failover).
    pub url: String,
    /// From the nodes and from the primary (PUT /admin/redis, fail-back).
    pub peer: String,
    /// The primary, as the standby reaches it (REPLICAOF after a fail-back).
    pub primary_peer: String,
}

/// What a frozen Redis is thawed from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Frozen {
    /// SIGSTOPped local process: SIGCONT thaws it.
    Process(u32),
    /// A docker-chaos undo record of a paused container.
    Container(String),
}

impl Frozen {
    pub fn thaw(&self, rt: &tokio::runtime::Runtime) -> PluginResult<()> {
        match self {
            Frozen::Process(pid) => signal(*pid, libc::SIGCONT),
            Frozen::Container(record) => rt.block_on(async {
                let undo = docker_chaos::Undo::from_json(record).map_err(docker_error)?;
                let engine = Engine::connect().await.map_err(docker_error)?;
                engine
                    .undo(&undo, RESTART_TIMEOUT)
                    .await
                    .map_err(docker_error)?;
                Ok(())
            }),
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) -> PluginResult<()> {
    // SAFETY: kill(2) with a pid this plugin started; no memory is involved.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    let err = std::io::Error::last_os_error();
    // A process that is gone (it died with the host that froze it) needs no thawing.
    if rc == 0 || (sig == libc::SIGCONT && err.raw_os_error() == Some(libc::ESRCH)) {
        Ok(())
    } else {
        Err(PluginError::failed(format!(
            "signal {sig} to redis-server ({pid}): {err}"
        )))
    }
}

impl Env {
    pub fn start(cfg: &PluginConfig, library_dir: &Path) -> PluginResult<Env> {
        match cfg.env {
            EnvKind::Local => {
                let bin = node_binary(cfg, library_dir)?;
                let args = NodeArgs::new(cfg.mode)
                    .flush_ms(cfg.flush_ms)
                    .redis_timeout_ms(cfg.redis_timeout_ms);
                let path = if cfg.fault_proxy {
                    RedisPath::Proxied
                } else {
                    RedisPath::Direct
                };
                let cluster =
                    Cluster::start_with(&cfg.redis_bin, &bin, Logs::TempDir, 3, args, path)?;
                // The failover-redis remedy's standby, synced before any fault.
                cluster.start_standby()?;
                Ok(Env::Local(Box::new(cluster)))
            }
            EnvKind::Compose => Ok(Env::Compose {
                nodes: cfg.nodes.clone(),
                redis: cfg.redis.clone(),
                containers: cfg.containers.clone(),
                redis_container: cfg.redis_container.clone(),
                proxy_api: cfg.fault_proxy.then(|| cfg.proxy_api.clone()),
                standby: cfg.standby.clone(),
            }),
        }
    }

    pub fn node_urls(&self) -> Vec<String> {
        match self {
            Env::Local(l) => l.node_urls(),
            Env::Compose { nodes, .. } => nodes.clone(),
        }
    }

    pub fn redis_url(&self) -> String {
        match self {
            Env::Local(l) => l.redis_url(),
            Env::Compose { redis, .. } => redis.clone(),
        }
    }

    /// The standby Redis a failover promotes: the local one started beside
    /// Redis (all parties reach it at the same loopback address), or the
    /// compose project's service.
    pub fn standby(&self) -> Option<Standby> {
        match self {
            Env::Local(l) => l.standby_url().map(|url| Standby {
                peer: url.clone(),
                url,
                primary_peer: l.redis_url(),
            }),
            Env::Compose { standby, .. } => standby.as_ref().map(|s| Standby {
                url: s.url.clone(),
                peer: s.in_network.clone(),
                primary_peer: s.primary_in_network.clone(),
            }),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Env::Local(_) => "local",
            Env::Compose { .. } => "compose",
        }
    }

    /// Kills node `i` (0-based): SIGKILL of the process, or of its container
    /// (then the docker-chaos undo record is returned, to restart it later).
    pub fn kill_node(
        &self,
        i: usize,
        rt: &tokio::runtime::Runtime,
    ) -> PluginResult<Option<String>> {
        match self {
            Env::Local(l) => Ok(l.kill_node(i).map(|()| None)?),
            Env::Compose { containers, .. } => {
                let name = container(containers, i)?;
                rt.block_on(async {
                    let engine = Engine::connect().await.map_err(docker_error)?;
                    let c = engine.inspect(name).await.map_err(docker_error)?;
                    let undo = engine.kill(&c).await.map_err(docker_error)?;
                    Ok(Some(undo.to_json()))
                })
            }
        }
    }

    pub fn restart_node(&self, i: usize, rt: &tokio::runtime::Runtime) -> PluginResult<()> {
        match self {
            // Already started again (by the restart-node remedy): nothing to undo.
            Env::Local(l) if l.node_running(i) => Ok(()),
            Env::Local(l) => Ok(l.start_node(i)?),
            Env::Compose { containers, .. } => {
                let name = container(containers, i)?;
                rt.block_on(async {
                    let engine = Engine::connect().await.map_err(docker_error)?;
                    let c = engine.inspect(name).await.map_err(docker_error)?;
                    engine.start(&c.id).await.map_err(docker_error)?;
                    engine
                        .wait_running(&c.id, RESTART_TIMEOUT)
                        .await
                        .map_err(docker_error)?;
                    Ok(())
                })
            }
        }
    }

    /// Restarts node `i` whatever its state (an operator's restart: a hung
    /// node runs but does not answer): kill and start of the process, or a
    /// restart of its container.
    pub fn force_restart_node(&self, i: usize, rt: &tokio::runtime::Runtime) -> PluginResult<()> {
        match self {
            Env::Local(l) => Ok(l.start_node(i)?),
            Env::Compose { containers, .. } => {
                let name = container(containers, i)?;
                rt.block_on(async {
                    let engine = Engine::connect().await.map_err(docker_error)?;
                    let c = engine.inspect(name).await.map_err(docker_error)?;
                    engine
                        .restart_and_wait(&c.id, RESTART_TIMEOUT)
                        .await
                        .map_err(docker_error)?;
                    Ok(())
                })
            }
        }
    }

    /// Freezes Redis: SIGSTOP of the local process, or docker pause of its container.
    /// Returns what thaws it: the process id, or the docker-chaos undo record.
    pub fn freeze_redis(&self, rt: &tokio::runtime::Runtime) -> PluginResult<Frozen> {
        match self {
            Env::Local(l) => {
                let pid = l
                    .redis_pid()
                    .ok_or_else(|| PluginError::failed("redis-server is not running"))?;
                signal(pid, libc::SIGSTOP)?;
                Ok(Frozen::Process(pid))
            }
            Env::Compose {
                redis_container, ..
            } => rt.block_on(async {
                let engine = Engine::connect().await.map_err(docker_error)?;
                let c = engine
                    .inspect(redis_container)
                    .await
                    .map_err(docker_error)?;
                let undo = engine.pause(&c).await.map_err(docker_error)?;
                Ok(Frozen::Container(undo.to_json()))
            }),
        }
    }

    /// The links from the nodes to Redis that network faults act on: one
    /// proxy route per node, or an error that says why there are none.
    pub fn links(&self) -> PluginResult<super::net::Links> {
        match self {
            Env::Local(l) => {
                let proxy = l.fault_proxy().ok_or_else(|| {
                    PluginError::Unsupported(
                        "network faults need the fault proxy between the nodes and Redis; this local environment was started with fault_proxy=off".into(),
                    )
                })?;
                let routes = (0..l.node_ports().len())
                    .map(|i| {
                        l.redis_route(i)?.ok_or_else(|| {
                            PluginError::failed(format!("node-{} has no proxy route", i + 1))
                        })
                    })
                    .collect::<PluginResult<Vec<String>>>()?;
                Ok(super::net::Links::in_process(proxy, routes))
            }
            Env::Compose {
                nodes, proxy_api, ..
            } => {
                let api = proxy_api.as_deref().ok_or_else(|| {
                    PluginError::Unsupported(
                        "network faults need the fault proxy between the nodes and Redis; this compose environment is used with fault_proxy=off".into(),
                    )
                })?;
                // The compose file names the routes after the nodes.
                let routes = (1..=nodes.len())
                    .map(|i| format!("redis-node-{i}"))
                    .collect();
                super::net::Links::http(api, routes)
            }
        }
    }

    pub fn stop(&self) {
        if let Env::Local(l) = self {
            l.stop();
        }
    }
}

fn container(containers: &[String], i: usize) -> PluginResult<&str> {
    containers.get(i).map(String::as_str).ok_or_else(|| {
        PluginError::invalid(format!(
            "no container name for node-{}; set containers=<name1>+<name2>+<name3>",
            i + 1
        ))
    })
}

/// Finds `ratelimiter-node`: config `node_bin`, env `RATELIMITER_NODE_BIN`,
/// beside the plugin library (where cargo puts it), then PATH.
pub fn node_binary(cfg: &PluginConfig, library_dir: &Path) -> PluginResult<PathBuf> {
    if let Some(p) = cfg.node_bin.as_ref().filter(|p| !p.is_file()) {
        return Err(PluginError::Missing(format!(
            "node_bin={} is not a file: build it with `cargo build -p ratelimiter-node` and point node_bin= at target/debug/ratelimiter-node",
            p.display()
        )));
    }
    let candidates = [
        cfg.node_bin.clone(),
        std::env::var_os("RATELIMITER_NODE_BIN").map(PathBuf::from),
        Some(library_dir.join("ratelimiter-node")),
        which("ratelimiter-node"),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file()).ok_or_else(|| {
        PluginError::Missing(format!(
            "ratelimiter-node not found (looked at node_bin=, $RATELIMITER_NODE_BIN, {}, PATH): build it with `cargo build -p ratelimiter-node`",
            library_dir.join("ratelimiter-node").display()
        ))
    })
}
