//! The cluster health table. A cluster that fits is shown as the plugin sends
//! it; a larger one gets a summary in the title ("97 up · 2 degraded · 1 down"),
//! its nodes grouped by role with the worst first (groups with their worst
//! member first), a scroll position (`[` `]`), and a last row that says what
//! is not shown.

use super::format;
use crate::engine::Demo;
use plugin_api::{NodeHealth, NodeStatus};
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line as RLine, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

/// Rows the panel wants for `count` nodes in a left column of `height` rows:
/// all of them while that is under half the column, else half (at least 8).
pub fn height(count: usize, column: u16) -> u16 {
    let all = count.max(1) as u16 + 3;
    all.min((column / 2).max(8))
}

/// Worst first: what needs attention leads.
fn rank(s: NodeStatus) -> u8 {
    match s {
        NodeStatus::Down => 0,
        NodeStatus::Degraded => 1,
        NodeStatus::Unknown => 2,
        NodeStatus::Up => 3,
    }
}

/// "2 down · 1 degraded · 97 up": the counts that are not zero, worst first.
pub fn summary<'a>(nodes: impl IntoIterator<Item = &'a NodeHealth>) -> String {
    let mut counts = [0usize; 4];
    for n in nodes {
        counts[rank(n.status) as usize] += 1;
    }
    ["down", "degraded", "unknown", "up"]
        .iter()
        .zip(counts)
        .filter(|(_, c)| *c > 0)
        .map(|(w, c)| format!("{c} {w}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Nodes by role, worst first within a role, roles by their worst member.
fn grouped(nodes: &[NodeHealth]) -> Vec<(&str, Vec<&NodeHealth>)> {
    let mut groups: Vec<(&str, Vec<&NodeHealth>)> = Vec::new();
    for n in nodes {
        match groups.iter_mut().find(|(r, _)| *r == n.role) {
            Some((_, members)) => members.push(n),
            None => groups.push((n.role.as_str(), vec![n])),
        }
    }
    for (_, members) in &mut groups {
        members.sort_by_key(|n| rank(n.status));
    }
    groups.sort_by_key(|(role, members)| (members.first().map_or(3, |n| rank(n.status)), *role));
    groups
}

pub fn render(demo: &Demo, frame: &mut Frame, area: Rect) {
    let Some(snapshot) = demo.timeline.latest() else {
        let block = Block::bordered()
            .title(" Cluster health ")
            .title_style(format::title());
        frame.render_widget(
            Paragraph::new("waiting for the first health poll…")
                .style(format::dim())
                .block(block),
            area,
        );
        return;
    };
    let nodes = &snapshot.nodes;
    let columns = Columns::fit(nodes, area.width.saturating_sub(2));
    let mut out = vec![columns.header()];
    // The room for node rows under the column header.
    let mut room = area.height.saturating_sub(3) as usize;
    let fits = nodes.len() <= room;
    let title = if fits {
        " Cluster health ".to_string()
    } else {
        out.push(RLine::styled(summary(nodes), format::title()));
        room = room.saturating_sub(1);
        format!(" Cluster health · {} nodes ", nodes.len())
    };
    let block = Block::bordered().title(title).title_style(format::title());

    let lines: Vec<Entry> = if fits {
        nodes.iter().map(Entry::Node).collect()
    } else {
        let groups = grouped(nodes);
        let headed = groups.len() > 1;
        groups
            .into_iter()
            .flat_map(|(role, members)| {
                let head = headed.then(|| Entry::Group {
                    role,
                    members: members.clone(),
                });
                head.into_iter().chain(members.into_iter().map(Entry::Node))
            })
            .collect()
    };
    // Scrolled, and the last visible row says what lies beyond it.
    let skip = demo.ui.health_scroll.min(lines.len().saturating_sub(room));
    let below = lines.len().saturating_sub(skip + room);
    let shown = if below > 0 {
        room.saturating_sub(1)
    } else {
        room
    };
    for entry in lines.iter().skip(skip).take(shown) {
        out.push(match entry {
            Entry::Node(n) => columns.line(n),
            Entry::Group { role, members } => RLine::styled(
                format!(
                    "▸ {role} · {} · {}",
                    members.len(),
                    summary(members.iter().copied())
                ),
                format::title(),
            ),
        });
    }
    if below > 0 {
        let hidden: Vec<&NodeHealth> = lines
            .iter()
            .skip(skip + shown)
            .filter_map(|l| match l {
                Entry::Node(n) => Some(*n),
                Entry::Group { .. } => None,
            })
            .collect();
        let keys = if skip > 0 { "[ ] scroll" } else { "] scrolls" };
        out.push(RLine::styled(
            format!(
                "… {} more: {} · {keys}",
                hidden.len(),
                summary(hidden.iter().copied())
            ),
            format::dim().add_modifier(Modifier::ITALIC),
        ));
    }
    frame.render_widget(Paragraph::new(out).block(block), area);
}

/// What one row below the header shows.
enum Entry<'a> {
    Group {
        role: &'a str,
        members: Vec<&'a NodeHealth>,
    },
    Node(&'a NodeHealth),
}

/// The table's columns, sized to what they hold: node, status and role always
/// show; the metrics get the rest, and the address only when the metrics fit
/// beside it. Laid out by hand (a table cannot give a group or summary row the
/// whole width).
struct Columns {
    id: usize,
    role: usize,
    address: Option<usize>,
}

const STATUS: usize = 10;

impl Columns {
    fn fit(nodes: &[NodeHealth], inner: u16) -> Columns {
        let widest = |f: &dyn Fn(&NodeHealth) -> usize, lo: usize, hi: usize| {
            nodes.iter().map(f).max().unwrap_or(0).clamp(lo, hi)
        };
        let id = widest(&|n| n.id.chars().count(), 4, 18);
        let role = widest(&|n| n.role.chars().count(), 4, 14);
        let addr = widest(&|n| short_address(&n.address).chars().count(), 7, 21);
        let metrics = widest(&|n| metric_text(n).chars().count(), 0, 40);
        let fixed = id + STATUS + role + 3;
        let address =
            ((inner as usize).saturating_sub(fixed + addr + 1) >= metrics).then_some(addr);
        Columns { id, role, address }
    }

    fn header(&self) -> RLine<'static> {
        let mut text = format!(
            "{} {} {} ",
            cut("node", self.id),
            cut("status", STATUS),
            cut("role", self.role)
        );
        if let Some(w) = self.address {
            text.push_str(&cut("address", w));
            text.push(' ');
        }
        text.push_str("metrics");
        RLine::styled(text, format::dim())
    }

    fn line<'a>(&self, n: &'a NodeHealth) -> RLine<'a> {
        let (text, style) = format::node_status(n.status);
        let mut spans = vec![
            Span::raw(format!("{} ", cut(&n.id, self.id))),
            Span::styled(cut(text, STATUS), style),
            Span::raw(" "),
            Span::styled(format!("{} ", cut(&n.role, self.role)), format::dim()),
        ];
        if let Some(w) = self.address {
            spans.push(Span::styled(
                format!("{} ", cut(short_address(&n.address), w)),
                format::dim(),
            ));
        }
        spans.push(Span::raw(metric_text(n)));
        RLine::from(spans)
    }
}

