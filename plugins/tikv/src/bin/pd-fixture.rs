//! pd-fixture: a stand-in PD HTTP API for demo-host runs without TiKV.
//!
//! ```text
//! pd-fixture [--listen 127.0.0.1:2379] [--project tikv] [--stores 3] [--regions 30]
//!            [--disconnect-after-ms 0] [--down-after-ms 1800000]
//! ```
//! With `--project`, a store's state follows the container of compose service
//! `tikv<N-1>` in that project (see docs/tikv.md). Stops on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;
use subject_tikv::fixture::{FixtureOptions, PdFixture};

const USAGE: &str =
    "usage: pd-fixture [--listen 127.0.0.1:2379] [--project NAME] [--stores N] [--regions N] \
                     [--disconnect-after-ms MS] [--down-after-ms MS]";

fn parse_args() -> Result<(FixtureOptions, SocketAddr), String> {
    let mut opts = FixtureOptions::three_stores();
    let mut listen: SocketAddr = "127.0.0.1:2379".parse().map_err(|e| format!("{e}"))?;
    let mut stores = 3u64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} takes a whole number, got `{value}`"))
        };
        match flag.as_str() {
            "--listen" => {
                listen = value
                    .parse()
                    .map_err(|_| format!("--listen takes host:port, got `{value}`"))?
            }
            "--project" => opts.docker_project = Some(value.clone()),
            "--stores" => stores = number()?.clamp(1, 16),
            "--regions" => opts.regions = number()?,
            "--disconnect-after-ms" => opts.disconnect_after = Duration::from_millis(number()?),
            "--down-after-ms" => opts.down_after = Duration::from_millis(number()?),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let template = opts.stores[0].clone();
    opts.stores = (0..stores)
        .map(|i| subject_tikv::fixture::FixtureStore {
            id: i + 1,
            address: format!("tikv{i}:20160"),
            service: format!("tikv{i}"),
            ..template.clone()
        })
        .collect();
    Ok((opts, listen))
}

fn main() {
    let (opts, listen) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let following = opts.docker_project.clone();
    let fixture = match PdFixture::start_on(opts, listen) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("pd-fixture: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    match following {
        Some(p) => println!(
            "pd-fixture listening on {} (stores follow compose project `{p}`)",
            fixture.url()
        ),
        None => println!("pd-fixture listening on {} (all stores Up)", fixture.url()),
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    if let Ok(rt) = rt {
        rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        });
    }
    drop(fixture);
}
