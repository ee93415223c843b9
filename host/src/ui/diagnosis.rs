//! The AI diagnosis panel: rule findings and the backend's conclusion, apart.

use super::format;
use crate::engine::state::DiagnosisPanel;
use crate::engine::Demo;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

pub fn render(demo: &Demo, frame: &mut Frame, area: Rect) {
    let block = Block::bordered()
        .title(" AI diagnosis ")
        .title_style(format::title());
    let lines: Vec<Line> = match &demo.diagnosis {
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
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(block),
        area,
    );
}
