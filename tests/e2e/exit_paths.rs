//! The host's own failures: a loop that errors or panics mid-chaos still
//! recovers every fault it injected before the process goes on to exit.

use demo_host::app;
use demo_host::diagnosis::{BackendConfig, DiagnoseOptions};
use demo_host::leftovers::Leftovers;
use demo_host::plugin::loader::Loader;
use demo_host::runtime::effects::Executor;
use e2e_tests::plugin_library;
use plugin_api::{InvariantStatus, NodeStatus};
use std::sync::{Arc, Mutex};

async fn executor(dir: &std::path::Path) -> Executor {
    let loader = Loader::new();
    let plugin = loader.load(&plugin_library("example")).unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let session = demo_host::runtime::subject::create_session(plugin, "", &tx)
        .await
        .unwrap();
    session.setup().await.unwrap();
    Executor {
        session,
        tx,
        diagnoser: Arc::new(BackendConfig::Builtin),
        diagnose_options: DiagnoseOptions::default(),
        leftovers: Arc::new(Leftovers::new(dir.join("leftovers.json"))),
    }
}

/// Crashes replica-3 the way the executor does (inject, then record).
async fn crash(exec: &Executor) {
    let fault = exec.session.inject("crash", vec![]).await.unwrap();
    exec.leftovers
        .record(exec.session.subject_id(), "", &fault)
        .unwrap();
    let health = exec.session.health().await.unwrap();
    assert_eq!(
        health.nodes[2].status,
        NodeStatus::Down,
        "replica-3 is down"
    );
}

async fn check_recovered(exec: &Executor) {
    assert!(exec.leftovers.all().is_empty(), "no fault left recorded");
    // The torn-down instance still answers: its crashed replica was restored by the recovery.
    let again = exec.session.health().await.unwrap();
    assert!(
        again.nodes.iter().all(|n| n.status == NodeStatus::Up),
        "every replica is back: {:?}",
        again.nodes
    );
    assert!(again
        .invariants
        .iter()
        .filter(|i| i.name == "replicas up")
        .all(|i| i.status == InvariantStatus::Ok));
}

/// Runs a loop that crashes a replica and then fails as `fail` says, under the host's guard.
async fn crash_then_fail(fail: fn() -> anyhow::Result<()>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path()).await;
    let current = Arc::new(Mutex::new(exec.clone()));
    let result: anyhow::Result<()> = app::guarded(
        async {
            crash(&exec).await;
            fail()
        },
        &current,
    )
    .await;
    check_recovered(&exec).await;
    format!("{:#}", result.expect_err("the loop's failure is reported"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loop_that_fails_mid_chaos_recovers_before_returning_the_error() {
    let err = crash_then_fail(|| anyhow::bail!("the terminal went away")).await;
    assert!(err.contains("the terminal went away"), "{err}");
    assert!(err.contains("active chaos was recovered"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loop_that_panics_mid_chaos_recovers_before_reporting_the_panic() {
    let err = crash_then_fail(|| panic!("a bug in the host")).await;
    assert!(err.contains("panicked"), "{err}");
}
