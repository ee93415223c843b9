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

    // The story's shape, not its wording: every chapter is titled and
    // narrated, titles differ, and the steps come in the order the demo needs.
    let chapters = &d.chapters;
    assert!(chapters.len() >= 5, "{chapters:#?}");
    for c in chapters {
        assert!(
            !c.title.trim().is_empty() && !c.narration.trim().is_empty(),
            "{c:#?}"
        );
    }
    let mut titles: Vec<&str> = chapters.iter().map(|c| c.title.as_str()).collect();
    titles.sort_unstable();
    titles.dedup();
    assert_eq!(titles.len(), chapters.len(), "two chapters share a title");
    let position = |what: &str, f: &dyn Fn(&plugin_api::Chapter) -> bool| {
        chapters
            .iter()
            .position(f)
            .unwrap_or_else(|| panic!("no chapter {what}"))
    };
    let step = |id: &'static str| move |c: &plugin_api::Chapter| matches!(&c.on_enter, Some(OnEnter::Step { id: s }) if s == id);
    let start_load = position("starts the load", &step("start-load"));
    let chaos = position("injects a fault", &|c| {
        matches!(&c.on_enter, Some(OnEnter::Chaos { .. }))
    });
    let detection = position("expects a violation", &|c| c.expect_violation.is_some());
    let diagnosis = position("expects a diagnosis", &|c| c.expect_diagnosis.is_some());
    let recover = position("recovers", &|c| c.on_enter == Some(OnEnter::Recover));
    let stop_load = position("stops the load", &step("stop-load"));
    assert!(
        start_load < chaos && chaos < detection && detection < diagnosis,
        "load, fault, detection, diagnosis: {start_load} {chaos} {detection} {diagnosis}"
    );
    assert!(
        diagnosis < recover && recover < stop_load,
        "{recover} {stop_load}"
    );
    assert_eq!(
        stop_load,
        chapters.len() - 1,
        "the load stops in the last chapter"
    );
    // What the chapters refer to exists: the fault is a declared action, the
    // expected violation and diagnosis are glossary terms.
    let Some(OnEnter::Chaos { action, .. }) = &chapters[chaos].on_enter else {
        unreachable!("found above")
    };
    assert!(d.chaos_actions.iter().any(|a| &a.id == action), "{action}");
    assert_eq!(action, "store-kill");
    let term = |t: &str| d.diagnosis.glossary.iter().any(|g| g.term == t);
    let violation = chapters[detection]
        .expect_violation
        .as_deref()
        .unwrap_or_default();
    assert!(term(violation), "`{violation}` is no glossary term");
    let expected = chapters[diagnosis].expect_diagnosis.as_ref().unwrap();
    assert!(
        term(&expected.anomaly),
        "`{}` is no glossary term",
        expected.anomaly
    );
    assert_eq!(
        expected.anomaly, violation,
        "the diagnosis names what was detected"
    );
    assert_eq!(expected.component, Component::ChaosTarget);
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
