//! The builtin diagnoser against recorded observation windows of both
//! subjects and the example plugin (tests/scenarios/*.json).
//!
//! Each file holds a window plus, outside it, what the diagnosis must name and
//! the chaos targets used for scoring. The diagnoser only ever sees the window.

use demo_host::diagnosis::{
    diagnose, score, BackendConfig, DiagnoseOptions, Diagnosis, ObservationWindow,
};
use demo_host::scenario::ScenarioFile;
use std::collections::{BTreeMap, BTreeSet};
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
        "{:<36} {:<20} {:<20} {:>5} {:>5} {:>9}",
        "scenario", "expected", "diagnosed", "conf", "comp", "time"
    );
    for s in &all {
        let (d, took) = run_builtin(&s.window).await;
        total_time += took;
        let sc = score(&d, &s.expected, &s.chaos_targets);
        anomaly_hits += usize::from(sc.anomaly_ok);
        component_hits += usize::from(sc.component_ok);
        let file = s
            .path
            .file_stem()
            .map_or_else(|| s.name.clone(), |f| f.to_string_lossy().into_owned());
        println!(
            "{:<36} {:<20} {:<20} {:>5.2} {:>5} {:>7.2}ms",
            file,
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

/// A small deterministic generator (splitmix64): the renaming must be random
/// in shape yet the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An opaque token of 3 to 18 letters and digits, never a word.
    fn token(&mut self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let len = 3 + (self.next() % 16) as usize;
        let mut t = String::from("q");
        while t.len() < len - 1 {
            t.push(ALPHABET[(self.next() % ALPHABET.len() as u64) as usize] as char);
        }
        t.push(char::from(b'0' + (self.next() % 10) as u8));
        t
    }
}

/// Every name in a window (node ids, addresses, roles, dependencies,
/// invariant names and components, glossary terms, component names, event
/// components) mapped to a distinct random token.
fn name_map(w: &ObservationWindow, seed: u64) -> BTreeMap<String, String> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    names.extend(w.context.components.iter().map(|c| c.name.clone()));
    names.extend(
        w.context
            .components
            .iter()
            .flat_map(|c| c.depends_on.clone()),
    );
    names.extend(w.context.glossary.iter().map(|g| g.term.clone()));
    for s in &w.snapshots {
        for n in &s.nodes {
            names.extend([n.id.clone(), n.address.clone(), n.role.clone()]);
            names.extend(n.depends_on.iter().cloned());
        }
        for i in &s.invariants {
            names.insert(i.name.clone());
            names.extend(i.components.iter().cloned());
        }
        names.extend(s.events.iter().filter_map(|e| e.component.clone()));
    }
    for c in &w.invariant_changes {
        names.insert(c.invariant.clone());
        names.extend(c.components.iter().cloned());
    }
    names.extend(w.events.iter().filter_map(|e| e.component.clone()));
    names.remove("");
    let mut rng = Rng(seed);
    let mut used = BTreeSet::new();
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            // Seed 0 nests the tokens (`n1`, `n11`, `n111`, ...): every name
            // is then part of every longer one, which no subject's names are.
            let t = if seed == 0 {
                format!("n{}", "1".repeat(i + 1))
            } else {
                std::iter::repeat_with(|| rng.token())
                    .find(|t| used.insert(t.clone()))
                    .expect("a fresh token")
            };
            (n, t)
        })
        .collect()
}

