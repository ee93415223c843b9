//! Throughput and p99 of `/check` on a local three-node cluster, next to
//! `redis-benchmark` running the strict mode's script at the same concurrency.
//!
//!     cargo run --release -p ratelimiter-node --features cluster --example bench -- [checks] [concurrency]

use ratelimiter_node::cluster::{put_limit, Cluster, Logs, NodeArgs};
use ratelimiter_node::server::strict::SCRIPT_SOURCE;
use ratelimiter_node::wire::Mode;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let checks: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let concurrency: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(50);
    let bin = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("ratelimiter-node"))
        .unwrap_or_else(|| PathBuf::from("ratelimiter-node"));
    println!(
        "{checks} checks, {concurrency} concurrent, round-robin over 3 nodes; node binary {}",
        bin.display()
    );
    for mode in [Mode::Strict, Mode::Cached] {
        let args = NodeArgs::new(mode).flush_ms(250).redis_timeout_ms(2000);
        let env = tokio::task::block_in_place(|| {
            Cluster::start("redis-server", &bin, Logs::Discard, 3, args)
        })?;
        let http = reqwest::Client::new();
        put_limit(&http, &env.node_urls()[0], "bench", 1_000_000_000, 1000).await?;
        let mode = mode.as_str();
        let (rate, p50, p99) = run(&http, &env.node_urls(), checks, concurrency).await;
        println!("{mode:>6} via HTTP: {rate:>9.0} checks/s  p50 {p50:>6.2} ms  p99 {p99:>6.2} ms");
        if mode == "strict" {
            redis_benchmark(&env, checks, concurrency)?;
        }
        tokio::task::block_in_place(|| env.stop());
    }
    Ok(())
}

async fn run(
    http: &reqwest::Client,
    urls: &[String],
    checks: u64,
    concurrency: u64,
) -> (f64, f64, f64) {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (http, next, urls) = (http.clone(), Arc::clone(&next), urls.to_vec());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= checks {
                    return lat;
                }
                let url = format!("{}/check", urls[n as usize % urls.len()]);
                let t = Instant::now();
                let ok = http
                    .post(url)
                    .json(&serde_json::json!({"key": "bench"}))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                if ok {
                    lat.push(t.elapsed());
                }
            }
        })
    });
    let mut all: Vec<Duration> = Vec::new();
    for w in futures::future::join_all(workers).await {
        all.extend(w.unwrap_or_default());
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    let q = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    (all.len() as f64 / secs, q(0.5), q(0.99))
}

fn redis_benchmark(env: &Cluster, checks: u64, concurrency: u64) -> anyhow::Result<()> {
    let port = env.redis_port().to_string();
    let cli = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &port])
            .args(args)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    cli(&[
        "HSET",
        "rl:limit:rb",
        "limit",
        "1000000000",
        "window_ms",
        "1000",
    ])?;
    let sha = cli(&["SCRIPT", "LOAD", SCRIPT_SOURCE])?;
    let cmd_args = [
        "-p",
        &port,
        "-c",
        &concurrency.to_string(),
        "-n",
        &checks.to_string(),
        "-r",
        "1000000000",
        "--csv",
        "EVALSHA",
        &sha,
        "2",
        "rl:s:rb",
        "rl:limit:rb",
        "m:__rand_int__",
    ];
    println!("redis-benchmark {}", cmd_args.join(" "));
    let out = Command::new("redis-benchmark").args(cmd_args).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().last().unwrap_or_default().replace('"', "");
    let cols: Vec<&str> = row.split(',').collect();
    if cols.len() >= 7 {
        println!(
            "redis-benchmark of the strict script: {:>9} ops/s  p50 {:>6} ms  p99 {:>6} ms",
            cols[1], cols[4], cols[6]
        );
    } else {
        println!("redis-benchmark said: {text}");
    }
    Ok(())
}
