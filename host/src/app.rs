//! Wiring for `demo-host run`: resolve and load the plugin, create the session,
//! offer leftover recovery, then hand over to the headless or interactive loop.

use crate::cli::args::{PluginArgs, RunArgs};
use crate::diagnosis::{BackendConfig, DiagnoseOptions, DiagnoserFlags};
use crate::engine::Action;
use crate::leftovers::Leftovers;
use crate::plugin::loader::{LoadedPlugin, Loader};
use crate::plugin::locate::{self, BuildPolicy};
use crate::plugin::prerequisites;
use crate::plugin::session::{Session, Timeouts};
use crate::runtime::effects::Executor;
use crate::runtime::headless::{self, HeadlessOptions};
use crate::runtime::interactive::{self, InteractiveOptions};
use crate::runtime::subject;
use anyhow::{anyhow, Context, Result};
use futures::FutureExt;
use prereq::confirm;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{self, UnboundedReceiver};

/// `--plugin`, or the error that says how to give one.
fn plugin_arg(arg: Option<&Path>) -> Result<&Path> {
    arg.ok_or_else(|| {
        anyhow!("no plugin given: pass --plugin plugins/ratelimiter (or a .so file); `demo-host list` shows the plugins found")
    })
}

/// Checks the plugin's prerequisites for the environment of `config`
/// (offering to install what is missing), then resolves `--plugin`
/// (building its crate when needed) and loads it.
pub fn load_plugin(loader: &Loader, args: &PluginArgs, config: &str) -> Result<LoadedPlugin> {
    let arg = plugin_arg(args.plugin.as_deref())?;
    prerequisites::ensure(arg, config, args.consent())?;
    load_built(loader, arg, args.no_build)
}

/// Resolves `--plugin` (building its crate unless `no_build`) and loads it,
/// without checking prerequisites: `inspect` describes a plugin that may not run here.
pub fn load_built(loader: &Loader, arg: &Path, no_build: bool) -> Result<LoadedPlugin> {
    let policy = if no_build {
        BuildPolicy::Never
    } else {
        BuildPolicy::IfNeeded
    };
    let path = locate::resolve(arg, policy)?;
    Ok(loader.load(&path)?)
}

/// Undoes faults an earlier host recorded but did not live to recover.
pub async fn recover_leftovers(exec: &Executor, ask: bool) -> Result<()> {
    let orphaned = exec.leftovers.orphaned(exec.session.subject_id());
    if orphaned.is_empty() {
        return Ok(());
    }
    eprintln!(
        "An earlier demo-host run left {} fault(s) in effect:",
        orphaned.len()
    );
    for l in &orphaned {
        eprintln!(
            "  - {} ({}) since {}",
            l.fault.summary, l.fault.action_id, l.fault.started_ms
        );
    }
    if ask && !confirm("Recover them now? [Y/n] ")? {
        eprintln!(
            "left as they are; they stay recorded in {}",
            exec.leftovers.path().display()
        );
        return Ok(());
    }
    for l in orphaned {
        match exec.undo_leftover_and_clear(&l).await {
            Ok(()) => eprintln!("  recovered {}", l.fault.summary),
            Err(e) => eprintln!("  could not recover {}: {e}", l.fault.summary),
        }
    }
    Ok(())
}

/// Everything a loop needs, built from the run arguments.
pub struct Prepared {
    pub loader: Loader,
    pub exec: Executor,
    pub rx: UnboundedReceiver<Action>,
    pub environment: String,
}

