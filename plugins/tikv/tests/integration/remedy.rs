//! restart-store against real containers: stand-in stores killed through the
//! plugin, restarted by the remedy while the fault is still active, with the
//! PD fixture deriving each store's state from its container.

use crate::support;

use plugin_api::{InvariantStatus, ParamValue, Params, PluginError, RemedyTarget, Risk, Subject};
use std::time::Duration;
use subject_tikv::TikvSubject;
use support::standins::Cluster;
use support::{invariant, status, subject, wait_health};

fn store(n: i64) -> Params {
    Params(vec![("store".into(), ParamValue::Int(n))])
}

#[test]
fn restart_store_is_declared_for_store_down() {
    let d = TikvSubject::describe();
    let r = d.remedies.iter().find(|r| r.id == "restart-store").unwrap();
    assert_eq!(r.addresses, vec!["store down"]);
    assert!(d.diagnosis.glossary.iter().any(|g| g.term == "store down"));
    assert_eq!((r.target, r.risk), (RemedyTarget::Component, Risk::Low));
    assert!(r.undo.is_empty(), "a restart leaves nothing to undo");
}

#[test]
fn restart_store_brings_a_killed_store_back_while_the_fault_is_active() {
    let Some(c) =
        Cluster::start("restart_store_brings_a_killed_store_back_while_the_fault_is_active")
    else {
        return;
    };
    let s = subject(&c.config());
    wait_health(&s, Duration::from_secs(30), "all stores Up", |h| {
        status(h, "store down") == InvariantStatus::Ok
    });
    // A healthy store is not restarted.
    let err = s
        .remediate("restart-store", &Params::default(), "store-1")
        .unwrap_err();
    assert!(
        matches!(err, PluginError::InvalidInput(ref m) if m.contains("nothing to restart")),
        "{err:?}"
    );
    let fault = s.inject("store-kill", &store(2)).unwrap();
    let h = wait_health(&s, Duration::from_secs(30), "store-2 down", |h| {
        status(h, "store down") == InvariantStatus::Violated
    });
    assert!(invariant(&h, "store down")
        .components
        .contains(&"store-2".to_string()));

    for bad in ["store-9", "tikv1", ""] {
        let err = s
            .remediate("restart-store", &Params::default(), bad)
            .unwrap_err();
        assert!(
            matches!(err, PluginError::InvalidInput(ref m) if m.contains("its stores are store-1, store-2, store-3")),
            "target `{bad}`: {err:?}"
        );
    }
    let out = s
        .remediate("restart-store", &Params::default(), "store-2")
        .unwrap();
    assert!(out.summary.contains("started"), "{}", out.summary);
    assert_eq!(out.undo, "");
    assert!(c.inspect(1).is_live(), "the remedy started the container");
    let verify = Duration::from_millis(TikvSubject::describe().remedies[0].verify_within_ms);
    wait_health(&s, verify, "store-2 Up again", |h| {
        status(h, "store down") == InvariantStatus::Ok
    });
    // The fault's own recovery finds the store running: nothing more to do.
    s.recover(&fault.fault_id).unwrap();
    assert!(c.inspect(1).is_live());
    s.teardown().unwrap();
}

#[test]
fn restart_store_needs_containers() {
    let local = subject("pd=http://127.0.0.1:1 env=local");
    let err = local
        .remediate("restart-store", &Params::default(), "store-1")
        .unwrap_err();
    assert!(
        matches!(err, PluginError::Unsupported(ref m) if m.contains("env=compose")),
        "{err:?}"
    );
    let off = subject("pd=http://127.0.0.1:1 docker=off");
    assert!(matches!(
        off.remediate("restart-store", &Params::default(), "store-1"),
        Err(PluginError::Unsupported(_))
    ));
}
