//! The report of a campaign: `report.json` (the [`CampaignReport`] itself),
//! `report.md` and a self-contained `report.html`.

use super::charts::{self, Dot, Lanes, Mark, MarkKind, ReliabilityPoint, Span};
use super::page::{self, ReportError};
use crate::eval::campaign::{CampaignReport, Figures, Latency};
use crate::eval::plan::BASELINE;
use crate::eval::stats::{Proportion, QuantileCi};
use crate::eval::trial::TrialResult;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The per-trial timeline shows at most this many trials (the tables show all).
const MAX_TIMELINE_TRIALS: usize = 120;

/// `8/10 · 80.0 % [49.0–94.3 %]`: the count, the share and its Wilson interval.
pub fn proportion(p: &Proportion) -> String {
    Shown::proportion(p).line()
}

/// `1.20 s [1.05 s–1.40 s]`: a quantile and its bootstrap interval.
pub fn quantile(q: &QuantileCi) -> String {
    Shown::quantile(q).line()
}

/// A figure for the page: the value with its n, and its interval apart (the
/// HTML sets the interval smaller; the Markdown prints both in one cell).
#[derive(Debug, Clone, Serialize)]
struct Shown {
    text: String,
    ci: String,
}

impl Shown {
    fn line(&self) -> String {
        format!("{} {}", self.text, self.ci).trim_end().to_string()
    }

    fn proportion(p: &Proportion) -> Shown {
        match (p.p, p.lo, p.hi) {
            (Some(v), Some(lo), Some(hi)) => Shown {
                text: format!("{}/{} · {:.1} %", p.k, p.n, v * 100.0),
                ci: format!("[{:.1}–{:.1} %]", lo * 100.0, hi * 100.0),
            },
            _ => Shown {
                text: format!("{}/{}", p.k, p.n),
                ci: String::new(),
            },
        }
    }

    /// A token count's quantile and its interval (`not reported` without any).
    fn tokens(q: &QuantileCi) -> Shown {
        match (q.value, q.lo, q.hi) {
            (Some(v), Some(lo), Some(hi)) => Shown {
                text: format!("{v:.0}"),
                ci: format!("[{lo:.0}–{hi:.0}]"),
            },
            (Some(v), _, _) => Shown {
                text: format!("{v:.0}"),
                ci: String::new(),
            },
            _ => Shown {
                text: "not reported".into(),
                ci: String::new(),
            },
        }
    }

    fn quantile(q: &QuantileCi) -> Shown {
        match (q.value, q.lo, q.hi) {
            (Some(v), Some(lo), Some(hi)) => Shown {
                text: page::duration(v),
                ci: format!("[{}–{}]", page::duration(lo), page::duration(hi)),
            },
            (Some(v), _, _) => Shown {
                text: page::duration(v),
                ci: String::new(),
            },
            _ => Shown {
                text: "–".into(),
                ci: String::new(),
            },
        }
    }
}

/// A model backend's figures, for the page.
#[derive(Debug, Serialize)]
struct ModelRow {
    calls: usize,
    schema_failures: Shown,
    other_failures: Shown,
    latency_n: usize,
    latency_p50: Shown,
    latency_p95: Shown,
    input_n: usize,
    input_p50: Shown,
    output_n: usize,
    output_p50: Shown,
}

impl ModelRow {
    fn of(m: &crate::eval::campaign::ModelFigures) -> ModelRow {
        ModelRow {
            calls: m.calls,
            schema_failures: Shown::proportion(&m.schema_failures),
            other_failures: Shown::proportion(&m.other_failures),
            latency_n: m.latency_ms.n,
            latency_p50: Shown::quantile(&m.latency_ms.p50),
            latency_p95: Shown::quantile(&m.latency_ms.p95),
            input_n: m.input_tokens.n,
            input_p50: Shown::tokens(&m.input_tokens.p50),
            output_n: m.output_tokens.n,
            output_p50: Shown::tokens(&m.output_tokens.p50),
        }
    }
}

#[derive(Debug, Serialize)]
struct Row {
    fault: String,
    /// A matrix group's cell (empty outside `groups` and `cells`).
    subject: String,
    diagnoser: String,
    policy: String,
    trials: usize,
    detection: Shown,
    ttd_n: usize,
    ttd_p50: Shown,
    ttd_p95: Shown,
    anomaly: Shown,
    component: Shown,
    accuracy: Shown,
    top_k: Vec<Shown>,
    brier: String,
    calibration_n: usize,
    ttdiag_p50: Shown,
    ttdiag_n: usize,
    recover_p50: Shown,
    recover_n: usize,
    remediation: Shown,
    resolve_p50: Shown,
    resolve_n: usize,
    model: Option<ModelRow>,
}

