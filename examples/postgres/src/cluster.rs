//! A PostgreSQL primary and one streaming replica as child processes: found
//! binaries, data directories in a temporary directory, free loopback ports.
//! Every process is started through the plugin-api `Supervisor`, so none
//! outlives the host (or a test).

use crate::pgwire::{Conn, PgError};
use plugin_api::process::{ChildId, Output, Supervisor};
use plugin_api::PluginError;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The database user the plugin creates (`initdb -U`) and connects as.
pub const USER: &str = "demo";
pub const DATABASE: &str = "postgres";
/// Prefix of the plugin's temporary directories (leftover recovery only removes these).
pub const DIR_PREFIX: &str = "demo-host-postgres-";
/// How long a server may take to answer after it was started.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The three programs the plugin runs, from one installation.
#[derive(Debug, Clone)]
pub struct Bins {
    pub initdb: PathBuf,
    pub postgres: PathBuf,
    pub pg_basebackup: PathBuf,
}

impl Bins {
    /// `bin_dir` when given; else the directory of `postgres` on `PATH` when
    /// `initdb` is there too; else Debian's `/usr/lib/postgresql/<newest>/bin`.
    pub fn find(bin_dir: Option<&str>) -> Result<Bins, PluginError> {
        if let Some(dir) = bin_dir {
            return Bins::in_dir(Path::new(dir)).ok_or_else(|| {
                PluginError::Missing(format!(
                    "bin_dir={dir} does not hold initdb, postgres and pg_basebackup"
                ))
            });
        }
        let on_path = on_path("postgres")
            .and_then(|p| p.canonicalize().ok())
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .and_then(|d| Bins::in_dir(&d));
        if let Some(bins) = on_path {
            return Ok(bins);
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort();
        versions
            .into_iter()
            .rev()
            .find_map(|(_, d)| Bins::in_dir(&d))
            .ok_or_else(|| {
                PluginError::Missing(
                    "PostgreSQL server programs (initdb, postgres, pg_basebackup): neither on PATH \
                     nor in /usr/lib/postgresql/<version>/bin; install the Debian package \
                     `postgresql` (apt-get install postgresql) or pass bin_dir=DIR"
                        .into(),
                )
            })
    }

    fn in_dir(dir: &Path) -> Option<Bins> {
        let bins = Bins {
            initdb: dir.join("initdb"),
            postgres: dir.join("postgres"),
            pg_basebackup: dir.join("pg_basebackup"),
        };
        [&bins.initdb, &bins.postgres, &bins.pg_basebackup]
            .iter()
            .all(|p| p.is_file())
            .then_some(bins)
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The unprivileged account the servers run as when the host runs as root
/// (`postgres` refuses to run as root).
#[derive(Debug, Clone, Copy)]
pub struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    pub fn needed() -> Result<Option<RunAs>, PluginError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        let name = c"postgres";
        // SAFETY: getpwnam with a valid C string; the result is read at once,
        // before any other call could reuse its static buffer.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if pw.is_null() {
            return Err(PluginError::Missing(
                "the host runs as root, which `postgres` refuses; the plugin runs the servers as \
                 the `postgres` account, which does not exist (the Debian package `postgresql` \
                 creates it)"
                    .into(),
            ));
        }
        // SAFETY: pw is non-null and points to a passwd record.
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        Ok(Some(RunAs { uid, gid }))
    }

    fn apply(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        cmd.uid(self.uid).gid(self.gid);
    }

    fn own(&self, path: &Path) -> std::io::Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
    }
}

/// One of the two servers.
pub struct Server {
    pub id: &'static str,
    pub port: u16,
    pub data: PathBuf,
    child: Mutex<Option<ChildId>>,
}

impl Server {
    pub fn connect(&self, timeout: Duration) -> Result<Conn, PgError> {
        Conn::connect(self.port, USER, DATABASE, timeout)
    }
}

