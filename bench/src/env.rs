//! The real processes a benchmark runs against: redis-server and
//! ratelimiter-node children on free loopback ports, killed when dropped (also
//! when a group fails), and the workspace's built artifacts.

use anyhow::{bail, Context as _};
use demo_host::plugin::locate::older_than_sources;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use subject_ratelimiter::plugin::local_env::redis_server_args;

/// A child process that is killed and reaped when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> anyhow::Result<Proc> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Proc {
            name: name.into(),
            child,
        })
    }

    /// Fails when the process already ended (a port clash, a bad flag).
    pub fn alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("{} exited early ({status})", self.name),
            None => Ok(()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `ready` until it holds or `limit` passes.
pub fn wait_until(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if ready()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} was not ready within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Where this binary's sibling artifacts live (target/<profile>).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// Each artifact the groups run, its package, and the crates it is built from.
const ARTIFACTS: [(&str, &str, &[&str]); 5] = [
    ("demo-host", "demo-host", &["host", "plugin-api"]),
    (
        "ratelimiter-node",
        "subject-ratelimiter",
        &["plugins/ratelimiter", "plugin-api"],
    ),
    (
        "libsubject_ratelimiter.so",
        "subject-ratelimiter",
        &["plugins/ratelimiter", "plugin-api"],
    ),
    (
        "libsubject_example.so",
        "subject-example",
        &["plugins/example", "plugin-api"],
    ),
    (
        "libsubject_tikv.so",
        "subject-tikv",
        &["plugins/tikv", "plugin-api"],
    ),
];

/// Builds, in this binary's profile, the packages whose artifacts are missing
/// or older than their sources: `cargo run -p demo-bench` builds only the
/// bench, and a stale node or plugin would measure yesterday's code. Returns
/// the packages it built.
pub fn build_stale_artifacts() -> anyhow::Result<Vec<&'static str>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if !root.join("Cargo.toml").is_file() {
        // Not run from its workspace: `artifact` names what is missing.
        return Ok(vec![]);
    }
    let dir = target_dir();
    let mut packages: Vec<&str> = ARTIFACTS
        .iter()
        .filter(|(name, _, crates)| {
            let crates: Vec<PathBuf> = crates.iter().map(|c| root.join(c)).collect();
            older_than_sources(&dir.join(name), &crates)
        })
        .map(|(_, package, _)| *package)
        .collect();
    packages.dedup();
    if packages.is_empty() {
        return Ok(packages);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // The profile whose directory this binary runs from (`target/debug` is `dev`).
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(name) => name,
    };
    cmd.args(["build", "--profile", profile]).current_dir(&root);
    if let Some(target) = dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    for p in &packages {
        cmd.args(["-p", p]);
    }
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("`cargo build` of {} failed ({status})", packages.join(", "));
    }
    Ok(packages)
}

/// A built artifact (`ratelimiter-node`, `libsubject_example.so`) of the same profile as this binary.
pub fn artifact(name: &str) -> anyhow::Result<PathBuf> {
    let p = target_dir().join(name);
    if p.is_file() {
        return Ok(p);
    }
    bail!(
        "{} is not built; run `cargo build {}-p demo-bench -p subject-ratelimiter -p subject-example -p demo-host` first",
        p.display(),
        if cfg!(debug_assertions) { "" } else { "--release " }
    )
}

/// The program on PATH, if installed.
pub fn tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Runs a peer tool to its end and reads what it printed; when that does not
/// parse, the error shows both its output streams.
pub fn run_tool<T>(
    cmd: &mut Command,
    what: &str,
    parse: impl FnOnce(&str) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse(&text).with_context(|| {
        format!(
            "{what} printed no result: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub struct Redis {
    /// Kept for its Drop: the server dies with this value.
    pub _proc: Proc,
    pub port: u16,
}

impl Redis {
    pub fn start() -> anyhow::Result<Redis> {
        let bin = tool("redis-server")
            .context("redis-server is not installed (Debian package redis-server)")?;
        let port = free_port()?;
        let mut proc = Proc::spawn(
            "redis-server",
            Command::new(bin).args(redis_server_args(port)),
        )?;
        let url = format!("redis://127.0.0.1:{port}");
        let client = redis::Client::open(url.as_str())?;
        wait_until("redis-server", Duration::from_secs(10), || {
            proc.alive()?;
            Ok(client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok())
        })?;
        Ok(Redis { _proc: proc, port })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn conn(&self) -> anyhow::Result<redis::Connection> {
        Ok(redis::Client::open(self.url().as_str())?
            .get_connection_with_timeout(Duration::from_secs(2))?)
    }
}

pub struct Node {
    /// Kept for its Drop: the node dies with this value.
    pub _proc: Proc,
    pub url: String,
}

impl Node {
    /// Starts `ratelimiter-node` in `mode` (`strict` or `cached`) against `redis`.
    pub fn start(id: &str, mode: &str, redis: &Redis) -> anyhow::Result<Node> {
        let bin = artifact("ratelimiter-node")?;
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let mut proc = Proc::spawn(
            "ratelimiter-node",
            Command::new(bin).args([
                "--id",
                id,
                "--listen",
                &listen,
                "--redis",
                &redis.url(),
                "--mode",
                mode,
            ]),
        )?;
        let url = format!("http://{listen}");
        wait_until("ratelimiter-node", Duration::from_secs(10), || {
            proc.alive()?;
            Ok(std::net::TcpStream::connect(&listen).is_ok())
        })?;
        Ok(Node { _proc: proc, url })
    }
}

/// Sets a key's limit through a node's API, as a client of the service would.
pub async fn put_limit(
    http: &reqwest::Client,
    node: &str,
    key: &str,
    limit: u64,
    window_ms: u64,
) -> anyhow::Result<()> {
    let r = http
        .put(format!("{node}/api/limits/{key}"))
        .json(&serde_json::json!({ "limit": limit, "window_ms": window_ms }))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!(
            "PUT /api/limits/{key} answered {}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    Ok(())
}
