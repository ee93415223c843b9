//! The builtin diagnoser on windows recorded live from the real example
//! plugin (in process): real faults, real polls, scored against the plugin's
//! own chapter expectation with the fault's real targets.

use demo_host::diagnosis::{diagnose, score, BackendConfig, DiagnoseOptions, ObservationWindow};
use plugin_api::{
    params, Config, ExpectedDiagnosis, HealthSnapshot, InstanceContext, InvariantStatus, Logger,
    ParamValue, Subject,
};
use std::time::{Duration, Instant};
use subject_example::ExampleSubject;

/// Tears the subject down (recovering its faults) even when an assertion fails.
struct Running(ExampleSubject);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.teardown();
    }
}

fn start() -> Running {
    let subject = ExampleSubject::create(InstanceContext {
        config: Config::parse("").expect("empty config"),
        raw_config: String::new(),
        library_dir: std::env::temp_dir(),
        log: Logger::discard(),
    })
    .expect("create");
    subject.setup().expect("setup");
    Running(subject)
}

/// The host's poll cadence, shortened. Pacing, not synchronisation: a live
/// window's snapshots are spread over time (the diagnoser reads onsets and
/// order from their `at_ms`, and the example's writer must make progress
/// between them), so the polls are spaced as the host spaces them. Nothing
/// here waits for a state by sleeping: the fault's effect is awaited by
/// `record_until_violated`, a condition with a deadline.
const POLL: Duration = Duration::from_millis(60);

fn poll(s: &ExampleSubject, into: &mut Vec<HealthSnapshot>) -> HealthSnapshot {
    std::thread::sleep(POLL);
    let snap = s.health().expect("health");
    into.push(snap.clone());
    snap
}

/// Polls until `invariant` is violated (or fails after a deadline), then a few more times.
fn record_until_violated(s: &ExampleSubject, invariant: &str, snaps: &mut Vec<HealthSnapshot>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let snap = poll(s, snaps);
        if snap.invariant(invariant).map(|i| i.status) == Some(InvariantStatus::Violated) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "`{invariant}` never became violated"
        );
    }
    for _ in 0..4 {
        poll(s, snaps);
    }
}

fn expectation() -> ExpectedDiagnosis {
    ExampleSubject::describe()
        .chapters
        .into_iter()
        .find_map(|c| c.expect_diagnosis)
        .expect("the example plugin has a diagnosis chapter")
}

async fn live_case(
    action: &str,
    params: Vec<(String, ParamValue)>,
    invariant: &str,
    expected: ExpectedDiagnosis,
) {
    let desc = ExampleSubject::describe();
    let running = start();
    let mut snaps = Vec::new();
    for _ in 0..6 {
        poll(&running.0, &mut snaps);
    }
    let spec = desc
        .chaos_actions
        .iter()
        .find(|a| a.id == action)
        .expect("action exists");
    let fault = running
        .0
        .inject(
            action,
            &params::validate(&spec.params, &params).expect("params"),
        )
        .expect("inject");
    record_until_violated(&running.0, invariant, &mut snaps);
    let window =
        ObservationWindow::from_snapshots(desc.info.name.clone(), desc.diagnosis.clone(), snaps);
    let json = serde_json::to_string(&window).expect("window serializes");
    assert!(
        !json.contains(&fault.fault_id) && !json.contains(&fault.summary),
        "the window must not reveal the injected action"
    );
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let d = diagnose(
        &BackendConfig::Builtin,
        &window,
        &DiagnoseOptions::default(),
        tx,
    )
    .await
    .expect("builtin diagnosis");
    let sc = score(&d, &expected, &fault.targets);
    assert!(sc.passed(), "{}\nnarrative: {}", sc.detail, d.narrative);
    assert!(
        !d.rule_findings.is_empty(),
        "the violated invariant is a rule finding"
    );
}

#[tokio::test]
async fn partition_is_diagnosed_as_replica_divergence() {
    live_case(
        "partition",
        vec![("duration_ms".into(), ParamValue::Int(5000))],
        "replicas agree",
        expectation(),
    )
    .await;
}

#[tokio::test]
async fn crash_is_diagnosed_as_replica_crash() {
    let expected = ExpectedDiagnosis {
        anomaly: "replica crash".into(),
        component: plugin_api::Component::ChaosTarget,
    };
    live_case("crash", vec![], "replicas up", expected).await;
}
