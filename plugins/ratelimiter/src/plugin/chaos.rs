//! The chaos actions. Each injection is registered with what undoes it, in
//! memory (for `recover`) and as a JSON record (for `recover_leftover` in a
//! later process).

use super::describe::{
    BURST, NODE_KILL, PARTITION, REDIS_FREEZE, REDIS_LATENCY_ACTION as REDIS_LATENCY, REDIS_PAUSE,
};
use super::env::Env;
use super::{lock, RateLimiterSubject};
use crate::wire::Limit;
use plugin_api::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Runtime;

/// What undoes a fault, also outside the process that injected it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Undo {
    RedisPause {
        redis: String,
        until_ms: u64,
    },
    Burst {
        key: String,
    },
    NodeKill {
        env: String,
        node: usize,
        /// The docker-chaos undo record of a killed container (compose).
        docker: Option<String>,
    },
    RedisFreeze {
        frozen: super::env::Frozen,
    },
    /// A latency fault on the nodes' routes to Redis.
    RedisLatency(NetUndo),
    /// A blackhole on one node's route to Redis.
    Partition(NetUndo),
    /// A remedy switched the nodes' mode: each node's mode before it.
    NodeMode {
        nodes: Vec<super::remedy::NodeSetting>,
    },
    /// A remedy promoted the standby Redis and repointed the nodes to it.
    RedisFailover {
        /// Both servers as the plugin reaches them.
        original: String,
        standby: String,
        /// Each node's Redis before it.
        nodes: Vec<super::remedy::NodeSetting>,
        /// Each server as the other reaches it, where that differs (compose:
        /// service names inside the project's network); absent: as above.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        original_peer: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        standby_peer: Option<String>,
    },
}

/// A fault on fault-proxy routes, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetUndo {
    pub env: String,
    pub routes: Vec<String>,
    /// The fault's name on each route (the fault id).
    pub fault: String,
    /// When it removes itself.
    pub until_ms: u64,
    /// The proxy's HTTP API (compose), from which a later process removes
    /// the fault; none for the local in-process proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
}

struct Entry {
    fault: ActiveFault,
    undo: Undo,
    task: Option<tokio::task::AbortHandle>,
}

#[derive(Default)]
pub struct Faults {
    active: Mutex<Vec<Entry>>,
    seq: AtomicU64,
}

impl Faults {
    pub fn ids(&self) -> Vec<String> {
        lock(&self.active)
            .iter()
            .map(|e| e.fault.fault_id.clone())
            .collect()
    }

    /// The id the next fault of `action` gets; network faults carry it as
    /// their name on the proxy routes, so it is known before they are added.
    fn next_id(&self, action: &str) -> String {
        format!("{action}-{}", self.seq.fetch_add(1, Ordering::SeqCst) + 1)
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        fault_id: String,
        action: &str,
        targets: Vec<String>,
        summary: String,
        expires_ms: Option<u64>,
        undo: Undo,
        task: Option<tokio::task::AbortHandle>,
    ) -> ActiveFault {
        let fault = ActiveFault {
            fault_id,
            action_id: action.into(),
            targets,
            summary,
            started_ms: crate::now_ms(),
            expires_ms,
            undo: serde_json::to_string(&undo).unwrap_or_default(),
        };
        lock(&self.active).push(Entry {
            fault: fault.clone(),
            undo,
            task,
        });
        fault
    }

    fn killed(&self, node: usize) -> Option<String> {
        lock(&self.active)
            .iter()
            .find(|e| matches!(e.undo, Undo::NodeKill { node: n, .. } if n == node))
            .map(|e| e.fault.fault_id.clone())
    }

    /// The fault that cuts the node behind `route` off from Redis, if any.
    fn cut(&self, route: &str) -> Option<String> {
        lock(&self.active)
            .iter()
            .find(|e| matches!(&e.undo, Undo::Partition(u) if u.routes.iter().any(|r| r == route)))
            .map(|e| e.fault.fault_id.clone())
    }
}

