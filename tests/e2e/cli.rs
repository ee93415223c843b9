//! What a user expects of the CLI, run through the real binary: a plugin's
//! prerequisites checked before anything is built (with a `PATH` from which
//! `redis-server` is absent), settings files, and the debug log.

use e2e_tests::{demo_host, plugin_library};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A `PATH` of one directory holding `cargo` and the given stand-in scripts.
struct StandinPath {
    dir: tempfile::TempDir,
}

impl StandinPath {
    fn new() -> StandinPath {
        let dir = tempfile::tempdir().unwrap();
        let cargo = prereq::find_on_path("cargo").expect("cargo on PATH");
        std::os::unix::fs::symlink(cargo, dir.path().join("cargo")).unwrap();
        StandinPath { dir }
    }

    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[test]
fn a_missing_redis_server_is_named_with_its_package_and_command_before_any_build() {
    let bin = StandinPath::new();
    let built = bin.path().join("cargo-build-ran");
    // A cargo that records being asked to build: nothing may be built in vain.
    let fake_cargo = bin.script("fake-cargo", &format!("touch {}\nexit 1", built.display()));
    bin.script("apt-get", "exit 1");
    let state = tempfile::tempdir().unwrap();
    let out = demo_host(state.path())
        .args(["run", "--plugin", "plugins/ratelimiter", "--headless"])
        .current_dir(e2e_tests::workspace_root())
        .env("PATH", bin.path())
        .env("CARGO", &fake_cargo)
        .env_remove("DEMO_HOST_YES")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("`redis-server` not found on PATH"),
        "{stderr}"
    );
    assert!(stderr.contains("package `redis-server`"), "{stderr}");
    assert!(
        stderr.contains("apt-get update && ") && stderr.contains("apt-get install -y redis-server"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--yes"),
        "the message says how to let it install: {stderr}"
    );
    assert!(
        !built.exists(),
        "cargo ran before the prerequisites were checked: {stderr}"
    );
}

#[test]
fn yes_runs_the_package_managers_install_and_goes_on() {
    plugin_library("ratelimiter");
    let bin = StandinPath::new();
    let calls = bin.path().join("apt-get-calls");
    // A stand-in apt-get: records its arguments, and `install` provides the binary.
    bin.script(
        "apt-get",
        &format!(
            "echo \"$@\" >> {calls}\n\
             if [ \"$1\" = install ]; then printf '#!/bin/sh\\n' > {dir}/redis-server; /bin/chmod +x {dir}/redis-server; fi",
            calls = calls.display(),
            dir = bin.path().display()
        ),
    );
    let state = tempfile::tempdir().unwrap();
    let out = demo_host(state.path())
        .args([
            "doctor",
            "--plugin",
            "plugins/ratelimiter",
            "--config",
            "env=local",
            "--no-build",
            "--yes",
        ])
        .current_dir(e2e_tests::workspace_root())
        .env("PATH", bin.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let recorded = std::fs::read_to_string(&calls).unwrap_or_default();
    let lines: Vec<&str> = recorded.lines().collect();
    // As root the commands run as they are; otherwise through sudo, which this PATH lacks.
    if is_root() {
        assert_eq!(lines, ["update", "install -y redis-server"], "{stderr}");
        assert!(out.status.success(), "{stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("prerequisites present"));
    } else {
        assert!(stderr.contains("run as root"), "{stderr}");
    }
}

#[test]
fn without_yes_and_without_a_terminal_nothing_is_installed() {
    let bin = StandinPath::new();
    let calls = bin.path().join("apt-get-calls");
    bin.script("apt-get", &format!("echo \"$@\" >> {}", calls.display()));
    let state = tempfile::tempdir().unwrap();
    let out = demo_host(state.path())
        .args(["doctor", "--plugin", "plugins/ratelimiter", "--no-build"])
        .current_dir(e2e_tests::workspace_root())
        .env("PATH", bin.path())
        .env_remove("DEMO_HOST_YES")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!calls.exists(), "apt-get ran without consent");
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

#[test]
fn a_settings_file_is_read_under_the_flags_and_a_bad_one_names_its_line() {
    let state = tempfile::tempdir().unwrap();
    let user = state.path().join("demo-host");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("config.toml"), "countdown = 9\npoll-ms = 500\n").unwrap();
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join("demo-host.toml"), "countdown = 2\n").unwrap();
    let out = demo_host(state.path())
        .args(["config", "--poll-ms", "250"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} line in:\n{text}"))
            .to_string()
    };
    assert!(
        line("countdown").contains("2") && line("countdown").contains("demo-host.toml"),
        "{text}"
    );
    assert!(
        line("poll-ms").contains("250") && line("poll-ms").contains("command line"),
        "{text}"
    );
    std::fs::write(
        cwd.path().join("demo-host.toml"),
        "countdown = 2\ndiagnoser = builtin\n",
    )
    .unwrap();
    let out = demo_host(state.path())
        .arg("config")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("demo-host.toml") && stderr.contains("line 2"),
        "{stderr}"
    );
}