/// The running pair. Dropping it stops both servers and removes the directory.
pub struct Cluster {
    procs: Supervisor,
    bins: Bins,
    run_as: Option<RunAs>,
    pub dir: PathBuf,
    pub primary: Server,
    pub replica: Server,
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

impl Cluster {
    /// initdb, start the primary, create the table, pg_basebackup, start the
    /// replica, and wait until it streams. `log` gets progress lines.
    pub fn start(bins: Bins, log: &dyn Fn(String)) -> Result<Cluster, PluginError> {
        let run_as = RunAs::needed()?;
        for stale in remove_stale_dirs() {
            log(format!(
                "removed {}, left by a host that died during setup",
                stale.display()
            ));
        }
        let dir = std::env::temp_dir().join(format!(
            "{DIR_PREFIX}{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| fail(&dir, e))?;
        let [primary_port, replica_port] = free_ports()?;
        let cluster = Cluster {
            procs: Supervisor::new("postgres")?.with_grace(Duration::from_secs(5)),
            bins,
            run_as,
            primary: Server {
                id: "pg-primary",
                port: primary_port,
                data: dir.join("primary"),
                child: Mutex::new(None),
            },
            replica: Server {
                id: "pg-replica",
                port: replica_port,
                data: dir.join("replica"),
                child: Mutex::new(None),
            },
            dir,
        };
        // From here on, dropping `cluster` cleans up whatever failed half-way.
        if let Some(r) = &cluster.run_as {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&cluster.dir, std::fs::Permissions::from_mode(0o755))
                .and_then(|_| r.own(&cluster.dir))
                .map_err(|e| fail(&cluster.dir, e))?;
        }
        let mut initdb = cluster.command(&cluster.bins.initdb);
        initdb.arg("-D").arg(&cluster.primary.data).args([
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        cluster.run_to_end("initdb", initdb, Duration::from_secs(60))?;
        log(format!("initdb done in {}", cluster.dir.display()));

        cluster.start_server(&cluster.primary)?;
        let mut conn = cluster.wait_answering(&cluster.primary, START_LIMIT)?;
        conn.query(
            "CREATE TABLE demo_writes (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), payload text NOT NULL)",
        )
        .map_err(PluginError::failed)?;
        log(format!(
            "primary answers on 127.0.0.1:{}",
            cluster.primary.port
        ));

        let mut backup = cluster.command(&cluster.bins.pg_basebackup);
        backup
            .args(["-h", "127.0.0.1", "-p", &cluster.primary.port.to_string()])
            .args(["-U", USER, "-D"])
            .arg(&cluster.replica.data)
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"]);
        cluster.run_to_end("pg_basebackup", backup, Duration::from_secs(60))?;
        log("pg_basebackup copied the primary".into());

        cluster.start_server(&cluster.replica)?;
        cluster.wait_answering(&cluster.replica, START_LIMIT)?;
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let streaming = conn
                .query("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
                .ok()
                .and_then(|rows| first(&rows))
                .is_some_and(|n| n == "1");
            if streaming {
                break;
            }
            if Instant::now() >= deadline {
                return Err(PluginError::failed(format!(
                    "the replica did not start streaming within {START_LIMIT:?}; its log: {}",
                    tail(&cluster.dir.join("pg-replica.log"))
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        log(format!(
            "replica streams from the primary on 127.0.0.1:{}",
            cluster.replica.port
        ));
        Ok(cluster)
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.dir);
        if let Some(r) = &self.run_as {
            r.apply(&mut cmd);
        }
        cmd
    }

    /// A short-lived program, supervised too (a host killed meanwhile takes it along).
    fn run_to_end(&self, name: &str, cmd: Command, limit: Duration) -> Result<(), PluginError> {
        let id = self.procs.spawn(name, cmd, Output::Capture)?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.procs.try_wait(id)? {
                if status.success() {
                    return Ok(());
                }
                return Err(PluginError::failed(format!(
                    "{name} failed ({status}): {}",
                    self.procs.output(id).unwrap_or_default().trim()
                )));
            }
            if Instant::now() >= deadline {
                let _ = self.procs.kill(id);
                return Err(PluginError::failed(format!(
                    "{name} took longer than {limit:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts (or restarts) a server's postmaster on its port.
    pub fn start_server(&self, server: &Server) -> Result<(), PluginError> {
        let mut cmd = self.command(&self.bins.postgres);
        cmd.arg("-D")
            .arg(&server.data)
            .args(["-p", &server.port.to_string(), "-k"])
            .arg(&self.dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "shared_buffers=16MB",
                "-c",
                "max_connections=20",
                "-c",
                "wal_level=replica",
                "-c",
                "max_wal_senders=4",
                "-c",
                "wal_keep_size=256MB",
                "-c",
                "hot_standby=on",
                "-c",
                "wal_retrieve_retry_interval=500ms",
                "-c",
                "logging_collector=off",
            ]);
        let log = self.dir.join(format!("{}.log", server.id));
        let id = self.procs.spawn(server.id, cmd, Output::File(log))?;
        *lock(&server.child) = Some(id);
        Ok(())
    }

    /// Waits until `server` answers a query; fails early when it exited.
    pub fn wait_answering(&self, server: &Server, limit: Duration) -> Result<Conn, PluginError> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(mut c) = server.connect(Duration::from_millis(500)) {
                if c.query("SELECT 1").is_ok() {
                    return Ok(c);
                }
            }
            if let Some(status) = self.exited(server) {
                return Err(PluginError::failed(format!(
                    "{} exited ({status}); its log: {}",
                    server.id,
                    tail(&self.dir.join(format!("{}.log", server.id)))
                )));
            }
            if Instant::now() >= deadline {
                return Err(PluginError::failed(format!(
                    "{} did not answer within {limit:?}",
                    server.id
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's exit status when its postmaster ended or was killed.
    pub fn exited(&self, server: &Server) -> Option<String> {
        match *lock(&server.child) {
            None => Some("killed".into()),
            Some(id) => match self.procs.try_wait(id) {
                Ok(Some(status)) => Some(status.to_string()),
                Ok(None) => None,
                Err(e) => Some(e.to_string()),
            },
        }
    }

    /// SIGKILL to the server's process group: a crash, not a shutdown.
    pub fn kill(&self, server: &Server) -> Result<(), PluginError> {
        if let Some(id) = lock(&server.child).take() {
            self.procs.kill(id)?;
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.procs.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes the directories of hosts that no longer run (one killed while
/// `setup` ran has no fault on record for leftover recovery to undo); returns them.
pub fn remove_stale_dirs() -> Vec<PathBuf> {
    let alive = |pid: i32| {
        // SAFETY: kill with signal 0 only checks that the process exists.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    };
    std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid: i32 = name
                .strip_prefix(DIR_PREFIX)?
                .split('-')
                .next()?
                .parse()
                .ok()?;
            (pid > 0 && !alive(pid)).then(|| e.path())
        })
        .filter(|dir| std::fs::remove_dir_all(dir).is_ok())
        .collect()
}

/// The first column of the first row.
pub fn first(rows: &[Vec<Option<String>>]) -> Option<String> {
    rows.first()?.first()?.clone()
}

/// Two loopback ports that were free a moment ago, and not the same one:
/// both listeners are held until both ports are known.
fn free_ports() -> Result<[u16; 2], PluginError> {
    let no_port = |e: std::io::Error| PluginError::failed(format!("no free loopback port: {e}"));
    let a = TcpListener::bind("127.0.0.1:0").map_err(no_port)?;
    let b = TcpListener::bind("127.0.0.1:0").map_err(no_port)?;
    Ok([
        a.local_addr().map_err(no_port)?.port(),
        b.local_addr().map_err(no_port)?.port(),
    ])
}

fn fail(path: &Path, e: std::io::Error) -> PluginError {
    PluginError::failed(format!("{}: {e}", path.display()))
}

/// The last lines of a server log, for error messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join(" | ")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_of_dead_hosts_are_removed_and_live_ones_kept() {
        let tmp = std::env::temp_dir();
        // No process has this pid (pid_max is at most 2^22).
        let dead = tmp.join(format!("{DIR_PREFIX}{}-7", i32::MAX));
        let live = tmp.join(format!("{DIR_PREFIX}{}-stale-test", std::process::id()));
        for d in [&dead, &live] {
            std::fs::create_dir_all(d.join("primary")).unwrap();
        }
        let removed = remove_stale_dirs();
        let live_kept = live.exists();
        let _ = std::fs::remove_dir_all(&live);
        assert!(removed.contains(&dead) && !dead.exists(), "{removed:?}");
        assert!(live_kept && !removed.contains(&live));
    }
}
