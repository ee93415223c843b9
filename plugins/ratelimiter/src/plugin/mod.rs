//! The demo-host plugin: runs (or reaches) a cluster of three nodes and Redis,
//! keeps a steady load on it, polls it, computes the invariants and injects
//! real faults.

pub mod burst;
pub mod chaos;
pub mod check_conn;
pub mod compose_env;
pub mod config;
pub mod describe;
pub mod env;
pub mod health;
pub mod invariants;
pub mod load;
pub mod net;
pub mod remedy;

use burst::BurstRecord;
use config::PluginConfig;
use env::Env;
use invariants::Settings;
use load::Accounting;
use plugin_api::*;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

const MAX_EVENTS: usize = 50;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Redis connections of the plugin: one for reads, one for admin commands (CLIENT PAUSE).
#[derive(Clone)]
pub struct RedisConns {
    pub read: ConnectionManager,
    pub admin: ConnectionManager,
}

/// State shared by the instance and its background tasks.
pub struct Shared {
    pub cfg: PluginConfig,
    pub log: Logger,
    pub http: reqwest::Client,
    pub acc: Arc<Accounting>,
    nodes: RwLock<Vec<String>>,
    redis_url: RwLock<String>,
    redis: RwLock<Option<RedisConns>>,
    poll: Mutex<health::PollState>,
    bursts: Mutex<Vec<BurstRecord>>,
    watched: Mutex<Vec<String>>,
    events: Mutex<VecDeque<Event>>,
    pub burst_seq: AtomicU64,
    /// What remedies changed in the cluster's configuration.
    reconfig: RwLock<remedy::Reconfig>,
}

impl Shared {
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.read().map(|n| n.clone()).unwrap_or_default()
    }
    pub fn redis_url(&self) -> String {
        self.redis_url.read().map(|n| n.clone()).unwrap_or_default()
    }
    pub fn redis_read(&self) -> Option<ConnectionManager> {
        self.redis.read().ok()?.as_ref().map(|c| c.read.clone())
    }
    pub fn redis_admin(&self) -> Option<ConnectionManager> {
        self.redis.read().ok()?.as_ref().map(|c| c.admin.clone())
    }
    pub fn watched_keys(&self) -> Vec<String> {
        lock(&self.watched).clone()
    }
    pub fn watch(&self, key: &str) {
        let mut w = lock(&self.watched);
        if !w.iter().any(|k| k == key) {
            w.push(key.to_string());
        }
    }
    pub fn poll(&self) -> MutexGuard<'_, health::PollState> {
        lock(&self.poll)
    }
    pub fn bursts(&self) -> Vec<BurstRecord> {
        lock(&self.bursts).clone()
    }
    pub fn add_burst(&self, b: BurstRecord) {
        let mut all = lock(&self.bursts);
        all.push(b);
        let hold = self.cfg.hold_ms;
        all.retain(|b| {
            crate::now_ms().saturating_sub(b.finished_ms) <= hold.max(self.cfg.window_ms * 2)
        });
    }
    /// Forgets a recovered burst: its record, its key and what the nodes'
    /// counters showed of it, so that `ghost allowing` holds its violation
    /// only until the burst is recovered, not into the chapters after it.
    pub fn forget_burst(&self, key: &str) {
        lock(&self.bursts).retain(|b| b.key != key);
        lock(&self.watched).retain(|k| k != key);
        self.poll().evidence.retain(|e| e.key != key);
    }
    /// Drops burst keys whose windows are over from the watch list.
    pub fn unwatch_finished_bursts(&self) {
        let current = crate::now_ms() / self.cfg.window_ms;
        let done: Vec<String> = lock(&self.bursts)
            .iter()
            .filter(|b| b.window + 2 <= current)
            .map(|b| b.key.clone())
            .collect();
        lock(&self.watched).retain(|k| !done.contains(k));
    }
    /// The nodes' counting mode: the configured one, unless a remedy switched it.
    pub fn mode(&self) -> crate::wire::Mode {
        remedy::reconfig(self).mode.unwrap_or(self.cfg.mode)
    }
    /// Repoints the plugin's own Redis connections (after a failover).
    pub fn set_redis(&self, url: &str) -> PluginResult<()> {
        let conns = redis_conns(url)?;
        if let Ok(mut r) = self.redis_url.write() {
            *r = url.to_string();
        }
        if let Ok(mut r) = self.redis.write() {
            *r = Some(conns);
        }
        Ok(())
    }
    pub fn settings(&self) -> Settings {
        Settings {
            mode: self.mode(),
            flush_ms: self.cfg.flush_ms,
            drift_tolerance: self.cfg.drift_tolerance,
            hold_ms: self.cfg.hold_ms,
        }
    }
    pub fn event(&self, level: Level, message: String) {
        self.event_on(level, message, None);
    }
    /// An event about one component (a node, or `redis`).
    pub fn event_on(&self, level: Level, message: String, component: Option<String>) {
        self.log.log(level, &message);
        let mut ev = lock(&self.events);
        ev.push_back(Event {
            component,
            ..health::event(level, message)
        });
        while ev.len() > MAX_EVENTS {
            ev.pop_front();
        }
    }
    pub fn recent_events(&self) -> Vec<Event> {
        lock(&self.events).iter().cloned().collect()
    }

    /// PUTs a key's limit through the first node that answers.
    pub async fn put_limit(&self, key: &str, limit: crate::wire::Limit) -> PluginResult<String> {
        let mut errors = Vec::new();
        for (i, url) in self.node_urls().iter().enumerate() {
            let r = self
                .http
                .put(format!("{url}/api/limits/{key}"))
                .timeout(Duration::from_secs(2))
                .json(&limit)
                .send()
                .await;
            match r {
                Ok(resp) if resp.status().is_success() => return Ok(format!("node-{}", i + 1)),
                Ok(resp) => errors.push(format!(
                    "node-{}: HTTP {} {}",
                    i + 1,
                    resp.status(),
                    resp.text().await.unwrap_or_default()
                )),
                Err(e) => errors.push(format!("node-{}: {e}", i + 1)),
            }
        }
        Err(PluginError::failed(format!(
            "no node accepted the limit for `{key}`: {}",
            errors.join("; ")
        )))
    }
}

