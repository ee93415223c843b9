//! The report of one headless run, from its journal: summary and outcome, a
//! timeline per chapter with fault windows shaded and detection / diagnosis /
//! recovery marked, the metrics over time, and the tables behind them.

use super::charts::{self, Lanes, Lines, Mark, MarkKind, Span};
use super::page::{self, ReportError};
use crate::eval::trial::all_ok_after;
use crate::journal::{Journal, Outcome};
use plugin_api::{InvariantStatus, NodeStatus};
use serde::Serialize;
use std::collections::BTreeMap;

mod timeline;
use timeline::{metric_charts, timeline};

#[derive(Debug, Serialize)]
struct Card {
    label: String,
    value: String,
    /// `ok`, `bad` or empty, for the card's colour.
    tone: &'static str,
}

#[derive(Debug, Serialize)]
struct ChapterRow {
    n: usize,
    title: String,
    start: String,
    duration: String,
    action: String,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct FaultRow {
    action: String,
    summary: String,
    targets: String,
    start: String,
    duration: String,
    recovered: String,
}

#[derive(Debug, Serialize)]
struct DetectionRow {
    chapter: usize,
    invariant: String,
    fault_started: String,
    detected: String,
    latency: String,
    ok: bool,
}

#[derive(Debug, Serialize)]
struct DiagnosisRow {
    chapter: usize,
    at: String,
    anomaly: String,
    components: String,
    confidence: String,
    expected: String,
    anomaly_ok: Option<bool>,
    component_ok: Option<bool>,
    detail: String,
    backend: String,
    likely_cause: String,
    alternatives: Vec<String>,
}

#[derive(Debug, Serialize)]
struct IncidentRow {
    id: u32,
    invariant: String,
    components: String,
    first_seen: String,
    last_seen: String,
    occurrences: u32,
    state: String,
    diagnosis: String,
}

#[derive(Debug, Serialize)]
struct VerdictRow {
    name: String,
    status: String,
    violations: u32,
    first_violation: String,
    detail: String,
}

#[derive(Debug, Serialize)]
struct Legend {
    label: &'static str,
    color: String,
    shape: &'static str,
}

#[derive(Debug, Serialize)]
struct RunPage {
    title: String,
    subject: String,
    version: String,
    environment: String,
    diagnoser: String,
    host_version: String,
    started: String,
    ended: String,
    outcome: String,
    passed: bool,
    cards: Vec<Card>,
    failures: Vec<String>,
    timeline: String,
    legend: Vec<Legend>,
    metrics: Vec<String>,
    chapters: Vec<ChapterRow>,
    faults: Vec<FaultRow>,
    detections: Vec<DetectionRow>,
    diagnoses: Vec<DiagnosisRow>,
    incidents: Vec<IncidentRow>,
    invariants: Vec<VerdictRow>,
}

/// The Markdown and the HTML report of one run.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub markdown: String,
    pub html: String,
}

pub fn render(j: &Journal) -> Result<Rendered, ReportError> {
    let page = build(j)?;
    Ok(Rendered {
        markdown: page::render("run.md", &page)?,
        html: page::render("run.html", &page)?,
    })
}

fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::AnomalyNotDetected => "anomaly not detected",
        Outcome::AnomalyNotDiagnosed => "anomaly not diagnosed",
        Outcome::Error => "error",
    }
}

