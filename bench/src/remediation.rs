//! Group 9: closing the loop. The subject's faults played twice by
//! `demo-host eval` with one seed: every proposed fix run (`--remediate
//! auto`), and none (`never`). Time to resolve by the fix is read beside the
//! time until every invariant was ok again without it: the subject healing by
//! itself, or the demo's own recovery of a fault that never ends by itself.
//! One harness for both: the campaign runner and its journals, not a copy.

use crate::env::artifact;
use crate::report::{Row, Verdict};
use crate::stats::Summary;
use crate::Opts;
use anyhow::{ensure, Context as _};
use demo_host::eval::campaign::CampaignReport;
use std::path::Path;
use std::process::{Command, Stdio};

const GROUP: &str = "9 remediation";

/// The target: a fix resolves its anomaly this soon after approval, at p50.
const TARGET_MS: f64 = 2000.0;

pub fn run(opts: &Opts) -> anyhow::Result<Vec<Row>> {
    let host = artifact("demo-host")?;
    // Quick: the in-process example proves the group works; full: the rate
    // limiter's real cluster, ten trials of each fault.
    let (plugin, config, trials) = if opts.quick {
        (artifact("libsubject_example.so")?, "", 2)
    } else {
        (artifact("libsubject_ratelimiter.so")?, "env=local", 10)
    };
    let dir = tempfile::tempdir()?;
    let campaign = |policy: &str| -> anyhow::Result<CampaignReport> {
        let out = dir.path().join(policy);
        let status = Command::new(&host)
            .args(["eval", "--no-build", "--plugin"])
            .arg(&plugin)
            .args(["--config", config, "--trials", &trials.to_string()])
            .args(["--seed", "9", "--remediate", policy, "--out"])
            .arg(&out)
            .env("DEMO_HOST_STATE_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running demo-host eval")?;
        ensure!(
            status.success(),
            "demo-host eval --remediate {policy} failed ({status})"
        );
        read(&out.join("report.json"))
    };
    let fixed = campaign("auto")?;
    let alone = campaign("never")?;
    let mut rows = Vec::new();
    for f in &fixed.faults {
        let trials: Vec<_> = fixed.trials.iter().filter(|t| t.fault == f.fault).collect();
        let ran: Vec<_> = trials
            .iter()
            .filter_map(|t| t.remediation.as_ref())
            .collect();
        let resolved = ran.iter().filter(|r| r.succeeded).count();
        let ms = |v: Vec<Option<u64>>| -> Vec<f64> {
            v.into_iter().flatten().map(|x| x as f64).collect()
        };
        let from_fault = Summary::of(&ms(ran.iter().map(|r| r.time_to_resolve_ms).collect()));
        let from_approval = Summary::of(&ms(ran.iter().map(|r| r.time_from_approval_ms).collect()));
        let healing = Summary::of(&ms(alone
            .trials
            .iter()
            .filter(|t| t.fault == f.fault)
            .map(|t| t.time_to_recover_ms)
            .collect()));
        let shown = |s: &Option<Summary>| {
            s.as_ref().map_or("–".to_string(), |s| {
                format!("p50 {:.0} / p99 {:.0} ms (n={})", s.p50, s.p99, s.n)
            })
        };
        let verdict = match (&from_approval, resolved == trials.len()) {
            // The subject declares no remedy for this anomaly: nothing to measure.
            _ if ran.is_empty() => Verdict::Info,
            (Some(s), true) => Verdict::at_most(s.p50, TARGET_MS),
            (_, false) => Verdict::Missed(format!("{resolved} of {} resolved", trials.len())),
            (None, true) => Verdict::Missed("no fix ran".into()),
        };
        rows.push(
            Row::new(
                GROUP,
                match ran.is_empty() {
                    true => format!("{}: no fix proposed (none declared for it)", f.fault),
                    false => format!(
                        "{}: fixed ({resolved}/{}), from the fault; from approval {}",
                        f.fault,
                        trials.len(),
                        shown(&from_approval)
                    ),
                },
                shown(&from_fault),
            )
            .baseline(
                format!("no fix: all ok again {}", shown(&healing)),
                match (&from_fault, &healing) {
                    (Some(a), Some(b)) if b.p50 > 0.0 => Some(a.p50 / b.p50),
                    _ => None,
                },
            )
            .target("≤ 2 s after approval, p50, all resolved", verdict),
        );
    }
    ensure!(!rows.is_empty(), "the campaign played no fault");
    rows.push(throughput(&alone));
    Ok(rows)
}

/// The original timed each trial against a 300 s timeout: 12 trials an hour at best.
const ORIGINAL_TRIAL_BUDGET_S: f64 = 300.0;

/// The budget for one trial on a reused environment, inject to recovered.
const TRIAL_TARGET_S: f64 = 10.0;

/// Campaign throughput of the run without fixes: trials an hour over its
/// wall time (setup and teardown included), against the original's budget.
fn throughput(r: &CampaignReport) -> Row {
    let wall_s = r.campaign.ended_ms.saturating_sub(r.campaign.started_ms) as f64 / 1000.0;
    let n = r.trials.len().max(1) as f64;
    let per_trial = wall_s / n;
    let per_hour = 3600.0 / per_trial.max(f64::EPSILON);
    let original = 3600.0 / ORIGINAL_TRIAL_BUDGET_S;
    Row::new(
        GROUP,
        format!(
            "campaign throughput (--remediate never, {} trials in {wall_s:.0} s)",
            r.trials.len()
        ),
        format!("{per_hour:.0} trials/h · {per_trial:.1} s a trial"),
    )
    .baseline(
        format!("the original's 300 s timeout a trial: {original:.0} trials/h"),
        Some(per_hour / original),
    )
    .target(
        "≤ 10 s a trial",
        Verdict::at_most(per_trial, TRIAL_TARGET_S),
    )
}

fn read(path: &Path) -> anyhow::Result<CampaignReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
