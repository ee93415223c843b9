//! `demo-host eval --rescore DIR --replay-replies CASSETTES`: a campaign with a
//! model backend scored again with no model in reach. A live campaign cannot
//! be replayed (every window carries its run's times), so each trial's
//! diagnosis is asked again from the window its journal kept, through the same
//! prompt builder, and the cassette serves the reply recorded for it: a request
//! that differs from its recording (a changed prompt builder, say) is an error
//! naming the first differing field. The answers are scored against the
//! journals' expectations and the report is written again.

use super::campaign::CampaignReport;
use super::trial::TrialResult;
use crate::cli::args::EvalArgs;
use crate::diagnosis::{
    self, cassette::Replies, BackendConfig, DiagnoseOptions, DiagnosisError, Secret,
    DEFAULT_ANTHROPIC_BASE_URL, DEFAULT_OPENAI_BASE_URL,
};
use crate::journal::Journal;
use anyhow::{anyhow, Context, Result};
use std::path::Path;

pub async fn command(args: &EvalArgs, dir: &Path) -> Result<i32> {
    let replies = args.diagnosis.replies()?;
    let cassette =
        args.diagnosis.replay_replies.as_deref().ok_or_else(|| {
            anyhow!("--rescore needs --replay-replies DIR, the campaign's cassette")
        })?;
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the campaign's report {}", path.display()))?;
    let old: CampaignReport = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a campaign report", path.display()))?;
    let mut results = Vec::with_capacity(old.trials.len());
    for trial in &old.trials {
        let result = rescore(dir, trial, &replies, args.diagnosis.llm_url.as_deref())
            .await
            .with_context(|| match &trial.journal {
                Some(j) => format!("re-scoring {j}"),
                None => format!("re-scoring {} #{}", trial.fault, trial.trial + 1),
            })?;
        results.push(result);
    }
    let mut info = old.campaign.clone();
    info.notes.push(format!(
        "re-scored offline: the model replies served from {}",
        cassette.join(diagnosis::cassette::FILE_NAME).display()
    ));
    let report = CampaignReport::new(info, results);
    let out = args.out.as_deref().unwrap_or(dir);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    super::runner::write_report(&report, out)
}

/// One trial scored again: its diagnoses asked again from their windows when
/// a model made them, the trial's facts taken again from the updated journal.
async fn rescore(
    dir: &Path,
    old: &TrialResult,
    replies: &Replies,
    llm_url: Option<&str>,
) -> Result<TrialResult> {
    let Some(rel) = old.journal.as_deref() else {
        return Ok(old.clone());
    };
    let mut journal = Journal::read(&dir.join(rel))?;
    let label = match old.cell.diagnoser.as_str() {
        "" => journal.diagnoser.clone(),
        l => l.to_string(),
    };
    let Some(config) = backend(&label, llm_url) else {
        // The builtin's answers are its own; they are scored again only.
        return Ok(rescored(old, &journal));
    };
    let opts = DiagnoseOptions {
        replies: replies.for_trial(rel),
        ..DiagnoseOptions::default()
    };
    let mut failed = None;
    let mut kept = Vec::with_capacity(journal.diagnoses.len());
    for mut run in std::mem::take(&mut journal.diagnoses) {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        match diagnosis::diagnose(&config, &run.window, &opts, tx).await {
            Ok(d) => {
                run.score = run
                    .expected
                    .as_ref()
                    .map(|e| diagnosis::score(&d, e, &run.chaos_targets));
                run.diagnosis = d;
                kept.push(run);
            }
            Err(e @ DiagnosisError::Cassette(_)) => return Err(e.into()),
            // The recorded reply no longer passes (the schema check changed):
            // the trial's diagnosis failed, as it would have live.
            Err(e) => failed = failed.or(Some(e.to_string())),
        }
    }
    journal.diagnoses = kept;
    let mut result = rescored(old, &journal);
    if let Some(e) = failed {
        result.diagnosis_error = Some(e);
    }
    Ok(result)
}

/// The trial's facts from `journal`, with what only the campaign knew kept.
fn rescored(old: &TrialResult, journal: &Journal) -> TrialResult {
    let mut result = TrialResult::from_journal(&old.fault, old.trial, journal);
    result.journal = old.journal.clone();
    result.cell = old.cell.clone();
    result.unsettled = old.unsettled.clone();
    result
}

/// The backend a diagnoser label (`anthropic:MODEL`, `openai:MODEL`) stands
/// for, to build its requests; no key is needed, since nothing is sent.
fn backend(label: &str, llm_url: Option<&str>) -> Option<BackendConfig> {
    let (kind, model) = label.split_once(':')?;
    let url = |default: &str| llm_url.unwrap_or(default).to_string();
    match kind {
        "anthropic" => Some(BackendConfig::Anthropic {
            model: model.to_string(),
            api_key: Secret::new(""),
            base_url: url(DEFAULT_ANTHROPIC_BASE_URL),
        }),
        "openai" => Some(BackendConfig::OpenAi {
            base_url: url(DEFAULT_OPENAI_BASE_URL),
            model: model.to_string(),
            api_key: None,
        }),
        _ => None,
    }
}