#[test]
fn the_log_file_holds_host_and_plugin_lines_and_never_an_api_key() {
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("debug.log");
    let journal = state.path().join("journal.json");
    let secret = "sk-test-0123456789-never-logged";
    let out = demo_host(state.path())
        .args(["run", "--headless", "--countdown", "0", "--plugin"])
        .arg(plugin_library("example"))
        .arg("--journal")
        .arg(&journal)
        .arg("--log-file")
        .arg(&log)
        .env("ANTHROPIC_API_KEY", secret)
        .env("OPENAI_API_KEY", secret)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("demo-host started"), "{text}");
    assert!(
        text.contains("effect: inject"),
        "the host's effects are logged:\n{text}"
    );
    assert!(
        text.contains("source=\"plugin\""),
        "the plugin's lines are logged:\n{text}"
    );
    assert!(!text.contains(secret), "an API key reached the log");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("effect: inject"),
        "the log went to the terminal"
    );
}

#[test]
fn a_scaffolded_plugin_builds_outside_the_workspace_tests_itself_across_the_abi_and_plays() {
    let state = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    // Its own target dir under ours: the registry dependencies are shared, the crate is not.
    let target = e2e_tests::target_dir().join("scaffold");
    let out = demo_host(state.path())
        .args(["new", "queue-lab", "--path"])
        .arg(parent.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = parent.path().join("queue-lab");
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "src/lib.rs",
        "tests/loads.rs",
        "README.md",
    ] {
        assert!(dir.join(f).is_file(), "{f} was not written");
    }
    let again = demo_host(state.path())
        .args(["new", "queue-lab", "--path"])
        .arg(parent.path())
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "a second scaffold over the first must be refused"
    );

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let test = std::process::Command::new(&cargo)
        .args(["test", "--offline", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&test.stdout);
    assert!(
        test.status.success()
            && text.contains("it_loads_describes_itself_and_runs_a_fault_across_the_abi ... ok"),
        "{text}\n{}",
        String::from_utf8_lossy(&test.stderr)
    );

    let journal = state.path().join("journal.json");
    let run = demo_host(state.path())
        .args(["run", "--headless", "--countdown", "0", "--plugin"])
        .arg(&dir)
        .arg("--journal")
        .arg(&journal)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("outcome: Passed"), "{stdout}");
}

/// What a plugin crate's manifest declares for the host to read before any
/// build agrees with what the built plugin says of itself: environments and
/// prerequisites (binary, why, environments, optional).
#[test]
fn each_plugins_manifest_names_the_environments_and_prerequisites_its_description_offers() {
    let loader = demo_host::plugin::loader::Loader::new();
    for name in ["example", "ratelimiter", "tikv"] {
        let dir = e2e_tests::workspace_root().join("plugins").join(name);
        let krate = demo_host::plugin::locate::PluginCrate::read(&dir)
            .unwrap()
            .expect("a plugin crate");
        let plugin = loader.load(&plugin_library(name)).unwrap();
        assert_eq!(
            krate.declared.environments, plugin.description.info.environments,
            "{name}: [package.metadata.demo-host] environments vs describe()"
        );
        let declared: Vec<plugin_api::Prerequisite> = krate
            .declared
            .prerequisites
            .iter()
            .map(|p| plugin_api::Prerequisite {
                binary: p.binary.clone(),
                why: p.why.clone(),
                environments: p.environments.clone(),
                optional: p.optional,
            })
            .collect();
        assert_eq!(
            declared, plugin.description.info.prerequisites,
            "{name}: [package.metadata.demo-host] prerequisites vs describe()"
        );
    }
}

/// `inspect` lists what a presenter may approve: each remedy with what it
/// fixes, its target, risk and deadline; and each component with its kind.
#[test]
fn inspect_lists_the_remedies_components_and_prerequisites() {
    let state = tempfile::tempdir().unwrap();
    let out = demo_host(state.path())
        .args(["inspect", "--no-build"])
        .arg(plugin_library("example"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no `{id}` row in:\n{text}"))
            .to_string()
    };
    let resync = line("resync-replica ");
    for want in ["replica divergence", "a component", "low", "2.0s"] {
        assert!(resync.contains(want), "{resync}");
    }
    assert!(line("replica-2 ").contains("member"), "{text}");

    let out = demo_host(state.path())
        .args(["inspect", "--no-build"])
        .arg(plugin_library("ratelimiter"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("redis ") && l.contains("dependency")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("redis-server")
            && l.contains("local")
            && l.contains("required")),
        "{text}"
    );
}

/// A headless run whose reader went away (`demo-host run … | head -1`) goes on
/// to its end, and its journal is written: progress lines are lost, not the run.
#[test]
fn a_headless_run_outlives_a_closed_stdout() {
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("journal.json");
    let mut child = demo_host(state.path())
        .args([
            "run",
            "--headless",
            "--no-build",
            "--countdown",
            "0",
            "--plugin",
        ])
        .arg(plugin_library("example"))
        .arg("--journal")
        .arg(&journal)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    assert_eq!(j["outcome"], "passed");
}
