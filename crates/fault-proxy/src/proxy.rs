//! The in-process control API: a [`Proxy`] owns named routes, each a loopback
//! listener forwarding to one upstream, and the faults on them. Every change
//! is published to the route's open connections at once.

use crate::conn::{serve, OpenGuard};
use crate::fault::Fault;
use crate::state::{Active, ConnCtx, RouteState};
use crate::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a route is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Unique in the proxy; letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// Where to listen; port 0 picks a free port (see [`RouteInfo::listen`]).
    #[serde(default = "loopback_any")]
    pub listen: SocketAddr,
    /// `host:port`, resolved at each connection (a compose service name works).
    pub upstream: String,
}

fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl RouteSpec {
    pub fn new(
        name: impl Into<String>,
        listen: SocketAddr,
        upstream: impl Into<String>,
    ) -> RouteSpec {
        RouteSpec {
            name: name.into(),
            listen,
            upstream: upstream.into(),
        }
    }

    /// A route on a free loopback port.
    pub fn loopback(name: impl Into<String>, upstream: impl Into<String>) -> RouteSpec {
        RouteSpec::new(name, loopback_any(), upstream)
    }

    fn validate(&self) -> Result<(), Error> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if self.name.is_empty() || !self.name.chars().all(ok_char) {
            return Err(Error::InvalidRoute(format!(
                "the name `{}` must be non-empty and of letters, digits, `-`, `_` and `.`",
                self.name
            )));
        }
        let port_ok = self.upstream.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !port_ok {
            return Err(Error::InvalidRoute(format!(
                "the upstream `{}` is not host:port",
                self.upstream
            )));
        }
        Ok(())
    }
}

/// `name=LISTEN=UPSTREAM`, e.g. `redis-1=127.0.0.1:0=127.0.0.1:6379` (the binary's `--route`).
impl FromStr for RouteSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<RouteSpec, Error> {
        let mut parts = s.splitn(3, '=');
        let (Some(name), Some(listen), Some(upstream)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::InvalidRoute(format!(
                "`{s}` is not name=LISTEN=UPSTREAM (e.g. redis=127.0.0.1:0=127.0.0.1:6379)"
            )));
        };
        let listen = listen.parse().map_err(|_| {
            Error::InvalidRoute(format!(
                "`{listen}` in `{s}` is not an ip:port to listen on"
            ))
        })?;
        let spec = RouteSpec::new(name, listen, upstream);
        spec.validate()?;
        Ok(spec)
    }
}

/// A route as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteInfo {
    pub name: String,
    /// The bound address (the port picked when the spec said 0).
    pub listen: SocketAddr,
    pub upstream: String,
    pub enabled: bool,
    /// Connections open through it now.
    pub connections: usize,
    /// Its faults, in the order added, each with its name set.
    pub faults: Vec<Fault>,
}

/// A fault-injecting TCP proxy. Cheap to clone (a handle); the routes, their
/// listeners and connections end when the last handle is dropped.
///
/// Methods that bind a socket are `async` and spawn onto the runtime they are
/// awaited on; the others need no runtime.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    seed: u64,
    serial: AtomicU64,
    routes: Mutex<BTreeMap<String, Route>>,
    /// Serialises the operations that bind, so two enables cannot race for one port.
    binding: tokio::sync::Mutex<()>,
}

struct Route {
    upstream: Arc<str>,
    listen: SocketAddr,
    state: watch::Sender<Arc<RouteState>>,
    accept: Option<JoinHandle<()>>,
    open: Arc<AtomicUsize>,
    next_conn: Arc<AtomicU64>,
}

impl Drop for Route {
    fn drop(&mut self) {
        // The listener closes with its task; the connections see the watch's
        // sender go and close themselves.
        if let Some(h) = self.accept.take() {
            h.abort();
        }
    }
}

impl Route {
    fn info(&self, name: &str) -> RouteInfo {
        let state = self.state.borrow();
        RouteInfo {
            name: name.into(),
            listen: self.listen,
            upstream: self.upstream.to_string(),
            enabled: state.enabled,
            connections: self.open.load(Ordering::Relaxed),
            faults: state
                .faults
                .iter()
                .map(|a| {
                    let mut f = a.fault.clone();
                    f.name = Some(a.name.clone());
                    f
                })
                .collect(),
        }
    }

