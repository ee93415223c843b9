//! The chapter engine driving the example plugin through the real ABI:
//! countdown, blocking chapters, detection, diagnosis, recovery, journal.

use demo_host::diagnosis::{BackendConfig, DiagnoseOptions};
use demo_host::engine::Action;
use demo_host::journal::Outcome;
use demo_host::leftovers::Leftovers;
use demo_host::plugin::loader::{LoadedPlugin, Loader};
use demo_host::runtime::effects::Executor;
use demo_host::runtime::headless::{self, HeadlessOptions};
use e2e_tests::plugin_library;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// The example plugin's instance wired to the builtin diagnoser, leftovers kept in `dir`.
async fn executor(
    plugin: LoadedPlugin,
    dir: &std::path::Path,
) -> (Executor, UnboundedReceiver<Action>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let session = demo_host::runtime::subject::create_session(plugin, "", &tx)
        .await
        .unwrap();
    let exec = Executor {
        session,
        tx,
        diagnoser: Arc::new(BackendConfig::Builtin),
        diagnose_options: DiagnoseOptions::default(),
        leftovers: Arc::new(Leftovers::new(dir.join("leftovers.json"))),
    };
    (exec, rx)
}

/// `--remediate auto`: the diagnosis proposes the example's resync, the
/// policy approves it, and the replica agrees again while its partition is
/// still in effect; a `never` run proposes the same fix and runs nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_proposed_fix_runs_under_the_auto_policy_and_resolves_while_the_fault_is_active() {
    use demo_host::engine::remedy::{Policy, Stage};
    for policy in [Policy::Auto, Policy::Never] {
        let dir = tempfile::tempdir().unwrap();
        let plugin = Loader::new().load(&plugin_library("example")).unwrap();
        let (exec, rx) = executor(plugin, dir.path()).await;
        let mut opts = options(Duration::from_secs(20), Duration::ZERO);
        opts.remediate = policy;
        let j = headless::run(exec, rx, opts).await;
        assert_eq!(j.outcome, Outcome::Passed, "{policy:?}: {:?}", j.failures);
        let [run] = j.remedies.as_slice() else {
            panic!("{policy:?}: one proposal expected, got {:?}", j.remedies);
        };
        assert_eq!(run.remedy_id, "resync-replica");
        assert_eq!(run.target, "replica-2", "the partitioned replica");
        match policy {
            Policy::Auto => {
                assert_eq!(run.stage, Stage::Resolved, "{run:?}");
                assert_eq!(run.approved_by.as_deref(), Some("policy auto"));
                // The partition outlasts the demo's chapters and only the recovery
                // chapter ends it, which waits for the fix to be judged: an order
                // of events, not a speed (that is demo-bench's group 9).
                let window = &j.chaos_windows[0];
                assert!(
                    window
                        .ended_ms
                        .is_none_or(|end| end > run.resolved_ms.unwrap()),
                    "resolved while the partition was still in effect: {window:?} {run:?}"
                );
                let (from_fault, from_detection, from_approval) = run.times_to_resolve();
                // The fault came before its detection, the detection before the approval.
                assert!(from_fault >= from_detection && from_detection >= from_approval);
            }
            _ => {
                assert!(
                    matches!(&run.stage, Stage::Refused { reason } if reason.contains("never"))
                );
                assert!(run.approved_ms.is_none());
            }
        }
    }
}

fn options(chapter_timeout: Duration, countdown: Duration) -> HeadlessOptions {
    HeadlessOptions {
        poll: Duration::from_millis(50),
        chapter_timeout,
        countdown,
        events_json: false,
        environment: "inprocess".into(),
        remediate: demo_host::engine::remedy::Policy::Never,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_demo_plays_through_with_detection_diagnosis_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = Loader::new().load(&plugin_library("example")).unwrap();
    let (exec, rx) = executor(plugin, dir.path()).await;
    let j = headless::run(
        exec,
        rx,
        options(Duration::from_secs(20), Duration::from_millis(300)),
    )
    .await;
    assert_eq!(j.outcome, Outcome::Passed, "{:?}", j.failures);
    assert_eq!(j.chapters.len(), 6, "every chapter entered once");
    assert!(
        j.chapters
            .windows(2)
            .all(|w| w[0].ended_ms.unwrap() <= w[1].started_ms),
        "chapters in order, each closed"
    );
    // The countdown delayed the injection.
    let inject = &j.chapters[1];
    let window = &j.chaos_windows[0];
    assert!(
        window.started_ms >= inject.started_ms + 300,
        "{} vs {}",
        window.started_ms,
        inject.started_ms
    );
    assert!(
        window.ended_ms.is_some(),
        "the recovery chapter ended the fault"
    );
    // Detection happened after the fault, and its latency is recorded.
    let d = &j.detections[0];
    assert_eq!(d.invariant, "replicas agree");
    assert!(d.detected_ms.unwrap() >= window.started_ms);
    assert!(d.latency_ms.is_some());
    // Diagnosed, scored against the chaos target, attached to the incident.
    let diag = &j.diagnoses[0];
    assert!(diag.score.as_ref().unwrap().passed(), "{:?}", diag.score);
    assert!(diag
        .diagnosis
        .affected_components
        .iter()
        .any(|c| c.contains("replica-2")));
    assert_eq!(j.incidents[0].invariant, "replicas agree");
    assert_eq!(
        j.incidents[0].diagnosis.as_deref(),
        Some(diag.diagnosis.anomaly.as_str())
    );
    assert_eq!(
        j.invariants["replicas agree"].status,
        plugin_api::InvariantStatus::Ok,
        "healthy at the end"
    );
    assert!(Leftovers::new(dir.path().join("leftovers.json"))
        .all()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chapter_whose_anomaly_never_shows_fails_the_run_as_not_detected() {
    // The detection chapter waits for an invariant this subject never reports.
    let dir = tempfile::tempdir().unwrap();
    let loader = Loader::new();
    let plugin = loader.load(&plugin_library("example")).unwrap();
    let mut description = (*plugin.description).clone();
    description.chapters[2].expect_violation = Some("replicas vanish".into());
    let mut plugin = plugin;
    plugin.description = Arc::new(description);
    let (exec, rx) = executor(plugin, dir.path()).await;
    let j = headless::run(exec, rx, options(Duration::from_secs(2), Duration::ZERO)).await;
    assert_eq!(j.outcome, Outcome::AnomalyNotDetected, "{:?}", j.failures);
    assert!(
        j.failures
            .iter()
            .any(|f| f.contains("`replicas vanish` was never seen violated")),
        "{:?}",
        j.failures
    );
    assert!(j.detections[0].detected_ms.is_none());
}
