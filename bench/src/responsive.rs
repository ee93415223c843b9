//! Group 10: the host stays responsive beside large and hostile plugins.
//! Input-to-frame latency of the real demo-host in tmux (a key typed until
//! the pane shows its effect) while it polls a 1,000-node example or a
//! plugin whose health call takes 5 s; and the frame time of the real
//! `ui::render` after polls of each hostile plugin config. Each is a ratio
//! against the well-behaved case measured in the same run.

use crate::host::TmuxHost;
use crate::report::{Row, Verdict};
use crate::stats::Summary;
use crate::Opts;
use anyhow::{bail, Context as _};
use demo_host::engine::{self, Action, Demo, Mode};
use demo_host::plugin::loader::Loader;
use demo_host::plugin::session::{Session, Timeouts};
use plugin_api::{now_ms, Level};
use std::time::{Duration, Instant};

const GROUP: &str = "10 responsiveness";
/// Only the help overlay shows this line.
const HELP_MARKER: &str = "kill switch: refuse every fix";

/// Key presses until the pane shows them: `?` opens the help overlay, the
/// next `?` closes it; each time from `send-keys` to the first capture that
/// shows the change (tmux's own round trips are in both sides of the ratio).
fn key_to_frame(plugin: &str, config: &str, presses: usize) -> anyhow::Result<Summary> {
    let host = TmuxHost::start(plugin, config, 120, 40)?;
    // Past setup and the first polls: the steady state.
    crate::env::wait_until("the first frame", Duration::from_secs(20), || {
        Ok(host.screen()?.contains("help"))
    })?;
    std::thread::sleep(Duration::from_secs(1));
    let mut times = Vec::with_capacity(presses);
    for i in 0..presses {
        let want = i % 2 == 0;
        let t = Instant::now();
        host.send_key("?")?;
        loop {
            if host.screen()?.contains(HELP_MARKER) == want {
                break;
            }
            if t.elapsed() > Duration::from_secs(10) {
                bail!(
                    "the help overlay did not {} within 10 s",
                    if want { "open" } else { "close" }
                );
            }
        }
        times.push(t.elapsed());
        // Pace the presses off the 100 ms poll and tick: each lands at another phase.
        std::thread::sleep(Duration::from_millis(37 + (i as u64 * 23) % 60));
    }
    Summary::of_ms(&times).context("no key press")
}

/// Frame time at 120×40 after `polls` real polls of `plugin` with `config`
/// (the warnings logged as the poller would).
fn frames_beside(
    rt: &tokio::runtime::Runtime,
    loader: &Loader,
    lib: &str,
    config: &str,
    polls: usize,
    frames: usize,
) -> anyhow::Result<Summary> {
    let plugin = loader.load(&crate::env::artifact(lib)?)?;
    let description = plugin.description.clone();
    let session = rt.block_on(Session::create(
        plugin,
        config,
        Timeouts::default(),
        |_, _| {},
    ))?;
    rt.block_on(session.setup())?;
    let t0 = now_ms();
    let mut demo = Demo::new(description, "local".into(), Mode::Interactive, 3000, t0);
    engine::start(&mut demo);
    for i in 0..polls as u64 {
        let at = t0 + i * 100;
        let result = rt.block_on(session.health());
        for message in session.take_warnings() {
            engine::update(
                &mut demo,
                at,
                Action::Log {
                    at_ms: at,
                    level: Level::Warn,
                    source: "host",
                    message,
                },
            );
        }
        let result = result.map(|mut s| {
            s.at_ms = at;
            s
        });
        engine::update(&mut demo, at, Action::HealthPolled(result));
    }
    rt.block_on(session.teardown())?;
    crate::host::frame_times(&demo, 120, 40, frames)
}

fn ratio_row(measure: String, s: &Summary, base: &Summary, base_name: &str) -> Row {
    let ratio = s.p50 / base.p50.max(f64::EPSILON);
    Row::new(GROUP, measure, s.p50_p99(2, "ms"))
        .baseline(
            format!("{base_name}: {}", base.p50_p99(2, "ms")),
            Some(ratio),
        )
        .target("p50 ≤ 2× the baseline", Verdict::at_most(ratio, 2.0))
}

pub fn run(opts: &Opts, rt: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    if crate::env::tool("tmux").is_some() {
        let presses = if opts.quick { 6 } else { 40 };
        let example = "libsubject_example.so";
        let base = key_to_frame(example, "nodes=10", presses)?;
        let large = key_to_frame(example, "nodes=1000", presses)?;
        let slow = key_to_frame("libsubject_hostile.so", "mode=slow-health", presses)?;
        rows.push(ratio_row(
            format!(
                "key → frame, example `nodes=1000` polled every 100 ms (tmux 120×40, n={})",
                large.n
            ),
            &large,
            &base,
            "example `nodes=10`",
        ));
        rows.push(ratio_row(
            format!(
                "key → frame while a health call takes 5 s (hostile `slow-health`, n={})",
                slow.n
            ),
            &slow,
            &base,
            "example `nodes=10`",
        ));
    } else {
        rows.push(Row::skipped(
            GROUP,
            "key → frame latency",
            "tmux is not installed (Debian package tmux)",
        ));
    }
    let loader = Loader::new();
    let (polls, frames) = if opts.quick { (10, 20) } else { (100, 300) };
    let hostile = "libsubject_hostile.so";
    let well = frames_beside(rt, &loader, hostile, "mode=well", polls, frames)?;
    for mode in [
        "long-strings",
        "flood",
        "nan",
        "dupes",
        "control",
        "log-flood",
    ] {
        let s = frames_beside(rt, &loader, hostile, &format!("mode={mode}"), polls, frames)
            .with_context(|| format!("mode={mode}"))?;
        rows.push(ratio_row(
            format!(
                "frame render 120×40 after {polls} polls of hostile `{mode}` (n={})",
                s.n
            ),
            &s,
            &well,
            "hostile `well`",
        ));
    }
    Ok(rows)
}
