//! The out-of-tree PostgreSQL plugin (examples/postgres), built outside this
//! workspace as a third party would build it, played headless by the real
//! binary with the builtin diagnoser: both faults (a killed primary, a replica
//! whose replay is paused) detected and diagnosed on the right server, and no
//! postgres process of the run left behind.

use e2e_tests::procs::{wait_until, ChildGuard};
use e2e_tests::*;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const MARKER: &str = "DEMO_HOST_E2E_PG_RUN";
/// What the plugin names its temporary directory: this prefix, the host's pid, `-`.
const DIR_PREFIX: &str = "demo-host-postgres-";

/// `cargo build --manifest-path examples/postgres/Cargo.toml --lib --locked`
/// with a target directory of its own under target/; the library it made.
fn build_out_of_tree_plugin() -> PathBuf {
    let manifest = workspace_root().join("examples/postgres/Cargo.toml");
    let target = fixture_dir().join("postgres-target");
    cargo_build(
        &workspace_root(),
        &[
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--lib",
            "--locked",
        ],
        &target,
        &[],
    );
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let lib = target.join(profile).join("libsubject_postgres.so");
    assert!(lib.exists(), "{} was built", lib.display());
    lib
}

/// PATH with Debian's server programs (`/usr/lib/postgresql/<newest>/bin`)
/// in front: the package does not put `initdb` and `postgres` on PATH, and
/// the host checks the plugin's prerequisites on PATH.
fn path_with_postgres() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_string_lossy().parse::<u32>().ok())
    });
    let mut path: Vec<PathBuf> = dirs.into_iter().rev().take(1).collect();
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(path).unwrap()
}

#[derive(Debug, Clone, PartialEq)]
struct Proc {
    pid: u32,
    ppid: u32,
    /// Start time in clock ticks: with the pid, the process's identity.
    start: u64,
    cmd: String,
}

fn procs() -> (Vec<Proc>, HashMap<u32, Vec<u8>>) {
    let mut list = Vec::new();
    let mut envs = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses and may hold spaces.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(start)) = (
            f.get(1).and_then(|s| s.parse().ok()),
            f.get(19).and_then(|s| s.parse().ok()),
        ) else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if f.first() == Some(&"Z") || cmd.trim().is_empty() {
            continue; // zombies are not leaks
        }
        envs.insert(
            pid,
            std::fs::read(e.path().join("environ")).unwrap_or_default(),
        );
        list.push(Proc {
            pid,
            ppid,
            start,
            cmd,
        });
    }
    (list, envs)
}

/// The run's processes: those carrying the marker (the host, the
/// postmasters, which keep their environment), those whose command line names
/// the run's data directory, and every descendant of those (postgres backends
/// write their process title over their environment, so only ancestry finds them).
fn processes_of_pg_run(run_id: &str, host_pid: u32) -> Vec<Proc> {
    let needle = format!("{MARKER}={run_id}");
    let dir = format!("{DIR_PREFIX}{host_pid}-");
    let (all, envs) = procs();
    let me = std::process::id();
    let mut found: Vec<Proc> = all
        .iter()
        .filter(|p| p.pid != me)
        .filter(|p| {
            p.cmd.contains(&dir)
                || envs[&p.pid]
                    .split(|b| *b == 0)
                    .any(|kv| kv == needle.as_bytes())
        })
        .cloned()
        .collect();
    loop {
        let more: Vec<Proc> = all
            .iter()
            .filter(|p| found.iter().any(|f| f.pid == p.ppid))
            .filter(|p| !found.iter().any(|f| f.pid == p.pid))
            .cloned()
            .collect();
        if more.is_empty() {
            return found;
        }
        found.extend(more);
    }
}

fn still_running(seen: &[Proc]) -> Vec<Proc> {
    let (now, _) = procs();
    seen.iter()
        .filter(|p| now.iter().any(|n| n.pid == p.pid && n.start == p.start))
        .cloned()
        .collect()
}

