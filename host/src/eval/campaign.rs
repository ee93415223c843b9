//! The figures of a campaign, per fault and overall, computed from its trials:
//! the content of `report.json` (schema in `docs/eval.md`).

use super::plan::BASELINE;
use super::stats::{self, Proportion, QuantileCi, ReliabilityBin, BOOTSTRAP_RESAMPLES};
use super::trial::{Cell, TrialResult};
use serde::{Deserialize, Serialize};

/// The schema name and version written into every `report.json`.
pub const SCHEMA: &str = "demo-host/eval-report/v1";

/// How many ranks top-k accuracy is reported for (top-1 .. top-3).
pub const TOP_K: usize = 3;

/// Bins of the reliability table.
pub const RELIABILITY_BINS: usize = 5;

/// What a campaign ran, for the report's header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignInfo {
    pub subject: String,
    pub environment: String,
    pub diagnoser: String,
    pub seed: u64,
    pub host_version: String,
    pub started_ms: u64,
    pub ended_ms: u64,
    /// False for a campaign stopped before its last trial (Ctrl-C).
    pub complete: bool,
    /// Trials planned, of which `trials.len()` ran.
    pub planned_trials: usize,
    /// What the reader must know: why the campaign stopped, a subject that did not settle.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Which proposed fixes ran (`never`: the self-healing baseline).
    #[serde(default)]
    pub remediate: String,
    /// How often the subject did not settle between trials and was set up
    /// again (each such trial has `unsettled`).
    #[serde(default)]
    pub rebuilds: usize,
}

/// p50 and p95 of a latency, each with its bootstrap 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub n: usize,
    pub p50: QuantileCi,
    pub p95: QuantileCi,
}

impl Latency {
    fn of(values_ms: &[f64], seed: u64) -> Latency {
        Latency {
            n: values_ms.len(),
            p50: stats::bootstrap_quantile(values_ms, 0.5, BOOTSTRAP_RESAMPLES, seed),
            p95: stats::bootstrap_quantile(values_ms, 0.95, BOOTSTRAP_RESAMPLES, seed ^ 0x95),
        }
    }
}

/// Calibration of the stated confidence against "anomaly and component right".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Diagnoses with a confidence.
    pub n: usize,
    pub brier: Option<f64>,
    pub bins: Vec<ReliabilityBin>,
}

/// The figures of one group of trials (one fault, or all of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// The fault, or `all` for the overall figures.
    pub fault: String,
    /// The matrix cell of a group's figures (`groups`, `cells`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<Cell>,
    pub trials: usize,
    /// Share of trials whose fault was detected.
    pub detection: Proportion,
    /// Over detected trials.
    pub time_to_detect_ms: Latency,
    /// Share of trials with a diagnosis at all.
    pub diagnosed: Proportion,
    /// Over all trials: a trial without a diagnosis counts as wrong.
    pub anomaly_accuracy: Proportion,
    pub component_accuracy: Proportion,
    /// Anomaly and component both right.
    pub accuracy: Proportion,
    /// `top_k[i]` is top-(i+1) accuracy on the anomaly over all trials.
    pub top_k: Vec<Proportion>,
    pub calibration: Calibration,
    pub time_to_diagnose_ms: Latency,
    /// From the fault taking effect to every invariant ok again.
    pub time_to_recover_ms: Latency,
    /// `None` when no trial attempted a remediation.
    pub remediation: Option<Proportion>,
    pub time_to_resolve_ms: Option<Latency>,
    /// A model backend's figures; `None` when no trial asked a model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelFigures>,
}

/// What a model backend did: how often its answer missed the schema, how
/// long it took, and the tokens the API reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFigures {
    /// Trials that asked the model (an answer or a failure).
    pub calls: usize,
    /// Answers not in the diagnosis schema, over the calls.
    pub schema_failures: Proportion,
    /// Other failures (HTTP, transport, timeout), over the calls.
    pub other_failures: Proportion,
    /// Over the answered calls, from request to answer read.
    pub latency_ms: Latency,
    /// Over the answered calls whose API reported them (the quantiles are token counts).
    pub input_tokens: Latency,
    pub output_tokens: Latency,
}

