//! A demo-host subject for a real replicated system: a PostgreSQL primary and
//! one streaming replica, started by the plugin on free loopback ports, with a
//! writer inserting rows into the primary.
//!
//! Faults are real: `primary-kill` SIGKILLs the primary's postmaster (the
//! replica stays up, cut off from it); `replica-lag` pauses WAL replay on the
//! replica (`pg_wal_replay_pause()`) while the writer goes on, so the replica
//! falls further behind every second.
//!
//! Written from plugin-api's guide only, as a third party would; it is kept
//! out of the demo-host workspace on purpose.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod cluster;
mod pgwire;

use cluster::{Bins, Cluster, Server, DIR_PREFIX};
use pgwire::Conn;
use plugin_api::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

plugin_api::export_subject!(PostgresSubject);

pub const PRIMARY: &str = "pg-primary";
pub const REPLICA: &str = "pg-replica";
pub const PRIMARY_KILL: &str = "primary-kill";
/// Remedies an operator would apply, proposed by the diagnosis.
pub const RESUME_REPLAY: &str = "resume-replay";
pub const RESTART_SERVER: &str = "restart-server";
pub const REPLICA_LAG: &str = "replica-lag";
/// Invariants (also the names chapters expect to see violated).
pub const SERVERS_UP: &str = "servers up";
pub const REPLICATION_LAG: &str = "replication lag";
/// Glossary terms of the anomalies.
pub const TERM_SERVER_DOWN: &str = "server down";
pub const TERM_LAG: &str = "replication lag";
/// The replica may be this far behind the primary's WAL before "replication lag" is violated.
pub const LAG_BOUND_BYTES: f64 = 512.0 * 1024.0;
const WRITE_INTERVAL: Duration = Duration::from_millis(10);
/// Bytes of text per written row: below the TOAST threshold, so every byte reaches the WAL.
const PAYLOAD_BYTES: usize = 1800;
/// How long health waits on a server before it counts as not answering.
const POLL_TIMEOUT: Duration = Duration::from_millis(400);

fn prerequisites() -> Vec<Prerequisite> {
    [
        ("initdb", "creates the primary's data directory"),
        ("postgres", "the primary and the replica"),
        ("pg_basebackup", "copies the primary to start the replica"),
    ]
    .into_iter()
    .map(|(binary, why)| Prerequisite {
        binary: binary.into(),
        why: why.into(),
        environments: vec!["local".into()],
        optional: false,
    })
    .collect()
}

/// Last readings of one server, kept so a down server shows them as stale.
#[derive(Default, Clone)]
struct Readings {
    metrics: Vec<Metric>,
    /// `pg_current_wal_lsn()` on the primary, `pg_last_wal_replay_lsn()` on the replica.
    lsn: Option<f64>,
}

#[derive(Default)]
struct Monitor {
    primary: Option<Conn>,
    replica: Option<Conn>,
    last_primary: Readings,
    last_replica: Readings,
    /// Whether the replica's WAL receiver streamed at the previous poll (events on change).
    replica_streaming: Option<bool>,
    primary_answering: Option<bool>,
    events: Vec<Event>,
}

struct Shared {
    log: Logger,
    stop: AtomicBool,
    rows: AtomicU64,
    write_errors: AtomicU64,
}

pub struct PostgresSubject {
    shared: Arc<Shared>,
    bin_dir: Option<String>,
    cluster: Mutex<Option<Arc<Cluster>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    monitor: Mutex<Monitor>,
    faults: Mutex<Vec<ActiveFault>>,
    next_fault: AtomicU64,
    since: SinceTracker,
}

