//! `fault-proxy`: the proxy as its own process (or FROM-scratch container),
//! controlled over HTTP. Prints each bound address on stdout, one line each,
//! so a caller that asked for port 0 learns the port; exits 0 on SIGTERM or
//! Ctrl-C (as PID 1 in a container nothing else would stop it).

use anyhow::Context as _;
use clap::Parser;
use fault_proxy::{api, Proxy, RouteSpec};
use std::io::Write as _;
use std::net::SocketAddr;

#[derive(Debug, Parser)]
#[command(
    name = "fault-proxy",
    about = "A fault-injecting TCP proxy with an HTTP control API (see docs/network-faults.md)"
)]
struct Args {
    /// Where the HTTP control API listens (port 0: a free port).
    #[arg(long, env = "FAULT_PROXY_API", default_value = "127.0.0.1:8474")]
    listen_api: SocketAddr,
    /// A route `name=LISTEN=UPSTREAM`, e.g. `redis-1=127.0.0.1:0=127.0.0.1:6379`
    /// (repeatable; in the environment, comma-separated).
    #[arg(long = "route", env = "FAULT_PROXY_ROUTES", value_delimiter = ',')]
    routes: Vec<RouteSpec>,
    /// Seed of the per-connection draws (fractions, jitter), for a repeatable run.
    #[arg(long, env = "FAULT_PROXY_SEED")]
    seed: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let proxy = args.seed.map_or_else(Proxy::new, Proxy::with_seed);
    let mut out = std::io::stdout().lock();
    for spec in args.routes {
        let name = spec.name.clone();
        let route = proxy
            .add_route(spec)
            .await
            .with_context(|| format!("cannot start route `{name}`"))?;
        writeln!(
            out,
            "route {} {} -> {}",
            route.name, route.listen, route.upstream
        )?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen_api)
        .await
        .with_context(|| format!("cannot listen on {} for the API", args.listen_api))?;
    writeln!(out, "api {}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);
    axum::serve(listener, api::router(proxy))
        .with_graceful_shutdown(stop_signal())
        .await
        .context("the API server failed")?;
    Ok(())
}

/// SIGTERM or Ctrl-C (SIGINT).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM ({e}); Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
