//! A minimal subject plugin: three in-process replicas of a counter that a
//! writer thread keeps incrementing. It needs no external service, so it is the
//! template for new plugins and the subject of the host's own tests.
//!
//! Faults are real within the model: a partitioned replica stops receiving
//! writes (its value falls behind: state divergence), a crashed replica stops
//! answering (node down).

// The host never panics on a plugin's behalf, and a plugin never panics on its own: no unwrap outside tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

use plugin_api::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

plugin_api::export_subject!(ExampleSubject);

/// Replicas may lag the writer by this much before "replicas agree" is violated.
const TOLERANCE: u64 = 3;
const WRITE_INTERVAL: Duration = Duration::from_millis(20);
/// Most replicas `nodes=` accepts.
const MAX_REPLICAS: u32 = 4096;

#[derive(Debug, Clone)]
struct Replica {
    id: String,
    up: bool,
    /// Until when (unix ms) the replica receives no writes.
    partitioned_until: Option<u64>,
    value: u64,
}

struct Shared {
    replicas: Mutex<Vec<Replica>>,
    acknowledged: AtomicU64,
    stop: AtomicBool,
    faults: Mutex<Vec<ActiveFault>>,
    next_fault: AtomicU64,
    log: Logger,
}

pub struct ExampleSubject {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    since: SinceTracker,
    test_hooks: bool,
    /// Test hook (`test_hooks=true,sticky_partition=true`): recovering a
    /// partition leaves it in effect until it expires, so the subject does not
    /// settle after a trial (the host's campaign rebuild test); a new setup heals it.
    sticky_partition: bool,
}

impl Subject for ExampleSubject {
    fn describe() -> SubjectDescription {
        let version = match option_env!("EXAMPLE_PLUGIN_BUILD_TAG") {
            Some(tag) => format!("{}+{tag}", env!("CARGO_PKG_VERSION")),
            None => env!("CARGO_PKG_VERSION").to_string(),
        };
        SubjectDescription {
            info: SubjectInfo {
                id: "example".into(),
                name: "Example replicated counter".into(),
                version,
                description:
                    "Three in-process replicas of a counter; a template for plugin authors.".into(),
                api_version: String::new(),
                environments: vec!["inprocess".into()],
                prerequisites: Vec::new(),
            },
            chapters: vec![
                Chapter::narrate(
                    "Welcome",
                    "Three replicas follow one writer. Watch them agree.",
                ),
                // Longer than detection, diagnosis and a fix take: the
                // recovery chapter heals it, so a fix is judged while it lasts.
                Chapter::narrate(
                    "Partition a replica",
                    "replica-2 stops receiving writes for a while.",
                )
                .on_enter(OnEnter::Chaos {
                    action: "partition".into(),
                    params: vec![("duration_ms".into(), ParamValue::Int(20_000))],
                })
                .blocking(),
                Chapter::narrate("Detection", "The replicas no longer agree.")
                    .expect_violation("replicas agree")
                    .auto_advance(200),
                Chapter::narrate("Diagnosis", "What does the diagnoser make of it?")
                    .on_enter(OnEnter::Diagnose)
                    .expect_diagnosis("replica divergence", Component::ChaosTarget)
                    .blocking(),
                Chapter::narrate("Recovery", "Heal the partition; the replica catches up.")
                    .on_enter(OnEnter::Recover)
                    .blocking()
                    .auto_advance(200),
                Chapter::narrate("Done", "That is the whole demo."),
            ],
            chaos_actions: vec![
                ChaosAction {
                    id: "partition".into(),
                    name: "Partition a replica".into(),
                    kind: ChaosKind::Custom("partition".into()),
                    description:
                        "replica-2 receives no writes for the given time, then catches up.".into(),
                    params: vec![duration_param()],
                    recovery: Recovery::SelfRecovering,
                },
                ChaosAction {
                    id: "crash".into(),
                    name: "Crash a replica".into(),
                    kind: ChaosKind::ProcessKill,
                    description: "replica-3 stops answering until recovered.".into(),
                    params: vec![],
                    recovery: Recovery::ExplicitRecover,
                },
            ],
            diagnosis: DiagnosisContext {
                system: "A counter replicated to three replicas by a single writer.".into(),
                components: (1..=3)
                    .map(|i| ComponentInfo {
                        name: format!("replica-{i}"),
                        kind: ComponentKind::Member,
                        description: "a replica: holds a copy of the counter".into(),
                        depends_on: Vec::new(),
                    })
                    .collect(),
                glossary: vec![
                    GlossaryEntry {
                        term: "replica divergence".into(),
                        meaning: "a replica's copy of the counter falls behind the others".into(),
                        class: Some(AnomalyClass::StateDivergence),
                    },
                    GlossaryEntry {
                        term: "replica crash".into(),
                        meaning: "a replica stopped answering".into(),
                        class: Some(AnomalyClass::NodeDown),
                    },
                ],
            },
            remedies: vec![
                Remedy {
                    id: "resync-replica".into(),
                    name: "Resync the replica".into(),
                    description: "Open a fresh replication stream to the lagging replica and copy \
                                  the writes it missed, as an operator would rebuild a follower."
                        .into(),
                    addresses: vec!["replica divergence".into()],
                    params: vec![],
                    target: RemedyTarget::Component,
                    risk: Risk::Low,
                    undo: String::new(),
                    verify_within_ms: 2_000,
                    probe_step: None,
                },
                Remedy {
                    id: "restart-replica".into(),
                    name: "Restart the replica".into(),
                    description: "Restart the replica that stopped answering; it rejoins with \
                                  the writer's current value."
                        .into(),
                    addresses: vec!["replica crash".into()],
                    params: vec![],
                    target: RemedyTarget::Component,
                    risk: Risk::Low,
                    undo: String::new(),
                    verify_within_ms: 2_000,
                    probe_step: None,
                },
            ],
        }
    }

