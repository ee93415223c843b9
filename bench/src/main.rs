//! `demo-bench`: the reproducible benchmark suite of issue 9. Each group
//! measures real processes on loopback and compares with its baseline in the
//! same run; see docs/benchmarks.md for how to run and read it.

mod abi;
mod burst;
mod detection;
mod diagnosis;
mod env;
mod host;
mod proxy;
mod remediation;
mod report;
mod responsive;
mod scale;
mod stats;
mod throughput;
mod wrk;

use clap::{Parser, ValueEnum};
use report::{Context, Row, Verdict};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Group {
    Detection,
    Throughput,
    Burst,
    Abi,
    Host,
    Diagnosis,
    Proxy,
    Scale,
    Remediation,
    Responsive,
}

#[derive(Debug, Parser)]
#[command(
    name = "demo-bench",
    about = "Benchmarks of demo-host and its subject plugins; prints a table and writes BENCHMARKS.md rows"
)]
pub struct Opts {
    /// Few trials and short runs: proves every group works (CI), not figures to quote.
    #[arg(long)]
    pub quick: bool,
    /// Run only these groups (repeatable).
    #[arg(long, value_enum)]
    pub only: Vec<Group>,
    /// Extra `key=value` settings for the rate limiter plugin in the detection
    /// group, after the group's own (to measure other settings than the defaults;
    /// `fault_proxy=on` puts the fault proxy between the nodes and Redis, which
    /// the group otherwise leaves out).
    #[arg(long, default_value = "")]
    pub ratelimiter_config: String,
    /// Write the Markdown table into this file (between demo-bench markers; the rest of the file is kept).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    let ctx = Context::gather(opts.quick);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let selected = |g| opts.only.is_empty() || opts.only.contains(&g);
    // The proxy group runs no built artifact: `--only proxy` builds none.
    let needs_artifacts = Group::value_variants()
        .iter()
        .any(|g| selected(*g) && *g != Group::Proxy);
    if needs_artifacts {
        match env::build_stale_artifacts() {
            Ok(built) if !built.is_empty() => {
                eprintln!(
                    "demo-bench: built {} (missing or older than their sources)",
                    built.join(", ")
                );
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("demo-bench: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut failed = false;
    for group in Group::value_variants()
        .iter()
        .copied()
        .filter(|g| selected(*g))
    {
        eprintln!("demo-bench: running {group:?}…");
        let result = match group {
            Group::Detection => detection::run(&opts, &rt),
            Group::Throughput => throughput::run(&opts, &rt),
            Group::Burst => burst::run(&opts, &rt),
            Group::Abi => abi::run(&opts, &rt),
            Group::Host => host::run(&opts),
            Group::Diagnosis => diagnosis::run(&opts, &rt),
            Group::Proxy => proxy::run(&opts, &rt),
            Group::Scale => scale::run(&opts, &rt),
            Group::Remediation => remediation::run(&opts),
            Group::Responsive => responsive::run(&opts, &rt),
        };
        match result {
            Ok(r) => rows.extend(r),
            Err(e) => {
                failed = true;
                eprintln!("demo-bench: {group:?} FAILED: {e:#}");
                rows.push(Row {
                    verdict: Verdict::Missed(format!("failed: {e:#}")),
                    ..Row::new(group_label(group), "(group failed)", "-")
                });
            }
        }
    }
    print!("{}", report::print_table(&rows));
    if let (Some(path), true) = (&opts.out, failed) {
        eprintln!(
            "demo-bench: {} left as it was, since a group failed (see above)",
            path.display()
        );
    } else if let Some(path) = &opts.out {
        if let Err(e) = report::write(path, &report::markdown(&ctx, &rows)) {
            eprintln!("demo-bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("demo-bench: wrote {}", path.display());
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn group_label(g: Group) -> &'static str {
    match g {
        Group::Detection => "1 detection",
        Group::Throughput => "2 node throughput",
        Group::Burst => "3 burst generator",
        Group::Abi => "4 plugin ABI",
        Group::Host => "5 host",
        Group::Diagnosis => "6 builtin diagnosis",
        Group::Proxy => "7 fault proxy",
        Group::Scale => "8 scale",
        Group::Remediation => "9 remediation",
        Group::Responsive => "10 responsiveness",
    }
}