impl Subject for PostgresSubject {
    fn describe() -> SubjectDescription {
        SubjectDescription {
            info: SubjectInfo {
                id: "postgres".into(),
                name: "PostgreSQL primary and streaming replica".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: "A real PostgreSQL primary and one streaming replica (the Debian \
                              `postgresql` package), started on loopback ports, with a writer \
                              inserting rows into the primary."
                    .into(),
                api_version: String::new(),
                environments: vec!["local".into()],
                prerequisites: prerequisites(),
            },
            chapters: chapters(),
            chaos_actions: vec![
                ChaosAction {
                    id: REPLICA_LAG.into(),
                    name: "Pause replay on the replica".into(),
                    kind: ChaosKind::Custom("replay pause".into()),
                    description: "SELECT pg_wal_replay_pause() on the replica: it keeps receiving \
                                  WAL but applies none of it until recovered \
                                  (pg_wal_replay_resume())."
                        .into(),
                    params: vec![],
                    recovery: Recovery::ExplicitRecover,
                },
                ChaosAction {
                    id: PRIMARY_KILL.into(),
                    name: "Kill the primary".into(),
                    kind: ChaosKind::ProcessKill,
                    description: "SIGKILL to the primary's postmaster and its backends; recovered \
                                  by starting it again on its port (crash recovery)."
                        .into(),
                    params: vec![],
                    recovery: Recovery::ExplicitRecover,
                },
            ],
            diagnosis: DiagnosisContext {
                system: "A PostgreSQL primary that accepts every write and streams its \
                         write-ahead log (WAL) to one hot-standby replica, which replays it."
                    .into(),
                components: vec![
                    ComponentInfo {
                        name: PRIMARY.into(),
                        kind: ComponentKind::Member,
                        description: "the primary: the only server that accepts writes; streams \
                                      its WAL to the replica"
                            .into(),
                        depends_on: vec![],
                    },
                    ComponentInfo {
                        name: REPLICA.into(),
                        kind: ComponentKind::Member,
                        description: "a hot-standby replica: receives the primary's WAL and \
                                      replays it; answers reads"
                            .into(),
                        depends_on: vec![PRIMARY.into()],
                    },
                ],
                glossary: vec![
                    GlossaryEntry {
                        term: TERM_SERVER_DOWN.into(),
                        meaning: "a PostgreSQL server (the primary or the replica) stopped \
                                  answering"
                            .into(),
                        class: Some(AnomalyClass::NodeDown),
                    },
                    GlossaryEntry {
                        term: TERM_LAG.into(),
                        meaning: "the replica has applied less and less of the WAL the primary \
                                  wrote: reads on it are older and older"
                            .into(),
                        class: Some(AnomalyClass::Lag),
                    },
                    GlossaryEntry {
                        term: "WAL".into(),
                        meaning: "the write-ahead log: every change, in order, as bytes; \
                                  positions in it are LSNs"
                            .into(),
                        class: None,
                    },
                ],
            },
            remedies: vec![
                Remedy {
                    id: RESUME_REPLAY.into(),
                    name: "Resume replay on the replica".into(),
                    description: "SELECT pg_wal_replay_resume() on the lagging replica: it \
                                  applies the WAL it holds and catches up with the primary."
                        .into(),
                    addresses: vec![TERM_LAG.into()],
                    params: vec![],
                    target: RemedyTarget::Component,
                    risk: Risk::Low,
                    undo: String::new(),
                    verify_within_ms: 10_000,
                    probe_step: None,
                },
                Remedy {
                    id: RESTART_SERVER.into(),
                    name: "Restart the server".into(),
                    description: "Start the server that stopped answering again on its port and \
                                  data directory (crash recovery replays its WAL); a replica \
                                  reconnects to it by itself."
                        .into(),
                    addresses: vec![TERM_SERVER_DOWN.into()],
                    params: vec![],
                    target: RemedyTarget::Component,
                    risk: Risk::Medium,
                    undo: String::new(),
                    verify_within_ms: 20_000,
                    probe_step: None,
                },
            ],
        }
    }

    fn create(ctx: InstanceContext) -> PluginResult<Self> {
        ctx.config.reject_unknown(&["env", "bin_dir"])?;
        if let Some(env) = ctx.config.get("env") {
            if env != "local" {
                return Err(PluginError::invalid(format!(
                    "environment `{env}` is not offered; this plugin runs `local` only"
                )));
            }
        }
        Ok(PostgresSubject {
            shared: Arc::new(Shared {
                log: ctx.log,
                stop: AtomicBool::new(false),
                rows: AtomicU64::new(0),
                write_errors: AtomicU64::new(0),
            }),
            bin_dir: ctx.config.get("bin_dir").map(str::to_string),
            cluster: Mutex::new(None),
            writer: Mutex::new(None),
            monitor: Mutex::new(Monitor::default()),
            faults: Mutex::new(Vec::new()),
            next_fault: AtomicU64::new(1),
            since: SinceTracker::default(),
        })
    }

