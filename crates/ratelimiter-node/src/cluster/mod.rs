//! A local rate limiter cluster: one `redis-server` and `ratelimiter-node`s as
//! child processes on free loopback ports. The one launcher of the plugin's
//! local environment, the tests and the bench.
//!
//! Children are started through [`plugin_api::process::Supervisor`]: they die
//! with the process that owns the cluster (even when it is SIGKILLed), when
//! [`Cluster::stop`] is called and when the cluster is dropped, also when a
//! test fails.
//!
//! With [`RedisPath::Proxied`] each node reaches Redis through its own route
//! (`redis-<node id>`) of an in-process [`fault_proxy::Proxy`], so a network
//! fault can hit one node's link alone (issue 17: this kernel has no netem).
//! The proxy runs on its own one-thread runtime and ends with the cluster, or
//! with the process that owns it. The default, [`RedisPath::Direct`], puts
//! nothing between the nodes and Redis (what the bench measures).

use crate::wire::Mode;

mod probe;
mod redis_proxy;
pub use probe::{free_ports, http_ok, redis_ping, replica_synced, wait_until, which};
use redis_proxy::RedisProxy;

use fault_proxy::Proxy;
use plugin_api::process::{ChildId, Output, ProcessError, Supervisor};
use plugin_api::PluginError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long a child may take to answer after it was started.
pub const START_DEADLINE: Duration = Duration::from_secs(15);
/// A port found free may be taken before the child binds it: then the child
/// exits at once and is started again on another port.
const PORT_ATTEMPTS: usize = 4;
/// Redis and the nodes exit at once on SIGTERM; a frozen (SIGSTOPped) Redis
/// does not, and gets SIGKILL after this.
const GRACE: Duration = Duration::from_secs(2);

/// Why a cluster could not be started or driven.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A program is not installed or not built; the message says how to get it.
    #[error("{0}")]
    Missing(String),
    /// A child did not answer in time or exited; the message names its log.
    #[error("{0}")]
    NotReady(String),
    #[error("no node {0} in this cluster")]
    NoSuchNode(usize),
    /// A request to a node failed or was refused.
    #[error("{0}")]
    Request(String),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("fault proxy: {0}")]
    Proxy(#[from] fault_proxy::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<ClusterError> for PluginError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Missing(m) => PluginError::Missing(m),
            e => PluginError::failed(e),
        }
    }
}

/// Where the children's output goes.
#[derive(Debug, Clone, Default)]
pub enum Logs {
    #[default]
    Discard,
    /// A fresh directory under the system temp dir (`redis.log`, `node-1.log`, ...),
    /// removed by [`Cluster::stop`].
    TempDir,
}

/// How a node is started; `None` leaves the node's own default.
#[derive(Debug, Clone)]
pub struct NodeArgs {
    pub mode: Mode,
    pub flush_ms: Option<u64>,
    /// How long a node waits for Redis before failing a check (strict: closed).
    pub redis_timeout_ms: Option<u64>,
    /// Further command-line arguments.
    pub extra: Vec<String>,
}

impl NodeArgs {
    pub fn new(mode: Mode) -> NodeArgs {
        NodeArgs {
            mode,
            flush_ms: None,
            redis_timeout_ms: None,
            extra: Vec::new(),
        }
    }

    pub fn flush_ms(mut self, ms: u64) -> NodeArgs {
        self.flush_ms = Some(ms);
        self
    }

    pub fn redis_timeout_ms(mut self, ms: u64) -> NodeArgs {
        self.redis_timeout_ms = Some(ms);
        self
    }

    fn to_args(&self) -> Vec<String> {
        let mut out = vec!["--mode".to_string(), self.mode.as_str().to_string()];
        if let Some(ms) = self.flush_ms {
            out.extend(["--flush-ms".to_string(), ms.to_string()]);
        }
        if let Some(ms) = self.redis_timeout_ms {
            out.extend(["--redis-timeout-ms".to_string(), ms.to_string()]);
        }
        out.extend(self.extra.iter().cloned());
        out
    }
}

/// How the nodes reach Redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RedisPath {
    /// Straight to Redis's port: nothing in between (the bench's default).
    #[default]
    Direct,
    /// Each node through its own route of an in-process fault proxy.
    Proxied,
}

struct NodeSlot {
    id: String,
    bin: PathBuf,
    port: u16,
    args: NodeArgs,
    child: Option<ChildId>,
    /// The Redis URL the node is started with: Redis itself, or its proxy route.
    redis_url: String,
    /// Its proxy route, when the cluster is proxied.
    route: Option<String>,
}

