//! Remedies: what an operator would do in production about an anomaly,
//! without knowing that a fault was injected. Each works while the fault is
//! still active; what it changes for good is recorded as an [`Undo`] that
//! `recover_leftover` (teardown, or the next start after a killed host)
//! puts back.

use super::chaos::Undo;
use super::describe::STEP_PROBE_BURST;
use super::env::Env;
use super::invariants::{
    COUNTER_DRIFT, GHOST_ALLOWING, NODE_CUT_OFF, NODE_DOWN, REDIS_DOWN, REDIS_LATENCY,
};
use super::{lock, RateLimiterSubject, Shared};
use crate::wire::{AdminView, Limit, Mode, ModeChange, RedisChange};
use plugin_api::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::runtime::Runtime;

pub const RESTART_NODE: &str = "restart-node";
pub const STRICT_MODE: &str = "strict-mode";
pub const FAILOVER_REDIS: &str = "failover-redis";

/// How long one admin request to a node may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The remedies `describe()` declares.
pub fn remedies() -> Vec<Remedy> {
    vec![
        Remedy {
            id: RESTART_NODE.into(),
            name: "Restart the node".into(),
            description: "Start the node that does not answer again (its process, or its container in compose), with the cluster's current mode and Redis.".into(),
            addresses: vec![NODE_DOWN.into()],
            params: vec![],
            target: RemedyTarget::Component,
            risk: Risk::Low,
            undo: String::new(),
            verify_within_ms: 10_000,
            probe_step: None,
        },
        Remedy {
            id: STRICT_MODE.into(),
            name: "Switch every node to strict mode".into(),
            description: "PUT /admin/mode strict on every node: each check becomes one atomic script in Redis, so the cluster can no longer allow more than the limit in a window, at the price of a Redis round trip per check. A probe burst of twice the limit must then allow at most the limit.".into(),
            addresses: vec![GHOST_ALLOWING.into()],
            params: vec![],
            target: RemedyTarget::Cluster,
            risk: Risk::Medium,
            undo: "the nodes are switched back to the mode each had before (PUT /admin/mode)".into(),
            verify_within_ms: 5_000,
            probe_step: Some(STEP_PROBE_BURST.into()),
        },
        Remedy {
            id: FAILOVER_REDIS.into(),
            name: "Fail over to the standby Redis".into(),
            description: "Promote the standby Redis (REPLICAOF NO ONE) and repoint every node to it (PUT /admin/redis): a paused, frozen or slow primary is left for its healthy standby, and a node that lost its way to the primary reaches the standby by its own path; the increments the nodes could not flush land on the new primary and the drift closes.".into(),
            addresses: vec![
                COUNTER_DRIFT.into(),
                REDIS_DOWN.into(),
                REDIS_LATENCY.into(),
                NODE_CUT_OFF.into(),
            ],
            params: vec![],
            target: RemedyTarget::Cluster,
            risk: Risk::High,
            undo: "the nodes are pointed back at the original Redis and the standby replicates it again".into(),
            verify_within_ms: 10_000,
            probe_step: None,
        },
    ]
}

/// What the remedies changed, so that later changes (a restarted node, the
/// health poller) follow it.
#[derive(Debug, Clone, Default)]
pub struct Reconfig {
    /// The mode the nodes were switched to, when a remedy switched it.
    pub mode: Option<Mode>,
    /// The Redis the nodes were repointed to, when a remedy repointed them.
    pub redis: Option<String>,
    /// When the counting mode last changed (unix ms; 0: never). A window
    /// that began before it holds counts of both modes and is not judged.
    /// (A failover keeps the counts: the standby replicated them.)
    pub since_ms: u64,
}

/// The remedies' state in the instance.
#[derive(Default)]
pub struct Remedies {
    /// One remedy at a time: two at once would interleave their node requests.
    running: Mutex<()>,
    /// Undo records of the remedies run, put back by teardown.
    undos: Mutex<Vec<Undo>>,
}

