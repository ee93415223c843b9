//! The AI diagnosis panel: rule findings and the backend's conclusion, apart.

use super::format;
use crate::engine::remedy::Stage;
use crate::engine::state::DiagnosisPanel;
use crate::engine::Demo;
use plugin_api::Risk;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

/// The "proposed fix" block: the remedy, its risk, where it stands, and the keys.
fn proposed_fix(demo: &Demo) -> Vec<Line<'static>> {
    let Some(run) = demo.remediation.latest() else {
        return Vec::new();
    };
    let risk_color = match run.risk {
        Risk::Low => Color::Green,
        Risk::Medium => Color::Yellow,
        Risk::High => Color::Red,
    };
    let target = if run.target.is_empty() {
        "the cluster".to_string()
    } else {
        run.target.clone()
    };
    let mut head = vec![
        Span::styled("proposed fix: ", format::dim()),
        Span::styled(
            format!("{} on {target}", run.name),
            Style::new().add_modifier(ratatui::style::Modifier::BOLD),
        ),
        Span::styled(
            format!(" · {} risk", run.risk.label()),
            Style::new().fg(risk_color),
        ),
    ];
    let (state, color) = match &run.stage {
        Stage::Proposed if demo.remediation.kill_switch => {
            ("refused: kill switch".into(), Color::Red)
        }
        Stage::Proposed => ("a: approve · c: reject".to_string(), Color::Cyan),
        Stage::Confirming => ("high risk: a again to run · c: reject".into(), Color::Red),
        Stage::Running => ("running…".into(), Color::Yellow),
        Stage::Verifying { deadline_ms } => (
            format!(
                "verifying: invariants must be ok within {:.1}s",
                deadline_ms.saturating_sub(demo.now_ms) as f64 / 1000.0
            ),
            Color::Yellow,
        ),
        Stage::Probing => ("probing…".into(), Color::Yellow),
        Stage::Resolved => {
            let after = run
                .times_to_resolve()
                .2
                .map(|ms| format!(" in {:.1}s", ms as f64 / 1000.0))
                .unwrap_or_default();
            (
                format!("✔ resolved{after}: every invariant ok"),
                Color::Green,
            )
        }
        Stage::Failed { reason } => (format!("✘ remedy failed: {reason}"), Color::Red),
        Stage::Rejected => ("rejected".into(), Color::DarkGray),
        Stage::Refused { reason } => (format!("not run: {reason}"), Color::DarkGray),
    };
    head.push(Span::raw(" · "));
    head.push(Span::styled(state, Style::new().fg(color)));
    vec![Line::from(head)]
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

pub fn render(demo: &Demo, frame: &mut Frame, area: Rect) {
    let block = Block::bordered()
        .title(" AI diagnosis ")
        .title_style(format::title());
    // The first `fixed` lines (the conclusion and the proposed fix) always
    // show; the rest scrolls with { and }.
    let mut fixed = 0;
    let mut lines: Vec<Line> = match &demo.diagnosis {
        DiagnosisPanel::Idle => vec![Line::styled(
            "no diagnosis yet · press d to diagnose now",
            format::dim(),
        )],
        DiagnosisPanel::Running { started_ms, text } => {
            let elapsed = demo.now_ms.saturating_sub(*started_ms);
            let frame_char = SPINNER[((elapsed / 100) % SPINNER.len() as u64) as usize];
            let mut l = vec![Line::styled(
                format!(
                    "{frame_char} diagnosing… {:.1}s (the demo can move on)",
                    elapsed as f64 / 1000.0
                ),
                Style::new().fg(Color::Cyan),
            )];
            let tail: String = text
                .chars()
                .rev()
                .take(600)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if !tail.is_empty() {
                l.push(Line::styled(tail, format::dim()));
            }
            l
        }
        DiagnosisPanel::Failed { message } => vec![Line::styled(
            format!("diagnosis failed: {message}"),
            Style::new().fg(Color::Red),
        )],
        DiagnosisPanel::Done {
            diagnosis: d,
            score,
        } => {
            // The conclusion first: it is the demo's payoff and must stay in
            // view; the rule findings and the narrative follow in what is left.
            let mut l = vec![Line::from(vec![
                Span::styled(format!("{} concluded: ", d.backend), format::dim()),
                Span::styled(
                    d.anomaly.clone(),
                    Style::new()
                        .fg(Color::Magenta)
                        .add_modifier(ratatui::style::Modifier::BOLD),
                ),
                Span::raw(format!(
                    " · {:.0}% · {}",
                    d.confidence * 100.0,
                    d.severity.label()
                )),
            ])];
            // The fix next: the presenter must see what `a` would run.
            l.extend(proposed_fix(demo));
            fixed = l.len();
            if !d.affected_components.is_empty() {
                l.push(Line::from(format!(
                    "affected: {}",
                    d.affected_components.join(", ")
                )));
            }
            l.push(Line::from(format!("cause: {}", d.likely_cause)));
            l.push(Line::from(format!("action: {}", d.recommended_action)));
            if let Some(s) = score {
                let (mark, color) = if s.anomaly_ok && s.component_ok {
                    ("✔ matches the chapter's expectation", Color::Green)
                } else {
                    ("✘ missed", Color::Red)
                };
                l.push(Line::styled(
                    format!("{mark}: {}", s.detail),
                    Style::new().fg(color),
                ));
            }
            if !d.rule_findings.is_empty() {
                l.push(Line::styled("Rules found:", format::dim()));
                for f in d.rule_findings.iter().take(3) {
                    l.push(Line::styled(format!("  • {f}"), format::dim()));
                }
            }
            l.push(Line::from(d.narrative.clone()));
            l
        }
    };
    let inner = block.inner(area);
    let rest = lines.split_off(fixed);
    let head = Paragraph::new(lines).wrap(Wrap { trim: true });
    let head_rows = (head.line_count(inner.width) as u16).min(inner.height);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(head_rows), Constraint::Min(0)]).areas(inner);
    let body = Paragraph::new(rest).wrap(Wrap { trim: true });
    let hidden = body
        .line_count(bottom.width)
        .saturating_sub(bottom.height as usize);
    let scroll = demo.ui.diagnosis_scroll.min(hidden);
    let block = match hidden {
        0 => block,
        _ => block.title_bottom(format!(" {{ }} scroll · {} of {hidden} ", scroll)),
    };
    frame.render_widget(block, area);
    frame.render_widget(head, top);
    frame.render_widget(body.scroll((scroll as u16, 0)), bottom);
}
