//! A host killed with SIGKILL cannot clean up: its faults stay recorded, and
//! the next start undoes them.

use e2e_tests::procs::{wait_until, Cluster};
use e2e_tests::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn a_pause_left_by_a_killed_host_is_recovered_by_the_next_start() {
    let lib = plugin_library("ratelimiter");
    let cluster = Cluster::start();
    let redis = &cluster.redis;
    let config = cluster.config();
    let state = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = demo_host(state.path());
        cmd.args([
            "run",
            "--headless",
            "--no-build",
            "--countdown",
            "0",
            "--plugin",
        ])
        .arg(&lib)
        .args(["--config", &config])
        .args(extra)
        .arg("--journal")
        .arg(state.path().join("journal.json"))
        .env("DEMO_HOST_STATE_DIR", state.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    };

    let mut first = run(&[]).spawn().unwrap();
    let mut out = BufReader::new(first.stdout.take().unwrap());
    let mut line = String::new();
    // The host's own line comes after it recorded the fault (the plugin's comes earlier).
    let recorded = |l: &str| l.contains("chaos") && l.contains("injected redis-pause");
    while out.read_line(&mut line).unwrap() > 0 && !recorded(&line) {
        line.clear();
    }
    assert!(recorded(&line), "the first run paused Redis");
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        !redis.accepts_writes(Duration::from_millis(500)),
        "the killed host left Redis paused"
    );
    let record = std::fs::read_to_string(state.path().join("leftover-faults.json")).unwrap();
    assert!(
        record.contains("redis-pause"),
        "the fault is recorded: {record}"
    );

    // The next start undoes it before playing (and is stopped right after).
    let mut second = run(&["--recover-leftovers"]).spawn().unwrap();
    let err = BufReader::new(second.stderr.take().unwrap());
    let mut said = Vec::new();
    for l in err.lines().map_while(Result::ok) {
        let done = l.contains("recovered") || l.contains("could not recover");
        said.push(l);
        if done {
            break;
        }
    }
    let _ = second.kill();
    let _ = second.wait();
    assert!(
        said.iter().any(|l| l.contains("recovered")),
        "the second start recovered the leftover: {said:?}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || redis
            .accepts_writes(Duration::from_millis(500))),
        "Redis accepts writes again"
    );
    let record = std::fs::read_to_string(state.path().join("leftover-faults.json")).unwrap();
    assert!(
        !record.contains("redis-pause"),
        "the record is cleared: {record}"
    );
}
