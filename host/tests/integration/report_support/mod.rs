//! What the report tests share: the demo-host binary run from the workspace
//! with its own state directory, bounded in time, its process group killed on drop.

#![allow(dead_code)]

pub mod campaign;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Kills the whole process group (Chromium's renderers too) when dropped.
pub struct Group(pub Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// Runs `cmd` in its own process group, killed if it outlives `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut group = spawn_group(cmd, &out, &err);
    let mut status = None;
    let finished = wait_until(limit, || {
        status = group.0.try_wait().expect("wait");
        status.is_some()
    });
    assert!(finished, "{cmd:?} did not finish within {limit:?}");
    drop(group);
    Output {
        status: status.expect("finished"),
        stdout: std::fs::read(&out).unwrap_or_default(),
        stderr: std::fs::read(&err).unwrap_or_default(),
    }
}

pub fn demo_host(state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-host"));
    cmd.current_dir(workspace())
        .env("DEMO_HOST_STATE_DIR", state)
        .env_remove("DEMO_HOST_PLUGIN")
        .env_remove("DEMO_HOST_CONFIG")
        .env_remove("DEMO_HOST_DIAGNOSER");
    cmd
}

/// Spawns `cmd` in its own process group; dropping the guard kills the group.
pub fn spawn_group(cmd: &mut Command, stdout: &Path, stderr: &Path) -> Group {
    use std::os::unix::process::CommandExt;
    let child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(stdout).expect("stdout file"))
        .stderr(std::fs::File::create(stderr).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    Group(child)
}

/// Polls `cond` every 50 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The example plugin's crate directory, as `--plugin` takes it (built by the host if needed).
pub fn example_plugin() -> PathBuf {
    workspace().join("plugins/example")
}