pub fn inject(
    s: &RateLimiterSubject,
    rt: &Runtime,
    env: &Env,
    action: &str,
    params: &Params,
) -> PluginResult<ActiveFault> {
    let shared = &s.shared;
    let fault = match action {
        REDIS_PAUSE => {
            let ms = params.u64("duration_ms").unwrap_or(5000).clamp(100, 60_000);
            let mut conn = shared.redis_admin().ok_or_else(|| PluginError::failed("not connected to redis; call setup first"))?;
            rt.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(2),
                    redis::cmd("CLIENT").arg("PAUSE").arg(ms).arg("WRITE").query_async::<()>(&mut conn),
                )
                .await
            })
            .map_err(|_| PluginError::failed("redis did not answer CLIENT PAUSE within 2 s"))?
            .map_err(|e| PluginError::failed(format!("CLIENT PAUSE failed: {e}")))?;
            let until = crate::now_ms() + ms;
            let undo = Undo::RedisPause { redis: shared.redis_url(), until_ms: until };
            s.faults.add(s.faults.next_id(action), action, vec!["redis".into()], format!("redis writes paused for {ms} ms (CLIENT PAUSE WRITE)"), Some(until), undo, None)
        }
        BURST => {
            let multiplier = params.f64("multiplier").unwrap_or(2.0);
            if !(1.0..=10.0).contains(&multiplier) {
                return Err(PluginError::invalid(format!("multiplier {multiplier} is out of range: it takes 1 to 10")));
            }
            let cfg = &shared.cfg;
            let count = (multiplier * cfg.limit as f64).ceil() as u64;
            let key = format!("{}-burst-{}-{}", cfg.key, crate::now_ms(), shared.burst_seq.fetch_add(1, Ordering::SeqCst));
            let limit = Limit { limit: cfg.limit, window_ms: cfg.window_ms };
            rt.block_on(shared.put_limit(&key, limit))?;
            shared.watch(&key);
            let nodes = shared.node_urls();
            let targets: Vec<String> = (1..=nodes.len()).map(|i| format!("node-{i}")).collect();
            let (http, acc, sh) = (shared.http.clone(), Arc::clone(&shared.acc), Arc::clone(&s.shared));
            let k = key.clone();
            // Wait for a window with room before the fault counts as started, so
            // its start time is when the checks go out.
            let window = rt.block_on(super::burst::align_to_window(limit.window_ms));
            let task = rt.spawn(async move {
                let rec = super::burst::run(http, acc, nodes, k, limit, count, window).await;
                sh.event(
                    Level::Info,
                    format!("burst on `{}` done: {} sent, {} allowed, {} denied (limit {})", rec.key, rec.sent, rec.allowed, rec.denied, rec.limit),
                );
                sh.add_burst(rec);
            });
            let expires = crate::now_ms() + cfg.window_ms + cfg.window_ms / 2;
            let summary = format!("{count} concurrent checks ({multiplier}× the limit of {}) on `{key}`", cfg.limit);
            s.faults.add(s.faults.next_id(action), action, targets, summary, Some(expires), Undo::Burst { key }, Some(task.abort_handle()))
        }
        NODE_KILL => {
            let count = shared.node_urls().len();
            let wanted = params.u64("node").unwrap_or(0) as usize;
            if wanted > count {
                return Err(PluginError::invalid(format!("node {wanted} does not exist: use 1 to {count}, or 0 for a random one")));
            }
            let i = if wanted == 0 {
                let alive: Vec<usize> = (0..count).filter(|i| s.faults.killed(*i).is_none()).collect();
                if alive.is_empty() {
                    return Err(PluginError::invalid("every node is already killed; recover one first"));
                }
                alive[rand::random_range(0..alive.len())]
            } else {
                wanted - 1
            };
            if let Some(f) = s.faults.killed(i) {
                return Err(PluginError::invalid(format!("node-{} is already killed by fault {f}; recover it first", i + 1)));
            }
            let docker = env.kill_node(i, rt)?;
            let undo = Undo::NodeKill { env: env.kind().into(), node: i, docker };
            s.faults.add(s.faults.next_id(action), action, vec![format!("node-{}", i + 1)], format!("node-{} killed (SIGKILL)", i + 1), None, undo, None)
        }
        REDIS_FREEZE => {
            let frozen = env.freeze_redis(rt)?;
            let summary = match &frozen {
                super::env::Frozen::Process(pid) => format!("redis-server (pid {pid}) stopped (SIGSTOP)"),
                super::env::Frozen::Container(_) => "redis container paused (docker pause)".to_string(),
            };
            s.faults.add(s.faults.next_id(action), action, vec!["redis".into()], summary, None, Undo::RedisFreeze { frozen }, None)
        }
        REDIS_LATENCY => {
            let delay = params.f64("delay_ms").unwrap_or(20.0);
            let jitter = params.f64("jitter_ms").unwrap_or(5.0);
            let ms = params.u64("duration_ms").unwrap_or(15_000);
            if !(1.0..=10_000.0).contains(&delay) || !(0.0..=delay).contains(&jitter) {
                return Err(PluginError::invalid(format!(
                    "delay_ms {delay} and jitter_ms {jitter}: the delay takes 1 to 10000 ms and the jitter 0 up to the delay"
                )));
            }
            check_duration(ms)?;
            let links = env.links()?;
            let text = match params.get("nodes") {
                Some(ParamValue::Text(t)) => t.clone(),
                _ => "all".into(),
            };
            let nodes = super::net::parse_nodes(&text, links.count())?;
            let routes = nodes.iter().map(|i| links.route(*i).map(String::from)).collect::<PluginResult<Vec<_>>>()?;
            let id = s.faults.next_id(action);
            // Answers are held, not requests: one delay per round trip.
            let fault = fault_proxy::Fault::latency(delay, jitter)
                .direction(fault_proxy::Direction::Downstream)
                .named(id.clone());
            rt.block_on(links.add_all(&routes, &fault))?;
            let targets: Vec<String> = if nodes.len() == links.count() {
                vec!["redis".into()]
            } else {
                nodes.iter().map(|i| format!("node-{}", i + 1)).collect()
            };
            let who = nodes.iter().map(|i| format!("node-{}", i + 1)).collect::<Vec<_>>().join(", ");
            let summary = format!("redis answers {who} {delay} ± {jitter} ms late for {ms} ms (fault proxy)");
            let until = crate::now_ms() + ms;
            let api = links.api().map(String::from);
            let task = expire(rt, &s.shared, links, routes.clone(), id.clone(), ms);
            let undo = Undo::RedisLatency(NetUndo { env: env.kind().into(), routes, fault: id.clone(), until_ms: until, api });
            s.faults.add(id, action, targets, summary, Some(until), undo, Some(task))
        }
        PARTITION => {
            let links = env.links()?;
            let count = links.count();
            let ms = params.u64("duration_ms").unwrap_or(15_000);
            check_duration(ms)?;
            let wanted = params.u64("node").unwrap_or(0) as usize;
            if wanted > count {
                return Err(PluginError::invalid(format!("node {wanted} does not exist: use 1 to {count}, or 0 for a random one")));
            }
            let i = if wanted == 0 {
                let free: Vec<usize> = (0..count).filter(|i| links.route(*i).is_ok_and(|r| s.faults.cut(r).is_none())).collect();
                if free.is_empty() {
                    return Err(PluginError::invalid("every node is already cut off from redis; recover one first"));
                }
                free[rand::random_range(0..free.len())]
            } else {
                wanted - 1
            };
            let route = links.route(i)?.to_string();
            if let Some(f) = s.faults.cut(&route) {
                return Err(PluginError::invalid(format!("node-{} is already cut off from redis by fault {f}; recover it first", i + 1)));
            }
            let id = s.faults.next_id(action);
            // Both ways: nothing reaches Redis and nothing comes back; connections stay open.
            rt.block_on(links.add_all(std::slice::from_ref(&route), &fault_proxy::Fault::blackhole().named(id.clone())))?;
            let summary = format!("node-{} cut off from redis for {ms} ms (fault proxy blackhole, both directions)", i + 1);
            let until = crate::now_ms() + ms;
            let routes = vec![route];
            let api = links.api().map(String::from);
            let task = expire(rt, &s.shared, links, routes.clone(), id.clone(), ms);
            let undo = Undo::Partition(NetUndo { env: env.kind().into(), routes, fault: id.clone(), until_ms: until, api });
            s.faults.add(id, action, vec![format!("node-{}", i + 1)], summary, Some(until), undo, Some(task))
        }
        other => {
            return Err(PluginError::invalid(format!(
                "unknown chaos action `{other}`; this subject offers {REDIS_PAUSE}, {BURST}, {NODE_KILL}, {REDIS_LATENCY}, {PARTITION}, {REDIS_FREEZE}"
            )))
        }
    };
    // The host reports injections and recoveries; these lines are for troubleshooting only.
    shared
        .log
        .debug(format!("injected {}: {}", fault.fault_id, fault.summary));
    Ok(fault)
}

