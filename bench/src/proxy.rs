//! Group 7: what the fault proxy (`crates/fault-proxy`, issue 17) costs with
//! no fault, and how exact a configured delay is. A real `redis-server`, a
//! `Proxy` route in front of it in this process (on the bench's runtime, as
//! a plugin would run it), and each figure against the same client talking
//! to Redis directly, in the same run, trials interleaved so that a busy
//! spell of the machine falls on both sides.

use crate::env::{run_tool, tool, Redis};
use crate::report::{Row, Verdict};
use crate::stats::Summary;
use crate::throughput::{parse_csv, Bench};
use crate::Opts;
use anyhow::{bail, Context as _};
use fault_proxy::{Direction, Fault, Proxy, RouteSpec};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const GROUP: &str = "7 fault proxy";
/// The delay whose accuracy is measured (issue 17: p50 within ±2 ms of it).
const DELAY_MS: f64 = 50.0;

/// `redis-benchmark -t get` at `conc` clients (pipeline depth `pipeline`) against `addr`.
fn redis_benchmark(
    bin: &Path,
    addr: SocketAddr,
    conc: usize,
    pipeline: usize,
    requests: u64,
) -> anyhow::Result<Bench> {
    run_tool(
        Command::new(bin).args([
            "-h",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "-c",
            &conc.to_string(),
            "-P",
            &pipeline.to_string(),
            "-n",
            &requests.to_string(),
            "-t",
            "get",
            "--csv",
        ]),
        "redis-benchmark",
        parse_csv,
    )
}

/// One keep-alive connection sending `PING` and waiting for `+PONG`: the
/// smallest request/answer, so that the proxy's hop is most of what differs.
struct Pinger {
    s: TcpStream,
}

impl Pinger {
    fn connect(addr: SocketAddr) -> anyhow::Result<Pinger> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Pinger { s })
    }

    fn ping(&mut self) -> anyhow::Result<Duration> {
        let mut answer = [0u8; 7];
        let start = Instant::now();
        self.s.write_all(b"PING\r\n")?;
        self.s.read_exact(&mut answer)?;
        let rtt = start.elapsed();
        if &answer != b"+PONG\r\n" {
            bail!("Redis answered {answer:?} to PING");
        }
        Ok(rtt)
    }
}

/// The floor of any proxy on tokio: accept, connect, `copy_bidirectional`,
/// no fault machinery. What the fault proxy costs beyond it is its own.
async fn plain_proxy(upstream: SocketAddr) -> anyhow::Result<(SocketAddr, AbortOnDrop)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    Ok((addr, AbortOnDrop(task)))
}

/// Aborts the task (a server of this group) when dropped, also on an error.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// User + system CPU time of this process so far, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: rusage is plain integers, for which all zeroes is a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given, which lives here.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return f64::NAN;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

