//! The `ratelimiter-node` service: a rate limiter node that shares its counts
//! through Redis, in one of two documented counting modes (see `docs/ratelimiter.md`).

pub mod api;
pub mod cached;
pub mod metrics;
pub mod registry;
pub mod strict;

use crate::wire::{keys, Limit, WindowView};
pub use crate::wire::{Mode, MAX_LIMIT, MAX_WINDOW_MS};
use axum::serve::ListenerExt as _;
use metrics::Metrics;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

/// Command line of `ratelimiter-node`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ratelimiter-node", about = "A Redis-backed rate limiter node")]
pub struct Args {
    /// Node id, unique in the cluster (`node-1`).
    #[arg(long, env = "RATELIMITER_ID", default_value = "node-1")]
    pub id: String,
    /// Address to listen on.
    #[arg(long, env = "RATELIMITER_LISTEN", default_value = "127.0.0.1:8001")]
    pub listen: String,
    /// URL other parties reach this node at (defaults to http://<listen>).
    #[arg(long, env = "RATELIMITER_ADVERTISE")]
    pub advertise: Option<String>,
    #[arg(
        long,
        env = "RATELIMITER_REDIS",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis: String,
    #[arg(long, env = "RATELIMITER_MODE", value_enum, default_value = "cached")]
    pub mode: Mode,
    /// Cached mode: how often pending increments are flushed to Redis.
    #[arg(long, env = "RATELIMITER_FLUSH_MS", default_value_t = 100)]
    pub flush_ms: u64,
    /// Cached mode: how long a flush may stay unanswered before the node counts
    /// itself partitioned (it keeps waiting for the answer until the timeout).
    #[arg(long, env = "RATELIMITER_FLUSH_STALL_MS", default_value_t = 50)]
    pub flush_stall_ms: u64,
    /// Cached mode: how long a flush may take before it is given up and retried (default: flush_ms).
    #[arg(long, env = "RATELIMITER_FLUSH_TIMEOUT_MS")]
    pub flush_timeout_ms: Option<u64>,
    /// How long any other Redis call may take (strict checks fail closed after it).
    #[arg(long, env = "RATELIMITER_REDIS_TIMEOUT_MS", default_value_t = 250)]
    pub redis_timeout_ms: u64,
    /// Threads serving requests: 0 for one per core, 1 for a single event loop
    /// (what to run when several nodes share a small machine).
    #[arg(long, env = "RATELIMITER_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Heartbeat period of the registration in Redis (its TTL is five periods).
    #[arg(long, env = "RATELIMITER_HEARTBEAT_MS", default_value_t = 2000)]
    pub heartbeat_ms: u64,
}

/// Why a Redis call gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis error: {0}")]
    Redis(String),
}

/// One window of a key's local counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowCount {
    pub allowed: u64,
    pub flushed: u64,
    /// Part of `allowed - flushed` that is in the batch being sent.
    pub in_batch: u64,
    pub remote: u64,
}

impl WindowCount {
    pub fn pending(&self) -> u64 {
        self.allowed.saturating_sub(self.flushed)
    }

    pub fn view(&self, window: u64) -> WindowView {
        WindowView {
            window,
            allowed: self.allowed,
            flushed: self.flushed,
            pending: self.pending(),
            remote: self.remote,
        }
    }
}

/// What a node knows locally about one key.
#[derive(Debug, Clone, Default)]
pub struct KeyState {
    pub limit: Option<Limit>,
    pub windows: BTreeMap<u64, WindowCount>,
    pub last_check_ms: u64,
}

/// Separate connections so that a write blocked by `CLIENT PAUSE WRITE` (which
/// holds up everything queued behind it on its connection) never stalls reads.
pub struct Conns {
    pub check: ConnectionManager,
    pub read: ConnectionManager,
    pub flush: ConnectionManager,
    pub heartbeat: ConnectionManager,
}

impl Conns {
    /// Lazy connections to the Redis at `url` (nothing is sent until first use).
    pub fn connect(url: &str) -> Result<Conns, StoreError> {
        // TCP_NODELAY: the check connection carries concurrent scripts, and
        // Nagle would hold each behind the ACK of the one before.
        let info = redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(|e| StoreError::Redis(e.to_string()))?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).map_err(|e| StoreError::Redis(e.to_string()))?;
        let conn = || {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_millis(500)))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            ConnectionManager::new_lazy_with_config(client.clone(), config)
                .map_err(|e| StoreError::Redis(e.to_string()))
        };
        Ok(Conns {
            check: conn()?,
            read: conn()?,
            flush: conn()?,
            heartbeat: conn()?,
        })
    }
}

/// The counting mode, switchable at run time (`PUT /admin/mode`).
#[derive(Debug)]
pub struct ModeCell(AtomicBool);

impl ModeCell {
    pub fn new(mode: Mode) -> ModeCell {
        ModeCell(AtomicBool::new(mode == Mode::Strict))
    }
    pub fn get(&self) -> Mode {
        if self.0.load(Ordering::Relaxed) {
            Mode::Strict
        } else {
            Mode::Cached
        }
    }
    /// Switches the mode; returns the previous one.
    pub fn set(&self, mode: Mode) -> Mode {
        if self.0.swap(mode == Mode::Strict, Ordering::Relaxed) {
            Mode::Strict
        } else {
            Mode::Cached
        }
    }
}

pub struct Node {
    pub id: String,
    pub instance: u64,
    pub mode: ModeCell,
    pub advertise: String,
    pub redis_timeout: Duration,
    pub flush_every: Duration,
    pub flush_timeout: Duration,
    pub flush_stall: Duration,
    pub heartbeat_every: Duration,
    /// The Redis in use and its connections; replaced by `PUT /admin/redis`.
    redis: RwLock<(String, Arc<Conns>)>,
    pub metrics: Metrics,
    pub keys: Mutex<HashMap<String, KeyState>>,
    pub flush: cached::FlushState,
}

