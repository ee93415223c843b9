//! Scoring a diagnosis against what its chapter expects.
//!
//! Chaos targets are used here only, never shown to a diagnoser: the host
//! knows which fault it injected, so it can check the diagnosis exactly.

use super::report::Diagnosis;
use plugin_api::{Component, ExpectedDiagnosis};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    pub anomaly_ok: bool,
    pub component_ok: bool,
    pub detail: String,
}

impl Score {
    pub fn passed(&self) -> bool {
        self.anomaly_ok && self.component_ok
    }
}

/// Case and runs of white space ignored: how anomalies and terms are compared.
pub fn normalize(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Whether the diagnosed component `got` names `want`: the same id, or `want`
/// as a whole token in it ("pg-1 (primary)"), never a longer id ("pg-10").
pub fn names_component(got: &str, want: &str) -> bool {
    let (got, want) = (normalize(got), normalize(want));
    if want.is_empty() {
        return false;
    }
    let part_of_id = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_');
    got.match_indices(&want).any(|(at, _)| {
        let before = got[..at].chars().next_back();
        let after = got[at + want.len()..].chars().next();
        !before.is_some_and(part_of_id) && !after.is_some_and(part_of_id)
    })
}

/// The anomaly matches when it contains the expected term (case and spacing
/// ignored); a component matches when an affected component names it as a
/// whole id (see [`names_component`]).
pub fn score(d: &Diagnosis, expected: &ExpectedDiagnosis, chaos_targets: &[String]) -> Score {
    let want = normalize(&expected.anomaly);
    let got = normalize(&d.anomaly);
    let anomaly_ok = !want.is_empty() && got.contains(&want);
    let names_any = |wanted: &[String]| {
        d.affected_components
            .iter()
            .any(|c| wanted.iter().any(|w| names_component(c, w)))
    };
    let (component_ok, component_want) = match &expected.component {
        Component::Any => (true, "any component".to_string()),
        Component::Named(name) => (names_any(std::slice::from_ref(name)), format!("`{name}`")),
        Component::OneOf(names) => (names_any(names), format!("one of {}", names.join(", "))),
        Component::ChaosTarget => (
            names_any(chaos_targets),
            format!("the chaos target ({})", chaos_targets.join(", ")),
        ),
    };
    let detail = format!(
        "anomaly {}: expected `{}`, diagnosed `{}`; component {}: expected {}, diagnosed [{}]",
        if anomaly_ok { "ok" } else { "MISSED" },
        expected.anomaly,
        d.anomaly,
        if component_ok { "ok" } else { "MISSED" },
        component_want,
        d.affected_components.join(", ")
    );
    Score {
        anomaly_ok,
        component_ok,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::builtin;
    use crate::diagnosis::window::ObservationWindow;

    fn diagnosis(anomaly: &str, components: &[&str]) -> Diagnosis {
        let mut d = builtin::diagnose(&ObservationWindow::from_snapshots(
            "s",
            Default::default(),
            vec![],
        ));
        d.anomaly = anomaly.into();
        d.affected_components = components.iter().map(|c| c.to_string()).collect();
        d
    }

    fn expect(anomaly: &str, component: Component) -> ExpectedDiagnosis {
        ExpectedDiagnosis {
            anomaly: anomaly.into(),
            component,
        }
    }

    #[test]
    fn anomaly_matches_ignoring_case_and_spacing() {
        let d = diagnosis("Counter  Drift", &["redis"]);
        assert!(score(&d, &expect("counter drift", Component::Any), &[]).passed());
        assert!(!score(&d, &expect("ghost allowing", Component::Any), &[]).anomaly_ok);
    }

    #[test]
    fn components_match_by_name_or_chaos_target() {
        let d = diagnosis("store down", &["store-2 (tikv-1:20160)"]);
        assert!(
            score(
                &d,
                &expect("store down", Component::ChaosTarget),
                &["tikv-1".into()]
            )
            .component_ok
        );
        assert!(
            !score(
                &d,
                &expect("store down", Component::ChaosTarget),
                &["tikv-2".into()]
            )
            .component_ok
        );
        assert!(!score(&d, &expect("store down", Component::ChaosTarget), &[]).component_ok);
        assert!(
            score(
                &d,
                &expect("store down", Component::Named("STORE-2".into())),
                &[]
            )
            .component_ok
        );
        let miss = score(
            &d,
            &expect("store down", Component::Named("pd".into())),
            &[],
        );
        assert!(
            !miss.passed() && miss.detail.contains("MISSED"),
            "{}",
            miss.detail
        );
    }
}