pub fn run(opts: &Opts, rt: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let Some(bench_bin) = tool("redis-benchmark") else {
        return Ok(vec![Row::skipped(
            GROUP,
            "all",
            "redis-benchmark is not installed (Debian package redis-tools)",
        )]);
    };
    let redis = Redis::start()?;
    let direct = SocketAddr::from(([127, 0, 0, 1], redis.port));
    let proxy = Proxy::with_seed(7);
    let proxied = rt
        .block_on(proxy.add_route(RouteSpec::loopback("redis", direct.to_string())))?
        .listen;
    let (floor, _floor_task) = rt.block_on(plain_proxy(direct))?;
    let mut rows = Vec::new();

    // Throughput: triples of redis-benchmark runs (direct, through the fault
    // proxy, through a bare copy_bidirectional proxy); the verdict on the
    // median ratio of the triples. The CPU this process used during the fault
    // proxy's runs is the proxy's (nothing else of the bench runs meanwhile).
    let (trials, requests) = if opts.quick { (1, 5_000) } else { (5, 200_000) };
    for (conc, pipeline, target) in [(50, 1, true), (50, 16, false)] {
        redis_benchmark(&bench_bin, proxied, conc, pipeline, requests / 10)?;
        let (mut ratios, mut floor_ratios) = (Vec::new(), Vec::new());
        let (mut d_rps, mut p_rps) = (Vec::new(), Vec::new());
        let (mut cpu_s, mut proxied_reqs, mut proxied_s) = (0.0, 0.0, 0.0);
        for _ in 0..trials {
            let d = redis_benchmark(&bench_bin, direct, conc, pipeline, requests)?;
            let (cpu0, t0) = (cpu_seconds(), Instant::now());
            let p = redis_benchmark(&bench_bin, proxied, conc, pipeline, requests)?;
            cpu_s += cpu_seconds() - cpu0;
            proxied_s += t0.elapsed().as_secs_f64();
            proxied_reqs += requests as f64;
            let f = redis_benchmark(&bench_bin, floor, conc, pipeline, requests)?;
            ratios.push(p.rps / d.rps);
            floor_ratios.push(f.rps / d.rps);
            d_rps.push(d.rps);
            p_rps.push(p.rps);
        }
        let med = |v: &[f64]| Summary::of(v).map_or(f64::NAN, |s| s.p50);
        let ratio = med(&ratios);
        let mut row = Row::new(
            GROUP,
            format!(
                "redis-benchmark GET through the proxy, no fault, {conc} clients, pipeline {pipeline} (median of {trials} trials)"
            ),
            format!(
                "{:.0} req/s · proxy CPU {:.0}% of a core, {:.1} µs per request",
                med(&p_rps),
                100.0 * cpu_s / proxied_s,
                1e6 * cpu_s / proxied_reqs
            ),
        )
        .baseline(
            format!(
                "redis-benchmark direct: {:.0} req/s; a bare tokio copy_bidirectional proxy: {:.2} of direct",
                med(&d_rps),
                med(&floor_ratios)
            ),
            Some(ratio),
        );
        if target {
            row = row.target("≥ 0.90 of direct", Verdict::at_least(ratio, 0.9));
        }
        rows.push(row);
    }

    // Added latency: PING round trips, direct and proxied in alternating
    // blocks on one connection each.
    let (blocks, per_block) = if opts.quick { (4, 100) } else { (20, 1_000) };
    let mut d = Pinger::connect(direct)?;
    let mut p = Pinger::connect(proxied)?;
    for _ in 0..per_block {
        d.ping()?;
        p.ping()?;
    }
    let (mut d_rtt, mut p_rtt) = (Vec::new(), Vec::new());
    for _ in 0..blocks {
        for _ in 0..per_block {
            d_rtt.push(d.ping()?);
        }
        for _ in 0..per_block {
            p_rtt.push(p.ping()?);
        }
    }
    let d_us = Summary::of_us(&d_rtt).context("no direct ping")?;
    let p_us = Summary::of_us(&p_rtt).context("no proxied ping")?;
    let added_us = p_us.p50 - d_us.p50;
    rows.push(
        Row::new(
            GROUP,
            format!(
                "PING round trip through the proxy, no fault ({} each, alternating blocks)",
                d_rtt.len()
            ),
            format!("{} · added p50 {added_us:.1} µs", p_us.p50_p99(1, "µs")),
        )
        .baseline(format!("direct: {}", d_us.p50_p99(1, "µs")), None)
        .target("added p50 ≤ 50 µs", Verdict::at_most(added_us, 50.0)),
    );

    // A 50 ms delay on the answers: the added round trip over the direct p50.
    let name = proxy.add_fault(
        "redis",
        Fault::latency(DELAY_MS, 0.0).direction(Direction::Downstream),
    )?;
    let n = if opts.quick { 10 } else { 100 };
    let mut added_ms = Vec::new();
    for _ in 0..n {
        let rtt = p.ping()?;
        added_ms.push((rtt.as_secs_f64() * 1e6 - d_us.p50) / 1e3);
    }
    proxy.remove_fault("redis", &name)?;
    let added = Summary::of(&added_ms).context("no delayed ping")?;
    let off = (added.p50 - DELAY_MS).abs();
    rows.push(
        Row::new(
            GROUP,
            format!("added delay with a {DELAY_MS:.0} ms latency fault (downstream, no jitter; {n} PINGs)"),
            format!("{} · max {:.2} ms", added.p50_p99(2, "ms"), added.max),
        )
        .baseline(format!("configured {DELAY_MS:.0} ms; direct p50 {:.1} µs subtracted", d_us.p50), None)
        .target("p50 within ±2 ms", Verdict::at_most(off, 2.0)),
    );
    drop((d, p, proxy, redis));
    Ok(rows)
}