/// Redis and the nodes that use it (see the module docs). `Send + Sync`.
pub struct Cluster {
    procs: Supervisor,
    dir: Option<PathBuf>,
    redis_bin: PathBuf,
    redis_port: u16,
    redis: Mutex<Option<ChildId>>,
    nodes: Mutex<Vec<NodeSlot>>,
    proxy: Option<RedisProxy>,
    /// A replica of Redis to fail over to: its child and port.
    standby: Mutex<Option<(ChildId, u16)>>,
}

impl Cluster {
    /// Redis and `count` nodes `node-1`..`node-<count>` of `node_bin`, each answering.
    pub fn start(
        redis_bin: &str,
        node_bin: &Path,
        logs: Logs,
        count: usize,
        args: NodeArgs,
    ) -> Result<Cluster, ClusterError> {
        Cluster::start_with(redis_bin, node_bin, logs, count, args, RedisPath::Direct)
    }

    /// [`start`](Self::start), with the nodes reaching Redis by `path`.
    pub fn start_with(
        redis_bin: &str,
        node_bin: &Path,
        logs: Logs,
        count: usize,
        args: NodeArgs,
        path: RedisPath,
    ) -> Result<Cluster, ClusterError> {
        if !node_bin.is_file() {
            return Err(ClusterError::Missing(format!(
                "ratelimiter-node not found at {}: build it with `cargo build -p ratelimiter-node`",
                node_bin.display()
            )));
        }
        let mut cluster = Cluster::redis(redis_bin, logs)?;
        if path == RedisPath::Proxied {
            cluster = cluster.with_fault_proxy()?;
        }
        // On an error, Drop stops whatever was started.
        for i in 1..=count {
            cluster.add_node(node_bin, &format!("node-{i}"), args.clone())?;
        }
        Ok(cluster)
    }

    /// A cluster of Redis alone, answering PING; add nodes with [`add_node`](Self::add_node).
    pub fn redis(redis_bin: &str, logs: Logs) -> Result<Cluster, ClusterError> {
        let redis_bin = which(redis_bin).ok_or_else(|| {
            ClusterError::Missing(format!(
                "`{redis_bin}` not found: install the Debian package `redis-server` (apt-get install redis-server) or set redis_bin=<path>"
            ))
        })?;
        let dir = match logs {
            Logs::Discard => None,
            Logs::TempDir => {
                static N: AtomicUsize = AtomicUsize::new(0);
                let dir = std::env::temp_dir().join(format!(
                    "ratelimiter-cluster-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&dir)?;
                Some(dir)
            }
        };
        let mut cluster = Cluster {
            procs: Supervisor::new("ratelimiter-cluster")?.with_grace(GRACE),
            dir,
            redis_bin,
            redis_port: 0,
            redis: Mutex::new(None),
            nodes: Mutex::new(Vec::new()),
            proxy: None,
            standby: Mutex::new(None),
        };
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            cluster.redis_port = free_ports(1)?[0];
            match cluster.restart_redis() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClusterError::NotReady("redis-server did not start".into())))
    }

    /// Puts an in-process fault proxy between Redis and the nodes added from
    /// now on: each gets its own route `redis-<id>` (see [`redis_route`](Self::redis_route)).
    pub fn with_fault_proxy(mut self) -> Result<Cluster, ClusterError> {
        if !lock(&self.nodes).is_empty() {
            return Err(ClusterError::Request(
                "the fault proxy must be set up before the first node is added".into(),
            ));
        }
        if self.proxy.is_none() {
            self.proxy = Some(RedisProxy::start()?);
        }
        Ok(self)
    }

    /// How the nodes reach Redis.
    pub fn redis_path(&self) -> RedisPath {
        if self.proxy.is_some() {
            RedisPath::Proxied
        } else {
            RedisPath::Direct
        }
    }

    /// The fault proxy in front of Redis (a handle), when the cluster is proxied.
    pub fn fault_proxy(&self) -> Option<Proxy> {
        self.proxy.as_ref().map(|p| p.proxy.clone())
    }

    /// The proxy route node `i` (0-based) reaches Redis through; `None` when direct.
    pub fn redis_route(&self, i: usize) -> Result<Option<String>, ClusterError> {
        let nodes = lock(&self.nodes);
        let n = nodes.get(i).ok_or(ClusterError::NoSuchNode(i))?;
        Ok(n.route.clone())
    }