pub struct RateLimiterSubject {
    shared: Arc<Shared>,
    library_dir: PathBuf,
    rt: Mutex<Option<Arc<Runtime>>>,
    env: Mutex<Option<Arc<Env>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    load_running: AtomicBool,
    faults: chaos::Faults,
    remedies: remedy::Remedies,
    since: SinceTracker,
}

impl RateLimiterSubject {
    fn rt(&self) -> PluginResult<Arc<Runtime>> {
        lock(&self.rt)
            .clone()
            .ok_or_else(|| PluginError::failed("the instance was torn down; create a new one"))
    }

    fn env(&self) -> PluginResult<Arc<Env>> {
        lock(&self.env)
            .clone()
            .ok_or_else(|| PluginError::failed("the environment is not set up; call setup first"))
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The standby Redis the failover-redis remedy promotes, as the plugin reaches it.
    pub fn standby_url(&self) -> Option<String> {
        lock(&self.env)
            .as_deref()
            .and_then(Env::standby)
            .map(|s| s.url)
    }

    /// Whether any injected fault is still active (not recovered).
    pub fn faults_active(&self) -> bool {
        !self.faults.ids().is_empty()
    }

    /// Process ids of the local children (empty for compose); lets tests check for orphans.
    pub fn child_pids(&self) -> Vec<u32> {
        match lock(&self.env).as_deref() {
            Some(Env::Local(l)) => l.pids(),
            _ => vec![],
        }
    }

    /// The fault proxy's routes from the nodes to Redis, with their faults
    /// (empty without a proxy); lets tests check that recovery removed a fault.
    pub fn redis_routes(&self) -> Vec<fault_proxy::RouteInfo> {
        lock(&self.env)
            .as_deref()
            .and_then(|e| e.links().ok())
            .map(|l| l.routes())
            .unwrap_or_default()
    }

    fn spawn_task(
        &self,
        rt: &Runtime,
        fut: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        lock(&self.tasks).push(rt.spawn(fut));
    }

    fn set_limit(&self) -> PluginResult<String> {
        let rt = self.rt()?;
        let cfg = &self.shared.cfg;
        let limit = crate::wire::Limit {
            limit: cfg.limit,
            window_ms: cfg.window_ms,
        };
        let via = rt.block_on(self.shared.put_limit(&cfg.key, limit))?;
        self.shared.watch(&cfg.key);
        if !self.load_running.swap(true, Ordering::SeqCst) && cfg.load_rps > 0 {
            let s = &self.shared;
            let stop = Arc::new(AtomicBool::new(false));
            self.spawn_task(
                &rt,
                load::run(
                    s.http.clone(),
                    Arc::clone(&s.acc),
                    s.node_urls(),
                    cfg.key.clone(),
                    cfg.load_rps,
                    stop,
                ),
            );
        }
        let msg = format!(
            "limit {} per {} ms set on `{}` through {via}; background load {} checks/s",
            cfg.limit, cfg.window_ms, cfg.key, cfg.load_rps
        );
        self.shared.event(Level::Info, msg.clone());
        Ok(msg)
    }
}

fn redis_conns(url: &str) -> PluginResult<RedisConns> {
    let client = redis::Client::open(url)
        .map_err(|e| PluginError::invalid(format!("redis URL `{url}`: {e}")))?;
    let make = || {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(300)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(300));
        ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(PluginError::failed)
    };
    Ok(RedisConns {
        read: make()?,
        admin: make()?,
    })
}

