//! Headless runs: every chapter played without a terminal, progress printed,
//! a JSON journal written, and an exit code that says whether every expected
//! anomaly was detected and diagnosed.

use super::effects::{Control, Executor};
use super::poller;
use crate::engine::{self, Action, Demo, Mode};
use crate::journal::{Journal, TimelineRecorder};
use crate::text::printable;
use plugin_api::{now_ms, Level, SubjectDescription};
use serde_json::json;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Debug, Clone)]
pub struct HeadlessOptions {
    pub poll: Duration,
    pub chapter_timeout: Duration,
    pub countdown: Duration,
    /// NDJSON events on stdout (progress lines then go to stderr).
    pub events_json: bool,
    pub environment: String,
    /// Which proposed remedies run without a presenter.
    pub remediate: crate::engine::remedy::Policy,
}

/// How often the headless loop ticks the engine: countdowns, chapter
/// timeouts and the diagnosis window advance on ticks, not on polls.
const TICK: Duration = Duration::from_millis(25);

/// Plays the demo to its end (or until interrupted) and returns the journal.
/// The caller created the session (and its log channel); this sets it up and tears it down.
pub async fn run(
    exec: Executor,
    mut rx: UnboundedReceiver<Action>,
    opts: HeadlessOptions,
) -> Journal {
    play(exec, &mut rx, opts, None).await
}

/// One eval trial: plays `chapters` (the trial's, not the plugin's demo) on an
/// environment the campaign set up and keeps up between trials, so there is
/// no setup or teardown here, and no progress lines (the campaign's progress
/// bar has the terminal).
pub async fn run_trial(
    exec: Executor,
    rx: &mut UnboundedReceiver<Action>,
    opts: HeadlessOptions,
    chapters: Arc<SubjectDescription>,
) -> Journal {
    play(exec, rx, opts, Some(chapters)).await
}

async fn play(
    exec: Executor,
    rx: &mut UnboundedReceiver<Action>,
    opts: HeadlessOptions,
    trial: Option<Arc<SubjectDescription>>,
) -> Journal {
    let session = exec.session.clone();
    let started = now_ms();
    let manage_environment = trial.is_none();
    let mut out = Progress::new(opts.events_json, trial.is_some());
    let mut demo = Demo::new(
        trial.unwrap_or_else(|| session.plugin.description.clone()),
        opts.environment.clone(),
        Mode::Headless,
        opts.countdown.as_millis() as u64,
        started,
    );
    demo.remediation.policy = opts.remediate;
    demo.chapter_timeout_ms = Some(opts.chapter_timeout.as_millis() as u64);
    let mut failures = Vec::new();
    let mut timeline = TimelineRecorder::default();
    let diagnoser = exec.diagnoser.label();

    out.line(
        "setup",
        &format!(
            "setting up {} ({})",
            demo.subject.info.name, opts.environment
        ),
    );
    // What the description broke of the host's limits, before setup can fail.
    for message in session.take_warnings() {
        demo.log.push(now_ms(), Level::Warn, "host", message);
    }
    if let Err(e) = match manage_environment {
        true => session.setup().await,
        false => Ok(()),
    } {
        for entry in demo.log.iter().filter(|e| e.level >= Level::Info) {
            out.log(entry);
        }
        failures.push(format!("setup failed: {e}"));
        out.line("error", &format!("setup failed: {e}"));
        if let Err(e) = session.teardown().await {
            out.line("error", &format!("teardown failed: {e}"));
        }
        return Journal::from_demo(&demo, diagnoser, started, timeline.into_points(), failures);
    }

    let poll = poller::spawn(session.clone(), opts.poll, exec.tx.clone());
    let mut sigterm = signal(SignalKind::terminate()).ok();
    let mut tick = tokio::time::interval(TICK);
    let mut shown_log = 0usize;
    let mut shown_chapter = usize::MAX;
    let mut quitting = false;
    let mut interrupted = false;
    let fx = engine::start(&mut demo);
    let mut controls = exec.run(fx);

    loop {
        if controls.contains(&Control::Exit) {
            break;
        }
        let action = tokio::select! {
            _ = tick.tick() => Action::Tick,
            Some(a) = rx.recv() => a,
            _ = tokio::signal::ctrl_c() => {
                if quitting {
                    out.line("error", "second interrupt: exiting without waiting for recovery");
                    std::process::exit(130);
                }
                interrupted = true;
                Action::Quit
            }
            _ = recv_term(&mut sigterm) => { interrupted = true; Action::Quit }
        };
        if let Action::HealthPolled(Ok(s)) = &action {
            timeline.push(s);
        }
        if matches!(action, Action::Quit) {
            quitting = true;
        }
        let now = now_ms();
        let fx = engine::update(&mut demo, now, action);
        controls = exec.run(fx);

        if demo.chapter != shown_chapter {
            shown_chapter = demo.chapter;
            if let Some(c) = demo.current() {
                out.chapter(demo.chapter, demo.chapter_count(), &c.title);
            }
        }
        let entries: Vec<_> = demo.log.iter().skip(shown_log).cloned().collect();
        shown_log = demo.log.len();
        for e in entries.iter().filter(|e| e.level >= Level::Info) {
            out.log(e);
        }
        if demo.finished && !quitting {
            quitting = true;
            controls.extend(exec.run(engine::update(&mut demo, now, Action::Quit)));
        }
    }
    poll.abort();
    if interrupted {
        failures.push("interrupted".into());
    }
    if manage_environment {
        if let Err(e) = session.teardown().await {
            failures.push(format!("teardown failed: {e}"));
        }
    }
    failures.splice(0..0, demo.failures.iter().cloned());
    let journal = Journal::from_demo(&demo, diagnoser, started, timeline.into_points(), failures);
    out.outcome(&journal);
    journal
}

