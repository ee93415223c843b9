//! Every model value survives the trip across the ABI (`Boundary::into_ffi`
//! then `from_ffi`) unchanged: arbitrary snapshots, descriptions, faults,
//! parameters and errors, any Unicode, any float. Floats are compared through
//! `Debug`, which tells every value apart except NaN payloads; a separate
//! property checks that float bits cross exactly.

use plugin_api::ffi::Boundary;
use plugin_api::*;
use proptest::prelude::*;
use proptest::strategy::Union;

fn roundtrip<T: Boundary + Clone>(v: &T) -> T {
    T::from_ffi(v.clone().into_ffi())
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z0-9 _-]{0,12}"]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0)
    ]
}

fn small_vec<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Vec<T>> {
    prop::collection::vec(s, 0..4)
}

fn class() -> impl Strategy<Value = AnomalyClass> {
    Union::new(AnomalyClass::ALL.map(Just))
}

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![
        Just(Level::Debug),
        Just(Level::Info),
        Just(Level::Warn),
        Just(Level::Error)
    ]
}

fn component_kind() -> impl Strategy<Value = ComponentKind> {
    prop_oneof![
        Just(ComponentKind::Member),
        Just(ComponentKind::Dependency),
        Just(ComponentKind::Client),
        Just(ComponentKind::Resource),
        Just(ComponentKind::Other)
    ]
}

fn metric() -> impl Strategy<Value = Metric> {
    let kind = prop_oneof![Just(MetricKind::Gauge), Just(MetricKind::Counter)];
    let worse = prop_oneof![
        Just(Worse::Unknown),
        Just(Worse::Higher),
        Just(Worse::Lower)
    ];
    (text(), float(), text(), kind, worse).prop_map(|(name, value, unit, kind, worse)| Metric {
        name,
        value,
        unit,
        kind,
        worse,
    })
}

fn snapshot() -> impl Strategy<Value = HealthSnapshot> {
    let status = prop_oneof![
        Just(NodeStatus::Up),
        Just(NodeStatus::Degraded),
        Just(NodeStatus::Down),
        Just(NodeStatus::Unknown)
    ];
    let node = (
        (text(), text(), text(), status, small_vec(metric())),
        (component_kind(), small_vec(text()), any::<bool>()),
    )
        .prop_map(
            |((id, role, address, status, metrics), (kind, depends_on, stale))| NodeHealth {
                id,
                role,
                address,
                status,
                metrics,
                kind,
                depends_on,
                stale,
            },
        );
    let inv_status = prop_oneof![
        Just(InvariantStatus::Ok),
        Just(InvariantStatus::Violated),
        Just(InvariantStatus::Unknown)
    ];
    let invariant = (
        (text(), inv_status, text(), any::<u64>(), class()),
        (
            small_vec(text()),
            proptest::option::of(float()),
            proptest::option::of(float()),
            prop_oneof![Just(BoundIs::Ceiling), Just(BoundIs::Floor)],
        ),
    )
        .prop_map(
            |((name, status, detail, since_ms, class), (components, observed, bound, bound_is))| {
                Invariant {
                    name,
                    status,
                    detail,
                    since_ms,
                    class,
                    components,
                    observed,
                    bound,
                    bound_is,
                }
            },
        );
    let event = (any::<u64>(), level(), text(), proptest::option::of(text())).prop_map(
        |(at_ms, level, message, component)| Event {
            at_ms,
            level,
            message,
            component,
        },
    );
    (
        any::<u64>(),
        small_vec(node),
        small_vec(metric()),
        small_vec(invariant),
        small_vec(event),
    )
        .prop_map(
            |(at_ms, nodes, metrics, invariants, events)| HealthSnapshot {
                at_ms,
                nodes,
                metrics,
                invariants,
                events,
            },
        )
}

fn param_value() -> impl Strategy<Value = ParamValue> {
    prop_oneof![
        any::<bool>().prop_map(ParamValue::Bool),
        any::<i64>().prop_map(ParamValue::Int),
        float().prop_map(ParamValue::Float),
        text().prop_map(ParamValue::Text),
    ]
}

fn component() -> impl Strategy<Value = Component> {
    prop_oneof![
        Just(Component::Any),
        text().prop_map(Component::Named),
        Just(Component::ChaosTarget)
    ]
}

fn chapter() -> impl Strategy<Value = Chapter> {
    let on_enter = prop_oneof![
        (text(), small_vec((text(), param_value())))
            .prop_map(|(action, params)| OnEnter::Chaos { action, params }),
        Just(OnEnter::Recover),
        text().prop_map(|id| OnEnter::Step { id }),
        Just(OnEnter::Diagnose),
    ];
    let expected = (text(), component())
        .prop_map(|(anomaly, component)| ExpectedDiagnosis { anomaly, component });
    (
        (text(), text(), text()),
        (
            proptest::option::of(any::<u64>()),
            any::<bool>(),
            proptest::option::of(on_enter),
            proptest::option::of(text()),
            proptest::option::of(expected),
        ),
    )
        .prop_map(
            |(
                (title, narration, key_hint),
                (auto_advance_ms, blocks_advance, on_enter, expect_violation, expect_diagnosis),
            )| Chapter {
                title,
                narration,
                key_hint,
                auto_advance_ms,
                blocks_advance,
                on_enter,
                expect_violation,
                expect_diagnosis,
            },
        )
}

