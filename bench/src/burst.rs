//! Group 3: the plugin's burst generator (its own `burst::run`, the code the
//! `burst` chaos action runs) against `wrk` at the same node and concurrency,
//! and the time a 2× burst of a 1,000 limit takes to land on three nodes.

use crate::env::{put_limit, tool, Node, Redis};
use crate::report::{Row, Verdict};
use crate::stats::Summary;
use crate::{wrk, Opts};
use anyhow::Context as _;
use ratelimiter_node::wire::Mode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subject_ratelimiter::plugin::burst::{self, MAX_CONCURRENCY};
use subject_ratelimiter::plugin::load::Accounting;
use subject_ratelimiter::wire::Limit;

const GROUP: &str = "3 burst generator";
const LIMIT: u64 = 1000;

/// A window in whose first half we are now, so that `burst::run` never waits
/// for a window start (that wait is the demo's choice, not the generator's speed).
fn window_now() -> u64 {
    let now = subject_ratelimiter::now_ms();
    [3_600_000u64, 3_000_000, 2_400_000, 1_800_000, 1_200_000]
        .into_iter()
        .find(|w| now % w < w / 2 - 120_000)
        .unwrap_or(86_400_000)
}

/// The plugin's HTTP client settings (see `RateLimiterSubject::create`).
fn plugin_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .connect_timeout(Duration::from_millis(300))
        .build()?)
}

pub fn run(opts: &Opts, rt: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let redis = Redis::start()?;
    let nodes = (1..=3)
        .map(|i| Node::start(&format!("node-{i}"), Mode::Cached, &redis))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let trials = if opts.quick { 3 } else { 20 };
    let count = if opts.quick { 4_000 } else { 40_000 };
    let mut rows = Vec::new();
    rt.block_on(async {
        let http = plugin_client()?;
        let window_ms = window_now();
        let limit = Limit {
            limit: LIMIT,
            window_ms,
        };
        // Throughput: the generator against one node, then wrk against the same node.
        put_limit(&http, &urls[0], "gen", LIMIT, window_ms).await?;
        put_limit(&http, &urls[0], "wrk", LIMIT, window_ms).await?;
        // Warm-up: connections and the key's limit cached on the node.
        let window = burst::align_to_window(window_ms).await;
        burst::run(
            http.clone(),
            Arc::new(Accounting::new(1)),
            vec![urls[0].clone()],
            "gen".into(),
            limit,
            500,
            window,
        )
        .await;
        // Paired trials, the generator then wrk for as long, so that both see the same machine.
        let wrk_bin = tool("wrk");
        let pairs = if opts.quick { 1 } else { 5 };
        let (mut rates, mut bases, mut failures) = (Vec::new(), Vec::new(), 0);
        for _ in 0..pairs {
            let window = burst::align_to_window(window_ms).await;
            let started = Instant::now();
            let rec = burst::run(
                http.clone(),
                Arc::new(Accounting::new(1)),
                vec![urls[0].clone()],
                "gen".into(),
                limit,
                count,
                window,
            )
            .await;
            let secs = started.elapsed().as_secs_f64();
            failures += rec.errors + rec.unknown;
            rates.push(rec.sent.saturating_sub(rec.errors + rec.unknown) as f64 / secs);
            if let Some(bin) = &wrk_bin {
                bases.push(
                    wrk::post_checks(bin, &urls[0], "wrk", MAX_CONCURRENCY, secs.ceil() as u64)?
                        .rps,
                );
            }
        }
        let rate = Summary::of(&rates).context("no burst trial")?.p50;
        let result = format!(
            "{rate:.0} checks/s (median of {pairs} bursts of {count} checks, {MAX_CONCURRENCY} in flight, {failures} errors)"
        );
        if bases.is_empty() {
            rows.push(Row::new(GROUP, "burst generator → one node", result));
            rows.push(Row::skipped(
                GROUP,
                "wrk baseline",
                "wrk is not installed (Debian package wrk)",
            ));
        } else {
            let base = Summary::of(&bases).context("no wrk trial")?.p50;
            let ratios: Vec<f64> = rates.iter().zip(&bases).map(|(r, b)| r / b).collect();
            let (lo, hi) = ratios
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
            rows.push(
                Row::new(GROUP, "burst generator → one node", result)
                    .baseline(
                        format!(
                            "wrk -c{MAX_CONCURRENCY}, as long, after each burst: median {base:.0} req/s (pair ratios {lo:.2}–{hi:.2})"
                        ),
                        Some(rate / base),
                    )
                    .target("ratio ≥ 0.8", Verdict::at_least(rate / base, 0.8)),
            );
        }
        // Delivery: a 2× burst of a 1,000 limit over three nodes, fresh key each trial.
        let mut took = Vec::new();
        let mut over = 0u64;
        for t in 0..trials {
            let key = format!("b{t}-{}", subject_ratelimiter::now_ms());
            put_limit(&http, &urls[0], &key, LIMIT, window_ms).await?;
            let window = burst::align_to_window(window_ms).await;
            let started = Instant::now();
            let rec = burst::run(
                http.clone(),
                Arc::new(Accounting::new(3)),
                urls.clone(),
                key,
                limit,
                2 * LIMIT,
                window,
            )
            .await;
            took.push(started.elapsed());
            over = over.max(rec.allowed.saturating_sub(LIMIT));
        }
        let s = Summary::of_ms(&took).context("no burst trial")?;
        rows.push(
            Row::new(
                GROUP,
                format!("2× burst of a 1,000 limit over 3 nodes (n={})", s.n),
                format!(
                    "p50 {:.0} ms · p99 {:.0} ms · at most {over} over the limit",
                    s.p50, s.p99
                ),
            )
            .target("p50 ≤ 250 ms", Verdict::at_most(s.p50, 250.0)),
        );
        Ok::<_, anyhow::Error>(())
    })?;
    drop(nodes);
    drop(redis);
    Ok(rows)
}
