//! Arguments of `demo-host`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "demo-host",
    version,
    about = "Plays narrated chaos demos of distributed systems from subject plugins",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Write a debug log (the host's events and the plugin's log lines) to FILE, for bug
    /// reports; never to the terminal. API keys are never written.
    #[arg(long, global = true, value_name = "FILE", env = "DEMO_HOST_LOG_FILE")]
    pub log_file: Option<PathBuf>,
    /// Without a command: play the demo interactively.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Play the demo (interactive unless --headless).
    Run(RunArgs),
    /// List the plugins found in ./plugins, $DEMO_HOST_PLUGIN_PATH and beside the host binary.
    List,
    /// Print a plugin's info, chapters and chaos actions.
    Inspect(InspectArgs),
    /// Bring the subject's environment up (default `env=compose`) and wait until it is healthy.
    Up(EnvArgs),
    /// Bring the subject's environment down, leaving nothing behind.
    Down(EnvArgs),
    /// Check a plugin's prerequisites (offering to install what is missing), build and load it.
    Doctor(EnvArgs),
    /// Print the effective settings and where each came from (flag, environment, file, default).
    Config(RunArgs),
    /// Print a shell completion script: `demo-host completions bash > /etc/bash_completion.d/demo-host`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `demo-host man | man -l -`.
    Man,
    /// Scaffold a plugin crate of its own (outside this workspace) that builds as is.
    New(NewArgs),
    /// Render a headless run's journal (or a campaign's report.json) as self-contained HTML and Markdown.
    Report(ReportArgs),
    /// Run an eval campaign: many trials of the plugin's faults, scored, with a report.
    Eval(EvalArgs),
}

