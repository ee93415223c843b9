//! The TiKV subject: health from PD's HTTP API, a store killed with SIGKILL
//! through the Docker API, and a go-ycsb load. See docs/tikv.md.

// The host never panics on a plugin's behalf, and a plugin never panics on its own: no unwrap outside tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod assess;
pub mod chaos;
pub mod config;
pub mod env;
#[cfg(feature = "fixture")]
pub mod fixture;
pub mod load;
pub mod metrics;
pub mod pd;
pub mod pd_link;
pub mod prom;
pub mod remedy;
pub mod units;
pub mod ycsb;

use crate::assess::{assess, store_node_id, Bounds, LoadView, Observation};
use crate::chaos::{StoreKillUndo, STORE_KILL};
use crate::config::{Env, TikvConfig};
use crate::env::Started;
use crate::load::{Load, LoadSource, START_LOAD, STOP_LOAD};
use crate::metrics::MetricsReader;
use crate::pd::{PdClient, StoresInfo};
use crate::pd_link::{PdLink, PdPartitionUndo, PD_PARTITION};
use docker_chaos::Engine;
use plugin_api::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

plugin_api::export_subject!(TikvSubject);

/// Per-request timeout towards PD and metrics: a slow PD must not stall the health poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long recovery may take: restart plus PD seeing the store's heartbeat again
/// (TiKV heartbeats every 10 s). Below the host's 60 s so the plugin's own error is shown.
const RECOVER_TIMEOUT: Duration = Duration::from_secs(50);

pub struct TikvSubject {
    cfg: TikvConfig,
    rt: tokio::runtime::Runtime,
    pd: PdClient,
    metrics: MetricsReader,
    engine: Mutex<Option<Engine>>,
    started: Mutex<Started>,
    load: Mutex<Load>,
    faults: Mutex<Vec<(ActiveFault, StoreKillUndo)>>,
    /// The plugin's route to PD (`fault_proxy=on`), and the cuts on it (fault ids).
    pd_link: Option<PdLink>,
    pd_cuts: Mutex<Vec<String>>,
    next_fault: AtomicU64,
    since: SinceTracker,
    last_stores: Mutex<Option<StoresInfo>>,
    last_members: Mutex<Option<Vec<pd::MemberHealth>>>,
    last_states: Mutex<BTreeMap<u64, String>>,
    bounds: Bounds,
    log: Logger,
}

fn lock<T>(m: &Mutex<T>) -> PluginResult<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| PluginError::failed("internal state poisoned by an earlier panic"))
}

impl TikvSubject {
    fn engine(&self) -> PluginResult<Engine> {
        self.rt.block_on(self.engine_async())
    }

    /// The Docker engine, connected on first use (never with docker=off).
    async fn engine_async(&self) -> PluginResult<Engine> {
        if !self.cfg.docker {
            return Err(PluginError::Unsupported(
                "chaos with docker=off (fixture-only run); set docker=on to kill store containers"
                    .into(),
            ));
        }
        if let Some(e) = lock(&self.engine)?.as_ref() {
            return Ok(e.clone());
        }
        let engine = Engine::connect()
            .await
            .map_err(|e| PluginError::Missing(e.to_string()))?;
        *lock(&self.engine)? = Some(engine.clone());
        Ok(engine)
    }

    async fn load_view(&self, source: LoadSource) -> Option<LoadView> {
        if let Some(view) = self.metrics.read().await {
            return Some(view);
        }
        let engine = match source {
            LoadSource::Compose => self.engine_async().await.ok(),
            _ => None,
        };
        let throughput = load::throughput(&self.cfg, engine.as_ref(), source).await?;
        Some(LoadView {
            qps: Some(throughput.ops_per_s),
            p99_ms: throughput.p99_ms,
            source: "go-ycsb".into(),
        })
    }

    /// Events for stores whose PD state changed since the previous poll.
    fn state_events(&self, stores: &StoresInfo, at_ms: u64) -> Vec<Event> {
        let Ok(mut last) = self.last_states.lock() else {
            return Vec::new();
        };
        let mut events = Vec::new();
        for s in &stores.stores {
            let before = last.insert(s.store.id, s.store.state_name.clone());
            if before.as_deref().is_some_and(|b| b != s.store.state_name) {
                events.push(Event {
                    at_ms,
                    level: if assess::is_down(&s.store.state_name) {
                        Level::Warn
                    } else {
                        Level::Info
                    },
                    message: format!(
                        "PD: {} ({}) {} -> {}",
                        store_node_id(s.store.id),
                        s.store.address,
                        before.unwrap_or_default(),
                        s.store.state_name
                    ),
                    component: None,
                });
            }
        }
        events
    }