    fn create(ctx: InstanceContext) -> PluginResult<Self> {
        ctx.config
            .reject_unknown(&["env", "test_hooks", "nodes", "sticky_partition"])?;
        if let Some(env) = ctx.config.get("env") {
            if env != "inprocess" {
                return Err(PluginError::invalid(format!(
                    "environment `{env}` is not offered; this plugin runs `inprocess` only"
                )));
            }
        }
        // `nodes=N` plays the same demo on a large cluster (the host's scale tests).
        let count: u32 = ctx.config.parse_or("nodes", 3)?;
        if !(3..=MAX_REPLICAS).contains(&count) {
            return Err(PluginError::invalid(format!(
                "nodes={count}: the example runs 3 to {MAX_REPLICAS} replicas"
            )));
        }
        let replicas = (1..=count)
            .map(|i| Replica {
                id: format!("replica-{i}"),
                up: true,
                partitioned_until: None,
                value: 0,
            })
            .collect();
        Ok(ExampleSubject {
            shared: Arc::new(Shared {
                replicas: Mutex::new(replicas),
                acknowledged: AtomicU64::new(0),
                stop: AtomicBool::new(false),
                faults: Mutex::new(Vec::new()),
                next_fault: AtomicU64::new(1),
                log: ctx.log,
            }),
            writer: Mutex::new(None),
            since: SinceTracker::default(),
            test_hooks: ctx.config.parse_or("test_hooks", false)?,
            sticky_partition: ctx.config.parse_or("test_hooks", false)?
                && ctx.config.parse_or("sticky_partition", false)?,
        })
    }

    fn setup(&self) -> PluginResult<()> {
        let mut writer = self.writer.lock().map_err(PluginError::failed)?;
        if writer.is_none() {
            // A fresh start: no replica is left partitioned by an earlier run.
            let acked = self.shared.acknowledged.load(Ordering::SeqCst);
            for r in lock(&self.shared.replicas)?.iter_mut() {
                r.partitioned_until = None;
                r.value = acked;
            }
            self.shared.stop.store(false, Ordering::SeqCst);
            let shared = Arc::clone(&self.shared);
            *writer = Some(std::thread::spawn(move || write_loop(&shared)));
            self.shared.log.info("writer started");
        }
        Ok(())
    }

