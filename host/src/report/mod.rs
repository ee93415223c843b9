//! Reports a person can read: one run's journal, or a campaign's figures,
//! as Markdown and as a self-contained HTML page (inline CSS and SVG).
