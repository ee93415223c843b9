//! Group 5: the host. Frame render time of the real `ui::render` at two
//! terminal sizes, and the real `demo-host` binary's idle CPU and peak RSS
//! while it polls the example plugin, run in a detached tmux session.

use crate::env::{artifact, tool, wait_until};
use crate::report::{Row, Verdict};
use crate::stats::Summary;
use crate::Opts;
use anyhow::{bail, Context as _};
use demo_host::engine::{self, Action, Demo, Mode};
use plugin_api::*;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const GROUP: &str = "5 host";

/// A rate-limiter-shaped poll: three nodes and Redis, a dozen metrics, five
/// invariants (one violated half the time), a full event list.
fn snapshot(at: u64, i: u64) -> HealthSnapshot {
    let metric = |n: &str, v: f64, u: &str| Metric::new(n, v, u);
    let node = |id: &str, status| NodeHealth {
        id: id.into(),
        role: "rate limiter node".into(),
        address: format!("http://127.0.0.1:80{}", id.len()),
        status,
        metrics: vec![
            metric("allowed", (i * 10) as f64, "checks"),
            metric("denied", i as f64, "checks"),
            metric("pending", (i % 17) as f64, "checks"),
        ],
        ..Default::default()
    };
    let drift = i % 200 >= 100;
    let inv = |name: &str, violated: bool, class| Invariant {
        name: name.into(),
        status: if violated {
            InvariantStatus::Violated
        } else {
            InvariantStatus::Ok
        },
        detail: format!(
            "key `demo` window {}: the nodes acknowledged {}, redis holds {}",
            i / 100,
            i * 3,
            i * 3 - if violated { 42 } else { 0 }
        ),
        since_ms: at,
        class,
        components: if violated {
            vec!["redis".into()]
        } else {
            vec![]
        },
        observed: Some(if violated { 42.0 } else { 0.0 }),
        bound: Some(10.0),
        ..Default::default()
    };
    HealthSnapshot {
        at_ms: at,
        nodes: vec![
            node("node-1", NodeStatus::Up),
            node("node-2", NodeStatus::Up),
            node(
                "node-3",
                if drift {
                    NodeStatus::Degraded
                } else {
                    NodeStatus::Up
                },
            ),
            node("redis", NodeStatus::Up),
        ],
        metrics: vec![
            metric("requests/s", 30.0 + (i % 7) as f64, "/s"),
            metric("allowed/s", 28.0, "/s"),
            metric("denied/s", 2.0, "/s"),
            metric("errors/s", 0.0, "/s"),
            metric("p50 latency", 0.4, "ms"),
            metric("p99 latency", 1.2 + (i % 5) as f64, "ms"),
            metric("allowed", (i * 28) as f64, "checks"),
            metric("denied", (i * 2) as f64, "checks"),
            metric("pending increments", (i % 11) as f64, "checks"),
            metric("counter drift", if drift { 42.0 } else { 0.0 }, "checks"),
        ],
        invariants: vec![
            inv("counter drift", drift, AnomalyClass::StateDivergence),
            inv("ghost allowing", false, AnomalyClass::BoundExceeded),
            inv("conservation", false, AnomalyClass::Accounting),
            inv("node down", false, AnomalyClass::NodeDown),
            inv("redis down", false, AnomalyClass::DependencyDown),
        ],
        events: (0..50)
            .map(|e| Event {
                at_ms: at - 1000 * (50 - e),
                level: if e % 9 == 0 { Level::Warn } else { Level::Info },
                message: format!("node-{} flushed {} increments to redis", e % 3 + 1, e * 7),
                component: None,
            })
            .collect(),
    }
}

fn render_times(width: u16, height: u16, frames: usize) -> anyhow::Result<Summary> {
    let description = Arc::new(subject_ratelimiter::plugin::describe::description());
    let t0 = now_ms();
    let mut demo = Demo::new(description, "local".into(), Mode::Interactive, 3000, t0);
    engine::start(&mut demo);
    for i in 0..600u64 {
        let at = t0 + i * 100;
        engine::update(&mut demo, at, Action::HealthPolled(Ok(snapshot(at, i))));
    }
    frame_times(&demo, width, height, frames)
}

/// `frames` renders of `demo` by the real `ui::render` at `width`×`height`.
pub fn frame_times(demo: &Demo, width: u16, height: u16, frames: usize) -> anyhow::Result<Summary> {
    let mut terminal = Terminal::new(TestBackend::new(width, height))?;
    let mut times = Vec::with_capacity(frames);
    for _ in 0..frames {
        let t = Instant::now();
        terminal.draw(|f| demo_host::ui::render(demo, f))?;
        times.push(t.elapsed());
    }
    Summary::of_ms(&times).context("no frame")
}

/// Kills the tmux session when dropped, also when measuring fails.
struct TmuxSession(String);

impl Drop for TmuxSession {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

fn proc_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

fn vm_hwm_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}