impl Remedies {
    /// The undo records still to put back, oldest first; empties the list.
    pub fn take_undos(&self) -> Vec<Undo> {
        std::mem::take(&mut *lock(&self.undos))
    }

    /// The host put this one back itself (`recover_leftover`): teardown need
    /// not. Whether it was one of this instance's (not a killed host's).
    pub fn done(&self, undo: &Undo) -> bool {
        let mut undos = lock(&self.undos);
        let before = undos.len();
        undos.retain(|u| u != undo);
        undos.len() < before
    }
}

pub fn reconfig(shared: &Shared) -> Reconfig {
    shared
        .reconfig
        .read()
        .map(|r| r.clone())
        .unwrap_or_default()
}

/// Changes the remedies' mark; `mode_changed`: the counting mode changed now.
fn set_reconfig(shared: &Shared, mode_changed: bool, f: impl FnOnce(&mut Reconfig)) {
    let lock: &RwLock<Reconfig> = &shared.reconfig;
    let mut r = lock.write().unwrap_or_else(|p| p.into_inner());
    f(&mut r);
    if mode_changed {
        r.since_ms = crate::now_ms();
    }
}

pub fn remediate(
    s: &RateLimiterSubject,
    rt: &Runtime,
    env: &Env,
    remedy: &str,
    target: &str,
) -> PluginResult<RemedyOutcome> {
    let _one = match s.remedies.running.try_lock() {
        Ok(g) => g,
        // A remedy that panicked earlier holds nothing any more.
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            return Err(PluginError::failed(format!(
                "remedy `{remedy}` refused: another remedy is still running"
            )))
        }
    };
    let outcome = match remedy {
        RESTART_NODE => restart_node(s, rt, env, target)?,
        STRICT_MODE => {
            cluster_target(remedy, target)?;
            strict_mode(&s.shared, rt)?
        }
        FAILOVER_REDIS => {
            cluster_target(remedy, target)?;
            failover_redis(s, rt, env)?
        }
        other => {
            return Err(PluginError::invalid(format!(
                "unknown remedy `{other}`; this subject offers {RESTART_NODE}, {STRICT_MODE}, {FAILOVER_REDIS}"
            )))
        }
    };
    if !outcome.undo.is_empty() {
        if let Ok(undo) = serde_json::from_str::<Undo>(&outcome.undo) {
            lock(&s.remedies.undos).push(undo);
        }
    }
    // The host reports remedies itself; this line is for troubleshooting only.
    s.shared
        .log
        .debug(format!("remedy {remedy}: {}", outcome.summary));
    Ok(outcome)
}

fn cluster_target(remedy: &str, target: &str) -> PluginResult<()> {
    if target.is_empty() || target == "cluster" {
        Ok(())
    } else {
        Err(PluginError::invalid(format!(
            "remedy `{remedy}` acts on the whole cluster; give no target (got `{target}`)"
        )))
    }
}

/// `node-<n>` to its index, among the cluster's nodes.
fn node_index(shared: &Shared, target: &str) -> PluginResult<usize> {
    let count = shared.node_urls().len();
    target
        .strip_prefix("node-")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| (1..=count).contains(n))
        .map(|n| n - 1)
        .ok_or_else(|| {
            let names: Vec<String> = (1..=count).map(|i| format!("node-{i}")).collect();
            PluginError::invalid(format!(
                "no node `{target}` in this cluster; its nodes are {}",
                names.join(", ")
            ))
        })
}

fn restart_node(
    s: &RateLimiterSubject,
    rt: &Runtime,
    env: &Env,
    target: &str,
) -> PluginResult<RemedyOutcome> {
    let i = node_index(&s.shared, target)?;
    env.force_restart_node(i, rt)?;
    let url = s.shared.node_urls().get(i).cloned().unwrap_or_default();
    let reapplied = rt.block_on(reapply(&s.shared, &url))?;
    Ok(RemedyOutcome {
        summary: format!(
            "{target} restarted ({}){reapplied}",
            match env {
                Env::Local(_) => "process",
                Env::Compose { .. } => "container",
            }
        ),
        undo: String::new(),
    })
}