async fn recv_term(sig: &mut Option<tokio::signal::unix::Signal>) {
    match sig {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Progress lines for people, or NDJSON events for machines.
struct Progress {
    json: bool,
    quiet: bool,
}

impl Progress {
    fn new(json: bool, quiet: bool) -> Self {
        Progress { json, quiet }
    }

    /// `human` must have its plugin text through [`printable`] (one line
    /// each, no control characters); the JSON line escapes them itself.
    fn emit(&mut self, value: serde_json::Value, human: String) {
        if self.quiet {
            return;
        }
        // A reader that went away (`| head`) loses the lines, never the run:
        // the demo goes on and recovers its chaos (println! would panic).
        let mut stdout = std::io::stdout().lock();
        if self.json {
            let _ = writeln!(stdout, "{value}").and_then(|_| stdout.flush());
            let _ = writeln!(std::io::stderr().lock(), "{human}");
        } else {
            let _ = writeln!(stdout, "{human}").and_then(|_| stdout.flush());
        }
    }

    fn line(&mut self, kind: &str, message: &str) {
        self.emit(
            json!({"type": kind, "at_ms": now_ms(), "message": message}),
            format!("[{kind}] {}", printable(message)),
        );
    }

    fn chapter(&mut self, index: usize, count: usize, title: &str) {
        self.emit(
            json!({"type": "chapter", "at_ms": now_ms(), "index": index, "count": count, "title": title}),
            format!("[{:>2}/{count}] {}", index + 1, printable(title)),
        );
    }

    fn log(&mut self, e: &crate::engine::log::LogEntry) {
        self.emit(
            json!({"type": "log", "at_ms": e.at_ms, "level": e.level, "source": e.source, "message": e.message}),
            format!("        {:<9} {}", e.source, printable(&e.message)),
        );
    }

    fn outcome(&mut self, j: &Journal) {
        let human = match j.failures.is_empty() {
            true => format!("outcome: {:?}", j.outcome),
            false => format!(
                "outcome: {:?}\n  - {}",
                j.outcome,
                j.failures
                    .iter()
                    .map(|f| printable(f))
                    .collect::<Vec<_>>()
                    .join("\n  - ")
            ),
        };
        self.emit(
            json!({"type": "outcome", "outcome": j.outcome, "failures": j.failures}),
            human,
        );
    }
}
