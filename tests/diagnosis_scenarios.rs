//! The builtin diagnoser against recorded observation windows of both
//! subjects and the example plugin (tests/scenarios/*.json).
//!
//! Each file holds a window plus, outside it, what the diagnosis must name and
//! the chaos targets used for scoring. The diagnoser only ever sees the window.

use demo_host::diagnosis::{
    diagnose, score, BackendConfig, DiagnoseOptions, Diagnosis, ObservationWindow,
};
use demo_host::journal::ScenarioFile;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn scenarios() -> Vec<ScenarioFile> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    ScenarioFile::read_dir(&dir).unwrap_or_else(|e| panic!("{e}"))
}

async fn run_builtin(window: &ObservationWindow) -> (Diagnosis, Duration) {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    let d = diagnose(
        &BackendConfig::Builtin,
        window,
        &DiagnoseOptions::default(),
        tx,
    )
    .await
    .expect("the builtin diagnoser does not fail");
    (d, started.elapsed())
}

#[tokio::test]
async fn builtin_names_every_recorded_anomaly() {
    let all = scenarios();
    assert!(
        all.len() >= 8,
        "the suite needs at least eight scenarios, found {}",
        all.len()
    );
    let (mut anomaly_hits, mut component_hits, mut failures) = (0, 0, Vec::new());
    let mut total_time = Duration::ZERO;
    println!(
        "{:<30} {:<20} {:<20} {:>5} {:>5} {:>9}",
        "scenario", "expected", "diagnosed", "conf", "comp", "time"
    );
    for s in &all {
        let (d, took) = run_builtin(&s.window).await;
        total_time += took;
        let sc = score(&d, &s.expected, &s.chaos_targets);
        anomaly_hits += usize::from(sc.anomaly_ok);
        component_hits += usize::from(sc.component_ok);
        println!(
            "{:<30} {:<20} {:<20} {:>5.2} {:>5} {:>7.2}ms",
            s.name,
            s.expected.anomaly,
            d.anomaly,
            d.confidence,
            if sc.component_ok { "ok" } else { "MISS" },
            took.as_secs_f64() * 1000.0
        );
        if std::env::var_os("DIAGNOSIS_DUMP").is_some() {
            println!(
                "{}",
                serde_json::to_string_pretty(&d).expect("diagnosis serializes")
            );
        }
        if !sc.passed() {
            failures.push(format!(
                "{}: {}\n  narrative: {}",
                s.name, sc.detail, d.narrative
            ));
        }
        if let Some(min) = s.min_confidence.filter(|m| d.confidence < *m) {
            failures.push(format!(
                "{}: confidence {:.2} below {min}: {}",
                s.name, d.confidence, d.narrative
            ));
        }
        if let Some(max) = s.max_confidence.filter(|m| d.confidence > *m) {
            failures.push(format!(
                "{}: confidence {:.2} above {max} on thin evidence: {}",
                s.name, d.confidence, d.narrative
            ));
        }
    }
    let n = all.len();
    println!(
        "builtin accuracy: anomaly type {anomaly_hits}/{n} ({:.0}%), component {component_hits}/{n} ({:.0}%), mean {:.2} ms per diagnosis",
        100.0 * anomaly_hits as f64 / n as f64,
        100.0 * component_hits as f64 / n as f64,
        total_time.as_secs_f64() * 1000.0 / n as f64
    );
    assert!(failures.is_empty(), "misses:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn every_diagnosis_is_complete_and_keeps_rules_apart() {
    for s in scenarios() {
        let (d, _) = run_builtin(&s.window).await;
        assert_eq!(d.backend, "builtin");
        assert!(
            (0.0..=1.0).contains(&d.confidence),
            "{}: confidence {}",
            s.name,
            d.confidence
        );
        assert!(!d.timeline.is_empty(), "{}: empty timeline", s.name);
        assert!(!d.evidence.is_empty(), "{}: no evidence", s.name);
        assert!(
            !d.narrative.is_empty()
                && !d.likely_cause.is_empty()
                && !d.recommended_action.is_empty()
        );
        assert!(
            d.alternatives.len() >= 2,
            "{}: alternatives should weigh rival hypotheses, got {:?}",
            s.name,
            d.alternatives
        );
        let violated = s
            .window
            .invariant_changes
            .iter()
            .any(|c| c.to == plugin_api::InvariantStatus::Violated);
        assert_eq!(
            !d.rule_findings.is_empty(),
            violated,
            "{}: rule findings must mirror the violated invariants: {:?}",
            s.name,
            d.rule_findings
        );
        if d.class.is_some() {
            assert!(
                d.evidence.iter().any(|e| e.at_ms.is_some()),
                "{}: evidence without times",
                s.name
            );
            assert!(
                d.alternatives
                    .iter()
                    .filter(|a| a.conclusion.starts_with("accepted"))
                    .count()
                    == 1,
                "{}: exactly one accepted hypothesis",
                s.name
            );
        }
    }
}

#[tokio::test]
async fn builtin_is_deterministic() {
    for s in scenarios() {
        let (a, _) = run_builtin(&s.window).await;
        let (b, _) = run_builtin(&s.window).await;
        assert_eq!(a, b, "{}: two runs differ", s.name);
    }
}

/// Renames every node, address, invariant and glossary term to opaque tokens:
/// the builtin must reach the same conclusion, so it cannot be keyed on names.
#[tokio::test]
async fn builtin_does_not_depend_on_names() {
    for s in scenarios() {
        let (original, _) = run_builtin(&s.window).await;
        let masker = demo_host::diagnosis::mask::Masker::for_window(&s.window);
        let mut renamed = masker.mask_window(&s.window);
        let mut words: Vec<String> = renamed
            .context
            .glossary
            .iter()
            .map(|g| g.term.clone())
            .collect();
        words.extend(
            renamed
                .invariant_changes
                .iter()
                .map(|c| c.invariant.clone()),
        );
        words.sort();
        words.dedup();
        let token = |w: &str| {
            format!(
                "zq{}x",
                words.iter().position(|x| x == w).unwrap_or(usize::MAX)
            )
        };
        for g in &mut renamed.context.glossary {
            g.term = token(&g.term);
        }
        for c in &mut renamed.invariant_changes {
            c.invariant = token(&c.invariant);
        }
        for inv in renamed
            .snapshots
            .iter_mut()
            .flat_map(|s| s.invariants.iter_mut())
        {
            inv.name = token(&inv.name);
        }
        let renames: Vec<(String, String)> = words
            .iter()
            .map(|w| (token(w), masker.unmask_text(w)))
            .collect();
        let (d, _) = run_builtin(&renamed).await;
        if original.class.is_some() {
            assert!(
                d.anomaly.starts_with("zq"),
                "{}: the renamed glossary was not used",
                s.name
            );
        }
        let anomaly = renames
            .iter()
            .find(|(t, _)| *t == d.anomaly)
            .map_or(d.anomaly.clone(), |(_, w)| w.clone());
        assert_eq!(
            anomaly, original.anomaly,
            "{}: renaming changed the anomaly",
            s.name
        );
        assert_eq!(d.class, original.class, "{}", s.name);
        assert_eq!(d.confidence, original.confidence, "{}", s.name);
        // Compare ids only: a masked address no longer contains its node's id.
        let ids = |cs: &[String]| -> Vec<String> {
            cs.iter()
                .map(|c| masker.unmask_text(c.split(' ').next().unwrap_or(c)))
                .collect()
        };
        assert_eq!(
            ids(&d.affected_components),
            ids(&original.affected_components),
            "{}",
            s.name
        );
    }
}
