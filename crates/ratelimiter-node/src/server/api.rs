//! The HTTP API of a node. Every error is a JSON body with a 4xx/5xx status;
//! read paths never write to Redis.

use super::{cached, strict, CheckError, Mode, Node, StoreError, MAX_LIMIT, MAX_WINDOW_MS};
use crate::wire::{
    keys, AdminView, ApiError, CheckRequest, CheckResponse, CountersView, HealthView, Limit,
    ModeChange, RedisChange,
};
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Request bodies are tiny; anything larger is refused before parsing.
pub const MAX_BODY: usize = 4096;
pub const MAX_KEY_LEN: usize = 200;

type Shared = State<Arc<Node>>;

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/check", post(check))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/nodes", get(nodes))
        .route("/api/limits/{key}", put(put_limit).get(get_limit))
        .route("/api/counters", get(counters))
        .route("/api/counters/{key}/reset", post(reset))
        .route("/admin", get(admin_view))
        .route("/admin/mode", put(put_mode))
        .route("/admin/redis", put(put_redis))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(node)
}

/// An error answer: status and a message that says what is wrong and what to do.
struct Failure(StatusCode, String);

impl Failure {
    fn bad(msg: impl Into<String>) -> Self {
        Failure(StatusCode::BAD_REQUEST, msg.into())
    }
    fn respond(self, node: &Node) -> Response {
        if self.0.is_client_error() {
            node.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
        }
        let body = ApiError {
            error: self.1,
            node: node.id.clone(),
            instance: node.instance,
        };
        (self.0, Json(body)).into_response()
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{e}; retry when Redis answers"),
        )
    }
}

fn answer(node: &Node, r: Result<Response, Failure>) -> Response {
    r.unwrap_or_else(|f| f.respond(node))
}

fn valid_key(key: &str) -> Result<(), Failure> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Failure::bad(format!(
            "key must be 1 to {MAX_KEY_LEN} characters long"
        )));
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(Failure::bad(format!(
            "key `{key}` has characters outside letters, digits and - _ . :"
        )));
    }
    Ok(())
}

async fn read_body(body: Body) -> Result<axum::body::Bytes, Failure> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        Failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {MAX_BODY} bytes"),
        )
    })
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(bytes)
        .map_err(|e| Failure::bad(format!("body is not the expected JSON: {e}")))
}

async fn check(State(node): Shared, body: Body) -> Response {
    let start = Instant::now();
    let outcome = async {
        let req: CheckRequest = parse(&read_body(body).await?)?;
        valid_key(&req.key)?;
        let decision = match node.mode.get() {
            Mode::Strict => strict::check(&node, &req.key).await,
            Mode::Cached => cached::check(&node, &req.key).await,
        };
        Ok::<_, Failure>(decision)
    }
    .await;
    let decision = match outcome {
        Ok(d) => d,
        Err(f) => return f.respond(&node),
    };
    let (status, outcome, resp, reset_ms) = match decision {
        Ok(d) => {
            let remaining = d.limit.limit.saturating_sub(d.count);
            let body = CheckResponse {
                allowed: d.allowed,
                current_count: d.count,
                remaining,
                limit: d.limit.limit,
                node: node.id.clone(),
                instance: node.instance,
                retry_after: (!d.allowed).then(|| d.reset_ms as f64 / 1000.0),
                reason: None,
            };
            if d.allowed {
                (
                    StatusCode::OK,
                    super::metrics::Outcome::Allowed,
                    body,
                    d.reset_ms,
                )
            } else {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    super::metrics::Outcome::Denied,
                    body,
                    d.reset_ms,
                )
            }
        }
        Err(CheckError::UnknownKey(k)) => {
            return Failure(StatusCode::NOT_FOUND, CheckError::UnknownKey(k).to_string())
                .respond(&node)
        }
        Err(CheckError::Store(e)) => {
            // Fail closed: no answer from Redis means no permission.
            let body = CheckResponse {
                allowed: false,
                current_count: 0,
                remaining: 0,
                limit: 0,
                node: node.id.clone(),
                instance: node.instance,
                retry_after: Some(1.0),
                reason: Some(e.to_string()),
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                super::metrics::Outcome::Error,
                body,
                1000,
            )
        }
    };
    node.metrics.record_check(outcome, start.elapsed());
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(name, v);
        }
    };
    set("x-ratelimit-limit", resp.limit.to_string());
    set("x-ratelimit-remaining", resp.remaining.to_string());
    set("x-ratelimit-reset", reset_ms.div_ceil(1000).to_string());
    if !resp.allowed {
        set("retry-after", reset_ms.div_ceil(1000).max(1).to_string());
    }
    (status, headers, Json(resp)).into_response()
}