/// Replaces every name in free text, longest first, in one pass.
fn substitute(text: &str, map: &BTreeMap<String, String>) -> String {
    let mut names: Vec<(&String, &String)> = map.iter().collect();
    names.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let mut out = String::new();
    let mut rest = text;
    'scan: while let Some(c) = rest.chars().next() {
        for (name, token) in &names {
            if rest.starts_with(name.as_str()) {
                out.push_str(token);
                rest = &rest[name.len()..];
                continue 'scan;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The window with every name replaced: names where they stand alone, and
/// inside the free text (details, messages, meanings) where they occur.
fn renamed(w: &ObservationWindow, map: &BTreeMap<String, String>) -> ObservationWindow {
    let name = |s: &String| map.get(s).cloned().unwrap_or_else(|| s.clone());
    let names = |v: &mut Vec<String>| v.iter_mut().for_each(|s| *s = name(s));
    let text = |s: &mut String| *s = substitute(s, map);
    let event = |e: &mut plugin_api::Event| {
        text(&mut e.message);
        e.component = e.component.as_ref().map(name);
    };
    let mut w = w.clone();
    text(&mut w.subject);
    text(&mut w.context.system);
    for c in &mut w.context.components {
        c.name = name(&c.name);
        names(&mut c.depends_on);
        text(&mut c.description);
    }
    for g in &mut w.context.glossary {
        g.term = name(&g.term);
        text(&mut g.meaning);
    }
    for s in &mut w.snapshots {
        for n in &mut s.nodes {
            n.id = name(&n.id);
            n.address = name(&n.address);
            n.role = name(&n.role);
            names(&mut n.depends_on);
        }
        for i in &mut s.invariants {
            i.name = name(&i.name);
            names(&mut i.components);
            text(&mut i.detail);
        }
        s.events.iter_mut().for_each(event);
    }
    for c in &mut w.invariant_changes {
        c.invariant = name(&c.invariant);
        names(&mut c.components);
        text(&mut c.detail);
    }
    w.events.iter_mut().for_each(event);
    w
}

/// What a diagnosis concluded and how it ranked the rivals, with names put
/// back: everything but the wording must survive a renaming exactly.
fn conclusion(d: &Diagnosis, back: &BTreeMap<String, String>) -> serde_json::Value {
    let id = |c: &String| {
        let c = substitute(c, back);
        c.split(" (").next().unwrap_or(&c).to_string()
    };
    serde_json::json!({
        "anomaly": back.get(&d.anomaly).unwrap_or(&d.anomaly),
        "class": d.class,
        "confidence": d.confidence,
        "severity": d.severity,
        "affected": d.affected_components.iter().map(id).collect::<Vec<_>>(),
        "ranking": d.alternatives.iter().map(|a| serde_json::json!([
            a.hypothesis, a.conclusion, a.supporting.len(), a.contradicting.len()
        ])).collect::<Vec<_>>(),
        "evidence": d.evidence.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
        "metrics": d.metric_readings.iter().map(|m| serde_json::json!([
            m.metric, m.component.as_ref().map(id), m.before, m.during, m.unit
        ])).collect::<Vec<_>>(),
    })
}

/// Renames every node, address, role, invariant, component and glossary term
/// to random opaque tokens of different lengths (several draws per window),
/// and once to tokens nested in one another:
/// the builtin must reach the same conclusion with exactly the same
/// confidence and ranking, so nothing in its numbers can come from a name
/// (its length, its order, one name found inside another).
#[tokio::test]
async fn builtin_does_not_depend_on_names() {
    for s in scenarios() {
        let (original, _) = run_builtin(&s.window).await;
        for seed in [0, 1, 2, 3, 0x5eed] {
            let map = name_map(&s.window, seed);
            let back: BTreeMap<String, String> =
                map.iter().map(|(n, t)| (t.clone(), n.clone())).collect();
            let (d, _) = run_builtin(&renamed(&s.window, &map)).await;
            if original.class.is_some() && !s.window.context.glossary.is_empty() {
                assert!(
                    back.contains_key(&d.anomaly),
                    "{} (seed {seed}): the renamed glossary was not used: {}",
                    s.name,
                    d.anomaly
                );
            }
            assert_eq!(
                conclusion(&d, &back),
                conclusion(&original, &BTreeMap::new()),
                "{} (seed {seed}): renaming changed the diagnosis",
                s.name
            );
        }
    }
}
