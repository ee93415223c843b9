//! `demo-host eval CAMPAIGN.toml`: a campaign file names a matrix of subjects
//! (plugin + config) × faults (with parameter sets) × trials × diagnosers ×
//! remediation policies, plus baseline trials and a cooldown. This module
//! reads and checks the file; `runner` plays it. The format is in `docs/eval.md`.

use crate::engine::remedy::Policy;
use plugin_api::{OnEnter, ParamValue, SubjectDescription};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::plan::{self, Scenario};

/// The largest campaign file read: anything bigger is not one.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A campaign file as written; every key but `[[subject]]` is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CampaignFile {
    /// Fixes trial order, injection phases and bootstrap resamples (default 1).
    pub seed: Option<u64>,
    /// Trials per fault and parameter set, unless a fault says otherwise (default 10).
    pub trials: Option<u64>,
    /// Baseline trials (no fault) per subject, unless a subject says otherwise (default 0).
    pub baseline: Option<u64>,
    /// Pause after each trial before the health gate, in ms (default 0).
    pub cooldown_ms: Option<u64>,
    /// Up to this much baseline is added at random before each injection (default 1000).
    pub phase_ms: Option<u64>,
    /// Where the report goes, relative to the working directory (`--out` overrides it).
    pub out: Option<PathBuf>,
    /// The diagnosers every fault trial is played with (default: builtin).
    #[serde(default, rename = "diagnoser")]
    pub diagnosers: Vec<DiagnoserSpec>,
    /// The remediation policies every fault trial is played with (default: never).
    #[serde(default)]
    pub policies: Vec<Policy>,
    #[serde(default, rename = "subject")]
    pub subjects: Vec<SubjectSpec>,
}

/// One diagnoser of the matrix; an API key comes from the environment only.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DiagnoserSpec {
    /// `builtin`, `anthropic` or `openai`.
    pub backend: String,
    pub model: Option<String>,
    pub url: Option<String>,
}

/// One subject of the matrix: a plugin with its config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SubjectSpec {
    /// As `--plugin` takes it: a crate directory, a .so file or a plugin name.
    pub plugin: PathBuf,
    /// Plugin config, `key=value` pairs as `--config` takes them.
    #[serde(default)]
    pub config: String,
    /// The name the report groups this subject's trials by (default: the
    /// plugin's id, with the config when it has one).
    pub name: Option<String>,
    pub baseline: Option<u64>,
    /// The faults to play (default: every chaos chapter of the plugin's demo).
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultSpec>,
}

/// One fault of a subject: a chaos chapter of its demo and the parameter sets to play it with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FaultSpec {
    /// The scenario's name, as `--faults` takes it (`partition`, `partition-2`).
    pub name: String,
    pub trials: Option<u64>,
    /// Each set replaces these parameters of the chaos chapter; none: the demo's own.
    #[serde(default)]
    pub params: Vec<BTreeMap<String, ParamValue>>,
}

/// A campaign file that cannot be played, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("could not read the campaign file {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}: {err}\nThe format is in docs/eval.md (\"Campaign files\"); docs/eval/campaign.example.toml is an example.")]
    Syntax { path: PathBuf, err: String },
    #[error("{path}: `{key}`: {what}")]
    Invalid {
        path: PathBuf,
        key: String,
        what: String,
    },
}

/// Reads and parses a campaign file.
pub fn read(path: &Path) -> Result<CampaignFile, MatrixError> {
    let io = |err| MatrixError::Io {
        path: path.to_path_buf(),
        err,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_BYTES {
        return Err(MatrixError::Syntax {
            path: path.to_path_buf(),
            err: format!("{len} bytes is too large for a campaign file (at most {MAX_FILE_BYTES})"),
        });
    }
    parse(&std::fs::read_to_string(path).map_err(io)?, path)
}

/// Parses a campaign file's text and checks what needs no plugin.
pub fn parse(text: &str, path: &Path) -> Result<CampaignFile, MatrixError> {
    let file: CampaignFile = toml::from_str(text).map_err(|e| MatrixError::Syntax {
        path: path.to_path_buf(),
        err: e.to_string(),
    })?;
    let invalid = |key: String, what: &str| MatrixError::Invalid {
        path: path.to_path_buf(),
        key,
        what: what.to_string(),
    };
    if file.subjects.is_empty() {
        return Err(invalid(
            "subject".into(),
            "the campaign names no subject: add a [[subject]] table with plugin = \"plugins/example\"",
        ));
    }
    if file.trials == Some(0) {
        return Err(invalid("trials".into(), "must be at least 1"));
    }
    for (i, s) in file.subjects.iter().enumerate() {
        for (j, f) in s.faults.iter().enumerate() {
            if f.trials == Some(0) {
                return Err(invalid(
                    format!("subject[{i}].fault[{j}].trials"),
                    "must be at least 1",
                ));
            }
        }
    }
    let mut names: Vec<String> = file.subjects.iter().map(SubjectSpec::label).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(
            "subject.name".into(),
            &format!(
                "two subjects are both called `{}`: give one a different name = \"…\"",
                w[0]
            ),
        ));
    }
    Ok(file)
}