    /// `pd-partition`: the plugin's route to PD holds every byte both ways.
    fn cut_pd(&self) -> PluginResult<ActiveFault> {
        let link = self.pd_link.as_ref().ok_or_else(|| {
            PluginError::Unsupported(format!(
                "{PD_PARTITION} needs the plugin's route to PD through the fault proxy: set fault_proxy=on with an http:// pd= (now fault_proxy={}, pd={})",
                if self.cfg.fault_proxy { "on" } else { "off" },
                self.cfg.pd
            ))
        })?;
        if let Some(open) = lock(&self.pd_cuts)?.first() {
            return Err(PluginError::invalid(format!(
                "PD is already cut off from the plugin ({open})"
            )));
        }
        let fault_id = format!(
            "{PD_PARTITION}-{}",
            self.next_fault.fetch_add(1, Ordering::SeqCst)
        );
        link.cut(&fault_id)?;
        let undo = PdPartitionUndo {
            action: PD_PARTITION.into(),
            fault: fault_id.clone(),
        };
        let fault = ActiveFault {
            fault_id: fault_id.clone(),
            action_id: PD_PARTITION.into(),
            targets: vec!["pd".into(), self.cfg.pd.clone()],
            summary: format!(
                "the plugin's route to PD ({}) holds every byte both ways: PD and the stores go on, the observer loses PD",
                self.cfg.pd
            ),
            started_ms: now_ms(),
            expires_ms: None,
            undo: serde_json::to_string(&undo).map_err(PluginError::failed)?,
        };
        self.log.warn(format!("injected: {}", fault.summary));
        lock(&self.pd_cuts)?.push(fault_id);
        Ok(fault)
    }

    /// The faults on the plugin's route to PD (empty without one).
    pub fn pd_route_faults(&self) -> Vec<String> {
        self.pd_link
            .as_ref()
            .map(PdLink::faults)
            .unwrap_or_default()
    }

    fn recover_undo(&self, undo: &StoreKillUndo) -> PluginResult<()> {
        let engine = self.engine()?;
        self.rt
            .block_on(chaos::recover(&engine, &self.pd, undo, RECOVER_TIMEOUT))
    }
}

impl Subject for TikvSubject {
    fn describe() -> SubjectDescription {
        describe()
    }

    fn create(ctx: InstanceContext) -> PluginResult<Self> {
        let cfg = TikvConfig::from_config(&ctx.config, &ctx.library_dir)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("subject-tikv")
            .enable_all()
            .build()
            .map_err(|e| PluginError::failed(format!("cannot start the plugin's runtime: {e}")))?;
        // TLS to PD would not verify against a loopback route: https goes direct.
        let pd_link = if cfg.fault_proxy && cfg.pd.starts_with("http://") {
            Some(PdLink::start(&rt, &cfg.pd)?)
        } else {
            None
        };
        let mut pd = PdClient::new(&cfg.pd, REQUEST_TIMEOUT).map_err(PluginError::invalid)?;
        if let Some(link) = &pd_link {
            pd = pd.through(link.url());
        }
        let metrics = MetricsReader::new(cfg.metrics.clone(), REQUEST_TIMEOUT)
            .map_err(PluginError::failed)?;
        Ok(TikvSubject {
            cfg,
            rt,
            pd,
            metrics,
            engine: Mutex::new(None),
            started: Mutex::new(Started::Nothing),
            load: Mutex::new(Load::Idle),
            faults: Mutex::new(Vec::new()),
            pd_link,
            pd_cuts: Mutex::new(Vec::new()),
            next_fault: AtomicU64::new(1),
            since: SinceTracker::default(),
            last_stores: Mutex::new(None),
            last_members: Mutex::new(None),
            last_states: Mutex::new(BTreeMap::new()),
            bounds: Bounds::default(),
            log: ctx.log,
        })
    }

    fn setup(&self) -> PluginResult<()> {
        let started = self
            .rt
            .block_on(env::setup(&self.cfg, &self.pd, &self.log))?;
        *lock(&self.started)? = started;
        Ok(())
    }

