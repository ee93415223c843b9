//! What needs what: the graph the plugin declares with `depends_on` (on its
//! nodes and on its always-present components). Timing alone says a symptom
//! began after something went down; the graph says whether the one can
//! explain the other.

use plugin_api::{ComponentInfo, NodeHealth};
use std::collections::{BTreeMap, BTreeSet};

/// The declared edges, by component id (a name given as a node's address is
/// that node's id).
#[derive(Debug, Default)]
pub(super) struct Dependencies {
    needs: BTreeMap<String, BTreeSet<String>>,
}

impl Dependencies {
    pub(super) fn declared(
        nodes: &[NodeHealth],
        components: &[ComponentInfo],
        resolve: impl Fn(&str) -> String,
    ) -> Self {
        let mut needs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let edges = nodes
            .iter()
            .map(|n| (&n.id, &n.depends_on))
            .chain(components.iter().map(|c| (&c.name, &c.depends_on)));
        for (from, to) in edges {
            let from = resolve(from);
            for dep in to {
                let dep = resolve(dep);
                if dep != from {
                    needs.entry(from.clone()).or_default().insert(dep);
                }
            }
        }
        Dependencies { needs }
    }

    /// The plugin declared any dependency at all. Without one, the graph has
    /// nothing to say and timing is all the builtin has.
    pub(super) fn any(&self) -> bool {
        !self.needs.is_empty()
    }

    /// `from` needs `on`, directly or through others (cycles tolerated).
    pub(super) fn needs(&self, from: &str, on: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(at) = stack.pop() {
            if !seen.insert(at) {
                continue;
            }
            for next in self.needs.get(at).into_iter().flatten() {
                if next == on {
                    return true;
                }
                stack.push(next);
            }
        }
        false
    }

    /// The first of `components` that needs `on`.
    pub(super) fn dependent_of<'a>(&self, components: &'a [String], on: &str) -> Option<&'a str> {
        components
            .iter()
            .map(String::as_str)
            .find(|c| *c != on && self.needs(c, on))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{ComponentKind, NodeStatus};

    fn node(id: &str, address: &str, deps: &[&str]) -> NodeHealth {
        NodeHealth::new(id, "r", address, NodeStatus::Up).depends_on(deps.iter().copied())
    }

    #[test]
    fn needs_follows_the_declared_edges_transitively_by_id_or_address() {
        let nodes = vec![
            node("replica", "", &["10.0.0.1:5432"]),
            node("primary", "10.0.0.1:5432", &["disk"]),
            node("other", "", &[]),
        ];
        let components = vec![ComponentInfo {
            name: "disk".into(),
            kind: ComponentKind::Resource,
            description: String::new(),
            depends_on: vec!["replica".into()],
        }];
        let resolve = |name: &str| {
            nodes
                .iter()
                .find(|n| n.id == name || n.address == name)
                .map_or_else(|| name.to_string(), |n| n.id.clone())
        };
        let g = Dependencies::declared(&nodes, &components, resolve);
        assert!(g.any());
        assert!(g.needs("replica", "primary"));
        assert!(g.needs("replica", "disk"));
        assert!(!g.needs("primary", "other"));
        assert!(!g.needs("other", "primary"));
        // A cycle (disk → replica → primary → disk) ends.
        assert!(g.needs("disk", "primary"));
        assert!(!g.needs("disk", "other"));
        let named = vec!["other".to_string(), "replica".to_string()];
        assert_eq!(g.dependent_of(&named, "primary"), Some("replica"));
        assert_eq!(g.dependent_of(&named, "other"), None);
    }

    #[test]
    fn no_declaration_means_no_graph() {
        let g = Dependencies::declared(&[node("a", "", &[])], &[], str::to_string);
        assert!(!g.any());
        assert!(!g.needs("a", "b"));
    }
}
