//! The plugin's own way to PD through an in-process fault proxy route
//! (`crates/fault-proxy`), so that the `pd-partition` chaos action can cut
//! the observer off from PD without touching the cluster: PD and the stores
//! go on, and only what the plugin sees changes, as when the network between
//! a monitoring host and PD fails.

use fault_proxy::{Fault, Proxy, RouteSpec};
use plugin_api::{PluginError, PluginResult};
use serde::{Deserialize, Serialize};

pub const PD_PARTITION: &str = "pd-partition";

/// The route's name on the proxy.
const ROUTE: &str = "pd";

/// An in-process proxy with one loopback route to PD's client port.
pub struct PdLink {
    proxy: Proxy,
    /// `http://127.0.0.1:<route port>`: what the PD client talks to.
    url: String,
}

/// The undo record of `pd-partition`. The proxy lives in the host process
/// that injected the fault and ends with it, so a later process has nothing
/// to undo; the record says what it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdPartitionUndo {
    pub action: String,
    pub fault: String,
}

impl PdLink {
    /// Starts the route on `rt` in front of `pd` (an `http://host:port` URL).
    pub fn start(rt: &tokio::runtime::Runtime, pd: &str) -> PluginResult<PdLink> {
        let url = reqwest::Url::parse(pd)
            .map_err(|e| PluginError::invalid(format!("config `pd={pd}`: {e}")))?;
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(PluginError::invalid(format!(
                "config `pd={pd}` names no host and port"
            )));
        };
        let upstream = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let proxy = Proxy::new();
        let route = rt
            .block_on(proxy.add_route(RouteSpec::loopback(ROUTE, upstream)))
            .map_err(|e| PluginError::failed(format!("the route to PD: {e}")))?;
        Ok(PdLink {
            proxy,
            url: format!("http://{}", route.listen),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Holds every byte between the plugin and PD, both ways, on open
    /// connections too; nothing is closed, as behind a dead link.
    pub fn cut(&self, fault: &str) -> PluginResult<()> {
        self.proxy
            .add_fault(ROUTE, Fault::blackhole().named(fault))
            .map(|_| ())
            .map_err(|e| PluginError::failed(format!("{PD_PARTITION}: {e}")))
    }

    /// Removes the cut; one already removed is no error.
    pub fn heal(&self, fault: &str) -> PluginResult<()> {
        match self.proxy.remove_fault(ROUTE, fault) {
            Ok(_) | Err(fault_proxy::Error::UnknownFault { .. }) => Ok(()),
            Err(e) => Err(PluginError::failed(format!("{PD_PARTITION}: {e}"))),
        }
    }

    /// The faults on the route now (for tests and the leftovers check).
    pub fn faults(&self) -> Vec<String> {
        self.proxy
            .route(ROUTE)
            .map(|r| r.faults.iter().map(|f| f.effective_name()).collect())
            .unwrap_or_default()
    }
}
