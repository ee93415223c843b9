//! A stand-in PD HTTP API for runs where no TiKV can run (tests, rehearsals).
//!
//! It answers `/pd/api/v1/stores`, `/pd/api/v1/health`, `/pd/api/v1/regions` and
//! `/metrics` in PD's JSON format (field names from PD's `pkg/response`, sizes as
//! go-units strings, timestamps RFC 3339). Store states come from, in order: a
//! state set by the test, the Docker containers of a compose project (a store
//! whose container is not running turns `Disconnected` after `disconnect_after`
//! and `Down` after `down_after`, as PD does with missing heartbeats), or `Up`.
//! Tests can also make PD slow, answer garbage or errors, or leave regions leaderless.

use crate::units::{format_bytes, format_go_duration, format_rfc3339_ms};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use docker_chaos::{Engine, Selector};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const STORES: &str = "/pd/api/v1/stores";
pub const REGIONS: &str = "/pd/api/v1/regions";
pub const HEALTH: &str = "/pd/api/v1/health";

/// How often the fixture looks at the stand-in containers.
const DOCKER_POLL: Duration = Duration::from_millis(200);

/// One store the fixture reports.
#[derive(Debug, Clone, PartialEq)]
pub struct FixtureStore {
    pub id: u64,
    /// The advertised address, `tikv0:20160` in the compose project.
    pub address: String,
    /// The compose service whose container is the store (when Docker decides the state).
    pub service: String,
    pub capacity: u64,
    pub available: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FixtureOptions {
    pub stores: Vec<FixtureStore>,
    /// When set, store states follow the containers of this compose project.
    pub docker_project: Option<String>,
    /// How long a stopped container's store still shows `Up` (PD: ~20 s without heartbeat).
    pub disconnect_after: Duration,
    /// When a stopped container's store turns `Down` (PD's max-store-down-time, 30 min by default).
    pub down_after: Duration,
    /// Regions in the cluster; each has a replica on every store.
    pub regions: u64,
    pub members: Vec<String>,
}

impl FixtureOptions {
    /// Three stores `tikv0..2` (ids 1..3) at `tikvN:20160`, 30 regions, one PD member `pd`.
    pub fn three_stores() -> FixtureOptions {
        FixtureOptions {
            stores: (0..3)
                .map(|i| FixtureStore {
                    id: i + 1,
                    address: format!("tikv{i}:20160"),
                    service: format!("tikv{i}"),
                    capacity: 100 << 30,
                    available: 80 << 30,
                })
                .collect(),
            docker_project: None,
            disconnect_after: Duration::ZERO,
            down_after: Duration::from_secs(1800),
            regions: 30,
            members: vec!["pd".into()],
        }
    }
}

/// How PD answers requests.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Answers after this delay.
    Slow(Duration),
    /// Answers 200 with a body that is not JSON.
    Garbage,
    /// Answers 500 as PD does when it cannot proceed.
    Error,
}

struct Fixture {
    opts: FixtureOptions,
    url: String,
    started_ms: i64,
    mode: Mode,
    overrides: BTreeMap<u64, String>,
    stopped_since: BTreeMap<u64, (Instant, i64)>,
    leaderless: u64,
    used: BTreeMap<u64, f64>,
    unhealthy: BTreeSet<String>,
    leaders: BTreeMap<u64, u64>,
    raw: BTreeMap<String, String>,
    metrics: String,
}

type Shared = Arc<Mutex<Fixture>>;

fn now_ms() -> i64 {
    plugin_api::now_ms() as i64
}

impl Fixture {
    fn state_of(&self, store: &FixtureStore) -> String {
        if let Some(s) = self.overrides.get(&store.id) {
            return s.clone();
        }
        match self.stopped_since.get(&store.id) {
            Some((since, _)) if since.elapsed() >= self.opts.down_after => "Down".into(),
            Some((since, _)) if since.elapsed() >= self.opts.disconnect_after => {
                "Disconnected".into()
            }
            _ => "Up".into(),
        }
    }