/// After chaos recovery started node `i` again: the remedies' configuration for it too.
pub fn after_restart(shared: &Shared, rt: &Runtime, i: usize) -> PluginResult<()> {
    let url = shared.node_urls().get(i).cloned().unwrap_or_default();
    rt.block_on(reapply(shared, &url)).map(|_| ())
}

/// Gives a node that just started the configuration the remedies gave the
/// others (it starts with the environment's own). Returns a note for the summary.
pub async fn reapply(shared: &Shared, url: &str) -> PluginResult<String> {
    let r = reconfig(shared);
    let mut notes = String::new();
    if let Some(redis) = &r.redis {
        admin_put(
            &shared.http,
            url,
            "redis",
            &RedisChange { url: redis.clone() },
        )
        .await?;
        notes.push_str(&format!("; pointed at {redis}"));
    }
    if let Some(mode) = r.mode {
        admin_put(
            &shared.http,
            url,
            "mode",
            &ModeChange {
                mode: mode.as_str().into(),
            },
        )
        .await?;
        notes.push_str(&format!("; {} mode", mode.as_str()));
    }
    Ok(notes)
}

/// Why an admin request failed: a node that does not answer at all is told
/// apart, since a node that is gone needs nothing put back.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{url} does not answer: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} refused: HTTP {status} {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
}

impl From<AdminError> for PluginError {
    fn from(e: AdminError) -> Self {
        PluginError::failed(e)
    }
}

async fn admin_put<T: Serialize>(
    http: &reqwest::Client,
    node: &str,
    what: &str,
    body: &T,
) -> Result<AdminView, AdminError> {
    let url = format!("{node}/admin/{what}");
    let r = http
        .put(&url)
        .timeout(ADMIN_TIMEOUT)
        .json(body)
        .send()
        .await
        .map_err(|e| AdminError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let status = r.status();
    if !status.is_success() {
        return Err(AdminError::Refused {
            url,
            status: status.as_u16(),
            body: r.text().await.unwrap_or_default(),
        });
    }
    r.json::<AdminView>()
        .await
        .map_err(|e| AdminError::Unreachable {
            url,
            reason: format!("the answer is not the admin view: {e}"),
        })
}

/// One node's setting before a remedy changed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSetting {
    pub url: String,
    pub value: String,
}

fn strict_mode(shared: &Shared, rt: &Runtime) -> PluginResult<RemedyOutcome> {
    let urls = shared.node_urls();
    let change = ModeChange {
        mode: Mode::Strict.as_str().into(),
    };
    let answers = rt.block_on(futures::future::join_all(
        urls.iter()
            .map(|u| admin_put(&shared.http, u, "mode", &change)),
    ));
    let mut previous = Vec::new();
    let mut missed = Vec::new();
    for (url, a) in urls.iter().zip(answers) {
        match a {
            Ok(view) => previous.push(NodeSetting {
                url: url.clone(),
                value: view.previous_mode,
            }),
            // A node that is down starts in its configured mode: restart-node
            // switches it (see `reapply`), and there is nothing to put back.
            Err(AdminError::Unreachable { .. }) => missed.push(url.clone()),
            Err(e) => {
                undo_modes(shared, rt, &previous);
                return Err(e.into());
            }
        }
    }
    if previous.is_empty() {
        return Err(PluginError::failed(format!(
            "no node answered PUT /admin/mode ({})",
            missed.join(", ")
        )));
    }
    set_reconfig(shared, true, |r| r.mode = Some(Mode::Strict));
    let undo = Undo::NodeMode {
        nodes: previous.clone(),
    };
    let from: Vec<&str> = previous.iter().map(|p| p.value.as_str()).collect();
    let mut summary = format!(
        "{} of {} nodes switched to strict mode (from {})",
        previous.len(),
        urls.len(),
        from.join(", ")
    );
    if !missed.is_empty() {
        summary.push_str(&format!(
            "; {} did not answer and get strict mode when restarted",
            missed.join(", ")
        ));
    }
    Ok(RemedyOutcome {
        summary,
        undo: serde_json::to_string(&undo).map_err(PluginError::failed)?,
    })
}