    fn setup(&self) -> PluginResult<()> {
        let mut slot = lock(&self.cluster);
        if slot.is_some() {
            return Ok(());
        }
        let bins = Bins::find(self.bin_dir.as_deref())?;
        self.shared
            .log
            .info(format!("PostgreSQL from {}", bins.postgres.display()));
        let log = self.shared.log.clone();
        let cluster = Arc::new(Cluster::start(bins, &move |line| log.info(line))?);
        self.shared.stop.store(false, Ordering::SeqCst);
        let shared = Arc::clone(&self.shared);
        let port = cluster.primary.port;
        *lock(&self.writer) = Some(
            std::thread::Builder::new()
                .name("pg-writer".into())
                .spawn(move || write_loop(&shared, port))
                .map_err(PluginError::failed)?,
        );
        *slot = Some(cluster);
        Ok(())
    }

    fn teardown(&self) -> PluginResult<()> {
        let ids: Vec<String> = lock(&self.faults)
            .iter()
            .map(|f| f.fault_id.clone())
            .collect();
        let mut first_error = None;
        for id in ids {
            if let Err(e) = self.recover(&id) {
                self.shared.log.warn(format!("recovering {id}: {e}"));
                first_error.get_or_insert(e);
            }
        }
        self.stop_writer();
        *lock(&self.monitor) = Monitor::default();
        // Dropping the last reference stops both servers and removes their directory.
        if let Some(cluster) = lock(&self.cluster).take() {
            let dir = cluster.dir.clone();
            drop(cluster);
            self.shared
                .log
                .info(format!("servers stopped, {} removed", dir.display()));
        }
        first_error.map_or(Ok(()), Err)
    }

