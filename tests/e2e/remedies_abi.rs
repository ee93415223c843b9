//! The subjects' declared remedies cross the real ABI (the root module's
//! optional `remedies`) whole: ids, targets, risks, undo and probe steps.

use demo_host::plugin::loader::Loader;
use e2e_tests::*;
use plugin_api::{RemedyTarget, Risk};

#[test]
fn the_rate_limiter_and_tikv_remedies_load_through_the_abi() {
    let loader = Loader::new();
    let rl = loader.load(&plugin_library("ratelimiter")).unwrap();
    let declared: Vec<(&str, RemedyTarget, Risk, Option<&str>)> = rl
        .description
        .remedies
        .iter()
        .map(|r| (r.id.as_str(), r.target, r.risk, r.probe_step.as_deref()))
        .collect();
    assert_eq!(
        declared,
        vec![
            ("restart-node", RemedyTarget::Component, Risk::Low, None),
            (
                "strict-mode",
                RemedyTarget::Cluster,
                Risk::Medium,
                Some("probe-burst")
            ),
            ("failover-redis", RemedyTarget::Cluster, Risk::High, None),
        ]
    );
    let terms: Vec<&str> = rl
        .description
        .diagnosis
        .glossary
        .iter()
        .map(|g| g.term.as_str())
        .collect();
    for r in &rl.description.remedies {
        assert!(
            r.addresses.iter().all(|a| terms.contains(&a.as_str())),
            "{r:?}"
        );
    }
    let tikv = loader.load(&plugin_library("tikv")).unwrap();
    let restart = &tikv.description.remedies[0];
    assert_eq!(
        (restart.id.as_str(), restart.addresses.as_slice()),
        ("restart-store", ["store down".to_string()].as_slice())
    );
}