    fn stores_json(&self) -> Value {
        let now = now_ms();
        let states: Vec<String> = self.opts.stores.iter().map(|s| self.state_of(s)).collect();
        let up = states.iter().filter(|s| *s == "Up").count().max(1) as u64;
        let mut leaders_left = self.opts.regions;
        let stores: Vec<Value> = self
            .opts
            .stores
            .iter()
            .zip(&states)
            .map(|(s, state)| {
                let leaders = if let Some(n) = self.leaders.get(&s.id) {
                    *n
                } else if state == "Up" {
                    let share = self.opts.regions.div_ceil(up).min(leaders_left);
                    leaders_left -= share;
                    share
                } else {
                    0
                };
                let available = match self.used.get(&s.id) {
                    Some(u) => (s.capacity as f64 * (1.0 - u)) as u64,
                    None => s.available,
                };
                let heartbeat = self.stopped_since.get(&s.id).map_or(now, |(_, ms)| *ms);
                let host = s.address.rsplit_once(':').map_or(s.address.as_str(), |(h, _)| h);
                let mut store = json!({
                    "id": s.id,
                    "address": s.address,
                    "version": "8.5.5",
                    "peer_address": s.address,
                    "status_address": format!("{host}:20180"),
                    "git_hash": "0000000000000000000000000000000000000000",
                    "start_timestamp": self.started_ms / 1000,
                    "deploy_path": "/",
                    "last_heartbeat": heartbeat * 1_000_000,
                    "node_state": 1,
                    "state_name": state,
                });
                match state.as_str() {
                    "Offline" => store["state"] = json!(1),
                    "Tombstone" => {
                        store["state"] = json!(2);
                        store["node_state"] = json!(4);
                    }
                    _ => {}
                }
                let mut status = json!({
                    "capacity": format_bytes(s.capacity),
                    "available": format_bytes(available),
                    "used_size": format_bytes(64 << 20),
                    "leader_count": leaders,
                    "leader_weight": 1,
                    "leader_score": leaders,
                    "leader_size": leaders,
                    "region_count": self.opts.regions,
                    "region_weight": 1,
                    "region_score": self.opts.regions as f64 * 1.5,
                    "region_size": self.opts.regions,
                    "slow_score": 1,
                    "slow_trend": {"cause_value": 250000.0, "cause_rate": 0.0, "result_value": 0.0, "result_rate": 0.0},
                    "start_ts": format_rfc3339_ms(self.started_ms),
                });
                if state != "Tombstone" {
                    status["last_heartbeat_ts"] = json!(format_rfc3339_ms(heartbeat));
                    status["uptime"] = json!(format_go_duration((heartbeat - self.started_ms).max(0) as f64 / 1000.0));
                }
                json!({"store": store, "status": status})
            })
            .collect();
        json!({"count": stores.len(), "stores": stores})
    }

    fn regions_json(&self) -> Value {
        let up: Vec<&FixtureStore> = self
            .opts
            .stores
            .iter()
            .filter(|s| self.state_of(s) == "Up")
            .collect();
        let regions: Vec<Value> = (0..self.opts.regions)
            .map(|i| {
                let id = 2 + i * 4;
                let peers: Vec<Value> = self
                    .opts
                    .stores
                    .iter()
                    .enumerate()
                    .map(|(n, s)| json!({"id": id + 1 + n as u64, "store_id": s.id, "role_name": "Voter"}))
                    .collect();
                let leader = if i < self.leaderless || up.is_empty() {
                    json!({})
                } else {
                    let s = up[i as usize % up.len()];
                    let n = self.opts.stores.iter().position(|x| x.id == s.id).unwrap_or(0) as u64;
                    json!({"id": id + 1 + n, "store_id": s.id, "role_name": "Voter"})
                };
                json!({
                    "id": id,
                    "start_key": format!("7480000000000000FF{i:02X}"),
                    "end_key": format!("7480000000000000FF{:02X}", i + 1),
                    "epoch": {"conf_ver": 5, "version": 1 + i},
                    "peers": peers,
                    "leader": leader,
                    "cpu_usage": 0,
                    "written_bytes": 0,
                    "read_bytes": 0,
                    "written_keys": 0,
                    "read_keys": 0,
                    "approximate_size": 1,
                    "approximate_keys": 0,
                    "approximate_kv_size": 0,
                    "approximate_columnar_kv_size": 0,
                })
            })
            .collect();
        json!({"count": regions.len(), "regions": regions})
    }

    fn health_json(&self) -> Value {
        let members: Vec<Value> = self
            .opts
            .members
            .iter()
            .enumerate()
            .map(|(i, name)| {
                json!({
                    "name": name,
                    "member_id": 3_474_484_975_246_189_105u64 + i as u64,
                    "client_urls": [self.url.clone()],
                    "health": !self.unhealthy.contains(name),
                })
            })
            .collect();
        Value::Array(members)
    }
}

