//! Group 8: how the host's costs grow with the cluster. The example plugin at
//! 10, 100 and 1,000 nodes (`nodes=N`), with 600 polls of history: one health
//! snapshot across the ABI, one frame at 120×40, one builtin diagnosis of a
//! partition, and the real demo-host's peak RSS; each with its growth per 10×
//! nodes (linear growth is 10×, and each size is measured in the same run).

use crate::host::idle_host;
use crate::report::{Row, Verdict};
use crate::stats::Summary;
use crate::Opts;
use anyhow::Context as _;
use demo_host::diagnosis::{diagnose, BackendConfig, DiagnoseOptions};
use demo_host::engine::{self, Action, Demo, Mode};
use demo_host::plugin::loader::Loader;
use demo_host::plugin::session::{Session, Timeouts};
use plugin_api::{now_ms, ParamValue};
use std::time::Instant;

const GROUP: &str = "8 scale";
const SIZES: [usize; 3] = [10, 100, 1000];
const HISTORY: u64 = 600;

/// The figures of one cluster size.
struct Size {
    snapshot_us: Summary,
    frame_ms: Summary,
    diagnosis_ms: Summary,
    /// Bytes of the model backends' prompt (its user part: the window).
    prompt_bytes: usize,
    rss_mb: Option<f64>,
}

fn measure(
    opts: &Opts,
    rt: &tokio::runtime::Runtime,
    loader: &Loader,
    n: usize,
) -> anyhow::Result<Size> {
    let lib = crate::env::artifact("libsubject_example.so")?;
    let plugin = loader.load(&lib)?;
    let description = plugin.description.clone();
    let config = format!("nodes={n}");
    let session = rt.block_on(Session::create(
        plugin,
        &config,
        Timeouts::default(),
        |_, _| {},
    ))?;
    rt.block_on(session.setup())?;
    let calls = if opts.quick { 20 } else { 200 };
    let mut abi = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        session.health_blocking()?;
        abi.push(t.elapsed());
    }
    // 600 real polls, stamped 100 ms apart; a partition for the last third.
    let t0 = now_ms();
    let mut demo = Demo::new(description, "inprocess".into(), Mode::Interactive, 3000, t0);
    engine::start(&mut demo);
    let mut fault = None;
    for i in 0..HISTORY {
        if i == HISTORY * 2 / 3 {
            let f = rt.block_on(session.inject(
                "partition",
                vec![("duration_ms".into(), ParamValue::Int(60_000))],
            ))?;
            let mut f = f;
            f.started_ms = t0 + i * 100;
            fault = Some(f.fault_id.clone());
            engine::update(
                &mut demo,
                t0 + i * 100,
                Action::Injected {
                    chapter: 1,
                    action: "partition".into(),
                    result: Ok(f),
                },
            );
            // The partitioned replica falls behind the writer within a few writes.
            crate::env::wait_until(
                "the partition to show",
                std::time::Duration::from_secs(10),
                || {
                    Ok(session.health_blocking()?.invariants.iter().any(|v| {
                        v.name == "replicas agree"
                            && v.status == plugin_api::InvariantStatus::Violated
                    }))
                },
            )?;
        }
        let mut s = session.health_blocking()?;
        s.at_ms = t0 + i * 100;
        engine::update(&mut demo, s.at_ms, Action::HealthPolled(Ok(s)));
    }
    if let Some(id) = fault {
        rt.block_on(session.recover(&id))?;
    }
    rt.block_on(session.teardown())?;

    let frames = if opts.quick { 20 } else { 300 };
    let frame_ms = crate::host::frame_times(&demo, 120, 40, frames)?;

    let window = engine::update::observation_window(&demo);
    let rounds = if opts.quick { 5 } else { 50 };
    let mut diag = Vec::with_capacity(rounds);
    rt.block_on(async {
        for _ in 0..rounds {
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            let t = Instant::now();
            diagnose(
                &BackendConfig::Builtin,
                &window,
                &DiagnoseOptions::default(),
                tx,
            )
            .await?;
            diag.push(t.elapsed());
        }
        Ok::<_, anyhow::Error>(())
    })?;

    let prompt_bytes = demo_host::diagnosis::build_prompt(&window).user.len();
    let rss_mb = match crate::env::tool("tmux") {
        Some(_) => Some(idle_host(if opts.quick { 1.0 } else { 3.0 }, &config)?.1),
        None => None,
    };
    Ok(Size {
        snapshot_us: Summary::of_us(&abi).context("no snapshot")?,
        frame_ms,
        diagnosis_ms: Summary::of_ms(&diag).context("no diagnosis")?,
        prompt_bytes,
        rss_mb,
    })
}

