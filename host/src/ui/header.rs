//! Subject, environment, chapter n/N and the chaos indicator.

use super::format;
use crate::engine::chaos::ChaosStatus;
use crate::engine::Demo;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn render(demo: &Demo, frame: &mut Frame, area: Rect) {
    let (chaos_text, chaos_style) = match demo.chaos_status() {
        ChaosStatus::Normal => ("● normal".to_string(), Style::new().fg(Color::Green)),
        ChaosStatus::Countdown { action, left_ms } => (
            format!("⏱ {} … {action}", left_ms.div_ceil(1000).max(1)),
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ),
        ChaosStatus::Injecting { action, left_ms } => (
            match left_ms {
                Some(ms) => format!("⚡ injecting {action} · {:.1}s left", ms as f64 / 1000.0),
                None => format!("⚡ injecting {action}"),
            },
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ),
        ChaosStatus::Recovering { faults } => (
            format!("↺ recovering {faults}"),
            Style::new().fg(Color::Black).bg(Color::Cyan),
        ),
    };
    let title = demo.current().map(|c| c.title.as_str()).unwrap_or("");
    let chapter = format!(
        " chapter {}/{}{}",
        (demo.chapter + 1).min(demo.chapter_count()),
        demo.chapter_count(),
        if demo.finished { " · complete" } else { "" }
    );
    let first = Line::from(vec![
        Span::styled(format!(" {} ", demo.subject.info.name), format::title()),
        Span::styled(format!("· {} ·", demo.environment), format::dim()),
        Span::raw(chapter),
        Span::styled(format!(" {title} "), format::title()),
        Span::raw(" "),
        Span::styled(format!(" {chaos_text} "), chaos_style),
    ]);
    let second = match (&demo.ui.notice, demo.advance_blocked(), &demo.health_error) {
        (Some(n), _, _) => Line::styled(format!(" {n}"), Style::new().fg(Color::Yellow)),
        (None, Some(why), _) => Line::styled(format!(" ⏸ {why}"), Style::new().fg(Color::Yellow)),
        (None, None, Some(e)) => Line::styled(
            format!(" health: {}", format::clip(&e.to_string(), 200)),
            Style::new().fg(Color::Red),
        ),
        _ => Line::styled(
            format!(
                " {} faults active · {} open incidents",
                demo.chaos.active.len(),
                demo.incidents.open_count()
            ),
            format::dim(),
        ),
    };
    frame.render_widget(Paragraph::new(vec![first, second]), area);
}
