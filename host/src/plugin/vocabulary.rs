//! Whether a plugin's description can be diagnosed as it expects: checked at
//! load, so a vocabulary gap is a warning in `inspect` and the event log, not
//! a diagnosis chapter that can never pass.
//!
//! The builtin diagnoser names an anomaly by the glossary term of its class
//! (the class label when no term has that class), and a diagnosis matches a
//! chapter when its anomaly contains the expected term. A chapter that expects
//! a term no glossary entry with a class carries can therefore never match.

use super::sanitize::{Kind, Warning};
use crate::diagnosis::normalize;
use plugin_api::SubjectDescription;

/// One warning naming every expectation the glossary cannot produce.
pub fn check(plugin: &str, d: &SubjectDescription) -> Vec<Warning> {
    let terms: Vec<String> = d
        .diagnosis
        .glossary
        .iter()
        .filter(|g| g.class.is_some())
        .map(|g| normalize(&g.term))
        .collect();
    let mut warnings = remedies_unreachable(plugin, d, &terms);
    let missing: Vec<String> = d
        .chapters
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let want = normalize(&c.expect_diagnosis.as_ref()?.anomaly);
            (!terms.iter().any(|t| t.contains(&want)))
                .then(|| format!("chapter {} (\"{}\") expects `{want}`", i + 1, c.title))
        })
        .collect();
    if !missing.is_empty() {
        warnings.push(Warning {
            kind: Kind::Vocabulary,
            message: format!(
                "plugin {plugin}: {}, but no glossary entry with a class has that term, so no diagnosis can match it; \
                 add a GlossaryEntry {{ term, meaning, class: Some(AnomalyClass::…) }} for it (plugin-api/README.md, Diagnosis)",
                missing.join("; ")
            ),
        });
    }
    warnings
}

/// What a snapshot says that the diagnosis cannot use: invariant classes
/// without a glossary term, dependencies on nothing known. Checked on the
/// snapshots (the description does not list invariants or nodes); the
/// session warns once of each.
pub fn check_snapshot(
    plugin: &str,
    d: &SubjectDescription,
    s: &plugin_api::HealthSnapshot,
) -> Vec<Warning> {
    let mut warnings = unnamed_classes(plugin, d, s);
    warnings.extend(unknown_dependencies(plugin, d, s));
    warnings
}

/// A `depends_on` name that is no node's id or address and no declared
/// component: the diagnoser cannot follow it, so a consequence of that
/// component reads as a coincidence.
fn unknown_dependencies(
    plugin: &str,
    d: &SubjectDescription,
    s: &plugin_api::HealthSnapshot,
) -> Vec<Warning> {
    let known: std::collections::HashSet<&str> = s
        .nodes
        .iter()
        .flat_map(|n| [n.id.as_str(), n.address.as_str()])
        .chain(d.diagnosis.components.iter().map(|c| c.name.as_str()))
        .collect();
    let mut unknown: Vec<String> = s
        .nodes
        .iter()
        .map(|n| (&n.id, &n.depends_on))
        .chain(
            d.diagnosis
                .components
                .iter()
                .map(|c| (&c.name, &c.depends_on)),
        )
        .flat_map(|(from, deps)| {
            deps.iter()
                .filter(|dep| !known.contains(dep.as_str()))
                .map(move |dep| format!("`{from}` → `{dep}`"))
        })
        .collect();
    if unknown.is_empty() {
        return Vec::new();
    }
    unknown.sort();
    unknown.dedup();
    unknown.truncate(5);
    vec![Warning {
        kind: Kind::UnknownDependency,
        message: format!(
            "plugin {plugin}: depends_on {} names no node (by id or address) and no declared component, so the diagnoser cannot follow it; \
             name the id the component is reported under, and keep a component's id when it goes down (plugin-api/README.md, Diagnosis)",
            unknown.join(", ")
        ),
    }]
}

/// Invariants whose class no glossary term carries: a diagnosis of that
/// class can only be named with the generic label, which no chapter's
/// expectation holds.
fn unnamed_classes(
    plugin: &str,
    d: &SubjectDescription,
    s: &plugin_api::HealthSnapshot,
) -> Vec<Warning> {
    let unnamed: Vec<String> = s
        .invariants
        .iter()
        .filter(|i| i.class != plugin_api::AnomalyClass::Other)
        .filter(|i| {
            !d.diagnosis
                .glossary
                .iter()
                .any(|g| g.class == Some(i.class))
        })
        .map(|i| format!("`{}` ({})", i.name, i.class.label()))
        .collect();
    if unnamed.is_empty() {
        return Vec::new();
    }
    vec![Warning {
        kind: Kind::UnnamedClass,
        message: format!(
            "plugin {plugin}: invariant {} has a class no glossary term carries, so a diagnosis of it can only be named by the generic class label; \
             add a GlossaryEntry {{ term, meaning, class: Some(..) }} for it (plugin-api/README.md, Diagnosis)",
            unnamed.join(", ")
        ),
    }]
}