fn data_dirs_of(host_pid: u32) -> Vec<PathBuf> {
    let prefix = format!("{DIR_PREFIX}{host_pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

fn diagnosis_of<'a>(journal: &'a Value, anomaly: &str) -> &'a Value {
    journal["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["expected"]["anomaly"] == anomaly)
        .unwrap_or_else(|| panic!("a diagnosis chapter for {anomaly}: {journal:#}"))
}

fn affected(d: &Value) -> Vec<String> {
    d["diagnosis"]["affected_components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// `demo-host run --headless` of the plugin library, its stdout piped (NDJSON events).
fn host_command(lib: &Path, state: &Path, run_id: &str) -> Command {
    let mut cmd = demo_host(state);
    cmd.args([
        "run",
        "--headless",
        "--no-build",
        "--countdown",
        "0",
        "--events-json",
        "--plugin",
    ])
    .arg(lib)
    .env(MARKER, run_id)
    .env("PATH", path_with_postgres())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    cmd
}

/// One headless run of the plugin, finished.
struct Run {
    journal: Value,
    host_pid: u32,
    run_id: String,
    /// Its NDJSON events.
    lines: Vec<String>,
    /// The run's processes, seen while the replica's replay was paused.
    during: Vec<Proc>,
    /// Kills what of `during` still runs if the test fails before it checked.
    _reaper: Reaper,
}

/// Plays every chapter headless with `extra` arguments; asserts the run
/// passed and that its servers were found while they ran.
fn play(tag: &str, extra: &[&str]) -> Run {
    let lib = build_out_of_tree_plugin();
    let _one = one_at_a_time();
    let state = tempfile::tempdir().unwrap();
    play_in(&lib, tag, state.path(), extra)
}

/// Held by a test for as long as its runs and their leftovers exist: a run's
/// `setup` removes the data directories of dead hosts, another test's too.
/// Runs are played one at a time, and not beside another test's cluster
/// (`e2e_tests::ALONE`): two primaries and replicas at once on two cores
/// would only test the machine.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    e2e_tests::alone()
}

/// The host's chaos line once a fault is injected and recorded for leftover
/// recovery (the plugin's own "injected …" line comes before the record).
fn injected(line: &str, action: &str) -> bool {
    serde_json::from_str::<Value>(line).is_ok_and(|e| {
        e["source"] == "chaos"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&format!("injected {action}:")))
    })
}

/// [`play`] with the host's state (leftover records) in `state`; the caller
/// holds [`one_at_a_time`].
fn play_in(lib: &Path, tag: &str, state: &Path, extra: &[&str]) -> Run {
    let journal_path = state.join("journal.json");
    let run_id = format!("{tag}-{}", std::process::id());
    let mut cmd = host_command(lib, state, &run_id);
    cmd.arg("--journal").arg(&journal_path).args(extra);
    // Killed and reaped when the test fails; the host's own chapter timeout
    // (60 s) ends a stuck run, so reading its output always ends.
    let mut host = ChildGuard(cmd.spawn().unwrap());
    let host_pid = host.0.id();
    let stdout = BufReader::new(host.0.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut during: Vec<Proc> = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        // Both servers run while the replica's replay is paused.
        if during.is_empty() && injected(&line, "replica-lag") {
            during = processes_of_pg_run(&run_id, host_pid);
        }
        lines.push(line);
    }
    let status = host.0.wait().unwrap();
    let reaper = Reaper(during.clone());

    let postmasters = during
        .iter()
        .filter(|p| p.cmd.contains("postgres") && p.cmd.contains(" -D "))
        .count();
    assert_eq!(
        postmasters, 2,
        "the run's primary and replica are found while they run: {during:#?}\n{lines:#?}"
    );
    assert!(
        during.len() > 4,
        "their backends and helpers are found too: {during:#?}"
    );
    assert!(
        status.success(),
        "exit {status}; last events: {:?}",
        lines.iter().rev().take(8).collect::<Vec<_>>()
    );
    let journal: Value = serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    assert_eq!(journal["outcome"], "passed", "{:#}", journal["failures"]);
    Run {
        journal,
        host_pid,
        run_id,
        lines,
        during,
        _reaper: reaper,
    }
}

/// Nothing of the run outlives it: not the servers seen during the run, not
/// anything still marked, and not the data directory.
fn assert_nothing_left(run: &Run) {
    let mut left = Vec::new();
    let gone = wait_until(Duration::from_secs(10), || {
        left = still_running(&run.during);
        left.extend(processes_of_pg_run(&run.run_id, run.host_pid));
        left.is_empty()
    });
    assert!(gone, "processes left behind: {left:#?}");
    assert_eq!(data_dirs_of(run.host_pid), Vec::<PathBuf>::new());
}

