//! The reports in a real browser: a headless run of the example plugin writes
//! a journal, `demo-host report` renders it, and headless Chromium opens the
//! page offline, screenshots it, and dumps the DOM we check for charts and
//! tables. The page must log nothing to the console.

use crate::report_support::{demo_host, run_bounded};
use demo_host::eval::campaign::{CampaignInfo, CampaignReport};
use demo_host::eval::trial::TrialResult;
use demo_host::journal::Journal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "headless Chromium is needed to test the HTML reports: install the Debian package `chromium` \
         (apt-get install chromium; .ci/run does)"
    );
}

/// A real headless run of the example plugin: its journal.
fn example_journal(dir: &Path) -> PathBuf {
    let journal = dir.join("run.json");
    let out = run_bounded(
        demo_host(&dir.join("state"))
            .args([
                "run",
                "--plugin",
                "plugins/example",
                "--headless",
                "--countdown",
                "0",
                "--journal",
            ])
            .arg(&journal),
        // The first run may build the example plugin.
        Duration::from_secs(600),
    );
    assert!(
        out.status.success(),
        "the example run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    journal
}

/// What Chromium made of a page.
struct Browsed {
    dom: String,
    console: Vec<String>,
    screenshot: PathBuf,
}

fn browse(page: &Path, dir: &Path) -> Browsed {
    let url = format!(
        "file://{}",
        page.canonicalize().expect("page exists").display()
    );
    let profile = tempfile::tempdir_in(dir).expect("profile dir");
    let base = |cmd: &mut Command| {
        cmd.args([
            "--headless=new",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1100,2400",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let screenshot = dir.join(format!(
        "{}.png",
        page.file_stem().unwrap().to_string_lossy()
    ));
    let mut shot = Command::new(chromium());
    base(&mut shot);
    shot.arg(format!("--screenshot={}", screenshot.display()))
        .arg(&url);
    let out = run_bounded(&mut shot, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut dump = Command::new(chromium());
    base(&mut dump);
    dump.arg("--dump-dom").arg(&url);
    let out = run_bounded(&mut dump, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    Browsed {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console,
        screenshot,
    }
}

/// A PNG of a page with content: the signature, and more than a blank page's bytes.
fn assert_screenshot(path: &Path) {
    let png =
        std::fs::read(path).unwrap_or_else(|e| panic!("no screenshot {}: {e}", path.display()));
    assert_eq!(
        &png[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is a PNG",
        path.display()
    );
    // A blank 1100×2400 page compresses to a few KB; charts and tables are far more.
    assert!(
        png.len() > 50_000,
        "{} is only {} bytes: a blank page?",
        path.display(),
        png.len()
    );
}

#[test]
fn the_console_check_sees_errors() {
    // The check below must be able to fail: a page with a script error is seen.
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<p>x</p><script>console.error('report-test'); nosuchfn();</script>",
    )
    .unwrap();
    let b = browse(&page, dir.path());
    assert!(
        b.console.iter().any(|l| l.contains("report-test"))
            && b.console.iter().any(|l| l.contains("nosuchfn")),
        "console lines: {:?}",
        b.console
    );
}

#[test]
fn run_report_opens_in_chromium_with_charts_and_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = example_journal(dir.path());
    let (html, md) = (dir.path().join("run.html"), dir.path().join("run.md"));
    let out = run_bounded(
        demo_host(&dir.path().join("state"))
            .arg("report")
            .arg(&journal)
            .arg("--html")
            .arg(&html)
            .arg("--md")
            .arg(&md),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "demo-host report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = Journal::read(&journal).expect("the journal reads back");

    let b = browse(&html, dir.path());
    assert!(b.console.is_empty(), "the page logged: {:?}", b.console);
    assert_screenshot(&b.screenshot);
    // The timeline plus one chart per metric the run recorded.
    let metrics: std::collections::BTreeSet<&String> = j
        .health_timeline
        .iter()
        .flat_map(|p| p.metrics.keys())
        .collect();
    assert!(!metrics.is_empty(), "the example run records metrics");
    assert_eq!(
        b.dom.matches("<svg class=\"chart\"").count(),
        1 + metrics.len()
    );
    for id in [
        "summary",
        "timeline",
        "detections",
        "diagnoses",
        "faults",
        "incidents",
        "invariants",
        "chapters",
    ] {
        assert!(
            b.dom.contains(&format!("id=\"{id}\"")),
            "section `{id}` is on the page"
        );
    }
    // The figures are the journal's.
    assert!(
        b.dom.contains("id=\"outcome\">passed<"),
        "the outcome badge"
    );
    let d = &j.detections[0];
    assert!(b.dom.contains(&d.invariant));
    let latency = demo_host::report::page::duration(d.latency_ms.expect("detected") as f64);
    assert!(
        b.dom.contains(&latency),
        "the detection latency {latency} is shown"
    );
    assert!(b.dom.contains(&j.diagnoses[0].diagnosis.anomaly));
    assert_eq!(
        b.dom.matches("<tr>").count(),
        // header rows (one per table) + a row per chapter, detection, fault, incident, invariant,
        // and per diagnosis one row (plus one for its alternatives).
        6 + j.chapters.len()
            + j.detections.len()
            + j.chaos_windows.len()
            + j.incidents.len()
            + j.invariants.len()
            + j.diagnoses
                .iter()
                .map(|r| 1 + usize::from(!r.diagnosis.alternatives.is_empty()))
                .sum::<usize>()
    );
    let md = std::fs::read_to_string(&md).expect("markdown written");
    assert!(md.contains("**Outcome: passed**") && md.contains(&latency));
    // Keep the screenshot for a person to look at when asked to.
    if let Some(keep) = std::env::var_os("DEMO_HOST_KEEP_SCREENSHOTS") {
        std::fs::copy(&b.screenshot, Path::new(&keep).join("run-report.png"))
            .expect("keep screenshot");
    }
}

#[test]
fn campaign_report_opens_in_chromium_with_charts_and_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::read(&example_journal(dir.path())).expect("journal");
    // Trials from the real journal: one fault, three trials, one of them a miss.
    let mut trials: Vec<TrialResult> = (0..3)
        .map(|i| TrialResult::from_journal("partition", i, &journal))
        .collect();
    trials[2].anomaly_correct = false;
    trials[2].correct_rank = None;
    let report = CampaignReport::new(
        CampaignInfo {
            subject: journal.subject.id.clone(),
            environment: journal.environment.clone(),
            diagnoser: journal.diagnoser.clone(),
            seed: 1,
            host_version: journal.host_version.clone(),
            started_ms: journal.started_ms,
            ended_ms: journal.ended_ms,
            complete: true,
            planned_trials: 3,
            notes: vec![],
            remediate: "never".into(),
            rebuilds: 0,
        },
        trials,
    );
    let written =
        demo_host::report::campaign::write(&report, dir.path()).expect("write the report");
    let b = browse(&written.html, dir.path());
    assert!(b.console.is_empty(), "the page logged: {:?}", b.console);
    assert_screenshot(&b.screenshot);
    // Accuracy, two latency distributions, reliability, per-trial timelines.
    assert_eq!(b.dom.matches("<svg class=\"chart\"").count(), 5);
    for id in ["figures", "figures-more", "reliability", "misses", "trials"] {
        assert!(
            b.dom.contains(&format!("id=\"{id}\"")),
            "table `{id}` is on the page"
        );
    }
    assert!(
        b.dom.contains("2/3 · 66.7 %"),
        "anomaly accuracy 2/3 with its interval"
    );
    assert_eq!(
        b.dom.matches("<tr class=\"trial").count(),
        3 + 1,
        "three trials and one miss"
    );
    if let Some(keep) = std::env::var_os("DEMO_HOST_KEEP_SCREENSHOTS") {
        std::fs::copy(&b.screenshot, Path::new(&keep).join("campaign-report.png"))
            .expect("keep screenshot");
    }
}
