//! Live metrics: one bar chart per cluster metric over the last minutes, with
//! the time spans of faults shaded behind the bars so cause and effect line up.

use super::format;
use crate::engine::Demo;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Widget};
use ratatui::Frame;

/// The time the charts span.
pub const SPAN_MS: u64 = 120_000;
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const LABEL_WIDTH: u16 = 26;

pub fn render(demo: &Demo, frame: &mut Frame, area: Rect) {
    let block = Block::bordered()
        .title(format!(
            " Live metrics · last {}s · shaded: chaos ",
            SPAN_MS / 1000
        ))
        .title_style(format::title());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let series = demo
        .timeline
        .metric_series(demo.now_ms.saturating_sub(SPAN_MS));
    if series.is_empty() {
        frame
            .buffer_mut()
            .set_string(inner.x, inner.y, "no metrics yet", format::dim());
        return;
    }
    let spans: Vec<(u64, u64)> = demo
        .chaos
        .windows
        .iter()
        .map(|w| (w.started_ms, w.ended_ms.unwrap_or(demo.now_ms)))
        .collect();
    for (i, crate::engine::timeline::Series { name, unit, points }) in series.iter().enumerate() {
        let y = inner.y + (i as u16) * 2;
        if y + 1 >= inner.y + inner.height {
            break;
        }
        let current = points.last().map(|p| p.1).unwrap_or(0.0);
        let label = format!(
            "{} {}",
            format::clip(name, 14),
            format::value(current, unit)
        );
        frame.buffer_mut().set_string(
            inner.x,
            y + 1,
            format::clip(&label, LABEL_WIDTH as usize - 1),
            Style::new(),
        );
        let chart = Rect::new(
            inner.x + LABEL_WIDTH,
            y,
            inner.width.saturating_sub(LABEL_WIDTH),
            2,
        );
        Bars {
            points,
            spans: &spans,
            now_ms: demo.now_ms,
        }
        .render(chart, frame.buffer_mut());
    }
}

/// A two-row bar chart of time-bucketed values.
struct Bars<'a> {
    points: &'a [(u64, f64)],
    spans: &'a [(u64, u64)],
    now_ms: u64,
}

impl Widget for Bars<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width == 0 || area.height < 2 {
            return;
        }
        let columns = area.width as u64;
        let start = self.now_ms.saturating_sub(SPAN_MS);
        let bucket_ms = SPAN_MS / columns;
        let mut values: Vec<Option<f64>> = vec![None; columns as usize];
        for &(t, v) in self.points.iter().filter(|(t, _)| *t >= start) {
            let col = ((t - start) / bucket_ms.max(1)).min(columns - 1) as usize;
            values[col] = Some(v);
        }
        let max = values.iter().flatten().fold(0.0f64, |m, v| m.max(*v));
        let mut last = None;
        for (col, v) in values.iter().enumerate() {
            let t0 = start + col as u64 * bucket_ms;
            let t1 = t0 + bucket_ms;
            let shaded = self.spans.iter().any(|&(a, b)| a < t1 && b >= t0);
            let bg = if shaded {
                Color::Rgb(90, 20, 20)
            } else {
                Color::Reset
            };
            let value = v.or(last);
            last = value;
            // Two rows give 16 levels: the lower row fills first.
            let level = match value {
                Some(x) if max > 0.0 => ((x / max) * 16.0).round() as usize,
                _ => 0,
            };
            let (upper, lower) = (level.saturating_sub(8), level.min(8));
            let x = area.x + col as u16;
            let style = Style::new().fg(Color::Cyan).bg(bg);
            let glyph = |n: usize| if n == 0 { ' ' } else { BARS[n - 1] };
            buf[(x, area.y)].set_char(glyph(upper)).set_style(style);
            buf[(x, area.y + 1)]
                .set_char(if value.is_some() && lower == 0 {
                    '▁'
                } else {
                    glyph(lower)
                })
                .set_style(style);
        }
    }
}
