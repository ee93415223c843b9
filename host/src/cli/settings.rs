//! The settings a presenter keeps in a file, merged under the command line.
//!
//! Precedence, highest first: a flag, its environment variable, `./demo-host.toml`,
//! `$XDG_CONFIG_HOME/demo-host/config.toml` (else `~/.config/demo-host/config.toml`),
//! the built-in default. clap already resolves flag > environment > default;
//! a file's value replaces only what clap took from its default (or lacks),
//! which `ArgMatches::value_source` tells.

use crate::cli::args::{EnvArgs, RunArgs};
use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// One settings file, every key optional. API keys are not settings: they
/// come from the environment only, so no file of settings ever holds one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileSettings {
    pub plugin: Option<PathBuf>,
    pub config: Option<String>,
    pub poll_ms: Option<u64>,
    pub countdown: Option<u64>,
    pub chapter_timeout: Option<u64>,
    pub diagnoser: Option<String>,
    pub model: Option<String>,
    pub llm_url: Option<String>,
    pub mask: Option<bool>,
    /// `never`, `low-risk` or `auto`: which proposed fixes a headless run runs.
    pub remediate: Option<crate::engine::remedy::Policy>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("could not read {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}: {err}")]
    Invalid { path: PathBuf, err: String },
}

/// The largest settings file read; anything bigger is not a settings file.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The settings files that exist, highest precedence first.
pub fn files() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("demo-host.toml")];
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(dir) = xdg {
        out.push(dir.join("demo-host").join("config.toml"));
    }
    out.into_iter().filter(|p| p.is_file()).collect()
}