impl Row {
    fn of(f: &Figures) -> Row {
        let cell = f.cell.clone().unwrap_or_default();
        Row {
            fault: f.fault.clone(),
            subject: cell.subject,
            diagnoser: cell.diagnoser,
            policy: cell.policy,
            trials: f.trials,
            detection: Shown::proportion(&f.detection),
            ttd_n: f.time_to_detect_ms.n,
            ttd_p50: Shown::quantile(&f.time_to_detect_ms.p50),
            ttd_p95: Shown::quantile(&f.time_to_detect_ms.p95),
            anomaly: Shown::proportion(&f.anomaly_accuracy),
            component: Shown::proportion(&f.component_accuracy),
            accuracy: Shown::proportion(&f.accuracy),
            top_k: f.top_k.iter().map(Shown::proportion).collect(),
            brier: f
                .calibration
                .brier
                .map(|b| format!("{b:.3}"))
                .unwrap_or_else(|| "–".into()),
            calibration_n: f.calibration.n,
            ttdiag_p50: Shown::quantile(&f.time_to_diagnose_ms.p50),
            ttdiag_n: f.time_to_diagnose_ms.n,
            recover_p50: Shown::quantile(&f.time_to_recover_ms.p50),
            recover_n: f.time_to_recover_ms.n,
            remediation: f
                .remediation
                .as_ref()
                .map(Shown::proportion)
                .unwrap_or_else(|| Shown {
                    text: "not attempted".into(),
                    ci: String::new(),
                }),
            resolve_p50: f
                .time_to_resolve_ms
                .as_ref()
                .map(|l| Shown::quantile(&l.p50))
                .unwrap_or_else(|| Shown {
                    text: "–".into(),
                    ci: String::new(),
                }),
            resolve_n: f.time_to_resolve_ms.as_ref().map_or(0, |l| l.n),
            model: f.model.as_ref().map(ModelRow::of),
        }
    }
}

#[derive(Debug, Serialize)]
struct BinRow {
    range: String,
    n: usize,
    mean_confidence: String,
    accuracy: Shown,
}

#[derive(Debug, Clone, Serialize)]
struct TrialRow {
    fault: String,
    /// `subject · diagnoser · policy`, in a matrix.
    cell: String,
    /// The subject did not settle after this trial and was rebuilt: what was wrong.
    unsettled: Option<String>,
    trial: usize,
    detected: bool,
    ttd: String,
    anomaly: String,
    anomaly_correct: bool,
    component_correct: bool,
    confidence: String,
    rank: String,
    ttdiag: String,
    recover: String,
    journal: Option<String>,
    failures: Vec<String>,
    miss: bool,
}