impl ModelFigures {
    fn of(trials: &[&TrialResult], seed: u64) -> Option<ModelFigures> {
        let asked: Vec<&&TrialResult> = trials
            .iter()
            .filter(|t| t.model_call.is_some() || t.diagnosis_error.is_some())
            .collect();
        if !trials.iter().any(|t| t.model_call.is_some()) && asked.is_empty() {
            return None;
        }
        let calls: Vec<_> = asked.iter().filter_map(|t| t.model_call).collect();
        let of = |f: fn(&crate::diagnosis::usage::ModelCall) -> Option<u64>| -> Vec<f64> {
            calls.iter().filter_map(f).map(|v| v as f64).collect()
        };
        Some(ModelFigures {
            calls: asked.len(),
            schema_failures: Proportion::of(asked.iter().map(|t| t.schema_failure())),
            other_failures: Proportion::of(
                asked
                    .iter()
                    .map(|t| t.diagnosis_error.is_some() && !t.schema_failure()),
            ),
            latency_ms: Latency::of(&of(|c| Some(c.latency_ms)), seed ^ 4),
            input_tokens: Latency::of(&of(|c| c.input_tokens), seed ^ 5),
            output_tokens: Latency::of(&of(|c| c.output_tokens), seed ^ 6),
        })
    }
}

impl Figures {
    /// The figures of `trials`; `seed` fixes the bootstrap resamples.
    pub fn of(fault: &str, trials: &[&TrialResult], seed: u64) -> Figures {
        let ms = |f: fn(&TrialResult) -> Option<u64>| -> Vec<f64> {
            trials
                .iter()
                .filter_map(|t| f(t))
                .map(|v| v as f64)
                .collect()
        };
        let ranks: Vec<Option<usize>> = trials.iter().map(|t| t.correct_rank).collect();
        let pairs: Vec<(f64, bool)> = trials
            .iter()
            .filter_map(|t| Some((t.confidence?, t.correct())))
            .collect();
        let remediated: Vec<_> = trials
            .iter()
            .filter_map(|t| t.remediation.as_ref())
            .collect();
        Figures {
            fault: fault.to_string(),
            cell: None,
            trials: trials.len(),
            detection: Proportion::of(trials.iter().map(|t| t.detected)),
            time_to_detect_ms: Latency::of(&ms(|t| t.time_to_detect_ms), seed),
            diagnosed: Proportion::of(trials.iter().map(|t| t.diagnosed)),
            anomaly_accuracy: Proportion::of(trials.iter().map(|t| t.anomaly_correct)),
            component_accuracy: Proportion::of(trials.iter().map(|t| t.component_correct)),
            accuracy: Proportion::of(trials.iter().map(|t| t.correct())),
            top_k: (1..=TOP_K).map(|k| stats::top_k(&ranks, k)).collect(),
            calibration: Calibration {
                n: pairs.len(),
                brier: stats::brier(&pairs),
                bins: stats::reliability(&pairs, RELIABILITY_BINS),
            },
            time_to_diagnose_ms: Latency::of(&ms(|t| t.time_to_diagnose_ms), seed ^ 1),
            time_to_recover_ms: Latency::of(&ms(|t| t.time_to_recover_ms), seed ^ 2),
            remediation: (!remediated.is_empty())
                .then(|| Proportion::of(remediated.iter().map(|r| r.succeeded))),
            time_to_resolve_ms: (!remediated.is_empty()).then(|| {
                let v: Vec<f64> = remediated
                    .iter()
                    .filter_map(|r| r.time_to_resolve_ms)
                    .map(|v| v as f64)
                    .collect();
                Latency::of(&v, seed ^ 3)
            }),
            model: ModelFigures::of(trials, seed),
        }
    }
}

/// Trials without a fault: how often the host saw a violation that was not there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineFigures {
    /// The subject, in `baselines` (one per subject of a matrix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub trials: usize,
    pub false_alarms: Proportion,
}

/// `report.json`: what ran, the figures per fault and overall, and every trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignReport {
    pub schema: String,
    pub campaign: CampaignInfo,
    pub overall: Figures,
    /// In the order the faults first appear among the trials (baseline trials apart).
    pub faults: Vec<Figures>,
    /// `None` when the campaign ran no baseline trial.
    #[serde(default)]
    pub baseline: Option<BaselineFigures>,
    /// A matrix of more than one subject × diagnoser × policy: the figures of
    /// each cell and fault, in the order they first ran; empty otherwise.
    #[serde(default)]
    pub groups: Vec<Figures>,
    /// The same, each cell over all its faults (`fault` = `all`).
    #[serde(default)]
    pub cells: Vec<Figures>,
    /// False alarms per subject, when the baseline trials ran on more than one.
    #[serde(default)]
    pub baselines: Vec<BaselineFigures>,
    pub trials: Vec<TrialResult>,
}

