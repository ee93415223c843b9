//! Incidents: one per episode of an invariant (see `engine::incidents`).

use super::format;
use crate::engine::incidents::IncidentState;
use crate::engine::Demo;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Cell, Row, Table};
use ratatui::Frame;

pub fn render(demo: &Demo, frame: &mut Frame, area: Rect) {
    let block = Block::bordered()
        .title(format!(
            " Incidents · {} open ",
            demo.incidents.open_count()
        ))
        .title_style(format::title());
    let rows = demo.incidents.list.iter().rev().map(|i| {
        let (state, style) = match i.state {
            IncidentState::Open => ("open", Style::new().fg(Color::Red)),
            IncidentState::Diagnosed => ("diagnosed", Style::new().fg(Color::Magenta)),
            IncidentState::Remediating => ("remediating", Style::new().fg(Color::Yellow)),
            IncidentState::RemedyFailed => ("fix failed", Style::new().fg(Color::Red)),
            IncidentState::Resolved => ("resolved", Style::new().fg(Color::Green)),
        };
        Row::new(vec![
            Cell::from(format!("#{}", i.id)),
            Cell::from(i.invariant.clone()),
            Cell::from(i.components.join(",")),
            Cell::from(state).style(style),
            Cell::from(format!("×{}", i.occurrences)),
            Cell::from(format!(
                "{}→{}",
                format::ago(demo.now_ms, i.first_seen_ms),
                format::ago(demo.now_ms, i.last_seen_ms)
            )),
            Cell::from(i.diagnosis.clone().unwrap_or_default()),
        ])
    });
    // Sized to what they hold, so the table also reads in the narrow left column.
    let widest = |f: &dyn Fn(&crate::engine::incidents::Incident) -> usize, lo: u16, hi: u16| {
        (demo.incidents.list.iter().map(f).max().unwrap_or(0) as u16).clamp(lo, hi)
    };
    let table = Table::new(
        rows,
        [
            Constraint::Length(widest(&|i| format!("#{}", i.id).len(), 2, 5)),
            Constraint::Length(widest(&|i| i.invariant.chars().count(), 4, 18)),
            Constraint::Length(widest(&|i| i.components.join(",").chars().count(), 4, 16)),
            Constraint::Length(9),
            Constraint::Length(widest(
                &|i| format!("×{}", i.occurrences).chars().count(),
                2,
                5,
            )),
            Constraint::Length(9),
            Constraint::Min(8),
        ],
    )
    .block(block);
    frame.render_widget(table, area);
}