pub async fn prepare(args: &RunArgs) -> Result<Prepared> {
    let loader = Loader::new();
    let plugin = load_plugin(&loader, &args.plugin, &args.config)?;
    let environment = subject::environment(&plugin, &args.config);
    let diagnoser = BackendConfig::from_env_and_flags(&DiagnoserFlags {
        backend: Some(args.diagnosis.diagnoser.clone()),
        model: args.diagnosis.model.clone(),
        base_url: args.diagnosis.llm_url.clone(),
    })?;
    let (tx, rx) = mpsc::unbounded_channel();
    let session = subject::create_session(plugin, &args.config, &tx).await?;
    let exec = Executor {
        session,
        tx,
        diagnoser: Arc::new(diagnoser),
        diagnose_options: DiagnoseOptions {
            mask_identities: args.mask,
            replies: args.diagnosis.replies()?,
            ..DiagnoseOptions::default()
        },
        leftovers: Arc::new(Leftovers::new(Leftovers::default_path())),
    };
    let interactive_prompt = !args.headless && !args.recover_leftovers;
    if args.recover_leftovers || interactive_prompt {
        recover_leftovers(&exec, interactive_prompt).await?;
    } else if !exec
        .leftovers
        .orphaned(exec.session.subject_id())
        .is_empty()
    {
        eprintln!(
            "warning: an earlier run left faults in effect (see {}); rerun with --recover-leftovers to undo them",
            exec.leftovers.path().display()
        );
    }
    Ok(Prepared {
        loader,
        exec,
        rx,
        environment,
    })
}

/// `demo-host run --headless`: returns the process exit code.
pub async fn run_headless(args: &RunArgs) -> Result<i32> {
    let p = prepare(args).await?;
    let current = Arc::new(Mutex::new(p.exec.clone()));
    let opts = HeadlessOptions {
        poll: Duration::from_millis(args.poll_ms),
        chapter_timeout: Duration::from_secs(args.chapter_timeout),
        countdown: Duration::from_secs(args.countdown),
        events_json: args.events_json,
        environment: p.environment,
        remediate: args.remediate,
    };
    let journal = guarded(
        async { Ok(headless::run(p.exec, p.rx, opts).await) },
        &current,
    )
    .await?;
    // Compact: a large cluster's observation windows would double in size
    // indented (`jq .` reads it for a person).
    let text = serde_json::to_string(&journal)?;
    std::fs::write(&args.journal, text)
        .with_context(|| format!("writing the journal to {}", args.journal.display()))?;
    eprintln!("journal written to {}", args.journal.display());
    if let Some(dir) = &args.record_scenarios {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for scenario in journal.scenarios() {
            let path = unused_path(dir, &scenario.name);
            std::fs::write(&path, serde_json::to_string_pretty(&scenario)?)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("scenario written to {}", path.display());
        }
    }
    Ok(journal.outcome.exit_code())
}

/// `dir/name.json`, or `dir/name-2.json`, … when taken: two diagnoses of one
/// anomaly (this run's or an earlier one's) never overwrite each other.
fn unused_path(dir: &Path, name: &str) -> std::path::PathBuf {
    std::iter::once(dir.join(format!("{name}.json")))
        .chain((2..).map(|n| dir.join(format!("{name}-{n}.json"))))
        .find(|p| !p.exists())
        .unwrap_or_else(|| dir.join(format!("{name}.json")))
}

/// `demo-host run` with a terminal.
pub async fn run_interactive(args: &RunArgs) -> Result<i32> {
    let p = prepare(args).await?;
    let current = Arc::new(Mutex::new(p.exec.clone()));
    let opts = InteractiveOptions {
        poll: Duration::from_millis(args.poll_ms),
        countdown: Duration::from_secs(args.countdown),
        environment: p.environment,
    };
    guarded(
        interactive::run(p.loader, Arc::clone(&current), p.rx, opts),
        &current,
    )
    .await?;
    Ok(0)
}

/// Runs a loop; if it fails or panics, restores the terminal and recovers the
/// chaos it left in effect (as recorded for leftover recovery) before reporting.
pub async fn guarded<T>(
    run: impl Future<Output = Result<T>>,
    current: &Arc<Mutex<Executor>>,
) -> Result<T> {
    let error = match AssertUnwindSafe(run).catch_unwind().await {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(e)) => e,
        Err(_) => anyhow!("demo-host panicked (the message is above)"),
    };
    crate::runtime::terminal::restore();
    let exec = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut mine: Vec<_> = exec
        .leftovers
        .all()
        .into_iter()
        .filter(|l| l.host_pid == std::process::id())
        .collect();
    // Faults first: putting back a remedy's change (failing back to a store)
    // needs what the fault held to answer again.
    mine.sort_by_key(|l| crate::leftovers::is_remedy_record(&l.fault.action_id));
    for l in mine {
        match exec.end_own_record(&l).await {
            Ok(()) => eprintln!("recovered {} before exiting", l.fault.summary),
            Err(e) => eprintln!(
                "could not recover {}: {e}; it stays recorded for leftover recovery",
                l.fault.summary
            ),
        }
    }
    if let Err(e) = exec.session.teardown().await {
        eprintln!("teardown failed: {e}");
    }
    Err(error.context("the demo stopped on an error; active chaos was recovered"))
}

