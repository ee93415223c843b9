//! `--log-file`: a debug log for bug reports.
//!
//! Only a file: while the TUI owns the terminal nothing else may write to it.
//! What reaches the log is what the event log shows (host and plugin lines,
//! see `engine::log`) plus the effects the runtime carries out; none of that
//! ever holds an API key (keys live only in the model backends' requests).

use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Mutex;

/// Sends `tracing` events at debug level and above to `path` (appending).
pub fn init(path: &Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    tracing_subscriber::fmt()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_target(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("could not install the log: {e}"))?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "demo-host started");
    Ok(())
}