    fn teardown(&self) -> PluginResult<()> {
        // The way to PD first: recovering a store waits for PD to see it.
        let mut ids: Vec<String> = lock(&self.pd_cuts)?.clone();
        ids.extend(lock(&self.faults)?.iter().map(|f| f.0.fault_id.clone()));
        let mut errors = Vec::new();
        for id in ids {
            if let Err(e) = self.recover(&id) {
                errors.push(e.to_string());
            }
        }
        if let Err(e) = load::stop(&self.cfg, &mut *lock(&self.load)?) {
            errors.push(e.to_string());
        }
        env::stop(&self.cfg, &mut *lock(&self.started)?, &self.log);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PluginError::failed(errors.join("; ")))
        }
    }

    fn health(&self) -> PluginResult<HealthSnapshot> {
        let source = lock(&self.load)?.source();
        let (stores, members, regions, load) = self.rt.block_on(async {
            tokio::join!(
                self.pd.stores(),
                self.pd.health(),
                self.pd.regions(),
                tokio::time::timeout(REQUEST_TIMEOUT, self.load_view(source))
            )
        });
        let at_ms = now_ms();
        let events = match &stores {
            Ok(s) => self.state_events(s, at_ms),
            Err(_) => Vec::new(),
        };
        let last_stores = {
            let mut last = lock(&self.last_stores)?;
            if let Ok(s) = &stores {
                *last = Some(s.clone());
            }
            last.clone()
        };
        let last_members = {
            let mut last = lock(&self.last_members)?;
            if let Ok(m) = &members {
                if !m.is_empty() {
                    *last = Some(m.clone());
                }
            }
            last.clone()
        };
        let obs = Observation {
            at_ms,
            // PD's own address, not the route's: that is the component named.
            pd_url: self.cfg.pd.clone(),
            stores: stores.map_err(|e| e.to_string()),
            last_stores,
            last_members,
            members: members.map_err(|e| e.to_string()),
            regions: regions.map_err(|e| e.to_string()),
            load: load.ok().flatten(),
        };
        let mut a = assess(&obs, &self.bounds);
        self.since.stamp(&mut a.invariants);
        Ok(HealthSnapshot {
            at_ms,
            nodes: a.nodes,
            metrics: a.metrics,
            invariants: a.invariants,
            events,
        })
    }

    fn inject(&self, action: &str, params: &Params) -> PluginResult<ActiveFault> {
        if action == PD_PARTITION {
            return self.cut_pd();
        }
        if action != STORE_KILL {
            return Err(PluginError::invalid(format!(
                "unknown chaos action `{action}`; this subject offers: {STORE_KILL}, {PD_PARTITION}"
            )));
        }
        if self.cfg.env == Env::Local {
            return Err(PluginError::Unsupported(
                "store-kill in env=local: tiup playground runs the stores as processes, not containers; use env=compose"
                    .into(),
            ));
        }
        let engine = self.engine()?;
        let wanted = params.u64("store").unwrap_or(0);
        let (store, container, undo) = self.rt.block_on(async {
            let (store, container) =
                chaos::pick(&self.pd, &engine, &self.cfg.project, wanted).await?;
            let undo = chaos::kill(&engine, &store, &container).await?;
            Ok::<_, PluginError>((store, container, undo))
        })?;
        let node = store_node_id(store.store.id);
        let fault = ActiveFault {
            fault_id: format!(
                "{STORE_KILL}-{}",
                self.next_fault.fetch_add(1, Ordering::SeqCst)
            ),
            action_id: STORE_KILL.into(),
            targets: vec![
                node.clone(),
                container.name.clone(),
                store.store.address.clone(),
            ],
            summary: format!(
                "SIGKILL {node} ({}) in container {}",
                store.store.address, container.name
            ),
            started_ms: now_ms(),
            expires_ms: None,
            undo: serde_json::to_string(&undo).map_err(PluginError::failed)?,
        };
        self.log.warn(format!("injected: {}", fault.summary));
        lock(&self.faults)?.push((fault.clone(), undo));
        Ok(fault)
    }

    fn recover(&self, fault_id: &str) -> PluginResult<()> {
        if lock(&self.pd_cuts)?.iter().any(|f| f == fault_id) {
            if let Some(link) = &self.pd_link {
                link.heal(fault_id)?;
            }
            lock(&self.pd_cuts)?.retain(|f| f != fault_id);
            self.log
                .info(format!("recovered: {fault_id}, PD is in reach again"));
            return Ok(());
        }
        let Some(undo) = lock(&self.faults)?
            .iter()
            .find(|f| f.0.fault_id == fault_id)
            .map(|f| f.1.clone())
        else {
            return Ok(());
        };
        self.recover_undo(&undo)?;
        lock(&self.faults)?.retain(|f| f.0.fault_id != fault_id);
        self.log.info(format!(
            "recovered: {} is Up again",
            store_node_id(undo.store_id)
        ));
        Ok(())
    }

    fn run_step(&self, step: &str) -> PluginResult<String> {
        match step {
            START_LOAD => load::start(&self.cfg, &mut *lock(&self.load)?),
            STOP_LOAD => load::stop(&self.cfg, &mut *lock(&self.load)?),
            env::ENV_UP => self
                .rt
                .block_on(env::env_up(&self.cfg, &self.pd, &self.log)),
            env::ENV_DOWN => env::env_down(&self.cfg, &self.log),
            other => Err(PluginError::Unsupported(format!(
                "step `{other}`; this subject runs {START_LOAD}, {STOP_LOAD}, {} and {}",
                env::ENV_UP,
                env::ENV_DOWN
            ))),
        }
    }

    fn remediate(
        &self,
        remedy: &str,
        _params: &Params,
        target: &str,
    ) -> PluginResult<RemedyOutcome> {
        if remedy != remedy::RESTART_STORE {
            return Err(PluginError::invalid(format!(
                "unknown remedy `{remedy}`; this subject offers: {}",
                remedy::RESTART_STORE
            )));
        }
        if self.cfg.env == Env::Local {
            return Err(PluginError::Unsupported(
                "restart-store in env=local: tiup playground runs the stores as processes, not containers; use env=compose"
                    .into(),
            ));
        }
        let engine = self.engine()?;
        let summary = self.rt.block_on(remedy::restart_store(
            &self.pd,
            &engine,
            &self.cfg.project,
            target,
        ))?;
        self.log.info(format!("remedy {remedy}: {summary}"));
        Ok(RemedyOutcome {
            summary,
            undo: String::new(),
        })
    }

    fn recover_leftover(&self, undo: &str) -> PluginResult<()> {
        // The route to PD lived in the host process that cut it, and ended with it.
        if serde_json::from_str::<PdPartitionUndo>(undo).is_ok_and(|u| u.action == PD_PARTITION) {
            return Ok(());
        }
        let undo: StoreKillUndo = serde_json::from_str(undo).map_err(|e| {
            PluginError::invalid(format!(
                "undo record is not a store-kill record (nor a pd-partition one): {e}"
            ))
        })?;
        self.recover_undo(&undo)
    }
}

