//! The `pd-fixture` binary answers PD's API until SIGTERM.

use crate::support;

use plugin_api::{InvariantStatus, Subject};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the fixture process also when the test fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pd_fixture_binary_serves_three_up_stores_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pd-fixture"))
        .args(["--listen", "127.0.0.1:0", "--stores", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("pd-fixture starts");
    let stdout = child.stdout.take().unwrap();
    let mut running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the URL is printed")
        .to_string();

    let s = support::subject(&format!("pd={url} docker=off"));
    let h = s.health().unwrap();
    assert_eq!(support::status(&h, "store down"), InvariantStatus::Ok);
    assert_eq!(h.nodes.iter().filter(|n| n.role == "tikv").count(), 3);

    // SAFETY: signalling our own child process.
    unsafe { libc::kill(running.0.id() as libc::pid_t, libc::SIGTERM) };
    let status = running.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let h = s.health().unwrap();
    assert_eq!(support::status(&h, "pd healthy"), InvariantStatus::Violated);

    let bad = Command::new(env!("CARGO_BIN_EXE_pd-fixture"))
        .args(["--stores", "many"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--stores takes a whole number"));
}
