//! The real processes a benchmark runs against: redis-server and
//! ratelimiter-node children on free loopback ports (the shared cluster
//! launcher), killed when dropped (also when a group fails), and the
//! workspace's built artifacts.

use anyhow::{bail, Context as _};
use demo_host::plugin::locate::older_than_sources;
use ratelimiter_node::cluster::{Cluster, Logs, NodeArgs};
use ratelimiter_node::wire::Mode;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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
const ARTIFACTS: [(&str, &str, &[&str]); 6] = [
    ("demo-host", "demo-host", &["host", "plugin-api"]),
    (
        "ratelimiter-node",
        "ratelimiter-node",
        &["crates/ratelimiter-node"],
    ),
    (
        "libsubject_ratelimiter.so",
        "subject-ratelimiter",
        &[
            "plugins/ratelimiter",
            "crates/ratelimiter-node",
            "plugin-api",
        ],
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
    (
        "libsubject_hostile.so",
        "subject-hostile",
        &["tests/fixtures/hostile", "plugin-api"],
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
        "{} is not built; run `cargo build {}-p demo-bench -p ratelimiter-node -p subject-ratelimiter -p subject-example -p demo-host` first",
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

/// A redis-server child on a free port, killed when dropped (the shared
/// `ratelimiter_node::cluster` launcher), with the nodes started against it.
pub struct Redis {
    cluster: Cluster,
    pub port: u16,
}

impl Redis {
    pub fn start() -> anyhow::Result<Redis> {
        let cluster = Cluster::redis("redis-server", Logs::Discard)?;
        Ok(Redis {
            port: cluster.redis_port(),
            cluster,
        })
    }

    pub fn url(&self) -> String {
        self.cluster.redis_url()
    }

    pub fn conn(&self) -> anyhow::Result<redis::Connection> {
        Ok(redis::Client::open(self.url().as_str())?
            .get_connection_with_timeout(Duration::from_secs(2))?)
    }
}

/// A `ratelimiter-node` against a [`Redis`], killed when dropped.
pub struct Node<'a> {
    pub url: String,
    i: usize,
    cluster: &'a Cluster,
}

impl Node<'_> {
    /// Starts `ratelimiter-node` in `mode` against `redis` and waits for its `/health`.
    pub fn start<'a>(id: &str, mode: Mode, redis: &'a Redis) -> anyhow::Result<Node<'a>> {
        let bin = artifact("ratelimiter-node")?;
        let i = redis.cluster.add_node(&bin, id, NodeArgs::new(mode))?;
        Ok(Node {
            url: redis.cluster.node_url(i).context("the node just started")?,
            i,
            cluster: &redis.cluster,
        })
    }
}

impl Drop for Node<'_> {
    fn drop(&mut self) {
        let _ = self.cluster.kill_node(self.i);
    }
}

/// Sets a key's limit through a node's API, as a client of the service would.
pub use ratelimiter_node::cluster::put_limit;
