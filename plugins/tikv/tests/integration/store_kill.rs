//! store-kill against real containers: stand-in stores labelled like the compose
//! project's TiKV services, killed with SIGKILL and restarted through bollard,
//! while the PD fixture derives each store's state from its container.

use crate::support;

use plugin_api::{InvariantStatus, ParamValue, Params, PluginError, Subject};
use std::time::Duration;
use support::standins::Cluster;
use support::{invariant, status, subject, wait_health};

const WAIT: Duration = Duration::from_secs(30);

fn store(n: i64) -> Params {
    Params(vec![("store".into(), ParamValue::Int(n))])
}

#[test]
fn killed_store_is_detected_as_down_and_recovered_up() {
    let Some(c) = Cluster::start("killed_store_is_detected_as_down_and_recovered_up") else {
        return;
    };
    let s = subject(&c.config());
    let h = wait_health(&s, WAIT, "all stores Up", |h| {
        status(h, "store down") == InvariantStatus::Ok
    });
    assert_eq!(h.metric("stores up").map(|m| m.value), Some(3.0));

    let fault = s.inject("store-kill", &store(2)).unwrap();
    let container = format!("{}-tikv1-1", c.project.name());
    assert_eq!(
        fault.targets,
        vec![
            "store-2".to_string(),
            container.clone(),
            "tikv1:20160".to_string()
        ]
    );
    assert!(!c.inspect(1).running, "the store's container was killed");
    assert!(
        c.inspect(0).running && c.inspect(2).running,
        "the other stores run on"
    );

    let h = wait_health(&s, WAIT, "store-2 down", |h| {
        status(h, "store down") == InvariantStatus::Violated
    });
    let inv = invariant(&h, "store down");
    assert_eq!(inv.components, vec!["store-2", "tikv1:20160"]);
    assert!(inv.detail.contains("Disconnected"), "{}", inv.detail);
    // After the fixture's max-store-down-time (3 s here) PD reports it Down.
    wait_health(&s, WAIT, "store-2 Down", |h| {
        invariant(h, "store down").detail.contains("is Down")
    });

    s.recover(&fault.fault_id).unwrap();
    assert!(c.inspect(1).is_live(), "recover restarted the container");
    assert_eq!(
        c.pd.states().get(&2).map(String::as_str),
        Some("Up"),
        "recover waits until PD reports it Up"
    );
    assert_eq!(
        status(&s.health().unwrap(), "store down"),
        InvariantStatus::Ok
    );
    s.recover(&fault.fault_id)
        .expect("recovering twice is not an error");
    s.teardown().unwrap();
}

#[test]
fn random_kills_choose_only_running_up_stores_and_teardown_recovers_all() {
    let Some(c) =
        Cluster::start("random_kills_choose_only_running_up_stores_and_teardown_recovers_all")
    else {
        return;
    };
    let s = subject(&c.config());
    let first = s.inject("store-kill", &store(0)).unwrap();
    wait_health(&s, WAIT, "first victim down", |h| {
        status(h, "store down") == InvariantStatus::Violated
    });
    let second = s.inject("store-kill", &store(0)).unwrap();
    assert_ne!(
        first.targets[0], second.targets[0],
        "a store that is already down is not chosen again"
    );
    let err = s.inject(
        "store-kill",
        &store(
            first.targets[0]
                .trim_start_matches("store-")
                .parse()
                .unwrap(),
        ),
    );
    assert!(
        matches!(err, Err(PluginError::InvalidInput(ref m)) if m.contains("not Up")),
        "{err:?}"
    );

    s.teardown().unwrap();
    for i in 0..3 {
        assert!(
            c.inspect(i).is_live(),
            "teardown restarted store container {i}"
        );
    }
    assert!(
        c.pd.states().values().all(|st| st == "Up"),
        "{:?}",
        c.pd.states()
    );
}

#[test]
fn a_fresh_instance_recovers_a_leftover_kill_from_its_undo_record() {
    let Some(c) = Cluster::start("a_fresh_instance_recovers_a_leftover_kill_from_its_undo_record")
    else {
        return;
    };
    let undo = {
        let crashed = subject(&c.config());
        crashed.inject("store-kill", &store(3)).unwrap().undo
    };
    assert!(!c.inspect(2).running);
    let later = subject(&c.config());
    later.recover_leftover(&undo).unwrap();
    assert!(c.inspect(2).is_live());
    assert_eq!(c.pd.states().get(&3).map(String::as_str), Some("Up"));
    let err = later.recover_leftover("{\"not\":\"ours\"}").unwrap_err();
    assert!(err.to_string().contains("not a store-kill record"), "{err}");
}

#[test]
fn stores_without_a_running_container_are_refused_clearly() {
    let Some(c) = Cluster::start("stores_without_a_running_container_are_refused_clearly") else {
        return;
    };
    // Same PD, but the project has no containers: nothing may be killed by a guessed name.
    let s = subject(&format!(
        "pd={} project=nosuchproject docker=on",
        c.pd.url()
    ));
    let err = s.inject("store-kill", &store(1)).unwrap_err().to_string();
    assert!(
        err.contains("no running container with labels com.docker.compose.project=nosuchproject"),
        "{err}"
    );
    let s = subject(&c.config());
    let err = s.inject("store-kill", &store(9)).unwrap_err().to_string();
    assert!(
        err.contains("PD has no store 9; its stores are 1, 2, 3"),
        "{err}"
    );
    let off = subject(&format!("pd={} docker=off", c.pd.url()));
    assert!(matches!(
        off.inject("store-kill", &store(0)),
        Err(PluginError::Unsupported(_))
    ));
    let local = subject(&format!("pd={} env=local", c.pd.url()));
    let err = local.inject("store-kill", &store(0)).unwrap_err();
    assert!(
        matches!(err, PluginError::Unsupported(ref m) if m.contains("env=compose")),
        "{err}"
    );
    assert!(c.inspect(0).is_live() && c.inspect(1).is_live() && c.inspect(2).is_live());
}
