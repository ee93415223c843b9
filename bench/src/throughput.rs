//! Group 2: one ratelimiter-node's checks/s and latency at 1, 16 and 64
//! concurrent keep-alive clients, against `redis-benchmark` running the same
//! strict-mode script (EVALSHA) at the same concurrency: a strict check needs
//! one Redis round trip, so that rate is the physical limit.

use crate::env::{put_limit, tool, Node, Redis};
use crate::report::{Row, Verdict};
use crate::stats::Summary;
use crate::Opts;
use anyhow::{bail, Context as _};
use std::process::Command;
use std::time::{Duration, Instant};

const GROUP: &str = "2 node throughput";
const CONCURRENCY: [usize; 3] = [1, 16, 64];
/// High enough never to deny: the benchmark measures the check, not the denial path.
const LIMIT: u64 = 1_000_000_000;
const WINDOW_MS: u64 = 1000;

pub struct Load {
    /// Latency of every decided check, in ms.
    pub raw_ms: Vec<f64>,
    pub checks: u64,
    pub errors: u64,
    pub secs: f64,
    pub latency: Option<Summary>,
}

impl Load {
    pub fn rate(&self) -> f64 {
        self.checks as f64 / self.secs
    }
}

pub fn client(conc: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(conc.max(1))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(5))
        .build()?)
}

/// `conc` clients each sending checks back to back for `secs` (closed loop).
pub async fn closed_loop(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    conc: usize,
    secs: f64,
) -> Load {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let tasks = (0..conc).map(|_| {
        let (http, url, key) = (http.clone(), format!("{url}/check"), key.to_string());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                if check(&http, &url, &key).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        })
    });
    gather(tasks, started).await
}

/// Waits for the clients and pools their latencies and errors into one [`Load`].
async fn gather(
    clients: impl Iterator<Item = tokio::task::JoinHandle<(Vec<Duration>, u64)>>,
    started: Instant,
) -> Load {
    let mut all = Vec::new();
    let mut errors = 0;
    for (lat, e) in futures::future::join_all(clients)
        .await
        .into_iter()
        .flatten()
    {
        all.extend(lat);
        errors += e;
    }
    Load {
        raw_ms: all.iter().map(|d| d.as_secs_f64() * 1e3).collect(),
        checks: all.len() as u64,
        errors,
        secs: started.elapsed().as_secs_f64(),
        latency: Summary::of_ms(&all),
    }
}

/// `conc` clients sending at `rate` checks/s in total (open loop); latency
/// counts from the scheduled send time, so a stalled server is not hidden.
pub async fn open_loop(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    conc: usize,
    rate: f64,
    secs: f64,
) -> Load {
    let per_client = Duration::from_secs_f64(conc as f64 / rate.max(1.0));
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
    let tasks = (0..conc).map(|i| {
        let (http, url, key) = (http.clone(), format!("{url}/check"), key.to_string());
        tokio::spawn(async move {
            let offset = per_client.mul_f64(i as f64 / conc as f64);
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + offset, per_client);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut lat = Vec::new();
            let mut errors = 0u64;
            loop {
                let scheduled = tick.tick().await;
                if scheduled >= deadline {
                    break;
                }
                if check(&http, &url, &key).await {
                    lat.push(scheduled.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        })
    });
    gather(tasks, started).await
}

/// One `POST /check`; true when the node decided (allowed or denied).
async fn check(http: &reqwest::Client, url: &str, key: &str) -> bool {
    let body = format!("{{\"key\":\"{key}\"}}");
    match http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) => {
            let decided = r.status().as_u16() == 200 || r.status().as_u16() == 429;
            let _ = r.bytes().await;
            decided
        }
        Err(_) => false,
    }
}