async fn health(State(node): Shared) -> Response {
    let start = Instant::now();
    let mut conn = node.conns().read.clone();
    let ping = node
        .redis(
            node.redis_timeout,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
    let latency = start.elapsed().as_secs_f64() * 1000.0;
    let partitioned = node.partitioned();
    let view = HealthView {
        node: node.id.clone(),
        instance: node.instance,
        mode: node.mode.get().as_str().into(),
        status: if ping.is_ok() && !partitioned {
            "ok"
        } else {
            "degraded"
        }
        .into(),
        redis_reachable: ping.is_ok(),
        redis_latency_ms: ping.is_ok().then_some(latency),
        redis_error: ping.err().map(|e| e.to_string()),
        partitioned,
    };
    Json(view).into_response()
}

async fn metrics(State(node): Shared) -> Response {
    let pending = cached::pending_total(&node) as f64;
    let gauges = [
        (
            "ratelimiter_partitioned",
            "Cached mode: 1 while flushes fail and the node serves from local counts.",
            f64::from(u8::from(node.partitioned())),
        ),
        (
            "ratelimiter_pending_increments",
            "Cached mode: increments allowed here and not yet acknowledged by Redis.",
            pending,
        ),
        (
            "ratelimiter_last_flush_ok_ms",
            "Cached mode: unix ms of the last acknowledged flush.",
            node.flush.last_ok_ms.load(Ordering::Relaxed) as f64,
        ),
    ];
    let text = node
        .metrics
        .render(&node.id, node.instance, node.mode.get().as_str(), &gauges);
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}

async fn nodes(State(node): Shared) -> Response {
    let r = super::registry::list(&node)
        .await
        .map(|n| Json(n).into_response())
        .map_err(Failure::from);
    answer(&node, r)
}

async fn put_limit(
    State(node): Shared,
    key: Result<Path<String>, PathRejection>,
    body: Body,
) -> Response {
    let r = async {
        let Path(key) = key.map_err(|e| Failure::bad(e.body_text()))?;
        valid_key(&key)?;
        #[derive(serde::Deserialize)]
        struct Body {
            limit: i64,
            window_ms: i64,
        }
        let b: Body = parse(&read_body(body).await?)?;
        if b.limit <= 0 || b.limit as u64 > MAX_LIMIT {
            return Err(Failure::bad(format!(
                "limit must be a whole number from 1 to {MAX_LIMIT}, got {}",
                b.limit
            )));
        }
        if b.window_ms <= 0 || b.window_ms as u64 > MAX_WINDOW_MS {
            return Err(Failure::bad(format!(
                "window_ms must be from 1 to {MAX_WINDOW_MS} (one day), got {}",
                b.window_ms
            )));
        }
        let limit = Limit {
            limit: b.limit as u64,
            window_ms: b.window_ms as u64,
        };
        node.write_limit(&key, limit).await?;
        Ok(Json(
            serde_json::json!({"key": key, "limit": limit.limit, "window_ms": limit.window_ms}),
        )
        .into_response())
    }
    .await;
    answer(&node, r)
}

async fn get_limit(State(node): Shared, key: Result<Path<String>, PathRejection>) -> Response {
    let r = async {
        let Path(key) = key.map_err(|e| Failure::bad(e.body_text()))?;
        valid_key(&key)?;
        match node.read_limit(&key).await? {
            Some(l) => Ok(Json(l).into_response()),
            None => Err(Failure(
                StatusCode::NOT_FOUND,
                CheckError::UnknownKey(key).to_string(),
            )),
        }
    }
    .await;
    answer(&node, r)
}

async fn counters(
    State(node): Shared,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let r = async {
        let Query(q) = q.map_err(|e| Failure::bad(e.body_text()))?;
        let key = q
            .get("key")
            .ok_or_else(|| Failure::bad("give the key: /api/counters?key=<key>"))?;
        valid_key(key)?;
        let local = node.keys().get(key).cloned();
        let limit = match local.as_ref().and_then(|s| s.limit) {
            Some(l) => Some(l),
            None => node.read_limit(key).await.ok().flatten(),
        };
        let now = crate::now_ms();
        let window = limit.map_or(0, |l| now / l.window_ms);
        let redis_count = match (limit, node.mode.get()) {
            (Some(l), Mode::Strict) => strict::redis_count(&node, key, l).await,
            (Some(_), Mode::Cached) => {
                let mut conn = node.conns().read.clone();
                node.redis(
                    node.redis_timeout,
                    redis::cmd("GET")
                        .arg(keys::window_counter(key, window))
                        .query_async::<Option<u64>>(&mut conn),
                )
                .await
                .ok()
                .map(|v| v.unwrap_or(0))
            }
            (None, _) => None,
        };
        let last_ok = node.flush.last_ok_ms.load(Ordering::Relaxed);
        Ok(Json(CountersView {
            node: node.id.clone(),
            instance: node.instance,
            mode: node.mode.get().as_str().into(),
            key: key.clone(),
            limit,
            window,
            windows: local
                .map(|s| s.windows.iter().map(|(w, c)| c.view(*w)).collect())
                .unwrap_or_default(),
            partitioned: node.partitioned(),
            last_flush_ok_ms: (last_ok > 0).then_some(last_ok),
            redis_count,
        })
        .into_response())
    }
    .await;
    answer(&node, r)
}

async fn reset(State(node): Shared, key: Result<Path<String>, PathRejection>) -> Response {
    let r = async {
        let Path(key) = key.map_err(|e| Failure::bad(e.body_text()))?;
        valid_key(&key)?;
        let limit = node.read_limit(&key).await?;
        let mut names = vec![keys::strict_log(&key)];
        if let Some(l) = limit {
            let w = crate::now_ms() / l.window_ms;
            names.push(keys::window_counter(&key, w));
            names.push(keys::window_counter(&key, w.saturating_sub(1)));
        }
        let mut conn = node.conns().check.clone();
        let deleted: u64 = node
            .redis(
                node.redis_timeout,
                redis::cmd("DEL").arg(&names).query_async(&mut conn),
            )
            .await?;
        if let Some(state) = node.keys().get_mut(&key) {
            state.windows.clear();
        }
        Ok(
            Json(serde_json::json!({"key": key, "reset": true, "redis_keys_deleted": deleted}))
                .into_response(),
        )
    }
    .await;
    answer(&node, r)
}

fn admin(node: &Node, previous_mode: super::Mode, previous_redis: String) -> Response {
    Json(AdminView {
        node: node.id.clone(),
        instance: node.instance,
        mode: node.mode.get().as_str().into(),
        redis: node.redis_url(),
        previous_mode: previous_mode.as_str().into(),
        previous_redis,
    })
    .into_response()
}

/// The node's run-time configuration (mode and Redis).
async fn admin_view(State(node): Shared) -> Response {
    admin(&node, node.mode.get(), node.redis_url())
}

/// Switches the counting mode at once, for every check that starts after it
/// (an operator's remedy for over-allowing: strict never allows beyond the limit).
async fn put_mode(State(node): Shared, body: Body) -> Response {
    let r = async {
        let change: ModeChange = parse(&read_body(body).await?)?;
        let mode = Mode::parse(&change.mode).ok_or_else(|| {
            Failure::bad(format!(
                "mode `{}` is unknown; use `strict` or `cached`",
                change.mode
            ))
        })?;
        let previous = node.mode.set(mode);
        if previous != mode {
            eprintln!(
                "{}: switched from {} to {} mode (PUT /admin/mode)",
                node.id,
                previous.as_str(),
                mode.as_str()
            );
        }
        Ok(admin(&node, previous, node.redis_url()))
    }
    .await;
    answer(&node, r)
}

/// Points the node at another Redis (a failover); increments not yet flushed
/// go to the new one. Refused unless the new Redis answers PING.
async fn put_redis(State(node): Shared, body: Body) -> Response {
    let r = async {
        let change: RedisChange = parse(&read_body(body).await?)?;
        let conns = super::Conns::connect(&change.url)
            .map_err(|e| Failure::bad(format!("redis URL `{}`: {e}", change.url)))?;
        let mut conn = conns.read.clone();
        node.redis(
            node.redis_timeout,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .map_err(|e| {
            Failure(
                StatusCode::BAD_GATEWAY,
                format!("the new redis at {} does not answer PING: {e}", change.url),
            )
        })?;
        let previous = node.set_redis(&change.url, conns);
        if previous != change.url {
            eprintln!(
                "{}: redis switched from {previous} to {} (PUT /admin/redis)",
                node.id, change.url
            );
        }
        Ok(admin(&node, node.mode.get(), previous))
    }
    .await;
    answer(&node, r)
}

async fn not_found(State(node): Shared) -> Response {
    Failure(
        StatusCode::NOT_FOUND,
        "no such endpoint; see docs/ratelimiter.md for the API".into(),
    )
    .respond(&node)
}

async fn method_not_allowed(State(node): Shared) -> Response {
    Failure(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint".into(),
    )
    .respond(&node)
}
