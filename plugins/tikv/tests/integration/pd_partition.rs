//! `pd-partition` against the PD fixture over real HTTP: the plugin reaches
//! PD through its own fault-proxy route; a blackhole on it makes `pd healthy`
//! violated on `pd` while PD itself answers everyone else, and recovery,
//! teardown and a later process's leftover recovery leave nothing behind.

use crate::support;

use plugin_api::{AnomalyClass, InvariantStatus, NodeStatus, Params, PluginError, Subject};
use std::io::{Read, Write};
use std::time::Duration;
use subject_tikv::fixture::{FixtureOptions, PdFixture, HEALTH};
use support::{invariant, node, subject, wait_health};

fn fixture() -> PdFixture {
    PdFixture::start(FixtureOptions::three_stores()).expect("fixture starts")
}

/// PD's health endpoint answers a direct request (not through the plugin's route).
fn pd_answers_directly(pd: &PdFixture) -> bool {
    let addr = pd.url().trim_start_matches("http://").to_string();
    let Ok(mut s) = std::net::TcpStream::connect(&addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET {HEALTH} HTTP/1.0\r\nHost: {addr}\r\n\r\n").is_err() {
        return false;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200")
}

#[test]
fn a_cut_to_pd_shows_pd_unavailable_on_pd_while_pd_answers_everyone_else() {
    let pd = fixture();
    let s = subject(&format!("pd={} docker=off load=off", pd.url()));
    let h = s.health().unwrap();
    assert_eq!(invariant(&h, "pd healthy").status, InvariantStatus::Ok);
    assert_eq!(
        node(&h, "pd").address,
        pd.url(),
        "PD is named by its own address, not the route's"
    );

    let cut = s.inject("pd-partition", &Params::default()).unwrap();
    assert_eq!(cut.action_id, "pd-partition");
    assert_eq!(cut.targets, vec!["pd".to_string(), pd.url()]);
    assert_eq!(s.pd_route_faults(), vec![cut.fault_id.clone()]);
    let h = wait_health(&s, Duration::from_secs(10), "pd healthy violated", |h| {
        invariant(h, "pd healthy").status == InvariantStatus::Violated
    });
    let i = invariant(&h, "pd healthy");
    assert_eq!(i.class, AnomalyClass::DependencyDown);
    assert_eq!(
        i.components.first().map(String::as_str),
        Some("pd"),
        "{i:?}"
    );
    assert!(i.detail.contains("timed out"), "{}", i.detail);
    assert_eq!(node(&h, "pd").status, NodeStatus::Down);
    assert!(
        pd_answers_directly(&pd),
        "PD itself is fine: only the observer's way to it is cut"
    );
    let again = s.inject("pd-partition", &Params::default()).unwrap_err();
    assert!(matches!(again, PluginError::InvalidInput(_)), "{again:?}");

    s.recover(&cut.fault_id).unwrap();
    assert!(s.pd_route_faults().is_empty());
    wait_health(&s, Duration::from_secs(10), "pd healthy ok again", |h| {
        invariant(h, "pd healthy").status == InvariantStatus::Ok
    });
    // A later process has nothing to undo: the route lived in this one.
    s.recover_leftover(&cut.undo).unwrap();
}

#[test]
fn teardown_heals_a_cut_and_without_the_route_the_action_is_unsupported() {
    let pd = fixture();
    let s = subject(&format!("pd={} docker=off load=off", pd.url()));
    s.inject("pd-partition", &Params::default()).unwrap();
    assert_eq!(s.pd_route_faults().len(), 1);
    s.teardown().unwrap();
    assert!(s.pd_route_faults().is_empty(), "teardown removed the cut");

    let direct = subject(&format!(
        "pd={} docker=off load=off fault_proxy=off",
        pd.url()
    ));
    let err = direct
        .inject("pd-partition", &Params::default())
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Unsupported(m) if m.contains("fault_proxy=on")),
        "{err:?}"
    );
    assert_eq!(
        invariant(&direct.health().unwrap(), "pd healthy").status,
        InvariantStatus::Ok
    );
}
