//! The JSON journal of a run: chapters, chaos windows, the health timeline,
//! invariant verdicts, detections, diagnoses, incidents and the outcome.

use crate::engine::chaos::ChaosWindow;
use crate::engine::incidents::Incident;
use crate::engine::remedy::{RemedyRun, Stage};
use crate::engine::state::{ChapterRecord, Demo, DiagnosisRun, InvariantVerdict};
use plugin_api::{HealthSnapshot, InvariantStatus, NodeStatus, SubjectInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

// Where `bench` reads the scenario files from (the format has its own module now).
pub use crate::scenario::ScenarioFile;
use crate::scenario::{read_bounded, ScenarioError, MAX_FILE_BYTES};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    AnomalyNotDetected,
    AnomalyNotDiagnosed,
    Error,
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Passed => 0,
            Outcome::AnomalyNotDetected => 2,
            Outcome::AnomalyNotDiagnosed => 3,
            Outcome::Error => 1,
        }
    }
}

/// One health poll, reduced to what a timeline needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthPoint {
    pub at_ms: u64,
    pub nodes: BTreeMap<String, NodeStatus>,
    pub metrics: BTreeMap<String, f64>,
    pub invariants: BTreeMap<String, InvariantStatus>,
}

impl From<&HealthSnapshot> for HealthPoint {
    fn from(s: &HealthSnapshot) -> Self {
        HealthPoint {
            at_ms: s.at_ms,
            nodes: s.nodes.iter().map(|n| (n.id.clone(), n.status)).collect(),
            metrics: s
                .metrics
                .iter()
                .map(|m| (m.name.clone(), m.value))
                .collect(),
            invariants: s
                .invariants
                .iter()
                .map(|i| (i.name.clone(), i.status))
                .collect(),
        }
    }
}

/// One node's status at each point of a timeline (`None`: not reported).
pub type NodeSeries = Vec<(u64, Option<NodeStatus>)>;

/// Records the health timeline of a run: each point keeps its poll's
/// invariants and metrics, but only the nodes whose status changed since the
/// previous point (every node in the first; a node gone from the snapshot is
/// recorded as unknown), so a large cluster's journal grows with what
/// changes, not with its size.
#[derive(Debug, Default)]
pub struct TimelineRecorder {
    last: BTreeMap<String, NodeStatus>,
    points: Vec<HealthPoint>,
}

impl TimelineRecorder {
    pub fn push(&mut self, s: &HealthSnapshot) {
        let mut point = HealthPoint::from(s);
        let current = std::mem::take(&mut point.nodes);
        for (id, status) in &current {
            if self.last.get(id) != Some(status) {
                point.nodes.insert(id.clone(), *status);
            }
        }
        for id in self.last.keys().filter(|id| !current.contains_key(*id)) {
            point.nodes.insert(id.clone(), NodeStatus::Unknown);
        }
        self.last = current;
        self.points.push(point);
    }

    pub fn into_points(self) -> Vec<HealthPoint> {
        self.points
    }
}

/// The time from a fault taking effect to the host seeing the expected violation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub chapter: usize,
    pub invariant: String,
    pub fault_started_ms: Option<u64>,
    pub detected_ms: Option<u64>,
    pub latency_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub host_version: String,
    pub subject: SubjectInfo,
    pub environment: String,
    pub diagnoser: String,
    pub started_ms: u64,
    pub ended_ms: u64,
    pub chapters: Vec<ChapterRecord>,
    pub chaos_windows: Vec<ChaosWindow>,
    pub health_timeline: Vec<HealthPoint>,
    /// The timeline's points name only the nodes whose status changed (see
    /// [`TimelineRecorder`]); false in journals of hosts before 0.2, whose
    /// points name every node.
    #[serde(default)]
    pub node_changes_only: bool,
    pub invariants: BTreeMap<String, InvariantVerdict>,
    pub detections: Vec<Detection>,
    /// Each diagnosis with the window it was given, so it can be replayed offline.
    pub diagnoses: Vec<DiagnosisRun>,
    pub incidents: Vec<Incident>,
    /// Every proposed remedy: approval or rejection, the run, its verification
    /// and its times to resolve.
    #[serde(default)]
    pub remedies: Vec<RemedyRun>,
    pub failures: Vec<String>,
    pub outcome: Outcome,
}