/// A remedy is proposed when a diagnosis names an anomaly it addresses, and
/// diagnoses name glossary terms with a class: one addressing only other
/// words is never proposed.
fn remedies_unreachable(plugin: &str, d: &SubjectDescription, terms: &[String]) -> Vec<Warning> {
    let never: Vec<&str> = d
        .remedies
        .iter()
        .filter(|r| !r.addresses.iter().any(|a| terms.contains(&normalize(a))))
        .map(|r| r.id.as_str())
        .collect();
    if never.is_empty() {
        return Vec::new();
    }
    vec![Warning {
        kind: Kind::Remediation,
        message: format!(
            "plugin {plugin}: remedy {} addresses no glossary term with a class, so no diagnosis will propose it; \
             list in `addresses` the glossary terms of the anomalies it fixes (plugin-api/README.md, Remedies)",
            never.join(", ")
        ),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{AnomalyClass, Chapter, Component, GlossaryEntry};

    #[test]
    fn an_invariant_whose_class_has_no_term_is_named() {
        let d = crate::engine::fixture::description();
        let mut s = crate::engine::fixture::snapshot(crate::engine::fixture::T0, false, false);
        // "views agree" is a state divergence, which the fixture's glossary names;
        // "nodes up" is node down, which it does not.
        let w = check_snapshot("fx", &d, &s);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message.contains("`nodes up` (node down)"),
            "{}",
            w[0].message
        );
        assert!(!w[0].message.contains("views agree"), "{}", w[0].message);
        s.invariants.retain(|i| i.name == "views agree");
        assert!(check_snapshot("fx", &d, &s).is_empty());
    }

    #[test]
    fn a_dependency_on_nothing_known_is_named_and_ids_addresses_and_components_are_known() {
        let mut d = crate::engine::fixture::description();
        d.diagnosis.components.push(plugin_api::ComponentInfo {
            name: "store".into(),
            kind: plugin_api::ComponentKind::Dependency,
            description: String::new(),
            depends_on: vec!["ghost".into()],
        });
        let mut s = crate::engine::fixture::snapshot(crate::engine::fixture::T0, false, false);
        let first = s.nodes[0].id.clone();
        let address = "10.0.0.9:1".to_string();
        s.nodes[1].address = address.clone();
        s.nodes[0].depends_on = vec![address, "store".into(), "pd-9".into()];
        s.nodes[1].depends_on = vec![first.clone()];
        let w: Vec<Warning> = check_snapshot("fx", &d, &s)
            .into_iter()
            .filter(|w| w.kind == Kind::UnknownDependency)
            .collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message.contains(&format!("`{first}` → `pd-9`")),
            "{}",
            w[0].message
        );
        assert!(
            w[0].message.contains("`store` → `ghost`"),
            "{}",
            w[0].message
        );
        assert!(
            !w[0].message.contains("10.0.0.9"),
            "an address is known: {}",
            w[0].message
        );
        s.nodes[0].depends_on.retain(|d| d != "pd-9");
        d.diagnosis.components.clear();
        s.nodes[0].depends_on.retain(|d| d != "store");
        assert!(check_snapshot("fx", &d, &s)
            .iter()
            .all(|w| w.kind != Kind::UnknownDependency));
    }

    #[test]
    fn a_remedy_that_addresses_no_classed_term_is_named() {
        let mut d = crate::engine::fixture::description();
        let mut stray = crate::engine::fixture::remedy(
            "reboot",
            plugin_api::Risk::Low,
            plugin_api::RemedyTarget::Cluster,
        );
        stray.addresses = vec!["gremlins".into()];
        d.remedies.push(stray);
        let w = check("fx", &d);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message.contains("remedy reboot") && !w[0].message.contains("resync"),
            "{}",
            w[0].message
        );
    }

    fn description(glossary: Vec<GlossaryEntry>) -> SubjectDescription {
        SubjectDescription {
            info: plugin_api::SubjectInfo {
                id: "pg".into(),
                name: "pg".into(),
                version: "0".into(),
                description: String::new(),
                api_version: String::new(),
                environments: vec![],
                prerequisites: Vec::new(),
            },
            chapters: vec![
                Chapter::narrate("Intro", "…"),
                Chapter::narrate("Diagnose", "…").expect_diagnosis("Replica  Lag", Component::Any),
            ],
            chaos_actions: vec![],
            diagnosis: plugin_api::DiagnosisContext {
                glossary,
                ..Default::default()
            },
            remedies: Vec::new(),
        }
    }

    fn entry(term: &str, class: Option<AnomalyClass>) -> GlossaryEntry {
        GlossaryEntry {
            term: term.into(),
            meaning: String::new(),
            class,
        }
    }

    #[test]
    fn an_expectation_without_a_classed_term_is_named() {
        let w = check("pg", &description(vec![entry("replica lag", None)]));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].message
                .contains("chapter 2 (\"Diagnose\") expects `replica lag`"),
            "{}",
            w[0].message
        );
        assert!(w[0].message.contains("GlossaryEntry"));
    }

    #[test]
    fn a_classed_term_that_holds_the_expectation_is_enough() {
        let d = description(vec![entry(
            "Replica lag",
            Some(AnomalyClass::StateDivergence),
        )]);
        assert!(check("pg", &d).is_empty());
    }
}
