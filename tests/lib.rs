//! Support for the workspace-level end-to-end tests: where things are built,
//! and builds of plugin variants (rebuilt, incompatible) made during a test.

use demo_host::plugin::locate::{older_than_sources, PluginCrate};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Serialises the cargo builds that tests start (they share a target directory).
static BUILD: Mutex<()> = Mutex::new(());

/// Serialises the plugin-api variant builds from build to copy.
static VARIANTS: Mutex<()> = Mutex::new(());

/// Held by a test whose cluster should not compete with another test's
/// cluster in this process: a compose project, a PostgreSQL primary and
/// replica. The e2e modules were separate binaries once, each run alone;
/// now they are threads of one, and these take turns.
/// Not held around cargo builds (a test that holds it may build).
pub static ALONE: Mutex<()> = Mutex::new(());

/// Takes [`ALONE`] for as long as the guard lives.
pub fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The directory of the profile these tests were built with (`target/debug`).
pub fn profile_dir() -> PathBuf {
    target_dir().join(if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    })
}

/// A directory for the builds tests make themselves, kept between runs so they are incremental.
pub fn fixture_dir() -> PathBuf {
    target_dir().join("test-fixtures")
}

/// Runs `cargo build` and panics with its output when it fails.
pub fn cargo_build(dir: &Path, args: &[&str], target: &Path, envs: &[(&str, &str)]) {
    let _g = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo build {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The built library of a workspace plugin (`example`, `ratelimiter`, `tikv`),
/// built if missing or older than its sources: `cargo test -p e2e-tests` does
/// not rebuild the cdylibs, and a stale plugin would test yesterday's code.
pub fn plugin_library(name: &str) -> PathBuf {
    let lib = profile_dir().join(format!("libsubject_{name}.so"));
    // Its own crate, or plugin-api, which every plugin compiles in.
    let stale = || {
        PluginCrate::read(&workspace_root().join("plugins").join(name))
            .ok()
            .flatten()
            .is_some_and(|krate| krate.is_stale(&lib))
            || older_than_sources(&lib, &[workspace_root().join("plugin-api")])
    };
    if !lib.exists() || stale() {
        cargo_build(
            &workspace_root(),
            &["-p", &format!("subject-{name}")],
            &target_dir(),
            &[],
        );
    }
    assert!(lib.exists(), "{} was not built", lib.display());
    if name == "ratelimiter" {
        // The plugin's cluster needs the service, another package; both
        // depend on its crate.
        let node_crate = workspace_root().join("crates/ratelimiter-node");
        let node = profile_dir().join("ratelimiter-node");
        if older_than_sources(&lib, std::slice::from_ref(&node_crate))
            || older_than_sources(&node, &[node_crate])
        {
            cargo_build(
                &workspace_root(),
                &["-p", "ratelimiter-node", "-p", "subject-ratelimiter"],
                &target_dir(),
                &[],
            );
        }
    }
    lib
}

/// Builds the example plugin with a build tag in its version, in a target
/// directory of its own, and returns the library. Different tags give
/// different files, as a developer's rebuild would.
pub fn build_tagged_example(tag: &str) -> PathBuf {
    let target = fixture_dir().join("tagged");
    cargo_build(
        &workspace_root(),
        &["-p", "subject-example"],
        &target,
        &[("EXAMPLE_PLUGIN_BUILD_TAG", tag)],
    );
    keep_example_build(&target, tag)
}

/// Copies the example library built in `target` out as `libsubject_example-<name>.so`,
/// so the next build into the same target directory does not overwrite it.
fn keep_example_build(target: &Path, name: &str) -> PathBuf {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let lib = target.join(profile).join("libsubject_example.so");
    let copy = fixture_dir().join(format!("libsubject_example-{name}.so"));
    std::fs::copy(&lib, &copy).unwrap_or_else(|e| panic!("copy the {name} build: {e}"));
    copy
}

/// Builds the example plugin against a modified copy of plugin-api: `version`
/// replaces its package version and `patch_ffi` edits its `ffi.rs`. This is
/// how a plugin built against another plugin-api looks to the host.
pub fn build_example_against(
    variant: &str,
    version: &str,
    patch_ffi: impl Fn(&str) -> String,
) -> PathBuf {
    build_example_patched(variant, version, |file, text| match file {
        "ffi.rs" => patch_ffi(text),
        _ => text.to_string(),
    })
}

/// As [`build_example_against`], with `patch(file name, text)` applied to
/// every file of plugin-api's `src` and of the example's `src`.
pub fn build_example_patched(
    variant: &str,
    version: &str,
    patch: impl Fn(&str, &str) -> String,
) -> PathBuf {
    // The variants share one target directory: a variant's library is copied
    // out before another build can overwrite it.
    let _variants = VARIANTS.lock().unwrap_or_else(|p| p.into_inner());
    let root = workspace_root();
    let ws = fixture_dir().join(variant);
    let api = ws.join("plugin-api");
    let example = ws.join("example");
    for d in [&api, &example] {
        let _ = std::fs::remove_dir_all(d.join("src"));
        std::fs::create_dir_all(d.join("src")).expect("fixture dirs");
    }
    copy_dir(&root.join("plugin-api/src"), &api.join("src"));
    copy_dir(&root.join("plugins/example/src"), &example.join("src"));
    for dir in [api.join("src"), example.join("src")] {
        for entry in std::fs::read_dir(&dir).expect("read fixture src").flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(text) = std::fs::read_to_string(&path) {
                std::fs::write(&path, patch(&name, &text)).expect("write patched file");
            }
        }
    }
    let write = |p: PathBuf, s: String| std::fs::write(p, s).expect("write fixture file");
    let workspace = Workspace::read(&root);
    let mut fixture: toml::Table =
        "[workspace]\nresolver = \"2\"\nmembers = [\"plugin-api\", \"example\"]\n"
            .parse()
            .expect("a workspace manifest");
    fixture.insert("profile".into(), workspace.profiles.clone());
    write(ws.join("Cargo.toml"), fixture.to_string());
    write(
        api.join("Cargo.toml"),
        workspace.standalone("plugin-api", |m| {
            m["package"]["version"] = toml::Value::String(version.into());
        }),
    );
    write(
        example.join("Cargo.toml"),
        workspace.standalone("plugins/example", |m| {
            // The patched plugin-api beside it, whatever version it now claims.
            let mut api = toml::Table::new();
            api.insert("path".into(), toml::Value::String("../plugin-api".into()));
            m["dependencies"]["plugin-api"] = toml::Value::Table(api);
        }),
    );
    // The main lock file pins the same dependency versions, so the shared target directory is reused.
    let _ = std::fs::copy(root.join("Cargo.lock"), ws.join("Cargo.lock"));
    let target = fixture_dir().join("variants-target");
    cargo_build(&ws, &["-p", "subject-example"], &target, &[]);
    keep_example_build(&target, variant)
}

/// The workspace's manifest: what members inherit with `x.workspace = true`.
struct Workspace {
    root: PathBuf,
    package: toml::Table,
    dependencies: toml::Table,
    lints: toml::Value,
    profiles: toml::Value,
}

impl Workspace {
    fn read(root: &Path) -> Self {
        let text = std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace manifest");
        let mut top: toml::Table = text.parse().expect("workspace manifest parses");
        let mut ws = match top.remove("workspace") {
            Some(toml::Value::Table(t)) => t,
            _ => panic!("no [workspace] in {}", root.display()),
        };
        let mut table = |key: &str| match ws.remove(key) {
            Some(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        Self {
            root: root.to_path_buf(),
            package: table("package"),
            dependencies: table("dependencies"),
            lints: toml::Value::Table(table("lints")),
            profiles: top
                .remove("profile")
                .unwrap_or_else(|| toml::Value::Table(toml::Table::new())),
        }
    }

    /// The manifest of the member at `dir` (relative to the root) as a crate
    /// outside this workspace would write it: every inherited key filled in
    /// from the workspace, path dependencies made absolute, no dev-dependencies;
    /// then `edit`. A fixture built from it has the member's dependencies, and
    /// follows them when they change.
    fn standalone(&self, dir: &str, edit: impl FnOnce(&mut toml::Table)) -> String {
        let path = self.root.join(dir).join("Cargo.toml");
        let text = std::fs::read_to_string(&path).expect("member manifest");
        let mut m: toml::Table = text.parse().expect("member manifest parses");
        if let Some(toml::Value::Table(package)) = m.get_mut("package") {
            for (key, value) in package.iter_mut() {
                if inherits(value) {
                    *value = self.package.get(key).cloned().unwrap_or_else(|| {
                        panic!(
                            "{} inherits package.{key}, which the workspace lacks",
                            path.display()
                        )
                    });
                }
            }
        }
        m.remove("dev-dependencies");
        m.insert("lints".into(), self.lints.clone());
        if let Some(toml::Value::Table(deps)) = m.get_mut("dependencies") {
            self.fill_dependencies(deps);
        }
        if let Some(toml::Value::Table(targets)) = m.get_mut("target") {
            for (_, target) in targets.iter_mut() {
                if let toml::Value::Table(t) = target {
                    t.remove("dev-dependencies");
                    if let Some(toml::Value::Table(deps)) = t.get_mut("dependencies") {
                        self.fill_dependencies(deps);
                    }
                }
            }
        }
        edit(&mut m);
        m.to_string()
    }

    /// `name.workspace = true` (with its own `features`, `optional`) becomes the workspace's entry.
    fn fill_dependencies(&self, deps: &mut toml::Table) {
        for (name, dep) in deps.iter_mut() {
            if !inherits(dep) {
                continue;
            }
            let mut filled = match self.dependencies.get(name) {
                Some(toml::Value::String(version)) => {
                    let mut t = toml::Table::new();
                    t.insert("version".into(), toml::Value::String(version.clone()));
                    t
                }
                Some(toml::Value::Table(t)) => t.clone(),
                _ => panic!("`{name}` inherits a dependency the workspace does not declare"),
            };
            if let Some(toml::Value::String(p)) = filled.get_mut("path") {
                *p = self.root.join(&*p).display().to_string();
            }
            if let toml::Value::Table(own) = dep {
                for (key, value) in own.iter() {
                    match (key.as_str(), filled.get_mut(key), value) {
                        ("workspace", _, _) => {}
                        ("features", Some(toml::Value::Array(all)), toml::Value::Array(more)) => {
                            all.extend(more.iter().cloned())
                        }
                        _ => {
                            filled.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
            *dep = toml::Value::Table(filled);
        }
    }
}

/// Whether a manifest value is `{ workspace = true, … }`.
fn inherits(value: &toml::Value) -> bool {
    value
        .get("workspace")
        .and_then(toml::Value::as_bool)
        .unwrap_or(false)
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read source dir").flatten() {
        let p = entry.path();
        let dest = to.join(entry.file_name());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).expect("copy source file");
        }
    }
}

/// Real processes for tests: free loopback ports, children killed on drop, waits with deadlines.
pub mod procs {
    use ratelimiter_node::cluster::{self as launcher, Logs, NodeArgs};
    use ratelimiter_node::wire::Mode;
    use std::net::TcpListener;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A port on 127.0.0.1 that was free a moment ago.
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    /// Polls `cond` until it holds or `limit` passes; true when it held.
    pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if cond() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// A child process that is killed when the guard drops, also when a test fails.
    pub struct ChildGuard(pub Child);

    impl Drop for ChildGuard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// The Redis of a [`Cluster`] (the cluster owns its process).
    pub struct Redis {
        pub port: u16,
    }

    impl Redis {
        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        /// Runs one redis-cli command with a time limit; `None` when it did not answer in time.
        pub fn cli(&self, args: &[&str], limit: Duration) -> Option<String> {
            let mut child = Command::new("redis-cli")
                .args(["-p", &self.port.to_string()])
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-cli runs");
            let done = wait_until(limit, || matches!(child.try_wait(), Ok(Some(_))));
            if !done {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            let out = child.wait_with_output().ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }

        /// True when a write goes through within `limit` (false while `CLIENT PAUSE WRITE` holds).
        pub fn accepts_writes(&self, limit: Duration) -> bool {
            self.cli(&["SET", "e2e:probe", "1"], limit)
                .is_some_and(|r| r == "OK")
        }
    }

    /// A rate limiter cluster the test owns (Redis and three nodes, started
    /// by the shared `ratelimiter_node::cluster` launcher), for the plugin's
    /// `env=compose` mode: its faults outlive the host, so tests can check
    /// that the host undid them.
    pub struct Cluster {
        pub redis: Redis,
        procs: ratelimiter_node::cluster::Cluster,
    }

    impl Cluster {
        pub fn start() -> Cluster {
            let node_bin = crate::profile_dir().join("ratelimiter-node");
            assert!(
                node_bin.exists(),
                "{} is built with the plugin (see `plugin_library`)",
                node_bin.display()
            );
            let args = NodeArgs::new(Mode::Cached);
            let procs = launcher::Cluster::start("redis-server", &node_bin, Logs::Discard, 3, args)
                .unwrap_or_else(|e| panic!("the cluster does not start: {e}"));
            Cluster {
                redis: Redis {
                    port: procs.redis_port(),
                },
                procs,
            }
        }

        /// The plugin config that points at this cluster.
        pub fn config(&self) -> String {
            format!(
                "env=compose,redis={},nodes={}",
                self.procs.redis_url(),
                self.procs.node_urls().join("+")
            )
        }
    }
}

/// The `demo-host` binary, built if missing or older than its sources.
pub fn demo_host_binary() -> PathBuf {
    let bin = profile_dir().join("demo-host");
    // `cargo test -p e2e-tests` builds the host's library, not its binary.
    let root = workspace_root();
    let sources = [
        root.join("host"),
        root.join("plugin-api"),
        root.join("crates/prereq"),
    ];
    if older_than_sources(&bin, &sources) {
        cargo_build(&workspace_root(), &["-p", "demo-host"], &target_dir(), &[]);
    }
    bin
}

/// A `demo-host` command whose state (leftover records) lives in `state`.
pub fn demo_host(state: &Path) -> Command {
    let mut cmd = Command::new(demo_host_binary());
    // Neither the state nor a developer's own settings file leak into a test.
    cmd.env("DEMO_HOST_STATE_DIR", state)
        .env("XDG_CONFIG_HOME", state);
    cmd
}

/// The processes a run started: those that carry `marker=value` in their
/// environment (children inherit it), plus the redis-server a marked process
/// names with `--redis redis://host:port` or is the parent of (redis-server
/// writes its process title over its environment, so the marker cannot find
/// it directly; and nodes behind the fault proxy name a proxy route, not Redis).
pub fn processes_of_run(marker: &str, value: &str) -> Vec<(u32, String)> {
    let mut found = processes_with_env(marker, value);
    let marked: Vec<u32> = found.iter().map(|(pid, _)| *pid).collect();
    let ports: Vec<String> = found
        .iter()
        .filter_map(|(_, cmd)| cmd.split("--redis redis://").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|addr| addr.rsplit(':').next().map(str::to_string))
        .collect();
    for (pid, cmd, _) in all_processes() {
        let is_its_redis = cmd.contains("redis-server")
            && (ports.iter().any(|p| cmd.contains(&format!(":{p}")))
                || parent(pid).is_some_and(|pp| marked.contains(&pp)));
        if is_its_redis && !found.iter().any(|(p, _)| *p == pid) {
            found.push((pid, cmd));
        }
    }
    found
}

/// A process's parent, from `/proc/<pid>/stat` (the field after the state).
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Every process: pid, command line, and its environment block.
fn all_processes() -> Vec<(u32, String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            Some((pid, String::from_utf8_lossy(&cmd).replace('\0', " "), env))
        })
        .collect()
}

/// Processes that carry `marker=value` in their environment (zombies, which
/// have no command line, are not leaks).
pub fn processes_with_env(marker: &str, value: &str) -> Vec<(u32, String)> {
    let needle = format!("{marker}={value}");
    all_processes()
        .into_iter()
        .filter(|(pid, cmd, env)| {
            *pid != std::process::id()
                && !cmd.trim().is_empty()
                && env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes())
        })
        .map(|(pid, cmd, _)| (pid, cmd))
        .collect()
}

/// The Docker engine and compose projects, for the `docker_*` tests.
pub mod docker {
    use super::workspace_root;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    /// The local images are built once per test process.
    static IMAGES: Mutex<bool> = Mutex::new(false);
    static PROJECTS: AtomicUsize = AtomicUsize::new(0);

    /// `Err(why)` when no Docker engine answers `docker info`; tests then skip loudly.
    pub fn engine_answers() -> Result<(), String> {
        let out = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
            .map_err(|e| format!("cannot run the docker CLI ({e})"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("docker info failed")
                .to_string())
        }
    }

    /// Runs `docker/build-images.sh` (FROM scratch images, nothing pulled) once per test process.
    pub fn build_local_images() {
        let mut built = IMAGES.lock().unwrap_or_else(|p| p.into_inner());
        if *built {
            return;
        }
        let script = workspace_root().join("docker/build-images.sh");
        let out = Command::new(&script)
            .output()
            .expect("docker/build-images.sh runs");
        assert!(
            out.status.success(),
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        *built = true;
    }

    /// A docker-compose v1 project with a unique name, brought down when dropped (also when a test fails).
    pub struct ComposeProject {
        pub name: String,
        file: PathBuf,
        /// The variables `docker-compose` runs with.
        pub env: Vec<(String, String)>,
    }

    impl ComposeProject {
        /// A project of `file` named `<prefix><pid>x<n>`; `env` fills the compose file's variables.
        pub fn new(prefix: &str, file: &Path, env: Vec<(String, String)>) -> ComposeProject {
            let n = PROJECTS.fetch_add(1, Ordering::SeqCst);
            let name = format!("{prefix}{}x{n}", std::process::id());
            ComposeProject {
                name,
                file: file.to_path_buf(),
                env,
            }
        }

        /// Runs `docker-compose -p <name> -f <file> <args>`; `Err` carries its output.
        pub fn compose(&self, args: &[&str]) -> Result<Output, String> {
            let mut cmd = Command::new("docker-compose");
            cmd.arg("-p")
                .arg(&self.name)
                .arg("-f")
                .arg(&self.file)
                .args(args);
            for (k, v) in &self.env {
                cmd.env(k, v);
            }
            let out = cmd.output().map_err(|e| {
                format!(
                    "cannot run docker-compose ({e}): install the Debian package docker-compose"
                )
            })?;
            if out.status.success() {
                Ok(out)
            } else {
                Err(format!(
                    "docker-compose {args:?} failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        }

        /// `down -v --remove-orphans`: containers, the project's network and its volumes.
        pub fn down(&self) -> Result<(), String> {
            self.compose(&["down", "-v", "--remove-orphans", "--timeout", "2"])
                .map(|_| ())
        }

        /// Containers, networks and volumes that still carry the project's compose label.
        pub fn leftovers(&self) -> Vec<String> {
            let label = format!("label=com.docker.compose.project={}", self.name);
            let mut found = Vec::new();
            for kind in [
                ["ps", "-a"].as_slice(),
                &["network", "ls"],
                &["volume", "ls"],
            ] {
                let out = Command::new("docker")
                    .args(kind)
                    .args(["-q", "--filter", &label])
                    .output();
                let ids = out
                    .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                    .unwrap_or_default();
                found.extend(ids.split_whitespace().map(|id| format!("{} {id}", kind[0])));
            }
            found
        }
    }

    impl Drop for ComposeProject {
        fn drop(&mut self) {
            let _ = self.down();
            let label = format!("label=com.docker.compose.project={}", self.name);
            for (list, remove) in [
                (["ps", "-aq"].as_slice(), ["rm", "-f", "-v"].as_slice()),
                (&["network", "ls", "-q"], &["network", "rm"]),
                (&["volume", "ls", "-q"], &["volume", "rm", "-f"]),
            ] {
                let Ok(out) = Command::new("docker")
                    .args(list)
                    .args(["--filter", &label])
                    .output()
                else {
                    continue;
                };
                let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .map(String::from)
                    .collect();
                if !ids.is_empty() {
                    let _ = Command::new("docker").args(remove).args(&ids).output();
                }
            }
        }
    }

    /// `GET path` on 127.0.0.1:port: the status code and body, `None` when nothing answers in time.
    pub fn http_get(port: u16, path: &str, limit: Duration) -> Option<(u16, String)> {
        let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), limit).ok()?;
        s.set_read_timeout(Some(limit)).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    }

    /// Sends one inline Redis command to 127.0.0.1:port; the first reply line, `None` without an answer in time.
    pub fn redis_command(port: u16, command: &str, limit: Duration) -> Option<String> {
        let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), limit).ok()?;
        s.set_read_timeout(Some(limit)).ok()?;
        write!(s, "{command}\r\n").ok()?;
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).ok()?;
        let reply = String::from_utf8_lossy(&buf[..n]);
        (n > 0).then(|| reply.lines().next().unwrap_or_default().to_string())
    }
}

/// The anomalies a headless run's journal shows detected without a fix that
/// resolved them: a remedy run of the same fault (its `fault_started_ms`),
/// stage `resolved`, whose invariants hold the anomaly. Empty when every
/// detected anomaly was fixed (issue 15: a remedy for every demo anomaly).
pub fn unfixed_anomalies(journal: &serde_json::Value) -> Vec<String> {
    let empty = Vec::new();
    let remedies = journal["remedies"].as_array().unwrap_or(&empty);
    journal["detections"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter(|d| d["detected_ms"].is_u64())
        .filter(|d| {
            !remedies.iter().any(|r| {
                r["fault_started_ms"] == d["fault_started_ms"]
                    && r["stage"]["stage"] == "resolved"
                    && r["invariants"]
                        .as_array()
                        .is_some_and(|i| i.contains(&d["invariant"]))
            })
        })
        .map(|d| {
            format!(
                "{} (fault started {})",
                d["invariant"], d["fault_started_ms"]
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standalone_manifest_inherits_nothing_and_keeps_the_workspace_versions() {
        let ws = Workspace::read(&workspace_root());
        let text = ws.standalone("plugin-api", |_| {});
        let m: toml::Table = text.parse().unwrap();
        assert!(!text.contains("workspace"), "{text}");
        assert!(m.get("dev-dependencies").is_none(), "{text}");
        assert_eq!(
            m["dependencies"]["abi_stable"]["version"], ws.dependencies["abi_stable"],
            "{text}"
        );
        assert_eq!(m["package"]["edition"], ws.package["edition"]);
        let example: toml::Table = ws.standalone("plugins/example", |_| {}).parse().unwrap();
        let api = example["dependencies"]["plugin-api"]["path"]
            .as_str()
            .unwrap();
        assert!(
            Path::new(api).join("Cargo.toml").exists(),
            "path dependencies are absolute: {api}"
        );
    }
}