/// `text` cut or padded to exactly `width` characters.
fn cut(text: &str, width: usize) -> String {
    let mut s: String = text.chars().take(width).collect();
    let n = s.chars().count();
    s.extend(std::iter::repeat_n(' ', width - n));
    s
}

fn metric_text(n: &NodeHealth) -> String {
    n.metrics
        .iter()
        .map(|m| format!("{} {}", m.name, format::value(m.value, &m.unit)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// An address without its URL scheme: `http://127.0.0.1:8001` shows as `127.0.0.1:8001`.
fn short_address(address: &str) -> &str {
    address
        .split_once("://")
        .map_or(address, |(_, rest)| rest.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, role: &str, status: NodeStatus) -> NodeHealth {
        NodeHealth {
            id: id.into(),
            role: role.into(),
            address: String::new(),
            status,
            metrics: vec![],
            ..Default::default()
        }
    }

    #[test]
    fn the_summary_counts_worst_first_and_skips_zeros() {
        let nodes = [
            node("a", "r", NodeStatus::Up),
            node("b", "r", NodeStatus::Down),
            node("c", "r", NodeStatus::Up),
        ];
        assert_eq!(summary(&nodes), "1 down · 2 up");
    }

    #[test]
    fn groups_lead_with_their_worst_member() {
        let nodes = [
            node("s1", "store", NodeStatus::Up),
            node("r1", "replica", NodeStatus::Up),
            node("r2", "replica", NodeStatus::Down),
        ];
        let g = grouped(&nodes);
        assert_eq!(g[0].0, "replica");
        assert_eq!(g[0].1[0].id, "r2");
        assert_eq!(g[1].0, "store");
    }
}