#[test]
fn the_out_of_tree_postgres_plugin_runs_headless_and_every_fault_is_diagnosed_on_its_server() {
    let run = play("diagnose", &[]);
    let journal = &run.journal;
    for invariant in ["replication lag", "servers up"] {
        let d = journal["detections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["invariant"] == invariant)
            .unwrap_or_else(|| panic!("a detection chapter for {invariant}"));
        assert!(d["detected_ms"].is_u64(), "{invariant} detected: {d}");
        assert!(journal["invariants"][invariant]["first_violation_ms"].is_u64());
    }

    // The paused replay: lag, on the replica (not the primary it depends on).
    let lag = diagnosis_of(journal, "replication lag");
    assert_eq!(lag["score"]["anomaly_ok"], true, "{lag:#}");
    assert_eq!(lag["score"]["component_ok"], true, "{lag:#}");
    assert_eq!(lag["diagnosis"]["class"], "lag");
    let on = affected(lag);
    assert!(
        on.iter().any(|c| c.starts_with("pg-replica"))
            && !on.iter().any(|c| c.starts_with("pg-primary")),
        "lag on the replica only: {on:?}"
    );

    // The killed primary: a member down (unique by role, still a member), not a dependency.
    let kill = diagnosis_of(journal, "server down");
    assert_eq!(kill["score"]["anomaly_ok"], true, "{kill:#}");
    assert_eq!(kill["score"]["component_ok"], true, "{kill:#}");
    assert_eq!(kill["diagnosis"]["class"], "node_down");
    assert_eq!(kill["chaos_targets"], serde_json::json!(["pg-primary"]));
    let on = affected(kill);
    assert!(
        on.iter().any(|c| c.starts_with("pg-primary"))
            && !on.iter().any(|c| c.starts_with("pg-replica")),
        "the primary only: {on:?}"
    );

    assert!(
        journal["chaos_windows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["ended_ms"].is_u64()),
        "every fault ended"
    );
    assert_nothing_left(&run);
}

#[test]
fn with_remediate_auto_the_proposed_remedies_fix_both_faults_on_their_server() {
    let run = play("remediate", &["--remediate", "auto"]);
    let remedies = run.journal["remedies"].as_array().unwrap();
    for (id, target, invariant) in [
        ("resume-replay", "pg-replica", "replication lag"),
        ("restart-server", "pg-primary", "servers up"),
    ] {
        let r = remedies
            .iter()
            .find(|r| r["remedy_id"] == id)
            .unwrap_or_else(|| panic!("{id} was proposed and run: {remedies:#?}"));
        assert_eq!(r["target"], target, "{r:#}");
        assert_eq!(r["stage"]["stage"], "resolved", "{r:#}");
        assert!(r["resolved_ms"].is_u64(), "{r:#}");
        assert_eq!(r["invariants"], serde_json::json!([invariant]), "{r:#}");
    }
    assert_nothing_left(&run);
}

#[test]
fn a_host_killed_by_sigkill_takes_its_servers_along_and_the_next_run_removes_their_data() {
    let lib = build_out_of_tree_plugin();
    let state = tempfile::tempdir().unwrap();
    let run_id = format!("sigkill-{}", std::process::id());
    let _one = one_at_a_time();
    let (during, host_pid, lines) = {
        let mut cmd = host_command(&lib, state.path(), &run_id);
        cmd.arg("--journal").arg(state.path().join("killed.json"));
        let mut host = ChildGuard(cmd.spawn().unwrap());
        let host_pid = host.0.id();
        let stdout = BufReader::new(host.0.stdout.take().unwrap());
        let mut during = Vec::new();
        let mut lines = Vec::new();
        for line in stdout.lines() {
            let line = line.unwrap();
            if injected(&line, "replica-lag") {
                during = processes_of_pg_run(&run_id, host_pid);
                break;
            }
            lines.push(line);
        }
        // SIGKILL: no teardown, no recover; only the servers' death signal.
        host.0.kill().unwrap();
        host.0.wait().unwrap();
        (during, host_pid, lines)
    };
    let reaper = Reaper(during.clone());
    assert!(
        during.iter().filter(|p| p.cmd.contains(" -D ")).count() == 2,
        "the run reached the pause with both servers: {during:#?}\n{lines:#?}"
    );
    let mut left = Vec::new();
    let gone = wait_until(Duration::from_secs(10), || {
        left = still_running(&during);
        left.is_empty()
    });
    assert!(gone, "servers outlived the killed host: {left:#?}");
    drop(reaper);

    // What it left: the data directory, named by the fault's undo record.
    let dirs = data_dirs_of(host_pid);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let leftovers =
        std::fs::read_to_string(state.path().join("leftover-faults.json")).unwrap_or_default();
    assert!(
        leftovers.contains(&*dirs[0].to_string_lossy()),
        "the fault's undo record names the directory: {leftovers}"
    );

    // The next run undoes it and plays the demo through.
    let next = play_in(
        &lib,
        "after-sigkill",
        state.path(),
        &["--recover-leftovers"],
    );
    assert!(!dirs[0].exists(), "{} was removed", dirs[0].display());
    let by_leftover_recovery = format!("removed {}, left by an earlier run", dirs[0].display());
    assert!(
        next.lines.iter().any(|l| l.contains(&by_leftover_recovery)),
        "leftover recovery removed it: {:#?}",
        next.lines
    );
    assert_nothing_left(&next);
}

/// Kills whatever of `seen` still runs when dropped (a failed assertion).
struct Reaper(Vec<Proc>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for p in still_running(&self.0) {
            let _ = Command::new("kill")
                .args(["-9", &p.pid.to_string()])
                .status();
        }
    }
}
