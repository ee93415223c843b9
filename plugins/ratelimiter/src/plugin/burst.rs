//! The burst: `multiplier × limit` concurrent checks round-robin over the nodes,
//! all inside one fixed window of a fresh key, with the burst's own accounting.

use super::load::{send_check, Accounting, Outcome};
use crate::wire::{CountersView, Limit};
use futures::future::join_all;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// At most this many checks of a burst are in flight at once.
pub const MAX_CONCURRENCY: usize = 256;

/// What one burst did, from its own accounting and the nodes' counters afterwards.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BurstRecord {
    pub key: String,
    pub limit: u64,
    pub window_ms: u64,
    pub window: u64,
    pub sent: u64,
    pub allowed: u64,
    pub denied: u64,
    pub errors: u64,
    pub unknown: u64,
    /// Allowed answers per node, in node order.
    pub allowed_by_node: Vec<u64>,
    /// Sum of the nodes' own allowed counts for the window, when all nodes answered.
    pub nodes_allowed: Option<u64>,
    pub finished_ms: u64,
}

/// Waits for the start of a window if the current one has less than half left,
/// so that the whole burst lands in one window.
pub async fn align_to_window(window_ms: u64) -> u64 {
    let now = crate::now_ms();
    let into = now % window_ms;
    if into > window_ms / 2 {
        tokio::time::sleep(Duration::from_millis(window_ms - into + 5)).await;
    }
    crate::now_ms() / window_ms
}

/// Sends the burst inside `window`, which the caller waited for with [`align_to_window`].
pub async fn run(
    http: reqwest::Client,
    acc: Arc<Accounting>,
    nodes: Vec<String>,
    key: String,
    limit: Limit,
    count: u64,
    window: u64,
) -> BurstRecord {
    let gate = Arc::new(Semaphore::new(MAX_CONCURRENCY));
    // Each check is a task of its own, so the runtime's workers share the burst.
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..count {
        let i = n as usize % nodes.len();
        let permit = Arc::clone(&gate).acquire_owned().await;
        let (http, acc, url, key) = (
            http.clone(),
            Arc::clone(&acc),
            nodes[i].clone(),
            key.clone(),
        );
        sends.spawn(async move {
            let _permit = permit;
            (i, send_check(&http, &acc, i, &url, &key).await)
        });
    }
    let outcomes = sends.join_all().await;
    let mut rec = BurstRecord {
        key: key.clone(),
        limit: limit.limit,
        window_ms: limit.window_ms,
        window,
        sent: count,
        allowed_by_node: vec![0; nodes.len()],
        ..BurstRecord::default()
    };
    for (i, o) in outcomes {
        match o {
            Outcome::Allowed => {
                rec.allowed += 1;
                rec.allowed_by_node[i] += 1;
            }
            Outcome::Denied => rec.denied += 1,
            Outcome::Unknown => rec.unknown += 1,
            _ => rec.errors += 1,
        }
    }
    let views = join_all(nodes.iter().map(|url| {
        let http = http.clone();
        let url = format!("{url}/api/counters?key={key}");
        async move {
            let r = http
                .get(url)
                .timeout(Duration::from_millis(500))
                .send()
                .await
                .ok()?;
            r.json::<CountersView>().await.ok()
        }
    }))
    .await;
    rec.nodes_allowed = views
        .iter()
        .map(|v| {
            v.as_ref().map(|v| {
                v.windows
                    .iter()
                    .filter(|w| w.window == window)
                    .map(|w| w.allowed)
                    .sum::<u64>()
            })
        })
        .sum();
    rec.finished_ms = crate::now_ms();
    rec
}