/// Reads one file; a bad one is an error that names the file, the line and the key.
pub fn read(path: &Path) -> Result<FileSettings, SettingsError> {
    let io = |err| SettingsError::Io {
        path: path.to_path_buf(),
        err,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_BYTES {
        return Err(SettingsError::Invalid {
            path: path.to_path_buf(),
            err: format!(
                "{len} bytes is too large for a settings file (at most {MAX_FILE_BYTES}) "
            ),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    parse(&text, path)
}

pub fn parse(text: &str, path: &Path) -> Result<FileSettings, SettingsError> {
    let invalid = |err: String| SettingsError::Invalid {
        path: path.to_path_buf(),
        err,
    };
    let settings: FileSettings =
        toml::from_str(text).map_err(|e: toml::de::Error| invalid(e.to_string()))?;
    // The same bound the flag has: a file must not get past what --poll-ms refuses.
    if let Some(ms) = settings.poll_ms.filter(|ms| !(10..=10_000).contains(ms)) {
        return Err(invalid(format!(
            "poll-ms = {ms} is outside 10..=10000 (milliseconds)"
        )));
    }
    Ok(settings)
}

/// Where an effective setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(String),
    File(PathBuf),
    Default,
    Unset,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("command line"),
            Source::Env(var) => write!(f, "environment ({var})"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Default => f.write_str("default"),
            Source::Unset => f.write_str("not set"),
        }
    }
}

/// One line of `demo-host config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub key: &'static str,
    pub value: String,
    pub source: Source,
}

/// Fills the run arguments clap left at their defaults from the files
/// (`files` highest precedence first) and says where each setting came from.
pub fn apply(
    run: &mut RunArgs,
    matches: &ArgMatches,
    files: &[(PathBuf, FileSettings)],
) -> Vec<Effective> {
    let mut out = Vec::new();
    macro_rules! setting {
        ($key:literal, $id:literal, $env:expr, $target:expr, $field:ident, $wrap:expr, $show:expr) => {{
            let source = match matches.value_source($id) {
                Some(ValueSource::CommandLine) => Source::Flag,
                Some(ValueSource::EnvVariable) => Source::Env($env.to_string()),
                _ => match files
                    .iter()
                    .find_map(|(p, f)| f.$field.clone().map(|v| (p, v)))
                {
                    Some((path, v)) => {
                        $target = $wrap(v);
                        Source::File(path.clone())
                    }
                    None if matches.value_source($id) == Some(ValueSource::DefaultValue) => {
                        Source::Default
                    }
                    None => Source::Unset,
                },
            };
            out.push(Effective {
                key: $key,
                value: $show(&$target),
                source,
            });
        }};
    }
    let show_path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let show_opt = |s: &Option<String>| s.clone().unwrap_or_default();
    setting!(
        "plugin",
        "plugin",
        "DEMO_HOST_PLUGIN",
        run.plugin.plugin,
        plugin,
        Some,
        show_path
    );
    setting!(
        "config",
        "config",
        "DEMO_HOST_CONFIG",
        run.config,
        config,
        |v| v,
        |s: &String| s.clone()
    );
    setting!(
        "poll-ms",
        "poll_ms",
        "",
        run.poll_ms,
        poll_ms,
        |v| v,
        |v: &u64| v.to_string()
    );
    setting!(
        "countdown",
        "countdown",
        "",
        run.countdown,
        countdown,
        |v| v,
        |v: &u64| v.to_string()
    );
    setting!(
        "chapter-timeout",
        "chapter_timeout",
        "",
        run.chapter_timeout,
        chapter_timeout,
        |v| v,
        |v: &u64| v.to_string()
    );
    setting!(
        "diagnoser",
        "diagnoser",
        "DEMO_HOST_DIAGNOSER",
        run.diagnosis.diagnoser,
        diagnoser,
        |v| v,
        |s: &String| s.clone()
    );
    setting!(
        "model",
        "model",
        "DEMO_HOST_MODEL",
        run.diagnosis.model,
        model,
        Some,
        show_opt
    );
    setting!(
        "llm-url",
        "llm_url",
        "DEMO_HOST_LLM_URL",
        run.diagnosis.llm_url,
        llm_url,
        Some,
        show_opt
    );
    setting!("mask", "mask", "", run.mask, mask, |v| v, |v: &bool| v
        .to_string());
    setting!(
        "remediate",
        "remediate",
        "DEMO_HOST_REMEDIATE",
        run.remediate,
        remediate,
        |v| v,
        |v: &crate::engine::remedy::Policy| v.label().to_string()
    );
    out
}

/// `plugin` and `config` of `up`, `down` and `doctor` from the files, under their flags.
pub fn apply_env(args: &mut EnvArgs, matches: &ArgMatches, files: &[(PathBuf, FileSettings)]) {
    let from_file = |id| {
        !matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    if from_file("plugin") {
        if let Some(p) = files.iter().find_map(|(_, f)| f.plugin.clone()) {
            args.plugin.plugin = Some(p);
        }
    }
    if from_file("config") {
        if let Some(c) = files.iter().find_map(|(_, f)| f.config.clone()) {
            args.config = c;
        }
    }
}

/// Reads every settings file that exists.
pub fn load() -> Result<Vec<(PathBuf, FileSettings)>, SettingsError> {
    files()
        .into_iter()
        .map(|p| read(&p).map(|s| (p, s)))
        .collect()
}

/// The `demo-host config` table.
pub fn render(effective: &[Effective], files: &[(PathBuf, FileSettings)]) -> String {
    let mut out = String::from("settings files (highest precedence first):\n");
    if files.is_empty() {
        out.push_str("  (none: ./demo-host.toml or ~/.config/demo-host/config.toml)\n");
    }
    for (p, _) in files {
        out.push_str(&format!("  {}\n", p.display()));
    }
    out.push('\n');
    let width = effective.iter().map(|e| e.key.len()).max().unwrap_or(0);
    let vwidth = effective
        .iter()
        .map(|e| e.value.chars().count())
        .max()
        .unwrap_or(0)
        .min(48);
    for e in effective {
        out.push_str(&format!(
            "{:<width$}  {:<vwidth$}  {}\n",
            e.key,
            e.value,
            e.source,
            width = width,
            vwidth = vwidth
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::Cli;
    use clap::{CommandFactory, FromArgMatches};

    fn parse_cli(args: &[&str]) -> (RunArgs, ArgMatches) {
        let matches = Cli::command().get_matches_from(args);
        let cli = Cli::from_arg_matches(&matches).unwrap();
        (cli.run, matches)
    }

    fn file(text: &str) -> (PathBuf, FileSettings) {
        let p = PathBuf::from("demo-host.toml");
        let s = parse(text, &p).unwrap();
        (p, s)
    }

    #[test]
    fn a_flag_beats_the_file_and_the_file_beats_the_default() {
        let (mut run, m) = parse_cli(&["demo-host", "--countdown", "7"]);
        let files = [file(
            "countdown = 1\npoll-ms = 250\ndiagnoser = \"openai\"\nremediate = \"low-risk\"\n",
        )];
        let eff = apply(&mut run, &m, &files);
        assert_eq!(run.remediate, crate::engine::remedy::Policy::LowRisk);
        assert_eq!(run.countdown, 7);
        assert_eq!(run.poll_ms, 250);
        assert_eq!(run.diagnosis.diagnoser, "openai");
        let source = |k: &str| eff.iter().find(|e| e.key == k).unwrap().source.clone();
        assert_eq!(source("countdown"), Source::Flag);
        assert_eq!(
            source("poll-ms"),
            Source::File(PathBuf::from("demo-host.toml"))
        );
        assert_eq!(source("chapter-timeout"), Source::Default);
        assert_eq!(source("model"), Source::Unset);
    }

    #[test]
    fn the_first_file_wins_over_later_ones() {
        let (mut run, m) = parse_cli(&["demo-host"]);
        let local = file("plugin = \"plugins/example\"\n");
        let user = (
            PathBuf::from("/home/u/.config/demo-host/config.toml"),
            parse("plugin = \"plugins/tikv\"\nmodel = \"m\"\n", Path::new("x")).unwrap(),
        );
        let eff = apply(&mut run, &m, &[local, user]);
        assert_eq!(run.plugin.plugin, Some(PathBuf::from("plugins/example")));
        assert_eq!(run.diagnosis.model.as_deref(), Some("m"));
        assert!(render(&eff, &[]).contains("model"));
    }

    #[test]
    fn a_bad_file_names_the_line_and_the_key() {
        let e = parse(
            "countdown = 3\npoll_ms = 100\n",
            Path::new("demo-host.toml"),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("demo-host.toml") && text.contains("line 2"),
            "{text}"
        );
        assert!(
            text.contains("unknown field `poll_ms`") && text.contains("poll-ms"),
            "{text}"
        );
        let e = parse("countdown = \"three\"\n", Path::new("f.toml")).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = parse("remediate = \"always\"\n", Path::new("f.toml")).unwrap_err();
        assert!(
            e.to_string().contains("line 1") && e.to_string().contains("low-risk"),
            "{e}"
        );
        let e = parse("poll-ms = 3\n", Path::new("f.toml")).unwrap_err();
        assert!(e.to_string().contains("outside 10..=10000"), "{e}");
    }
}
