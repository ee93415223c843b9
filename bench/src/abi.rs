//! Group 4: the plugin ABI. Load time of each plugin (hash, copy, `dlopen`,
//! layout checks, describe), hot-swap time (load the new build, tear the old
//! instance down, create and set up the new one, first snapshot) and the cost
//! of one health snapshot across the ABI against the same snapshot built natively.

use crate::env::{artifact, target_dir, wait_until};
use crate::report::{Row, Verdict};
use crate::stats::Summary;
use crate::Opts;
use anyhow::Context as _;
use demo_host::plugin::loader::Loader;
use demo_host::plugin::session::{Session, Timeouts};
use plugin_api::{Config, InstanceContext, Logger, Subject};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const GROUP: &str = "4 plugin ABI";
const PLUGINS: [&str; 3] = [
    "libsubject_example.so",
    "libsubject_ratelimiter.so",
    "libsubject_tikv.so",
];

/// A distinct build of `lib` (same code, a trailer after the ELF data), so
/// that each load is a real `dlopen` of a new file, as after a rebuild.
fn fresh_copy(lib: &Path, dir: &Path, n: usize) -> anyhow::Result<PathBuf> {
    let mut bytes = std::fs::read(lib)?;
    bytes.extend_from_slice(
        format!("demo-bench build {n} {}", subject_ratelimiter::now_ms()).as_bytes(),
    );
    let stem = lib.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin");
    let path = dir.join(format!("{stem}-{n}.so"));
    std::fs::write(&path, bytes)?;
    Ok(path)
}

fn ctx(config: &str) -> anyhow::Result<InstanceContext> {
    Ok(InstanceContext {
        config: Config::parse(config)?,
        raw_config: config.into(),
        library_dir: target_dir(),
        log: Logger::discard(),
    })
}

/// The floor of any load: `dlopen` alone, with the flags libloading (under
/// abi_stable) uses, and no copy, hash, ABI check or describe. Never closed,
/// like a loaded plugin.
fn dlopen(lib: &Path) -> anyhow::Result<Duration> {
    let name = std::ffi::CString::new(lib.as_os_str().as_encoded_bytes())?;
    let t = Instant::now();
    // SAFETY: a plugin built in this workspace; its initialisers are Rust's (none run user code).
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
    let took = t.elapsed();
    anyhow::ensure!(!handle.is_null(), "dlopen {} failed", lib.display());
    Ok(took)
}

/// Times `f` once per iteration.
fn each(
    iterations: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        f()?;
        out.push(t.elapsed());
    }
    Ok(out)
}

fn snapshot_rows(
    name: &str,
    abi: &[Duration],
    native: &[Duration],
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let a = Summary::of_us(abi).context("no ABI sample")?;
    let n = Summary::of_us(native).context("no native sample")?;
    rows.push(
        Row::new(
            GROUP,
            format!("{name}: one health snapshot across the ABI (n={})", a.n),
            a.p50_p99(1, "µs"),
        )
        .baseline(
            format!("native call: {}", n.p50_p99(1, "µs")),
            Some(a.p50 / n.p50),
        )
        .target("≤ 50 µs", Verdict::at_most(a.p50, 50.0)),
    );
    Ok(())
}

