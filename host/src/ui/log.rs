//! The event log, newest at the bottom, scrollable and filterable.

use super::format;
use crate::engine::Demo;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

pub fn render(demo: &Demo, frame: &mut Frame, area: Rect) {
    let filter = &demo.ui.filter;
    let title = match (demo.ui.filter_editing, filter.is_empty()) {
        (true, _) => format!(" Event log · filter: {filter}▏ "),
        (false, false) => format!(" Event log · filter: {filter} (esc clears) "),
        (false, true) => " Event log ".to_string(),
    };
    let block = Block::bordered().title(title).title_style(format::title());
    let height = block.inner(area).height as usize;
    let entries: Vec<_> = demo.log.filtered(filter).collect();
    let end = entries.len().saturating_sub(demo.ui.log_scroll);
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = entries[start..end]
        .iter()
        .map(|e| {
            Line::from(vec![
                Span::styled(format!("{} ", format::clock(e.at_ms)), format::dim()),
                Span::styled(format!("{:<9} ", e.source), format::dim()),
                Span::styled(e.message.clone(), format::level(e.level)),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
