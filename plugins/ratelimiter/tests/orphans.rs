//! The local environment's children die with the host process, even when the
//! host is killed with SIGKILL and runs no cleanup (plugin_api::process).

mod common;
use common::subject::alive;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "RATELIMITER_ORPHAN_TEST_HOST";

#[test]
fn children_die_when_the_host_is_sigkilled() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return act_as_host();
    }
    let mut host = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "children_die_when_the_host_is_sigkilled",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = host.stdout.take().unwrap();
    let mut host = Reap(host);
    // libtest prints `test <name> ... ` before the test's own output on the same line.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let found = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split("PIDS ").nth(1).map(|p| {
                    p.split(' ')
                        .filter_map(|x| x.parse::<u32>().ok())
                        .collect::<Vec<_>>()
                })
            });
        let _ = tx.send(found);
    });
    let pids = rx
        .recv_timeout(Duration::from_secs(60))
        .ok()
        .flatten()
        .expect("the host printed its children");
    assert_eq!(pids.len(), 5, "redis-server, its standby and three nodes");
    assert!(pids.iter().all(|p| alive(*p)));
    host.0.kill().unwrap(); // SIGKILL: no destructor, no teardown runs in the host
    host.0.wait().unwrap();
    wait_for(
        Duration::from_secs(5),
        "every child to die with the host",
        || pids.iter().all(|p| !alive(*p)).then_some(()),
    );
    // The killed host could not remove its log directory; do it for it.
    let prefix = format!("ratelimiter-cluster-{}-", host.0.id());
    for entry in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Started by the test above as a separate process: brings a local cluster up,
/// reports its children, and waits to be killed.
fn act_as_host() {
    let s = common::subject::create("load_rps=0").unwrap();
    plugin_api::Subject::setup(&s).unwrap();
    let pids: Vec<String> = s.child_pids().iter().map(u32::to_string).collect();
    println!("PIDS {}", pids.join(" "));
    loop {
        std::thread::park();
    }
}