impl Subject for RateLimiterSubject {
    fn describe() -> SubjectDescription {
        describe::description()
    }

    fn create(ctx: InstanceContext) -> PluginResult<Self> {
        let cfg = PluginConfig::parse(&ctx.config)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ratelimiter-plugin")
            .enable_all()
            .build()
            .map_err(|e| PluginError::failed(format!("cannot start the plugin's runtime: {e}")))?;
        let http = reqwest::Client::builder()
            // As many kept-alive connections as a burst has checks in flight: fewer would
            // close and reopen connections in the middle of the burst.
            .pool_max_idle_per_host(burst::MAX_CONCURRENCY)
            .connect_timeout(Duration::from_millis(300))
            .build()
            .map_err(PluginError::failed)?;
        Ok(RateLimiterSubject {
            shared: Arc::new(Shared {
                cfg,
                log: ctx.log,
                http,
                acc: Arc::new(Accounting::new(3)),
                nodes: RwLock::new(vec![]),
                redis_url: RwLock::new(String::new()),
                redis: RwLock::new(None),
                poll: Mutex::new(health::PollState::default()),
                bursts: Mutex::new(vec![]),
                watched: Mutex::new(vec![]),
                events: Mutex::new(VecDeque::new()),
                burst_seq: AtomicU64::new(1),
                reconfig: RwLock::new(remedy::Reconfig::default()),
            }),
            library_dir: ctx.library_dir,
            rt: Mutex::new(Some(Arc::new(rt))),
            env: Mutex::new(None),
            tasks: Mutex::new(vec![]),
            load_running: AtomicBool::new(false),
            faults: chaos::Faults::default(),
            remedies: remedy::Remedies::default(),
            since: SinceTracker::default(),
        })
    }

    fn setup(&self) -> PluginResult<()> {
        let rt = self.rt()?;
        if lock(&self.env).is_some() {
            return Ok(());
        }
        let env = Env::start(&self.shared.cfg, &self.library_dir)?;
        let urls = env.node_urls();
        let redis_url = env.redis_url();
        let conns = {
            let _guard = rt.enter();
            redis_conns(&redis_url)?
        };
        if let Ok(mut n) = self.shared.nodes.write() {
            *n = urls.clone();
        }
        if let Ok(mut r) = self.shared.redis_url.write() {
            *r = redis_url.clone();
        }
        if let Ok(mut r) = self.shared.redis.write() {
            *r = Some(conns);
        }
        let msg = match &env {
            Env::Local(l) => format!(
                "local cluster up ({} mode): redis {redis_url}, nodes {}; logs in {}",
                self.shared.cfg.mode.as_str(),
                urls.join(" "),
                l.log_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            ),
            Env::Compose { .. } => format!(
                "using the compose cluster: redis {redis_url}, nodes {}",
                urls.join(" ")
            ),
        };
        *lock(&self.env) = Some(Arc::new(env));
        rt.block_on(health::poll_once(&self.shared));
        self.spawn_task(&rt, health::poll_loop(Arc::clone(&self.shared)));
        self.shared.event(Level::Info, msg);
        Ok(())
    }

