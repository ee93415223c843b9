//! Help, the subject picker and the review pause, drawn over the panels.

use super::format;
use crate::engine::Demo;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

const HELP: &[(&str, &str)] = &[
    ("space, enter, →", "next chapter"),
    ("backspace, ←", "previous chapter"),
    ("d", "diagnose now"),
    ("x", "recover all active chaos now"),
    ("a", "approve the proposed fix (high risk: twice)"),
    ("c", "reject the proposed fix"),
    ("K", "kill switch: refuse every fix in this run"),
    ("s", "switch subject (hot swap)"),
    ("r", "reload the current plugin from disk"),
    ("/", "filter the event log (enter keeps, esc clears)"),
    ("↑ ↓, pgup pgdn", "scroll the event log"),
    ("[ ]", "scroll the cluster health table (large clusters)"),
    ("{ }", "scroll the diagnosis's details"),
    ("?", "this help"),
    ("esc", "close an overlay"),
    ("q", "recover chaos, then quit"),
    ("ctrl-c ×2", "force quit"),
];

pub fn render(demo: &Demo, frame: &mut Frame, area: Rect) {
    if demo.ui.help {
        let lines: Vec<Line> = HELP
            .iter()
            .map(|(k, v)| Line::from(format!("{k:<16} {v}")))
            .collect();
        popup(frame, area, " Keys ", lines, 60);
    } else if let Some(p) = &demo.ui.picker {
        let lines: Vec<Line> = if p.entries.is_empty() {
            vec![Line::styled(
                "no plugins found on the search path",
                format::dim(),
            )]
        } else {
            p.entries
                .iter()
                .enumerate()
                .map(|(i, (name, path))| {
                    let text = format!(
                        "{} {name:<14} {}",
                        if i == p.selected { "▶" } else { " " },
                        path.display()
                    );
                    if i == p.selected {
                        Line::styled(text, Style::new().fg(Color::Black).bg(Color::Cyan))
                    } else {
                        Line::from(text)
                    }
                })
                .collect()
        };
        popup(
            frame,
            area,
            " Switch subject · enter loads · esc cancels ",
            lines,
            70,
        );
    } else if let Some(why) = &demo.ui.review {
        let lines = vec![
            Line::styled(
                "The diagnosis did not name what this chapter expects.",
                Style::new().fg(Color::Red),
            ),
            Line::from(why.clone()),
            Line::from(""),
            Line::styled(
                "Review the panels, then press enter to continue.",
                format::dim(),
            ),
        ];
        popup(frame, area, " Paused for review ", lines, 70);
    }
}

fn popup(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line>, width: u16) {
    // Wrapped lines take more than one row: count them, so nothing is cut.
    let inner = usize::from(width.min(area.width).saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let height = (rows as u16).saturating_add(2).min(area.height);
    let [row] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    frame.render_widget(Clear, rect);
    let block = Block::bordered()
        .title(title.to_string())
        .title_style(format::title());
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        rect,
    );
}