/// The distinct items in the order they first appear.
fn first_seen<'a, T: PartialEq + Clone + 'a>(items: impl Iterator<Item = &'a T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for i in items {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    out
}

/// The figures of one cell's trials, per fault and over all its faults.
fn cell_figures(cell: &Cell, trials: &[&TrialResult], seed: u64) -> (Vec<Figures>, Figures) {
    let with_cell = |mut f: Figures| {
        f.cell = Some(cell.clone());
        f
    };
    let faults = first_seen(trials.iter().map(|t| &t.fault))
        .into_iter()
        .map(|fault| {
            let of: Vec<&TrialResult> = trials
                .iter()
                .copied()
                .filter(|t| t.fault == fault)
                .collect();
            with_cell(Figures::of(&fault, &of, seed))
        })
        .collect();
    (faults, with_cell(Figures::of("all", trials, seed)))
}

impl CampaignReport {
    pub fn new(campaign: CampaignInfo, trials: Vec<TrialResult>) -> CampaignReport {
        let seed = campaign.seed;
        let is_baseline = |t: &TrialResult| t.fault == BASELINE;
        let mut names: Vec<&str> = Vec::new();
        for t in trials.iter().filter(|t| !is_baseline(t)) {
            if !names.contains(&t.fault.as_str()) {
                names.push(&t.fault);
            }
        }
        let faults = names
            .iter()
            .map(|name| {
                let of: Vec<&TrialResult> = trials.iter().filter(|t| t.fault == *name).collect();
                Figures::of(name, &of, seed)
            })
            .collect();
        let overall = Figures::of(
            "all",
            &trials
                .iter()
                .filter(|t| !is_baseline(t))
                .collect::<Vec<_>>(),
            seed,
        );
        let baseline: Vec<&TrialResult> = trials.iter().filter(|t| is_baseline(t)).collect();
        let faulted: Vec<&TrialResult> = trials.iter().filter(|t| !is_baseline(t)).collect();
        let matrix = first_seen(faulted.iter().map(|t| &t.cell));
        let (mut groups, mut cells) = (Vec::new(), Vec::new());
        if matrix.len() > 1 {
            for cell in &matrix {
                let of: Vec<&TrialResult> = faulted
                    .iter()
                    .copied()
                    .filter(|t| t.cell == *cell)
                    .collect();
                let (per_fault, all) = cell_figures(cell, &of, seed);
                groups.extend(per_fault);
                cells.push(all);
            }
        }
        let subjects = first_seen(baseline.iter().map(|t| &t.cell.subject));
        let baselines = match subjects.len() > 1 {
            true => subjects
                .into_iter()
                .map(|s| {
                    let of: Vec<&&TrialResult> =
                        baseline.iter().filter(|t| t.cell.subject == s).collect();
                    BaselineFigures {
                        subject: Some(s),
                        trials: of.len(),
                        false_alarms: Proportion::of(of.iter().map(|t| t.false_alarm)),
                    }
                })
                .collect(),
            false => Vec::new(),
        };
        CampaignReport {
            schema: SCHEMA.to_string(),
            campaign,
            overall,
            faults,
            baseline: (!baseline.is_empty()).then(|| BaselineFigures {
                subject: None,
                trials: baseline.len(),
                false_alarms: Proportion::of(baseline.iter().map(|t| t.false_alarm)),
            }),
            groups,
            cells,
            baselines,
            trials,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::eval::trial::Remediation;

    pub(crate) fn trial(
        fault: &str,
        i: usize,
        detect_ms: Option<u64>,
        correct: bool,
    ) -> TrialResult {
        TrialResult {
            fault: fault.into(),
            trial: i,
            detected: detect_ms.is_some(),
            time_to_detect_ms: detect_ms,
            diagnosed: detect_ms.is_some(),
            anomaly: detect_ms.map(|_| {
                if correct {
                    "replica divergence"
                } else {
                    "replica crash"
                }
                .into()
            }),
            anomaly_correct: correct,
            component_correct: detect_ms.is_some() && (correct || i % 2 == 0),
            confidence: detect_ms.map(|_| if correct { 0.9 } else { 0.6 }),
            alternatives: vec!["replica crash".into()],
            correct_rank: detect_ms.map(|_| if correct { 1 } else { 2 }),
            time_to_diagnose_ms: detect_ms.map(|d| d + 40),
            fault_duration_ms: Some(3000),
            time_to_recover_ms: Some(3100 + i as u64),
            remediation: None,
            journal: Some(format!("trials/{fault}-{i}.json")),
            failures: vec![],
            false_alarm: false,
            cell: Cell::default(),
            unsettled: None,
            diagnosis_error: None,
            model_call: None,
        }
    }

    pub(crate) fn info(trials: usize) -> CampaignInfo {
        CampaignInfo {
            subject: "example".into(),
            environment: "local".into(),
            diagnoser: "builtin".into(),
            seed: 42,
            host_version: "0.1.0".into(),
            started_ms: 1_700_000_000_000,
            ended_ms: 1_700_000_060_000,
            complete: true,
            planned_trials: trials,
            notes: vec![],
            remediate: "never".into(),
            rebuilds: 0,
        }
    }

    pub(crate) fn sample() -> CampaignReport {
        let mut trials = Vec::new();
        for i in 0..10 {
            // partition: 8 of 10 right, one undetected.
            let detect = (i != 9).then_some(200 + 20 * i as u64);
            trials.push(trial("partition", i, detect, i < 8));
        }
        for i in 0..6 {
            trials.push(trial("crash", i, Some(100 + 10 * i as u64), true));
        }
        CampaignReport::new(info(16), trials)
    }

    #[test]
    fn figures_match_the_trials() {
        let r = sample();
        assert_eq!(r.schema, SCHEMA);
        assert_eq!(r.faults.len(), 2);
        let p = &r.faults[0];
        assert_eq!((p.fault.as_str(), p.trials), ("partition", 10));
        assert_eq!((p.detection.k, p.detection.n), (9, 10));
        assert_eq!((p.anomaly_accuracy.k, p.anomaly_accuracy.n), (8, 10));
        let (lo, hi) = stats::wilson(8, 10).unwrap();
        assert_eq!(
            (p.anomaly_accuracy.lo, p.anomaly_accuracy.hi),
            (Some(lo), Some(hi))
        );
        // top-2 also counts the diagnosed miss whose alternative named it.
        assert_eq!((p.top_k[0].k, p.top_k[1].k), (8, 9));
        assert_eq!(p.time_to_detect_ms.n, 9);
        let detect: Vec<f64> = (0..9).map(|i| 200.0 + 20.0 * i as f64).collect();
        assert_eq!(p.time_to_detect_ms.p50.value, stats::quantile(&detect, 0.5));
        assert_eq!(p.calibration.n, 9);
        assert_eq!(p.remediation, None);
        let o = &r.overall;
        assert_eq!(o.trials, 16);
        assert_eq!((o.detection.k, o.accuracy.k), (15, 14));
        assert_eq!(r.faults[1].accuracy.p, Some(1.0));
    }

    #[test]
    fn remediation_is_counted_where_it_was_tried() {
        let mut trials: Vec<TrialResult> =
            (0..4).map(|i| trial("crash", i, Some(100), true)).collect();
        for (i, t) in trials.iter_mut().enumerate() {
            t.remediation = Some(Remediation {
                remedy: "restart".into(),
                succeeded: i != 3,
                time_to_resolve_ms: (i != 3).then_some(1000),
                time_from_approval_ms: (i != 3).then_some(200),
            });
        }
        let r = CampaignReport::new(info(4), trials);
        let rem = r.overall.remediation.unwrap();
        assert_eq!((rem.k, rem.n), (3, 4));
        assert_eq!(r.overall.time_to_resolve_ms.unwrap().n, 3);
    }

    #[test]
    fn baseline_trials_count_false_alarms_and_stay_out_of_the_fault_figures() {
        let mut trials = vec![trial("crash", 0, Some(100), true)];
        for i in 0..4 {
            let mut t = trial(BASELINE, i, None, false);
            t.false_alarm = i == 2;
            trials.push(t);
        }
        let r = CampaignReport::new(info(5), trials);
        let b = r.baseline.expect("baseline figures");
        assert_eq!((b.trials, b.false_alarms.k, b.false_alarms.n), (4, 1, 4));
        assert_eq!(r.faults.len(), 1, "baseline is not a fault");
        assert_eq!((r.overall.trials, r.overall.accuracy.k), (1, 1));
        assert_eq!(sample().baseline, None);
    }

    #[test]
    fn a_matrix_is_grouped_per_cell_and_fault_each_with_its_n() {
        let cell = |subject: &str, policy: &str| Cell {
            subject: subject.into(),
            diagnoser: "builtin".into(),
            policy: policy.into(),
        };
        let mut trials = Vec::new();
        for (i, (c, fault, right)) in [
            (cell("a", "never"), "partition", true),
            (cell("a", "auto"), "partition", false),
            (cell("a", "never"), "partition", true),
            (cell("b", "never"), "crash", true),
            (cell("a", "never"), "crash", false),
        ]
        .into_iter()
        .enumerate()
        {
            let mut t = trial(fault, i, Some(100), right);
            t.cell = c;
            trials.push(t);
        }
        for (i, s) in ["a", "b", "b"].into_iter().enumerate() {
            let mut t = trial(BASELINE, i, None, false);
            t.cell = cell(s, "never");
            t.false_alarm = s == "a";
            trials.push(t);
        }
        let r = CampaignReport::new(info(8), trials);
        let g: Vec<(String, String, String, usize, usize)> = r
            .groups
            .iter()
            .map(|f| {
                let c = f.cell.clone().expect("a group names its cell");
                (c.subject, c.policy, f.fault.clone(), f.trials, f.accuracy.k)
            })
            .collect();
        let own = |s: &str, p: &str, f: &str, n, k| (s.into(), p.into(), f.into(), n, k);
        assert_eq!(
            g,
            [
                own("a", "never", "partition", 2, 2),
                own("a", "never", "crash", 1, 0),
                own("a", "auto", "partition", 1, 0),
                own("b", "never", "crash", 1, 1),
            ]
        );
        let cells: Vec<(usize, usize)> = r.cells.iter().map(|f| (f.trials, f.accuracy.k)).collect();
        assert_eq!(cells, [(3, 2), (1, 0), (1, 1)]);
        assert!(r.cells.iter().all(|f| f.fault == "all"));
        let b: Vec<(Option<String>, usize, usize)> = r
            .baselines
            .iter()
            .map(|b| (b.subject.clone(), b.trials, b.false_alarms.k))
            .collect();
        assert_eq!(b, [(Some("a".into()), 1, 1), (Some("b".into()), 2, 0)]);
        assert!(
            sample().groups.is_empty() && sample().cells.is_empty(),
            "one cell: no groups"
        );
    }

    #[test]
    fn model_figures_count_schema_failures_latency_and_tokens() {
        use crate::diagnosis::usage::ModelCall;
        assert_eq!(sample().overall.model, None, "the builtin asks no model");
        let mut trials = Vec::new();
        for i in 0..5 {
            let mut t = trial("crash", i, Some(100), i < 3);
            t.model_call = (i < 3).then_some(ModelCall {
                latency_ms: 1000 + 100 * i as u64,
                input_tokens: Some(900),
                output_tokens: (i != 0).then_some(400),
            });
            t.diagnosis_error = match i {
                3 => Some(format!(
                    "{}: the answer is not JSON",
                    crate::diagnosis::SCHEMA_MISMATCH
                )),
                4 => Some("could not reach anthropic: refused".into()),
                _ => None,
            };
            trials.push(t);
        }
        let r = CampaignReport::new(info(5), trials);
        let m = r.overall.model.expect("model figures");
        assert_eq!(m.calls, 5);
        assert_eq!((m.schema_failures.k, m.schema_failures.n), (1, 5));
        let (lo, hi) = stats::wilson(1, 5).unwrap();
        assert_eq!(
            (m.schema_failures.lo, m.schema_failures.hi),
            (Some(lo), Some(hi))
        );
        assert_eq!((m.other_failures.k, m.other_failures.n), (1, 5));
        assert_eq!(m.latency_ms.n, 3);
        assert_eq!(m.latency_ms.p50.value, Some(1100.0));
        assert_eq!(
            (m.input_tokens.n, m.output_tokens.n),
            (3, 2),
            "only what the API reported"
        );
        assert_eq!(m.output_tokens.p50.value, Some(400.0));
    }

    #[test]
    fn report_json_round_trips() {
        let r = sample();
        let json = serde_json::to_string(&r).unwrap();
        let back: CampaignReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back.campaign, r.campaign);
        assert_eq!(back.trials.len(), r.trials.len());
        assert_eq!(back.faults.len(), r.faults.len());
        let p = |f: &Figures| (f.trials, f.detection.k, f.accuracy.k, f.top_k.len());
        assert_eq!(p(&back.overall), p(&r.overall));
        let brier = |f: &Figures| f.calibration.brier.unwrap();
        assert!((brier(&back.overall) - brier(&r.overall)).abs() < 1e-12);
    }
}
