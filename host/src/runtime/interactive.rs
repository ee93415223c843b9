//! The interactive loop: one `tokio::select!` over terminal events, a tick, the
//! actions of background tasks and termination signals. It draws the state,
//! feeds actions to the engine, runs the effects, and swaps subjects.

use super::effects::{Control, Executor};
use super::poller;
use crate::app;
use crate::engine::{self, Action, Demo, Mode};
use crate::keys;
use crate::plugin::loader::Loader;
use crate::plugin::locate::{self, BuildPolicy};
use crate::terminal::TerminalGuard;
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

/// Redraws at this rate at most when nothing else happens (spinner, countdown).
const TICK: Duration = Duration::from_millis(100);

/// Runs until the presenter quits; `current` always holds the live executor,
/// so the caller can still recover chaos if this future panics.
pub async fn run(
    loader: Loader,
    current: Arc<Mutex<Executor>>,
    mut rx: UnboundedReceiver<Action>,
    opts: InteractiveOptions,
) -> Result<()> {
    let mut exec = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
    eprintln!(
        "setting up {} ({})…",
        exec.session.plugin.description.info.name, opts.environment
    );
    exec.session.setup().await?;

    let (mut terminal, _guard) = TerminalGuard::enter();
    let mut demo = new_demo(&exec, &opts, opts.environment.clone());
    let mut poll = poller::spawn(exec.session.clone(), opts.poll, exec.tx.clone());
    let mut controls = exec.run(engine::start(&mut demo));
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut configs = HashMap::new();

    loop {
        for control in std::mem::take(&mut controls) {
            match control {
                Control::Exit => {
                    poll.abort();
                    drop(_guard);
                    exec.session.teardown().await?;
                    return Ok(());
                }
                Control::Swap(path) => {
                    swap(
                        &loader,
                        &current,
                        &mut exec,
                        &mut demo,
                        &mut poll,
                        &opts,
                        Some(path),
                        &mut terminal,
                        &mut configs,
                    )
                    .await
                }
                Control::Reload => {
                    swap(
                        &loader,
                        &current,
                        &mut exec,
                        &mut demo,
                        &mut poll,
                        &opts,
                        None,
                        &mut terminal,
                        &mut configs,
                    )
                    .await
                }
            }
        }
        terminal.draw(|f| ui::render(&demo, f))?;
        let action = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(key))) if keys::is_interrupt(&key) => Some(interrupt(&demo)),
                Some(Ok(Event::Key(key))) => keys::map(&demo.ui, key),
                Some(Ok(_)) => None,
                Some(Err(e)) => Some(Action::Log { level: Level::Error, source: "host", message: format!("terminal input: {e}") }),
                None => Some(Action::Quit),
            },
            _ = tick.tick() => Some(Action::Tick),
            Some(a) = rx.recv() => Some(a),
            _ = tokio::signal::ctrl_c() => Some(interrupt(&demo)),
            _ = sigterm.recv() => Some(Action::Quit),
            _ = sighup.recv() => Some(Action::Quit),
        };
        if let Some(action) = action {
            controls = exec.run(engine::update(&mut demo, now_ms(), action));
        }
    }
}