/// The real demo-host playing a plugin in a detached tmux session of its
/// own size, killed when dropped (also when measuring fails).
pub struct TmuxHost {
    session: TmuxSession,
    pub pid: u32,
    /// The host's state directory, removed after the session is killed.
    _scratch: tempfile::TempDir,
}

impl TmuxHost {
    /// Starts demo-host on `plugin` (an artifact name) with `config`, polled
    /// every 100 ms, and waits until the pane runs it.
    pub fn start(plugin: &str, config: &str, width: u16, height: u16) -> anyhow::Result<Self> {
        let host = artifact("demo-host")?;
        let plugin = artifact(plugin)?;
        let scratch = tempfile::tempdir()?;
        let name = format!("demo-bench-{}", std::process::id());
        let cmd = format!(
            "exec '{}' --plugin '{}' --no-build --poll-ms 100 --config '{config}'",
            host.display(),
            plugin.display()
        );
        let state = format!(
            "DEMO_HOST_STATE_DIR={}",
            scratch.path().join("state").display()
        );
        let (w, h) = (width.to_string(), height.to_string());
        let out = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                &w,
                "-y",
                &h,
                "-e",
                &state,
                &cmd,
            ])
            .output()?;
        if !out.status.success() {
            bail!(
                "tmux new-session failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let session = TmuxSession(name);
        let pid: u32 = String::from_utf8(
            Command::new("tmux")
                .args(["display-message", "-p", "-t", &session.0, "#{pane_pid}"])
                .output()?
                .stdout,
        )?
        .trim()
        .parse()
        .context("no pane pid")?;
        let exe = std::fs::canonicalize(&host)?;
        wait_until("demo-host in tmux", Duration::from_secs(10), || {
            Ok(std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe))
        })?;
        Ok(TmuxHost {
            session,
            pid,
            _scratch: scratch,
        })
    }

    /// Types one key (tmux key name) into the host's pane.
    pub fn send_key(&self, key: &str) -> anyhow::Result<()> {
        let out = Command::new("tmux")
            .args(["send-keys", "-t", &self.session.0, key])
            .output()?;
        if !out.status.success() {
            bail!(
                "tmux send-keys failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// What the pane shows now.
    pub fn screen(&self) -> anyhow::Result<String> {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session.0])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Peak RSS (VmHWM) so far, in MB.
    pub fn peak_rss_mb(&self) -> anyhow::Result<f64> {
        vm_hwm_mb(self.pid)
    }

    /// CPU used over `secs` seconds, in % of one core.
    pub fn cpu_over(&self, secs: f64) -> anyhow::Result<f64> {
        // SAFETY: sysconf only reads a configuration value; _SC_CLK_TCK is a valid name.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let (t0, c0) = (Instant::now(), proc_ticks(self.pid)?);
        std::thread::sleep(Duration::from_secs_f64(secs));
        let (c1, elapsed) = (proc_ticks(self.pid)?, t0.elapsed().as_secs_f64());
        Ok((c1 - c0) as f64 / hz / elapsed * 100.0)
    }
}

/// Idle CPU (% of a core) and peak RSS (MB) of the real demo-host playing the
/// example plugin with `config` in a detached tmux session.
pub fn idle_host(secs: f64, config: &str) -> anyhow::Result<(f64, f64)> {
    let host = TmuxHost::start("libsubject_example.so", config, 120, 40)?;
    // Let setup, the first polls and the first frames pass: idle means the steady state.
    std::thread::sleep(Duration::from_secs(1));
    let cpu = host.cpu_over(secs)?;
    let rss = host.peak_rss_mb()?;
    Ok((cpu, rss))
}

pub fn run(opts: &Opts) -> anyhow::Result<Vec<Row>> {
    let frames = if opts.quick { 50 } else { 1000 };
    let mut rows = Vec::new();
    for (w, h) in [(120, 40), (250, 70)] {
        let s = render_times(w, h, frames)?;
        rows.push(
            Row::new(
                GROUP,
                format!("frame render {w}×{h} (600 polls of history, n={})", s.n),
                s.p50_p99(3, "ms"),
            )
            .target("p50 ≤ 2 ms", Verdict::at_most(s.p50, 2.0)),
        );
    }
    if tool("tmux").is_none() {
        rows.push(Row::skipped(
            GROUP,
            "idle CPU / peak RSS",
            "tmux is not installed (Debian package tmux)",
        ));
        return Ok(rows);
    }
    let (cpu, rss) = idle_host(if opts.quick { 2.0 } else { 20.0 }, "")?;
    rows.push(
        Row::new(
            GROUP,
            "idle CPU, demo-host + example plugin polled every 100 ms (tmux 120×40)",
            format!("{cpu:.2}% of one core"),
        )
        .target("≤ 2%", Verdict::at_most(cpu, 2.0)),
    );
    rows.push(
        Row::new(
            GROUP,
            "peak RSS (VmHWM) of that demo-host",
            format!("{rss:.1} MB"),
        )
        .target("≤ 50 MB", Verdict::at_most(rss, 50.0)),
    );
    Ok(rows)
}
