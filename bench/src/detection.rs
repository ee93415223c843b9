//! Group 1: detection latency. The real rate limiter plugin is loaded through
//! the ABI with the host's own `Loader` and `Session`, polled like the host's
//! poller does (one call at a time at a fixed interval), and each fault is
//! injected with `Session::inject`. Latency runs from `ActiveFault.started_ms`
//! (the fault in effect) to the arrival of the first snapshot that shows the
//! expected invariant violated.

use crate::env::artifact;
use crate::report::{Row, Verdict};
use crate::stats::Summary;
use crate::Opts;
use anyhow::{bail, Context as _};
use demo_host::plugin::loader::Loader;
use demo_host::plugin::session::{Session, Timeouts};
use plugin_api::{now_ms, HealthSnapshot, InvariantStatus, NodeStatus, ParamValue};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

const GROUP: &str = "1 detection";
/// The host's default poll interval (`demo-host --poll-ms`).
const HOST_POLL: Duration = Duration::from_millis(100);
/// The Python original's interval.
const ORIGINAL_POLL: Duration = Duration::from_secs(2);
const SETTLE: Duration = Duration::from_secs(45);
/// The Redis pause under the earlier defaults: the plugin settings, and the row's words.
const SIDE_EXPERIMENTS: [(&str, &str); 2] = [
    ("load_rps=30 limit=500", "load_rps=30 instead of 100"),
    ("flush_ms=250", "flush_ms=250 instead of 100"),
];

struct Fault {
    action: &'static str,
    params: Vec<(String, ParamValue)>,
    invariant: &'static str,
    label: &'static str,
}

fn faults() -> [Fault; 3] {
    [
        Fault {
            action: "node-kill",
            params: vec![("node".into(), ParamValue::Int(2))],
            invariant: "node down",
            label: "node kill (SIGKILL) → `node down`",
        },
        Fault {
            action: "redis-pause",
            params: vec![("duration_ms".into(), ParamValue::Int(5000))],
            invariant: "counter drift",
            label: "Redis CLIENT PAUSE WRITE → `counter drift`",
        },
        Fault {
            action: "burst",
            params: vec![("multiplier".into(), ParamValue::Float(2.0))],
            invariant: "ghost allowing",
            label: "2× burst → `ghost allowing`",
        },
    ]
}

/// A poll's arrival time (unix ms) and result.
type Polled = (u64, Result<HealthSnapshot, String>);

/// The host's poller (`runtime::poller`), also recording what each call cost.
struct Poller {
    task: JoinHandle<()>,
    rx: UnboundedReceiver<Polled>,
}

