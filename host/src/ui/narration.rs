//! The current chapter's narration and what it is doing.

use super::format;
use crate::engine::state::ChapterPhase;
use crate::engine::Demo;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

pub fn render(demo: &Demo, frame: &mut Frame, area: Rect) {
    let Some(chapter) = demo.current() else {
        return;
    };
    let mut lines = vec![Line::from(chapter.narration.clone()), Line::from("")];
    let status = match &demo.phase {
        ChapterPhase::Countdown { action, ends_at_ms } => {
            format!(
                "{action} in {}…",
                ends_at_ms.saturating_sub(demo.now_ms).div_ceil(1000).max(1)
            )
        }
        ChapterPhase::Running { what } => format!("running {what}…"),
        ChapterPhase::Settled { .. } => match chapter.auto_advance_ms {
            Some(ms) if !demo.finished => {
                format!("moves on by itself after {:.1}s", ms as f64 / 1000.0)
            }
            _ => String::new(),
        },
    };
    if !status.is_empty() {
        lines.push(Line::styled(status, Style::new().fg(Color::Cyan)));
    }
    if let Some(r) = demo.chapters.last().and_then(|r| r.action_error.as_ref()) {
        lines.push(Line::styled(
            format::clip(r, 300),
            Style::new().fg(Color::Red),
        ));
    }
    let block = Block::bordered()
        .title(format!(" {} ", chapter.title))
        .title_style(format::title());
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(block),
        area,
    );
}

/// Rows the panel needs at `width`: the wrapped narration, a status line and borders.
pub fn height(demo: &Demo, width: u16) -> u16 {
    let inner = width.saturating_sub(2).max(1) as usize;
    let text = demo.current().map_or(0, |c| c.narration.chars().count());
    let lines = text.div_ceil(inner).max(1) as u16;
    (lines + 5).clamp(6, 14)
}
