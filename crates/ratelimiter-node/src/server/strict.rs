//! Strict mode: every check is one atomic sliding-window-log script in Redis.
//! The script reads the key's limit, uses Redis `TIME` (node clocks do not
//! matter), trims, counts, adds and sets the expiry in one step, so the cluster
//! can never allow more than the limit in any window. When Redis does not answer
//! in time the node fails closed.

use super::{CheckError, Decision, Node};
use crate::wire::{keys, Limit};
use redis::Script;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

pub const SCRIPT_SOURCE: &str = r#"
local lim = redis.call('HMGET', KEYS[2], 'limit', 'window_ms')
if not lim[1] or not lim[2] then return {-1, 0, 0, 0, 0, 0} end
local limit = tonumber(lim[1])
local window = tonumber(lim[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], window)
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, count + 1, limit, window, now, tonumber(oldest[2]) + window - now}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local retry = window
if oldest[2] then retry = tonumber(oldest[2]) + window - now end
return {0, count, limit, window, now, retry}
"#;

static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SCRIPT_SOURCE));
static SEQ: AtomicU64 = AtomicU64::new(0);

pub async fn check(node: &Node, key: &str) -> Result<Decision, CheckError> {
    let member = format!(
        "{}:{}:{}",
        node.id,
        node.instance,
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = node.conns().check.clone();
    let mut invocation = SCRIPT.key(keys::strict_log(key));
    invocation.key(keys::limit(key)).arg(member);
    let r: Vec<i64> = node
        .redis(node.redis_timeout, invocation.invoke_async(&mut conn))
        .await?;
    let [code, count, limit, window_ms, now, reset] = r[..] else {
        return Err(CheckError::Store(super::StoreError::Redis(format!(
            "unexpected script reply {r:?}"
        ))));
    };
    if code < 0 {
        return Err(CheckError::UnknownKey(key.to_string()));
    }
    let limit = Limit {
        limit: limit as u64,
        window_ms: window_ms.max(1) as u64,
    };
    if code == 1 {
        node.tally_strict(key, limit, now as u64);
    }
    Ok(Decision {
        allowed: code == 1,
        count: count as u64,
        limit,
        reset_ms: reset.max(0) as u64,
    })
}

/// What Redis holds for the key's current window, read-only (node clock).
pub async fn redis_count(node: &Node, key: &str, limit: Limit) -> Option<u64> {
    let mut conn = node.conns().read.clone();
    let since = crate::now_ms().saturating_sub(limit.window_ms);
    node.redis(
        node.redis_timeout,
        redis::cmd("ZCOUNT")
            .arg(keys::strict_log(key))
            .arg(format!("({since}"))
            .arg("+inf")
            .query_async(&mut conn),
    )
    .await
    .ok()
}