impl Journal {
    /// Each node's status at every point of the timeline (`None` before it
    /// appeared), in the order the nodes first appear; for either format.
    pub fn node_series(&self) -> Vec<(String, NodeSeries)> {
        let mut order: Vec<String> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut now: Vec<Option<NodeStatus>> = Vec::new();
        let mut series: Vec<Vec<(u64, Option<NodeStatus>)>> = Vec::new();
        for p in &self.health_timeline {
            if !self.node_changes_only {
                now.iter_mut().for_each(|s| *s = None);
            }
            for (id, status) in &p.nodes {
                let i = *index.entry(id.clone()).or_insert_with(|| {
                    order.push(id.clone());
                    now.push(None);
                    series.push(Vec::new());
                    order.len() - 1
                });
                now[i] = Some(*status);
            }
            for (i, s) in now.iter().enumerate() {
                series[i].push((p.at_ms, *s));
            }
        }
        // Points before a node appeared say nothing of it.
        let total = self.health_timeline.len();
        order
            .into_iter()
            .zip(series)
            .map(|(id, mut s)| {
                let missing = total - s.len();
                let lead = self.health_timeline[..missing]
                    .iter()
                    .map(|p| (p.at_ms, None));
                let mut full: Vec<_> = lead.collect();
                full.append(&mut s);
                (id, full)
            })
            .collect()
    }

    /// Builds the journal from the final state; `failures` are the runtime's own
    /// (setup errors, chapter timeouts) and force an `error` outcome.
    pub fn from_demo(
        demo: &Demo,
        diagnoser: String,
        started_ms: u64,
        health_timeline: Vec<HealthPoint>,
        mut failures: Vec<String>,
    ) -> Journal {
        let chapters = &demo.subject.chapters;
        let mut detections = Vec::new();
        let mut outcome = Outcome::Passed;
        let mut worst = |o: Outcome| {
            let rank = |o: Outcome| match o {
                Outcome::Passed => 0,
                Outcome::AnomalyNotDiagnosed => 1,
                Outcome::AnomalyNotDetected => 2,
                Outcome::Error => 3,
            };
            if rank(o) > rank(outcome) {
                outcome = o;
            }
        };
        if !failures.is_empty() {
            worst(Outcome::Error);
        }
        for (i, chapter) in chapters.iter().enumerate() {
            let record = demo.chapters.iter().rev().find(|r| r.index == i);
            if let Some(err) = record.and_then(|r| r.action_error.as_ref()) {
                failures.push(format!("chapter {} ({}): {err}", i + 1, chapter.title));
                worst(if err.starts_with("diagnosis failed") {
                    Outcome::AnomalyNotDiagnosed
                } else {
                    Outcome::Error
                });
            }
            if let Some(inv) = &chapter.expect_violation {
                let detected = record.and_then(|r| r.detected_ms);
                let fault_started = record.and_then(|r| {
                    demo.chaos
                        .windows
                        .iter()
                        .filter(|w| w.started_ms <= r.ended_ms.unwrap_or(u64::MAX))
                        .map(|w| w.started_ms)
                        .max()
                });
                if detected.is_none() {
                    failures.push(format!(
                        "chapter {} ({}): `{inv}` was never seen violated",
                        i + 1,
                        chapter.title
                    ));
                    worst(Outcome::AnomalyNotDetected);
                }
                detections.push(Detection {
                    chapter: i,
                    invariant: inv.clone(),
                    fault_started_ms: fault_started,
                    detected_ms: detected,
                    latency_ms: detected
                        .zip(fault_started)
                        .map(|(d, f)| d.saturating_sub(f)),
                });
            }
            if let Some(expected) = &chapter.expect_diagnosis {
                let hit = demo
                    .diagnoses
                    .iter()
                    .any(|r| r.chapter == i && r.score.as_ref().is_some_and(|s| s.passed()));
                if !hit {
                    let got = demo.diagnoses.iter().rev().find(|r| r.chapter == i);
                    failures.push(match got.and_then(|r| r.score.as_ref()) {
                        Some(s) => format!(
                            "chapter {} ({}): diagnosis missed: {}",
                            i + 1,
                            chapter.title,
                            s.detail
                        ),
                        _ => format!(
                            "chapter {} ({}): no diagnosis named `{}`",
                            i + 1,
                            chapter.title,
                            expected.anomaly
                        ),
                    });
                    worst(Outcome::AnomalyNotDiagnosed);
                }
            }
        }
        // A fix that ran and did not resolve its anomaly fails the run.
        for run in &demo.remediation.runs {
            if let Stage::Failed { reason } = &run.stage {
                failures.push(format!(
                    "chapter {}: remedy {} failed: {reason}",
                    run.chapter + 1,
                    run.remedy_id
                ));
                worst(Outcome::Error);
            }
        }
        if !demo.finished {
            failures.push(format!(
                "the run stopped in chapter {} of {}",
                demo.chapter + 1,
                demo.chapter_count()
            ));
            worst(Outcome::Error);
        }
        failures.dedup();
        Journal {
            host_version: env!("CARGO_PKG_VERSION").to_string(),
            subject: demo.subject.info.clone(),
            environment: demo.environment.clone(),
            diagnoser,
            started_ms,
            ended_ms: demo.now_ms,
            chapters: demo.chapters.clone(),
            chaos_windows: demo.chaos.windows.clone(),
            health_timeline,
            node_changes_only: true,
            invariants: demo.verdicts.clone(),
            detections,
            remedies: demo.remediation.runs.clone(),
            diagnoses: demo.diagnoses.clone(),
            incidents: demo.incidents.list.clone(),
            failures,
            outcome,
        }
    }
}

