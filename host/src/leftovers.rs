//! A record of faults in effect, kept on disk until they are recovered, so that
//! a host killed mid-chaos (SIGKILL, power loss) leaves enough behind for the
//! next start to undo them.

use plugin_api::ActiveFault;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leftover {
    pub subject: String,
    pub config: String,
    pub fault: ActiveFault,
    pub host_pid: u32,
}

/// The record file, shared by the tasks of one host.
#[derive(Debug)]
pub struct Leftovers {
    path: PathBuf,
    lock: Mutex<()>,
}

impl Leftovers {
    pub fn new(path: PathBuf) -> Self {
        Leftovers {
            path,
            lock: Mutex::new(()),
        }
    }

    /// `$DEMO_HOST_STATE_DIR`, else `$XDG_STATE_HOME/demo-host`, else `~/.local/state/demo-host`.
    pub fn default_path() -> PathBuf {
        let dir = std::env::var_os("DEMO_HOST_STATE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("demo-host"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/demo-host"))
            })
            .unwrap_or_else(|| std::env::temp_dir().join("demo-host-state"));
        dir.join("leftover-faults.json")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn all(&self) -> Vec<Leftover> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.read()
    }

    /// Faults recorded for `subject` by a host process that is no longer
    /// running, faults before remedies' changes: putting a change back (failing
    /// back to a store) needs what the fault held to answer again.
    pub fn orphaned(&self, subject: &str) -> Vec<Leftover> {
        let mut found: Vec<Leftover> = self
            .all()
            .into_iter()
            .filter(|l| l.subject == subject && !process_alive(l.host_pid))
            .collect();
        found.sort_by_key(|l| is_remedy_record(&l.fault.action_id));
        found
    }

    pub fn record(&self, subject: &str, config: &str, fault: &ActiveFault) -> std::io::Result<()> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = self.read();
        all.push(Leftover {
            subject: subject.to_string(),
            config: config.to_string(),
            fault: fault.clone(),
            host_pid: std::process::id(),
        });
        self.write(&all)
    }

    pub fn remove(&self, fault_id: &str) -> std::io::Result<()> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = self.read();
        let before = all.len();
        all.retain(|l| l.fault.fault_id != fault_id);
        if all.len() == before {
            return Ok(());
        }
        self.write(&all)
    }

    fn read(&self) -> Vec<Leftover> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write(&self, all: &[Leftover]) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(all).unwrap_or_default())?;
        std::fs::rename(tmp, &self.path)
    }
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Records of remedies' lasting changes carry this prefix in their action ids.
pub const REMEDY_RECORD: &str = "remedy:";

/// Whether a record is a remedy's change (put back with `recover_leftover`)
/// rather than a fault.
pub fn is_remedy_record(action_id: &str) -> bool {
    action_id.starts_with(REMEDY_RECORD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(id: &str) -> ActiveFault {
        ActiveFault {
            fault_id: id.into(),
            action_id: "a".into(),
            targets: vec![],
            summary: String::new(),
            started_ms: 0,
            expires_ms: None,
            undo: "u".into(),
        }
    }

    #[test]
    fn records_survive_a_new_reader_and_are_removed_on_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/leftovers.json");
        let l = Leftovers::new(path.clone());
        l.record("s", "", &fault("f1")).unwrap();
        l.record("s", "", &fault("f2")).unwrap();
        let again = Leftovers::new(path);
        assert_eq!(again.all().len(), 2);
        // Recorded by this (living) process: not orphaned.
        assert!(again.orphaned("s").is_empty());
        again.remove("f1").unwrap();
        assert_eq!(
            l.all()
                .iter()
                .map(|x| x.fault.fault_id.as_str())
                .collect::<Vec<_>>(),
            vec!["f2"]
        );
    }
}