    fn teardown(&self) -> PluginResult<()> {
        let recovered = self.recover_all();
        let put_back = self.put_back_remedies();
        let recovered = recovered.and(put_back);
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        self.load_running.store(false, Ordering::SeqCst);
        if let Some(env) = lock(&self.env).take() {
            env.stop();
        }
        if let Some(rt) = lock(&self.rt).take() {
            if let Ok(rt) = Arc::try_unwrap(rt) {
                rt.shutdown_timeout(Duration::from_secs(2));
            }
        }
        recovered
    }

    fn health(&self) -> PluginResult<HealthSnapshot> {
        self.shared.unwatch_finished_bursts();
        // Invariant changes are not repeated as events: the host logs them itself.
        let mut snap = health::snapshot(&self.shared);
        self.since.stamp(&mut snap.invariants);
        snap.events = self.shared.recent_events();
        Ok(snap)
    }

    fn inject(&self, action: &str, params: &Params) -> PluginResult<ActiveFault> {
        let rt = self.rt()?;
        let env = self.env()?;
        chaos::inject(self, &rt, &env, action, params)
    }

    fn recover(&self, fault_id: &str) -> PluginResult<()> {
        let rt = self.rt()?;
        let env = self.env()?;
        chaos::recover(self, &rt, &env, fault_id)
    }

    fn run_step(&self, step: &str) -> PluginResult<String> {
        let cfg = &self.shared.cfg;
        match step {
            describe::STEP_SET_LIMIT => self.set_limit(),
            describe::STEP_PROBE_BURST => remedy::probe_burst(&self.shared, &*self.rt()?),
            describe::STEP_ENV_UP | describe::STEP_ENV_DOWN if cfg.env != config::EnvKind::Compose => {
                Err(PluginError::Unsupported(format!(
                    "step `{step}` manages the compose environment (env=compose); the local environment starts and stops with the demo"
                )))
            }
            describe::STEP_ENV_UP => {
                compose_env::up(&compose_env::project(cfg, &self.library_dir)?, cfg, &self.shared.log)
            }
            describe::STEP_ENV_DOWN => compose_env::down(&compose_env::project(cfg, &self.library_dir)?, &self.shared.log),
            other => Err(PluginError::Unsupported(format!(
                "step `{other}`; this subject offers: {}, {}, {}, {}",
                describe::STEP_SET_LIMIT,
                describe::STEP_PROBE_BURST,
                describe::STEP_ENV_UP,
                describe::STEP_ENV_DOWN
            ))),
        }
    }

    fn recover_leftover(&self, undo: &str) -> PluginResult<()> {
        let rt = self.rt()?;
        chaos::recover_leftover(&rt, undo)?;
        // Only this instance's own remedies changed what it observes.
        if let Ok(undo) = serde_json::from_str::<chaos::Undo>(undo) {
            if self.remedies.done(&undo) {
                remedy::forget(&self.shared, &rt, &undo);
            }
        }
        Ok(())
    }

    fn remediate(
        &self,
        remedy: &str,
        _params: &Params,
        target: &str,
    ) -> PluginResult<RemedyOutcome> {
        let rt = self.rt()?;
        let env = self.env()?;
        remedy::remediate(self, &rt, &env, remedy, target)
    }
}

impl RateLimiterSubject {
    /// Puts back, newest first, what the remedies changed and the host has not
    /// put back through `recover_leftover` already.
    fn put_back_remedies(&self) -> PluginResult<()> {
        let Ok(rt) = self.rt() else {
            return Ok(());
        };
        let mut errors = Vec::new();
        for undo in self.remedies.take_undos().iter().rev() {
            if let Err(e) = chaos::undo_fault(&rt, undo) {
                errors.push(e.to_string());
            }
            remedy::forget(&self.shared, &rt, undo);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PluginError::failed(format!(
                "some remedies could not be put back: {}",
                errors.join("; ")
            )))
        }
    }

    fn recover_all(&self) -> PluginResult<()> {
        let (Ok(rt), Ok(env)) = (self.rt(), self.env()) else {
            return Ok(());
        };
        let mut errors = Vec::new();
        for id in self.faults.ids() {
            if let Err(e) = chaos::recover(self, &rt, &env, &id) {
                errors.push(e.to_string());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PluginError::failed(format!(
                "some faults could not be recovered: {}",
                errors.join("; ")
            )))
        }
    }
}

impl Drop for RateLimiterSubject {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}