impl Poller {
    /// Starts polling after `phase`, then every `every`.
    fn start(
        session: &Session,
        every: Duration,
        phase: Duration,
        costs: &Arc<Mutex<Vec<Duration>>>,
    ) -> Poller {
        let (tx, rx) = unbounded_channel();
        let (session, costs) = (session.clone(), Arc::clone(costs));
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + phase, every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let t = std::time::Instant::now();
                let result = session.health().await.map_err(|e| e.to_string());
                costs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(t.elapsed());
                if tx.send((now_ms(), result)).is_err() {
                    return;
                }
            }
        });
        Poller { task, rx }
    }

    /// Waits for a snapshot in which `invariant` has `status`; returns its arrival time.
    async fn until(
        &mut self,
        invariant: &str,
        status: InvariantStatus,
        limit: Duration,
    ) -> anyhow::Result<u64> {
        let deadline = Instant::now() + limit;
        loop {
            let (at, snap) = timeout_at(deadline, self.rx.recv())
                .await
                .with_context(|| {
                    format!("`{invariant}` did not become {status:?} within {limit:?}")
                })?
                .context("the poller stopped")?;
            if let Ok(s) = snap {
                if s.invariant(invariant).is_some_and(|i| i.status == status) {
                    return Ok(at);
                }
            }
        }
    }

    /// Waits for `invariant` violated, noting on the way when a node first
    /// showed degraded and when the invariant first observed a value beyond its bound.
    async fn violation(&mut self, invariant: &str, limit: Duration) -> anyhow::Result<Seen> {
        let deadline = Instant::now() + limit;
        let (mut degraded, mut over_bound) = (None, None);
        loop {
            let (at, snap) = timeout_at(deadline, self.rx.recv())
                .await
                .with_context(|| format!("`{invariant}` was not violated within {limit:?}"))?
                .context("the poller stopped")?;
            let Ok(s) = snap else { continue };
            if degraded.is_none() && s.nodes.iter().any(|n| n.status == NodeStatus::Degraded) {
                degraded = Some(at);
            }
            let Some(i) = s.invariant(invariant) else {
                continue;
            };
            if over_bound.is_none() && i.observed.zip(i.bound).is_some_and(|(o, b)| o > b) {
                over_bound = Some(at);
            }
            if i.status == InvariantStatus::Violated {
                return Ok(Seen {
                    violated: at,
                    degraded,
                    over_bound,
                });
            }
        }
    }

    fn drain(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until `now % window_ms` is early enough that the burst never waits for a window start.
async fn early_in_window(window_ms: u64) {
    while now_ms() % window_ms > window_ms / 2 - 600 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What one injection showed, in ms after the fault took effect.
struct Seen {
    violated: u64,
    /// First snapshot with a node degraded (a partitioned node, for the Redis pause).
    degraded: Option<u64>,
    /// First snapshot whose invariant observed a value beyond its bound (before any persistence rule).
    over_bound: Option<u64>,
}

/// A uniformly random phase within one poll interval, so that injections do
/// not lock to the poller's ticks (the trial starts right after a poll arrived).
fn random_phase(every: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u128);
    Duration::from_nanos((nanos.wrapping_mul(2_654_435_761) % every.as_nanos().max(1)) as u64)
}

/// One injection, after which the fault is recovered and the invariant is Ok again.
async fn trial(
    session: &Session,
    poller: &mut Poller,
    f: &Fault,
    every: Duration,
    window_ms: Option<u64>,
) -> anyhow::Result<Seen> {
    tokio::time::sleep(random_phase(every)).await;
    if let Some(w) = window_ms {
        early_in_window(w).await;
    }
    poller.drain();
    let fault = session.inject(f.action, f.params.clone()).await?;
    let seen = poller.violation(f.invariant, Duration::from_secs(30)).await;
    session.recover(&fault.fault_id).await?;
    let mut seen = seen?;
    poller
        .until(f.invariant, InvariantStatus::Ok, SETTLE)
        .await?;
    let start = fault.started_ms;
    seen.violated = seen.violated.saturating_sub(start);
    seen.degraded = seen.degraded.map(|t| t.saturating_sub(start));
    seen.over_bound = seen.over_bound.map(|t| t.saturating_sub(start));
    Ok(seen)
}

async fn session(loader: &Loader, config: &str) -> anyhow::Result<Session> {
    let plugin = loader.load(&artifact("libsubject_ratelimiter.so")?)?;
    let s = Session::create(plugin, config, Timeouts::default(), |_, _| {}).await?;
    s.setup().await?;
    s.run_step("set-limit").await?;
    Ok(s)
}

/// Runs `n` trials of `f` polled every `every`.
async fn trials(
    s: &Session,
    every: Duration,
    costs: &Arc<Mutex<Vec<Duration>>>,
    f: &Fault,
    n: usize,
    window_ms: Option<u64>,
) -> anyhow::Result<Vec<Seen>> {
    let mut out = Vec::new();
    for _ in 0..n {
        // A new poller per trial: the host's ticks and the plugin's poll loop
        // keep one phase apart for as long as both run, and a trial should
        // draw that phase too, not share one with the rest of the run.
        let mut poller = Poller::start(s, every, random_phase(every), costs);
        for inv in ["node down", "counter drift", "ghost allowing"] {
            poller.until(inv, InvariantStatus::Ok, SETTLE).await?;
        }
        out.push(trial(s, &mut poller, f, every, window_ms).await?);
    }
    Ok(out)
}

fn violated(seen: &[Seen]) -> Option<Summary> {
    Summary::of(&seen.iter().map(|s| s.violated as f64).collect::<Vec<_>>())
}

async fn with_session<T>(
    loader: &Loader,
    config: &str,
    work: impl AsyncFnOnce(&Session) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let s = session(loader, config).await?;
    let result = work(&s).await;
    let teardown = s.teardown().await;
    let out = result?;
    teardown?;
    Ok(out)
}

pub fn run(opts: &Opts, rt: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let n = if opts.quick { 2 } else { 20 };
    let n_original = if opts.quick { 1 } else { 5 };
    let loader = Loader::new();
    let costs = Arc::new(Mutex::new(Vec::new()));
    let [kill, pause, burst] = faults();
    // The nodes reach Redis directly, as in the figures measured before the
    // fault proxy came between them: `--ratelimiter-config fault_proxy=on`
    // measures the proxied cluster instead (later keys win).
    let cfg = |own: &str| format!("fault_proxy=off {own} {}", opts.ratelimiter_config);
    let (fast, original, side) = rt.block_on(async {
        // Node kill and Redis pause with the plugin's defaults.
        let (k, p, k2, p2) = with_session(&loader, &cfg(""), async |s| {
            let k = trials(s, HOST_POLL, &costs, &kill, n, None).await?;
            let p = trials(s, HOST_POLL, &costs, &pause, n, None).await?;
            let k2 = trials(s, ORIGINAL_POLL, &costs, &kill, n_original, None).await?;
            let p2 = if opts.quick {
                vec![]
            } else {
                trials(s, ORIGINAL_POLL, &costs, &pause, n_original, None).await?
            };
            Ok((k, p, k2, p2))
        })
        .await?;
        // The burst: a 2 s window and a 0.5 s hold so that `ghost allowing`
        // clears within seconds and trials can repeat (detection is unaffected:
        // it hinges on the burst's own accounting and the nodes' counters).
        const WINDOW_MS: u64 = 2000;
        let b = with_session(
            &loader,
            &cfg(&format!("window_ms={WINDOW_MS} hold_ms=500")),
            async |s| trials(s, HOST_POLL, &costs, &burst, n, Some(WINDOW_MS)).await,
        )
        .await?;
        // Evidence for what bounds `counter drift`: the same pause under the
        // earlier default load of 30 checks/s (the drift must grow past the
        // tolerance, which takes tolerance / load: 10 / 30 per s = 333 ms),
        // and under the earlier, slower flush (a node notices a blocked write
        // at its next flush). Side experiments: a failure is reported in their
        // row, not as the group's.
        let mut side = Vec::new();
        for (config, _) in SIDE_EXPERIMENTS {
            side.push(if opts.quick {
                Ok(vec![])
            } else {
                with_session(&loader, &cfg(config), async |s| {
                    trials(s, HOST_POLL, &costs, &pause, n_original, None).await
                })
                .await
                .map_err(|e| format!("{e:#}"))
            });
        }
        Ok::<_, anyhow::Error>(([k, p, b], [k2, p2, vec![]], side))
    })?;
    let poll =
        Summary::of_ms(&costs.lock().unwrap_or_else(|p| p.into_inner())).context("no poll")?;
    let mut rows = vec![Row::new(
        GROUP,
        format!(
            "one health poll across the ABI (the floor any poller pays, n={})",
            poll.n
        ),
        poll.p50_p99(3, "ms"),
    )];
    for ((f, lat), orig) in faults().iter().zip(&fast).zip(&original) {
        let s = violated(lat).with_context(|| format!("no trial of {}", f.action))?;
        let verdict = Verdict::at_most(s.p50, 250.0).and(Verdict::at_most(s.p99, 500.0));
        let mut row = Row::new(
            GROUP,
            format!("{}, poll 100 ms (n={})", f.label, s.n),
            format!(
                "p50 {:.0} ms · p99 {:.0} ms · max {:.0} ms",
                s.p50, s.p99, s.max
            ),
        )
        .target("p50 ≤ 250 ms, p99 ≤ 500 ms", verdict);
        if let Some(o) = violated(orig) {
            row = row.baseline(
                format!(
                    "original 2 s poll: p50 {:.0} ms · max {:.0} ms (n={})",
                    o.p50, o.max, o.n
                ),
                Some(o.p50 / s.p50.max(1.0)),
            );
        }
        rows.push(row);
    }
    // Where the Redis pause's time goes: partition seen, drift beyond tolerance, violation.
    let pause = &fast[1];
    let median = |v: Vec<f64>| {
        Summary::of(&v).map_or("never seen".to_string(), |s| {
            format!("p50 {:.0} ms (seen in {} of {})", s.p50, s.n, pause.len())
        })
    };
    rows.push(Row::new(
        GROUP,
        "Redis pause breakdown: first node partitioned → drift beyond tolerance → `counter drift` violated",
        format!(
            "partitioned {} · over tolerance {} · violated {}",
            median(pause.iter().filter_map(|s| s.degraded.map(|d| d as f64)).collect()),
            median(pause.iter().filter_map(|s| s.over_bound.map(|d| d as f64)).collect()),
            median(pause.iter().map(|s| s.violated as f64).collect()),
        ),
    ));
    for ((_, what), result) in SIDE_EXPERIMENTS.iter().zip(&side) {
        let measure = |n: usize| format!("Redis pause → `counter drift` with {what} (n={n})");
        match result {
            Ok(seen) => {
                if let Some(h) = violated(seen) {
                    rows.push(Row::new(
                        GROUP,
                        measure(h.n),
                        format!(
                            "p50 {:.0} ms · p99 {:.0} ms · max {:.0} ms",
                            h.p50, h.p99, h.max
                        ),
                    ));
                }
            }
            Err(e) => rows.push(Row::new(
                GROUP,
                measure(0),
                format!("experiment failed: {e}"),
            )),
        }
    }
    if rows.len() < 4 {
        bail!("detection produced {} rows", rows.len());
    }
    Ok(rows)
}
