//! The local environment: `redis-server` and three `ratelimiter-node`s as child
//! processes on free loopback ports.
//!
//! Children are spawned from one long-lived launcher thread with
//! `PR_SET_PDEATHSIG(SIGKILL)`: the kernel delivers the signal when the thread
//! that forked the child ends, so a short-lived host worker thread must not be
//! the parent; the launcher lives as long as the environment, and when the host
//! process dies (even by SIGKILL) every child dies with it.

use super::lock;
use plugin_api::{PluginError, PluginResult};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const START_DEADLINE: Duration = Duration::from_secs(15);
const PORT_ATTEMPTS: usize = 4;

type Job = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns children from a thread that outlives them (see the module docs).
struct Launcher {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Launcher {
    fn new() -> Launcher {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("ratelimiter-launcher".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok();
        Launcher {
            tx: Some(tx),
            thread,
        }
    }

    fn spawn(&self, mut cmd: Command) -> std::io::Result<Child> {
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls (prctl, getppid) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(std::io::Error::other(
                        "parent exited before the child started",
                    ));
                }
                Ok(())
            });
        }
        let (reply_tx, reply_rx) = mpsc::channel();
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| std::io::Error::other("launcher stopped"))?;
        tx.send((cmd, reply_tx))
            .map_err(|_| std::io::Error::other("launcher thread is gone"))?;
        reply_rx
            .recv()
            .map_err(|_| std::io::Error::other("launcher thread is gone"))?
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How the nodes are started.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub bin: PathBuf,
    pub mode: &'static str,
    pub flush_ms: u64,
    /// How long a node waits for Redis before failing a check (strict: closed).
    pub redis_timeout_ms: u64,
}

pub struct LocalEnv {
    launcher: Launcher,
    dir: PathBuf,
    redis: Mutex<Option<Child>>,
    pub redis_port: u16,
    nodes: Vec<Mutex<Option<Child>>>,
    pub node_ports: Vec<u16>,
    spec: NodeSpec,
}

