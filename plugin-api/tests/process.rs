//! The process supervisor with real processes (`sleep`, `sh -c`).
#![cfg(target_os = "linux")]

use plugin_api::process::{Output, Supervisor};
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Marks the helper process of `a_killed_host_takes_its_children_with_it`.
const HELPER_ENV: &str = "PLUGIN_API_PROCESS_HELPER";

/// True while `pid` is a live process (a zombie is dead, only not reaped yet).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

fn sleep_cmd() -> Command {
    let mut cmd = Command::new("sleep");
    cmd.arg("1000");
    cmd
}

#[test]
fn a_child_started_from_a_short_lived_thread_outlives_that_thread() {
    let sup = Supervisor::new("outlive").unwrap();
    let (supervised, mut control) = std::thread::scope(|s| {
        s.spawn(|| {
            let id = sup.spawn("sleep", sleep_cmd(), Output::Discard).unwrap();
            // The control: the guide's old advice, PR_SET_PDEATHSIG set in a
            // child forked by this very thread.
            let mut cmd = sleep_cmd();
            // SAFETY: only prctl runs between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(
                        libc::PR_SET_PDEATHSIG,
                        libc::SIGKILL as libc::c_ulong,
                        0,
                        0,
                        0,
                    ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            (id, cmd.stdin(Stdio::null()).spawn().unwrap())
        })
        .join()
        .unwrap()
    });
    // The thread has ended: the control child gets SIGKILL from the kernel...
    let control_died = wait_until(Duration::from_secs(10), || {
        matches!(control.try_wait(), Ok(Some(_)))
    });
    assert!(
        control_died,
        "the control child outlived the thread that forked it"
    );
    assert_eq!(control.wait().unwrap().signal(), Some(libc::SIGKILL));
    // ...while the supervised one, forked by the launcher thread, runs on.
    assert!(sup.is_running(supervised), "{:?}", sup.try_wait(supervised));
    assert!(alive(sup.pid(supervised).unwrap()));
}

#[test]
fn children_die_when_the_supervisor_is_dropped() {
    let sup = Supervisor::new("drop").unwrap();
    let a = sup.spawn("a", sleep_cmd(), Output::Discard).unwrap();
    let b = sup.spawn("b", sleep_cmd(), Output::Discard).unwrap();
    let pids = [sup.pid(a).unwrap(), sup.pid(b).unwrap()];
    assert!(pids.iter().all(|p| alive(*p)));
    drop(sup);
    // Drop waits for them: nothing is left, not even a zombie.
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || !alive(pid));
    }
}

#[test]
fn shutdown_stops_every_child_with_sigterm_and_the_supervisor_stays_usable() {
    let sup = Supervisor::new("shutdown").unwrap();
    let id = sup.spawn("sleep", sleep_cmd(), Output::Discard).unwrap();
    let pid = sup.pid(id).unwrap();
    sup.shutdown();
    assert!(!alive(pid));
    assert!(sup.running().is_empty());
    assert!(sup.try_wait(id).is_err(), "a stopped child is forgotten");
    let again = sup.spawn("sleep", sleep_cmd(), Output::Discard).unwrap();
    let status = sup.stop(again).unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "sleep honours SIGTERM: {status}"
    );
}

#[test]
fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let grace = Duration::from_millis(300);
    let sup = Supervisor::new("stubborn").unwrap().with_grace(grace);
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 0.05; done",
    ]);
    let id = sup.spawn("stubborn", cmd, Output::Capture).unwrap();
    let ready = wait_until(Duration::from_secs(10), || {
        sup.output(id).is_some_and(|o| o.contains("ready"))
    });
    assert!(ready, "the shell did not start: {:?}", sup.output(id));
    let pid = sup.pid(id).unwrap();
    let start = Instant::now();
    let status = sup.stop(id).unwrap();
    assert!(
        start.elapsed() >= grace,
        "SIGKILL came before the grace period ended"
    );
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert!(!alive(pid));
}