fn undo_modes(shared: &Shared, rt: &Runtime, nodes: &[NodeSetting]) {
    let _ = rt.block_on(put_back_modes(&shared.http, nodes));
}

/// Puts each node back into its recorded mode. A node that does not answer is
/// skipped: it is gone (it died with a killed host) or will start in its
/// configured mode.
pub async fn put_back_modes(http: &reqwest::Client, nodes: &[NodeSetting]) -> PluginResult<()> {
    let mut errors = Vec::new();
    for n in nodes {
        let change = ModeChange {
            mode: n.value.clone(),
        };
        match admin_put(http, &n.url, "mode", &change).await {
            Ok(_) | Err(AdminError::Unreachable { .. }) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PluginError::failed(errors.join("; ")))
    }
}

/// Clears the remedies' mark on the configuration once it is put back, and
/// points the plugin's own Redis connections back after a failover.
pub fn forget(shared: &Shared, rt: &Runtime, undo: &Undo) {
    match undo {
        Undo::NodeMode { .. } => set_reconfig(shared, true, |r| r.mode = None),
        Undo::RedisFailover { original, .. } => {
            set_reconfig(shared, false, |r| r.redis = None);
            let _rt = rt.enter();
            let _ = shared.set_redis(original);
        }
        _ => {}
    }
}

/// `probe-burst`: twice the limit at once on a fresh key, as the ghost
/// allowing burst does; fails unless at most the limit is allowed (and the
/// cluster still allows something: a Redis that fails closed proves nothing).
pub fn probe_burst(shared: &Arc<Shared>, rt: &Runtime) -> PluginResult<String> {
    let cfg = &shared.cfg;
    let limit = Limit {
        limit: cfg.limit,
        window_ms: cfg.window_ms,
    };
    let key = format!(
        "{}-probe-{}-{}",
        cfg.key,
        crate::now_ms(),
        shared.burst_seq.fetch_add(1, Ordering::SeqCst)
    );
    rt.block_on(shared.put_limit(&key, limit))?;
    let count = 2 * cfg.limit;
    let rec = rt.block_on(async {
        let window = super::burst::align_to_window(limit.window_ms).await;
        super::burst::run(
            shared.http.clone(),
            Arc::clone(&shared.acc),
            shared.node_urls(),
            key.clone(),
            limit,
            count,
            window,
        )
        .await
    });
    let seen = rec.allowed.max(rec.nodes_allowed.unwrap_or(0));
    let line = format!(
        "probe on `{key}`: {} checks, {} allowed (the nodes counted {}), {} denied, {} errors, limit {}",
        rec.sent,
        rec.allowed,
        rec.nodes_allowed.map_or("?".into(), |n| n.to_string()),
        rec.denied,
        rec.errors + rec.unknown,
        rec.limit
    );
    if seen > rec.limit {
        return Err(PluginError::failed(format!(
            "{line}: more than the limit was allowed"
        )));
    }
    if rec.allowed == 0 {
        return Err(PluginError::failed(format!(
            "{line}: nothing was allowed, so the cluster does not serve"
        )));
    }
    Ok(line)
}

