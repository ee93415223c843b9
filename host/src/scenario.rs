//! The scenario format of `tests/scenarios/*.json`: a diagnosis window with
//! what it must yield, written from a run's journal (`--record-scenarios`)
//! and read back by the diagnosis tests and `demo-bench`.

use crate::journal::Journal;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A diagnosis window with what it must yield: the format of `tests/scenarios/*.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario<'a> {
    pub name: String,
    pub description: String,
    pub expected: &'a plugin_api::ExpectedDiagnosis,
    pub chaos_targets: &'a [String],
    pub min_confidence: f64,
    pub window: &'a crate::diagnosis::ObservationWindow,
}

/// A scenario read back from `tests/scenarios/*.json` or `--record-scenarios`.
#[derive(Debug, Clone, Deserialize)]
pub struct ScenarioFile {
    /// The file it came from (recorded scenarios may share a `name`).
    #[serde(skip)]
    pub path: PathBuf,
    pub name: String,
    pub expected: plugin_api::ExpectedDiagnosis,
    #[serde(default)]
    pub chaos_targets: Vec<String>,
    pub min_confidence: Option<f64>,
    pub max_confidence: Option<f64>,
    pub window: crate::diagnosis::ObservationWindow,
}

/// Largest file read back: a recorded scenario of a long window is a few
/// hundred KiB, so 64 MiB is a wrong file, not a big scenario, and is refused
/// before it is read into memory.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path} is {size} bytes, more than the {limit} bytes a scenario may have; is it the right file?")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path} ends early, at line {line} column {column}: the file is truncated (a run that was killed while writing it?)")]
    Truncated {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    #[error("{path} is not a scenario: {err}")]
    Parse {
        path: PathBuf,
        err: serde_json::Error,
    },
}

impl ScenarioFile {
    /// Every `*.json` scenario in `dir`, in file name order.
    pub fn read_dir(dir: &Path) -> Result<Vec<ScenarioFile>, ScenarioError> {
        let read = |path: &Path, err| ScenarioError::Read {
            path: path.to_path_buf(),
            err,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| read(dir, e))? {
            let path = entry.map_err(|e| read(dir, e))?.path();
            if path.extension().is_some_and(|x| x == "json") {
                paths.push(path);
            }
        }
        paths.sort();
        paths.iter().map(|p| ScenarioFile::read(p)).collect()
    }

    /// One scenario file; a file too large, truncated or not a scenario is an
    /// error that names it and says which.
    pub fn read(path: &Path) -> Result<ScenarioFile, ScenarioError> {
        let text = read_bounded(path, MAX_FILE_BYTES)?;
        let mut scenario: ScenarioFile = serde_json::from_str(&text).map_err(|err| {
            let path = path.to_path_buf();
            match err.classify() {
                serde_json::error::Category::Eof => ScenarioError::Truncated {
                    path,
                    line: err.line(),
                    column: err.column(),
                },
                _ => ScenarioError::Parse { path, err },
            }
        })?;
        scenario.path = path.to_path_buf();
        Ok(scenario)
    }
}

/// Reads a text file of at most `limit` bytes. The limit is checked on what is
/// read, not only on the size the file claims, so a file that grows meanwhile
/// (or a FIFO) cannot make it read more.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<String, ScenarioError> {
    use std::io::Read as _;
    let read = |err| ScenarioError::Read {
        path: path.to_path_buf(),
        err,
    };
    let too_large = |size| ScenarioError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let claimed = file.metadata().map_err(read)?.len();
    if claimed > limit {
        return Err(too_large(claimed));
    }
    let mut bytes = Vec::with_capacity(claimed as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(read)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes)
        .map_err(|e| read(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

impl Journal {
    /// The scenarios of this run: one per diagnosis whose chapter expected something.
    pub fn scenarios(&self) -> Vec<Scenario<'_>> {
        self.diagnoses
            .iter()
            .filter_map(|r| {
                let expected = r.expected.as_ref()?;
                let title = self
                    .chapters
                    .iter()
                    .find(|c| c.index == r.chapter)
                    .map(|c| c.title.as_str())
                    .unwrap_or("");
                Some(Scenario {
                    name: format!("{}-{}", self.subject.id, slug(&expected.anomaly)),
                    description: format!(
                        "Recorded from a headless run of {} {} (chapter {}: {title}).",
                        self.subject.name,
                        self.subject.version,
                        r.chapter + 1
                    ),
                    expected,
                    chaos_targets: &r.chaos_targets,
                    min_confidence: 0.5,
                    window: &r.window,
                })
            })
            .collect()
    }
}

fn slug(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario_text() -> String {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/scenarios/ratelimiter-node-down.json"
        );
        std::fs::read_to_string(path).expect("a checked-in scenario")
    }

    #[test]
    fn a_good_scenario_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("good.json");
        std::fs::write(&path, scenario_text()).unwrap();
        let s = ScenarioFile::read(&path).expect("reads");
        assert_eq!(s.path, path);
        assert!(!s.window.snapshots.is_empty());
    }

    #[test]
    fn a_truncated_scenario_names_the_file_and_says_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.json");
        let text = scenario_text();
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let e = ScenarioFile::read(&path).expect_err("truncated");
        assert!(matches!(e, ScenarioError::Truncated { .. }), "{e:?}");
        let shown = e.to_string();
        assert!(
            shown.contains("cut.json") && shown.contains("truncated"),
            "{shown}"
        );
    }

    #[test]
    fn a_malformed_scenario_names_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text, says) in [
            ("syntax.json", "{\"name\": ?}".to_string(), "expected value"),
            ("shape.json", "{\"name\": 3}".to_string(), "invalid type"),
            (
                "missing.json",
                scenario_text().replace("\"window\"", "\"windoe\""),
                "missing field `window`",
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let e = ScenarioFile::read(&path).expect_err(name);
            assert!(matches!(e, ScenarioError::Parse { .. }), "{e:?}");
            let shown = e.to_string();
            assert!(shown.contains(name) && shown.contains(says), "{shown}");
        }
        let path = dir.path().join("binary.json");
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        let e = ScenarioFile::read(&path).expect_err("not UTF-8");
        assert!(e.to_string().contains("binary.json"), "{e}");
    }

    #[test]
    fn an_oversized_file_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.json");
        // Sparse: 65 MiB claimed, no disk used.
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(MAX_FILE_BYTES + 1024 * 1024).unwrap();
        let e = ScenarioFile::read(&path).expect_err("too large");
        assert!(
            matches!(e, ScenarioError::TooLarge { size, limit, .. } if size > limit && limit == MAX_FILE_BYTES),
            "{e:?}"
        );
        assert!(e.to_string().contains("huge.json"), "{e}");
        // The limit also holds for what is read, whatever the size claimed:
        // /proc files claim 0 bytes.
        let status = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(status).unwrap().len(), 0);
        assert!(matches!(
            read_bounded(status, 10),
            Err(ScenarioError::TooLarge {
                size: 11,
                limit: 10,
                ..
            })
        ));
    }

    #[test]
    fn a_directory_with_one_bad_file_names_that_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), scenario_text()).unwrap();
        std::fs::write(dir.path().join("b.json"), "{").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let e = ScenarioFile::read_dir(dir.path()).expect_err("b is cut");
        assert!(e.to_string().contains("b.json"), "{e}");
    }
}