pub struct Bench {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `redis-benchmark` running the strict-mode script itself: each call a fresh
/// member, like the node's per-check member.
fn redis_benchmark(
    bin: &std::path::Path,
    redis: &Redis,
    sha: &str,
    conc: usize,
    requests: u64,
) -> anyhow::Result<Bench> {
    let out = Command::new(bin)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &redis.port.to_string(),
            "-c",
            &conc.to_string(),
            "-n",
            &requests.to_string(),
        ])
        .args([
            "-r",
            "1000000000",
            "--csv",
            "EVALSHA",
            sha,
            "2",
            "rl:s:rbench",
            "rl:limit:rbench",
            "m:__rand_int__",
        ])
        .output()
        .context("running redis-benchmark")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_csv(&text).with_context(|| {
        format!(
            "redis-benchmark printed no result: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Reads `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms",...`.
fn parse_csv(text: &str) -> anyhow::Result<Bench> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .context("no header")?
        .split(',')
        .map(|c| c.trim_matches('"').to_string())
        .collect();
    let row: Vec<String> = lines
        .next_back()
        .context("no row")?
        .split(',')
        .map(|c| c.trim_matches('"').to_string())
        .collect();
    let col = |name: &str| -> anyhow::Result<f64> {
        let i = header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no column {name}"))?;
        Ok(row.get(i).context("short row")?.parse()?)
    };
    Ok(Bench {
        rps: col("rps")?,
        p50_ms: col("p50_latency_ms")?,
        p99_ms: col("p99_latency_ms")?,
    })
}

/// The slow tail: how many checks took 20 ms or more, and their median (a
/// cluster near 40 ms is the signature of delayed ACKs; spread-out values, of CPU contention).
fn tail(l: &Load) -> String {
    let slow: Vec<f64> = l.raw_ms.iter().copied().filter(|ms| *ms >= 20.0).collect();
    match Summary::of(&slow) {
        Some(s) => format!(
            " · {:.2}% ≥ 20 ms (their p50 {:.1} ms)",
            100.0 * s.n as f64 / l.raw_ms.len().max(1) as f64,
            s.p50
        ),
        None => " · none ≥ 20 ms".into(),
    }
}

fn fmt_load(l: &Load) -> String {
    let lat = l.latency.as_ref().map_or("no answers".into(), |s| {
        format!("p50 {:.2} ms · p99 {:.2} ms", s.p50, s.p99)
    });
    let errs = if l.errors > 0 {
        format!(" · {} errors", l.errors)
    } else {
        String::new()
    };
    format!("{:.0} checks/s · {lat}{errs}", l.rate())
}

pub fn run(opts: &Opts, rt: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let Some(bench_bin) = tool("redis-benchmark") else {
        return Ok(vec![Row::skipped(
            GROUP,
            "all",
            "redis-benchmark is not installed (Debian package redis-tools)",
        )]);
    };
    let secs = if opts.quick { 0.5 } else { 5.0 };
    let redis = Redis::start()?;
    let mut conn = redis.conn()?;
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(subject_ratelimiter::node::strict::SCRIPT_SOURCE)
        .query(&mut conn)?;
    let () = redis::cmd("HSET")
        .arg("rl:limit:rbench")
        .arg("limit")
        .arg(LIMIT)
        .arg("window_ms")
        .arg(WINDOW_MS)
        .query(&mut conn)
        .map(|_: i64| ())?;
    let strict = Node::start("bench-strict", "strict", &redis)?;
    let cached = Node::start("bench-cached", "cached", &redis)?;
    let mut rows = Vec::new();
    let mut peak = 0.0;
    rt.block_on(async {
        let http = client(64)?;
        put_limit(&http, &strict.url, "bench", LIMIT, WINDOW_MS).await?;
        put_limit(&http, &cached.url, "bench-cached", LIMIT, WINDOW_MS).await?;
        // Warm up connections, the script cache and the allocator.
        closed_loop(&http, &strict.url, "bench", 16, 0.3).await;
        for conc in CONCURRENCY {
            let load = closed_loop(&http, &strict.url, "bench", conc, secs).await;
            if load.checks == 0 {
                bail!("the strict node answered no check at {conc} clients");
            }
            let requests = ((load.rate() * secs).max(1000.0)) as u64;
            let base = redis_benchmark(&bench_bin, &redis, &sha, conc, requests)?;
            let ratio = load.rate() / base.rps;
            let mut row = Row::new(
                GROUP,
                format!(
                    "strict node, {conc} client{}",
                    if conc == 1 { "" } else { "s" }
                ),
                fmt_load(&load),
            )
            .baseline(
                format!(
                    "redis-benchmark EVALSHA: {:.0}/s · p50 {:.2} ms · p99 {:.2} ms",
                    base.rps, base.p50_ms, base.p99_ms
                ),
                Some(ratio),
            );
            if conc == 64 {
                peak = load.rate();
                row = row.target("≥ 0.50 of redis-benchmark", Verdict::at_least(ratio, 0.5));
            }
            rows.push(row);
        }
        let half = peak / 2.0;
        let paced = open_loop(&http, &strict.url, "bench", 64, half, secs.max(1.0)).await;
        let p99 = paced.latency.as_ref().map_or(f64::INFINITY, |s| s.p99);
        rows.push(
            Row::new(
                GROUP,
                format!("strict node at half peak ({half:.0}/s offered, 64 clients, open loop)"),
                fmt_load(&paced) + &tail(&paced),
            )
            .target("p99 ≤ 5 ms", Verdict::at_most(p99, 5.0)),
        );
        let light_rate = (peak / 8.0).max(50.0);
        let light = open_loop(&http, &strict.url, "bench", 64, light_rate, secs.max(1.0)).await;
        rows.push(Row::new(
            GROUP,
            format!("strict node at 1/8 peak ({light_rate:.0}/s offered, 64 clients, open loop)"),
            fmt_load(&light) + &tail(&light),
        ));
        closed_loop(&http, &cached.url, "bench-cached", 16, 0.3).await;
        let load = closed_loop(&http, &cached.url, "bench-cached", 64, secs).await;
        let base = redis_benchmark(
            &bench_bin,
            &redis,
            &sha,
            64,
            ((load.rate() * secs).max(1000.0)) as u64,
        )?;
        rows.push(
            Row::new(
                GROUP,
                "cached node (default mode), 64 clients",
                fmt_load(&load),
            )
            .baseline(
                format!("redis-benchmark EVALSHA: {:.0}/s", base.rps),
                Some(load.rate() / base.rps),
            ),
        );
        Ok(())
    })?;
    drop((strict, cached, redis));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redis_benchmark_csv() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\"EVALSHA\",\"41000.50\",\"1.2\",\"0.1\",\"1.100\",\"2.0\",\"3.500\",\"9\"\n";
        let b = parse_csv(csv).unwrap();
        assert_eq!((b.rps, b.p50_ms, b.p99_ms), (41000.5, 1.1, 3.5));
        assert!(parse_csv("").is_err());
    }
}