impl LocalEnv {
    /// Starts Redis and `count` nodes and waits until all answer.
    pub fn start(redis_bin: &str, spec: NodeSpec, count: usize) -> PluginResult<LocalEnv> {
        let redis_path = which(redis_bin).ok_or_else(|| {
            PluginError::Missing(format!(
                "`{redis_bin}` not found: install the Debian package `redis-server` (apt-get install redis-server) or set redis_bin=<path>"
            ))
        })?;
        if !spec.bin.is_file() {
            return Err(PluginError::Missing(format!(
                "ratelimiter-node not found at {}: build it with `cargo build -p subject-ratelimiter`",
                spec.bin.display()
            )));
        }
        let ports = free_ports(count + 1)?;
        let dir = std::env::temp_dir().join(format!(
            "demo-host-ratelimiter-{}-{}",
            std::process::id(),
            ports[0]
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| PluginError::failed(format!("cannot create {}: {e}", dir.display())))?;
        let mut env = LocalEnv {
            launcher: Launcher::new(),
            dir,
            redis: Mutex::new(None),
            redis_port: ports[0],
            nodes: (0..count).map(|_| Mutex::new(None)).collect(),
            node_ports: ports[1..].to_vec(),
            spec,
        };
        // From here on, Drop stops whatever was started if a later step fails.
        // A port found free may be taken before the child binds it: then the
        // child exits at once and the start is retried on another port.
        for attempt in 1..=PORT_ATTEMPTS {
            match env.start_redis(&redis_path) {
                Ok(()) => break,
                Err(e) if attempt == PORT_ATTEMPTS => return Err(e),
                Err(_) => env.redis_port = free_ports(1)?[0],
            }
        }
        for i in 0..count {
            for attempt in 1..=PORT_ATTEMPTS {
                match env.start_node(i) {
                    Ok(()) => break,
                    Err(e) if attempt == PORT_ATTEMPTS => return Err(e),
                    Err(_) => env.node_ports[i] = free_ports(1)?[0],
                }
            }
        }
        Ok(env)
    }

    fn start_redis(&self, redis_path: &Path) -> PluginResult<()> {
        let port = self.redis_port;
        let mut cmd = Command::new(redis_path);
        cmd.args(redis_server_args(port))
            .arg("--dir")
            .arg(&self.dir);
        let child = self.spawn(cmd, "redis.log")?;
        let mut slot = lock(&self.redis);
        *slot = Some(child);
        let log = self.dir.join("redis.log");
        ready_or_killed(
            &mut slot,
            || redis_ping(port),
            || {
                format!(
                    "redis-server did not answer on port {port}; see {}",
                    log.display()
                )
            },
        )
    }

    fn spawn(&self, mut cmd: Command, log: &str) -> PluginResult<Child> {
        let file = std::fs::File::create(self.dir.join(log)).map_err(PluginError::failed)?;
        let err = file.try_clone().map_err(PluginError::failed)?;
        cmd.stdin(Stdio::null()).stdout(file).stderr(err);
        self.launcher
            .spawn(cmd)
            .map_err(|e| PluginError::failed(format!("cannot start {log}: {e}")))
    }

    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.redis_port)
    }

    pub fn node_urls(&self) -> Vec<String> {
        self.node_ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect()
    }

    /// Starts node `i` (0-based) on its port and waits for its `/health`.
    pub fn start_node(&self, i: usize) -> PluginResult<()> {
        let id = format!("node-{}", i + 1);
        let port = self.node_ports[i];
        let mut cmd = Command::new(&self.spec.bin);
        cmd.args([
            "--id",
            &id,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--redis",
            &self.redis_url(),
        ])
        .args([
            "--mode",
            self.spec.mode,
            "--flush-ms",
            &self.spec.flush_ms.to_string(),
            "--redis-timeout-ms",
            &self.spec.redis_timeout_ms.to_string(),
        ]);
        let child = self.spawn(cmd, &format!("{id}.log"))?;
        let mut slot = lock(&self.nodes[i]);
        if let Some(mut old) = slot.replace(child) {
            let _ = old.kill();
            let _ = old.wait();
        }
        let log = self.dir.join(format!("{id}.log"));
        ready_or_killed(
            &mut slot,
            || http_ok(port, "/health"),
            || format!("{id} did not answer on port {port}; see {}", log.display()),
        )
    }

    /// redis-server's process id, while it runs.
    pub fn redis_pid(&self) -> Option<u32> {
        lock(&self.redis).as_ref().map(Child::id)
    }

    /// Kills node `i` with SIGKILL (a crash, not a shutdown).
    pub fn kill_node(&self, i: usize) -> PluginResult<()> {
        if let Some(mut child) = lock(&self.nodes[i]).take() {
            child.kill().map_err(PluginError::failed)?;
            let _ = child.wait();
        }
        Ok(())
    }

    pub fn node_running(&self, i: usize) -> bool {
        lock(&self.nodes[i])
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Process ids of every running child (tests check that none is left).
    pub fn pids(&self) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .nodes
            .iter()
            .filter_map(|n| lock(n).as_ref().map(Child::id))
            .collect();
        out.extend(lock(&self.redis).as_ref().map(Child::id));
        out
    }

    pub fn stop(&self) {
        for n in &self.nodes {
            if let Some(mut c) = lock(n).take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if let Some(mut c) = lock(&self.redis).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    pub fn log_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for LocalEnv {
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

/// Looks a program up: a path as given, else each directory of PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|c| c.is_file())
}

/// Distinct free loopback ports (held open together so they differ, then released).
pub fn free_ports(n: usize) -> PluginResult<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| PluginError::failed(format!("no free loopback port: {e}")))?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(PluginError::failed)
        })
        .collect()
}

/// Waits until `ready` holds; false when the child exits first or the deadline passes.
/// Waits until the child in `slot` is `ready`; if it dies or never gets ready,
/// kills it, empties the slot and says `why`.
fn ready_or_killed(
    slot: &mut Option<Child>,
    ready: impl FnMut() -> bool,
    why: impl FnOnce() -> String,
) -> PluginResult<()> {
    let Some(child) = slot.as_mut() else {
        return Err(PluginError::failed(why()));
    };
    if wait_for_child(child, ready) {
        return Ok(());
    }
    let _ = child.kill();
    let _ = child.wait();
    *slot = None;
    Err(PluginError::failed(why()))
}

fn wait_for_child(child: &mut Child, mut ready: impl FnMut() -> bool) -> bool {
    wait_until(START_DEADLINE, || {
        ready() || !matches!(child.try_wait(), Ok(None))
    }) && matches!(child.try_wait(), Ok(None))
}

/// Polls `ready` until it holds (true) or the deadline passes (false).
pub fn wait_until(deadline: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

fn exchange(port: u16, request: &[u8]) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(request).ok()?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

pub fn redis_ping(port: u16) -> bool {
    exchange(port, b"PING\r\n").is_some_and(|r| r.starts_with("+PONG"))
}

pub fn http_ok(port: u16, path: &str) -> bool {
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    exchange(port, req.as_bytes())
        .is_some_and(|r| r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"))
}