    /// The Redis URL node `i` (0-based) was started with (its route when proxied).
    pub fn node_redis_url(&self, i: usize) -> Result<String, ClusterError> {
        let nodes = lock(&self.nodes);
        let n = nodes.get(i).ok_or(ClusterError::NoSuchNode(i))?;
        Ok(n.redis_url.clone())
    }

    /// Starts Redis (again) on its port, with nothing in it; waits for PING.
    pub fn restart_redis(&self) -> Result<(), ClusterError> {
        self.kill_redis()?;
        let port = self.redis_port;
        let mut cmd = Command::new(&self.redis_bin);
        cmd.args(redis_server_args(port));
        if let Some(dir) = &self.dir {
            cmd.arg("--dir").arg(dir);
        }
        let id = self
            .procs
            .spawn("redis-server", cmd, self.output("redis.log"))?;
        *lock(&self.redis) = Some(id);
        self.ready(id, || redis_ping(port)).map_err(|()| {
            let _ = self.kill_redis();
            ClusterError::NotReady(format!(
                "redis-server did not answer on port {port}{}",
                self.see_log("redis.log")
            ))
        })
    }

    /// Kills Redis with SIGKILL (a crash); nothing when it does not run.
    pub fn kill_redis(&self) -> Result<(), ClusterError> {
        if let Some(id) = lock(&self.redis).take() {
            self.procs.kill(id)?;
        }
        Ok(())
    }