#[derive(Debug, Args, Clone)]
pub struct EvalArgs {
    /// A campaign file (TOML, docs/eval.md): a matrix of subjects × faults with
    /// parameter sets × diagnosers × policies; replaces --plugin, --faults.
    pub campaign: Option<PathBuf>,
    #[command(flatten)]
    pub plugin: PluginArgs,
    /// Plugin config: key=value pairs (e.g. "env=local").
    #[arg(long, short = 'c', default_value = "", env = "DEMO_HOST_CONFIG")]
    pub config: String,
    /// The faults to play (chaos action ids of the demo's chaos chapters); all when omitted.
    #[arg(long, value_delimiter = ',')]
    pub faults: Vec<String>,
    /// Trials per fault.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub trials: u64,
    /// Trials without a fault, to measure false alarms.
    #[arg(long, default_value_t = 0)]
    pub baseline: u64,
    /// Fixes the order of the trials, their injection phases and the bootstrap resamples.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where report.json, report.md, report.html and trials/*.json go (default: the
    /// campaign file's `out`, else ./eval).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Pause after each trial before the health gate, in ms.
    #[arg(long, default_value_t = 0)]
    pub cooldown_ms: u64,
    /// Injection phase: up to this many ms of baseline are added at random before each fault.
    #[arg(long, default_value_t = 1000)]
    pub phase_ms: u64,
    /// Longest one chapter of a trial may take, in seconds.
    #[arg(long, default_value_t = 30)]
    pub chapter_timeout: u64,
    /// Longest the subject may take to be healthy again between trials, in seconds.
    #[arg(long, default_value_t = 60)]
    pub gate_timeout: u64,
    /// Health poll interval in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub poll_ms: u64,
    #[command(flatten)]
    pub diagnosis: DiagnoserArgs,
    /// Re-score the campaign in DIR offline instead of playing one: each trial's
    /// diagnosis is asked again from the window its journal kept, the reply served
    /// from --replay-replies, and the report written again (into --out, else DIR).
    #[arg(long, value_name = "DIR", requires = "replay_replies")]
    pub rescore: Option<PathBuf>,
    /// Which proposed fixes run in the trials: never (the self-healing baseline),
    /// low-risk, or auto; the report gives remediation success and time to resolve.
    #[arg(long, value_enum, default_value_t = crate::engine::remedy::Policy::Never)]
    pub remediate: crate::engine::remedy::Policy,
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// The journal a headless run wrote (`--journal`), or an eval campaign's report.json.
    pub journal: PathBuf,
    /// Where to write the HTML report (default: beside the journal, `.html`).
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Where to write the Markdown report (default: beside the journal, `.md`).
    #[arg(long)]
    pub md: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits and dashes (`pgreplica`).
    pub name: String,
    /// The directory to create the crate in (the crate is DIR/NAME).
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// The plugin-api crate to depend on (default: the one this host was built from).
    #[arg(long)]
    pub plugin_api: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct EnvArgs {
    #[command(flatten)]
    pub plugin: PluginArgs,
    /// Plugin config; `env=compose` is added when it names no environment.
    #[arg(long, short = 'c', default_value = "", env = "DEMO_HOST_CONFIG")]
    pub config: String,
}

#[derive(Debug, Args, Clone)]
pub struct PluginArgs {
    /// A plugin: a .so file, a plugin crate directory (plugins/ratelimiter) or a name from `demo-host list`.
    #[arg(long, short = 'p', env = "DEMO_HOST_PLUGIN")]
    pub plugin: Option<PathBuf>,
    /// Never run cargo to build a missing or stale plugin crate.
    #[arg(long)]
    pub no_build: bool,
    /// Install missing prerequisites without asking (the package manager's command is printed first).
    #[arg(long, short = 'y', env = "DEMO_HOST_YES", value_parser = clap::builder::BoolishValueParser::new())]
    pub yes: bool,
}

impl PluginArgs {
    pub fn consent(&self) -> prereq::Consent {
        if self.yes {
            prereq::Consent::Yes
        } else {
            prereq::Consent::Ask
        }
    }
}

/// Which diagnoser answers, shared by `run` and `eval`.
#[derive(Debug, Args, Clone)]
pub struct DiagnoserArgs {
    /// Diagnosis backend: builtin (offline, default), anthropic or openai.
    #[arg(long, env = "DEMO_HOST_DIAGNOSER", default_value = "builtin")]
    pub diagnoser: String,
    /// Model for an LLM backend.
    #[arg(long, env = "DEMO_HOST_MODEL")]
    pub model: Option<String>,
    /// Base URL of an OpenAI-compatible server (Ollama, llama.cpp, vLLM) or of the Anthropic API.
    #[arg(long, env = "DEMO_HOST_LLM_URL")]
    pub llm_url: Option<String>,
    /// Record every model request and its reply to DIR/cassette.jsonl (no header,
    /// so no API key, is recorded), to replay or re-score offline.
    #[arg(long, value_name = "DIR", conflicts_with = "replay_replies")]
    pub record_replies: Option<PathBuf>,
    /// Serve model replies from DIR/cassette.jsonl instead of the network; a request
    /// that differs from its recording is an error naming the first differing field.
    #[arg(long, value_name = "DIR")]
    pub replay_replies: Option<PathBuf>,
}

impl DiagnoserArgs {
    /// Where model requests go, from `--record-replies` / `--replay-replies`.
    pub fn replies(
        &self,
    ) -> Result<crate::diagnosis::cassette::Replies, crate::diagnosis::cassette::CassetteError>
    {
        use crate::diagnosis::cassette::Replies;
        match (&self.record_replies, &self.replay_replies) {
            (Some(dir), _) => Replies::record(dir),
            (None, Some(dir)) => Replies::replay(dir),
            (None, None) => Ok(Replies::default()),
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub plugin: PluginArgs,
    /// Plugin config: key=value pairs (e.g. "env=local,mode=cached").
    #[arg(long, short = 'c', default_value = "", env = "DEMO_HOST_CONFIG")]
    pub config: String,
    /// Play every chapter without a terminal, auto-advancing, and write a journal.
    #[arg(long)]
    pub headless: bool,
    /// Where the headless run writes its JSON journal.
    #[arg(long, default_value = "demo-journal.json")]
    pub journal: PathBuf,
    /// Stream NDJSON events to stdout (headless).
    #[arg(long)]
    pub events_json: bool,
    /// Write each diagnosis's observation window as a scenario file into this directory,
    /// to replay and score the diagnosis offline (the format of tests/scenarios).
    #[arg(long)]
    pub record_scenarios: Option<PathBuf>,
    /// Longest a chapter may take in a headless run before the run fails, in seconds.
    #[arg(long, default_value_t = 60)]
    pub chapter_timeout: u64,
    /// Health poll interval in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub poll_ms: u64,
    /// Seconds of the 3-2-1 countdown before a chaos action (0 to skip).
    #[arg(long, default_value_t = 3)]
    pub countdown: u64,
    #[command(flatten)]
    pub diagnosis: DiagnoserArgs,
    /// Mask node names and addresses before sending observations to a remote model.
    #[arg(long)]
    pub mask: bool,
    /// Undo faults recorded by an earlier run that did not live to recover them, without asking.
    #[arg(long)]
    pub recover_leftovers: bool,
    /// Headless: which fixes a diagnosis proposes run without a presenter: never (only
    /// proposed), low-risk, or auto (all). Interactive runs ask the presenter (a / c).
    #[arg(long, value_enum, default_value_t = crate::engine::remedy::Policy::Never, env = "DEMO_HOST_REMEDIATE")]
    pub remediate: crate::engine::remedy::Policy,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The plugin to inspect.
    pub plugin: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Never run cargo to build a missing or stale plugin crate.
    #[arg(long)]
    pub no_build: bool,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_definitions_are_consistent_and_complete_in_every_shell() {
        Cli::command().debug_assert();
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "demo-host", &mut out);
            let text = String::from_utf8(out).unwrap();
            for sub in ["doctor", "inspect", "config", "log-file", "no-build"] {
                assert!(text.contains(sub), "{shell:?} completion lacks {sub}");
            }
        }
    }
}
