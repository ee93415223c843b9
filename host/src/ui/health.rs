//! Cluster health: the node table and the invariants.

use super::format;
use crate::engine::Demo;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

pub fn nodes(demo: &Demo, frame: &mut Frame, area: Rect) {
    let block = Block::bordered()
        .title(" Cluster health ")
        .title_style(format::title());
    let Some(snapshot) = demo.timeline.latest() else {
        frame.render_widget(
            Paragraph::new("waiting for the first health poll…")
                .style(format::dim())
                .block(block),
            area,
        );
        return;
    };
    // Columns sized to what they hold: node, status and role always show; the
    // metrics get the rest, and the address only when the metrics fit beside it.
    let fit = |len: usize, lo: u16, hi: u16| (len as u16).clamp(lo, hi);
    let id_w = fit(
        snapshot
            .nodes
            .iter()
            .map(|n| n.id.chars().count())
            .max()
            .unwrap_or(4),
        4,
        18,
    );
    let role_w = fit(
        snapshot
            .nodes
            .iter()
            .map(|n| n.role.chars().count())
            .max()
            .unwrap_or(4),
        4,
        14,
    );
    let addr_w = fit(
        snapshot
            .nodes
            .iter()
            .map(|n| short_address(&n.address).chars().count())
            .max()
            .unwrap_or(0),
        7,
        21,
    );
    let metric_text = |n: &plugin_api::NodeHealth| {
        n.metrics
            .iter()
            .map(|m| format!("{} {}", m.name, format::value(m.value, &m.unit)))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let widest_metrics = snapshot
        .nodes
        .iter()
        .map(|n| metric_text(n).chars().count())
        .max()
        .unwrap_or(0) as u16;
    let inner = area.width.saturating_sub(2);
    let fixed = id_w + 10 + role_w + 3;
    let show_address = inner.saturating_sub(fixed + addr_w + 1) >= widest_metrics.min(40);
    let rows = snapshot.nodes.iter().map(|n| {
        let (text, style) = format::node_status(n.status);
        let mut cells = vec![
            Cell::from(n.id.clone()),
            Cell::from(text).style(style),
            Cell::from(n.role.clone()).style(format::dim()),
        ];
        if show_address {
            cells.push(Cell::from(short_address(&n.address)).style(format::dim()));
        }
        cells.push(Cell::from(metric_text(n)));
        Row::new(cells)
    });
    let mut widths = vec![
        Constraint::Length(id_w),
        Constraint::Length(10),
        Constraint::Length(role_w),
    ];
    let mut header = vec!["node", "status", "role"];
    if show_address {
        widths.push(Constraint::Length(addr_w));
        header.push("address");
    }
    widths.push(Constraint::Min(8));
    header.push("metrics");
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(format::dim()))
        .block(block);
    frame.render_widget(table, area);
}

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

/// An address without its URL scheme: `http://127.0.0.1:8001` shows as `127.0.0.1:8001`.
fn short_address(address: &str) -> &str {
    address
        .split_once("://")
        .map_or(address, |(_, rest)| rest.trim_end_matches('/'))
}