impl TrialRow {
    fn of(t: &TrialResult) -> TrialRow {
        let d = |v: Option<u64>| page::opt_duration(v.map(|v| v as f64));
        TrialRow {
            fault: t.fault.clone(),
            cell: [&t.cell.subject, &t.cell.diagnoser, &t.cell.policy]
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" · "),
            unsettled: t.unsettled.clone(),
            trial: t.trial + 1,
            detected: t.detected,
            ttd: d(t.time_to_detect_ms),
            anomaly: t.anomaly.clone().unwrap_or_else(|| "(none)".into()),
            anomaly_correct: t.anomaly_correct,
            component_correct: t.component_correct,
            confidence: t
                .confidence
                .map(|c| format!("{:.0} %", c * 100.0))
                .unwrap_or_else(|| "–".into()),
            rank: t
                .correct_rank
                .map(|r| r.to_string())
                .unwrap_or_else(|| "–".into()),
            ttdiag: d(t.time_to_diagnose_ms),
            recover: d(t.time_to_recover_ms),
            journal: t.journal.clone(),
            failures: t.failures.clone(),
            miss: match t.fault == BASELINE {
                true => t.false_alarm,
                false => !t.detected || !t.correct(),
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct CampaignPage {
    title: String,
    subject: String,
    environment: String,
    diagnoser: String,
    remediate: String,
    seed: u64,
    host_version: String,
    started: String,
    ended: String,
    complete: bool,
    notes: Vec<String>,
    ran: usize,
    planned: usize,
    overall: Row,
    faults: Vec<Row>,
    /// A matrix: per cell and fault, and per cell over its faults.
    groups: Vec<Row>,
    cells: Vec<Row>,
    /// False alarms per subject of a matrix: (subject, trials, share).
    baselines: Vec<(String, usize, Shown)>,
    rebuilds: usize,
    /// Some fault's trials asked a model backend.
    has_model: bool,
    bins: Vec<BinRow>,
    /// `None` without baseline trials.
    false_alarms: Option<Shown>,
    baseline_trials: usize,
    no_false_alarm: bool,
    brier: String,
    calibration_n: usize,
    misses: Vec<TrialRow>,
    trials: Vec<TrialRow>,
    charts: Charts,
}

#[derive(Debug, Serialize)]
struct Charts {
    detect: String,
    diagnose: String,
    accuracy: String,
    reliability: String,
    trials: String,
    trials_shown: usize,
}

/// Where a campaign report was written.
#[derive(Debug, Clone)]
pub struct Written {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub html: PathBuf,
}

/// Writes `report.json`, `report.md` and `report.html` into `dir`.
pub fn write(report: &CampaignReport, dir: &Path) -> Result<Written, ReportError> {
    let written = Written {
        json: dir.join("report.json"),
        markdown: dir.join("report.md"),
        html: dir.join("report.html"),
    };
    let json = serde_json::to_string_pretty(report).expect("the report is plain data");
    page::write(&written.json, &json)?;
    let (markdown, html) = render(report)?;
    page::write(&written.markdown, &markdown)?;
    page::write(&written.html, &html)?;
    Ok(written)
}

/// The Markdown and the HTML of a campaign report.
pub fn render(report: &CampaignReport) -> Result<(String, String), ReportError> {
    let page = build(report)?;
    Ok((
        page::render("campaign.md", &page)?,
        page::render("campaign.html", &page)?,
    ))
}

fn build(r: &CampaignReport) -> Result<CampaignPage, ReportError> {
    let c = &r.campaign;
    let cal = &r.overall.calibration;
    let trials: Vec<TrialRow> = r.trials.iter().map(TrialRow::of).collect();
    Ok(CampaignPage {
        title: format!("{} · eval campaign", c.subject),
        subject: c.subject.clone(),
        environment: c.environment.clone(),
        diagnoser: c.diagnoser.clone(),
        remediate: if c.remediate.is_empty() {
            "never".into()
        } else {
            c.remediate.clone()
        },
        seed: c.seed,
        host_version: c.host_version.clone(),
        started: page::date(c.started_ms),
        ended: page::date(c.ended_ms),
        complete: c.complete,
        notes: c.notes.clone(),
        ran: r.trials.len(),
        planned: c.planned_trials,
        overall: Row::of(&r.overall),
        faults: r.faults.iter().map(Row::of).collect(),
        groups: r.groups.iter().map(Row::of).collect(),
        cells: r.cells.iter().map(Row::of).collect(),
        baselines: r
            .baselines
            .iter()
            .map(|b| {
                (
                    b.subject.clone().unwrap_or_default(),
                    b.trials,
                    Shown::proportion(&b.false_alarms),
                )
            })
            .collect(),
        rebuilds: c.rebuilds,
        has_model: r.overall.model.is_some(),
        false_alarms: r
            .baseline
            .as_ref()
            .map(|b| Shown::proportion(&b.false_alarms)),
        baseline_trials: r.baseline.as_ref().map(|b| b.trials).unwrap_or(0),
        no_false_alarm: r.baseline.as_ref().is_none_or(|b| b.false_alarms.k == 0),
        bins: cal
            .bins
            .iter()
            .map(|b| BinRow {
                range: format!("{:.1}–{:.1}", b.lo, b.hi),
                n: b.n,
                mean_confidence: b
                    .mean_confidence
                    .map(|m| format!("{m:.2}"))
                    .unwrap_or_else(|| "–".into()),
                accuracy: Shown::proportion(&b.accuracy),
            })
            .collect(),
        brier: cal
            .brier
            .map(|b| format!("{b:.3}"))
            .unwrap_or_else(|| "–".into()),
        calibration_n: cal.n,
        misses: trials.iter().filter(|t| t.miss).cloned().collect(),
        trials,
        charts: Charts {
            detect: charts::lanes(&latency_chart(
                "Time to detect, per fault",
                r,
                |f| &f.time_to_detect_ms,
                |t| t.time_to_detect_ms,
            ))?,
            diagnose: charts::lanes(&latency_chart(
                "Time to diagnose, per fault",
                r,
                |f| &f.time_to_diagnose_ms,
                |t| t.time_to_diagnose_ms,
            ))?,
            accuracy: charts::lanes(&accuracy_chart(r))?,
            reliability: charts::reliability(
                &format!("Reliability of the stated confidence (n={})", cal.n),
                &cal.bins
                    .iter()
                    .filter_map(|b| {
                        Some(ReliabilityPoint {
                            confidence: b.mean_confidence?,
                            accuracy: b.accuracy.p?,
                            lo: b.accuracy.lo?,
                            hi: b.accuracy.hi?,
                            n: b.n,
                        })
                    })
                    .collect::<Vec<_>>(),
            )?,
            trials: charts::lanes(&trial_chart(r))?,
            trials_shown: r.trials.len().min(MAX_TIMELINE_TRIALS),
        },
    })
}

/// One lane per fault: every trial's latency as a dot, the p50 with its
/// bootstrap interval as a bar, the p95 as a red dot.
fn latency_chart(
    title: &str,
    r: &CampaignReport,
    figure: fn(&Figures) -> &Latency,
    value: fn(&TrialResult) -> Option<u64>,
) -> Lanes {
    let mut dots = Vec::new();
    let mut spans = Vec::new();
    let mut max = 0.0f64;
    for (lane, f) in r.faults.iter().enumerate() {
        for t in r.trials.iter().filter(|t| t.fault == f.fault) {
            if let Some(v) = value(t) {
                let s = v as f64 / 1000.0;
                max = max.max(s);
                dots.push(Dot {
                    lane,
                    at: s,
                    color: charts::palette(lane),
                    size: 4,
                });
            }
        }
        let l = figure(f);
        if let (Some(lo), Some(hi)) = (l.p50.lo, l.p50.hi) {
            spans.push(Span {
                lane,
                from: lo / 1000.0,
                to: hi / 1000.0,
                color: charts::INK,
                thin: true,
            });
        }
        for (q, color) in [(&l.p50, charts::INK), (&l.p95, charts::BAD)] {
            if let Some(v) = q.value {
                max = max.max(v / 1000.0);
                dots.push(Dot {
                    lane,
                    at: v / 1000.0,
                    color,
                    size: 6,
                });
            }
        }
    }
    Lanes {
        title: title.into(),
        x_desc: "seconds from the fault taking effect".into(),
        names: r
            .faults
            .iter()
            .map(|f| format!("{} (n={})", f.fault, figure(f).n))
            .collect(),
        x_range: (0.0, (max * 1.1).max(0.1)),
        shaded: vec![],
        spans,
        dots,
        marks: vec![],
    }
}

/// Detection, anomaly and component accuracy per fault, with Wilson intervals.
fn accuracy_chart(r: &CampaignReport) -> Lanes {
    let mut names = Vec::new();
    let mut spans = Vec::new();
    let mut dots = Vec::new();
    let groups = r.faults.iter().chain(std::iter::once(&r.overall));
    for (g, f) in groups.enumerate() {
        let rows = [
            ("detected", &f.detection),
            ("anomaly right", &f.anomaly_accuracy),
            ("component right", &f.component_accuracy),
        ];
        for (what, p) in rows {
            let lane = names.len();
            names.push(format!("{} · {what} (n={})", f.fault, p.n));
            if let (Some(v), Some(lo), Some(hi)) = (p.p, p.lo, p.hi) {
                spans.push(Span {
                    lane,
                    from: lo,
                    to: hi,
                    color: charts::palette(g),
                    thin: true,
                });
                dots.push(Dot {
                    lane,
                    at: v,
                    color: charts::palette(g),
                    size: 6,
                });
            }
        }
    }
    Lanes {
        title: "Accuracy with Wilson 95 % intervals".into(),
        x_desc: "share of trials".into(),
        names,
        x_range: (0.0, 1.0),
        shaded: vec![],
        spans,
        dots,
        marks: vec![],
    }
}

/// One lane per trial, in seconds from the fault taking effect: the fault's
/// time in effect shaded, detection / diagnosis / recovery marked.
fn trial_chart(r: &CampaignReport) -> Lanes {
    let shown: Vec<&TrialResult> = r.trials.iter().take(MAX_TIMELINE_TRIALS).collect();
    let s = |v: u64| v as f64 / 1000.0;
    let mut spans = Vec::new();
    let mut marks = Vec::new();
    let mut max = 0.0f64;
    for (lane, t) in shown.iter().enumerate() {
        if let Some(d) = t.fault_duration_ms {
            max = max.max(s(d));
            spans.push(Span {
                lane,
                from: 0.0,
                to: s(d),
                color: charts::RGBColor(254, 202, 202),
                thin: false,
            });
        }
        for (v, kind) in [
            (t.time_to_detect_ms, MarkKind::Detected),
            (t.time_to_diagnose_ms, MarkKind::Diagnosed),
            (t.time_to_recover_ms, MarkKind::Recovered),
        ] {
            if let Some(v) = v {
                max = max.max(s(v));
                marks.push(Mark {
                    lane: Some(lane),
                    at: s(v),
                    kind,
                });
            }
        }
    }
    Lanes {
        title: "Trials, in the order they ran".into(),
        x_desc: "seconds from the fault taking effect".into(),
        names: shown
            .iter()
            .map(|t| {
                let verdict = match (t.detected, t.correct()) {
                    _ if t.fault == BASELINE && t.false_alarm => "false alarm",
                    _ if t.fault == BASELINE => "no alarm",
                    (false, _) => "not detected",
                    (true, false) => "misdiagnosed",
                    (true, true) => "ok",
                };
                format!("{} #{} · {verdict}", t.fault, t.trial + 1)
            })
            .collect(),
        x_range: (0.0, (max * 1.05).max(0.1)),
        shaded: vec![],
        spans,
        dots: vec![],
        marks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::campaign::tests::sample;

    #[test]
    fn the_report_shows_the_figures_of_its_inputs() {
        let r = sample();
        let (md, html) = render(&r).unwrap();
        // minijinja escapes `/` in HTML text; a browser shows it as `/`.
        let html = html.replace("&#x2f;", "/");
        let partition = &r.faults[0];
        // 8 of 10 partition trials right, with the Wilson interval of 8/10.
        let acc = proportion(&partition.anomaly_accuracy);
        assert_eq!(acc, "8/10 · 80.0 % [49.0–94.3 %]");
        assert!(md.contains(&acc), "the accuracy is shown");
        assert!(
            md.contains("6/6 · 100.0 % [61.0–100.0 %]"),
            "crash accuracy"
        );
        assert!(md.contains(&quantile(&partition.time_to_detect_ms.p50)));
        // The HTML sets the interval apart, in a smaller span.
        let shown = |s: Shown| {
            html.contains(&format!(">{} <", s.text))
                && html.contains(&format!("<span class=\"ci\">{}</span>", s.ci))
        };
        assert!(shown(Shown::proportion(&partition.anomaly_accuracy)));
        assert!(shown(Shown::quantile(&partition.time_to_detect_ms.p50)));
        for text in [&md, &html] {
            assert!(text.contains("9/10 · 90.0 %"), "partition detection 9/10");
            assert!(text.contains("[61.0–100.0 %]"), "crash accuracy's interval");
            assert!(
                text.contains("trials/partition-9.json"),
                "misses link their journal"
            );
        }
        // 16 trial rows plus the misses (partition #9 misdiagnosed, #10 undetected).
        assert_eq!(html.matches("<tr class=\"trial").count(), 16 + 2);
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 5);
        // Self-contained: nothing is fetched (the SVG namespace URI is a name, not a fetch).
        for fetch in ["<script", "src=", "href=\"http", "@import", "url("] {
            assert!(!html.contains(fetch), "the page must not load `{fetch}`");
        }
    }

    #[test]
    fn baseline_trials_show_their_false_alarms() {
        let mut r = sample();
        let mut trials = r.trials.clone();
        for i in 0..3 {
            let mut t = crate::eval::campaign::tests::trial(BASELINE, i, None, false);
            t.false_alarm = i == 1;
            trials.push(t);
        }
        r = CampaignReport::new(r.campaign.clone(), trials);
        let (md, html) = render(&r).unwrap();
        let html = html.replace("&#x2f;", "/");
        assert!(md.contains("**False alarms**: 1/3 · 33.3 %"), "{md}");
        assert!(html.contains("id=\"false-alarms\"") && html.contains("1/3 · 33.3 %"));
        assert!(
            html.contains("baseline #2 · false alarm"),
            "the timeline labels it"
        );
        // The false alarm is a miss; the quiet baselines are not.
        assert_eq!(
            html.matches("<tr class=\"trial miss\"><td>baseline")
                .count(),
            1
        );
    }

    #[test]
    fn an_incomplete_campaign_says_so() {
        let mut r = sample();
        r.campaign.complete = false;
        let (md, html) = render(&r).unwrap();
        assert!(md.contains("incomplete") && html.contains("incomplete"));
    }

    #[test]
    fn write_puts_three_files() {
        let dir = tempfile::tempdir().unwrap();
        let w = write(&sample(), dir.path()).unwrap();
        let back: CampaignReport =
            serde_json::from_str(&std::fs::read_to_string(&w.json).unwrap()).unwrap();
        assert_eq!(back.trials.len(), 16);
        assert!(w.markdown.exists() && w.html.exists());
    }
}