    fn health(&self) -> PluginResult<HealthSnapshot> {
        let now = now_ms();
        let Some(cluster) = lock(&self.cluster).clone() else {
            return Ok(HealthSnapshot {
                at_ms: now,
                ..Default::default()
            });
        };
        let mut mon = lock(&self.monitor);
        let primary = poll_primary(&mut mon.primary, &cluster.primary);
        let replica = poll_replica(&mut mon.replica, &cluster.replica);

        let primary_up = primary.is_some();
        if let Some(r) = &primary {
            mon.last_primary = r.clone();
        }
        let replica_streaming = replica.as_ref().map(|(_, streaming)| *streaming);
        if let Some((r, _)) = &replica {
            mon.last_replica = r.clone();
        }

        // Events on changes only, stamped with the time they were seen.
        if mon.primary_answering != Some(primary_up) {
            if mon.primary_answering.is_some() {
                let (level, text) = if primary_up {
                    (Level::Info, "the primary answers again".to_string())
                } else {
                    (
                        Level::Error,
                        format!(
                            "the primary stopped answering on 127.0.0.1:{} ({})",
                            cluster.primary.port,
                            cluster
                                .exited(&cluster.primary)
                                .unwrap_or("no answer".into())
                        ),
                    )
                };
                mon.events.push(Event::new(now, level, text).about(PRIMARY));
            }
            mon.primary_answering = Some(primary_up);
        }
        if let Some(streaming) = replica_streaming {
            if mon.replica_streaming != Some(streaming) {
                if mon.replica_streaming.is_some() {
                    let (level, text) = if streaming {
                        (
                            Level::Info,
                            "the replica streams WAL from the primary again",
                        )
                    } else {
                        (
                            Level::Warn,
                            "the replica's WAL receiver has no connection to the primary",
                        )
                    };
                    mon.events.push(Event::new(now, level, text).about(REPLICA));
                }
                mon.replica_streaming = Some(streaming);
            }
        }
        let keep = mon.events.len().saturating_sub(20);
        mon.events.drain(..keep);

        let lag = match (&primary, &replica) {
            (Some(p), Some((r, _))) => match (p.lsn, r.lsn) {
                (Some(written), Some(replayed)) => Some((written - replayed).max(0.0)),
                _ => None,
            },
            _ => None,
        };
        let mut replica_metrics = mon.last_replica.metrics.clone();
        if let Some(lag) = lag {
            replica_metrics.push(Metric::new("replay lag", lag, "B").worse(Worse::Higher));
        }
        let nodes = vec![
            NodeHealth::new(
                PRIMARY,
                "primary",
                format!("127.0.0.1:{}", cluster.primary.port),
                if primary_up {
                    NodeStatus::Up
                } else {
                    NodeStatus::Down
                },
            )
            .kind(ComponentKind::Member)
            .stale(!primary_up)
            .metrics_from(mon.last_primary.metrics.clone()),
            NodeHealth::new(
                REPLICA,
                "replica",
                format!("127.0.0.1:{}", cluster.replica.port),
                if replica.is_some() {
                    NodeStatus::Up
                } else {
                    NodeStatus::Down
                },
            )
            .kind(ComponentKind::Member)
            .depends_on([PRIMARY])
            .stale(replica.is_none())
            .metrics_from(replica_metrics),
        ];

        let down: Vec<&str> = [(PRIMARY, primary_up), (REPLICA, replica.is_some())]
            .into_iter()
            .filter(|(_, up)| !up)
            .map(|(id, _)| id)
            .collect();
        let mut invariants = vec![
            Invariant {
                name: SERVERS_UP.into(),
                status: if down.is_empty() {
                    InvariantStatus::Ok
                } else {
                    InvariantStatus::Violated
                },
                detail: if down.is_empty() {
                    "the primary and the replica answer queries".into()
                } else {
                    format!("{} not answering", down.join(", "))
                },
                since_ms: now,
                class: AnomalyClass::NodeDown,
                components: down.iter().map(|s| s.to_string()).collect(),
                observed: Some(down.len() as f64),
                bound: Some(0.0),
                bound_is: BoundIs::Ceiling,
            },
            match lag {
                Some(lag) => Invariant {
                    name: REPLICATION_LAG.into(),
                    status: if lag <= LAG_BOUND_BYTES {
                        InvariantStatus::Ok
                    } else {
                        InvariantStatus::Violated
                    },
                    detail: format!(
                        "the replica has replayed all but {} of the primary's WAL (bound {})",
                        bytes(lag),
                        bytes(LAG_BOUND_BYTES)
                    ),
                    since_ms: now,
                    class: AnomalyClass::Lag,
                    components: vec![REPLICA.into()],
                    observed: Some(lag),
                    bound: Some(LAG_BOUND_BYTES),
                    bound_is: BoundIs::Ceiling,
                },
                // Not checked: one side does not answer.
                None => Invariant {
                    name: REPLICATION_LAG.into(),
                    status: InvariantStatus::Unknown,
                    detail: "cannot compare WAL positions: a server does not answer".into(),
                    since_ms: now,
                    class: AnomalyClass::Lag,
                    components: vec![REPLICA.into()],
                    observed: None,
                    bound: Some(LAG_BOUND_BYTES),
                    bound_is: BoundIs::Ceiling,
                },
            },
        ];
        self.since.stamp(&mut invariants);
        let events = mon.events.clone();
        drop(mon);
        Ok(HealthSnapshot {
            at_ms: now,
            nodes,
            metrics: vec![
                Metric::counter(
                    "rows written",
                    self.shared.rows.load(Ordering::SeqCst) as f64,
                    "rows",
                ),
                Metric::counter(
                    "write errors",
                    self.shared.write_errors.load(Ordering::SeqCst) as f64,
                    "errors",
                )
                .worse(Worse::Higher),
            ],
            invariants,
            events,
        })
    }