fn build(j: &Journal) -> Result<RunPage, ReportError> {
    let t0 = j.started_ms;
    let end = j.ended_ms.max(t0);
    let at = |ms: u64| format!("+{}", page::duration(ms.saturating_sub(t0) as f64));
    let opt_at = |ms: Option<u64>| ms.map(at).unwrap_or_else(|| "–".into());
    let recovered: Vec<Option<u64>> = j
        .chaos_windows
        .iter()
        .map(|w| w.ended_ms.and_then(|e| all_ok_after(j, e)))
        .collect();

    let detected = j
        .detections
        .iter()
        .filter(|d| d.detected_ms.is_some())
        .count();
    let scored: Vec<_> = j
        .diagnoses
        .iter()
        .filter_map(|d| d.score.as_ref())
        .collect();
    let passed_diag = scored.iter().filter(|s| s.passed()).count();
    let latencies: Vec<f64> = j
        .detections
        .iter()
        .filter_map(|d| d.latency_ms)
        .map(|v| v as f64)
        .collect();
    let tone = |ok: bool| if ok { "ok" } else { "bad" };
    let cards = vec![
        Card {
            label: "outcome".into(),
            value: outcome_label(j.outcome).into(),
            tone: tone(j.outcome == Outcome::Passed),
        },
        Card {
            label: "duration".into(),
            value: page::duration(end.saturating_sub(t0) as f64),
            tone: "",
        },
        Card {
            label: "chapters".into(),
            value: format!("{}", j.chapters.len()),
            tone: "",
        },
        Card {
            label: "faults injected".into(),
            value: format!("{}", j.chaos_windows.len()),
            tone: "",
        },
        Card {
            label: "detected".into(),
            value: format!("{detected} / {}", j.detections.len()),
            tone: tone(detected == j.detections.len()),
        },
        Card {
            label: "time to detect (p50, n)".into(),
            value: match crate::eval::stats::quantile(&latencies, 0.5) {
                Some(p) => format!("{} (n={})", page::duration(p), latencies.len()),
                None => "–".into(),
            },
            tone: "",
        },
        Card {
            label: "diagnoses right".into(),
            value: format!("{passed_diag} / {}", scored.len()),
            tone: tone(passed_diag == scored.len()),
        },
        Card {
            label: "incidents".into(),
            value: format!("{}", j.incidents.len()),
            tone: "",
        },
    ];

    Ok(RunPage {
        title: format!("{} · run report", j.subject.name),
        subject: j.subject.name.clone(),
        version: j.subject.version.clone(),
        environment: j.environment.clone(),
        diagnoser: j.diagnoser.clone(),
        host_version: j.host_version.clone(),
        started: page::date(t0),
        ended: page::date(end),
        outcome: outcome_label(j.outcome).into(),
        passed: j.outcome == Outcome::Passed,
        cards,
        failures: j.failures.clone(),
        timeline: charts::lanes(&timeline(j, &recovered))?,
        legend: legend(),
        metrics: metric_charts(j, &recovered)?,
        chapters: j
            .chapters
            .iter()
            .map(|c| ChapterRow {
                n: c.index + 1,
                title: c.title.clone(),
                start: at(c.started_ms),
                duration: page::duration(
                    c.ended_ms.unwrap_or(end).saturating_sub(c.started_ms) as f64
                ),
                action: c.action.clone().unwrap_or_default(),
                error: c.action_error.clone(),
            })
            .collect(),
        faults: j
            .chaos_windows
            .iter()
            .zip(&recovered)
            .map(|(w, rec)| FaultRow {
                action: w.action_id.clone(),
                summary: w.summary.clone(),
                targets: w.targets.join(", "),
                start: at(w.started_ms),
                duration: w
                    .ended_ms
                    .map(|e| page::duration(e.saturating_sub(w.started_ms) as f64))
                    .unwrap_or_else(|| "still in effect".into()),
                recovered: opt_at(*rec),
            })
            .collect(),
        detections: j
            .detections
            .iter()
            .map(|d| DetectionRow {
                chapter: d.chapter + 1,
                invariant: d.invariant.clone(),
                fault_started: opt_at(d.fault_started_ms),
                detected: opt_at(d.detected_ms),
                latency: page::opt_duration(d.latency_ms.map(|v| v as f64)),
                ok: d.detected_ms.is_some(),
            })
            .collect(),
        diagnoses: j
            .diagnoses
            .iter()
            .map(|r| DiagnosisRow {
                chapter: r.chapter + 1,
                at: if r.finished_ms > 0 {
                    at(r.finished_ms)
                } else {
                    "–".into()
                },
                anomaly: r.diagnosis.anomaly.clone(),
                components: r.diagnosis.affected_components.join(", "),
                confidence: format!("{:.0} %", r.diagnosis.confidence * 100.0),
                expected: r
                    .expected
                    .as_ref()
                    .map(|e| e.anomaly.clone())
                    .unwrap_or_default(),
                anomaly_ok: r.score.as_ref().map(|s| s.anomaly_ok),
                component_ok: r.score.as_ref().map(|s| s.component_ok),
                detail: r
                    .score
                    .as_ref()
                    .map(|s| s.detail.clone())
                    .unwrap_or_default(),
                backend: r.diagnosis.backend.clone(),
                likely_cause: r.diagnosis.likely_cause.clone(),
                alternatives: r
                    .diagnosis
                    .alternatives
                    .iter()
                    .map(|a| format!("{}: {}", a.hypothesis, a.conclusion))
                    .collect(),
            })
            .collect(),
        incidents: j
            .incidents
            .iter()
            .map(|i| IncidentRow {
                id: i.id,
                invariant: i.invariant.clone(),
                components: i.components.join(", "),
                first_seen: at(i.first_seen_ms),
                last_seen: at(i.last_seen_ms),
                occurrences: i.occurrences,
                state: format!("{:?}", i.state).to_lowercase(),
                diagnosis: i.diagnosis.clone().unwrap_or_default(),
            })
            .collect(),
        invariants: j
            .invariants
            .iter()
            .map(|(name, v)| VerdictRow {
                name: name.clone(),
                status: format!("{:?}", v.status).to_lowercase(),
                violations: v.violations,
                first_violation: opt_at(v.first_violation_ms),
                detail: v.detail.clone(),
            })
            .collect(),
    })
}

