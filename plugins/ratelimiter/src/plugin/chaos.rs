//! The chaos actions. Each injection is registered with what undoes it, in
//! memory (for `recover`) and as a JSON record (for `recover_leftover` in a
//! later process).

use super::describe::{BURST, NODE_KILL, REDIS_FREEZE, REDIS_PAUSE};
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
    /// A remedy switched the nodes' mode: each node's mode before it.
    NodeMode {
        nodes: Vec<super::remedy::NodeSetting>,
    },
    /// A remedy promoted the standby Redis and repointed the nodes to it.
    RedisFailover {
        original: String,
        standby: String,
        /// Each node's Redis before it.
        nodes: Vec<super::remedy::NodeSetting>,
    },
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

    fn add(
        &self,
        action: &str,
        targets: Vec<String>,
        summary: String,
        expires_ms: Option<u64>,
        undo: Undo,
        task: Option<tokio::task::AbortHandle>,
    ) -> ActiveFault {
        let fault = ActiveFault {
            fault_id: format!("{action}-{}", self.seq.fetch_add(1, Ordering::SeqCst) + 1),
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
            s.faults.add(action, vec!["redis".into()], format!("redis writes paused for {ms} ms (CLIENT PAUSE WRITE)"), Some(until), undo, None)
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
            s.faults.add(action, targets, summary, Some(expires), Undo::Burst { key }, Some(task.abort_handle()))
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
            s.faults.add(action, vec![format!("node-{}", i + 1)], format!("node-{} killed (SIGKILL)", i + 1), None, undo, None)
        }
        REDIS_FREEZE => {
            let frozen = env.freeze_redis(rt)?;
            let summary = match &frozen {
                super::env::Frozen::Process(pid) => format!("redis-server (pid {pid}) stopped (SIGSTOP)"),
                super::env::Frozen::Container(_) => "redis container paused (docker pause)".to_string(),
            };
            s.faults.add(action, vec!["redis".into()], summary, None, Undo::RedisFreeze { frozen }, None)
        }
        other => {
            return Err(PluginError::invalid(format!(
                "unknown chaos action `{other}`; this subject offers {REDIS_PAUSE}, {BURST}, {NODE_KILL}, {REDIS_FREEZE}"
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

/// Undoes what can be undone from the record alone.
pub(super) fn undo_fault(rt: &Runtime, undo: &Undo) -> PluginResult<()> {
    match undo {
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
        } => {
            let http = reqwest::Client::new();
            rt.block_on(super::remedy::put_back_redis(&http, original, standby, nodes))
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