fn action() -> impl Strategy<Value = ChaosAction> {
    let kind = prop_oneof![
        Just(ChaosKind::ContainerKill),
        Just(ChaosKind::ProcessKill),
        Just(ChaosKind::RedisPause),
        Just(ChaosKind::BurstTraffic),
        text().prop_map(ChaosKind::Custom),
    ];
    let param_kind = prop_oneof![
        Just(ParamKind::Integer),
        Just(ParamKind::Float),
        Just(ParamKind::DurationMs),
        Just(ParamKind::Bool),
        Just(ParamKind::Text)
    ];
    let spec = (
        (text(), text(), param_kind, param_value()),
        (
            proptest::option::of(float()),
            proptest::option::of(float()),
            text(),
        ),
    )
        .prop_map(
            |((name, description, kind, default), (min, max, unit))| ParamSpec {
                name,
                description,
                kind,
                default,
                min,
                max,
                unit,
            },
        );
    let recovery = prop_oneof![
        Just(Recovery::SelfRecovering),
        Just(Recovery::ExplicitRecover)
    ];
    (text(), text(), kind, text(), small_vec(spec), recovery).prop_map(
        |(id, name, kind, description, params, recovery)| ChaosAction {
            id,
            name,
            kind,
            description,
            params,
            recovery,
        },
    )
}

fn description() -> impl Strategy<Value = SubjectDescription> {
    let prerequisite = (text(), text(), small_vec(text()), any::<bool>()).prop_map(
        |(binary, why, environments, optional)| Prerequisite {
            binary,
            why,
            environments,
            optional,
        },
    );
    let info = (
        (text(), text(), text(), text(), text()),
        (small_vec(text()), small_vec(prerequisite)),
    )
        .prop_map(
            |((id, name, version, description, api_version), (environments, prerequisites))| {
                SubjectInfo {
                    id,
                    name,
                    version,
                    description,
                    api_version,
                    environments,
                    prerequisites,
                }
            },
        );
    let comp = (text(), component_kind(), text(), small_vec(text())).prop_map(
        |(name, kind, description, depends_on)| ComponentInfo {
            name,
            kind,
            description,
            depends_on,
        },
    );
    let entry =
        (text(), text(), proptest::option::of(class())).prop_map(|(term, meaning, class)| {
            GlossaryEntry {
                term,
                meaning,
                class,
            }
        });
    let context =
        (text(), small_vec(comp), small_vec(entry)).prop_map(|(system, components, glossary)| {
            DiagnosisContext {
                system,
                components,
                glossary,
            }
        });
    (info, small_vec(chapter()), small_vec(action()), context).prop_map(
        |(info, chapters, chaos_actions, diagnosis)| SubjectDescription {
            info,
            chapters,
            chaos_actions,
            diagnosis,
            remedies: Vec::new(),
        },
    )
}

fn remedy() -> impl Strategy<Value = Remedy> {
    let target = prop_oneof![Just(RemedyTarget::Component), Just(RemedyTarget::Cluster)];
    let risk = prop_oneof![Just(Risk::Low), Just(Risk::Medium), Just(Risk::High)];
    (
        (text(), text(), text(), small_vec(text()), target, risk),
        (text(), any::<u64>(), proptest::option::of(text())),
    )
        .prop_map(
            |(
                (id, name, description, addresses, target, risk),
                (undo, verify_within_ms, probe_step),
            )| {
                Remedy {
                    id,
                    name,
                    description,
                    addresses,
                    params: Vec::new(),
                    target,
                    risk,
                    undo,
                    verify_within_ms,
                    probe_step,
                }
            },
        )
}

fn fault() -> impl Strategy<Value = ActiveFault> {
    (
        (text(), text(), small_vec(text()), text()),
        (any::<u64>(), proptest::option::of(any::<u64>()), text()),
    )
        .prop_map(
            |((fault_id, action_id, targets, summary), (started_ms, expires_ms, undo))| {
                ActiveFault {
                    fault_id,
                    action_id,
                    targets,
                    summary,
                    started_ms,
                    expires_ms,
                    undo,
                }
            },
        )
}

fn error() -> impl Strategy<Value = PluginError> {
    prop_oneof![
        text().prop_map(PluginError::InvalidInput),
        text().prop_map(PluginError::Missing),
        text().prop_map(PluginError::Unsupported),
        text().prop_map(PluginError::Panicked),
        text().prop_map(PluginError::Failed),
    ]
}

proptest! {
    #[test]
    fn health_snapshots_round_trip(s in snapshot()) {
        prop_assert_eq!(format!("{:?}", roundtrip(&s)), format!("{s:?}"));
    }

    #[test]
    fn descriptions_round_trip(d in description()) {
        prop_assert_eq!(format!("{:?}", roundtrip(&d)), format!("{d:?}"));
    }

    #[test]
    fn remedies_and_their_outcomes_round_trip(r in remedy(), summary in text(), undo in text()) {
        prop_assert_eq!(roundtrip(&r), r);
        let outcome = RemedyOutcome { summary, undo };
        prop_assert_eq!(roundtrip(&outcome), outcome);
    }

    #[test]
    fn faults_parameters_and_errors_round_trip(
        f in fault(),
        params in small_vec((text(), param_value())),
        e in error(),
    ) {
        prop_assert_eq!(roundtrip(&f), f);
        prop_assert_eq!(format!("{:?}", roundtrip(&params)), format!("{params:?}"));
        prop_assert_eq!(PluginError::from_ffi(e.clone().into_ffi()), e);
    }

    #[test]
    fn float_bits_cross_exactly(bits in any::<u64>()) {
        let m = Metric::new("m", f64::from_bits(bits), "u");
        prop_assert_eq!(roundtrip(&m).value.to_bits(), bits);
        let p = ParamValue::Float(f64::from_bits(bits));
        let ParamValue::Float(back) = roundtrip(&p) else {
            return Err(TestCaseError::fail("not a float any more"));
        };
        prop_assert_eq!(back.to_bits(), bits);
    }
}
