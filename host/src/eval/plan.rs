//! What a campaign plays: the plugin's own fault scenarios (a chaos chapter
//! and the detection, diagnosis and recovery chapters after it, with the
//! author's expectations), repeated and shuffled by a seed.

use plugin_api::{Chapter, OnEnter, SubjectDescription};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// A fault and the chapters that play it, taken from the plugin's demo.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The chaos action's id (`partition`); a second scenario of the same action gets `-2`.
    pub fault: String,
    /// The chaos chapter and the chapters after it up to and including the recovery.
    pub chapters: Vec<Chapter>,
}

/// One trial to play.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTrial {
    pub fault: String,
    /// 0-based index of the trial within its fault (and cell).
    pub index: usize,
    /// Which diagnoser × policy cell of a campaign's matrix plays it (0 outside a matrix).
    pub cell: usize,
    /// How long the trial's baseline lasts before the fault is injected: a
    /// random phase against the health poller and the subject's own cycles.
    pub phase_ms: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("the plugin's demo injects no fault: a campaign plays its chaos chapters")]
    NoScenario,
    #[error("no chaos chapter of the plugin's demo injects `{fault}`; it has: {known}")]
    UnknownFault { fault: String, known: String },
}

/// The shortest baseline before an injection: a few polls of a healthy subject.
pub const MIN_PHASE_MS: u64 = 300;

/// The name of trials without a fault, which measure false alarms.
pub const BASELINE: &str = "baseline";

/// How long a baseline trial watches the untouched subject: about as long as
/// a fault trial's fault, detection and diagnosis take.
pub const BASELINE_WATCH_MS: u64 = 3000;

/// Every chaos chapter of the demo with what follows it: chapters up to the
/// next recovery chapter (included), stopping before the next chaos chapter.
pub fn scenarios(desc: &SubjectDescription) -> Vec<Scenario> {
    let chapters = &desc.chapters;
    let mut out: Vec<Scenario> = Vec::new();
    for (i, chapter) in chapters.iter().enumerate() {
        let Some(OnEnter::Chaos { action, .. }) = &chapter.on_enter else {
            continue;
        };
        let mut taken = vec![chapter.clone()];
        for next in &chapters[i + 1..] {
            if matches!(next.on_enter, Some(OnEnter::Chaos { .. })) {
                break;
            }
            taken.push(next.clone());
            if matches!(next.on_enter, Some(OnEnter::Recover)) {
                break;
            }
        }
        let same = out
            .iter()
            .filter(|s| s.fault == *action || s.fault.starts_with(&format!("{action}-")))
            .count();
        let fault = match same {
            0 => action.clone(),
            n => format!("{action}-{}", n + 1),
        };
        out.push(Scenario {
            fault,
            chapters: taken,
        });
    }
    out
}

