//! `demo-host eval`: sets the subject up once, plays each planned trial with
//! the headless runtime behind a health gate, keeps every trial's journal, and
//! writes the campaign report. Ctrl-C ends the trial in flight the way a
//! headless run ends (chaos recovered), tears down, and writes a partial
//! report marked incomplete.

use super::campaign::{CampaignInfo, CampaignReport};
use super::plan::{self, PlannedTrial, Scenario};
use super::trial::TrialResult;
use crate::app;
use crate::cli::args::{EvalArgs, RunArgs};
use crate::engine::Action;
use crate::plugin::session::Session;
use crate::report::campaign as report;
use crate::runtime::effects::Executor;
use crate::runtime::headless::{self, HeadlessOptions};
use anyhow::{Context, Result};
use futures::FutureExt;
use indicatif::{ProgressBar, ProgressStyle};
use plugin_api::{now_ms, InvariantStatus};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;

/// How long a trial's last chapter lasts, so its journal sees the subject recover.
const TAIL_MS: u64 = 1000;

/// The failure the headless runtime records for a run ended by Ctrl-C or SIGTERM.
const INTERRUPTED: &str = "interrupted";

pub async fn command(args: &EvalArgs) -> Result<i32> {
    let run = RunArgs {
        plugin: args.plugin.clone(),
        config: args.config.clone(),
        headless: true,
        journal: args.out.join("unused.json"),
        events_json: false,
        record_scenarios: None,
        chapter_timeout: args.chapter_timeout,
        poll_ms: args.poll_ms,
        countdown: 0,
        diagnosis: args.diagnosis.clone(),
        mask: false,
        // A campaign needs a clean subject: undo what an earlier host left in effect.
        recover_leftovers: true,
        remediate: args.remediate,
    };
    let p = app::prepare(&run).await?;
    let current = Arc::new(Mutex::new(p.exec.clone()));
    let report = app::guarded(campaign(p.exec, p.rx, p.environment, args), &current).await?;
    let written = report::write(&report, &args.out)
        .with_context(|| format!("writing the report into {}", args.out.display()))?;
    let o = &report.overall;
    println!(
        "{} of {} trials{}: detected {}, diagnosis right {}",
        report.trials.len(),
        report.campaign.planned_trials,
        if report.campaign.complete {
            ""
        } else {
            " (incomplete)"
        },
        report::proportion(&o.detection),
        report::proportion(&o.accuracy)
    );
    for path in [&written.json, &written.markdown, &written.html] {
        println!("{}", path.display());
    }
    Ok(if report.campaign.complete { 0 } else { 130 })
}

async fn campaign(
    exec: Executor,
    mut rx: UnboundedReceiver<Action>,
    environment: String,
    args: &EvalArgs,
) -> Result<CampaignReport> {
    let desc = exec.session.plugin.description.clone();
    let scenarios = plan::select(plan::scenarios(&desc), &args.faults)?;
    let planned = plan::plan(
        &scenarios,
        args.trials as usize,
        args.baseline as usize,
        args.phase_ms,
        args.seed,
    );
    let trials_dir = args.out.join("trials");
    std::fs::create_dir_all(&trials_dir)
        .with_context(|| format!("creating {}", trials_dir.display()))?;
    let mut sigint = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let started = now_ms();
    exec.session
        .setup()
        .await
        .context("setting up the subject for the campaign")?;

    let prologue = plan::prologue(&desc);
    if !prologue.is_empty() {
        let chapters = Arc::new(plugin_api::SubjectDescription {
            chapters: prologue,
            ..(*desc).clone()
        });
        let journal = headless::run_trial(
            exec.clone(),
            &mut rx,
            trial_options(args, &environment),
            chapters,
        )
        .await;
        write_json(&args.out.join("prologue.json"), &journal)?;
        if !journal.failures.is_empty() {
            let _ = exec.session.teardown().await;
            anyhow::bail!(
                "the demo's steps before its first fault failed: {}",
                journal.failures.join("; ")
            );
        }
    }

    let bar = progress_bar(planned.len());
    let mut results: Vec<TrialResult> = Vec::new();
    let mut notes = Vec::new();
    for (n, t) in planned.iter().enumerate() {
        if interrupted(&mut sigint) {
            notes.push(format!("stopped by Ctrl-C before trial {}", n + 1));
            break;
        }
        let gate = tokio::select! {
            r = health_gate(&exec.session, Duration::from_secs(args.gate_timeout), Duration::from_millis(args.poll_ms)) => r,
            _ = sigint.recv() => Err(INTERRUPTED.to_string()),
        };
        if let Err(why) = gate {
            notes.push(match why.as_str() {
                INTERRUPTED => format!("stopped by Ctrl-C before trial {}", n + 1),
                _ => format!(
                    "the subject was not healthy within {} s before trial {} ({} #{}): {why}; the campaign stopped there",
                    args.gate_timeout, n + 1, t.fault, t.index + 1
                ),
            });
            break;
        }
        // Late actions of the previous trial (a last poll, plugin log lines) belong to no trial.
        while rx.try_recv().is_ok() {}
        let result = play(&exec, &mut rx, &environment, args, &desc, &scenarios, t).await?;
        if result.failures.iter().any(|f| f == INTERRUPTED) {
            notes.push(format!(
                "stopped by Ctrl-C during trial {} ({} #{}), which is left out; its journal is {}",
                n + 1,
                t.fault,
                t.index + 1,
                result.journal.as_deref().unwrap_or("-")
            ));
            break;
        }
        let line = trial_line(n + 1, planned.len(), &result);
        results.push(result);
        let right = results.iter().filter(|r| r.correct()).count();
        bar.set_message(format!(
            "{} #{} · right {right}/{}",
            t.fault,
            t.index + 1,
            results.len()
        ));
        bar.inc(1);
        match bar.is_hidden() {
            true => eprintln!("{line}"),
            false => bar.println(line),
        }
    }
    bar.finish_and_clear();
    if let Err(e) = exec.session.teardown().await {
        notes.push(format!("teardown failed: {e}"));
    }
    let complete = results.len() == planned.len();
    Ok(CampaignReport::new(
        CampaignInfo {
            subject: desc.info.id.clone(),
            environment,
            diagnoser: exec.diagnoser.label(),
            seed: args.seed,
            host_version: env!("CARGO_PKG_VERSION").to_string(),
            started_ms: started,
            ended_ms: now_ms(),
            complete,
            planned_trials: planned.len(),
            notes,
            remediate: args.remediate.label().to_string(),
        },
        results,
    ))
}