/// Applies the mode, then answers with a recorded body set for `path` or with `body` built from the state.
async fn answer(state: Shared, path: &str, body: fn(&Fixture) -> Value) -> Response {
    let mode = state.lock().map(|f| f.mode.clone()).unwrap_or(Mode::Error);
    match mode {
        Mode::Slow(d) => tokio::time::sleep(d).await,
        Mode::Garbage => {
            return (StatusCode::OK, "<html><body>502 Bad Gateway</body></html>").into_response()
        }
        Mode::Error => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "\"PD server failed to proceed the request.\"",
            )
                .into_response()
        }
        Mode::Normal => {}
    }
    match state.lock() {
        Ok(f) => match f.raw.get(path) {
            Some(raw) => (
                [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
                raw.clone(),
            )
                .into_response(),
            None => axum::Json(body(&f)).into_response(),
        },
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    let text = state.lock().map(|f| f.metrics.clone()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Follows the stand-in containers: records since when each store's container is not running.
async fn watch_docker(state: Shared, project: String) {
    let mut engine: Option<Engine> = None;
    loop {
        if engine.is_none() {
            engine = Engine::connect().await.ok();
        }
        if let Some(e) = &engine {
            let services: Vec<(u64, String)> = match state.lock() {
                Ok(f) => f
                    .opts
                    .stores
                    .iter()
                    .map(|s| (s.id, s.service.clone()))
                    .collect(),
                Err(_) => return,
            };
            for (id, service) in services {
                let Ok(containers) = e.find(&Selector::service(&project, &service)).await else {
                    continue;
                };
                let live = containers.iter().any(|c| c.is_live());
                if let Ok(mut f) = state.lock() {
                    if live {
                        f.stopped_since.remove(&id);
                    } else {
                        f.stopped_since
                            .entry(id)
                            .or_insert((Instant::now(), now_ms()));
                    }
                }
            }
        }
        tokio::time::sleep(DOCKER_POLL).await;
    }
}

/// A running fixture; stops when dropped.
pub struct PdFixture {
    addr: SocketAddr,
    state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PdFixture {
    /// Starts on a free loopback port.
    pub fn start(opts: FixtureOptions) -> std::io::Result<PdFixture> {
        PdFixture::start_on(opts, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts on `addr` (for example 127.0.0.1:2379 to stand in for a compose cluster's PD).
    pub fn start_on(opts: FixtureOptions, addr: SocketAddr) -> std::io::Result<PdFixture> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let project = opts.docker_project.clone();
        let state: Shared = Arc::new(Mutex::new(Fixture {
            opts,
            url: format!("http://{addr}"),
            started_ms: now_ms(),
            mode: Mode::Normal,
            overrides: BTreeMap::new(),
            stopped_since: BTreeMap::new(),
            leaderless: 0,
            used: BTreeMap::new(),
            unhealthy: BTreeSet::new(),
            leaders: BTreeMap::new(),
            raw: BTreeMap::new(),
            metrics: String::new(),
        }));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pd-fixture")
            .enable_all()
            .build()?;
        let listener = rt.block_on(async { tokio::net::TcpListener::from_std(listener) })?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route(
                STORES,
                get(|State(s): State<Shared>| answer(s, STORES, Fixture::stores_json)),
            )
            .route(
                REGIONS,
                get(|State(s): State<Shared>| answer(s, REGIONS, Fixture::regions_json)),
            )
            .route(
                HEALTH,
                get(|State(s): State<Shared>| answer(s, HEALTH, Fixture::health_json)),
            )
            .route("/metrics", get(metrics))
            .with_state(Arc::clone(&state));
        let watched = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("pd-fixture".into())
            .spawn(move || {
                rt.block_on(async move {
                    if let Some(project) = project {
                        tokio::spawn(watch_docker(watched, project));
                    }
                    // Not a graceful shutdown: idle keep-alive connections of clients would hold it open,
                    // and a PD that goes away closes its connections too.
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = rx => {}
                    }
                });
                rt.shutdown_background();
            })?;
        Ok(PdFixture {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, the value for the plugin's `pd=` key.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with(&self, f: impl FnOnce(&mut Fixture)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }

    /// Forces a store's `state_name` (`Up`, `Disconnected`, `Down`, `Offline`, `Tombstone`); `None` lets it follow Docker again.
    pub fn set_state(&self, store_id: u64, state_name: Option<&str>) {
        self.with(|f| match state_name {
            Some(s) => {
                f.overrides.insert(store_id, s.to_string());
            }
            None => {
                f.overrides.remove(&store_id);
            }
        });
    }

    pub fn set_mode(&self, mode: Mode) {
        self.with(|f| f.mode = mode);
    }

    /// The first `n` regions answer `"leader": {}`, as during an election.
    pub fn set_leaderless_regions(&self, n: u64) {
        self.with(|f| f.leaderless = n);
    }

    /// Sets the used fraction of a store's disk (capacity minus available).
    pub fn set_disk_used(&self, store_id: u64, fraction: f64) {
        self.with(|f| {
            f.used.insert(store_id, fraction);
        });
    }

    /// Fixes a store's leader count (to create an imbalance); `None` spreads leaders evenly again.
    pub fn set_leaders(&self, store_id: u64, leaders: Option<u64>) {
        self.with(|f| match leaders {
            Some(n) => {
                f.leaders.insert(store_id, n);
            }
            None => {
                f.leaders.remove(&store_id);
            }
        });
    }

    /// Answers `path` (one of [`STORES`], [`REGIONS`], [`HEALTH`]) with a recorded body; `None` goes back to generated JSON.
    pub fn set_raw(&self, path: &str, body: Option<&str>) {
        self.with(|f| match body {
            Some(b) => {
                f.raw.insert(path.to_string(), b.to_string());
            }
            None => {
                f.raw.remove(path);
            }
        });
    }

    pub fn set_member_health(&self, name: &str, healthy: bool) {
        self.with(|f| {
            if healthy {
                f.unhealthy.remove(name);
            } else {
                f.unhealthy.insert(name.to_string());
            }
        });
    }

    /// The Prometheus text `/metrics` answers with.
    pub fn set_metrics(&self, text: &str) {
        self.with(|f| f.metrics = text.to_string());
    }

    /// The state each store is reported in right now, by id.
    pub fn states(&self) -> BTreeMap<u64, String> {
        self.state
            .lock()
            .map(|f| {
                f.opts
                    .stores
                    .iter()
                    .map(|s| (s.id, f.state_of(s)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for PdFixture {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
