//! Network faults between the nodes and Redis, through the fault proxy
//! (crates/fault-proxy): each node reaches Redis through its own route, so a
//! fault can slow or cut every node's link, or one node's alone. There is no
//! netem on these machines (docs/network-faults.md), hence the proxy.

use fault_proxy::{Fault, Proxy};
use plugin_api::{PluginError, PluginResult};

/// The proxy routes from the nodes to Redis, in node order.
#[derive(Clone)]
pub struct Links {
    proxy: Proxy,
    routes: Vec<String>,
}

impl Links {
    /// The routes of the local environment's in-process proxy.
    pub fn in_process(proxy: Proxy, routes: Vec<String>) -> Links {
        Links { proxy, routes }
    }

    pub fn count(&self) -> usize {
        self.routes.len()
    }

    /// The route of node `i` (0-based).
    pub fn route(&self, i: usize) -> PluginResult<&str> {
        self.routes.get(i).map(String::as_str).ok_or_else(|| {
            PluginError::invalid(format!(
                "node {} does not exist: use 1 to {}",
                i + 1,
                self.routes.len()
            ))
        })
    }

    /// Adds `fault` to each route; on an error removes what it added, so a
    /// fault is on all of them or none.
    pub fn add_all(&self, routes: &[String], fault: &Fault) -> PluginResult<()> {
        let name = fault.effective_name();
        for (k, route) in routes.iter().enumerate() {
            if let Err(e) = self.proxy.add_fault(route, fault.clone()) {
                for done in &routes[..k] {
                    let _ = self.remove(done, &name);
                }
                return Err(PluginError::failed(format!(
                    "fault proxy, route {route}: {e}"
                )));
            }
        }
        Ok(())
    }

    /// Removes fault `name` from `route`; one that is already gone (it
    /// expired, or the route was closed with its cluster) is no error.
    pub fn remove(&self, route: &str, name: &str) -> PluginResult<()> {
        match self.proxy.remove_fault(route, name) {
            Ok(_)
            | Err(fault_proxy::Error::UnknownFault { .. })
            | Err(fault_proxy::Error::UnknownRoute(_)) => Ok(()),
            Err(e) => Err(PluginError::failed(format!(
                "fault proxy, route {route}: {e}"
            ))),
        }
    }

    /// Removes fault `name` from every route in `routes`, trying each; returns the first error.
    pub fn remove_all(&self, routes: &[String], name: &str) -> PluginResult<()> {
        let mut first = Ok(());
        for route in routes {
            if let Err(e) = self.remove(route, name) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// The routes as they are now (their faults and open connections).
    pub fn routes(&self) -> Vec<fault_proxy::RouteInfo> {
        self.proxy.routes()
    }
}

/// Which nodes (0-based) a `nodes` parameter names: `all`, or numbers or
/// ids joined by `,` or `+` (`1,3`, `node-2`).
pub fn parse_nodes(text: &str, count: usize) -> PluginResult<Vec<usize>> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("all") {
        return Ok((0..count).collect());
    }
    let mut out = Vec::new();
    for part in text
        .split([',', '+'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let n = part
            .strip_prefix("node-")
            .unwrap_or(part)
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=count).contains(n))
            .ok_or_else(|| {
                PluginError::invalid(format!(
                    "nodes: `{part}` is not a node; use all, or numbers 1 to {count} (or node-1..node-{count}) joined by commas"
                ))
            })?;
        if !out.contains(&(n - 1)) {
            out.push(n - 1);
        }
    }
    if out.is_empty() {
        return Err(PluginError::invalid(
            "nodes: name at least one node, or all",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_nodes;

    #[test]
    fn nodes_are_all_or_a_list_and_bad_ones_are_named() {
        assert_eq!(parse_nodes("all", 3).unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_nodes("", 3).unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_nodes("3, node-1+3", 3).unwrap(), vec![2, 0]);
        let e = parse_nodes("4", 3).unwrap_err().to_string();
        assert!(
            e.contains("`4` is not a node") && e.contains("1 to 3"),
            "{e}"
        );
        assert!(parse_nodes("node-x", 3).is_err());
        assert!(parse_nodes(",", 3)
            .unwrap_err()
            .to_string()
            .contains("at least one"));
    }
}
