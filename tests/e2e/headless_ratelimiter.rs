//! Headless runs of the rate limiter demo with the real binary, local
//! environment (redis-server and three nodes as child processes).

use e2e_tests::procs::wait_until;
use e2e_tests::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const MARKER: &str = "DEMO_HOST_E2E_RUN";

fn command(run_id: &str, state: &std::path::Path, journal: &std::path::Path) -> Command {
    let lib = plugin_library("ratelimiter");
    let mut cmd = demo_host(state);
    cmd.args([
        "run",
        "--headless",
        "--no-build",
        "--countdown",
        "1",
        "--events-json",
        "--plugin",
    ])
    .arg(lib)
    .arg("--journal")
    .arg(journal)
    .env(MARKER, run_id)
    .env("DEMO_HOST_STATE_DIR", state)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    cmd
}

fn assert_no_orphans(run_id: &str) {
    let mut left = Vec::new();
    let gone = wait_until(Duration::from_secs(10), || {
        left = processes_of_run(MARKER, run_id);
        left.is_empty()
    });
    for (pid, _) in &left {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    assert!(gone, "processes left behind: {left:?}");
}

#[test]
fn the_headless_demo_detects_and_diagnoses_every_anomaly() {
    let state = tempfile::tempdir().unwrap();
    let journal_path = state.path().join("journal.json");
    let run_id = format!("full-{}", std::process::id());
    let mut child = command(&run_id, state.path(), &journal_path)
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("every stdout line is a JSON event"))
        .collect();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "exit {status}; last events: {:?}",
        events.iter().rev().take(5).collect::<Vec<_>>()
    );
    assert!(
        events.iter().any(|e| e["type"] == "chapter"),
        "chapter events streamed"
    );
    assert_eq!(events.last().unwrap()["outcome"], "passed");

    let journal: Value = serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    assert_eq!(journal["outcome"], "passed", "{:#}", journal["failures"]);
    for anomaly in [
        "counter drift",
        "ghost allowing",
        "node down",
        "redis latency",
        "node cut off",
        "redis down",
    ] {
        let d = journal["detections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["invariant"] == anomaly)
            .unwrap_or_else(|| panic!("a detection chapter for {anomaly}"));
        assert!(d["detected_ms"].is_u64(), "{anomaly} detected: {d}");
        assert!(journal["invariants"][anomaly]["first_violation_ms"].is_u64());
        let diagnosed = journal["diagnoses"].as_array().unwrap().iter().any(|x| {
            x["diagnosis"]["anomaly"]
                .as_str()
                .unwrap_or("")
                .contains(anomaly)
                && x["score"]["anomaly_ok"] == true
        });
        assert!(diagnosed, "{anomaly} diagnosed: {:#}", journal["diagnoses"]);
    }
    assert!(
        journal["chaos_windows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["ended_ms"].is_u64()),
        "every fault ended"
    );
    // The network faults were each diagnosed with the right component: Redis
    // for a slow Redis, the one node that was cut off for the cut.
    let diagnosis = |anomaly: &str| {
        journal["diagnoses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| {
                x["diagnosis"]["anomaly"]
                    .as_str()
                    .is_some_and(|a| a.contains(anomaly))
            })
            .unwrap_or_else(|| panic!("{anomaly} diagnosed: {:#}", journal["diagnoses"]))
            .clone()
    };
    let slow = diagnosis("redis latency");
    assert_eq!(slow["score"]["component_ok"], true, "{slow:#}");
    // Components are labelled with their address: `redis (redis://…)`.
    let named = |d: &Value| -> Vec<String> {
        d["diagnosis"]["affected_components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().split(' ').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        named(&slow).first().map(String::as_str),
        Some("redis"),
        "{slow:#}"
    );
    let cut = diagnosis("node cut off");
    assert_eq!(cut["score"]["component_ok"], true, "{cut:#}");
    let cut_target = journal["chaos_windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["action_id"] == "partition")
        .map(|w| w["targets"].clone())
        .expect("a partition window");
    assert_eq!(
        Value::from(named(&cut)),
        cut_target,
        "the one node cut off, and nothing else: {cut:#}"
    );
    assert!(journal["health_timeline"].as_array().unwrap().len() > 20);
    assert_no_orphans(&run_id);
}

/// Reads `stdout` until a line holds `what`; false when the run ended first.
fn read_until(stdout: &mut impl BufRead, what: &str) -> bool {
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if line.contains(what) {
            return true;
        }
        line.clear();
    }
    false
}

#[test]
fn a_host_killed_while_a_node_is_cut_off_leaves_nothing_and_the_next_start_clears_the_record() {
    let state = tempfile::tempdir().unwrap();
    let journal_path = state.path().join("journal.json");
    let run_id = format!("kill-{}", std::process::id());
    let mut child = command(&run_id, state.path(), &journal_path)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    assert!(
        read_until(&mut stdout, "injected partition"),
        "the run reached the cut"
    );
    let running = processes_of_run(MARKER, &run_id);
    assert!(
        running.iter().any(|(_, cmd)| cmd.contains("redis-server")),
        "the marker finds the run's redis through its parent: {running:?}"
    );
    let leftovers = state.path().join("leftover-faults.json");
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(
            &leftovers
        )
        .is_ok_and(|r| r.contains("\"partition\""))),
        "the cut is recorded for leftover recovery"
    );
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
    // The proxy lived in the host: it died with it, and its children with it.
    let pids: Vec<u32> = running.iter().map(|(pid, _)| *pid).collect();
    // A process that is gone or a zombie (no command line) is not running.
    let running_now =
        |p: &u32| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| !c.is_empty());
    let gone = wait_until(Duration::from_secs(10), || !pids.iter().any(running_now));
    assert!(
        gone,
        "children of the killed host left running: {running:?}"
    );

    // The next start finds the record and clears it: nothing is left to undo.
    let second_id = format!("kill2-{}", std::process::id());
    let mut second = command(&second_id, state.path(), &journal_path);
    second.arg("--recover-leftovers").stderr(Stdio::piped());
    let mut second = second.spawn().unwrap();
    let stderr = BufReader::new(second.stderr.take().unwrap());
    let mut said = Vec::new();
    for l in stderr.lines().map_while(Result::ok) {
        let done = l.contains("recovered") || l.contains("could not recover");
        said.push(l);
        if done {
            break;
        }
    }
    let _ = second.kill();
    let _ = second.wait();
    assert!(
        said.iter()
            .any(|l| l.contains("recovered") && !l.contains("could not")),
        "the second start recovered the record: {said:?}"
    );
    assert_no_orphans(&second_id);
    let record = std::fs::read_to_string(&leftovers).unwrap_or_default();
    assert!(
        !record.contains("\"partition\""),
        "the record is cleared: {record}"
    );
}