/// Plays one trial and writes its journal; the result names the journal relative to `--out`.
async fn play(
    exec: &Executor,
    rx: &mut UnboundedReceiver<Action>,
    environment: &str,
    args: &EvalArgs,
    desc: &plugin_api::SubjectDescription,
    scenarios: &[Scenario],
    t: &PlannedTrial,
) -> Result<TrialResult> {
    let chapters = Arc::new(match scenarios.iter().find(|s| s.fault == t.fault) {
        Some(scenario) => plan::trial_description(desc, scenario, t.phase_ms, TAIL_MS),
        None => plan::baseline_description(desc, t.phase_ms),
    });
    let journal =
        headless::run_trial(exec.clone(), rx, trial_options(args, environment), chapters).await;
    let rel = format!("trials/{}-{:03}.json", t.fault, t.index + 1);
    write_json(&args.out.join(&rel), &journal)?;
    let mut result = TrialResult::from_journal(&t.fault, t.index, &journal);
    result.journal = Some(rel);
    Ok(result)
}

fn trial_options(args: &EvalArgs, environment: &str) -> HeadlessOptions {
    HeadlessOptions {
        poll: Duration::from_millis(args.poll_ms),
        chapter_timeout: Duration::from_secs(args.chapter_timeout),
        countdown: Duration::ZERO,
        events_json: false,
        environment: environment.to_string(),
        remediate: args.remediate,
    }
}

/// A trial's journal, compact as a run's is.
fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string(value)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A Ctrl-C arrived since the last look (the headless loop sees it too and ends its trial).
fn interrupted(sigint: &mut Signal) -> bool {
    sigint.recv().now_or_never().is_some()
}

/// Waits until every invariant is ok, polling at the campaign's interval; the
/// error says what was still wrong at the deadline.
async fn health_gate(session: &Session, limit: Duration, poll: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let why = match session.health().await {
            Ok(s) if s.invariants.iter().all(|i| i.status == InvariantStatus::Ok) => return Ok(()),
            Ok(s) => s
                .invariants
                .iter()
                .filter(|i| i.status != InvariantStatus::Ok)
                .map(|i| format!("`{}` {:?}: {}", i.name, i.status, i.detail))
                .collect::<Vec<_>>()
                .join("; "),
            Err(e) => format!("health failed: {e}"),
        };
        if Instant::now() >= deadline {
            return Err(why);
        }
        tokio::time::sleep(poll).await;
    }
}

fn progress_bar(len: usize) -> ProgressBar {
    let bar =
        ProgressBar::with_draw_target(Some(len as u64), indicatif::ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} trial {pos}/{len} [{bar:30}] {msg} · elapsed {elapsed} · ETA {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn trial_line(n: usize, of: usize, r: &TrialResult) -> String {
    if r.fault == plan::BASELINE {
        let seen = match r.false_alarm {
            true => "FALSE ALARM: an invariant was seen violated",
            false => "no alarm",
        };
        return format!("trial {n}/{of} baseline #{}: {seen}", r.trial + 1);
    }
    let detected = match r.time_to_detect_ms {
        Some(ms) if r.detected => format!("detected after {ms} ms"),
        _ => "NOT detected".into(),
    };
    let diagnosis = match &r.anomaly {
        Some(a) => format!(
            "diagnosed `{a}` ({})",
            match (r.anomaly_correct, r.component_correct) {
                (true, true) => "right",
                (true, false) => "wrong component",
                (false, _) => "WRONG",
            }
        ),
        None => "no diagnosis".into(),
    };
    format!(
        "trial {n}/{of} {} #{}: {detected}, {diagnosis}",
        r.fault,
        r.trial + 1
    )
}