impl Drop for TikvSubject {
    fn drop(&mut self) {
        // A local go-ycsb must not outlive the instance; compose services are left to teardown.
        if let Ok(mut load) = self.load.lock() {
            if let Load::Local { child, .. } = &mut *load {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn describe() -> SubjectDescription {
    SubjectDescription {
        info: SubjectInfo {
            id: "tikv".into(),
            name: "TiKV cluster".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A TiKV cluster (1 PD, 3 TiKV stores) under YCSB load; a store is killed with SIGKILL \
                          and PD's view of the cluster shows it go down and come back."
                .into(),
            api_version: String::new(),
            environments: vec!["compose".into(), "local".into()],
            // The same list as `[package.metadata.demo-host]` (a test checks).
            prerequisites: vec![
                Prerequisite {
                    binary: "docker-compose".into(),
                    why: "env=compose starts PD and the stores as a Compose project when no PD answers".into(),
                    environments: vec!["compose".into()],
                    optional: true,
                },
                Prerequisite {
                    binary: "tiup".into(),
                    why: "env=local starts `tiup playground` when no PD answers (install: see docs/tikv.md)".into(),
                    environments: vec!["local".into()],
                    optional: true,
                },
            ],
        },
        chapters: chapters(),
        chaos_actions: vec![ChaosAction {
            id: STORE_KILL.into(),
            name: "Kill a TiKV store".into(),
            kind: ChaosKind::ContainerKill,
            description: "SIGKILL the container of a TiKV store that PD reports Up (chosen among the containers \
                          that actually run, matched through the store's address). Recovery restarts it and \
                          waits until PD reports it Up."
                .into(),
            params: vec![ParamSpec {
                name: "store".into(),
                description: "PD store id to kill; 0 picks a random Up store".into(),
                kind: ParamKind::Integer,
                default: ParamValue::Int(0),
                min: Some(0.0),
                max: Some(16.0),
                unit: String::new(),
            }],
            recovery: Recovery::ExplicitRecover,
        },
        ChaosAction {
            id: PD_PARTITION.into(),
            name: "Cut the observer off from PD".into(),
            kind: ChaosKind::Custom("network partition".into()),
            description: "A blackhole on the plugin's own route to PD (an in-process fault proxy): every byte                           is held both ways and no connection is closed, as behind a dead link between a                           monitoring host and PD. PD and the stores go on; PD's API times out for the observer.                           Recovery removes it from the open connections at once."
                .into(),
            params: vec![],
            recovery: Recovery::ExplicitRecover,
        }],
        diagnosis: diagnosis_context(),
        remedies: remedy::remedies(),
    }
}

fn chapters() -> Vec<Chapter> {
    vec![
        Chapter::narrate(
            "Welcome",
            "A TiKV cluster: one PD (the placement driver, which keeps the cluster map and schedules Raft \
             leaders) and three TiKV stores, each holding a replica of every region.",
        ),
        Chapter::narrate(
            "Cluster health",
            "PD's API reports every store Up, with its leader and region counts and disk space. \
             Leaders are spread evenly and every region has a leader.",
        ),
        Chapter::narrate(
            "Start the load",
            "go-ycsb runs workload A against the cluster: half reads, half updates, zipfian keys. \
             Watch throughput and p99 latency.",
        )
        .on_enter(OnEnter::Step { id: START_LOAD.into() })
        .blocking(),
        Chapter::narrate(
            "Kill a store",
            "One TiKV store, picked at random among those running, gets SIGKILL: no shutdown, like a power cut.",
        )
        .on_enter(OnEnter::Chaos {
            action: STORE_KILL.into(),
            params: vec![("store".into(), ParamValue::Int(0))],
        })
        .blocking(),
        Chapter::narrate(
            "Detection",
            "PD stops receiving the store's heartbeats and marks it Disconnected (Down only after \
             max-store-down-time). Its regions elect new leaders on the surviving stores.",
        )
        .expect_violation(assess::STORE_DOWN),
        Chapter::narrate("Diagnosis", "What does the diagnoser make of PD's view of the cluster?")
            .on_enter(OnEnter::Diagnose)
            .expect_diagnosis(assess::STORE_DOWN, Component::ChaosTarget)
            .blocking(),
        Chapter::narrate(
            "Recovery",
            "The store's container is started again; PD sees its heartbeat and reports it Up.",
        )
        .on_enter(OnEnter::Recover)
        .blocking(),
        Chapter::narrate(
            "Done",
            "The cluster is whole again. PD will move leaders back to the restarted store over the next minutes.",
        )
        .on_enter(OnEnter::Step { id: STOP_LOAD.into() }),
    ]
}

fn glossary(term: &str, meaning: &str, class: Option<AnomalyClass>) -> GlossaryEntry {
    GlossaryEntry {
        term: term.into(),
        meaning: meaning.into(),
        class,
    }
}

fn diagnosis_context() -> DiagnosisContext {
    let component = |name: &str, kind: ComponentKind, description: &str| ComponentInfo {
        name: name.into(),
        kind,
        description: description.into(),
        depends_on: Vec::new(),
    };
    DiagnosisContext {
        system: "TiKV, a distributed transactional key-value store. PD (placement driver) keeps the cluster map, \
                 receives heartbeats from every store and schedules Raft leaders; each TiKV store holds Raft \
                 replicas of regions (three replicas per region)."
            .into(),
        components: vec![
            component("pd", ComponentKind::Dependency, "placement driver: cluster metadata, store heartbeats, leader scheduling"),
            ComponentInfo {
                depends_on: vec!["pd".into()],
                ..component("store-<id>", ComponentKind::Member, "a TiKV store holding region replicas; named by PD store id")
            },
            component("go-ycsb", ComponentKind::Client, "load generator: YCSB workload A against TiKV"),
        ],
        glossary: vec![
            glossary(
                "store down",
                "PD lost a store's heartbeats: its state is Disconnected (after ~20 s) or Down (after max-store-down-time)",
                Some(AnomalyClass::NodeDown),
            ),
            glossary(
                "latency spike",
                "p99 request latency beyond its bound, e.g. while regions re-elect leaders",
                Some(AnomalyClass::LatencySpike),
            ),
            glossary(
                "leader imbalance",
                "Raft leaders (or regions) unevenly spread over the Up stores",
                Some(AnomalyClass::Imbalance),
            ),
            glossary("disk pressure", "a store's disk is fuller than its bound (70 %)", Some(AnomalyClass::CapacityExhausted)),
            glossary("pd unavailable", "PD does not answer or reports an unhealthy member", Some(AnomalyClass::DependencyDown)),
            glossary("region", "a contiguous key range replicated by Raft to three stores", None),
            glossary("leader", "the replica of a region that serves reads and writes", None),
        ],
    }
}
