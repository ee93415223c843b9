//! The description is the contract with the host: ids, chapters, vocabulary.

use plugin_api::{
    AnomalyClass, ChaosKind, Component, OnEnter, ParamKind, ParamValue, Recovery, Subject,
};
use subject_tikv::TikvSubject;

#[test]
fn chaos_action_and_steps_keep_their_contract_ids() {
    let d = TikvSubject::describe();
    assert_eq!(d.info.id, "tikv");
    assert_eq!(d.info.environments, vec!["compose", "local"]);
    let a = &d.chaos_actions[0];
    assert_eq!(
        (a.id.as_str(), &a.kind, a.recovery),
        (
            "store-kill",
            &ChaosKind::ContainerKill,
            Recovery::ExplicitRecover
        )
    );
    let p = &a.params[0];
    assert_eq!(
        (p.name.as_str(), p.kind, &p.default),
        ("store", ParamKind::Integer, &ParamValue::Int(0))
    );
    assert_eq!((p.min, p.max), (Some(0.0), Some(16.0)));

    let titles: Vec<&str> = d.chapters.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(
        titles,
        vec![
            "Welcome",
            "Cluster health",
            "Start the load",
            "Kill a store",
            "Detection",
            "Diagnosis",
            "Recovery",
            "Done"
        ]
    );
    assert_eq!(
        d.chapters[2].on_enter,
        Some(OnEnter::Step {
            id: "start-load".into()
        })
    );
    assert!(
        matches!(&d.chapters[3].on_enter, Some(OnEnter::Chaos { action, .. }) if action == "store-kill")
    );
    assert_eq!(
        d.chapters[4].expect_violation.as_deref(),
        Some("store down")
    );
    let expected = d.chapters[5].expect_diagnosis.as_ref().unwrap();
    assert_eq!(
        (expected.anomaly.as_str(), &expected.component),
        ("store down", &Component::ChaosTarget)
    );
    assert_eq!(d.chapters[6].on_enter, Some(OnEnter::Recover));
    assert_eq!(
        d.chapters[7].on_enter,
        Some(OnEnter::Step {
            id: "stop-load".into()
        })
    );
}

#[test]
fn glossary_names_each_anomaly_with_its_class() {
    let d = TikvSubject::describe();
    for (term, class) in [
        ("store down", AnomalyClass::NodeDown),
        ("latency spike", AnomalyClass::LatencySpike),
        ("leader imbalance", AnomalyClass::Imbalance),
        ("disk pressure", AnomalyClass::CapacityExhausted),
        ("pd unavailable", AnomalyClass::DependencyDown),
    ] {
        let entry = d
            .diagnosis
            .glossary
            .iter()
            .find(|g| g.term == term)
            .unwrap_or_else(|| panic!("no `{term}`"));
        assert_eq!(entry.class, Some(class), "{term}");
    }
}
