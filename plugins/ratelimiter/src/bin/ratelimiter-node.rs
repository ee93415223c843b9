//! The rate limiter node binary; see `subject_ratelimiter::node`.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    subject_ratelimiter::node::run(subject_ratelimiter::node::Args::parse()).await
}
