//! The real `demo-host` binary in a real terminal (tmux): the rate limiter demo
//! against a real Redis and three real nodes, a subject switch and back, and a
//! quit while Redis writes are paused that must leave Redis accepting writes.

use e2e_tests::procs::{free_port, wait_until, Cluster};
use e2e_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmux server of our own (`-L`), killed with everything in it on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn sized(command: &str, cwd: &Path, env: &[(&str, String)], (w, h): (u16, u16)) -> Tmux {
        let (w, h) = (w.to_string(), h.to_string());
        let t = Tmux {
            socket: format!("demo-host-e2e-{}-{}", std::process::id(), free_port()),
        };
        let mut cmd = Command::new("tmux");
        cmd.args([
            "-L",
            &t.socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "demo",
            "-x",
            &w,
            "-y",
            &h,
        ]);
        for (k, v) in env {
            cmd.args(["-e", &format!("{k}={v}")]);
        }
        cmd.arg("-c").arg(cwd).arg(command);
        let status = cmd
            .status()
            .expect("tmux must be installed (Debian package tmux)");
        assert!(status.success(), "tmux new-session failed");
        t
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "demo"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let ok = Command::new("tmux")
                .args(["-L", &self.socket, "send-keys", "-t", "demo", k])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "tmux send-keys {k}");
        }
    }

    /// Waits until the screen shows `text`; fails with the last screen.
    fn wait_for(&self, text: &str, limit: Duration) {
        let mut last = String::new();
        let seen = wait_until(limit, || {
            last = self.screen();
            last.contains(text)
        });
        assert!(
            seen,
            "the screen never showed `{text}` within {limit:?}; last screen:\n{last}"
        );
    }
}

/// The demo in tmux: `demo-host --plugin <lib> --config <config>`; its exit code
/// lands in the returned file, then the shell prints `SHELL-BACK`.
struct TmuxDemo;

impl TmuxDemo {
    fn start(lib: &Path, config: &str, state: &Path) -> (Tmux, PathBuf) {
        TmuxDemo::sized(lib, config, state, (120, 40))
    }

