//! What the campaign tests share: reading a campaign's report and checking
//! each trial against its journal.

use demo_host::eval::campaign::CampaignReport;
use demo_host::eval::trial::TrialResult;
use demo_host::journal::Journal;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// `demo-host eval ARGS --out DIR/eval` with its state in `DIR/state`, bounded
/// in time: the run and the report's directory.
pub fn eval(dir: &Path, args: &[OsString]) -> (Output, PathBuf) {
    let out = dir.join("eval");
    let run = super::run_bounded(
        super::demo_host(&dir.join("state"))
            .arg("eval")
            .args(args)
            .arg("--out")
            .arg(&out),
        Duration::from_secs(900),
    );
    (run, out)
}

/// [`eval`] of the example plugin.
pub fn eval_example(dir: &Path, args: &[&str]) -> (Output, PathBuf) {
    let mut all: Vec<OsString> = vec!["--plugin".into(), super::example_plugin().into()];
    all.extend(args.iter().map(OsString::from));
    eval(dir, &all)
}

pub fn read_report(dir: &Path) -> CampaignReport {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json has the documented schema")
}

/// Each trial is what its journal says (the matrix cell and the rebuild mark
/// are the campaign's, not the journal's); returns the journals, in order.
pub fn assert_trials_are_their_journals(report: &CampaignReport, dir: &Path) -> Vec<Journal> {
    report
        .trials
        .iter()
        .map(|t| {
            let rel = t.journal.as_deref().expect("each trial names its journal");
            let journal = Journal::read(&dir.join(rel)).expect("the trial's journal reads back");
            let mut again = TrialResult::from_journal(&t.fault, t.trial, &journal);
            again.journal = t.journal.clone();
            again.cell = t.cell.clone();
            again.unsettled = t.unsettled.clone();
            assert_eq!(&again, t, "trial {rel} as its journal says");
            journal
        })
        .collect()
}
