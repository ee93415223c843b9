//! Drawing: `render(&Demo, &mut Frame)` is a pure function of the state, so
//! every panel state is snapshot-tested with ratatui's `TestBackend`.

mod diagnosis;
mod format;
mod header;
mod health;
mod incidents;
mod log;
mod metrics;
mod narration;
mod nodes;
mod overlays;
#[cfg(test)]
mod tests;

use crate::engine::Demo;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Below this the panels cannot be read; a message says so instead.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn render(demo: &Demo, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(10),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(demo, frame, header);
    footer_line(demo, frame, footer);

    let left_width = (body.width * 9 / 20).clamp(40, 80);
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_width), Constraint::Min(30)]).areas(body);
    let node_count = demo.timeline.latest().map_or(0, |s| s.nodes.len());
    // The narration takes what its text needs; the invariants take the rest.
    let narration_rows = narration::height(demo, left.width);
    // The left column holds the subject's state: narration, nodes, invariants
    // (as tall as they need), then the incidents in what is left, so neither
    // column stands half empty while the other cuts.
    let [narr, nodes, invs, incidents] = Layout::vertical([
        Constraint::Length(narration_rows),
        Constraint::Length(nodes::height(node_count, left.height)),
        Constraint::Length(health::invariants_height(demo)),
        Constraint::Min(3),
    ])
    .areas(left);
    narration::render(demo, frame, narr);
    nodes::render(demo, frame, nodes);
    health::invariants(demo, frame, invs);
    incidents::render(demo, frame, incidents);

    let tall = right.height >= 40;
    let metric_rows =
        demo.timeline
            .latest()
            .map_or(1, |s| s.metrics.len().clamp(1, if tall { 8 } else { 4 })) as u16;
    let [chart, diag, log] = Layout::vertical([
        Constraint::Length(metric_rows * 2 + 2),
        Constraint::Min(9),
        Constraint::Min(5),
    ])
    .areas(right);
    metrics::render(demo, frame, chart);
    diagnosis::render(demo, frame, diag);
    log::render(demo, frame, log);

    overlays::render(demo, frame, area);
}

fn too_small(frame: &mut Frame, area: Rect) {
    let text = vec![
        Line::from("terminal too small"),
        Line::from(format!(
            "need at least {MIN_WIDTH}×{MIN_HEIGHT}, have {}×{}",
            area.width, area.height
        )),
        Line::from("enlarge the window or reduce the font size · q quits"),
    ];
    let y = area.height.saturating_sub(3) / 2;
    let rect = Rect::new(area.x, area.y + y, area.width, area.height.min(3));
    frame.render_widget(Paragraph::new(text).centered(), rect);
}

fn footer_line(demo: &Demo, frame: &mut Frame, area: Rect) {
    let hint = demo.current().map(|c| c.key_hint.as_str()).unwrap_or("");
    let text = format!(
        " {hint} │ ? help · s switch · r reload · x recover · d diagnose · / filter · q quit"
    );
    frame.render_widget(Paragraph::new(text).style(format::dim()), area);
}