impl Node {
    pub fn new(args: &Args) -> Result<Arc<Node>, StoreError> {
        let flush_timeout =
            Duration::from_millis(args.flush_timeout_ms.unwrap_or(args.flush_ms).max(10));
        Ok(Arc::new(Node {
            id: args.id.clone(),
            instance: crate::now_ms(),
            mode: ModeCell::new(args.mode),
            advertise: args
                .advertise
                .clone()
                .unwrap_or_else(|| format!("http://{}", args.listen)),
            redis_timeout: Duration::from_millis(args.redis_timeout_ms.max(1)),
            flush_every: Duration::from_millis(args.flush_ms.max(10)),
            flush_timeout,
            flush_stall: Duration::from_millis(args.flush_stall_ms.max(1)).min(flush_timeout),
            heartbeat_every: Duration::from_millis(args.heartbeat_ms.max(100)),
            redis: RwLock::new((args.redis.clone(), Arc::new(Conns::connect(&args.redis)?))),
            metrics: Metrics::default(),
            keys: Mutex::new(HashMap::new()),
            flush: cached::FlushState::default(),
        }))
    }

    /// The connections to the current Redis (cheap: connection managers are shared handles).
    pub fn conns(&self) -> Arc<Conns> {
        Arc::clone(&self.redis.read().unwrap_or_else(|p| p.into_inner()).1)
    }

    /// The URL of the Redis the node uses now.
    pub fn redis_url(&self) -> String {
        self.redis
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// Points the node at another Redis (an operator's failover) through
    /// `conns`, made for `url`; calls in flight finish on the old one.
    /// Returns the previous URL.
    pub fn set_redis(&self, url: &str, conns: Conns) -> String {
        let mut cur = self.redis.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *cur, (url.to_string(), Arc::new(conns))).0
    }

    /// Runs a Redis call with a deadline, recording its latency and failures.
    pub async fn redis<T>(
        &self,
        limit: Duration,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let start = Instant::now();
        let result = tokio::time::timeout(limit, call).await;
        self.metrics.redis_latency.observe(start.elapsed());
        let out = match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Redis(e.to_string())),
            Err(_) => Err(StoreError::Timeout(limit)),
        };
        if out.is_err() {
            self.metrics.redis_errors.fetch_add(1, Ordering::Relaxed);
        }
        out
    }

    pub fn keys(&self) -> MutexGuard<'_, HashMap<String, KeyState>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads a key's configured limit from Redis (None when none is set).
    pub async fn read_limit(&self, key: &str) -> Result<Option<Limit>, StoreError> {
        let mut conn = self.conns().read.clone();
        let (limit, window): (Option<u64>, Option<u64>) = self
            .redis(
                self.redis_timeout,
                redis::cmd("HMGET")
                    .arg(keys::limit(key))
                    .arg("limit")
                    .arg("window_ms")
                    .query_async(&mut conn),
            )
            .await?;
        Ok(match (limit, window) {
            (Some(limit), Some(window_ms)) => Some(Limit { limit, window_ms }),
            _ => None,
        })
    }

    pub async fn write_limit(&self, key: &str, limit: Limit) -> Result<(), StoreError> {
        let mut conn = self.conns().check.clone();
        let () = self
            .redis(
                self.redis_timeout,
                redis::cmd("HSET")
                    .arg(keys::limit(key))
                    .arg("limit")
                    .arg(limit.limit)
                    .arg("window_ms")
                    .arg(limit.window_ms)
                    .query_async(&mut conn),
            )
            .await
            .map(|_: i64| ())?;
        self.keys().entry(key.to_string()).or_default().limit = Some(limit);
        Ok(())
    }

    /// Strict mode: records an allowed check (already counted by Redis) in this
    /// node's own tally, under the window of the Redis time it was allowed at.
    pub fn tally_strict(&self, key: &str, limit: Limit, at_ms: u64) {
        let mut keys = self.keys();
        let state = keys.entry(key.to_string()).or_default();
        state.limit = Some(limit);
        state.last_check_ms = at_ms;
        let window = at_ms / limit.window_ms;
        state.windows.retain(|w, _| *w + 1 >= window);
        let w = state.windows.entry(window).or_default();
        w.allowed += 1;
        w.flushed += 1;
    }

    pub fn partitioned(&self) -> bool {
        self.flush.partitioned.load(Ordering::Relaxed)
    }
}

/// Starts the node's background loops and serves the API until the listener fails.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let node = Node::new(&args)?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    eprintln!(
        "ratelimiter-node {} ({} mode) listening on {}, redis {}",
        node.id,
        node.mode.get().as_str(),
        listener.local_addr()?,
        args.redis
    );
    tokio::spawn(registry::heartbeat_loop(Arc::clone(&node)));
    // Also in strict mode: the mode can be switched at run time, and a switch
    // to strict leaves cached increments that must still reach Redis.
    tokio::spawn(cached::flush_loop(Arc::clone(&node)));
    // Answers are small and latency is the product: no Nagle delay.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, api::router(node)).await?;
    Ok(())
}

/// The verdict on one check.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    /// The count the decision was made against, including this check when allowed.
    pub count: u64,
    pub limit: Limit,
    /// Milliseconds until the count falls (window end, or oldest entry leaving the window).
    pub reset_ms: u64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckError {
    #[error("no limit is configured for key `{0}`; set one with PUT /api/limits/{0}")]
    UnknownKey(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
