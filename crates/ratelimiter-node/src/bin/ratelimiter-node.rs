//! The rate limiter node binary; see `ratelimiter_node::server`.

use clap::Parser;
use ratelimiter_node::server::{run, Args};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut builder = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if n > 1 {
                b.worker_threads(n);
            }
            b
        }
    };
    builder.enable_all().build()?.block_on(run(args))
}