/// The plugin steps behind `demo-host up` and `down`.
pub const ENV_UP_STEP: &str = "env-up";
pub const ENV_DOWN_STEP: &str = "env-down";

/// `demo-host up` / `down`: runs the plugin's `env-up` / `env-down` step,
/// printing the plugin's progress lines as they come.
pub async fn run_env_step(args: &crate::cli::args::EnvArgs, step: &str) -> Result<i32> {
    let loader = Loader::new();
    let config = with_default_env(&args.config, "compose");
    let plugin = load_plugin(&loader, &args.plugin, &config)?;
    let name = plugin.description.info.name.clone();
    let timeouts = Timeouts {
        step: Duration::from_secs(600),
        ..Timeouts::default()
    };
    let session = Session::create(plugin, &config, timeouts, |level, message| {
        eprintln!("  {:<5} {message}", format!("{level:?}").to_lowercase());
    })
    .await
    .with_context(|| format!("creating an instance of {name} with config `{config}`"))?;
    eprintln!("{step} {name} ({config})…");
    match session.run_step(step).await {
        Ok(summary) => {
            println!("{summary}");
            Ok(0)
        }
        Err(crate::plugin::session::CallError::Plugin { err: plugin_api::PluginError::Unsupported(_), .. }) => {
            Err(anyhow!("{name} does not manage its environment (it has no `{step}` step); bring it up or down by hand as its documentation says"))
        }
        Err(e) => Err(anyhow!("{step} failed: {e}")),
    }
}

/// `demo-host doctor`: checks the plugin's prerequisites (offering to install
/// what is missing) and that it builds and loads, without starting the subject.
pub fn doctor(args: &crate::cli::args::EnvArgs) -> Result<i32> {
    let loader = Loader::new();
    let plugin = load_plugin(&loader, &args.plugin, &args.config)?;
    println!(
        "{} {} (plugin-api {}): prerequisites present, built and loaded from {}",
        plugin.description.info.name,
        plugin.description.info.version,
        plugin.description.info.api_version,
        plugin.source.display()
    );
    Ok(0)
}

/// Adds `env=<env>` to a config string that names no environment.
fn with_default_env(config: &str, env: &str) -> String {
    let names_env = plugin_api::Config::parse(config).is_ok_and(|c| c.get("env").is_some());
    match (names_env, config.trim().is_empty()) {
        (true, _) => config.to_string(),
        (false, true) => format!("env={env}"),
        (false, false) => format!("env={env},{config}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_recorded_scenario_never_overwrites_another() {
        let dir = tempfile::tempdir().unwrap();
        let first = super::unused_path(dir.path(), "rl-counter-drift");
        assert!(first.ends_with("rl-counter-drift.json"));
        std::fs::write(&first, "{}").unwrap();
        let second = super::unused_path(dir.path(), "rl-counter-drift");
        assert!(second.ends_with("rl-counter-drift-2.json"));
        std::fs::write(&second, "{}").unwrap();
        assert!(
            super::unused_path(dir.path(), "rl-counter-drift").ends_with("rl-counter-drift-3.json")
        );
    }

    #[test]
    fn up_and_down_default_to_the_compose_environment() {
        assert_eq!(super::with_default_env("", "compose"), "env=compose");
        assert_eq!(
            super::with_default_env("mode=strict", "compose"),
            "env=compose,mode=strict"
        );
        assert_eq!(super::with_default_env("env=local", "compose"), "env=local");
    }
}