    fn inject(&self, action: &str, _params: &Params) -> PluginResult<ActiveFault> {
        let cluster = self.cluster()?;
        let target = match action {
            REPLICA_LAG => {
                let mut c = cluster
                    .replica
                    .connect(Duration::from_secs(5))
                    .map_err(PluginError::failed)?;
                c.query("SELECT pg_wal_replay_pause()")
                    .map_err(PluginError::failed)?;
                REPLICA
            }
            PRIMARY_KILL => {
                cluster.kill(&cluster.primary)?;
                PRIMARY
            }
            other => return Err(PluginError::invalid(format!("unknown action `{other}`"))),
        };
        let now = now_ms();
        let fault = ActiveFault {
            fault_id: format!(
                "{action}-{}",
                self.next_fault.fetch_add(1, Ordering::SeqCst)
            ),
            action_id: action.into(),
            targets: vec![target.into()],
            summary: format!("{action} on {target}"),
            started_ms: now,
            expires_ms: None,
            // The servers die with the host; what a killed host leaves is the directory.
            undo: cluster.dir.display().to_string(),
        };
        self.shared.log.warn(format!("injected {}", fault.summary));
        lock(&self.faults).push(fault.clone());
        Ok(fault)
    }

    fn recover(&self, fault_id: &str) -> PluginResult<()> {
        let fault = {
            let mut faults = lock(&self.faults);
            match faults.iter().position(|f| f.fault_id == fault_id) {
                Some(i) => faults.remove(i),
                None => return Ok(()),
            }
        };
        let cluster = self.cluster()?;
        match fault.action_id.as_str() {
            REPLICA_LAG => {
                let mut c = cluster
                    .replica
                    .connect(Duration::from_secs(5))
                    .map_err(PluginError::failed)?;
                c.query("SELECT pg_wal_replay_resume()")
                    .map_err(PluginError::failed)?;
            }
            PRIMARY_KILL => {
                if cluster.exited(&cluster.primary).is_some() {
                    cluster.kill(&cluster.primary)?;
                    cluster.start_server(&cluster.primary)?;
                    cluster.wait_answering(&cluster.primary, Duration::from_secs(50))?;
                }
            }
            other => return Err(PluginError::invalid(format!("unknown action `{other}`"))),
        }
        self.shared.log.info(format!("recovered {}", fault.summary));
        Ok(())
    }

    /// What an operator would do, not knowing a fault was injected: the fault
    /// stays recorded until the host recovers it (which then finds nothing to undo).
    fn remediate(
        &self,
        remedy: &str,
        _params: &Params,
        target: &str,
    ) -> PluginResult<RemedyOutcome> {
        let cluster = self.cluster()?;
        let server = match target {
            PRIMARY => &cluster.primary,
            REPLICA => &cluster.replica,
            other => {
                return Err(PluginError::invalid(format!(
                    "no server `{other}` to {remedy}"
                )))
            }
        };
        let summary = match remedy {
            RESUME_REPLAY => {
                if target != REPLICA {
                    return Err(PluginError::invalid(format!(
                        "{remedy}: {target} replays no WAL; only {REPLICA} does"
                    )));
                }
                let mut c = server
                    .connect(Duration::from_secs(5))
                    .map_err(PluginError::failed)?;
                c.query("SELECT pg_wal_replay_resume()")
                    .map_err(PluginError::failed)?;
                format!("replay resumed on {target}")
            }
            RESTART_SERVER => match cluster.exited(server) {
                Some(why) => {
                    cluster.kill(server)?;
                    cluster.start_server(server)?;
                    cluster.wait_answering(server, Duration::from_secs(15))?;
                    format!("{target} restarted; it had stopped ({why})")
                }
                None => format!("{target} runs; nothing to restart"),
            },
            other => return Err(PluginError::invalid(format!("unknown remedy `{other}`"))),
        };
        self.shared.log.info(&summary);
        Ok(RemedyOutcome {
            summary,
            undo: String::new(),
        })
    }

    /// A host killed with SIGKILL took the servers along (their death signal);
    /// what it left is the data directory, removed here.
    fn recover_leftover(&self, undo: &str) -> PluginResult<()> {
        let path = std::path::Path::new(undo);
        let ours = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(DIR_PREFIX));
        if !ours {
            return Err(PluginError::invalid(format!(
                "undo record `{undo}` is not a directory of this plugin"
            )));
        }
        if path.exists() {
            std::fs::remove_dir_all(path).map_err(PluginError::failed)?;
            self.shared
                .log
                .info(format!("removed {undo}, left by an earlier run"));
        }
        Ok(())
    }
}

