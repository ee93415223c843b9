//! The diagnosis engine: an AI (or the builtin reasoner) diagnoses an anomaly
//! from an [`ObservationWindow`] alone, with the subject supplying only its
//! vocabulary. It never learns which chaos action was injected; the host
//! knows, and uses that only to [`score`] the answer.
//!
//! See `docs/diagnosis.md` for backends, the schema, masking and scoring.

mod anthropic;
pub mod builtin;
pub mod cassette;
mod config;
mod error;
mod http;
pub mod mask;
mod openai;
pub mod prompt;
pub mod remedy;
mod report;
mod score;
pub mod sse;
pub mod stored;
mod summary;
pub mod usage;
mod window;

pub use config::{
    BackendConfig, DiagnoseOptions, DiagnoserFlags, Secret, DEFAULT_ANTHROPIC_BASE_URL,
    DEFAULT_ANTHROPIC_MODEL, DEFAULT_OPENAI_BASE_URL, ENV_ANTHROPIC_BASE_URL, ENV_ANTHROPIC_KEY,
    ENV_BACKEND, ENV_MODEL, ENV_OPENAI_BASE_URL, ENV_OPENAI_KEY,
};
pub use error::{DiagnosisError, SCHEMA_MISMATCH};
pub use prompt::{build_prompt, Prompt};
pub use report::{
    answer_schema, answer_schema_for, parse_answer, Alternative, Diagnosis, Evidence,
    MetricReading, Severity, TimelineEntry, ANSWER_NAME, NO_ANOMALY,
};
pub use score::{names_component, normalize, score, Score};
pub use window::{changes_between, InvariantChange, ObservationWindow};

/// The request bodies the model backends send, for contract tests and `--dry-run` style inspection.
pub mod request {
    pub use super::anthropic::{request_body as anthropic_body, API_VERSION as ANTHROPIC_VERSION};
    pub use super::openai::{endpoint as openai_endpoint, request_body as openai_body};
}

use http::RawAnswer;
use mask::Masker;
use plugin_api::InvariantStatus;
use tokio::sync::mpsc::UnboundedSender;
use usage::ModelCall;

/// Diagnoses a window with the configured backend.
///
/// `progress` receives text as it arrives (streamed model output, or the
/// builtin's narrative) so the panel can show it live. The whole call is
/// bounded by `opts.timeout`; the caller may also drop the future to move on.
pub async fn diagnose(
    cfg: &BackendConfig,
    window: &ObservationWindow,
    opts: &DiagnoseOptions,
    progress: UnboundedSender<String>,
) -> Result<Diagnosis, DiagnosisError> {
    let findings = rule_findings(window);
    let work = async {
        match cfg {
            BackendConfig::Builtin => {
                let mut d = builtin::diagnose(window);
                let _ = progress.send(d.narrative.clone());
                d.rule_findings = findings;
                Ok(d)
            }
            BackendConfig::Anthropic {
                model,
                api_key,
                base_url,
            } => {
                let masker = opts.mask_identities.then(|| Masker::for_window(window));
                let prompt = prompt_for(window, masker.as_ref());
                let mut relay = Relay::new(&progress, masker.as_ref());
                let mut call = ModelCall::default();
                let raw = anthropic::ask(
                    base_url,
                    model,
                    api_key,
                    &opts.replies,
                    &prompt,
                    &mut |c| relay.push(c),
                    &mut call,
                )
                .await;
                relay.flush();
                finish(
                    raw?,
                    masker.as_ref(),
                    cfg.label(),
                    findings,
                    &window.remedies,
                )
                .map(|d| with_call(d, call))
            }
            BackendConfig::OpenAi {
                base_url,
                model,
                api_key,
            } => {
                let masker = opts.mask_identities.then(|| Masker::for_window(window));
                let prompt = prompt_for(window, masker.as_ref());
                let mut relay = Relay::new(&progress, masker.as_ref());
                let mut call = ModelCall::default();
                let raw = openai::ask(
                    base_url,
                    model,
                    api_key.as_ref(),
                    &opts.replies,
                    &prompt,
                    &mut |c| relay.push(c),
                    &mut call,
                )
                .await;
                relay.flush();
                finish(
                    raw?,
                    masker.as_ref(),
                    cfg.label(),
                    findings,
                    &window.remedies,
                )
                .map(|d| with_call(d, call))
            }
        }
    };
    tokio::time::timeout(opts.timeout, work)
        .await
        .map_err(|_| DiagnosisError::Timeout(opts.timeout))?
}

