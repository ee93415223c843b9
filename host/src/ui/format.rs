//! Shared styles and text formatting of the panels.

use plugin_api::{InvariantStatus, Level, NodeStatus};
use ratatui::style::{Color, Modifier, Style};

pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn title() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn node_status(s: NodeStatus) -> (&'static str, Style) {
    match s {
        NodeStatus::Up => ("● up", Style::new().fg(Color::Green)),
        NodeStatus::Degraded => ("◐ degraded", Style::new().fg(Color::Yellow)),
        NodeStatus::Down => (
            "○ DOWN",
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        NodeStatus::Unknown => ("? unknown", Style::new().fg(Color::DarkGray)),
    }
}

pub fn invariant_status(s: InvariantStatus) -> (&'static str, Style) {
    match s {
        InvariantStatus::Ok => ("✔ ok", Style::new().fg(Color::Green)),
        InvariantStatus::Violated => (
            "✘ VIOLATED",
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        InvariantStatus::Unknown => ("? unknown", Style::new().fg(Color::Yellow)),
    }
}

pub fn level(l: Level) -> Style {
    match l {
        Level::Debug => dim(),
        Level::Info => Style::new(),
        Level::Warn => Style::new().fg(Color::Yellow),
        Level::Error => Style::new().fg(Color::Red),
    }
}

/// `HH:MM:SS.mmm` (UTC) of a unix-ms timestamp.
pub fn clock(at_ms: u64) -> String {
    let secs = at_ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        at_ms % 1000
    )
}

/// How long ago, coarsely: `850ms`, `12s`, `3m`.
pub fn ago(now_ms: u64, at_ms: u64) -> String {
    let d = now_ms.saturating_sub(at_ms);
    match d {
        0..=999 => format!("{d}ms"),
        1000..=119_999 => format!("{}s", d / 1000),
        _ => format!("{}m", d / 60_000),
    }
}

/// A value with its unit, with precision suited to its size.
pub fn value(v: f64, unit: &str) -> String {
    let num = if v.abs() >= 1000.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if unit.is_empty() {
        num
    } else {
        format!("{num} {unit}")
    }
}

/// Cuts text to `max` characters with an ellipsis.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}