impl PostgresSubject {
    fn cluster(&self) -> PluginResult<Arc<Cluster>> {
        lock(&self.cluster)
            .clone()
            .ok_or_else(|| PluginError::failed("the servers are not running (setup first)"))
    }

    fn stop_writer(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = lock(&self.writer).take() {
            let _ = handle.join();
        }
    }
}

impl Drop for PostgresSubject {
    fn drop(&mut self) {
        self.stop_writer();
    }
}

trait WithMetrics {
    fn metrics_from(self, metrics: Vec<Metric>) -> Self;
}

impl WithMetrics for NodeHealth {
    fn metrics_from(mut self, metrics: Vec<Metric>) -> Self {
        self.metrics = metrics;
        self
    }
}

/// One poll of the primary: its WAL position. `None` when it does not answer.
fn poll_primary(conn: &mut Option<Conn>, server: &Server) -> Option<Readings> {
    let rows = query(
        conn,
        server,
        "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, (SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming')",
    )?;
    let row = rows.first()?;
    let lsn = num(row.first());
    let mut metrics = Vec::new();
    if let Some(lsn) = lsn {
        metrics.push(Metric::counter("WAL written", lsn, "B"));
    }
    if let Some(n) = num(row.get(1)) {
        metrics.push(Metric::new("streaming replicas", n, ""));
    }
    Some(Readings { metrics, lsn })
}

/// One poll of the replica: WAL received and replayed, and whether its WAL
/// receiver streams. `None` when it does not answer.
fn poll_replica(conn: &mut Option<Conn>, server: &Server) -> Option<(Readings, bool)> {
    let rows = query(
        conn,
        server,
        "SELECT pg_last_wal_receive_lsn() - '0/0'::pg_lsn, pg_last_wal_replay_lsn() - '0/0'::pg_lsn, \
         (SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming')",
    )?;
    let row = rows.first()?;
    let received = num(row.first());
    let replayed = num(row.get(1));
    let streaming = num(row.get(2)).is_some_and(|n| n > 0.0);
    let mut metrics = Vec::new();
    if let Some(v) = received {
        metrics.push(Metric::counter("WAL received", v, "B"));
    }
    if let Some(v) = replayed {
        metrics.push(Metric::counter("WAL replayed", v, "B"));
    }
    Some((
        Readings {
            metrics,
            lsn: replayed,
        },
        streaming,
    ))
}

/// A query on a kept connection, reconnecting once when there is none.
fn query(conn: &mut Option<Conn>, server: &Server, sql: &str) -> Option<Vec<Vec<Option<String>>>> {
    if conn.is_none() {
        *conn = server.connect(POLL_TIMEOUT).ok();
    }
    match conn.as_mut()?.query(sql) {
        Ok(rows) => Some(rows),
        Err(_) => {
            *conn = None;
            None
        }
    }
}

fn num(v: Option<&Option<String>>) -> Option<f64> {
    v?.as_deref()?.parse().ok()
}

fn bytes(b: f64) -> String {
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.0} KiB", b / 1024.0)
    }
}

