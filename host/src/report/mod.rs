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

/// `demo-host report JOURNAL.json [--html FILE] [--md FILE]`; without either
/// flag both are written beside the journal.
pub fn command(args: &ReportArgs) -> anyhow::Result<i32> {
    let journal = Journal::read(&args.journal)?;
    let rendered = run::render(&journal)
        .with_context(|| format!("rendering the report of {}", args.journal.display()))?;
    let (html, md) = match (&args.html, &args.md) {
        (None, None) => (
            Some(args.journal.with_extension("html")),
            Some(args.journal.with_extension("md")),
        ),
        (html, md) => (html.clone(), md.clone()),
    };
    for (path, text) in [(html, &rendered.html), (md, &rendered.markdown)] {
        if let Some(path) = path {
            page::write(&path, text)?;
            println!("{}", path.display());
        }
    }
    Ok(0)
}