#[test]
fn an_early_exit_is_reported_with_its_status_and_output() {
    let sup = Supervisor::new("early").unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
    let id = sup.spawn("early", cmd, Output::Capture).unwrap();
    let ended = wait_until(Duration::from_secs(10), || {
        matches!(sup.try_wait(id), Ok(Some(_)))
    });
    assert!(ended);
    assert_eq!(sup.try_wait(id).unwrap().and_then(|s| s.code()), Some(3));
    assert!(!sup.is_running(id));
    assert_eq!(
        sup.pid(id),
        None,
        "a reaped child's pid is not ours any more"
    );
    let exited = sup.exited();
    assert_eq!(exited.len(), 1);
    assert_eq!((exited[0].0, exited[0].1.as_str()), (id, "early"));
    // Both streams are captured; the reader threads may lag the exit.
    let both = wait_until(Duration::from_secs(5), || {
        sup.output(id)
            .is_some_and(|o| o.contains("out") && o.contains("err"))
    });
    assert!(both, "{:?}", sup.output(id));
}

#[test]
fn output_goes_to_a_file_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("child.log");
    let sup = Supervisor::new("file").unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo to-the-log; echo and-stderr >&2"]);
    let id = sup.spawn("logger", cmd, Output::File(log.clone())).unwrap();
    assert!(wait_until(Duration::from_secs(10), || !sup.is_running(id)));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("to-the-log") && text.contains("and-stderr"),
        "{text}"
    );
    assert_eq!(
        sup.output(id),
        None,
        "only Output::Capture keeps output in memory"
    );
}

#[test]
fn stop_reaches_the_childs_own_children() {
    let sup = Supervisor::new("group").unwrap();
    let mut cmd = Command::new("sh");
    // A background grandchild; the shell reports its pid, then waits.
    cmd.args(["-c", "sleep 1000 & echo $!; wait"]);
    let id = sup.spawn("sh", cmd, Output::Capture).unwrap();
    let grandchild = grandchild_pid(|| sup.output(id));
    assert!(alive(grandchild));
    sup.stop(id).unwrap();
    // The grandchild is not ours to reap: wait for it to be gone.
    assert!(
        wait_until(Duration::from_secs(10), || !alive(grandchild)),
        "the grandchild {grandchild} survived"
    );
}

fn grandchild_pid(mut output: impl FnMut() -> Option<String>) -> u32 {
    let mut pid = None;
    let found = wait_until(Duration::from_secs(10), || {
        pid = output().and_then(|o| o.lines().next().and_then(|l| l.trim().parse().ok()));
        pid.is_some()
    });
    assert!(found, "no pid printed: {:?}", output());
    pid.unwrap_or_default()
}

#[test]
fn a_killed_host_takes_its_children_with_it() {
    // The helper is this test binary running `supervising_helper`: it starts a
    // child through a supervisor from a short-lived thread, prints its pid and
    // waits to be killed.
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "supervising_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = helper.stdout.take().unwrap();
    let mut helper = Reap(helper);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The harness prints the test's name on the same line.
            if let Some(pid) = line.split("child-pid=").nth(1) {
                let _ = tx.send(pid.trim().parse::<u32>().ok());
            }
        }
    });
    let child = rx
        .recv_timeout(Duration::from_secs(30))
        .ok()
        .flatten()
        .expect("the helper reports its child's pid");
    assert!(alive(child));
    // SIGKILL: no destructor runs in the helper.
    helper.0.kill().unwrap();
    helper.0.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !alive(child)),
        "the child {child} outlived its SIGKILLed parent process"
    );
}

/// Not a test: the helper process of `a_killed_host_takes_its_children_with_it`.
#[test]
#[ignore = "run by a_killed_host_takes_its_children_with_it"]
fn supervising_helper() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let sup = std::thread::spawn(|| {
        let sup = Supervisor::new("helper").unwrap();
        let id = sup.spawn("sleep", sleep_cmd(), Output::Discard).unwrap();
        println!("\nchild-pid={}", sup.pid(id).unwrap());
        sup
    })
    .join()
    .unwrap();
    // Wait for SIGKILL with the supervisor alive; should the parent test die
    // instead, its end of stdin closes and this returns.
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    drop(sup);
}