/// Inserts a row into the primary every few milliseconds; reconnects after errors.
fn write_loop(shared: &Shared, port: u16) {
    let mut conn: Option<Conn> = None;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    while !shared.stop.load(Ordering::SeqCst) {
        if conn.is_none() {
            conn = Conn::connect(port, cluster::USER, cluster::DATABASE, POLL_TIMEOUT).ok();
        }
        let ok = match conn.as_mut() {
            Some(c) => {
                let payload = noise(&mut seed, PAYLOAD_BYTES);
                c.query(&format!(
                    "INSERT INTO demo_writes (payload) VALUES ('{payload}')"
                ))
                .is_ok()
            }
            None => false,
        };
        if ok {
            shared.rows.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(WRITE_INTERVAL);
        } else {
            conn = None;
            shared.write_errors.fetch_add(1, Ordering::SeqCst);
            // Pacing while the primary is away, not synchronisation.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Hex text that does not compress (xorshift), so the WAL grows by about its length.
fn noise(seed: &mut u64, len: usize) -> String {
    let mut s = String::with_capacity(len);
    while s.len() < len {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        s.push_str(&format!("{:016x}", *seed));
    }
    s.truncate(len);
    s
}

fn chapters() -> Vec<Chapter> {
    vec![
        Chapter::narrate(
            "Welcome",
            "A real PostgreSQL primary and a hot-standby replica, started on loopback ports. A \
             writer inserts a row every 10 ms into the primary; the primary streams its WAL to \
             the replica, which replays it.",
        ),
        Chapter::narrate(
            "Replication",
            "The replica's replay position follows the primary's WAL within a few kilobytes. \
             Both servers are members of one replicated group: the primary is unique by role, \
             and still a member.",
        )
        .auto_advance(1500),
        Chapter::narrate(
            "Replica lag: inject",
            "pg_wal_replay_pause() on the replica: it still receives the WAL but applies none of \
             it, while the writer keeps writing.",
        )
        .on_enter(OnEnter::Chaos {
            action: REPLICA_LAG.into(),
            params: vec![],
        })
        .blocking(),
        Chapter::narrate(
            "Replica lag: detect",
            "The replica's replay position stands still while the primary's WAL grows: the lag \
             passes its bound of 512 KiB and keeps growing.",
        )
        .expect_violation(REPLICATION_LAG)
        .auto_advance(8000),
        Chapter::narrate(
            "Replica lag: diagnose",
            "Which server, and is it down or behind?",
        )
        .on_enter(OnEnter::Diagnose)
        .expect_diagnosis(TERM_LAG, Component::Named(REPLICA.into()))
        .blocking(),
        Chapter::narrate(
            "Recovery",
            "pg_wal_replay_resume(): the replica applies what it received and catches up.",
        )
        .on_enter(OnEnter::Recover)
        .blocking()
        .auto_advance(1500),
        Chapter::narrate(
            "Primary kill: inject",
            "SIGKILL to the primary's postmaster: a crash, not a shutdown. The replica stays up, \
             cut off from the only server that accepts writes.",
        )
        .on_enter(OnEnter::Chaos {
            action: PRIMARY_KILL.into(),
            params: vec![],
        })
        .blocking(),
        Chapter::narrate(
            "Primary kill: detect",
            "The primary stops answering; the writer's inserts fail; the replica's WAL receiver \
             loses its connection.",
        )
        .expect_violation(SERVERS_UP),
        Chapter::narrate(
            "Primary kill: diagnose",
            "The primary is a member whose role nobody shares: is it read as a member down or a \
             dependency down?",
        )
        .on_enter(OnEnter::Diagnose)
        .expect_diagnosis(TERM_SERVER_DOWN, Component::ChaosTarget)
        .blocking(),
        Chapter::narrate(
            "Recovery",
            "The primary starts again on its port, replays its WAL (crash recovery), and the \
             replica reconnects.",
        )
        .on_enter(OnEnter::Recover)
        .blocking(),
        Chapter::narrate(
            "Done",
            "Both faults were real, both were detected by the invariants, and each diagnosis \
             named its server.",
        ),
    ]
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_anomaly_class_and_expected_term_is_in_the_glossary() {
        let d = PostgresSubject::describe();
        let classed: Vec<(&str, AnomalyClass)> = d
            .diagnosis
            .glossary
            .iter()
            .filter_map(|g| Some((g.term.as_str(), g.class?)))
            .collect();
        for c in &d.chapters {
            if let Some(e) = &c.expect_diagnosis {
                assert!(
                    classed.iter().any(|(t, _)| *t == e.anomaly),
                    "{}",
                    e.anomaly
                );
            }
        }
        for class in [AnomalyClass::NodeDown, AnomalyClass::Lag] {
            assert!(classed.iter().any(|(_, c)| *c == class), "{class:?}");
        }
        assert_eq!(d.info.prerequisites, prerequisites());
    }

    #[test]
    fn noise_has_the_asked_length_and_changes() {
        let mut seed = 1;
        let a = noise(&mut seed, 100);
        let b = noise(&mut seed, 100);
        assert_eq!(a.len(), 100);
        assert_ne!(a, b);
    }
}