/// Fails back, as an operator would: the original Redis first replicates the
/// standby (so it holds what was counted there meanwhile), is promoted again,
/// the nodes are pointed back at it, and the standby replicates it once more.
/// Nodes and Redis servers that do not answer are skipped: they are gone with
/// the host that started them.
pub async fn put_back_redis(
    http: &reqwest::Client,
    original: Server<'_>,
    standby: Server<'_>,
    nodes: &[NodeSetting],
) -> PluginResult<()> {
    let mut errors = Vec::new();
    // A standby that replicates again was failed back already (by a host
    // that put the record back before it died, or by teardown after a later
    // start did): the servers stay as they are, only the nodes are checked.
    let failed_back =
        matches!(info_replication(standby.url).await, Ok(info) if info.contains("role:slave"));
    if !failed_back {
        match catch_up(original, standby).await {
            Ok(()) => {}
            Err(e) if e.unreachable => {}
            Err(e) => errors.push(e.message),
        }
    }
    for n in nodes {
        let change = RedisChange {
            url: n.value.clone(),
        };
        match admin_put(http, &n.url, "redis", &change).await {
            Ok(_) | Err(AdminError::Unreachable { .. }) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !failed_back {
        if let Err(e) = replicaof(standby.url, Some(original.peer)).await {
            if !e.unreachable {
                errors.push(e.message);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PluginError::failed(errors.join("; ")))
    }
}

/// How long the original Redis may take to copy the standby when failing back.
const CATCH_UP: Duration = Duration::from_secs(10);

/// A Redis server of a failover: where the plugin reaches it, and where the
/// other server and the nodes do (the same locally; a service name in compose).
#[derive(Debug, Clone, Copy)]
pub struct Server<'a> {
    pub url: &'a str,
    pub peer: &'a str,
}

impl<'a> Server<'a> {
    pub fn new(url: &'a str, peer: Option<&'a str>) -> Server<'a> {
        Server {
            url,
            peer: peer.unwrap_or(url),
        }
    }
}

/// Makes `original` a replica of `standby` until it has synced, then a primary again.
async fn catch_up(original: Server<'_>, standby: Server<'_>) -> Result<(), RedisCallError> {
    let (original, standby) = (original.url, standby.peer);
    replicaof(original, Some(standby)).await?;
    let started = std::time::Instant::now();
    loop {
        match info_replication(original).await {
            Ok(info) if info.contains("master_link_status:up") => break,
            Ok(_) if started.elapsed() < CATCH_UP => {}
            Ok(info) => {
                // Leave it a primary with what it had rather than a broken replica.
                let _ = replicaof(original, None).await;
                return Err(RedisCallError {
                    unreachable: false,
                    message: format!(
                        "{original} did not sync from {standby} within {} s: {}",
                        CATCH_UP.as_secs(),
                        info.lines()
                            .filter(|l| l.starts_with("master_link"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    replicaof(original, None).await
}

async fn info_replication(redis: &str) -> Result<String, RedisCallError> {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("replication");
    redis_call(redis, "INFO replication", cmd).await
}

/// A failed REPLICAOF, telling a Redis that does not answer apart.
struct RedisCallError {
    unreachable: bool,
    message: String,
}

/// `REPLICAOF host port` (Some) or `REPLICAOF NO ONE` (None) on `redis`.
async fn replicaof(redis: &str, primary: Option<&str>) -> Result<(), RedisCallError> {
    let mut cmd = redis::cmd("REPLICAOF");
    match primary {
        None => {
            cmd.arg("NO").arg("ONE");
        }
        Some(p) => {
            let info =
                redis::IntoConnectionInfo::into_connection_info(p).map_err(|e| RedisCallError {
                    unreachable: false,
                    message: format!("REPLICAOF on {redis}: primary `{p}`: {e}"),
                })?;
            let (host, port) = match info.addr().clone() {
                redis::ConnectionAddr::Tcp(h, p) => (h, p),
                other => {
                    return Err(RedisCallError {
                        unreachable: false,
                        message: format!(
                            "REPLICAOF on {redis}: primary `{other}` is not host:port"
                        ),
                    })
                }
            };
            cmd.arg(host).arg(port);
        }
    }
    redis_call::<()>(redis, "REPLICAOF", cmd).await
}

/// One command on its own connection, with a deadline.
async fn redis_call<T: redis::FromRedisValue>(
    redis: &str,
    name: &str,
    cmd: redis::Cmd,
) -> Result<T, RedisCallError> {
    let fail = |unreachable: bool, m: String| RedisCallError {
        unreachable,
        message: format!("{name} on {redis}: {m}"),
    };
    let client = redis::Client::open(redis).map_err(|e| fail(false, e.to_string()))?;
    let call = async {
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| fail(true, e.to_string()))?;
        cmd.query_async::<T>(&mut conn)
            .await
            .map_err(|e| fail(false, e.to_string()))
    };
    tokio::time::timeout(ADMIN_TIMEOUT, call)
        .await
        .map_err(|_| fail(true, "no answer within 2 s".into()))?
}

fn failover_redis(s: &RateLimiterSubject, rt: &Runtime, env: &Env) -> PluginResult<RemedyOutcome> {
    let shared = &s.shared;
    let standby = env.standby().ok_or_else(|| {
        PluginError::Unsupported(format!(
            "failover-redis needs a standby Redis: the local environment starts one; in compose it is the `redis-standby` service (this is env={} with standby=off)",
            env.kind()
        ))
    })?;
    let original = shared.redis_url();
    if original == standby.url {
        return Err(PluginError::invalid(format!(
            "the nodes already use the standby {}: there is nothing to fail over to",
            standby.url
        )));
    }
    rt.block_on(replicaof(&standby.url, None))
        .map_err(|e| PluginError::failed(e.message))?;
    let urls = shared.node_urls();
    let change = RedisChange {
        url: standby.peer.clone(),
    };
    let answers = rt.block_on(futures::future::join_all(
        urls.iter()
            .map(|u| admin_put(&shared.http, u, "redis", &change)),
    ));
    let mut previous = Vec::new();
    let mut missed = Vec::new();
    let mut refused = Vec::new();
    for (url, a) in urls.iter().zip(answers) {
        match a {
            Ok(view) => previous.push(NodeSetting {
                url: url.clone(),
                value: view.previous_redis,
            }),
            // A node that is down is repointed when it is restarted (`reapply`).
            Err(AdminError::Unreachable { .. }) => missed.push(url.clone()),
            Err(e) => refused.push(e.to_string()),
        }
    }
    let differs = |peer: &str, url: &str| (peer != url).then(|| peer.to_string());
    let undo = Undo::RedisFailover {
        original: original.clone(),
        standby: standby.url.clone(),
        nodes: previous.clone(),
        original_peer: differs(&standby.primary_peer, &original),
        standby_peer: differs(&standby.peer, &standby.url),
    };
    if previous.is_empty() || !refused.is_empty() {
        let _ = rt.block_on(put_back_redis(
            &shared.http,
            Server::new(&original, Some(&standby.primary_peer)),
            Server::new(&standby.url, Some(&standby.peer)),
            &previous,
        ));
        return Err(PluginError::failed(format!(
            "failover to {} abandoned and put back: {}",
            standby.url,
            if refused.is_empty() {
                format!("no node answered ({})", missed.join(", "))
            } else {
                refused.join("; ")
            }
        )));
    }
    {
        let _rt = rt.enter();
        shared.set_redis(&standby.url)?;
    }
    // A node restarted later is pointed where the others are (`reapply`).
    set_reconfig(shared, false, |r| r.redis = Some(standby.peer.clone()));
    let mut summary = format!(
        "standby {} promoted (REPLICAOF NO ONE); {} of {} nodes repointed from {} to {}",
        standby.url,
        previous.len(),
        urls.len(),
        describe_previous(&previous),
        standby.peer
    );
    if !missed.is_empty() {
        summary.push_str(&format!(
            "; {} did not answer and are repointed when restarted",
            missed.join(", ")
        ));
    }
    Ok(RemedyOutcome {
        summary,
        undo: serde_json::to_string(&undo).map_err(PluginError::failed)?,
    })
}

/// The nodes' Redis before a failover: one address, or each node's (they
/// differ when each reaches Redis through its own proxy route).
fn describe_previous(previous: &[NodeSetting]) -> String {
    let mut values: Vec<&str> = previous.iter().map(|p| p.value.as_str()).collect();
    values.dedup();
    values.join(", ")
}
