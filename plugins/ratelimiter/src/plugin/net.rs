//! Network faults between the nodes and Redis, through the fault proxy
//! (crates/fault-proxy): each node reaches Redis through its own route, so a
//! fault can slow or cut every node's link, or one node's alone. There is no
//! netem on these machines (docs/network-faults.md), hence the proxy.
//! Locally the proxy runs in this process; in compose it is a container of
//! its own, driven over its HTTP API.

use fault_proxy::{Fault, Proxy};
use plugin_api::{PluginError, PluginResult};
use std::time::Duration;

/// How long one call to the proxy's HTTP API may take.
const API_TIMEOUT: Duration = Duration::from_secs(2);

/// How the proxy is driven: in this process (env=local), or over its HTTP API
/// when it runs as a container of its own (env=compose).
#[derive(Clone)]
enum Control {
    InProcess(Proxy),
    Http { api: String, http: reqwest::Client },
}

/// The proxy routes from the nodes to Redis, in node order.
#[derive(Clone)]
pub struct Links {
    control: Control,
    routes: Vec<String>,
}

impl Links {
    /// The routes of the local environment's in-process proxy.
    pub fn in_process(proxy: Proxy, routes: Vec<String>) -> Links {
        Links {
            control: Control::InProcess(proxy),
            routes,
        }
    }

    /// The routes of a proxy reached at `api` (`http://127.0.0.1:8474`).
    pub fn http(api: &str, routes: Vec<String>) -> PluginResult<Links> {
        let http = reqwest::Client::builder()
            .timeout(API_TIMEOUT)
            .build()
            .map_err(PluginError::failed)?;
        Ok(Links {
            control: Control::Http {
                api: api.trim_end_matches('/').to_string(),
                http,
            },
            routes,
        })
    }

    /// The control API's URL, when the proxy is reached over HTTP: what a
    /// later process needs to undo a fault on it.
    pub fn api(&self) -> Option<&str> {
        match &self.control {
            Control::InProcess(_) => None,
            Control::Http { api, .. } => Some(api),
        }
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
    pub async fn add_all(&self, routes: &[String], fault: &Fault) -> PluginResult<()> {
        let name = fault.effective_name();
        for (k, route) in routes.iter().enumerate() {
            if let Err(e) = self.add(route, fault).await {
                for done in &routes[..k] {
                    let _ = self.remove(done, &name).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn add(&self, route: &str, fault: &Fault) -> PluginResult<()> {
        let failed = |e: String| PluginError::failed(format!("fault proxy, route {route}: {e}"));
        match &self.control {
            Control::InProcess(p) => p
                .add_fault(route, fault.clone())
                .map(drop)
                .map_err(|e| failed(e.to_string())),
            Control::Http { api, http } => {
                let url = format!("{api}/routes/{route}/faults");
                let r = http
                    .post(&url)
                    .json(fault)
                    .send()
                    .await
                    .map_err(|e| failed(format!("POST {url}: {e}")))?;
                if r.status().is_success() {
                    return Ok(());
                }
                let status = r.status();
                Err(failed(format!(
                    "POST {url} answered {status}: {}",
                    r.text().await.unwrap_or_default()
                )))
            }
        }
    }

    /// Removes fault `name` from `route`; one that is already gone (it
    /// expired, or the route was closed with its cluster) is no error.
    pub async fn remove(&self, route: &str, name: &str) -> PluginResult<()> {
        let failed = |e: String| PluginError::failed(format!("fault proxy, route {route}: {e}"));
        match &self.control {
            Control::InProcess(p) => match p.remove_fault(route, name) {
                Ok(_)
                | Err(fault_proxy::Error::UnknownFault { .. })
                | Err(fault_proxy::Error::UnknownRoute(_)) => Ok(()),
                Err(e) => Err(failed(e.to_string())),
            },
            Control::Http { api, http } => {
                let url = format!("{api}/routes/{route}/faults/{name}");
                let r = http
                    .delete(&url)
                    .send()
                    .await
                    .map_err(|e| failed(format!("DELETE {url}: {e}")))?;
                let status = r.status();
                if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
                    return Ok(());
                }
                Err(failed(format!(
                    "DELETE {url} answered {status}: {}",
                    r.text().await.unwrap_or_default()
                )))
            }
        }
    }

    /// Removes fault `name` from every route in `routes`, trying each; returns the first error.
    pub async fn remove_all(&self, routes: &[String], name: &str) -> PluginResult<()> {
        let mut first = Ok(());
        for route in routes {
            if let Err(e) = self.remove(route, name).await {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// The in-process proxy's routes as they are now (their faults and open
    /// connections); empty when the proxy is reached over HTTP.
    pub fn routes(&self) -> Vec<fault_proxy::RouteInfo> {
        match &self.control {
            Control::InProcess(p) => p.routes(),
            Control::Http { .. } => Vec::new(),
        }
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