/// Forwards streamed text to the panel with masked names restored, holding
/// back a tail that may be the start of a placeholder split across chunks.
/// The diagnosis with what its model call took and cost.
fn with_call(mut d: Diagnosis, call: ModelCall) -> Diagnosis {
    d.model_call = Some(call);
    d
}

struct Relay<'a> {
    tx: &'a UnboundedSender<String>,
    masker: Option<&'a Masker>,
    pending: String,
}

impl<'a> Relay<'a> {
    fn new(tx: &'a UnboundedSender<String>, masker: Option<&'a Masker>) -> Self {
        Relay {
            tx,
            masker,
            pending: String::new(),
        }
    }

    fn push(&mut self, chunk: &str) {
        let Some(m) = self.masker else {
            let _ = self.tx.send(chunk.to_string());
            return;
        };
        self.pending.push_str(chunk);
        let cut = m.safe_prefix_len(&self.pending);
        if cut > 0 {
            let ready: String = self.pending.drain(..cut).collect();
            let _ = self.tx.send(m.unmask_text(&ready));
        }
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let text = self.masker.map_or(rest.clone(), |m| m.unmask_text(&rest));
            let _ = self.tx.send(text);
        }
    }
}

fn prompt_for(window: &ObservationWindow, masker: Option<&Masker>) -> Prompt {
    match masker {
        Some(m) => build_prompt(&m.mask_window(window)),
        None => build_prompt(window),
    }
}

/// Schema-checks a model's answer after restoring masked names.
fn finish(
    raw: RawAnswer,
    masker: Option<&Masker>,
    backend: String,
    findings: Vec<String>,
    remedies: &[plugin_api::Remedy],
) -> Result<Diagnosis, DiagnosisError> {
    let mut value = match raw {
        RawAnswer::Json(v) => v,
        RawAnswer::Text(text) => report::answer_value(&text)?,
    };
    if let Some(m) = masker {
        m.unmask_value(&mut value);
    }
    report::parse_answer_value(value, backend, findings, remedies)
}

/// What the subject's own invariant checks found in the window, stated
/// without any interpretation: the rules' side of the panel.
pub fn rule_findings(window: &ObservationWindow) -> Vec<String> {
    let origin = window.snapshots.first().map(|s| s.at_ms).unwrap_or(0);
    let rel = |t: u64| format!("+{:.1}s", t.saturating_sub(origin) as f64 / 1000.0);
    let mut findings = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let latest = window.snapshots.last();
    for c in window
        .invariant_changes
        .iter()
        .filter(|c| c.to == InvariantStatus::Violated)
    {
        if seen.contains(&c.invariant.as_str()) {
            continue;
        }
        seen.push(&c.invariant);
        let now = latest
            .and_then(|s| s.invariant(&c.invariant))
            .map(|i| (i.status, i.detail.as_str(), i.observed, i.bound));
        let on = if c.components.is_empty() {
            String::new()
        } else {
            format!(" [{}]", c.components.join(", "))
        };
        let head = format!("{} ({})", c.invariant, c.class.label());
        findings.push(match now {
            Some((InvariantStatus::Violated, detail, observed, bound)) => format!(
                "{head} violated since {}{on}: {detail}{}",
                rel(c.at_ms),
                reading(observed, bound)
            ),
            Some((InvariantStatus::Ok, ..)) => {
                format!(
                    "{head} violated at {}{on}: {}; holds again",
                    rel(c.at_ms),
                    c.detail
                )
            }
            Some((InvariantStatus::Unknown, ..)) => {
                format!(
                    "{head} violated at {}{on}: {}; now unknown",
                    rel(c.at_ms),
                    c.detail
                )
            }
            None => format!("{head} violated at {}{on}: {}", rel(c.at_ms), c.detail),
        });
    }
    if let Some(snap) = latest {
        for inv in snap
            .invariants
            .iter()
            .filter(|i| i.status == InvariantStatus::Violated && !seen.contains(&i.name.as_str()))
        {
            findings.push(format!(
                "{} ({}) violated: {}{}",
                inv.name,
                inv.class.label(),
                inv.detail,
                reading(inv.observed, inv.bound)
            ));
        }
    }
    findings
}

fn reading(observed: Option<f64>, bound: Option<f64>) -> String {
    match (observed, bound) {
        (Some(o), Some(b)) => format!(" (observed {o}, bound {b})"),
        _ => String::new(),
    }
}
