//! `demo-host eval` end to end on the example plugin: a small campaign writes
//! its report and one journal per trial, and the report's figures are the
//! journals'; Ctrl-C mid-campaign leaves no fault in effect and a partial
//! report marked incomplete.

use crate::report_support::campaign::{
    assert_trials_are_their_journals, eval_example, read_report,
};
use crate::report_support::{demo_host, example_plugin, run_bounded, spawn_group, wait_until};
use demo_host::eval::campaign::CampaignReport;
use demo_host::eval::plan::BASELINE;
use demo_host::eval::trial::TrialResult;
use std::path::Path;
use std::time::Duration;

/// Every trial in the report is what its journal says, and the figures count them.
fn assert_consistent_with_journals(report: &CampaignReport, dir: &Path) {
    let journals = assert_trials_are_their_journals(report, dir);
    for (t, journal) in report.trials.iter().zip(&journals) {
        let faults = usize::from(t.fault != BASELINE);
        assert_eq!(
            journal.chaos_windows.len(),
            faults,
            "{:?}: one fault per fault trial",
            t.journal
        );
    }
    let (baseline, faulted): (Vec<&TrialResult>, Vec<&TrialResult>) =
        report.trials.iter().partition(|t| t.fault == BASELINE);
    let detected = faulted.iter().filter(|t| t.detected).count();
    let right = faulted.iter().filter(|t| t.correct()).count();
    assert_eq!(report.overall.trials, faulted.len());
    assert_eq!(
        (report.overall.detection.k, report.overall.detection.n),
        (detected, faulted.len())
    );
    assert_eq!(report.overall.accuracy.k, right);
    let alarms = baseline.iter().filter(|t| t.false_alarm).count();
    match &report.baseline {
        Some(b) => assert_eq!(
            (b.false_alarms.k, b.false_alarms.n),
            (alarms, baseline.len())
        ),
        None => assert!(baseline.is_empty()),
    }
    let ttd: Vec<f64> = faulted
        .iter()
        .filter_map(|t| t.time_to_detect_ms)
        .map(|v| v as f64)
        .collect();
    assert_eq!(
        report.overall.time_to_detect_ms.p50.value,
        demo_host::eval::stats::quantile(&ttd, 0.5)
    );
}

#[test]
fn a_small_campaign_on_the_example_writes_a_report_consistent_with_its_journals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (run, out) = eval_example(
        dir.path(),
        &[
            "--faults",
            "partition",
            "--trials",
            "3",
            "--baseline",
            "2",
            "--seed",
            "11",
        ],
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "eval failed:\n{stdout}\n{stderr}");
    for f in ["report.json", "report.md", "report.html"] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    let report = read_report(&out);
    assert!(report.campaign.complete);
    assert_eq!(
        (report.trials.len(), report.campaign.planned_trials),
        (5, 5)
    );
    assert_eq!(report.campaign.seed, 11);
    assert_eq!(report.faults.len(), 1, "baseline trials are not a fault");
    assert_eq!(report.faults[0].fault, "partition");
    let mut indices: Vec<usize> = report
        .trials
        .iter()
        .filter(|t| t.fault == "partition")
        .map(|t| t.trial)
        .collect();
    indices.sort();
    assert_eq!(indices, [0, 1, 2]);
    assert_consistent_with_journals(&report, &out);
    // The example's partition is detected and diagnosed by the builtin diagnoser,
    // and the example left alone raises no alarm.
    assert_eq!(report.overall.detection.k, 3, "{stderr}");
    let baseline = report.baseline.as_ref().expect("baseline figures");
    assert_eq!(
        (baseline.trials, baseline.false_alarms.k),
        (2, 0),
        "{stderr}"
    );
    assert!(stderr.contains("trial 5/5"), "a line per trial: {stderr}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains(&demo_host::report::campaign::proportion(
        &report.overall.detection
    )));
    // `demo-host report report.json` renders the same page again from the JSON alone.
    let again = dir.path().join("again.md");
    let run = run_bounded(
        demo_host(&dir.path().join("state"))
            .arg("report")
            .arg(out.join("report.json"))
            .arg("--md")
            .arg(&again),
        Duration::from_secs(60),
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(std::fs::read_to_string(&again).unwrap(), md);
}

/// `--remediate auto`: every trial's diagnosis proposes the example's resync,
/// which runs and is verified while the partition is in effect; the report
/// gives the success rate and time to resolve, each trial as its journal says.
#[test]
fn a_campaign_with_fixes_reports_remediation_success_and_time_to_resolve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (run, out) = eval_example(
        dir.path(),
        &["--trials", "3", "--seed", "5", "--remediate", "auto"],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "eval failed:\n{stderr}");
    let report = read_report(&out);
    assert_consistent_with_journals(&report, &out);
    assert_eq!(report.campaign.remediate, "auto");
    for t in &report.trials {
        let r = t.remediation.as_ref().expect("a fix ran in each trial");
        assert_eq!(r.remedy, "resync-replica");
        assert!(r.succeeded, "{t:?}");
        // Only the trial's recovery chapter ends the partition, and it waits
        // for the fix to be judged: an order of events, not a speed.
        let fault_ms = t.fault_duration_ms.unwrap_or(u64::MAX);
        assert!(
            r.time_to_resolve_ms.is_some_and(|ms| ms < fault_ms),
            "resolved before the partition ended: {t:?}"
        );
    }
    let fixed = report
        .overall
        .remediation
        .as_ref()
        .expect("remediation figures");
    assert_eq!((fixed.k, fixed.n), (3, 3));
    let resolve = report
        .overall
        .time_to_resolve_ms
        .as_ref()
        .expect("time to resolve");
    assert_eq!(resolve.n, 3);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("fixes run: **auto**"), "{md}");
}

#[test]
fn ctrl_c_mid_campaign_recovers_and_writes_a_partial_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, state) = (dir.path().join("eval"), dir.path().join("state"));
    let mut group = spawn_group(
        demo_host(&state)
            .args(["eval", "--plugin"])
            .arg(example_plugin())
            .args(["--trials", "50", "--out"])
            .arg(&out),
        &dir.path().join("stdout"),
        &dir.path().join("stderr"),
    );
    let log = || std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    // Two trials done (the first run may build the example plugin), then Ctrl-C.
    assert!(
        wait_until(Duration::from_secs(600), || log().contains("trial 2/50")),
        "the campaign did not get going:\n{}",
        log()
    );
    let pid = group.0.id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let mut status = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            status = group.0.try_wait().expect("wait");
            status.is_some()
        }),
        "eval did not stop on Ctrl-C:\n{}",
        log()
    );
    assert_eq!(status.unwrap().code(), Some(130), "{}", log());
    let report = read_report(&out);
    assert!(!report.campaign.complete, "marked incomplete");
    assert!(
        report.trials.len() >= 2 && report.trials.len() < 50,
        "{} trials",
        report.trials.len()
    );
    assert!(
        report.campaign.notes.iter().any(|n| n.contains("Ctrl-C")),
        "{:?}",
        report.campaign.notes
    );
    assert_consistent_with_journals(&report, &out);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("incomplete"));
    // Nothing left in effect: every fault the campaign injected was recovered.
    let leftovers = std::fs::read_to_string(state.join("leftover-faults.json")).unwrap_or_default();
    assert!(
        !leftovers.contains("fault_id"),
        "faults left recorded as in effect: {leftovers}"
    );
}
