//! Group 6: the builtin diagnoser's time per diagnosis over the recorded
//! scenario suite (tests/scenarios/*.json), through the same `diagnose` entry
//! point the host calls.

use crate::report::{Row, Verdict};
use crate::stats::Summary;
use crate::Opts;
use anyhow::Context as _;
use demo_host::diagnosis::{diagnose, BackendConfig, DiagnoseOptions, ObservationWindow};
use demo_host::journal::ScenarioFile;
use std::path::PathBuf;
use std::time::Instant;

const GROUP: &str = "6 builtin diagnosis";

/// Each scenario's window, named by its file (recorded scenarios share names).
fn scenarios() -> anyhow::Result<Vec<(String, ObservationWindow)>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    Ok(ScenarioFile::read_dir(&dir)?
        .into_iter()
        .map(|s| {
            let name = s
                .path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(s.name);
            (name, s.window)
        })
        .collect())
}

pub fn run(opts: &Opts, rt: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let rounds = if opts.quick { 10 } else { 200 };
    let all = scenarios()?;
    let cfg = BackendConfig::Builtin;
    let options = DiagnoseOptions::default();
    let mut times = Vec::new();
    let mut worst = (String::new(), 0.0f64);
    rt.block_on(async {
        for (name, window) in &all {
            let mut mine = Vec::new();
            for _ in 0..rounds {
                let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
                let t = Instant::now();
                diagnose(&cfg, window, &options, tx).await?;
                mine.push(t.elapsed());
            }
            let s = Summary::of_ms(&mine).context("no diagnosis")?;
            if s.p50 > worst.1 {
                worst = (name.clone(), s.p50);
            }
            times.extend(mine);
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let s = Summary::of_ms(&times).context("no scenario in tests/scenarios")?;
    Ok(vec![Row::new(
        GROUP,
        format!(
            "one diagnosis, {} scenarios × {rounds} (n={})",
            all.len(),
            s.n
        ),
        format!(
            "p50 {:.3} ms · p99 {:.3} ms · slowest scenario {} (p50 {:.3} ms)",
            s.p50, s.p99, worst.0, worst.1
        ),
    )
    .target("≤ 5 ms", Verdict::at_most(s.p99, 5.0))])
}