    /// Starts node `id` of `bin` with `args` on a free port; waits for its
    /// `/health`. Returns its index.
    pub fn add_node(&self, bin: &Path, id: &str, args: NodeArgs) -> Result<usize, ClusterError> {
        let (redis_url, route) = match &self.proxy {
            None => (self.redis_url(), None),
            Some(p) => {
                let name = format!("redis-{id}");
                let listen = p.add_route(&name, &format!("127.0.0.1:{}", self.redis_port))?;
                (format!("redis://{listen}"), Some(name))
            }
        };
        let i = {
            let mut nodes = lock(&self.nodes);
            nodes.push(NodeSlot {
                id: id.to_string(),
                bin: bin.to_path_buf(),
                port: 0,
                args,
                child: None,
                redis_url,
                route,
            });
            nodes.len() - 1
        };
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            lock(&self.nodes)[i].port = free_ports(1)?[0];
            match self.start_node(i) {
                Ok(()) => return Ok(i),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ClusterError::NoSuchNode(i)))
    }

    /// Starts node `i` (0-based) on its port, killing a running one first;
    /// waits for its `/health`.
    pub fn start_node(&self, i: usize) -> Result<(), ClusterError> {
        self.kill_node(i)?;
        let (id, bin, port, args, redis_url) = {
            let nodes = lock(&self.nodes);
            let n = nodes.get(i).ok_or(ClusterError::NoSuchNode(i))?;
            (
                n.id.clone(),
                n.bin.clone(),
                n.port,
                n.args.to_args(),
                n.redis_url.clone(),
            )
        };
        let mut cmd = Command::new(&bin);
        cmd.args(["--id", &id, "--listen", &format!("127.0.0.1:{port}")])
            .args(["--redis", &redis_url])
            .args(args);
        let log = format!("{id}.log");
        let child = self.procs.spawn(&id, cmd, self.output(&log))?;
        lock(&self.nodes)[i].child = Some(child);
        self.ready(child, || http_ok(port, "/health"))
            .map_err(|()| {
                let _ = self.kill_node(i);
                ClusterError::NotReady(format!(
                    "{id} did not answer on port {port}{}",
                    self.see_log(&log)
                ))
            })
    }

    /// Starts a standby Redis on a free port, a replica of this cluster's
    /// Redis (`--replicaof`); waits until it has synced. Returns its URL.
    pub fn start_standby(&self) -> Result<String, ClusterError> {
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_ports(1)?[0];
            let mut cmd = Command::new(&self.redis_bin);
            cmd.args(redis_server_args(port)).args([
                "--replicaof",
                "127.0.0.1",
                &self.redis_port.to_string(),
            ]);
            if let Some(dir) = &self.dir {
                cmd.arg("--dir").arg(dir);
            }
            let id = self
                .procs
                .spawn("redis-standby", cmd, self.output("redis-standby.log"))?;
            match self.ready(id, || replica_synced(port)) {
                Ok(()) => {
                    *lock(&self.standby) = Some((id, port));
                    return Ok(standby_url(port));
                }
                Err(()) => {
                    let _ = self.procs.kill(id);
                    last = Some(ClusterError::NotReady(format!(
                        "the standby redis-server did not sync on port {port}{}",
                        self.see_log("redis-standby.log")
                    )));
                }
            }
        }
        Err(last.unwrap_or_else(|| ClusterError::NotReady("the standby did not start".into())))
    }

    /// The standby's URL, when [`start_standby`](Self::start_standby) started one.
    pub fn standby_url(&self) -> Option<String> {
        lock(&self.standby).map(|(_, port)| standby_url(port))
    }

    /// Kills node `i` with SIGKILL (a crash, not a shutdown).
    pub fn kill_node(&self, i: usize) -> Result<(), ClusterError> {
        let child = lock(&self.nodes)
            .get_mut(i)
            .ok_or(ClusterError::NoSuchNode(i))?
            .child
            .take();
        if let Some(child) = child {
            self.procs.kill(child)?;
        }
        Ok(())
    }

    pub fn node_running(&self, i: usize) -> bool {
        let child = lock(&self.nodes).get(i).and_then(|n| n.child);
        child.is_some_and(|c| self.procs.is_running(c))
    }

    pub fn redis_port(&self) -> u16 {
        self.redis_port
    }

    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.redis_port)
    }

    /// redis-server's process id, while it runs.
    pub fn redis_pid(&self) -> Option<u32> {
        let id = (*lock(&self.redis))?;
        self.procs.pid(id)
    }

    pub fn node_ports(&self) -> Vec<u16> {
        lock(&self.nodes).iter().map(|n| n.port).collect()
    }

    pub fn node_urls(&self) -> Vec<String> {
        self.node_ports()
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect()
    }

    /// The URL of node `i` (0-based).
    pub fn node_url(&self, i: usize) -> Option<String> {
        self.node_urls().into_iter().nth(i)
    }

    /// Process ids of every running child (tests check that none is left).
    pub fn pids(&self) -> Vec<u32> {
        self.procs
            .running()
            .into_iter()
            .map(|(_, pid)| pid)
            .collect()
    }

    /// Stops every child, closes the proxy's routes and removes the log directory.
    pub fn stop(&self) {
        lock(&self.redis).take();
        lock(&self.standby).take();
        for n in lock(&self.nodes).iter_mut() {
            n.child = None;
        }
        self.procs.shutdown();
        if let Some(p) = &self.proxy {
            p.close();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Where the children write (`Logs::TempDir`).
    pub fn log_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn output(&self, log: &str) -> Output {
        match &self.dir {
            Some(dir) => Output::File(dir.join(log)),
            None => Output::Discard,
        }
    }

    fn see_log(&self, log: &str) -> String {
        match &self.dir {
            Some(dir) => format!("; see {}", dir.join(log).display()),
            None => String::new(),
        }
    }

    /// Waits until `ready` holds while the child runs; `Err` when it exits or the deadline passes.
    fn ready(&self, child: ChildId, mut ready: impl FnMut() -> bool) -> Result<(), ()> {
        let came_up = wait_until(START_DEADLINE, || ready() || !self.procs.is_running(child));
        if came_up && self.procs.is_running(child) {
            Ok(())
        } else {
            Err(())
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The arguments of a throwaway `redis-server` on loopback: no snapshots and
/// no append-only file, so it never forks to save and leaves nothing behind.
pub fn redis_server_args(port: u16) -> [String; 8] {
    [
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--save".into(),
        String::new(),
        "--appendonly".into(),
        "no".into(),
    ]
}

fn standby_url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

/// Sets a key's limit through a node's API, as a client of the service would.
pub async fn put_limit(
    http: &reqwest::Client,
    node: &str,
    key: &str,
    limit: u64,
    window_ms: u64,
) -> Result<(), ClusterError> {
    let body = crate::wire::Limit { limit, window_ms };
    let what = format!("PUT {node}/api/limits/{key}");
    let r = http
        .put(format!("{node}/api/limits/{key}"))
        .json(&body)
        .send()
        .await
        .map_err(|e| ClusterError::Request(format!("{what}: {e}")))?;
    if r.status().is_success() {
        return Ok(());
    }
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    Err(ClusterError::Request(format!(
        "{what} answered {status}: {text}"
    )))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