/// Why a journal file could not be read back (by `demo-host report` and `eval`).
#[derive(Debug, thiserror::Error)]
pub enum JournalReadError {
    #[error("cannot read {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path} is {size} bytes, more than the {limit} bytes a journal may have; is it the right file?")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path} is not a demo-host journal: {err}")]
    Parse {
        path: PathBuf,
        err: serde_json::Error,
    },
}

impl Journal {
    /// Reads a journal written by a headless run, bounded like a scenario file.
    pub fn read(path: &Path) -> Result<Journal, JournalReadError> {
        let text = read_bounded(path, MAX_FILE_BYTES).map_err(|e| match e {
            ScenarioError::TooLarge { path, size, limit } => {
                JournalReadError::TooLarge { path, size, limit }
            }
            ScenarioError::Read { path, err } => JournalReadError::Read { path, err },
            other => JournalReadError::Read {
                path: path.to_path_buf(),
                err: std::io::Error::other(other.to_string()),
            },
        })?;
        serde_json::from_str(&text).map_err(|err| JournalReadError::Parse {
            path: path.to_path_buf(),
            err,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(at: u64, statuses: &[(&str, NodeStatus)]) -> HealthSnapshot {
        HealthSnapshot {
            at_ms: at,
            nodes: statuses
                .iter()
                .map(|(id, s)| plugin_api::NodeHealth::new(*id, "m", "", *s))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_timeline_keeps_node_changes_only_and_reads_back_as_every_status() {
        use NodeStatus::*;
        let polls = [
            poll(1, &[("a", Up), ("b", Up)]),
            poll(2, &[("a", Up), ("b", Up)]),
            poll(3, &[("a", Down), ("b", Up), ("c", Up)]),
            poll(4, &[("a", Up), ("c", Up)]),
        ];
        let mut rec = TimelineRecorder::default();
        polls.iter().for_each(|p| rec.push(p));
        let points = rec.into_points();
        let named: Vec<usize> = points.iter().map(|p| p.nodes.len()).collect();
        assert_eq!(
            named,
            [2, 0, 2, 2],
            "first all, then what changed (b gone: unknown)"
        );
        let series = |changes_only: bool, points: Vec<HealthPoint>| {
            let mut j: Journal = serde_json::from_value(serde_json::json!({
                "host_version": "0", "subject": {"id": "s", "name": "s", "version": "0",
                    "description": "", "api_version": "0.2.0", "environments": []},
                "environment": "e", "diagnoser": "builtin", "started_ms": 0, "ended_ms": 5,
                "chapters": [], "chaos_windows": [], "health_timeline": [], "invariants": {},
                "detections": [], "diagnoses": [], "incidents": [], "failures": [],
                "outcome": "passed"
            }))
            .expect("a journal");
            j.health_timeline = points;
            j.node_changes_only = changes_only;
            j.node_series()
        };
        let full: Vec<HealthPoint> = polls.iter().map(HealthPoint::from).collect();
        let from_changes = series(true, points);
        let mut expected = series(false, full);
        // The full format has no point for a node that left; the recorder says unknown.
        expected[1].1[3].1 = Some(Unknown);
        assert_eq!(from_changes, expected);
        assert_eq!(
            from_changes[2],
            (
                "c".to_string(),
                vec![(1, None), (2, None), (3, Some(Up)), (4, Some(Up))]
            )
        );
    }
}
