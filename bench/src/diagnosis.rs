//! Group 6: the builtin diagnoser's time per diagnosis over the recorded
//! scenario suite (tests/scenarios/*.json), through the same `diagnose` entry
//! point the host calls.

use crate::report::{Row, Verdict};
use crate::stats::Summary;
use crate::Opts;
use anyhow::Context as _;
use demo_host::diagnosis::{diagnose, BackendConfig, DiagnoseOptions, ObservationWindow};
use std::path::PathBuf;
use std::time::Instant;

const GROUP: &str = "6 builtin diagnosis";

fn scenarios() -> anyhow::Result<Vec<(String, ObservationWindow)>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p)?)?;
            let window = serde_json::from_value(v.get("window").cloned().unwrap_or_default())
                .with_context(|| format!("{}: the window does not parse", p.display()))?;
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, window))
        })
        .collect()
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
