//! Identity masking: node names and addresses are replaced by placeholders
//! before a window goes to a remote model, and restored in its answer.

use super::window::ObservationWindow;
use serde_json::Value;

/// A reversible mapping between real names and placeholders.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// (real, placeholder), longest real first.
    masks: Vec<(String, String)>,
    /// (placeholder, real), longest placeholder first.
    unmasks: Vec<(String, String)>,
}

impl Masker {
    /// Collects every node id, address and address host the window mentions.
    pub fn for_window(window: &ObservationWindow) -> Self {
        let mut ids: Vec<String> = Vec::new();
        let mut addresses: Vec<String> = Vec::new();
        for node in window.snapshots.iter().flat_map(|s| s.nodes.iter()) {
            push_unique(&mut ids, &node.id);
            push_unique(&mut addresses, &node.address);
            if let Some(host) = address_host(&node.address) {
                push_unique(&mut addresses, host);
            }
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            pairs.push((id.clone(), format!("MASKED_NODE_{}", i + 1)));
        }
        for (i, addr) in addresses.iter().filter(|a| !ids.contains(a)).enumerate() {
            pairs.push((addr.clone(), format!("MASKED_ADDR_{}", i + 1)));
        }
        let mut masks = pairs.clone();
        masks.sort_by_key(|(real, _)| std::cmp::Reverse(real.len()));
        let mut unmasks: Vec<(String, String)> = pairs.into_iter().map(|(r, p)| (p, r)).collect();
        unmasks.sort_by_key(|(placeholder, _)| std::cmp::Reverse(placeholder.len()));
        Masker { masks, unmasks }
    }

    pub fn mask_text(&self, text: &str) -> String {
        replace_all(text, &self.masks)
    }

    pub fn unmask_text(&self, text: &str) -> String {
        replace_all(text, &self.unmasks)
    }

    /// How much of a streamed text can be unmasked now: all of it but a tail
    /// that a later chunk could complete into a (longer) placeholder.
    pub fn safe_prefix_len(&self, text: &str) -> usize {
        let held = text.char_indices().map(|(i, _)| i).find(|&i| {
            let tail = &text[i..];
            self.unmasks.iter().any(|(p, _)| p.starts_with(tail))
        });
        held.unwrap_or(text.len())
    }

    /// The window with every name replaced, everywhere it occurs.
    pub fn mask_window(&self, window: &ObservationWindow) -> ObservationWindow {
        let mut value = serde_json::to_value(window).unwrap_or(Value::Null);
        rewrite(&mut value, &|s| self.mask_text(s));
        serde_json::from_value(value).unwrap_or_else(|_| window.clone())
    }

    /// Restores real names in every string of a model's answer.
    pub fn unmask_value(&self, value: &mut Value) {
        rewrite(value, &|s| self.unmask_text(s));
    }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !item.is_empty() && !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

/// `host` of `scheme://host:port/path` or `host:port`.
fn address_host(address: &str) -> Option<&str> {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    let host = rest.split(['/', ':']).next()?;
    (!host.is_empty() && host != address).then_some(host)
}

/// One left-to-right pass, taking the longest match at each position, so a
/// replacement is never itself replaced again.
fn replace_all(text: &str, pairs: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while let Some(c) = rest.chars().next() {
        for (from, to) in pairs {
            if rest.starts_with(from.as_str()) {
                out.push_str(to);
                rest = &rest[from.len()..];
                continue 'outer;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn rewrite(value: &mut Value, f: &dyn Fn(&str) -> String) {
    match value {
        Value::String(s) => *s = f(s),
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, f)),
        Value::Object(map) => map.values_mut().for_each(|v| rewrite(v, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{HealthSnapshot, NodeHealth, NodeStatus};

    fn window() -> ObservationWindow {
        let node = |id: &str, address: &str| NodeHealth {
            id: id.into(),
            role: "member".into(),
            address: address.into(),
            status: NodeStatus::Up,
            metrics: vec![],
            ..Default::default()
        };
        ObservationWindow {
            subject: "s".into(),
            context: Default::default(),
            snapshots: vec![HealthSnapshot {
                at_ms: 1,
                nodes: vec![node("n-1", "alpha:9000"), node("n-10", "beta:9000")],
                ..Default::default()
            }],
            invariant_changes: vec![],
            events: vec![],
            anomaly_started_ms: None,
            remedies: vec![],
        }
    }

    #[test]
    fn longest_name_wins_and_round_trips() {
        let m = Masker::for_window(&window());
        let text = "n-10 at beta:9000 and n-1 on alpha";
        let masked = m.mask_text(text);
        assert!(!masked.contains("n-1") && !masked.contains("alpha") && !masked.contains("beta"));
        assert_eq!(m.unmask_text(&masked), text);
    }

    #[test]
    fn streamed_placeholders_are_restored_across_chunk_boundaries() {
        let m = Masker::for_window(&window());
        let masked = m.mask_text("n-10 and n-1 are fine");
        let mut pending = String::new();
        let mut out = String::new();
        for piece in masked.as_bytes().chunks(3) {
            pending.push_str(std::str::from_utf8(piece).unwrap());
            let cut = m.safe_prefix_len(&pending);
            out.push_str(&m.unmask_text(&pending[..cut]));
            pending.drain(..cut);
        }
        out.push_str(&m.unmask_text(&pending));
        assert_eq!(out, "n-10 and n-1 are fine");
    }

    #[test]
    fn masked_window_hides_every_name() {
        let w = window();
        let m = Masker::for_window(&w);
        let json = serde_json::to_string(&m.mask_window(&w)).unwrap();
        for name in ["n-1", "n-10", "alpha", "beta"] {
            assert!(!json.contains(name), "{name} leaked: {json}");
        }
    }
}
