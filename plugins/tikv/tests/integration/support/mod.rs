//! Shared helpers of the TiKV plugin tests: a subject instance and condition waits.

#![allow(dead_code)]

pub mod standins;

use plugin_api::{
    Config, HealthSnapshot, InstanceContext, Invariant, InvariantStatus, Logger, NodeHealth,
    Subject,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use subject_tikv::TikvSubject;

pub fn subject(config: &str) -> TikvSubject {
    TikvSubject::create(InstanceContext {
        config: Config::parse(config).expect("config parses"),
        raw_config: config.to_string(),
        library_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        log: Logger::discard(),
    })
    .expect("subject is created")
}

pub fn invariant<'a>(h: &'a HealthSnapshot, name: &str) -> &'a Invariant {
    h.invariant(name)
        .unwrap_or_else(|| panic!("no invariant `{name}` in {:?}", h.invariants))
}

pub fn node<'a>(h: &'a HealthSnapshot, id: &str) -> &'a NodeHealth {
    h.nodes
        .iter()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("no node `{id}` in {:?}", h.nodes))
}

/// Polls `health` until `done` holds; panics with the last snapshot after `timeout`.
pub fn wait_health(
    s: &TikvSubject,
    timeout: Duration,
    what: &str,
    done: impl Fn(&HealthSnapshot) -> bool,
) -> HealthSnapshot {
    let started = Instant::now();
    loop {
        let h = s.health().expect("health never fails the poll");
        if done(&h) {
            return h;
        }
        if started.elapsed() > timeout {
            panic!("timed out waiting for {what}; last snapshot: {h:#?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn status(h: &HealthSnapshot, name: &str) -> InvariantStatus {
    invariant(h, name).status
}
