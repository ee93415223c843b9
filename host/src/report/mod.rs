//! Reports a person can read: one run's journal, or a campaign's figures,
//! as Markdown and as a self-contained HTML page (inline CSS and SVG).
pub mod campaign;
pub mod charts;
pub mod page;
pub mod run;

pub use page::ReportError;

use crate::cli::args::ReportArgs;
use crate::journal::Journal;
use anyhow::Context;

/// `demo-host report FILE [--html FILE] [--md FILE]`: FILE is a headless run's
/// journal, or a campaign's `report.json` (rendered again, e.g. after an
/// upgrade of the templates). Without either flag both are written beside FILE.
pub fn command(args: &ReportArgs) -> anyhow::Result<i32> {
    let path = &args.journal;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let is_campaign = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("schema").and_then(|s| s.as_str()).map(str::to_string))
        .is_some_and(|s| s == crate::eval::campaign::SCHEMA);
    let (markdown, html) = if is_campaign {
        let report: crate::eval::campaign::CampaignReport = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a campaign report", path.display()))?;
        campaign::render(&report)?
    } else {
        let journal = Journal::read(path)?;
        let r = run::render(&journal)
            .with_context(|| format!("rendering the report of {}", path.display()))?;
        (r.markdown, r.html)
    };
    let (html_path, md_path) = match (&args.html, &args.md) {
        (None, None) => (
            Some(path.with_extension("html")),
            Some(path.with_extension("md")),
        ),
        (html, md) => (html.clone(), md.clone()),
    };
    for (path, text) in [(html_path, &html), (md_path, &markdown)] {
        if let Some(path) = path {
            page::write(&path, text)?;
            println!("{}", path.display());
        }
    }
    Ok(0)
}
