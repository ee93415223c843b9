//! `demo-host eval`: loads every subject of the campaign (from the flags or a
//! campaign file), plans its trials, and plays them subject by subject: the
//! subject is set up once and reused behind a health gate (rebuilt when it
//! does not settle), each trial played with the headless runtime and its
//! journal kept. Ctrl-C ends the trial in flight the way a headless run ends
//! (chaos recovered), tears down, and writes a partial report marked incomplete.

use super::campaign::{CampaignInfo, CampaignReport};
use super::matrix::{self, CampaignFile, DiagnoserSpec, FaultSpec, SubjectSpec};
use super::plan::{self, PlannedTrial, Scenario};
use super::trial::{Cell, TrialResult};
use crate::app;
use crate::cli::args::{DiagnoserArgs, EvalArgs, PluginArgs, RunArgs};
use crate::diagnosis::cassette::Replies;
use crate::diagnosis::{BackendConfig, DiagnoserFlags};
use crate::engine::remedy::Policy;
use crate::engine::Action;
use crate::report::campaign as report;
use crate::runtime::effects::Executor;
use crate::runtime::headless::{self, HeadlessOptions};
use anyhow::{anyhow, Context, Result};
use futures::FutureExt;
use indicatif::{ProgressBar, ProgressStyle};
use plugin_api::now_ms;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;

mod gate;

/// How long a trial's last chapter lasts, so its journal sees the subject recover.
const TAIL_MS: u64 = 1000;

/// The failure the headless runtime records for a run ended by Ctrl-C or SIGTERM.
const INTERRUPTED: &str = "interrupted";

pub async fn command(args: &EvalArgs) -> Result<i32> {
    if let Some(dir) = &args.rescore {
        return super::rescore::command(args, dir).await;
    }
    let (file, origin) = match &args.campaign {
        Some(path) => {
            if args.plugin.plugin.is_some() || !args.faults.is_empty() {
                anyhow::bail!(
                    "{} names the subjects and faults: drop --plugin and --faults",
                    path.display()
                );
            }
            (matrix::read(path)?, path.display().to_string())
        }
        None => (from_flags(args)?, "the command line".to_string()),
    };
    let out = args
        .out
        .clone()
        .or_else(|| file.out.clone())
        .unwrap_or_else(|| PathBuf::from("eval"));
    let report = campaign(&file, &origin, args, &out).await?;
    write_report(&report, &out)
}