impl CampaignFile {
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(1)
    }

    pub fn phase_ms(&self) -> u64 {
        self.phase_ms.unwrap_or(1000)
    }

    /// The diagnosers to play, the builtin when none is named.
    pub fn diagnosers(&self) -> Vec<DiagnoserSpec> {
        match self.diagnosers.is_empty() {
            true => vec![DiagnoserSpec {
                backend: "builtin".into(),
                model: None,
                url: None,
            }],
            false => self.diagnosers.clone(),
        }
    }

    /// The policies to play, `never` when none is named; each once.
    pub fn policies(&self) -> Vec<Policy> {
        let mut out: Vec<Policy> = Vec::new();
        for p in &self.policies {
            if !out.contains(p) {
                out.push(*p);
            }
        }
        if out.is_empty() {
            out.push(Policy::Never);
        }
        out
    }
}

impl SubjectSpec {
    /// The name the report groups this subject by, before the plugin is loaded.
    pub fn label(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let plugin = self
            .plugin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.plugin.display().to_string());
        match self.config.trim() {
            "" => plugin,
            c => format!("{plugin} ({c})"),
        }
    }
}

/// One fault scenario of a subject with one parameter set, and its trials.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub scenario: Scenario,
    pub trials: usize,
}

/// The scenarios a subject plays, each parameter set its own scenario named
/// `fault{key=value,…}`; a parameter the chaos action does not declare is an
/// error naming the key.
pub fn variants(
    path: &Path,
    index: usize,
    subject: &SubjectSpec,
    desc: &SubjectDescription,
    default_trials: usize,
) -> Result<Vec<Variant>, MatrixError> {
    let all = plan::scenarios(desc);
    let key = |rest: &str| format!("subject[{index}]{rest}");
    let invalid = |key: String, what: String| MatrixError::Invalid {
        path: path.to_path_buf(),
        key,
        what,
    };
    if subject.faults.is_empty() {
        return plan::select(all, &[])
            .map(|s| {
                s.into_iter()
                    .map(|scenario| Variant {
                        scenario,
                        trials: default_trials,
                    })
                    .collect()
            })
            .map_err(|e| invalid(key(".plugin"), e.to_string()));
    }
    let mut out = Vec::new();
    for (j, f) in subject.faults.iter().enumerate() {
        let here = key(&format!(".fault[{j}]"));
        let scenario = plan::select(all.clone(), std::slice::from_ref(&f.name))
            .map_err(|e| invalid(format!("{here}.name"), e.to_string()))?
            .remove(0);
        let trials = f.trials.map_or(default_trials, |t| t as usize);
        if f.params.is_empty() {
            out.push(Variant { scenario, trials });
            continue;
        }
        let action = chaos_action(&scenario).unwrap_or_default();
        let declared: Vec<&str> = desc
            .chaos_actions
            .iter()
            .find(|a| a.id == action)
            .map(|a| a.params.iter().map(|p| p.name.as_str()).collect())
            .unwrap_or_default();
        for (k, set) in f.params.iter().enumerate() {
            if let Some(unknown) = set.keys().find(|p| !declared.contains(&p.as_str())) {
                return Err(invalid(
                    format!("{here}.params[{k}].{unknown}"),
                    format!(
                        "the chaos action `{action}` has no parameter `{unknown}`; it has: {}",
                        if declared.is_empty() {
                            "none".to_string()
                        } else {
                            declared.join(", ")
                        }
                    ),
                ));
            }
            out.push(Variant {
                scenario: with_params(&scenario, set),
                trials,
            });
        }
    }
    Ok(out)
}

/// The chaos action a scenario's first chapter injects.
fn chaos_action(s: &Scenario) -> Option<String> {
    match &s.chapters.first()?.on_enter {
        Some(OnEnter::Chaos { action, .. }) => Some(action.clone()),
        _ => None,
    }
}

/// The scenario with `set` replacing (or adding) parameters of its chaos
/// chapter, named after them so the report tells the sets apart.
fn with_params(s: &Scenario, set: &BTreeMap<String, ParamValue>) -> Scenario {
    let mut out = s.clone();
    if let Some(Some(OnEnter::Chaos { params, .. })) =
        out.chapters.first_mut().map(|c| &mut c.on_enter)
    {
        for (k, v) in set {
            match params.iter_mut().find(|(name, _)| name == k) {
                Some(p) => p.1 = v.clone(),
                None => params.push((k.clone(), v.clone())),
            }
        }
    }
    let label: Vec<String> = set
        .iter()
        .map(|(k, v)| format!("{k}={}", show(v)))
        .collect();
    out.fault = format!("{}{{{}}}", s.fault, label.join(","));
    out
}