    fn sized(lib: &Path, config: &str, state: &Path, size: (u16, u16)) -> (Tmux, PathBuf) {
        let exit_file = state.join("exit-code");
        let command = format!(
            "{} --plugin {} --no-build --countdown 1 --config '{config}'; echo $? > {}; echo SHELL-BACK; sleep 60",
            demo_host_binary().display(),
            lib.display(),
            exit_file.display()
        );
        let env = [
            ("DEMO_HOST_STATE_DIR", state.display().to_string()),
            ("XDG_CONFIG_HOME", state.display().to_string()),
        ];
        (
            Tmux::sized(&command, &workspace_root(), &env, size),
            exit_file,
        )
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn presenter_runs_the_rate_limiter_demo_switches_subject_and_quits_during_chaos() {
    let lib = plugin_library("ratelimiter");
    plugin_library("example");
    let cluster = Cluster::start();
    let redis = &cluster.redis;
    let state = tempfile::tempdir().unwrap();
    let (tmux, exit_file) = TmuxDemo::start(&lib, &cluster.config(), state.path());
    let long = Duration::from_secs(60);

    tmux.wait_for("Redis-backed rate limiter", long);
    tmux.wait_for("chapter 1/", long);
    // The real Redis answers: its row shows a measured ping (the address gives
    // way to the metrics at 120 columns).
    tmux.wait_for("ping ", long);
    tmux.keys(&["?"]);
    tmux.wait_for("recover all active chaos now", long);
    tmux.keys(&["Escape", "Space", "Space"]);
    tmux.wait_for("Set the limit", long);
    tmux.wait_for("Counter drift: inject", long);
    tmux.wait_for("injecting redis-pause ·", long); // "· Ns left": the pause is in effect
    assert!(
        !redis.accepts_writes(Duration::from_millis(500)),
        "Redis writes are paused during the chaos chapter"
    );

    // Switch to the example subject: the pause is recovered before the swap.
    tmux.keys(&["s"]);
    tmux.wait_for("Switch subject", long);
    tmux.keys(&["Enter"]);
    tmux.wait_for("Example replicated counter", long);
    assert!(
        redis.accepts_writes(Duration::from_secs(2)),
        "the swap recovered the pause"
    );
    tmux.wait_for("replica-3", long);

    // And back: the rate limiter comes back with the config it had.
    tmux.keys(&["s"]);
    tmux.wait_for("Switch subject", long);
    tmux.keys(&["j", "Enter"]);
    // With the config it had: the test's cluster (env=compose pointing at it),
    // not a local environment of its own; and that Redis answers.
    tmux.wait_for("Redis-backed rate limiter · compose", long);
    tmux.wait_for("ping ", long);
    tmux.keys(&["Space", "Space"]);
    tmux.wait_for("Counter drift: inject", long);
    tmux.wait_for("injecting redis-pause ·", long); // "· Ns left": the pause is in effect
    assert!(
        !redis.accepts_writes(Duration::from_millis(500)),
        "paused again"
    );

    // Quit in the middle of the chaos: the host recovers it before exiting.
    tmux.keys(&["q"]);
    assert!(
        wait_until(long, || exit_file.exists()),
        "demo-host exited; screen:\n{}",
        tmux.screen()
    );
    let code = std::fs::read_to_string(&exit_file).unwrap();
    assert_eq!(code.trim(), "0", "clean exit");
    assert!(
        redis.accepts_writes(Duration::from_secs(2)),
        "Redis accepts writes after the quit"
    );
    let leftovers =
        std::fs::read_to_string(state.path().join("leftover-faults.json")).unwrap_or_default();
    assert!(
        !leftovers.contains("fault_id"),
        "no fault left recorded: {leftovers}"
    );
}

#[test]
fn ctrl_c_during_chaos_recovers_and_restores_the_terminal() {
    let lib = plugin_library("ratelimiter");
    let cluster = Cluster::start();
    let redis = &cluster.redis;
    let state = tempfile::tempdir().unwrap();
    let (tmux, exit_file) = TmuxDemo::start(&lib, &cluster.config(), state.path());
    let long = Duration::from_secs(60);
    tmux.wait_for("Redis-backed rate limiter", long);
    tmux.keys(&["Space", "Space"]);
    tmux.wait_for("injecting redis-pause ·", long); // "· Ns left": the pause is in effect
                                                    // The pause lasts 30 s: only the interrupt's recovery can end it within the checks below.
    assert!(
        !redis.accepts_writes(Duration::from_millis(500)),
        "Redis writes are paused"
    );
    tmux.keys(&["C-c"]);
    assert!(
        wait_until(long, || exit_file.exists()),
        "demo-host exited; screen:\n{}",
        tmux.screen()
    );
    assert_eq!(std::fs::read_to_string(&exit_file).unwrap().trim(), "0");
    assert!(
        redis.accepts_writes(Duration::from_secs(2)),
        "the interrupt recovered the pause"
    );
    tmux.wait_for("SHELL-BACK", long);
    let screen = tmux.screen();
    assert!(
        !screen.contains("Live metrics"),
        "the alternate screen was left:\n{screen}"
    );
    let left =
        std::fs::read_to_string(state.path().join("leftover-faults.json")).unwrap_or_default();
    assert!(!left.contains("fault_id"), "nothing left recorded: {left}");
}

/// A thousand-node cluster in a real terminal, small and large: the summary,
/// the grouping with the worst first, scrolling, and the demo to its end.
#[test]
fn a_thousand_node_cluster_plays_readably_at_120x40_and_250x70() {
    let lib = plugin_library("example");
    for size in [(120, 40), (250, 70)] {
        let state = tempfile::tempdir().unwrap();
        let (tmux, exit_file) = TmuxDemo::sized(&lib, "nodes=1000", state.path(), size);
        let long = Duration::from_secs(60);
        tmux.wait_for("Cluster health · 1000 nodes", long);
        tmux.wait_for("1000 up", long);
        tmux.wait_for("more: ", long);
        tmux.keys(&["]"]);
        tmux.wait_for("[ ] scroll", long);
        tmux.keys(&["Space"]);
        tmux.wait_for("Partition a replica", long);
        tmux.wait_for("VIOLATED", long);
        tmux.keys(&["Space"]);
        tmux.wait_for("replica divergence", long);
        tmux.keys(&["q"]);
        tmux.wait_for("SHELL-BACK", long);
        let code = std::fs::read_to_string(&exit_file).unwrap_or_default();
        assert_eq!(code.trim(), "0", "{size:?}: {}", tmux.screen());
    }
}

/// The presenter closes the loop on the real local cluster (redis-server, its
/// standby and three nodes started by the plugin): the counter drift's
/// high-risk failover is rejected with `c` and nothing changes; the ghost
/// allowing's strict mode is approved with `a`, runs, passes its probe and is
/// shown resolved; quitting leaves nothing recorded.
#[test]
fn presenter_rejects_one_fix_and_approves_another_on_the_real_cluster() {
    let lib = plugin_library("ratelimiter");
    let state = tempfile::tempdir().unwrap();
    let (tmux, exit_file) = TmuxDemo::start(&lib, "env=local", state.path());
    let long = Duration::from_secs(90);
    tmux.wait_for("Redis-backed rate limiter", long);
    tmux.wait_for("chapter 1/", long);
    // To the counter drift's diagnosis (chapter 6), then the fix it proposes.
    tmux.keys(&["Space", "Space"]);
    tmux.wait_for("Set the limit", long);
    tmux.keys(&["Space"]);
    tmux.wait_for("injecting redis-pause ·", long);
    tmux.keys(&["Space"]);
    tmux.wait_for("VIOLATED counter drift", long);
    tmux.keys(&["Space"]);
    tmux.wait_for("high risk · a: approve · c: reject", long);
    tmux.keys(&["c"]);
    tmux.wait_for("rejected by presenter", long);
    // Recover, then the ghost allowing.
    tmux.keys(&["Space"]);
    tmux.wait_for("chaos     recovered redis-pause", long);
    tmux.keys(&["Space"]);
    tmux.wait_for("Ghost allowing: inject", long);
    tmux.wait_for("injected burst", long);
    tmux.keys(&["Space"]);
    tmux.wait_for("Ghost allowing: detect", long);
    tmux.wait_for("ghost allowing: VIOLATED", long);
    tmux.keys(&["Space"]);
    tmux.wait_for("medium risk · a: approve · c: reject", long);
    tmux.keys(&["a"]);
    tmux.wait_for("resolved in", long);
    tmux.keys(&["q"]);
    assert!(
        wait_until(long, || exit_file.exists()),
        "demo-host exited; screen:\n{}",
        tmux.screen()
    );
    assert_eq!(std::fs::read_to_string(&exit_file).unwrap().trim(), "0");
    let left =
        std::fs::read_to_string(state.path().join("leftover-faults.json")).unwrap_or_default();
    assert!(!left.contains("fault_id"), "nothing left recorded: {left}");
}