    fn teardown(&self) -> PluginResult<()> {
        let ids: Vec<String> = lock(&self.shared.faults)?
            .iter()
            .map(|f| f.fault_id.clone())
            .collect();
        for id in ids {
            self.recover(&id)?;
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.writer.lock().map_err(PluginError::failed)?.take() {
            let _ = handle.join();
        }
        Ok(())
    }

    fn health(&self) -> PluginResult<HealthSnapshot> {
        let now = now_ms();
        let replicas = lock(&self.shared.replicas)?.clone();
        let acked = self.shared.acknowledged.load(Ordering::SeqCst);
        let nodes = replicas
            .iter()
            .map(|r| NodeHealth {
                id: r.id.clone(),
                role: "replica".into(),
                address: format!("inprocess://{}", r.id),
                status: if r.up {
                    NodeStatus::Up
                } else {
                    NodeStatus::Down
                },
                metrics: vec![Metric::new("value", r.value as f64, "")],
                kind: ComponentKind::Member,
                depends_on: Vec::new(),
                // A crashed replica's value is its last one, kept for context.
                stale: !r.up,
            })
            .collect();
        let up: Vec<&Replica> = replicas.iter().filter(|r| r.up).collect();
        let lagging: Vec<&Replica> = up
            .iter()
            .copied()
            .filter(|r| acked - r.value.min(acked) > TOLERANCE)
            .collect();
        let max_lag = up
            .iter()
            .map(|r| acked.saturating_sub(r.value))
            .max()
            .unwrap_or(0);
        let down: Vec<&Replica> = replicas.iter().filter(|r| !r.up).collect();
        let mut invariants = vec![
            Invariant {
                name: "replicas agree".into(),
                status: if lagging.is_empty() {
                    InvariantStatus::Ok
                } else {
                    InvariantStatus::Violated
                },
                detail: if lagging.is_empty() {
                    format!("all answering replicas within {TOLERANCE} of {acked}")
                } else {
                    format!("{} behind the writer by {max_lag}", ids(&lagging))
                },
                since_ms: now,
                class: AnomalyClass::StateDivergence,
                components: lagging.iter().map(|r| r.id.clone()).collect(),
                observed: Some(max_lag as f64),
                bound: Some(TOLERANCE as f64),
                ..Default::default()
            },
            Invariant {
                name: "replicas up".into(),
                status: if down.is_empty() {
                    InvariantStatus::Ok
                } else {
                    InvariantStatus::Violated
                },
                detail: if down.is_empty() {
                    format!("{n} of {n} up", n = replicas.len())
                } else {
                    format!("{} down", ids(&down))
                },
                since_ms: now,
                class: AnomalyClass::NodeDown,
                components: down.iter().map(|r| r.id.clone()).collect(),
                observed: Some(down.len() as f64),
                bound: Some(0.0),
                ..Default::default()
            },
        ];
        self.since.stamp(&mut invariants);
        Ok(HealthSnapshot {
            at_ms: now,
            nodes,
            metrics: vec![
                Metric::new("writes", acked as f64, "ops"),
                Metric::new("max lag", max_lag as f64, "ops"),
            ],
            invariants,
            events: vec![],
        })
    }

    fn inject(&self, action: &str, params: &Params) -> PluginResult<ActiveFault> {
        let now = now_ms();
        let (target, expires_ms) = {
            let mut replicas = lock(&self.shared.replicas)?;
            match action {
                "partition" => {
                    let until = now + params.u64("duration_ms").unwrap_or(1500);
                    replicas[1].partitioned_until = Some(until);
                    (replicas[1].id.clone(), Some(until))
                }
                "crash" => {
                    replicas[2].up = false;
                    (replicas[2].id.clone(), None)
                }
                other => return Err(PluginError::invalid(format!("unknown action `{other}`"))),
            }
        };
        let fault = ActiveFault {
            fault_id: format!(
                "{action}-{}",
                self.shared.next_fault.fetch_add(1, Ordering::SeqCst)
            ),
            action_id: action.into(),
            targets: vec![target.clone()],
            summary: format!("{action} {target}"),
            started_ms: now,
            expires_ms,
            undo: format!("{action}:{target}"),
        };
        self.shared.log.warn(format!("injected {}", fault.summary));
        lock(&self.shared.faults)?.push(fault.clone());
        Ok(fault)
    }

    fn recover(&self, fault_id: &str) -> PluginResult<()> {
        let fault = {
            let mut faults = lock(&self.shared.faults)?;
            match faults.iter().position(|f| f.fault_id == fault_id) {
                Some(i) => faults.remove(i),
                None => return Ok(()),
            }
        };
        self.recover_leftover(&fault.undo)?;
        self.shared.log.info(format!("recovered {}", fault.summary));
        Ok(())
    }

    fn run_step(&self, step: &str) -> PluginResult<String> {
        match step {
            "panic" if self.test_hooks => panic!("example plugin was asked to panic"),
            "hang" if self.test_hooks => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            other => Err(PluginError::Unsupported(format!("step `{other}`"))),
        }
    }

    /// What an operator would do, without knowing a fault was injected: the
    /// partition or the crash stays recorded as active until the host recovers it.
    fn remediate(
        &self,
        remedy: &str,
        _params: &Params,
        target: &str,
    ) -> PluginResult<RemedyOutcome> {
        let acked = self.shared.acknowledged.load(Ordering::SeqCst);
        let mut replicas = lock(&self.shared.replicas)?;
        let replica = replicas
            .iter_mut()
            .find(|r| r.id == target)
            .ok_or_else(|| PluginError::invalid(format!("no replica `{target}` to {remedy}")))?;
        let summary = match remedy {
            "resync-replica" => {
                // A new stream replaces the one that was cut off.
                replica.partitioned_until = None;
                replica.value = acked;
                format!("{target} resynced at write {acked}")
            }
            "restart-replica" => {
                replica.up = true;
                replica.value = acked;
                format!("{target} restarted at write {acked}")
            }
            other => return Err(PluginError::invalid(format!("unknown remedy `{other}`"))),
        };
        self.shared.log.info(&summary);
        Ok(RemedyOutcome {
            summary,
            undo: String::new(),
        })
    }

    fn recover_leftover(&self, undo: &str) -> PluginResult<()> {
        let (action, target) = undo.split_once(':').ok_or_else(|| {
            PluginError::invalid(format!("undo record `{undo}` is not action:target"))
        })?;
        let acked = self.shared.acknowledged.load(Ordering::SeqCst);
        let mut replicas = lock(&self.shared.replicas)?;
        let replica = replicas
            .iter_mut()
            .find(|r| r.id == target)
            .ok_or_else(|| PluginError::invalid(format!("no replica `{target}`")))?;
        match action {
            "partition" if self.sticky_partition => return Ok(()),
            "partition" => replica.partitioned_until = None,
            "crash" => replica.up = true,
            other => {
                return Err(PluginError::invalid(format!(
                    "unknown action `{other}` in undo record"
                )))
            }
        }
        replica.value = acked;
        Ok(())
    }
}

impl Drop for ExampleSubject {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

fn write_loop(shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        let acked = shared.acknowledged.fetch_add(1, Ordering::SeqCst) + 1;
        let now = now_ms();
        if let Ok(mut replicas) = shared.replicas.lock() {
            for r in replicas.iter_mut().filter(|r| r.up) {
                match r.partitioned_until {
                    Some(until) if until > now => {}
                    Some(_) => {
                        r.partitioned_until = None;
                        r.value = acked;
                    }
                    None => r.value = acked,
                }
            }
        }
        std::thread::sleep(WRITE_INTERVAL);
    }
}

fn duration_param() -> ParamSpec {
    ParamSpec {
        name: "duration_ms".into(),
        description: "how long the replica receives no writes".into(),
        kind: ParamKind::DurationMs,
        default: ParamValue::Int(1500),
        min: Some(100.0),
        max: Some(60_000.0),
        unit: "ms".into(),
    }
}

fn ids(replicas: &[&Replica]) -> String {
    replicas
        .iter()
        .map(|r| r.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn lock<T>(m: &Mutex<T>) -> PluginResult<std::sync::MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| PluginError::failed("internal state poisoned by an earlier panic"))
}
