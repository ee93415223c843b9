//! `demo-host eval CAMPAIGN.toml` end to end on the example plugin: the
//! committed example campaign file plays its matrix (two subjects, parameter
//! sets, two policies, baseline trials) and the report groups the figures per
//! cell and fault with their n; a bad file is an error naming the file and the
//! key; a subject that does not settle between trials is rebuilt and reported.

use crate::report_support::campaign::{
    assert_trials_are_their_journals, eval, eval_example, read_report,
};
use crate::report_support::{demo_host, run_bounded};
use demo_host::eval::trial::TrialResult;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn the_example_campaign_file_plays_its_matrix_and_groups_the_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (run, out) = eval(dir.path(), &["docs/eval/campaign.example.toml".into()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "eval failed:\n{stderr}");
    let report = read_report(&out);
    assert!(report.campaign.complete, "{:?}", report.campaign.notes);
    // example: 2 parameter sets × 2 trials × 2 policies + 1 baseline;
    // example-5: 1 fault × 1 trial × 2 policies.
    assert_eq!(
        (report.trials.len(), report.campaign.planned_trials),
        (11, 11)
    );
    assert_eq!(report.campaign.seed, 7);
    assert_eq!(report.campaign.subject, "example, example-5");
    assert_eq!(report.campaign.remediate, "never, auto");
    assert_trials_are_their_journals(&report, &out);

    // Every trial counted once in exactly one group, and each group's n is its trials'.
    let mut counted: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for t in report.trials.iter().filter(|t| t.fault != "baseline") {
        *counted
            .entry((
                t.cell.subject.clone(),
                t.cell.policy.clone(),
                t.fault.clone(),
            ))
            .or_default() += 1;
    }
    let grouped: BTreeMap<(String, String, String), usize> = report
        .groups
        .iter()
        .map(|g| {
            let c = g.cell.clone().expect("a group names its cell");
            assert_eq!(c.diagnoser, "builtin");
            ((c.subject, c.policy, g.fault.clone()), g.trials)
        })
        .collect();
    assert_eq!(grouped, counted);
    let key = |s: &str, p: &str, f: &str| (s.to_string(), p.to_string(), f.to_string());
    assert_eq!(
        grouped.get(&key("example", "auto", "partition{duration_ms=20000}")),
        Some(&2)
    );
    assert_eq!(
        grouped.get(&key("example", "never", "partition{duration_ms=1500}")),
        Some(&2)
    );
    assert_eq!(
        grouped.get(&key("example-5", "never", "partition")),
        Some(&1)
    );
    assert_eq!(report.cells.len(), 4, "2 subjects × 2 policies");
    for c in &report.cells {
        assert_eq!(c.fault, "all");
        assert_eq!(c.detection.n, c.trials, "every figure carries its n");
    }
    let baseline = report.baseline.as_ref().expect("baseline figures");
    assert_eq!(baseline.trials, 1);
    assert!(report
        .trials
        .iter()
        .filter(|t| t.fault == "baseline")
        .all(|t| t.cell.subject == "example"));
    // The example's partition is detected every time, whatever its length.
    assert_eq!(report.overall.detection.k, 10, "{stderr}");
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(md.contains("## Figures per subject, diagnoser and policy"));
    assert!(md.contains("example-5"));
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(html.contains("id=\"groups\"") && html.contains("partition{duration_ms=1500}"));
}

#[test]
fn a_bad_campaign_file_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[[subject]]\nplugin = \"plugins/example\"\ntrails = 3\n",
            "trails",
        ),
        (
            "[[subject]]\nplugin = \"plugins/example\"\n[[subject.fault]]\nname = \"flood\"\n",
            "subject[0].fault[0].name",
        ),
        (
            "[[subject]]\nplugin = \"plugins/example\"\n[[subject.fault]]\nname = \"partition\"\nparams = [{ seconds = 3 }]\n",
            "subject[0].fault[0].params[0].seconds",
        ),
    ];
    for (i, (text, key)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&file, text).expect("write the campaign file");
        let run = run_bounded(
            demo_host(&dir.path().join("state"))
                .arg("eval")
                .arg(&file)
                .arg("--out")
                .arg(dir.path().join("out")),
            Duration::from_secs(600),
        );
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{text} was accepted");
        assert!(
            stderr.contains(&file.display().to_string()) && stderr.contains(key),
            "the error names the file and `{key}`:\n{stderr}"
        );
        assert!(
            !dir.path().join("out/report.json").exists(),
            "nothing was played"
        );
    }
}

#[test]
fn a_subject_that_does_not_settle_is_rebuilt_and_the_report_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The test hook leaves every partition in effect after its recovery, so
    // the subject is not healthy at the next trial's gate until set up again.
    let (run, out) = eval_example(
        dir.path(),
        &[
            "--config",
            "test_hooks=true,sticky_partition=true",
            "--trials",
            "2",
            "--gate-timeout",
            "1",
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "eval failed:\n{stderr}");
    let report = read_report(&out);
    assert!(report.campaign.complete, "{:?}", report.campaign.notes);
    assert_eq!(report.trials.len(), 2);
    assert_eq!(
        report.campaign.rebuilds, 1,
        "one gate between two trials: {:?}",
        report.campaign.notes
    );
    let unsettled: Vec<&TrialResult> = report
        .trials
        .iter()
        .filter(|t| t.unsettled.is_some())
        .collect();
    assert_eq!(unsettled.len(), 1, "the first trial is marked");
    assert!(std::ptr::eq(unsettled[0], &report.trials[0]));
    let why = unsettled[0].unsettled.as_deref().unwrap_or_default();
    assert!(why.contains("replicas agree"), "{why}");
    assert!(
        report
            .campaign
            .notes
            .iter()
            .any(|n| n.contains("torn down and set up again")),
        "{:?}",
        report.campaign.notes
    );
    // The second trial ran on the rebuilt subject and was detected like the first.
    assert!(report.trials.iter().all(|t| t.detected), "{stderr}");
    assert_trials_are_their_journals(&report, &out);
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(md.contains("**Rebuilds**") && md.contains("unsettled after it"));
}
