//! Cached mode, modelled on Kuadrant limitador's `redis_cached` storage: each
//! node decides from its own count plus the shared count it last read from
//! Redis, and flushes its pending increments in one batch every `flush_ms`.
//!
//! The documented trade-off: between flushes the nodes do not see each other's
//! increments, so the cluster can allow more than the limit (ghost allowing);
//! while flushes fail the node counts itself partitioned and serves from local
//! counts, so Redis and the local counts drift apart until a flush lands.
//! Windows are fixed and aligned to the node clock (as envoy's ratelimit does).
//!
//! A flush carries a batch id that Redis records with `SET NX`, so a batch
//! retried after a timeout (under `CLIENT PAUSE WRITE` the first attempt is
//! blocked, not lost, and lands later) is applied exactly once.

use super::{CheckError, Decision, Node};
use crate::wire::keys;
use redis::Script;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

const FLUSH_SOURCE: &str = r#"
local total = 0
for i = 2, #KEYS do total = total + tonumber(ARGV[2 * (i - 1)]) end
local fresh = false
if total > 0 then fresh = redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) end
local out = {}
for i = 2, #KEYS do
  local inc = tonumber(ARGV[2 * (i - 1)])
  local v
  if fresh and inc > 0 then
    v = redis.call('INCRBY', KEYS[i], inc)
    redis.call('PEXPIRE', KEYS[i], ARGV[2 * (i - 1) + 1])
  else
    v = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  out[#out + 1] = v
end
return out
"#;

static FLUSH: LazyLock<Script> = LazyLock::new(|| Script::new(FLUSH_SOURCE));

/// The flusher's state, shared with the API (partitioned flag, last success).
#[derive(Default)]
pub struct FlushState {
    pub partitioned: AtomicBool,
    pub last_ok_ms: AtomicU64,
    in_doubt: Mutex<Option<Batch>>,
    seq: AtomicU64,
}

#[derive(Debug, Clone)]
struct Batch {
    id: String,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    window: u64,
    window_ms: u64,
    inc: u64,
}

pub async fn check(node: &Node, key: &str) -> Result<Decision, CheckError> {
    if let Some(d) = decide(node, key) {
        return Ok(d);
    }
    // Cache miss: learn the limit and the shared count of the current window.
    let limit = node
        .read_limit(key)
        .await?
        .ok_or_else(|| CheckError::UnknownKey(key.to_string()))?;
    let window = crate::now_ms() / limit.window_ms;
    let mut conn = node.conns().read.clone();
    let remote: Option<u64> = node
        .redis(
            node.redis_timeout,
            redis::cmd("GET")
                .arg(keys::window_counter(key, window))
                .query_async(&mut conn),
        )
        .await?;
    {
        let mut keys = node.keys();
        let state = keys.entry(key.to_string()).or_default();
        state.limit = Some(limit);
        let w = state.windows.entry(window).or_default();
        w.remote = w.remote.max(remote.unwrap_or(0));
    }
    decide(node, key).ok_or_else(|| CheckError::UnknownKey(key.to_string()))
}

/// Decides from local state alone; None when the key's limit is not cached.
fn decide(node: &Node, key: &str) -> Option<Decision> {
    let now = crate::now_ms();
    let mut keys = node.keys();
    let state = keys.get_mut(key)?;
    let limit = state.limit?;
    let window = now / limit.window_ms;
    state.last_check_ms = now;
    let w = state.windows.entry(window).or_default();
    let estimate = w.remote + w.pending();
    let allowed = estimate < limit.limit;
    if allowed {
        w.allowed += 1;
    }
    Some(Decision {
        allowed,
        count: estimate + u64::from(allowed),
        limit,
        reset_ms: (window + 1) * limit.window_ms - now,
    })
}

pub async fn flush_loop(node: Arc<Node>) {
    let mut tick = tokio::time::interval(node.flush_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if node.mode.get() == crate::wire::Mode::Strict && !has_unflushed(&node) {
            // Strict checks count in Redis itself; only increments left from a
            // switch out of cached mode still need flushing.
            node.flush.partitioned.store(false, Ordering::Relaxed);
            continue;
        }
        flush_once(&node).await;
        refresh_limits(&node).await;
    }
}

/// Whether increments allowed here have not reached Redis yet (pending, or a batch in doubt).
fn has_unflushed(node: &Node) -> bool {
    node.flush
        .in_doubt
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some()
        || pending_total(node) > 0
}

/// Sends the batch in doubt again, or a new batch of every pending increment
/// (plus zero increments that refresh the shared counts of active keys).
pub async fn flush_once(node: &Node) {
    let retry = node
        .flush
        .in_doubt
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let batch = match retry {
        Some(b) => b,
        None => match next_batch(node) {
            Some(b) => b,
            None => return,
        },
    };
    let mut inv = FLUSH.prepare_invoke();
    let marker_ttl = batch
        .entries
        .iter()
        .map(|e| e.window_ms * 2)
        .max()
        .unwrap_or(0)
        .max(60_000);
    inv.key(keys::batch(&batch.id)).arg(marker_ttl);
    for e in &batch.entries {
        inv.key(keys::window_counter(&e.key, e.window))
            .arg(e.inc)
            .arg(e.window_ms * 2);
    }
    let mut conn = node.conns().flush.clone();
    let call = node.redis(node.flush_timeout, inv.invoke_async::<Vec<u64>>(&mut conn));
    tokio::pin!(call);
    // A flush takes well under a millisecond when Redis takes writes; one that
    // stays unanswered for `flush_stall` means it does not, and the node says so
    // at once rather than after the timeout (the batch stays in doubt meanwhile).
    let result = tokio::select! {
        r = &mut call => r,
        () = tokio::time::sleep(node.flush_stall) => {
            mark_partitioned(node, "a flush is unanswered");
            call.await
        }
    };
    match result {
        Ok(values) if values.len() == batch.entries.len() => {
            {
                let mut keys = node.keys();
                for (e, v) in batch.entries.iter().zip(values) {
                    let w = keys
                        .entry(e.key.clone())
                        .or_default()
                        .windows
                        .entry(e.window)
                        .or_default();
                    w.flushed += e.inc;
                    w.in_batch = 0;
                    w.remote = v;
                }
            }
            *node
                .flush
                .in_doubt
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
            node.flush.partitioned.store(false, Ordering::Relaxed);
            node.flush
                .last_ok_ms
                .store(crate::now_ms(), Ordering::Relaxed);
            node.metrics.flush_ok.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            *node
                .flush
                .in_doubt
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(batch);
            mark_partitioned(node, "a flush failed or timed out");
            node.metrics.flush_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn mark_partitioned(node: &Node, why: &str) {
    if !node.flush.partitioned.swap(true, Ordering::Relaxed) {
        eprintln!(
            "{}: {why}; serving from local counts (partitioned)",
            node.id
        );
    }
}

fn next_batch(node: &Node) -> Option<Batch> {
    let now = crate::now_ms();
    let mut entries = Vec::new();
    let mut keys = node.keys();
    for (key, state) in keys.iter_mut() {
        let Some(limit) = state.limit else { continue };
        let current = now / limit.window_ms;
        state
            .windows
            .retain(|w, c| *w + 1 >= current || c.pending() > 0);
        let active = now.saturating_sub(state.last_check_ms) < 2 * limit.window_ms;
        if active {
            state.windows.entry(current).or_default();
        }
        for (w, c) in state.windows.iter_mut() {
            let inc = c.pending();
            if inc > 0 || (*w == current && active) {
                c.in_batch = inc;
                entries.push(Entry {
                    key: key.clone(),
                    window: *w,
                    window_ms: limit.window_ms,
                    inc,
                });
            }
        }
    }
    keys.retain(|_, s| {
        !s.windows.is_empty()
            || s.limit
                .is_some_and(|l| now.saturating_sub(s.last_check_ms) < 2 * l.window_ms)
    });
    if entries.is_empty() {
        return None;
    }
    let seq = node.flush.seq.fetch_add(1, Ordering::Relaxed);
    Some(Batch {
        id: format!("{}:{}:{seq}", node.id, node.instance),
        entries,
    })
}

/// Re-reads the limits of active keys, so a limit set through another node applies here too.
async fn refresh_limits(node: &Node) {
    let now = crate::now_ms();
    let active: Vec<String> = node
        .keys()
        .iter()
        .filter(|(_, s)| {
            s.limit
                .is_some_and(|l| now.saturating_sub(s.last_check_ms) < 2 * l.window_ms)
        })
        .map(|(k, _)| k.clone())
        .collect();
    if active.is_empty() {
        return;
    }
    let mut pipe = redis::pipe();
    for k in &active {
        pipe.cmd("HMGET")
            .arg(keys::limit(k))
            .arg("limit")
            .arg("window_ms");
    }
    let mut conn = node.conns().read.clone();
    let Ok(found) = node
        .redis(
            node.redis_timeout,
            pipe.query_async::<Vec<(Option<u64>, Option<u64>)>>(&mut conn),
        )
        .await
    else {
        return;
    };
    let mut keys = node.keys();
    for (k, (limit, window_ms)) in active.iter().zip(found) {
        if let Some(state) = keys.get_mut(k) {
            state.limit = match (limit, window_ms) {
                (Some(limit), Some(window_ms)) => Some(crate::wire::Limit { limit, window_ms }),
                _ => None,
            };
        }
    }
}

/// Sum of increments allowed here and not yet acknowledged by Redis.
pub fn pending_total(node: &Node) -> u64 {
    node.keys()
        .values()
        .flat_map(|s| s.windows.values())
        .map(|w| w.pending())
        .sum()
}