/// The scenarios named in `faults` (all when empty), in the order given.
pub fn select(all: Vec<Scenario>, faults: &[String]) -> Result<Vec<Scenario>, PlanError> {
    if all.is_empty() {
        return Err(PlanError::NoScenario);
    }
    if faults.is_empty() {
        return Ok(all);
    }
    faults
        .iter()
        .map(|f| {
            all.iter()
                .find(|s| s.fault == *f)
                .cloned()
                .ok_or_else(|| PlanError::UnknownFault {
                    fault: f.clone(),
                    known: all
                        .iter()
                        .map(|s| s.fault.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        })
        .collect()
}

/// The subject's own steps the demo runs before its first fault (set a limit,
/// start the load): the state every fault scenario assumes. A campaign plays
/// them once, after setup, before the first trial.
pub fn prologue(desc: &SubjectDescription) -> Vec<Chapter> {
    desc.chapters
        .iter()
        .take_while(|c| !matches!(c.on_enter, Some(OnEnter::Chaos { .. })))
        .filter(|c| matches!(c.on_enter, Some(OnEnter::Step { .. })))
        .cloned()
        .collect()
}

/// `trials` trials of each scenario, shuffled, each with its injection phase
/// drawn from `[MIN_PHASE_MS, MIN_PHASE_MS + phase_span_ms]`: the same seed gives
/// the same order and phases.
pub fn plan(
    scenarios: &[Scenario],
    trials: usize,
    baseline: usize,
    phase_span_ms: u64,
    seed: u64,
) -> Vec<PlannedTrial> {
    let counts: Vec<(String, usize)> = scenarios
        .iter()
        .map(|s| (s.fault.clone(), trials))
        .collect();
    plan_matrix(&counts, 1, baseline, phase_span_ms, seed)
}

/// As [`plan`] for a matrix: each fault's own number of trials in each of
/// `cells` diagnoser × policy cells, shuffled together (so no cell plays on a
/// subject warmer than another's), and `baseline` trials in cell 0.
pub fn plan_matrix(
    faults: &[(String, usize)],
    cells: usize,
    baseline: usize,
    phase_span_ms: u64,
    seed: u64,
) -> Vec<PlannedTrial> {
    let mut rng = StdRng::seed_from_u64(seed);
    let trial = |fault: &str, cell: usize, index: usize| PlannedTrial {
        fault: fault.to_string(),
        index,
        cell,
        phase_ms: 0,
    };
    let mut out: Vec<PlannedTrial> = faults
        .iter()
        .flat_map(|(fault, trials)| {
            (0..cells).flat_map(move |cell| (0..*trials).map(move |i| trial(fault, cell, i)))
        })
        .chain((0..baseline).map(|i| trial(BASELINE, 0, i)))
        .collect();
    out.shuffle(&mut rng);
    for t in &mut out {
        t.phase_ms = MIN_PHASE_MS + rng.random_range(0..=phase_span_ms);
    }
    out
}

/// A baseline trial: the subject left alone for as long as a fault trial
/// lasts; any violation seen is a false alarm.
pub fn baseline_description(desc: &SubjectDescription, phase_ms: u64) -> SubjectDescription {
    SubjectDescription {
        chapters: vec![
            Chapter::narrate("Baseline", "The subject runs undisturbed.").auto_advance(phase_ms),
            Chapter::narrate("Watch", "No fault: anything seen now is a false alarm.")
                .auto_advance(BASELINE_WATCH_MS),
        ],
        ..desc.clone()
    }
}

/// The demo one trial plays: a baseline of `phase_ms`, the scenario's chapters,
/// and a short tail so the journal sees the subject healthy again.
pub fn trial_description(
    desc: &SubjectDescription,
    scenario: &Scenario,
    phase_ms: u64,
    tail_ms: u64,
) -> SubjectDescription {
    let mut chapters =
        vec![
            Chapter::narrate("Baseline", "The subject runs undisturbed before the fault.")
                .auto_advance(phase_ms),
        ];
    chapters.extend(scenario.chapters.iter().cloned());
    chapters.push(
        Chapter::narrate("Settle", "The subject recovers before the next trial.")
            .auto_advance(tail_ms),
    );
    SubjectDescription {
        chapters,
        ..desc.clone()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use plugin_api::{Component, ParamValue};

    /// A description with no chapter, chaos action or component, for tests to fill.
    pub(crate) fn bare() -> SubjectDescription {
        serde_json::from_value(serde_json::json!({
            "info": {"id": "s", "name": "S", "version": "1", "description": "", "api_version": "", "environments": []},
            "chapters": [],
            "chaos_actions": [],
            "diagnosis": {"system": "", "components": [], "glossary": []}
        }))
        .expect("a minimal description")
    }

    fn chaos(action: &str) -> Chapter {
        Chapter::narrate(action, "").on_enter(OnEnter::Chaos {
            action: action.into(),
            params: vec![("duration_ms".into(), ParamValue::Int(1000))],
        })
    }

    fn demo() -> SubjectDescription {
        let mut d = bare();
        d.chapters = vec![
            Chapter::narrate("Welcome", ""),
            chaos("partition"),
            Chapter::narrate("Detect", "").expect_violation("agree"),
            Chapter::narrate("Diagnose", "")
                .on_enter(OnEnter::Diagnose)
                .expect_diagnosis("divergence", Component::ChaosTarget),
            Chapter::narrate("Recover", "").on_enter(OnEnter::Recover),
            Chapter::narrate("Interlude", ""),
            chaos("crash"),
            Chapter::narrate("Detect", "").expect_violation("up"),
            chaos("partition"),
            Chapter::narrate("Done", ""),
        ];
        d
    }

    #[test]
    fn scenarios_are_the_chaos_chapters_with_what_follows() {
        let s = scenarios(&demo());
        let faults: Vec<&str> = s.iter().map(|s| s.fault.as_str()).collect();
        assert_eq!(faults, ["partition", "crash", "partition-2"]);
        let titles =
            |i: usize| -> Vec<String> { s[i].chapters.iter().map(|c| c.title.clone()).collect() };
        assert_eq!(titles(0), ["partition", "Detect", "Diagnose", "Recover"]);
        assert_eq!(
            titles(1),
            ["crash", "Detect"],
            "stops before the next chaos chapter"
        );
        assert_eq!(titles(2), ["partition", "Done"]);
    }

    #[test]
    fn the_prologue_is_the_steps_before_the_first_fault() {
        let mut d = demo();
        assert!(prologue(&d).is_empty());
        let step = |id: &str| Chapter::narrate(id, "").on_enter(OnEnter::Step { id: id.into() });
        d.chapters.insert(1, step("set-limit"));
        d.chapters.push(step("later"));
        let p = prologue(&d);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].title, "set-limit");
    }

    #[test]
    fn select_names_the_faults_it_does_not_know() {
        let all = scenarios(&demo());
        assert_eq!(select(all.clone(), &[]).unwrap().len(), 3);
        let one = select(all.clone(), &["crash".into()]).unwrap();
        assert_eq!(one[0].fault, "crash");
        let err = select(all, &["flood".into()]).unwrap_err();
        assert_eq!(err.to_string(), "no chaos chapter of the plugin's demo injects `flood`; it has: partition, crash, partition-2");
        let mut empty = demo();
        empty.chapters.retain(|c| c.on_enter.is_none());
        assert_eq!(select(scenarios(&empty), &[]), Err(PlanError::NoScenario));
    }

    #[test]
    fn the_seed_fixes_order_and_phases() {
        let s = scenarios(&demo());
        let a = plan(&s, 5, 0, 1000, 7);
        assert_eq!(a, plan(&s, 5, 0, 1000, 7));
        assert_ne!(a, plan(&s, 5, 0, 1000, 8));
        assert_eq!(a.len(), 15);
        for fault in ["partition", "crash", "partition-2"] {
            let mut idx: Vec<usize> = a
                .iter()
                .filter(|t| t.fault == fault)
                .map(|t| t.index)
                .collect();
            idx.sort();
            assert_eq!(idx, [0, 1, 2, 3, 4]);
        }
        assert!(a
            .iter()
            .all(|t| (MIN_PHASE_MS..=MIN_PHASE_MS + 1000).contains(&t.phase_ms)));
        assert!(a.iter().all(|t| t.cell == 0));
        let m = plan_matrix(
            &[("partition".into(), 2), ("crash".into(), 1)],
            3,
            1,
            1000,
            7,
        );
        assert_eq!(m.len(), (2 + 1) * 3 + 1);
        for cell in 0..3 {
            let mut idx: Vec<usize> = m
                .iter()
                .filter(|t| t.fault == "partition" && t.cell == cell)
                .map(|t| t.index)
                .collect();
            idx.sort();
            assert_eq!(idx, [0, 1], "cell {cell}");
        }
        let distinct: std::collections::BTreeSet<u64> = a.iter().map(|t| t.phase_ms).collect();
        assert!(distinct.len() > 5, "phases vary: {distinct:?}");
        let with_baseline = plan(&s, 1, 4, 1000, 7);
        assert_eq!(
            with_baseline.iter().filter(|t| t.fault == BASELINE).count(),
            4
        );
        let b = baseline_description(&demo(), 500);
        assert_eq!(b.chapters.len(), 2);
        assert!(
            b.chapters.iter().all(|c| c.on_enter.is_none()),
            "a baseline injects nothing"
        );
    }

    #[test]
    fn a_trial_plays_baseline_scenario_and_tail() {
        let d = demo();
        let s = &scenarios(&d)[0];
        let t = trial_description(&d, s, 750, 1000);
        assert_eq!(t.chapters.len(), s.chapters.len() + 2);
        assert_eq!(t.chapters[0].auto_advance_ms, Some(750));
        assert_eq!(t.chapters.last().unwrap().auto_advance_ms, Some(1000));
        assert_eq!(t.info, d.info);
    }
}