fn show(v: &ParamValue) -> String {
    match v {
        ParamValue::Bool(b) => b.to_string(),
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(f) => f.to_string(),
        ParamValue::Text(t) => t.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_file() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/eval/campaign.example.toml")
    }

    #[test]
    fn the_committed_example_parses() {
        let f = read(&example_file()).expect("docs/eval/campaign.example.toml parses");
        assert!(!f.subjects.is_empty());
        assert!(f.cooldown_ms.is_some());
        assert!(f.subjects.iter().any(|s| s.baseline.unwrap_or(0) > 0) || f.baseline > Some(0));
        assert!(f
            .subjects
            .iter()
            .flat_map(|s| &s.faults)
            .any(|f| !f.params.is_empty()));
        assert!(f.policies().len() > 1, "the example shows a policy matrix");
    }

    #[test]
    fn bad_input_names_the_file_and_the_key() {
        let p = Path::new("c.toml");
        let e = parse("seed = 1\n", p).unwrap_err().to_string();
        assert!(
            e.starts_with("c.toml: `subject`") && e.contains("[[subject]]"),
            "{e}"
        );
        let e = parse("[[subject]]\nplugin = \"x\"\ntrails = 3\n", p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.toml") && e.contains("trails") && e.contains("line 3"),
            "{e}"
        );
        assert!(e.contains("docs/eval.md"), "says where the format is: {e}");
        let e = parse("policies = [\"always\"]\n[[subject]]\nplugin = \"x\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("always") && e.contains("line 1"), "{e}");
        let e = parse(
            "[[subject]]\nplugin = \"x\"\n[[subject.fault]]\nname = \"a\"\ntrials = 0\n",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("subject[0].fault[0].trials"), "{e}");
        let e = parse(
            "[[subject]]\nplugin = \"a/x\"\n[[subject]]\nplugin = \"b/x\"\n",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`x`") && e.contains("name"), "{e}");
    }

    fn example_desc() -> SubjectDescription {
        let chapters = vec![
            plugin_api::Chapter::narrate("p", "").on_enter(OnEnter::Chaos {
                action: "partition".into(),
                params: vec![("duration_ms".into(), ParamValue::Int(20_000))],
            }),
            plugin_api::Chapter::narrate("r", "").on_enter(OnEnter::Recover),
        ];
        let mut d = crate::eval::plan::tests::bare();
        d.chapters = chapters;
        d.chaos_actions = vec![plugin_api::ChaosAction {
            id: "partition".into(),
            name: "Partition".into(),
            kind: plugin_api::ChaosKind::ProcessKill,
            description: String::new(),
            params: vec![plugin_api::ParamSpec {
                name: "duration_ms".into(),
                description: String::new(),
                kind: plugin_api::ParamKind::DurationMs,
                default: ParamValue::Int(1000),
                min: None,
                max: None,
                unit: "ms".into(),
            }],
            recovery: plugin_api::Recovery::SelfRecovering,
        }];
        d
    }

    #[test]
    fn parameter_sets_are_scenarios_of_their_own() {
        let text = "[[subject]]\nplugin = \"plugins/example\"\n[[subject.fault]]\nname = \"partition\"\ntrials = 2\nparams = [{ duration_ms = 500 }, { duration_ms = 4000 }]\n";
        let f = parse(text, Path::new("c.toml")).unwrap();
        let v = variants(Path::new("c.toml"), 0, &f.subjects[0], &example_desc(), 10).unwrap();
        let names: Vec<&str> = v.iter().map(|v| v.scenario.fault.as_str()).collect();
        assert_eq!(
            names,
            ["partition{duration_ms=500}", "partition{duration_ms=4000}"]
        );
        assert!(v.iter().all(|v| v.trials == 2));
        match &v[1].scenario.chapters[0].on_enter {
            Some(OnEnter::Chaos { params, .. }) => {
                assert_eq!(params, &[("duration_ms".into(), ParamValue::Int(4000))])
            }
            other => panic!("{other:?}"),
        }
        let bad = text.replace("{ duration_ms = 500 }", "{ seconds = 5 }");
        let f = parse(&bad, Path::new("c.toml")).unwrap();
        let e = variants(Path::new("c.toml"), 0, &f.subjects[0], &example_desc(), 10)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("subject[0].fault[0].params[0].seconds") && e.contains("duration_ms"),
            "{e}"
        );
        let unknown = text.replace("name = \"partition\"", "name = \"flood\"");
        let f = parse(&unknown, Path::new("c.toml")).unwrap();
        let e = variants(Path::new("c.toml"), 0, &f.subjects[0], &example_desc(), 10)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("subject[0].fault[0].name") && e.contains("flood"),
            "{e}"
        );
    }
}