/// Writes report.json, .md and .html into `out` and says what they hold; the
/// exit code is 130 for an incomplete campaign.
pub(super) fn write_report(report: &CampaignReport, out: &Path) -> Result<i32> {
    let written = report::write(report, out)
        .with_context(|| format!("writing the report into {}", out.display()))?;
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

/// `--plugin P [--faults …]`: a campaign of one subject, one diagnoser and one policy.
fn from_flags(args: &EvalArgs) -> Result<CampaignFile> {
    let plugin = args.plugin.plugin.clone().ok_or_else(|| {
        anyhow!("no plugin given: pass --plugin plugins/example, or a campaign file (demo-host eval CAMPAIGN.toml)")
    })?;
    Ok(CampaignFile {
        seed: Some(args.seed),
        trials: Some(args.trials),
        baseline: Some(args.baseline),
        cooldown_ms: Some(args.cooldown_ms),
        phase_ms: Some(args.phase_ms),
        out: None,
        diagnosers: vec![DiagnoserSpec {
            backend: args.diagnosis.diagnoser.clone(),
            model: args.diagnosis.model.clone(),
            url: args.diagnosis.llm_url.clone(),
        }],
        policies: vec![args.remediate],
        subjects: vec![SubjectSpec {
            plugin,
            config: args.config.clone(),
            name: None,
            baseline: None,
            faults: args
                .faults
                .iter()
                .map(|f| FaultSpec {
                    name: f.clone(),
                    trials: None,
                    params: Vec::new(),
                })
                .collect(),
        }],
    })
}

/// A diagnoser × policy cell of the matrix.
struct CellSpec {
    diagnoser: Arc<BackendConfig>,
    policy: Policy,
}

/// A subject loaded and planned, not yet set up.
struct Loaded {
    name: String,
    prepared: app::Prepared,
    scenarios: Vec<Scenario>,
    planned: Vec<PlannedTrial>,
}

/// What the campaign gathers as it plays.
#[derive(Default)]
struct Tally {
    results: Vec<TrialResult>,
    notes: Vec<String>,
    rebuilds: usize,
    /// Trials played (or tried) so far, across subjects, for the progress lines.
    done: usize,
}

async fn campaign(
    file: &CampaignFile,
    origin: &str,
    args: &EvalArgs,
    out: &Path,
) -> Result<CampaignReport> {
    let cells = cells(file, origin)?;
    let replies = args.diagnosis.replies()?;
    let mut loaded = Vec::new();
    for (i, subject) in file.subjects.iter().enumerate() {
        loaded.push(
            load(file, origin, args, i, subject, cells.len())
                .await
                .with_context(|| {
                    format!("{origin}: subject[{i}] ({})", subject.plugin.display())
                })?,
        );
    }
    let mut names: Vec<&str> = loaded.iter().map(|l| l.name.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!(
            "{origin}: two subjects are both called `{}`: give one a different name = \"…\"",
            w[0]
        );
    }
    let subjects: Vec<String> = loaded.iter().map(|l| l.name.clone()).collect();
    let matrix = loaded.len() > 1 || cells.len() > 1;
    let planned: usize = loaded.iter().map(|l| l.planned.len()).sum();
    let trials_dir = out.join("trials");
    std::fs::create_dir_all(&trials_dir)
        .with_context(|| format!("creating {}", trials_dir.display()))?;
    let mut sigint = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let started = now_ms();
    let bar = progress_bar(planned);
    let mut tally = Tally::default();
    let mut environments: Vec<String> = Vec::new();
    for l in loaded {
        if !environments.contains(&l.prepared.environment) {
            environments.push(l.prepared.environment.clone());
        }
        let current = Arc::new(Mutex::new(l.prepared.exec.clone()));
        let run = SubjectRun {
            file,
            args,
            out,
            cells: &cells,
            matrix,
            planned_total: planned,
            bar: &bar,
            replies: &replies,
        };
        let stopped = app::guarded(run.play(l, &mut sigint, &mut tally), &current).await?;
        if stopped {
            break;
        }
    }
    bar.finish_and_clear();
    let complete = tally.results.len() == planned;
    let join = |v: Vec<String>| v.join(", ");
    Ok(CampaignReport::new(
        CampaignInfo {
            subject: join(subjects),
            environment: join(environments),
            diagnoser: join(cells_labels(&cells, |c| c.diagnoser.label())),
            seed: file.seed(),
            host_version: env!("CARGO_PKG_VERSION").to_string(),
            started_ms: started,
            ended_ms: now_ms(),
            complete,
            planned_trials: planned,
            notes: tally.notes,
            remediate: join(cells_labels(&cells, |c| c.policy.label().to_string())),
            rebuilds: tally.rebuilds,
        },
        tally.results,
    ))
}

/// The distinct labels of the cells, in order.
fn cells_labels(cells: &[CellSpec], label: impl Fn(&CellSpec) -> String) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in cells {
        let l = label(c);
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

/// Every diagnoser × policy of the campaign; a diagnoser that cannot be
/// configured (no API key, no model) is an error naming its key.
fn cells(file: &CampaignFile, origin: &str) -> Result<Vec<CellSpec>> {
    let mut out = Vec::new();
    for (i, d) in file.diagnosers().iter().enumerate() {
        let config = BackendConfig::from_env_and_flags(&DiagnoserFlags {
            backend: Some(d.backend.clone()),
            model: d.model.clone(),
            base_url: d.url.clone(),
        })
        .with_context(|| format!("{origin}: `diagnoser[{i}]`"))?;
        let config = Arc::new(config);
        for policy in file.policies() {
            out.push(CellSpec {
                diagnoser: Arc::clone(&config),
                policy,
            });
        }
    }
    Ok(out)
}

/// Loads one subject's plugin and session (not set up yet) and plans its trials.
async fn load(
    file: &CampaignFile,
    origin: &str,
    args: &EvalArgs,
    index: usize,
    subject: &SubjectSpec,
    cells: usize,
) -> Result<Loaded> {
    let run = RunArgs {
        plugin: PluginArgs {
            plugin: Some(subject.plugin.clone()),
            ..args.plugin.clone()
        },
        config: subject.config.clone(),
        headless: true,
        journal: PathBuf::from("unused.json"),
        events_json: false,
        record_scenarios: None,
        chapter_timeout: args.chapter_timeout,
        poll_ms: args.poll_ms,
        countdown: 0,
        diagnosis: DiagnoserArgs {
            diagnoser: "builtin".into(),
            model: None,
            llm_url: None,
            record_replies: None,
            replay_replies: None,
        },
        mask: false,
        // A campaign needs a clean subject: undo what an earlier host left in effect.
        recover_leftovers: true,
        remediate: Policy::Never,
    };
    let prepared = app::prepare(&run).await?;
    let desc = prepared.exec.session.plugin.description.clone();
    let trials = file.trials.unwrap_or(10) as usize;
    let variants = matrix::variants(Path::new(origin), index, subject, &desc, trials)?;
    let counts: Vec<(String, usize)> = variants
        .iter()
        .map(|v| (v.scenario.fault.clone(), v.trials))
        .collect();
    let baseline = subject.baseline.or(file.baseline).unwrap_or(0) as usize;
    let planned = plan::plan_matrix(
        &counts,
        cells,
        baseline,
        file.phase_ms(),
        file.seed().wrapping_add(index as u64),
    );
    let name = subject
        .name
        .clone()
        .unwrap_or_else(|| match subject.config.trim() {
            "" => desc.info.id.clone(),
            c => format!("{} ({c})", desc.info.id),
        });
    Ok(Loaded {
        name,
        prepared,
        scenarios: variants.into_iter().map(|v| v.scenario).collect(),
        planned,
    })
}

/// What every subject of a campaign is played with.
struct SubjectRun<'a> {
    file: &'a CampaignFile,
    args: &'a EvalArgs,
    out: &'a Path,
    cells: &'a [CellSpec],
    /// More than one subject or cell: journals are named by cell too.
    matrix: bool,
    planned_total: usize,
    bar: &'a ProgressBar,
    /// `--record-replies` / `--replay-replies`, labelled per trial.
    replies: &'a Replies,
}

impl SubjectRun<'_> {
    /// Sets the subject up, plays its trials, tears it down; true when the
    /// campaign must stop (Ctrl-C, a subject that did not settle even rebuilt).
    async fn play(&self, l: Loaded, sigint: &mut Signal, tally: &mut Tally) -> Result<bool> {
        let exec = l.prepared.exec;
        let mut rx = l.prepared.rx;
        let environment = l.prepared.environment;
        let desc = exec.session.plugin.description.clone();
        let gate = gate::Gate {
            limit: Duration::from_secs(self.args.gate_timeout),
            poll: Duration::from_millis(self.args.poll_ms),
        };
        self.bring_up(&exec, &mut rx, &environment, &l.name)
            .await
            .with_context(|| format!("setting up {} for the campaign", l.name))?;
        let mut stopped = false;
        for t in &l.planned {
            let n = tally.done + 1;
            if interrupted(sigint) {
                tally
                    .notes
                    .push(format!("stopped by Ctrl-C before trial {n}"));
                stopped = true;
                break;
            }
            match self
                .settle(
                    &gate,
                    &exec,
                    &mut rx,
                    &environment,
                    &l.name,
                    sigint,
                    tally,
                    n,
                    t,
                )
                .await?
            {
                true => {}
                false => {
                    stopped = true;
                    break;
                }
            }
            // Late actions of the previous trial (a last poll, plugin log lines) belong to no trial.
            while rx.try_recv().is_ok() {}
            let cell = &self.cells[t.cell];
            let trial_exec = Executor {
                diagnoser: Arc::clone(&cell.diagnoser),
                ..exec.clone()
            };
            let mut result = self
                .play_one(
                    &trial_exec,
                    &mut rx,
                    &environment,
                    &desc,
                    &l.scenarios,
                    &l.name,
                    cell,
                    t,
                )
                .await?;
            result.cell = Cell {
                subject: l.name.clone(),
                diagnoser: cell.diagnoser.label(),
                policy: cell.policy.label().to_string(),
            };
            tally.done += 1;
            if result.failures.iter().any(|f| f == INTERRUPTED) {
                tally.notes.push(format!(
                    "stopped by Ctrl-C during trial {n} ({} #{}), which is left out; its journal is {}",
                    t.fault,
                    t.index + 1,
                    result.journal.as_deref().unwrap_or("-")
                ));
                stopped = true;
                break;
            }
            let mut line = trial_line(n, self.planned_total, &result);
            if self.matrix {
                let c = &result.cell;
                line.push_str(&format!(
                    " [{} · {} · {}]",
                    c.subject, c.diagnoser, c.policy
                ));
            }
            tally.results.push(result);
            let right = tally.results.iter().filter(|r| r.correct()).count();
            self.bar.set_message(format!(
                "{} #{} · right {right}/{}",
                t.fault,
                t.index + 1,
                tally.results.len()
            ));
            self.bar.inc(1);
            match self.bar.is_hidden() {
                true => eprintln!("{line}"),
                false => self.bar.println(line),
            }
            let cooldown = Duration::from_millis(self.file.cooldown_ms.unwrap_or(0));
            if !cooldown.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(cooldown) => {}
                    _ = sigint.recv() => {
                        tally.notes.push(format!("stopped by Ctrl-C after trial {n}"));
                        stopped = true;
                        break;
                    }
                }
            }
        }
        if let Err(e) = exec.session.teardown().await {
            tally
                .notes
                .push(format!("teardown of {} failed: {e}", l.name));
        }
        Ok(stopped)
    }

    /// Sets the subject up and plays the demo's steps before its first fault.
    async fn bring_up(
        &self,
        exec: &Executor,
        rx: &mut UnboundedReceiver<Action>,
        environment: &str,
        name: &str,
    ) -> Result<()> {
        exec.session.setup().await.context("setup failed")?;
        let desc = exec.session.plugin.description.clone();
        let prologue = plan::prologue(&desc);
        if prologue.is_empty() {
            return Ok(());
        }
        let chapters = Arc::new(plugin_api::SubjectDescription {
            chapters: prologue,
            ..(*desc).clone()
        });
        let journal = headless::run_trial(
            exec.clone(),
            rx,
            self.options(environment, Policy::Never),
            chapters,
        )
        .await;
        let file = match self.matrix {
            true => format!("prologue-{}.json", slug(name)),
            false => "prologue.json".to_string(),
        };
        write_json(&self.out.join(file), &journal)?;
        if !journal.failures.is_empty() {
            let _ = exec.session.teardown().await;
            anyhow::bail!(
                "the demo's steps before its first fault failed: {}",
                journal.failures.join("; ")
            );
        }
        Ok(())
    }

    /// The health gate before trial `n`: waits until every invariant is ok; a
    /// subject that does not settle in time is torn down and set up again
    /// once (the trial before is marked `unsettled`). False: the campaign stops.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        gate: &gate::Gate,
        exec: &Executor,
        rx: &mut UnboundedReceiver<Action>,
        environment: &str,
        name: &str,
        sigint: &mut Signal,
        tally: &mut Tally,
        n: usize,
        t: &PlannedTrial,
    ) -> Result<bool> {
        let why = match gate.wait(&exec.session, sigint).await {
            Ok(()) => return Ok(true),
            Err(gate::Unsettled::Interrupted) => {
                tally
                    .notes
                    .push(format!("stopped by Ctrl-C before trial {n}"));
                return Ok(false);
            }
            Err(gate::Unsettled::Still(why)) => why,
        };
        let after = match tally.results.last_mut() {
            Some(prev) if prev.cell.subject == name => {
                prev.unsettled = Some(why.clone());
                format!("after trial {} ({} #{})", n - 1, prev.fault, prev.trial + 1)
            }
            _ => "after setup".to_string(),
        };
        tally.rebuilds += 1;
        tally.notes.push(format!(
            "{name} was not healthy within {} s {after}: {why}; it was torn down and set up again",
            self.args.gate_timeout
        ));
        self.bar
            .println(format!("rebuilding {name}: not healthy {after}"));
        if let Err(e) = exec.session.teardown().await {
            tally
                .notes
                .push(format!("teardown of {name} for the rebuild failed: {e}"));
        }
        self.bring_up(exec, rx, environment, name)
            .await
            .with_context(|| format!("setting {name} up again after it did not settle"))?;
        match gate.wait(&exec.session, sigint).await {
            Ok(()) => Ok(true),
            Err(gate::Unsettled::Interrupted) => {
                tally
                    .notes
                    .push(format!("stopped by Ctrl-C before trial {n}"));
                Ok(false)
            }
            Err(gate::Unsettled::Still(why)) => {
                tally.notes.push(format!(
                    "{name} was not healthy within {} s of being set up again, before trial {n} ({} #{}): {why}; the campaign stopped there",
                    self.args.gate_timeout, t.fault, t.index + 1
                ));
                Ok(false)
            }
        }
    }

    /// Plays one trial and writes its journal; the result names the journal relative to `--out`.
    #[allow(clippy::too_many_arguments)]
    async fn play_one(
        &self,
        exec: &Executor,
        rx: &mut UnboundedReceiver<Action>,
        environment: &str,
        desc: &plugin_api::SubjectDescription,
        scenarios: &[Scenario],
        name: &str,
        cell: &CellSpec,
        t: &PlannedTrial,
    ) -> Result<TrialResult> {
        let chapters = Arc::new(match scenarios.iter().find(|s| s.fault == t.fault) {
            Some(scenario) => plan::trial_description(desc, scenario, t.phase_ms, TAIL_MS),
            None => plan::baseline_description(desc, t.phase_ms),
        });
        let rel = match self.matrix {
            false => format!("trials/{}-{:03}.json", t.fault, t.index + 1),
            true if t.fault == plan::BASELINE => {
                format!("trials/{}.baseline-{:03}.json", slug(name), t.index + 1)
            }
            true => format!(
                "trials/{}.{}.{}.{}-{:03}.json",
                slug(name),
                slug(&cell.diagnoser.label()),
                cell.policy.label(),
                slug(&t.fault),
                t.index + 1
            ),
        };
        // The trial's model calls are recorded (or replayed) under its journal's name.
        let mut exec = exec.clone();
        exec.diagnose_options.replies = self.replies.for_trial(&rel);
        let journal =
            headless::run_trial(exec, rx, self.options(environment, cell.policy), chapters).await;
        write_json(&self.out.join(&rel), &journal)?;
        let mut result = TrialResult::from_journal(&t.fault, t.index, &journal);
        result.journal = Some(rel);
        Ok(result)
    }

    fn options(&self, environment: &str, remediate: Policy) -> HeadlessOptions {
        HeadlessOptions {
            poll: Duration::from_millis(self.args.poll_ms),
            chapter_timeout: Duration::from_secs(self.args.chapter_timeout),
            countdown: Duration::ZERO,
            events_json: false,
            environment: environment.to_string(),
            remediate,
        }
    }
}

/// A name fit for a file name: letters, digits, `-` and `_`; the rest `_`.
fn slug(name: &str) -> String {
    name.chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                true => c,
                false => '_',
            },
        )
        .collect()
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

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("partition{duration_ms=500}"),
            "partition_duration_ms_500_"
        );
        assert_eq!(slug("example (nodes=5)"), "example__nodes_5_");
    }
}