/// "a · b · c (×g, ×h per 10× nodes)": the figures by size and their growth.
fn series(values: &[f64], unit: &str, decimals: usize) -> (String, f64) {
    let shown: Vec<String> = SIZES
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}: {v:.decimals$} {unit}"))
        .collect();
    let growth: Vec<f64> = values
        .windows(2)
        .map(|w| w[1] / w[0].max(f64::EPSILON))
        .collect();
    let worst = growth.iter().copied().fold(0.0, f64::max);
    let g: Vec<String> = growth.iter().map(|g| format!("×{g:.1}")).collect();
    (
        format!(
            "{} (growth per 10× nodes {})",
            shown.join(" · "),
            g.join(", ")
        ),
        worst,
    )
}

pub fn run(opts: &Opts, rt: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let loader = Loader::new();
    let sizes: Vec<Size> = SIZES
        .iter()
        .map(|&n| measure(opts, rt, &loader, n).with_context(|| format!("{n} nodes")))
        .collect::<anyhow::Result<_>>()?;
    let last = &sizes[sizes.len() - 1];
    // Growth "no worse than linear": under 12× per 10× nodes leaves room for noise.
    let linear = |g: f64| Verdict::at_most(g, 12.0);
    let mut rows = Vec::new();
    let snap: Vec<f64> = sizes.iter().map(|s| s.snapshot_us.p50).collect();
    let (text, g) = series(&snap, "µs", 0);
    rows.push(
        Row::new(GROUP, "one health snapshot across the ABI, p50", text).target(
            "≤ 1 ms at 1,000; ≤ linear",
            Verdict::at_most(last.snapshot_us.p50, 1000.0).and(linear(g)),
        ),
    );
    let frame: Vec<f64> = sizes.iter().map(|s| s.frame_ms.p50).collect();
    let (text, g) = series(&frame, "ms", 2);
    rows.push(
        Row::new(
            GROUP,
            "frame render 120×40, 600 polls of history, p50",
            text,
        )
        .target(
            "p50 ≤ 4 ms at 1,000; ≤ linear",
            Verdict::at_most(last.frame_ms.p50, 4.0).and(linear(g)),
        ),
    );
    let diag: Vec<f64> = sizes.iter().map(|s| s.diagnosis_ms.p50).collect();
    let (text, g) = series(&diag, "ms", 2);
    rows.push(
        Row::new(GROUP, "builtin diagnosis of a partition, p50", text).target(
            "≤ 20 ms at 1,000; ≤ linear",
            Verdict::at_most(last.diagnosis_ms.p50, 20.0).and(linear(g)),
        ),
    );
    let prompt: Vec<f64> = sizes
        .iter()
        .map(|s| s.prompt_bytes as f64 / 1024.0)
        .collect();
    let (text, _) = series(&prompt, "KiB", 1);
    let budget = demo_host::diagnosis::prompt::PROMPT_WINDOW_BYTES as f64 / 1024.0;
    rows.push(
        Row::new(
            GROUP,
            "model prompt of that diagnosis's window (the user message)",
            text,
        )
        .target(
            format!("window JSON ≤ {budget:.0} KiB (the unchanged nodes summarised)"),
            Verdict::at_most(prompt[prompt.len() - 1], budget + 1.0),
        ),
    );
    match sizes.iter().map(|s| s.rss_mb).collect::<Option<Vec<f64>>>() {
        Some(rss) => {
            let (text, g) = series(&rss, "MB", 1);
            rows.push(
                Row::new(
                    GROUP,
                    "peak RSS of demo-host (tmux 120×40, polled every 100 ms)",
                    text,
                )
                .target(
                    "≤ 100 MB at 1,000; ≤ linear",
                    Verdict::at_most(rss[rss.len() - 1], 100.0).and(linear(g)),
                ),
            );
        }
        None => rows.push(Row::skipped(
            GROUP,
            "peak RSS",
            "tmux is not installed (Debian package tmux)",
        )),
    }
    Ok(rows)
}
