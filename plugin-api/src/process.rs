//! Child processes that live as long as the plugin wants and die with the host.
//!
//! `prctl(PR_SET_PDEATHSIG)` signals a child when the *thread* that forked it
//! ends, not the process. The host calls every plugin method on a thread that
//! ends afterwards, so a child forked in `setup` with that flag dies as soon as
//! `setup` returns. A [`Supervisor`] forks every child from one launcher thread
//! of its own, which lives until the supervisor is dropped: the children then
//! die when the host process dies (even by SIGKILL), not when the calling
//! thread does. [`Supervisor::shutdown`] (call it from `teardown`) and `Drop`
//! stop every child: SIGTERM to its process group, SIGKILL after the grace
//! period.
//!
//! Linux only for the death signal; on other Unix systems children are stopped
//! on shutdown and drop but outlive a killed host.
//!
//! ```no_run
//! use plugin_api::process::{Output, Supervisor};
//! use std::process::Command;
//!
//! # fn main() -> Result<(), plugin_api::process::ProcessError> {
//! let procs = Supervisor::new("my-subject")?; // in `create`
//! let mut cmd = Command::new("redis-server");
//! cmd.args(["--port", "6390"]);
//! let redis = procs.spawn("redis-server", cmd, Output::Capture)?; // in `setup`
//! if let Some(status) = procs.try_wait(redis)? {
//!     eprintln!("redis-server exited early ({status}): {:?}", procs.output(redis));
//! }
//! procs.shutdown(); // in `teardown`
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a child may take to exit after SIGTERM before it gets SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);

/// How much of a captured child's output is kept (its tail).
pub const CAPTURE_LIMIT: usize = 64 * 1024;

/// Why a supervisor call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {name}: {source}")]
    Spawn {
        name: String,
        source: std::io::Error,
    },
    #[error("cannot open the log file {path} for {name}: {source}")]
    Log {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the launcher thread is gone")]
    LauncherGone,
    #[error("no child {0:?} in this supervisor")]
    NoSuchChild(ChildId),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<ProcessError> for crate::PluginError {
    fn from(e: ProcessError) -> Self {
        crate::PluginError::failed(e)
    }
}

/// Where a child's stdout and stderr go (stdin is always `/dev/null`).
#[derive(Debug, Clone, Default)]
pub enum Output {
    /// Thrown away.
    #[default]
    Discard,
    /// The host's own streams (they would garble a TUI: for tools and tests).
    Inherit,
    /// Both streams into this file, created or truncated.
    File(PathBuf),
    /// Both streams kept in memory (the last [`CAPTURE_LIMIT`] bytes), read with [`Supervisor::output`].
    Capture,
}

/// A child of a [`Supervisor`], valid until it is stopped or killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChildId(u64);

type Captured = Arc<Mutex<Vec<u8>>>;

struct Entry {
    name: String,
    child: Child,
    /// Set once the child has been reaped: its pid may then belong to someone else.
    exited: Option<ExitStatus>,
    captured: Option<Captured>,
}

impl Entry {
    /// Reaps the child if it exited; its status from then on.
    fn poll(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait()?;
        }
        Ok(self.exited)
    }

    /// Sends `signal` to the child's process group while the child is not reaped
    /// (an unreaped child, even a zombie, keeps its pid and group id reserved).
    fn signal(&mut self, signal: Signal) -> std::io::Result<()> {
        if self.poll()?.is_some() {
            return Ok(());
        }
        send(&mut self.child, signal)
    }
}

#[derive(Debug, Clone, Copy)]
enum Signal {
    Term,
    Kill,
}

