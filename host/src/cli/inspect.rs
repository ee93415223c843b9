//! `demo-host inspect`: a plugin's info, chapters, chaos actions, remedies,
//! components and prerequisites.

use super::table;
use crate::text::printable;
use plugin_api::{
    ChaosAction, Chapter, Component, OnEnter, Recovery, Remedy, RemedyTarget, SubjectDescription,
};

/// What the description broke of the host's limits (it is shown cut to them),
/// one `warning:` line each.
pub fn render_warnings(warnings: &[crate::plugin::sanitize::Warning]) -> String {
    warnings
        .iter()
        .map(|w| format!("warning: {}\n", printable(&w.message)))
        .collect()
}

/// The description as human-readable tables.
pub fn render_text(d: &SubjectDescription) -> String {
    let i = &d.info;
    let mut out = format!(
        "{} ({}) {}\n{}\nplugin-api {} · environments: {}\n\nChapters\n",
        printable(&i.name),
        printable(&i.id),
        printable(&i.version),
        printable(&i.description),
        printable(&i.api_version),
        printable(&i.environments.join(", "))
    );
    let rows: Vec<Vec<String>> = d
        .chapters
        .iter()
        .enumerate()
        .map(|(n, c)| {
            vec![
                (n + 1).to_string(),
                c.title.clone(),
                on_enter(c),
                advance(c),
                expects(c),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &["#", "title", "on enter", "advance", "expects"],
        &rows,
    ));
    out.push_str("\n\nChaos actions\n");
    let rows: Vec<Vec<String>> = d.chaos_actions.iter().map(action_row).collect();
    out.push_str(&table::render(
        &["id", "name", "kind", "recovery", "parameters"],
        &rows,
    ));
    out.push_str("\n\nRemedies\n");
    if d.remedies.is_empty() {
        out.push_str("none (the diagnosis only recommends)");
    } else {
        let rows: Vec<Vec<String>> = d.remedies.iter().map(remedy_row).collect();
        out.push_str(&table::render(
            &["id", "name", "fixes", "target", "risk", "verify", "undo"],
            &rows,
        ));
    }
    out.push_str("\n\nComponents\n");
    let rows: Vec<Vec<String>> = d
        .diagnosis
        .components
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.kind.label().to_string(),
                if c.depends_on.is_empty() {
                    "-".into()
                } else {
                    c.depends_on.join(", ")
                },
            ]
        })
        .collect();
    out.push_str(&table::render(&["name", "kind", "depends on"], &rows));
    if !d.info.prerequisites.is_empty() {
        out.push_str("\n\nPrerequisites\n");
        let rows: Vec<Vec<String>> = d
            .info
            .prerequisites
            .iter()
            .map(|p| {
                vec![
                    p.binary.clone(),
                    if p.environments.is_empty() {
                        "all".into()
                    } else {
                        p.environments.join(", ")
                    },
                    if p.optional { "optional" } else { "required" }.into(),
                    p.why.clone(),
                ]
            })
            .collect();
        out.push_str(&table::render(
            &["binary", "environments", "", "why"],
            &rows,
        ));
    }
    out.push('\n');
    out
}

fn remedy_row(r: &Remedy) -> Vec<String> {
    vec![
        r.id.clone(),
        r.name.clone(),
        r.addresses.join(", "),
        match r.target {
            RemedyTarget::Component => "a component".into(),
            RemedyTarget::Cluster => "the cluster".into(),
        },
        r.risk.label().into(),
        format!(
            "{:.1}s{}",
            r.verify_within_ms as f64 / 1000.0,
            r.probe_step
                .as_ref()
                .map(|p| format!(" + probe {p}"))
                .unwrap_or_default()
        ),
        if r.undo.is_empty() {
            "-".into()
        } else {
            r.undo.clone()
        },
    ]
}

fn on_enter(c: &Chapter) -> String {
    match &c.on_enter {
        None => "-".into(),
        Some(OnEnter::Chaos { action, params }) if params.is_empty() => format!("chaos {action}"),
        Some(OnEnter::Chaos { action, params }) => format!(
            "chaos {action} ({})",
            params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(OnEnter::Recover) => "recover all".into(),
        Some(OnEnter::Step { id }) => format!("step {id}"),
        Some(OnEnter::Diagnose) => "diagnose".into(),
    }
}

fn advance(c: &Chapter) -> String {
    let mut parts = Vec::new();
    if c.blocks_advance {
        parts.push("blocks".to_string());
    }
    if let Some(ms) = c.auto_advance_ms {
        parts.push(format!("auto {:.1}s", ms as f64 / 1000.0));
    }
    if parts.is_empty() {
        "key".into()
    } else {
        parts.join(", ")
    }
}

fn expects(c: &Chapter) -> String {
    let mut parts = Vec::new();
    if let Some(v) = &c.expect_violation {
        parts.push(format!("violation: {v}"));
    }
    if let Some(e) = &c.expect_diagnosis {
        let component = match &e.component {
            Component::Any => String::new(),
            Component::Named(n) => format!(" on {n}"),
            Component::OneOf(names) => format!(" on one of {}", names.join(", ")),
            Component::ChaosTarget => " on the chaos target".into(),
        };
        parts.push(format!("diagnosis: {}{component}", e.anomaly));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}

fn action_row(a: &ChaosAction) -> Vec<String> {
    let params = a
        .params
        .iter()
        .map(|p| {
            let range = match (p.min, p.max) {
                (Some(lo), Some(hi)) => format!(" [{lo}..{hi}]"),
                (Some(lo), None) => format!(" [>= {lo}]"),
                (None, Some(hi)) => format!(" [<= {hi}]"),
                (None, None) => String::new(),
            };
            format!("{}={}{}{range}", p.name, p.default, p.unit)
        })
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        a.id.clone(),
        a.name.clone(),
        a.kind.to_string(),
        match a.recovery {
            Recovery::SelfRecovering => "by itself".into(),
            Recovery::ExplicitRecover => "needs recover".into(),
        },
        if params.is_empty() {
            "-".into()
        } else {
            params
        },
    ]
}