pub fn recover(
    s: &RateLimiterSubject,
    rt: &Runtime,
    env: &Env,
    fault_id: &str,
) -> PluginResult<()> {
    let entry = {
        let mut active = lock(&s.faults.active);
        match active.iter().position(|e| e.fault.fault_id == fault_id) {
            Some(i) => active.remove(i),
            None => return Ok(()),
        }
    };
    if let Some(t) = &entry.task {
        t.abort();
    }
    if let Undo::Burst { key } = &entry.undo {
        s.shared.forget_burst(key);
    }
    let result = match &entry.undo {
        Undo::NodeKill { node, .. } => env
            .restart_node(*node, rt)
            .and_then(|()| super::remedy::after_restart(&s.shared, rt, *node)),
        Undo::RedisLatency(u) | Undo::Partition(u) => env
            .links()
            .and_then(|links| rt.block_on(links.remove_all(&u.routes, &u.fault))),
        Undo::RedisPause { until_ms, .. } if *until_ms <= crate::now_ms() => Ok(()),
        undo => undo_fault(rt, undo),
    };
    match &result {
        Ok(()) => s.shared.log.debug(format!(
            "recovered {}: {}",
            entry.fault.fault_id, entry.fault.summary
        )),
        Err(e) => {
            s.shared
                .log
                .debug(format!("could not recover {}: {e}", entry.fault.fault_id));
            lock(&s.faults.active).push(entry);
        }
    }
    result
}

