//! The YCSB load (go-ycsb) and where its figures come from: the `ycsb` compose
//! service's logs, or the output of a local `go-ycsb` process.

use crate::config::{Env, TikvConfig};
use crate::env::{compose, on_path};
use crate::ycsb::{self, Throughput};
use docker_chaos::{Engine, Selector};
use plugin_api::{PluginError, PluginResult};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// Lines of go-ycsb output kept for parsing.
const KEPT_LINES: usize = 200;

pub const START_LOAD: &str = "start-load";
pub const STOP_LOAD: &str = "stop-load";

/// A running load generator.
#[derive(Default)]
pub enum Load {
    #[default]
    Idle,
    /// The `ycsb` service of the compose project runs.
    Compose,
    /// A local go-ycsb process whose output lines are collected.
    Local {
        child: Child,
        lines: Arc<Mutex<VecDeque<String>>>,
    },
}

/// go-ycsb properties: workload A (50/50 read/update, zipfian) on raw TiKV.
pub fn ycsb_args(pd_host_port: &str) -> Vec<String> {
    [
        "run",
        "tikv",
        "-p",
        "workload=core",
        "-p",
        "readproportion=0.5",
        "-p",
        "updateproportion=0.5",
        "-p",
        "requestdistribution=zipfian",
        "-p",
        "recordcount=10000",
        "-p",
        "operationcount=100000000",
        "-p",
        "threadcount=8",
        "-p",
        "tikv.type=raw",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["-p".to_string(), format!("tikv.pd={pd_host_port}")])
    .collect()
}

pub fn start(cfg: &TikvConfig, load: &mut Load) -> PluginResult<String> {
    if !cfg.load {
        return Ok("no load started (load=off)".into());
    }
    if !matches!(load, Load::Idle) {
        return Ok("the YCSB load is already running".into());
    }
    match cfg.env {
        Env::Compose => {
            if !cfg.docker {
                return Err(PluginError::Unsupported(
                    "load with docker=off (no compose project to run go-ycsb in)".into(),
                ));
            }
            compose(cfg, &["--profile", "load", "up", "-d", "--no-deps", "ycsb"])?;
            *load = Load::Compose;
            Ok(
                "go-ycsb workload A (50% read, 50% update, zipfian) started in the `ycsb` service"
                    .into(),
            )
        }
        Env::Local => {
            if !on_path("go-ycsb") {
                return Err(PluginError::Missing(
                    "go-ycsb is not installed: `go install github.com/pingcap/go-ycsb/cmd/go-ycsb@latest` and put it on PATH"
                        .into(),
                ));
            }
            let pd = cfg
                .pd
                .split_once("://")
                .map_or(cfg.pd.as_str(), |(_, rest)| rest);
            let mut child = Command::new("go-ycsb")
                .args(ycsb_args(pd))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| PluginError::failed(format!("cannot start go-ycsb: {e}")))?;
            let lines = Arc::new(Mutex::new(VecDeque::new()));
            if let Some(out) = child.stdout.take() {
                let sink = Arc::clone(&lines);
                std::thread::spawn(move || {
                    for line in BufReader::new(out).lines().map_while(Result::ok) {
                        if let Ok(mut l) = sink.lock() {
                            if l.len() == KEPT_LINES {
                                l.pop_front();
                            }
                            l.push_back(line);
                        }
                    }
                });
            }
            *load = Load::Local { child, lines };
            Ok("go-ycsb workload A (50% read, 50% update, zipfian) started locally".into())
        }
    }
}

pub fn stop(cfg: &TikvConfig, load: &mut Load) -> PluginResult<String> {
    match std::mem::take(load) {
        Load::Idle => Ok("no load was running".into()),
        Load::Compose => {
            compose(cfg, &["--profile", "load", "rm", "-s", "-f", "ycsb"])?;
            Ok("the ycsb service is stopped".into())
        }
        Load::Local { mut child, .. } => {
            let _ = child.kill();
            let _ = child.wait();
            Ok("go-ycsb is stopped".into())
        }
    }
}

/// Where the figures of the running load can be read, taken out of the lock on [`Load`].
pub enum LoadSource {
    Idle,
    Compose,
    Local(Arc<Mutex<VecDeque<String>>>),
}

impl Load {
    pub fn source(&self) -> LoadSource {
        match self {
            Load::Idle => LoadSource::Idle,
            Load::Compose => LoadSource::Compose,
            Load::Local { lines, .. } => LoadSource::Local(Arc::clone(lines)),
        }
    }
}

/// The latest go-ycsb figures, when a load runs and has reported.
pub async fn throughput(
    cfg: &TikvConfig,
    engine: Option<&Engine>,
    source: LoadSource,
) -> Option<Throughput> {
    match source {
        LoadSource::Idle => None,
        LoadSource::Local(lines) => {
            let text = lines
                .lock()
                .ok()?
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n");
            ycsb::latest(&text)
        }
        LoadSource::Compose => {
            let engine = engine?;
            let containers = engine
                .find(&Selector::service(&cfg.project, "ycsb"))
                .await
                .ok()?;
            let logs = engine
                .logs(&containers.first()?.id, KEPT_LINES)
                .await
                .ok()?;
            ycsb::latest(&logs)
        }
    }
}
