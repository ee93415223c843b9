//! `diagnosis::score` judges what a diagnosis names, not the order it names
//! it in: permuting the affected components or the chaos targets never
//! changes the verdict.

use demo_host::diagnosis::{score, Diagnosis};
use plugin_api::{Component, ExpectedDiagnosis};
use proptest::prelude::*;

fn diagnosis(anomaly: &str, components: &[String]) -> Diagnosis {
    serde_json::from_value(serde_json::json!({
        "anomaly": anomaly, "class": "node_down", "affected_components": components,
        "timeline": [], "metric_readings": [], "evidence": [], "alternatives": [],
        "likely_cause": "c", "severity": "high", "recommended_action": "a", "confidence": 0.8,
        "narrative": "n", "backend": "test", "rule_findings": []
    }))
    .expect("a diagnosis")
}

/// Names drawn from a small alphabet so that matches (and near misses) are common.
fn name() -> impl Strategy<Value = String> {
    "(node|store|redis|NODE)?[- ]?[1-3]?( \\(tikv-[12]\\))?"
}

fn component() -> impl Strategy<Value = Component> {
    prop_oneof![
        Just(Component::Any),
        name().prop_map(Component::Named),
        Just(Component::ChaosTarget),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn the_verdict_does_not_depend_on_the_order_of_components(
        anomaly in "(node|store) (down|drift)",
        expected_anomaly in "(node|store) (down|drift)",
        want in component(),
        (components, shuffled_components) in prop::collection::vec(name(), 0..5)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        (targets, shuffled_targets) in prop::collection::vec(name(), 0..4)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
    ) {
        let expected = ExpectedDiagnosis { anomaly: expected_anomaly, component: want };
        let a = score(&diagnosis(&anomaly, &components), &expected, &targets);
        let b = score(&diagnosis(&anomaly, &shuffled_components), &expected, &shuffled_targets);
        prop_assert_eq!((a.anomaly_ok, a.component_ok), (b.anomaly_ok, b.component_ok));
    }
}
