//! The in-process fault proxy in front of a proxied cluster's Redis: one
//! route per node, so a network fault can hit one node's link alone.

use super::ClusterError;
use fault_proxy::{Proxy, RouteSpec};
use std::net::SocketAddr;

/// The in-process fault proxy in front of Redis. It has a runtime of its own
/// (one worker) so that forwarding never waits behind the owner's tasks, and
/// so that the cluster's blocking methods can drive it from any thread.
pub(super) struct RedisProxy {
    pub(super) proxy: Proxy,
    rt: Option<tokio::runtime::Runtime>,
}

impl RedisProxy {
    pub(super) fn start() -> Result<RedisProxy, ClusterError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fault-proxy")
            .enable_all()
            .build()?;
        Ok(RedisProxy {
            proxy: Proxy::new(),
            rt: Some(rt),
        })
    }

    /// Adds a loopback route to `upstream`; returns where it listens.
    pub(super) fn add_route(&self, name: &str, upstream: &str) -> Result<SocketAddr, ClusterError> {
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| ClusterError::NotReady("the fault proxy was stopped".into()))?;
        // Spawned and waited for, not `block_on`: that would panic when the
        // caller is itself inside a runtime.
        let (tx, rx) = std::sync::mpsc::channel();
        let (proxy, spec) = (self.proxy.clone(), RouteSpec::loopback(name, upstream));
        rt.spawn(async move {
            let _ = tx.send(proxy.add_route(spec).await);
        });
        let info = rx
            .recv()
            .map_err(|_| ClusterError::NotReady("the fault proxy's runtime ended".into()))??;
        Ok(info.listen)
    }

    /// Closes every route and its connections.
    pub(super) fn close(&self) {
        for r in self.proxy.routes() {
            let _ = self.proxy.remove_route(&r.name);
        }
    }
}

impl Drop for RedisProxy {
    fn drop(&mut self) {
        self.close();
        // Not `drop(rt)`: that panics when the cluster is dropped inside an async context.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