pub fn run(opts: &Opts, rt: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let trials = if opts.quick { 3 } else { 20 };
    let calls = if opts.quick { 2_000 } else { 20_000 };
    let scratch = tempfile::tempdir()?;
    let loader = Loader::new();
    let mut rows = Vec::new();

    for name in PLUGINS {
        let lib = match artifact(name) {
            Ok(p) => p,
            Err(e) => {
                rows.push(Row::skipped(GROUP, format!("load {name}"), e.to_string()));
                continue;
            }
        };
        let (mut times, mut floor) = (Vec::new(), Vec::new());
        for n in 0..trials {
            let copy = fresh_copy(&lib, scratch.path(), n)?;
            let t = Instant::now();
            loader
                .load(&copy)
                .with_context(|| format!("loading {}", copy.display()))?;
            times.push(t.elapsed());
            floor.push(dlopen(&fresh_copy(&lib, scratch.path(), 500 + n)?)?);
        }
        let s = Summary::of_ms(&times).context("no load")?;
        let f = Summary::of_ms(&floor).context("no dlopen")?;
        let size = std::fs::metadata(&lib)?.len() as f64 / 1_048_576.0;
        rows.push(
            Row::new(
                GROUP,
                format!("load {name}, a new build ({size:.0} MB, n={})", s.n),
                s.p50_p99(1, "ms"),
            )
            .baseline(
                format!("bare dlopen of another new build: {}", f.p50_p99(1, "ms")),
                Some(s.p50 / f.p50),
            )
            .target("≤ 20 ms", Verdict::at_most(s.p50, 20.0)),
        );
    }

    // Hot swap between two builds of the example plugin, as `r` in the host does it.
    let example = artifact("libsubject_example.so")?;
    let (mut swaps, mut loads, mut teardowns) = (Vec::new(), Vec::new(), Vec::new());
    rt.block_on(async {
        let first = loader.load(&fresh_copy(&example, scratch.path(), 1000)?)?;
        let mut current = Session::create(first, "", Timeouts::default(), |_, _| {}).await?;
        current.setup().await?;
        for n in 0..trials {
            let path = fresh_copy(&example, scratch.path(), 2000 + n)?;
            let t = Instant::now();
            let plugin = loader.load(&path)?;
            loads.push(t.elapsed());
            let t_down = Instant::now();
            current.teardown().await?;
            teardowns.push(t_down.elapsed());
            let next = Session::create(plugin, "", Timeouts::default(), |_, _| {}).await?;
            next.setup().await?;
            next.health().await?;
            swaps.push(t.elapsed());
            current = next;
        }
        current.teardown().await?;
        Ok::<_, anyhow::Error>(())
    })?;
    let s = Summary::of_ms(&swaps).context("no swap")?;
    let (l, d) = (
        Summary::of_ms(&loads).context("no load")?,
        Summary::of_ms(&teardowns).context("no teardown")?,
    );
    rows.push(
        Row::new(
            GROUP,
            format!("hot swap, example plugin (load + teardown + create + setup + first snapshot, n={})", s.n),
            format!(
                "p50 {:.1} ms · p99 {:.1} ms (of which load p50 {:.1} ms, teardown p50 {:.1} ms)",
                s.p50, s.p99, l.p50, d.p50
            ),
        )
        .target("≤ 50 ms", Verdict::at_most(s.p50, 50.0)),
    );

    // Snapshots: the example plugin, in-process replicas. (Only one plugin
    // rlib can be linked natively: both export the same root-module symbol.)
    let plugin = loader.load(&example)?;
    let session = rt.block_on(Session::create(plugin, "", Timeouts::default(), |_, _| {}))?;
    rt.block_on(session.setup())?;
    let abi = each(calls, || Ok(session.health_blocking().map(drop)?))?;
    rt.block_on(session.teardown())?;
    let a = Summary::of_us(&abi).context("no ABI sample")?;
    rows.push(
        Row::new(
            GROUP,
            format!("example: one health snapshot across the ABI (n={})", a.n),
            a.p50_p99(1, "µs"),
        )
        .target("≤ 50 µs", Verdict::at_most(a.p50, 50.0)),
    );

    // Snapshots: the rate limiter with its local cluster up and polled.
    let (abi, nat) = artifact("libsubject_ratelimiter.so").and_then(|lib| {
        let plugin = loader.load(&lib)?;
        let session = rt.block_on(Session::create(plugin, "", Timeouts::default(), |_, _| {}))?;
        rt.block_on(session.setup())?;
        rt.block_on(session.run_step("set-limit"))?;
        let native = subject_ratelimiter::plugin::RateLimiterSubject::create(ctx("")?)?;
        native.setup()?;
        native.run_step("set-limit")?;
        let polled = |s: &plugin_api::HealthSnapshot| {
            s.invariants.len() >= 5 && s.metrics.iter().any(|m| m.name == "requests/s")
        };
        wait_until(
            "the rate limiter's first polls",
            Duration::from_secs(10),
            || Ok(polled(&session.health_blocking()?) && polled(&native.health()?)),
        )?;
        let abi = each(calls / 4, || Ok(session.health_blocking().map(drop)?))?;
        let nat = each(calls / 4, || Ok(native.health().map(drop)?))?;
        let teardown = rt.block_on(session.teardown());
        native.teardown()?;
        teardown?;
        Ok((abi, nat))
    })?;
    snapshot_rows("ratelimiter", &abi, &nat, &mut rows)?;
    Ok(rows)
}