/// The longest a network fault may last before it removes itself.
const MAX_NET_FAULT_MS: u64 = 600_000;

fn check_duration(ms: u64) -> PluginResult<()> {
    if (100..=MAX_NET_FAULT_MS).contains(&ms) {
        Ok(())
    } else {
        Err(PluginError::invalid(format!(
            "duration_ms {ms} is out of range: it takes 100 to {MAX_NET_FAULT_MS}"
        )))
    }
}

/// Removes a network fault once its duration is over, so it ends even when
/// nobody calls `recover` (which then finds it gone, and that is no error).
fn expire(
    rt: &Runtime,
    shared: &Arc<super::Shared>,
    links: super::net::Links,
    routes: Vec<String>,
    name: String,
    ms: u64,
) -> tokio::task::AbortHandle {
    let shared = Arc::clone(shared);
    rt.spawn(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        if let Err(e) = links.remove_all(&routes, &name).await {
            shared.event(
                Level::Warn,
                format!("{name} could not be removed when it expired: {e}"),
            );
        }
    })
    .abort_handle()
}

/// Undoes what can be undone from the record alone.
pub(super) fn undo_fault(rt: &Runtime, undo: &Undo) -> PluginResult<()> {
    match undo {
        Undo::RedisLatency(u) | Undo::Partition(u) => match &u.api {
            // The proxy container outlives the host: take the fault off its routes.
            Some(api) => {
                let links = super::net::Links::http(api, u.routes.clone())?;
                rt.block_on(links.remove_all(&u.routes, &u.fault))
            }
            // The local proxy ran inside the host process that injected the
            // fault: it ended with it, and so did the nodes behind it (they are
            // children of that process). Nothing of the fault is left anywhere.
            None => Ok(()),
        },
        Undo::RedisPause { redis, .. } => rt.block_on(async {
            let client = redis::Client::open(redis.as_str()).map_err(PluginError::failed)?;
            let fut = async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("CLIENT").arg("UNPAUSE").query_async::<()>(&mut conn).await
            };
            tokio::time::timeout(Duration::from_secs(2), fut)
                .await
                .map_err(|_| PluginError::failed(format!("redis at {redis} did not answer CLIENT UNPAUSE within 2 s")))?
                .map_err(|e| PluginError::failed(format!("CLIENT UNPAUSE at {redis}: {e}")))
        }),
        Undo::Burst { .. } => Ok(()),
        Undo::RedisFreeze { frozen } => frozen.thaw(rt),
        Undo::NodeKill { node, docker, .. } => match docker {
            Some(record) => rt.block_on(async {
                let undo = docker_chaos::Undo::from_json(record).map_err(super::env::docker_error)?;
                let engine = docker_chaos::Engine::connect().await.map_err(super::env::docker_error)?;
                engine.undo(&undo, super::env::RESTART_TIMEOUT).await.map_err(super::env::docker_error)?;
                Ok(())
            }),
            _ => Err(PluginError::failed(format!(
                "node-{} cannot be restarted: it was a child process of a local environment that ended with the host process that injected the fault (its redis-server and nodes died with it), so nothing of it is left running or broken",
                node + 1
            ))),
        },
        // What a remedy changed (see `remedy`), recorded in the same file.
        Undo::NodeMode { nodes } => {
            let http = reqwest::Client::new();
            rt.block_on(super::remedy::put_back_modes(&http, nodes))
        }
        Undo::RedisFailover {
            original,
            standby,
            nodes,
            original_peer,
            standby_peer,
        } => {
            use super::remedy::Server;
            let http = reqwest::Client::new();
            rt.block_on(super::remedy::put_back_redis(
                &http,
                Server::new(original, original_peer.as_deref()),
                Server::new(standby, standby_peer.as_deref()),
                nodes,
            ))
        }
    }
}

pub fn recover_leftover(rt: &Runtime, undo: &str) -> PluginResult<()> {
    let undo: Undo = serde_json::from_str(undo).map_err(|e| {
        PluginError::invalid(format!(
            "undo record `{undo}` is not one this plugin wrote: {e}"
        ))
    })?;
    undo_fault(rt, &undo)
}