/// The first interrupt quits cleanly (recovering chaos); a second one forces exit.
fn interrupt(demo: &Demo) -> Action {
    if demo.ui.quitting {
        crate::terminal::restore();
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

/// Hot swap: load the new file, recover and tear down the old instance, start the new one.
/// A failure at any step keeps (or restores) a working screen and says why in the log.
#[allow(clippy::too_many_arguments)]
async fn swap(
    loader: &Loader,
    current: &Arc<Mutex<Executor>>,
    exec: &mut Executor,
    demo: &mut Demo,
    poll: &mut JoinHandle<()>,
    opts: &InteractiveOptions,
    target: Option<PathBuf>,
    terminal: &mut ratatui::DefaultTerminal,
    configs: &mut HashMap<String, String>,
) {
    let reload = target.is_none();
    let path = target.unwrap_or_else(|| exec.session.plugin.source.clone());
    let log = |demo: &mut Demo, level, msg: String| demo.log.push(now_ms(), level, "host", msg);
    log(demo, Level::Info, format!("loading {}…", path.display()));
    let _ = terminal.draw(|f| ui::render(demo, f));
    let plugin = match locate::resolve(&path, BuildPolicy::Never)
        .map_err(anyhow::Error::from)
        .and_then(|p| Ok(loader.load(&p)?))
    {
        Ok(p) => p,
        Err(e) => {
            return log(
                demo,
                Level::Error,
                format!("could not load {}: {e:#}", path.display()),
            )
        }
    };
    if reload && plugin.hash == exec.session.plugin.hash {
        return log(
            demo,
            Level::Info,
            "the plugin file is unchanged; nothing to reload".into(),
        );
    }
    // Each subject keeps the config it last ran with; one never seen before starts from its defaults.
    configs.insert(
        exec.session.subject_id().to_string(),
        exec.session.config.clone(),
    );
    let config = configs
        .get(&plugin.description.info.id)
        .cloned()
        .unwrap_or_default();
    for view in demo.chaos.active.clone() {
        match exec.session.recover(&view.fault.fault_id).await {
            Ok(()) => {
                let _ = exec.leftovers.remove(&view.fault.fault_id);
                log(
                    demo,
                    Level::Info,
                    format!("recovered {} before the swap", view.fault.fault_id),
                );
            }
            Err(e) => log(
                demo,
                Level::Error,
                format!(
                    "could not recover {} before the swap: {e}",
                    view.fault.fault_id
                ),
            ),
        }
    }
    poll.abort();
    if let Err(e) = exec.session.teardown().await {
        log(
            demo,
            Level::Error,
            format!("teardown of {} failed: {e}", exec.session.subject_id()),
        );
    }
    let new_session = match app::create_session(plugin.clone(), &config, &exec.tx).await {
        Ok(s) => s,
        Err(e) => {
            log(
                demo,
                Level::Error,
                format!("{e:#}; staying on {}", exec.session.subject_id()),
            );
            restart_current(exec, demo, poll, opts).await;
            return;
        }
    };
    log(
        demo,
        Level::Info,
        format!("setting up {}…", plugin.description.info.name),
    );
    let _ = terminal.draw(|f| ui::render(demo, f));
    if let Err(e) = new_session.setup().await {
        log(
            demo,
            Level::Error,
            format!(
                "setup of {} failed: {e}; staying on {}",
                plugin.description.info.id,
                exec.session.subject_id()
            ),
        );
        let _ = new_session.teardown().await;
        restart_current(exec, demo, poll, opts).await;
        return;
    }
    exec.session = new_session;
    *current.lock().unwrap_or_else(|p| p.into_inner()) = exec.clone();
    let environment = app::environment(&plugin, &config);
    let old_log = std::mem::take(&mut demo.log);
    *demo = new_demo(exec, opts, environment);
    demo.log = old_log;
    log(
        demo,
        Level::Info,
        format!(
            "now running {} {} (loaded in {:.1} ms)",
            plugin.description.info.name,
            plugin.description.info.version,
            plugin.load_time.as_secs_f64() * 1000.0
        ),
    );
    *poll = poller::spawn(exec.session.clone(), opts.poll, exec.tx.clone());
    let fx = engine::start(demo);
    for c in exec.run(fx) {
        if c == Control::Exit {
            log(
                demo,
                Level::Warn,
                "the new subject asked to exit at start".into(),
            );
        }
    }
}

/// After a failed swap, bring the previous subject back up.
async fn restart_current(
    exec: &Executor,
    demo: &mut Demo,
    poll: &mut JoinHandle<()>,
    opts: &InteractiveOptions,
) {
    if let Err(e) = exec.session.setup().await {
        demo.log.push(
            now_ms(),
            Level::Error,
            "host",
            format!("restarting {} failed: {e}", exec.session.subject_id()),
        );
    }
    *poll = poller::spawn(exec.session.clone(), opts.poll, exec.tx.clone());
}
