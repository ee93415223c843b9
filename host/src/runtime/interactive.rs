//! The interactive loop: one `tokio::select!` over terminal events, a tick, the
//! actions of background tasks and termination signals. It draws the state,
//! feeds actions to the engine, runs the effects, and swaps subjects.

use super::effects::{Control, Executor};
use super::terminal::TerminalGuard;
use super::{keys, poller};
use crate::engine::{self, Action, Demo, Mode};
use crate::plugin::loader::Loader;
use crate::plugin::locate::{self, BuildPolicy};
use crate::ui;
use anyhow::Result;
use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use plugin_api::{now_ms, Level};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct InteractiveOptions {
    pub poll: Duration,
    pub countdown: Duration,
    pub environment: String,
}

/// The frame rate while nothing is typed: spinner, countdown and live charts move at this pace.
const TICK: Duration = Duration::from_millis(100);

/// What the loop works on: the live subject and the demo played on it.
struct Live {
    exec: Executor,
    demo: Demo,
    poll: JoinHandle<()>,
    /// The config each subject last ran with, so switching back restores it.
    configs: HashMap<String, String>,
}

/// Runs until the presenter quits; `current` always holds the live executor,
/// so the caller can still recover chaos if this future fails or panics.
pub async fn run(
    loader: Loader,
    current: Arc<Mutex<Executor>>,
    mut rx: UnboundedReceiver<Action>,
    opts: InteractiveOptions,
) -> Result<()> {
    let exec = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
    eprintln!(
        "setting up {} ({})…",
        exec.session.plugin.description.info.name, opts.environment
    );
    exec.session.setup().await?;

    let (mut terminal, guard) = TerminalGuard::enter();
    let poll = poller::spawn(exec.session.clone(), opts.poll, exec.tx.clone());
    let demo = new_demo(&exec, &opts, opts.environment.clone());
    let mut live = Live {
        exec,
        demo,
        poll,
        configs: HashMap::new(),
    };
    let mut controls = live.exec.run(engine::start(&mut live.demo));
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut redraw = true;

    loop {
        for control in std::mem::take(&mut controls) {
            let target = match control {
                Control::Exit => {
                    live.poll.abort();
                    drop(guard);
                    live.exec.session.teardown().await?;
                    return Ok(());
                }
                Control::Swap(path) => Some(path),
                Control::Reload => None,
            };
            live.swap(&loader, &current, &opts, target, &mut terminal)
                .await;
        }
        // Frames follow input and the tick, not every background result: a health
        // poll every 100 ms would otherwise double the frame rate for nothing.
        if redraw {
            terminal.draw(|f| ui::render(&live.demo, f))?;
        }
        let (action, input) = tokio::select! {
            ev = events.next() => (match ev {
                Some(Ok(Event::Key(key))) if keys::is_interrupt(&key) => Some(interrupt(&live.demo)),
                Some(Ok(Event::Key(key))) => keys::map(&live.demo.ui, key),
                Some(Ok(_)) => None,
                Some(Err(e)) => Some(Action::Log { at_ms: now_ms(), level: Level::Error, source: "host", message: format!("terminal input: {e}") }),
                None => Some(Action::Quit),
            }, true),
            _ = tick.tick() => (Some(Action::Tick), true),
            Some(a) = rx.recv() => (Some(a), false),
            _ = tokio::signal::ctrl_c() => (Some(interrupt(&live.demo)), true),
            _ = sigterm.recv() => (Some(Action::Quit), true),
            _ = sighup.recv() => (Some(Action::Quit), true),
        };
        redraw = input;
        if let Some(action) = action {
            controls = live
                .exec
                .run(engine::update(&mut live.demo, now_ms(), action));
        }
    }
}

/// The first interrupt quits cleanly (recovering chaos); a second one forces exit.
fn interrupt(demo: &Demo) -> Action {
    if demo.ui.quitting {
        super::terminal::restore();
        eprintln!(
            "forced exit: active chaos was not recovered; the next start offers leftover recovery"
        );
        std::process::exit(130);
    }
    Action::Quit
}

fn new_demo(exec: &Executor, opts: &InteractiveOptions, environment: String) -> Demo {
    Demo::new(
        exec.session.plugin.description.clone(),
        environment,
        Mode::Interactive,
        opts.countdown.as_millis() as u64,
        now_ms(),
    )
}

impl Live {
    fn log(&mut self, level: Level, message: String) {
        self.demo.log.push(now_ms(), level, "host", message);
    }

