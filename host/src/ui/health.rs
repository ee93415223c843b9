//! Cluster health: the invariants (the node table is `nodes`).

use super::format;
use crate::engine::Demo;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

/// Rows the invariants panel needs at `width`: two lines each (name, detail).
pub fn invariants_height(demo: &Demo) -> u16 {
    let n = demo.timeline.latest().map_or(0, |s| s.invariants.len());
    (n as u16 * 2 + 2).max(4)
}

pub fn invariants(demo: &Demo, frame: &mut Frame, area: Rect) {
    let block = Block::bordered()
        .title(" Invariants ")
        .title_style(format::title());
    let Some(snapshot) = demo.timeline.latest() else {
        frame.render_widget(block, area);
        return;
    };
    let lines: Vec<Line> = snapshot
        .invariants
        .iter()
        .flat_map(|inv| {
            let (text, style) = format::invariant_status(inv.status);
            vec![
                Line::from(vec![
                    Span::styled(format!("{text:<11}"), style),
                    Span::styled(inv.name.clone(), format::title()),
                    Span::styled(
                        format!("  since {}", format::ago(demo.now_ms, inv.since_ms)),
                        format::dim(),
                    ),
                ]),
                Line::styled(format!("  {}", inv.detail), format::dim()),
            ]
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}
