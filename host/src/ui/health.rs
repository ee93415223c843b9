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
    let rows = snapshot.nodes.iter().map(|n| {
        let (text, style) = format::node_status(n.status);
        let metrics = n
            .metrics
            .iter()
            .take(3)
            .map(|m| format!("{} {}", m.name, format::value(m.value, &m.unit)))
            .collect::<Vec<_>>()
            .join(" · ");
        Row::new(vec![
            Cell::from(n.id.clone()),
            Cell::from(text).style(style),
            Cell::from(short_address(&n.address)).style(format::dim()),
            Cell::from(metrics),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(21),
            Constraint::Min(8),
        ],
    )
    .header(Row::new(vec!["node", "status", "address", "metrics"]).style(format::dim()))
    .block(block);
    frame.render_widget(table, area);
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