    /// Hot swap to `target` (or reload the current file): load it, recover and
    /// tear down the old instance, start the new one. A failure at any step
    /// keeps (or restores) a working subject and says why in the log.
    async fn swap(
        &mut self,
        loader: &Loader,
        current: &Arc<Mutex<Executor>>,
        opts: &InteractiveOptions,
        target: Option<PathBuf>,
        terminal: &mut ratatui::DefaultTerminal,
    ) {
        let reload = target.is_none();
        let path = target.unwrap_or_else(|| self.exec.session.plugin.source.clone());
        self.log(Level::Info, format!("loading {}…", path.display()));
        let _ = terminal.draw(|f| ui::render(&self.demo, f));
        let loaded = locate::resolve(&path, BuildPolicy::Never)
            .map_err(anyhow::Error::from)
            .and_then(|p| Ok(loader.load(&p)?));
        let plugin = match loaded {
            Ok(p) => p,
            Err(e) => {
                return self.log(
                    Level::Error,
                    format!("could not load {}: {e:#}", path.display()),
                )
            }
        };
        if reload && plugin.hash == self.exec.session.plugin.hash {
            return self.log(
                Level::Info,
                "the plugin file is unchanged; nothing to reload".into(),
            );
        }
        self.configs.insert(
            self.exec.session.subject_id().to_string(),
            self.exec.session.config.clone(),
        );
        let config = self
            .configs
            .get(&plugin.description.info.id)
            .cloned()
            .unwrap_or_default();
        for view in self.demo.chaos.active.clone() {
            let id = view.fault.fault_id;
            match self.exec.recover_and_clear(&id).await {
                Ok(()) => {
                    self.log(Level::Info, format!("recovered {id} before the swap"));
                }
                Err(e) => self.log(
                    Level::Error,
                    format!("could not recover {id} before the swap: {e}"),
                ),
            }
        }
        // Then what remedies changed for good, as a quit would.
        for (record, undo) in std::mem::take(&mut self.demo.remediation.applied) {
            match self.exec.undo_remedy_and_clear(&record, &undo).await {
                Ok(()) => self.log(Level::Info, format!("put back {record} before the swap")),
                Err(e) => self.log(
                    Level::Error,
                    format!("could not put back {record} before the swap: {e}; it stays recorded"),
                ),
            }
        }
        self.poll.abort();
        if let Err(e) = self.exec.session.teardown().await {
            self.log(
                Level::Error,
                format!("teardown of {} failed: {e}", self.exec.session.subject_id()),
            );
        }
        let new_session =
            match super::subject::create_session(plugin.clone(), &config, &self.exec.tx).await {
                Ok(s) => s,
                Err(e) => {
                    self.log(
                        Level::Error,
                        format!("{e:#}; staying on {}", self.exec.session.subject_id()),
                    );
                    return self.restart_current(opts).await;
                }
            };
        self.log(
            Level::Info,
            format!("setting up {}…", plugin.description.info.name),
        );
        let _ = terminal.draw(|f| ui::render(&self.demo, f));
        if let Err(e) = new_session.setup().await {
            let msg = format!(
                "setup of {} failed: {e}; staying on {}",
                plugin.description.info.id,
                self.exec.session.subject_id()
            );
            self.log(Level::Error, msg);
            let _ = new_session.teardown().await;
            return self.restart_current(opts).await;
        }
        self.exec.session = new_session;
        *current.lock().unwrap_or_else(|p| p.into_inner()) = self.exec.clone();
        let old_log = std::mem::take(&mut self.demo.log);
        self.demo = new_demo(
            &self.exec,
            opts,
            super::subject::environment(&plugin, &config),
        );
        self.demo.log = old_log;
        let info = &plugin.description.info;
        let loaded_in = plugin.load_time.as_secs_f64() * 1000.0;
        self.log(
            Level::Info,
            format!(
                "now running {} {} (loaded in {loaded_in:.1} ms)",
                info.name, info.version
            ),
        );
        self.poll = poller::spawn(self.exec.session.clone(), opts.poll, self.exec.tx.clone());
        let fx = engine::start(&mut self.demo);
        if self.exec.run(fx).contains(&Control::Exit) {
            self.log(Level::Warn, "the new subject asked to exit at start".into());
        }
    }

    /// After a failed swap, brings the previous subject back up.
    async fn restart_current(&mut self, opts: &InteractiveOptions) {
        if let Err(e) = self.exec.session.setup().await {
            let msg = format!("restarting {} failed: {e}", self.exec.session.subject_id());
            self.log(Level::Error, msg);
        }
        self.poll = poller::spawn(self.exec.session.clone(), opts.poll, self.exec.tx.clone());
    }
}
