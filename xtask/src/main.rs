//! `cargo xtask demo` and `cargo xtask test`: the README's two commands.
//!
//! Both check what the machine lacks *before* compiling the workspace (this
//! crate builds in seconds), offer to install it, and only then hand over to
//! cargo. `demo` builds the host and the plugin in one cargo invocation, so
//! their dependencies compile side by side instead of one after the other.

use prereq::{Consent, Declared, Plan};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage:
  cargo xtask demo [--yes] [DEMO-HOST ARGS...]   check the plugin's prerequisites, build, play the demo
                                                 (default: --plugin plugins/ratelimiter)
  cargo xtask test [--yes] [CARGO TEST ARGS...]  check the tests' prerequisites, then run
                                                 cargo test --workspace --locked
--yes (or DEMO_HOST_YES=1, or CI=true) installs what is missing without asking.";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = (!args.is_empty()).then(|| args.remove(0)) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let yes = take_flag(&mut args, "--yes") || take_flag(&mut args, "-y");
    let consent = if yes || std::env::var("CI").is_ok_and(|v| v == "true") {
        Consent::Yes
    } else {
        Consent::from_env()
    };
    let result = match command.as_str() {
        "demo" => demo(args, consent),
        "test" => test(args, consent),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != flag);
    args.len() != before
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs a command with the terminal attached; its exit code becomes ours.
fn run(mut cmd: Command, what: &str) -> Result<ExitCode, String> {
    let status = cmd
        .status()
        .map_err(|e| format!("could not run {what}: {e}"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(c.clamp(1, 255) as u8),
        None => ExitCode::FAILURE,
    })
}

fn ensure(
    declared: &[prereq::Prerequisite],
    env: &str,
    who: String,
    consent: Consent,
) -> Result<(), String> {
    let (optional, required): (Vec<_>, Vec<_>) = prereq::missing(declared, env)
        .into_iter()
        .partition(|p| p.optional);
    for p in optional {
        eprintln!(
            "note: `{}` is not on PATH; {who} may need it: {}",
            p.binary, p.why
        );
    }
    prereq::ensure(&Plan::new(who, required), consent).map_err(|e| error_chain(&e))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// `cargo xtask demo`: the plugin's prerequisites, one build, then the demo.
fn demo(mut args: Vec<String>, consent: Consent) -> Result<ExitCode, String> {
    let plugin = match args.iter().position(|a| a == "--plugin" || a == "-p") {
        Some(i) if i + 1 < args.len() => args[i + 1].clone(),
        _ => {
            args.splice(
                0..0,
                ["--plugin".to_string(), "plugins/ratelimiter".to_string()],
            );
            "plugins/ratelimiter".to_string()
        }
    };
    let crate_dir = root().join(&plugin);
    let manifest = crate_dir.join("Cargo.toml");
    let mut packages = vec!["demo-host".to_string()];
    if manifest.is_file() {
        let declared = Declared::of_package(&manifest).map_err(|e| e.to_string())?;
        let env = config_env(&args).or_else(|| declared.default_environment().map(str::to_string));
        let env = env.unwrap_or_default();
        ensure(
            &declared.prerequisites,
            &env,
            format!("{plugin} (env={env})"),
            consent,
        )?;
        packages.push(package_name(&manifest)?);
        packages.extend(declared.build_with.iter().cloned());
    }
    eprintln!(
        "building {} (dev profile): a first build takes a few minutes on 2 cores; cargo's progress follows",
        packages.join(", ")
    );
    let mut build = cargo();
    build.arg("build");
    for p in &packages {
        build.args(["-p", p]);
    }
    if run(build, "cargo build")? != ExitCode::SUCCESS {
        return Err("the build failed; the errors are above".into());
    }
    let mut host = Command::new(target_dir().join("debug").join("demo-host"));
    host.current_dir(root()).args(&args);
    if consent == Consent::Yes {
        host.arg("--yes");
    }
    run(host, "demo-host")
}

/// `env=` of a `--config`/`-c` argument.
fn config_env(args: &[String]) -> Option<String> {
    let i = args.iter().position(|a| a == "--config" || a == "-c")?;
    args.get(i + 1)?
        .split(',')
        .find_map(|kv| kv.trim().strip_prefix("env=").map(str::to_string))
}

fn package_name(manifest: &Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    text.lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "name").then(|| v.trim().trim_matches('"').to_string())
        })
        .ok_or_else(|| format!("{} names no package", manifest.display()))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// `cargo xtask test`: the tests' prerequisites, a Docker engine where one
/// should be, then the workspace's tests.
fn test(args: Vec<String>, consent: Consent) -> Result<ExitCode, String> {
    let declared =
        Declared::of_workspace_tests(&root().join("Cargo.toml")).map_err(|e| e.to_string())?;
    ensure(&declared.prerequisites, "", "the tests".into(), consent)?;
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--locked"]).args(&args);
    match docker_engine() {
        // With an engine, a Docker test that skips is a failure, not a pass.
        Ok(version) => {
            eprintln!("Docker engine {version} answers: the Docker tests run and may not skip");
            cmd.env("DEMO_HOST_REQUIRE_DOCKER", "1");
        }
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            return Err(format!(
                "no Docker engine answers ({why}); CI runs the Docker tests, so start the engine (dockerd) first"
            ));
        }
        Err(why) => eprintln!(
            "WARNING: no Docker engine answers ({why}): the Docker tests will say SKIPPED and prove nothing"
        ),
    }
    run(cmd, "cargo test")
}

fn docker_engine() -> Result<String, String> {
    let out = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map_err(|e| format!("cannot run the docker CLI: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("docker info failed")
            .to_string())
    }
}