#[test]
fn sigterm_during_chaos_recovers_and_leaves_nothing_behind() {
    let state = tempfile::tempdir().unwrap();
    let journal_path = state.path().join("journal.json");
    let run_id = format!("term-{}", std::process::id());
    let mut child = command(&run_id, state.path(), &journal_path)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut injected = false;
    while stdout.read_line(&mut line).unwrap() > 0 {
        if line.contains("injected redis-pause") {
            injected = true;
            break;
        }
        line.clear();
    }
    assert!(injected, "the run reached the pause");
    let running = processes_of_run(MARKER, &run_id);
    let count = |what: &str| running.iter().filter(|(_, cmd)| cmd.contains(what)).count();
    assert!(
        count("redis-server") == 2 && count("ratelimiter-node") == 3,
        "the marker finds the run's children (redis, its standby, three nodes): {running:?}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let rest: Vec<String> = stdout.lines().map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted run does not pass");
    assert!(
        rest.iter().any(|l| l.contains("recovered redis-pause")),
        "the pause was recovered: {rest:?}"
    );
    let journal: Value = serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    assert_eq!(journal["outcome"], "error");
    assert!(journal["failures"].to_string().contains("interrupted"));
    let leftovers =
        std::fs::read_to_string(state.path().join("leftover-faults.json")).unwrap_or_default();
    assert!(
        !leftovers.contains("fault_id"),
        "nothing left recorded: {leftovers}"
    );
    assert_no_orphans(&run_id);
}

/// `--remediate auto` on the whole demo: each anomaly's diagnosis proposes the
/// plugin's fix, which runs while the fault is still in effect and is verified
/// by the invariants; the recovery chapters put the fixes back, so every later
/// chapter still sees its fault; nothing is left recorded or running.
#[test]
fn the_whole_demo_with_every_fix_run_by_policy_passes() {
    let state = tempfile::tempdir().unwrap();
    let journal_path = state.path().join("journal.json");
    let run_id = format!("fix-{}", std::process::id());
    let status = command(&run_id, state.path(), &journal_path)
        .args(["--remediate", "auto"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let journal: Value = serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    assert!(status.success(), "{:#}", journal["failures"]);
    assert_eq!(journal["outcome"], "passed");
    let remedies = journal["remedies"].as_array().unwrap();
    for (fix, anomaly) in [
        ("failover-redis", "counter drift"),
        ("strict-mode", "ghost allowing"),
        ("restart-node", "node down"),
        ("failover-redis", "redis latency"),
        ("failover-redis", "node cut off"),
        ("failover-redis", "redis down"),
    ] {
        let run = remedies
            .iter()
            .find(|r| {
                r["remedy_id"] == fix && r["rationale"].as_str().unwrap_or("").contains(anomaly)
            })
            .unwrap_or_else(|| panic!("{fix} proposed for {anomaly}: {remedies:#?}"));
        assert_eq!(run["stage"]["stage"], "resolved", "{run:#}");
        assert_eq!(run["approved_by"], "policy auto");
        // Resolved while its fault was in effect: before the fault's window ended.
        let resolved = run["resolved_ms"].as_u64().unwrap();
        let window = journal["chaos_windows"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|w| w["started_ms"].as_u64().unwrap() <= run["approved_ms"].as_u64().unwrap())
            .expect("the fault it fixed");
        assert!(
            window["ended_ms"]
                .as_u64()
                .is_none_or(|end| resolved <= end),
            "{fix} resolved {anomaly} while the fault lasted: {window:#} {run:#}"
        );
    }
    // Every anomaly the demo detected got a fix that resolved it (issue 15).
    let detected = journal["detections"].as_array().unwrap().len();
    assert!(detected >= 6, "{:#}", journal["detections"]);
    let unfixed = unfixed_anomalies(&journal);
    assert!(
        unfixed.is_empty(),
        "no resolved fix for {unfixed:?}: {remedies:#?}"
    );
    let leftovers =
        std::fs::read_to_string(state.path().join("leftover-faults.json")).unwrap_or_default();
    assert!(
        !leftovers.contains("fault_id"),
        "every fault and fix put back: {leftovers}"
    );
    assert_no_orphans(&run_id);
}
