//! The template engine and what every page shares: the stylesheet, number
//! and time formats, and writing the files.
//!
//! minijinja rather than askama: one engine renders both the Markdown and the
//! HTML from the same serde context (askama derives one struct per template),
//! it escapes by file extension (`.html` escaped, `.md` not), and it adds no
//! proc-macro crates to the build.

use minijinja::{Environment, Value};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("rendering {template}: {err:#}")]
    Template {
        template: &'static str,
        err: minijinja::Error,
    },
    #[error(transparent)]
    Chart(#[from] super::charts::ChartError),
    #[error("writing {path}: {err}")]
    Write { path: PathBuf, err: std::io::Error },
}

/// The stylesheet inlined into every page.
pub const STYLE: &str = include_str!("templates/style.css");

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    let templates: [(&str, &str); 4] = [
        ("run.html", include_str!("templates/run.html")),
        ("run.md", include_str!("templates/run.md")),
        ("campaign.html", include_str!("templates/campaign.html")),
        ("campaign.md", include_str!("templates/campaign.md")),
    ];
    for (name, source) in templates {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("the built-in template {name} does not parse: {e}"));
    }
    // A Markdown table cell: no pipes or line breaks may break the row.
    env.add_filter("cell", |v: Value| -> String {
        v.to_string().replace('|', "\\|").replace(['\n', '\r'], " ")
    });
    env
}

/// Renders one of the built-in templates with `ctx` (plus `style`).
pub fn render<S: Serialize>(template: &'static str, ctx: &S) -> Result<String, ReportError> {
    let env = environment();
    let fail = |err| ReportError::Template { template, err };
    let tmpl = env.get_template(template).map_err(fail)?;
    tmpl.render(minijinja::context! { page => Value::from_serialize(ctx), style => STYLE })
        .map_err(fail)
}

pub fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|err| ReportError::Write {
        path: path.to_path_buf(),
        err,
    })
}

/// A unix time in ms as an RFC 7231 date in UTC (`Tue, 01 Dec 2026 21:00:38 GMT`).
pub fn date(ms: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms))
}

/// Milliseconds for people: `850 ms`, `3.42 s`, `2 min 05 s`.
pub fn duration(ms: f64) -> String {
    if !ms.is_finite() {
        return "–".into();
    }
    match ms {
        m if m < 1000.0 => format!("{m:.0} ms"),
        m if m < 60_000.0 => format!("{:.2} s", m / 1000.0),
        m => {
            let s = (m / 1000.0).round() as u64;
            format!("{} min {:02} s", s / 60, s % 60)
        }
    }
}

pub fn opt_duration(ms: Option<f64>) -> String {
    ms.map(duration).unwrap_or_else(|| "–".into())
}

/// A share as a percentage with one decimal, `–` when undefined.
pub fn percent(p: Option<f64>) -> String {
    p.map(|p| format!("{:.1} %", p * 100.0))
        .unwrap_or_else(|| "–".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_read_like_a_person_wrote_them() {
        assert_eq!(duration(850.0), "850 ms");
        assert_eq!(duration(3420.0), "3.42 s");
        assert_eq!(duration(125_000.0), "2 min 05 s");
        assert_eq!(opt_duration(None), "–");
        assert_eq!(percent(Some(0.8)), "80.0 %");
        assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn html_is_escaped_and_markdown_cells_are_kept_in_their_row() {
        let env = environment();
        let html = env
            .render_str("{{ x }}", minijinja::context! { x => "<b>" })
            .unwrap();
        assert_eq!(html, "<b>", "render_str has no .html name: not escaped");
        let mut env = env;
        env.add_template("t.html", "{{ x }}").unwrap();
        let t = env.get_template("t.html").unwrap();
        assert_eq!(
            t.render(minijinja::context! { x => "<b>" }).unwrap(),
            "&lt;b&gt;"
        );
        let cell = env
            .render_str("{{ x|cell }}", minijinja::context! { x => "a|b\nc" })
            .unwrap();
        assert_eq!(cell, "a\\|b c");
    }
}