fn legend() -> Vec<Legend> {
    let l = |label, c, shape| Legend {
        label,
        color: charts::css(c),
        shape,
    };
    vec![
        l("fault in effect", charts::RGBColor(220, 38, 38), "shade"),
        l("chapter", charts::CHAPTER, "bar"),
        l("ok / up", charts::OK, "bar"),
        l("degraded", charts::WARN, "bar"),
        l("violated / down", charts::BAD, "bar"),
        l("unknown", charts::UNKNOWN, "bar"),
        l("detected", charts::DETECTED, "line"),
        l("diagnosed", charts::DIAGNOSED, "line"),
        l("recovered (all invariants ok)", charts::RECOVERED, "line"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run that injected a fault and never saw it: the smallest journal with a miss.
    fn missed_run() -> Journal {
        let point = |at: u64, agree: &str| {
            serde_json::json!({"at_ms": at, "nodes": {"n1": "up"}, "metrics": {"lag": at as f64 / 100.0},
                               "invariants": {"agree": agree}})
        };
        serde_json::from_value(serde_json::json!({
            "host_version": "0.1.0",
            "subject": {"id": "s", "name": "Subject <b>", "version": "1", "description": "",
                        "api_version": "", "environments": ["local"]},
            "environment": "local", "diagnoser": "builtin",
            "started_ms": 1000, "ended_ms": 9000,
            "chapters": [
                {"index": 0, "title": "Inject <script>x</script>", "started_ms": 1000, "ended_ms": 2000,
                 "action": "chaos partition", "action_error": null, "detected_ms": null},
                {"index": 1, "title": "Detect", "started_ms": 2000, "ended_ms": 9000,
                 "action": null, "action_error": null, "detected_ms": null}
            ],
            "chaos_windows": [{"fault_id": "f1", "action_id": "partition", "targets": ["n1"],
                               "summary": "partition <script>n1</script>", "started_ms": 1500, "ended_ms": 4000}],
            "health_timeline": [point(1000, "ok"), point(3000, "ok"), point(5000, "ok")],
            "invariants": {"agree": {"status": "ok", "detail": "fine", "since_ms": 1000,
                                     "first_violation_ms": null, "violations": 0}},
            "detections": [{"chapter": 1, "invariant": "agree", "fault_started_ms": 1500,
                            "detected_ms": null, "latency_ms": null}],
            "diagnoses": [], "incidents": [],
            "failures": ["chapter 2 (Detect): `agree` was never seen violated"],
            "outcome": "anomaly_not_detected"
        }))
        .expect("a journal as headless runs write it")
    }

    #[test]
    fn a_missed_detection_is_shown_as_one() {
        let r = render(&missed_run()).unwrap();
        assert!(r.markdown.contains("**Outcome: anomaly not detected**"));
        assert!(
            r.markdown.contains("| 2 | agree | +500 ms | never | – |"),
            "{}",
            r.markdown
        );
        assert!(r.markdown.contains("was never seen violated"));
        assert!(r.html.contains("class=\"badge bad\""));
        // Recovery: the first poll with every invariant ok after the fault ended.
        assert!(r.markdown.contains("| +4.00 s |"), "all ok again at +4 s");
        // One timeline, one metric chart.
        assert_eq!(r.html.matches("<svg class=\"chart\"").count(), 2);
    }

    #[test]
    fn what_a_plugin_wrote_is_escaped_in_the_html() {
        let r = render(&missed_run()).unwrap();
        assert!(
            !r.html.contains("<script>"),
            "a fault summary must not run as script"
        );
        assert!(r.html.contains("&lt;script&gt;"));
        assert!(!r.html.contains("Subject <b>"));
    }
}