    fn modify(&self, f: impl FnOnce(&mut RouteState)) {
        self.state.send_modify(|s| f(Arc::make_mut(s)));
    }

    /// Starts accepting on `listener`.
    fn start(&mut self, listener: TcpListener, seed: u64) {
        let upstream = Arc::clone(&self.upstream);
        let rx = self.state.subscribe();
        let open = Arc::clone(&self.open);
        let next = Arc::clone(&self.next_conn);
        self.accept = Some(tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((client, _)) => {
                        let ctx = ConnCtx {
                            id: next.fetch_add(1, Ordering::Relaxed),
                            seed,
                        };
                        tokio::spawn(serve(
                            client,
                            Arc::clone(&upstream),
                            rx.clone(),
                            ctx,
                            OpenGuard::new(&open),
                        ));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: do not spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
}

impl Default for Proxy {
    fn default() -> Proxy {
        Proxy::new()
    }
}

impl Proxy {
    /// A proxy whose per-connection draws use a random seed.
    pub fn new() -> Proxy {
        Proxy::with_seed(rand::random())
    }

    /// A proxy whose per-connection draws (which connections a fraction
    /// picks, the jitter) repeat for the same seed and order of events.
    pub fn with_seed(seed: u64) -> Proxy {
        Proxy {
            inner: Arc::new(Inner {
                seed,
                serial: AtomicU64::new(0),
                routes: Mutex::new(BTreeMap::new()),
                binding: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    fn routes_lock(&self) -> MutexGuard<'_, BTreeMap<String, Route>> {
        // A panic elsewhere while holding the lock leaves the map consistent
        // (every change is one insert, remove or watch update).
        self.inner
            .routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with_route<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Route) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut routes = self.routes_lock();
        let route = routes
            .get_mut(name)
            .ok_or_else(|| Error::UnknownRoute(name.into()))?;
        f(route)
    }

    /// Binds the route's listener and starts forwarding; returns it with the bound address.
    pub async fn add_route(&self, spec: RouteSpec) -> Result<RouteInfo, Error> {
        spec.validate()?;
        let _binding = self.inner.binding.lock().await;
        if self.routes_lock().contains_key(&spec.name) {
            return Err(Error::DuplicateRoute(spec.name));
        }
        let listener = bind(spec.listen).await?;
        let listen = listener.local_addr().map_err(|source| Error::Bind {
            addr: spec.listen,
            source,
        })?;
        let (state, _) = watch::channel(Arc::new(RouteState {
            enabled: true,
            faults: Vec::new(),
        }));
        let mut route = Route {
            upstream: spec.upstream.into(),
            listen,
            state,
            accept: None,
            open: Arc::new(AtomicUsize::new(0)),
            next_conn: Arc::new(AtomicU64::new(0)),
        };
        route.start(listener, self.inner.seed);
        let info = route.info(&spec.name);
        self.routes_lock().insert(spec.name, route);
        Ok(info)
    }

    /// Stops listening and closes the route's connections.
    pub fn remove_route(&self, name: &str) -> Result<(), Error> {
        self.routes_lock()
            .remove(name)
            .map(drop)
            .ok_or_else(|| Error::UnknownRoute(name.into()))
    }

    pub fn route(&self, name: &str) -> Result<RouteInfo, Error> {
        self.with_route(name, |r| Ok(r.info(name)))
    }

    /// Every route, by name.
    pub fn routes(&self) -> Vec<RouteInfo> {
        self.routes_lock().iter().map(|(n, r)| r.info(n)).collect()
    }

    /// Where the route listens (clients connect here instead of the upstream).
    pub fn listen_addr(&self, name: &str) -> Result<SocketAddr, Error> {
        self.with_route(name, |r| Ok(r.listen))
    }

    /// Adds a fault; it applies at once to open connections and new ones.
    /// Returns its name (given, or `<kind>_<direction>`).
    pub fn add_fault(&self, route: &str, fault: Fault) -> Result<String, Error> {
        fault.validate()?;
        let name = fault.effective_name();
        self.with_route(route, |r| {
            if r.state.borrow().faults.iter().any(|a| a.name == name) {
                return Err(Error::DuplicateFault {
                    route: route.into(),
                    fault: name.clone(),
                });
            }
            let serial = self.inner.serial.fetch_add(1, Ordering::Relaxed);
            r.modify(|s| {
                s.faults.push(Active {
                    serial,
                    name: name.clone(),
                    fault,
                })
            });
            Ok(name.clone())
        })
    }

    /// Removes one fault by name; open connections go back to normal at once.
    pub fn remove_fault(&self, route: &str, fault: &str) -> Result<Fault, Error> {
        self.with_route(route, |r| {
            let i = r
                .state
                .borrow()
                .faults
                .iter()
                .position(|a| a.name == fault)
                .ok_or_else(|| Error::UnknownFault {
                    route: route.into(),
                    fault: fault.into(),
                })?;
            // The routes lock is held since the lookup: index `i` is still that fault.
            let mut removed = None;
            r.modify(|s| removed = Some(s.faults.remove(i)));
            removed.map(|a| a.fault).ok_or_else(|| Error::UnknownFault {
                route: route.into(),
                fault: fault.into(),
            })
        })
    }

    /// Removes every fault of one route.
    pub fn clear_faults(&self, route: &str) -> Result<(), Error> {
        self.with_route(route, |r| {
            r.modify(|s| s.faults.clear());
            Ok(())
        })
    }

    /// Disabled, a route refuses connections (its listener is closed) and
    /// closes the open ones, like a node whose port went away (Toxiproxy's
    /// `enabled=false`); enabled again, it listens on the same address.
    pub async fn set_enabled(&self, route: &str, enabled: bool) -> Result<RouteInfo, Error> {
        let _binding = self.inner.binding.lock().await;
        let (listen, was) = self.with_route(route, |r| Ok((r.listen, r.state.borrow().enabled)))?;
        if was == enabled {
            return self.route(route);
        }
        if enabled {
            let listener = bind(listen).await?;
            let seed = self.inner.seed;
            self.with_route(route, |r| {
                r.start(listener, seed);
                r.modify(|s| s.enabled = true);
                Ok(r.info(route))
            })
        } else {
            let accept = self.with_route(route, |r| {
                r.modify(|s| s.enabled = false);
                Ok(r.accept.take())
            })?;
            if let Some(h) = accept {
                h.abort();
                // Wait until the listener is closed: a connect after this call is refused.
                let _ = h.await;
            }
            self.route(route)
        }
    }

    /// Removes every fault on every route and enables every route: the one
    /// call that undoes all chaos. Tries every route; returns the first error
    /// (a port taken meanwhile by another program).
    pub async fn reset(&self) -> Result<(), Error> {
        let names: Vec<String> = self.routes_lock().keys().cloned().collect();
        let mut first = Ok(());
        for name in names {
            if let Ok(()) = self.clear_faults(&name) {
                if let Err(e) = self.set_enabled(&name, true).await {
                    if !matches!(e, Error::UnknownRoute(_)) && first.is_ok() {
                        first = Err(e);
                    }
                }
            }
        }
        first
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_specs_parse_from_the_command_line_form() {
        let r: RouteSpec = "redis-1=127.0.0.1:0=redis:6379".parse().unwrap();
        assert_eq!(r, RouteSpec::loopback("redis-1", "redis:6379"));
        let r: RouteSpec = "a=0.0.0.0:7001=[::1]:6379".parse().unwrap();
        assert_eq!(r.listen.port(), 7001);
        assert_eq!(r.upstream, "[::1]:6379");
        for (bad, want) in [
            ("redis=127.0.0.1:0", "name=LISTEN=UPSTREAM"),
            ("redis=localhost:0=x:1", "not an ip:port"),
            ("=127.0.0.1:0=x:1", "must be non-empty"),
            ("a/b=127.0.0.1:0=x:1", "a/b"),
            ("r=127.0.0.1:0=redis", "not host:port"),
            ("r=127.0.0.1:0=redis:0", "not host:port"),
        ] {
            let err = bad.parse::<RouteSpec>().unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }
}