#[cfg(unix)]
fn send(child: &mut Child, signal: Signal) -> std::io::Result<()> {
    let sig = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // The child leads its own process group (see `Supervisor::spawn`), so its
    // own children get the signal too. ESRCH: the group is already empty.
    // SAFETY: kill(2) on the group of an unreaped child of ours; no memory involved.
    let rc = unsafe { libc::kill(-(child.id() as libc::pid_t), sig) };
    let err = std::io::Error::last_os_error();
    if rc == 0 || err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

#[cfg(not(unix))]
fn send(child: &mut Child, _signal: Signal) -> std::io::Result<()> {
    child.kill()
}

type Job = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Child processes forked from one long-lived thread (see the module docs).
///
/// `Send + Sync`: keep it in the subject and call it from any host thread.
pub struct Supervisor {
    name: String,
    grace: Duration,
    launcher: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    children: Mutex<BTreeMap<ChildId, Entry>>,
    next: AtomicU64,
}

impl Supervisor {
    /// Starts the launcher thread; `name` names it and appears in errors.
    pub fn new(name: &str) -> Result<Supervisor, ProcessError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-launcher"))
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })?;
        Ok(Supervisor {
            name: name.to_string(),
            grace: DEFAULT_GRACE,
            launcher: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            children: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
        })
    }

    /// How long [`stop`](Self::stop) and [`shutdown`](Self::shutdown) wait after SIGTERM.
    pub fn with_grace(mut self, grace: Duration) -> Supervisor {
        self.grace = grace;
        self
    }

    /// Starts `cmd` as a child that dies with the host process; `name` appears
    /// in errors and is what [`running`](Self::running) reports.
    pub fn spawn(
        &self,
        name: &str,
        mut cmd: Command,
        output: Output,
    ) -> Result<ChildId, ProcessError> {
        cmd.stdin(Stdio::null());
        match &output {
            Output::Discard => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
            Output::Inherit => {
                cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
            }
            Output::File(path) => {
                let log = |source| ProcessError::Log {
                    name: name.to_string(),
                    path: path.clone(),
                    source,
                };
                let file = std::fs::File::create(path).map_err(log)?;
                let err = file.try_clone().map_err(log)?;
                cmd.stdout(file).stderr(err);
            }
            Output::Capture => {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
        }
        prepare(&mut cmd);
        let mut child = self.launch(cmd).map_err(|source| match source {
            LaunchError::Gone => ProcessError::LauncherGone,
            LaunchError::Io(source) => ProcessError::Spawn {
                name: name.to_string(),
                source,
            },
        })?;
        let captured = matches!(output, Output::Capture).then(|| {
            let buf: Captured = Arc::default();
            if let Some(out) = child.stdout.take() {
                drain(out, Arc::clone(&buf));
            }
            if let Some(err) = child.stderr.take() {
                drain(err, Arc::clone(&buf));
            }
            buf
        });
        let id = ChildId(self.next.fetch_add(1, Ordering::Relaxed));
        let entry = Entry {
            name: name.to_string(),
            child,
            exited: None,
            captured,
        };
        lock(&self.children).insert(id, entry);
        Ok(id)
    }

    fn launch(&self, cmd: Command) -> Result<Child, LaunchError> {
        let (reply_tx, reply_rx) = mpsc::channel();
        lock(&self.launcher)
            .as_ref()
            .ok_or(LaunchError::Gone)?
            .send((cmd, reply_tx))
            .map_err(|_| LaunchError::Gone)?;
        reply_rx
            .recv()
            .map_err(|_| LaunchError::Gone)?
            .map_err(LaunchError::Io)
    }

    /// The child's process id while it is not reaped.
    pub fn pid(&self, id: ChildId) -> Option<u32> {
        let mut children = lock(&self.children);
        let entry = children.get_mut(&id)?;
        matches!(entry.poll(), Ok(None)).then(|| entry.child.id())
    }

    /// `None` while the child runs, its exit status once it ended (an early
    /// exit is reported here until the child is stopped or killed).
    pub fn try_wait(&self, id: ChildId) -> Result<Option<ExitStatus>, ProcessError> {
        let mut children = lock(&self.children);
        let entry = children.get_mut(&id).ok_or(ProcessError::NoSuchChild(id))?;
        Ok(entry.poll()?)
    }

    /// True while the child runs.
    pub fn is_running(&self, id: ChildId) -> bool {
        matches!(self.try_wait(id), Ok(None))
    }

    /// Names and pids of the children that run now.
    pub fn running(&self) -> Vec<(String, u32)> {
        let mut children = lock(&self.children);
        children
            .values_mut()
            .filter_map(|e| matches!(e.poll(), Ok(None)).then(|| (e.name.clone(), e.child.id())))
            .collect()
    }

    /// Children that ended on their own and were not stopped yet, with their status.
    pub fn exited(&self) -> Vec<(ChildId, String, ExitStatus)> {
        let mut children = lock(&self.children);
        children
            .iter_mut()
            .filter_map(|(id, e)| Some((*id, e.name.clone(), e.poll().ok()??)))
            .collect()
    }

    /// What a child started with [`Output::Capture`] printed so far (its tail).
    pub fn output(&self, id: ChildId) -> Option<String> {
        let children = lock(&self.children);
        let buf = Arc::clone(children.get(&id)?.captured.as_ref()?);
        drop(children);
        let text = String::from_utf8_lossy(&lock(&buf)).into_owned();
        Some(text)
    }

    /// SIGKILL now (a crash, not a shutdown); waits for the child and forgets it.
    pub fn kill(&self, id: ChildId) -> Result<ExitStatus, ProcessError> {
        let mut entry = lock(&self.children)
            .remove(&id)
            .ok_or(ProcessError::NoSuchChild(id))?;
        entry.signal(Signal::Kill)?;
        Ok(entry.child.wait()?)
    }

    /// SIGTERM, SIGKILL after the grace period; waits for the child and forgets it.
    pub fn stop(&self, id: ChildId) -> Result<ExitStatus, ProcessError> {
        let entry = lock(&self.children)
            .remove(&id)
            .ok_or(ProcessError::NoSuchChild(id))?;
        let mut stopped = self.stop_all(vec![entry]);
        stopped.pop().ok_or(ProcessError::NoSuchChild(id))?
    }

    /// Stops every child (SIGTERM to all, SIGKILL after the grace period to
    /// those still running) and waits for them. The supervisor stays usable.
    pub fn shutdown(&self) {
        let entries: Vec<Entry> = std::mem::take(&mut *lock(&self.children))
            .into_values()
            .collect();
        self.stop_all(entries);
    }

    fn stop_all(&self, mut entries: Vec<Entry>) -> Vec<Result<ExitStatus, ProcessError>> {
        for e in &mut entries {
            let _ = e.signal(Signal::Term);
        }
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline && entries.iter_mut().any(|e| matches!(e.poll(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        entries
            .into_iter()
            .map(|mut e| {
                e.signal(Signal::Kill)?;
                Ok(e.child.wait()?)
            })
            .collect()
    }

    /// The name given to [`new`](Self::new).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.shutdown();
        lock(&self.launcher).take();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("name", &self.name)
            .field("grace", &self.grace)
            .field("running", &self.running())
            .finish()
    }
}

enum LaunchError {
    Gone,
    Io(std::io::Error),
}

/// Each child leads its own process group (signals reach its children, and a
/// Ctrl-C in the host's terminal does not kill it behind the host's back) and,
/// on Linux, gets SIGKILL when its parent thread, the launcher, ends.
fn prepare(cmd: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls (prctl, getppid) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
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
                // The host died between fork and prctl: no signal will come.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other(
                        "the host exited before the child started",
                    ));
                }
                Ok(())
            });
        }
    }
}

/// Copies a child's stream into `buf`, keeping its last [`CAPTURE_LIMIT`] bytes.
fn drain(mut from: impl Read + Send + 'static, buf: Captured) {
    let _ = std::thread::Builder::new()
        .name("process-output".into())
        .spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = from.read(&mut chunk) {
                let mut b = lock(&buf);
                b.extend_from_slice(&chunk[..n]);
                if b.len() > CAPTURE_LIMIT {
                    let cut = b.len() - CAPTURE_LIMIT;
                    b.drain(..cut);
                }
            }
        });
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
