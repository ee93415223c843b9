//! The rate limiter node binary; see `subject_ratelimiter::node`.

use clap::Parser;
use subject_ratelimiter::node::{run, Args};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut builder = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.threads);
        b
    };
    builder.enable_all().build()?.block_on(run(args))
}
