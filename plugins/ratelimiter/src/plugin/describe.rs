//! What `demo-host inspect` shows: chapters, chaos actions and vocabulary.

use super::invariants::{
    CONSERVATION, COUNTER_DRIFT, GHOST_ALLOWING, NODE_CUT_OFF, NODE_DOWN, REDIS_DOWN, REDIS_LATENCY,
};
use plugin_api::*;

pub const REDIS_PAUSE: &str = "redis-pause";
pub const BURST: &str = "burst";
pub const NODE_KILL: &str = "node-kill";
pub const REDIS_FREEZE: &str = "redis-freeze";
/// Network faults through the fault proxy (env=local).
pub const REDIS_LATENCY_ACTION: &str = "redis-latency";
pub const PARTITION: &str = "partition";
pub const STEP_SET_LIMIT: &str = "set-limit";
/// The host's `demo-host up` / `down` (compose environment only).
pub const STEP_ENV_UP: &str = "env-up";
pub const STEP_ENV_DOWN: &str = "env-down";
/// The strict-mode remedy's probe: a burst of twice the limit must allow at most the limit.
pub const STEP_PROBE_BURST: &str = "probe-burst";

pub fn description() -> SubjectDescription {
    SubjectDescription {
        info: SubjectInfo {
            id: "ratelimiter".into(),
            name: "Redis-backed rate limiter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Three ratelimiter-node processes share per-key counts through Redis; in the default cached mode they count locally and flush in batches (limitador's redis_cached design).".into(),
            api_version: String::new(),
            environments: vec!["local".into(), "compose".into()],
            // The same list as `[package.metadata.demo-host]` (a test checks).
            prerequisites: vec![
                prerequisite("redis-server", "the local environment runs Redis as a process", "local", false),
                prerequisite("docker", "the compose environment runs the cluster in containers", "compose", false),
                prerequisite("docker-compose", "the compose environment is a Compose project", "compose", false),
            ],
        },
        chapters: chapters(),
        chaos_actions: chaos_actions(),
        diagnosis: diagnosis(),
        remedies: super::remedy::remedies(),
    }
}

fn chapters() -> Vec<Chapter> {
    vec![
        Chapter::narrate(
            "Welcome",
            "A rate limiter cluster: three nodes answer POST /check and share their counts through Redis. In cached mode each node counts locally and flushes to Redis every tenth of a second: fast, but not exact. We will break it twice, for real, and watch the invariants catch it.",
        ),
        Chapter::narrate(
            "Cluster health",
            "Three nodes and Redis, polled every 100 ms. Every node answers /health and /metrics; the plugin also reads Redis directly, so one node down never blinds it.",
        ),
        Chapter::narrate(
            "Set the limit",
            "PUT /api/limits/demo stores the limit in Redis, where every node reads it. A steady background load of a hundred checks per second starts, round-robin over the nodes.",
        )
        .on_enter(OnEnter::Step { id: STEP_SET_LIMIT.into() })
        .blocking()
        .auto_advance(1500),
        Chapter::narrate(
            "Counter drift: inject",
            "CLIENT PAUSE WRITE: Redis keeps answering reads, but every write blocks. The nodes' flushes time out, they mark themselves partitioned and keep serving from local counts.",
        )
        .on_enter(OnEnter::Chaos {
            action: REDIS_PAUSE.into(),
            params: vec![("duration_ms".into(), ParamValue::Int(30_000))],
        })
        .blocking(),
        Chapter::narrate(
            "Counter drift: detect",
            "The nodes keep acknowledging checks that never reach Redis: the shared counter and the nodes' acknowledged counts drift apart.",
        )
        .expect_violation(COUNTER_DRIFT),
        Chapter::narrate("Counter drift: diagnose", "What does the diagnoser make of it?")
            .on_enter(OnEnter::Diagnose)
            .expect_diagnosis(COUNTER_DRIFT, Component::Named("redis".into()))
            .blocking(),
        Chapter::narrate(
            "Recovery",
            "CLIENT UNPAUSE. The blocked flushes land exactly once (each batch carries an id), the nodes leave the partitioned state and the drift closes.",
        )
        .on_enter(OnEnter::Recover)
        .blocking(),
        Chapter::narrate(
            "Ghost allowing: inject",
            "A burst of twice the limit, all at once, round-robin over the three nodes, inside one window. Each node decides against the shared count it last read, which none of the others has updated yet.",
        )
        .on_enter(OnEnter::Chaos {
            action: BURST.into(),
            params: vec![("multiplier".into(), ParamValue::Float(2.0))],
        })
        .blocking(),
        Chapter::narrate(
            "Ghost allowing: detect",
            "The cluster allowed more checks in one window than the limit: the nodes' own counters and the burst's own accounting both show it.",
        )
        .expect_violation(GHOST_ALLOWING),
        Chapter::narrate("Ghost allowing: diagnose", "What does the diagnoser make of it?")
            .on_enter(OnEnter::Diagnose)
            .expect_diagnosis(GHOST_ALLOWING, Component::Any)
            .blocking(),
        Chapter::narrate("Recovery", "The burst's window closes; the nodes agree with Redis again.")
            .on_enter(OnEnter::Recover)
            .blocking(),
        Chapter::narrate(
            "Node kill: inject",
            "SIGKILL one node (docker kill of its container in compose): a crash, not a shutdown.",
        )
        .on_enter(OnEnter::Chaos {
            action: NODE_KILL.into(),
            params: vec![("node".into(), ParamValue::Int(0))],
        })
        .blocking(),
        Chapter::narrate(
            "Node kill: detect",
            "The killed node stops answering /health; the others go on serving and Redis is fine.",
        )
        .expect_violation(NODE_DOWN),
        Chapter::narrate("Node kill: diagnose", "Which node, and is anything else to blame?")
            .on_enter(OnEnter::Diagnose)
            .expect_diagnosis(NODE_DOWN, Component::ChaosTarget)
            .blocking(),
        Chapter::narrate("Recovery", "The node is restarted on its port and rejoins.")
            .on_enter(OnEnter::Recover)
            .blocking(),
        Chapter::narrate(
            "Slow Redis: inject",
            "Each node reaches Redis through its own route of a fault-injecting TCP proxy (there is no netem on this kernel). Now Redis's answers reach every node 20 ms late, give or take 3.",
        )
        .on_enter(OnEnter::Chaos {
            action: REDIS_LATENCY_ACTION.into(),
            params: vec![
                ("delay_ms".into(), ParamValue::Int(20)),
                ("jitter_ms".into(), ParamValue::Int(3)),
                ("duration_ms".into(), ParamValue::Int(30_000)),
                ("nodes".into(), ParamValue::Text("all".into())),
            ],
        })
        .blocking(),
        Chapter::narrate(
            "Slow Redis: detect",
            "Every node's round trip to Redis rises past its bound at once. Nothing is down and no count is wrong: the flushes still land well inside their stall limit.",
        )
        .expect_violation(REDIS_LATENCY),
        Chapter::narrate("Slow Redis: diagnose", "One slow node, or the store they all share?")
            .on_enter(OnEnter::Diagnose)
            .expect_diagnosis(REDIS_LATENCY, Component::Named("redis".into()))
            .blocking(),
        Chapter::narrate("Recovery", "The delay is removed from the open connections at once; the round trips fall back.")
            .on_enter(OnEnter::Recover)
            .blocking(),
        Chapter::narrate(
            "Cut off: inject",
            "Now one node alone loses Redis: its route swallows every byte both ways and holds the connections open, as a dead link would. Redis itself is fine, and so are the other nodes.",
        )
        .on_enter(OnEnter::Chaos {
            action: PARTITION.into(),
            params: vec![
                ("node".into(), ParamValue::Int(0)),
                ("duration_ms".into(), ParamValue::Int(30_000)),
            ],
        })
        .blocking(),
        Chapter::narrate(
            "Cut off: detect",
            "The node still answers its clients, but its Redis pings time out while Redis answers everyone else. In cached mode it keeps admitting on its local view, so its counts drift from Redis's.",
        )
        .expect_violation(NODE_CUT_OFF),
        Chapter::narrate("Cut off: diagnose", "Redis, or the one node?")
            .on_enter(OnEnter::Diagnose)
            .expect_diagnosis(NODE_CUT_OFF, Component::ChaosTarget)
            .blocking(),
        Chapter::narrate("Recovery", "The link is restored: the held bytes flow, the node's pending flushes land exactly once and its counts agree with Redis again.")
            .on_enter(OnEnter::Recover)
            .blocking(),
        Chapter::narrate(
            "Redis freeze: inject",
            "Freeze Redis itself: SIGSTOP of redis-server (docker pause of its container in compose). It stops answering anything, reads included.",
        )
        .on_enter(OnEnter::Chaos {
            action: REDIS_FREEZE.into(),
            params: vec![],
        })
        .blocking(),
        Chapter::narrate(
            "Redis freeze: detect",
            "Every node loses Redis at once; the plugin's own pings time out too.",
        )
        .expect_violation(REDIS_DOWN),
        Chapter::narrate("Redis freeze: diagnose", "A shared dependency, or the nodes?")
            .on_enter(OnEnter::Diagnose)
            .expect_diagnosis(REDIS_DOWN, Component::Named("redis".into()))
            .blocking(),
        Chapter::narrate("Recovery", "SIGCONT (docker unpause): Redis answers again and the nodes reconnect.")
            .on_enter(OnEnter::Recover)
            .blocking(),
        Chapter::narrate(
            "Done",
            "Both anomalies came from real faults acting on the cached mode's documented trade-off. Run with mode=strict and neither can happen: every check is one atomic script and the node fails closed.",
        ),
    ]
}

fn chaos_actions() -> Vec<ChaosAction> {
    vec![
        ChaosAction {
            id: REDIS_PAUSE.into(),
            name: "Pause Redis writes".into(),
            kind: ChaosKind::RedisPause,
            description: "CLIENT PAUSE <duration_ms> WRITE: reads go on, writes block until the pause ends or is recovered (CLIENT UNPAUSE).".into(),
            params: vec![ParamSpec {
                name: "duration_ms".into(),
                description: "how long Redis blocks writes".into(),
                kind: ParamKind::DurationMs,
                default: ParamValue::Int(5000),
                min: Some(100.0),
                max: Some(60_000.0),
                unit: "ms".into(),
            }],
            recovery: Recovery::SelfRecovering,
        },
        ChaosAction {
            id: BURST.into(),
            name: "Burst of checks".into(),
            kind: ChaosKind::BurstTraffic,
            description: "multiplier × limit concurrent checks on a fresh key with the demo limit, round-robin over the nodes, inside one window.".into(),
            params: vec![ParamSpec {
                name: "multiplier".into(),
                description: "checks sent, as a multiple of the limit".into(),
                kind: ParamKind::Float,
                default: ParamValue::Float(2.0),
                min: Some(1.0),
                max: Some(10.0),
                unit: "x".into(),
            }],
            recovery: Recovery::SelfRecovering,
        },
        ChaosAction {
            id: NODE_KILL.into(),
            name: "Kill a node".into(),
            kind: ChaosKind::ProcessKill,
            description: "SIGKILL a node process (docker kill in compose); recover restarts it on the same port.".into(),
            params: vec![ParamSpec {
                name: "node".into(),
                description: "which node (1-3); 0 picks one at random".into(),
                kind: ParamKind::Integer,
                default: ParamValue::Int(0),
                min: Some(0.0),
                max: Some(3.0),
                unit: String::new(),
            }],
            recovery: Recovery::ExplicitRecover,
        },
        ChaosAction {
            id: REDIS_LATENCY_ACTION.into(),
            name: "Slow Redis link".into(),
            kind: ChaosKind::Custom("network latency".into()),
            description: "Redis's answers reach the chosen nodes delay_ms ± jitter_ms late, through each node's route of the fault proxy (env=local); open connections included. Ends by itself after duration_ms, or when recovered.".into(),
            params: vec![
                ParamSpec {
                    name: "delay_ms".into(),
                    description: "added to every round trip to Redis".into(),
                    kind: ParamKind::Integer,
                    default: ParamValue::Int(20),
                    min: Some(1.0),
                    max: Some(10_000.0),
                    unit: "ms".into(),
                },
                ParamSpec {
                    name: "jitter_ms".into(),
                    description: "uniform spread around the delay (at most the delay)".into(),
                    kind: ParamKind::Integer,
                    default: ParamValue::Int(3),
                    min: Some(0.0),
                    max: Some(10_000.0),
                    unit: "ms".into(),
                },
                ParamSpec {
                    name: "duration_ms".into(),
                    description: "how long the delay lasts".into(),
                    kind: ParamKind::DurationMs,
                    default: ParamValue::Int(15_000),
                    min: Some(100.0),
                    max: Some(600_000.0),
                    unit: "ms".into(),
                },
                ParamSpec {
                    name: "nodes".into(),
                    description: "which nodes' links: all, or numbers joined by commas (1,3)".into(),
                    kind: ParamKind::Text,
                    default: ParamValue::Text("all".into()),
                    min: None,
                    max: None,
                    unit: String::new(),
                },
            ],
            recovery: Recovery::SelfRecovering,
        },
        ChaosAction {
            id: PARTITION.into(),
            name: "Cut a node off from Redis".into(),
            kind: ChaosKind::Custom("network partition".into()),
            description: "A blackhole on one node's route to Redis, both directions (env=local): the node's Redis calls get no answer while the connections stay open; Redis and the other nodes are untouched. Ends by itself after duration_ms, or when recovered.".into(),
            params: vec![
                ParamSpec {
                    name: "node".into(),
                    description: "which node (1-3); 0 picks one at random".into(),
                    kind: ParamKind::Integer,
                    default: ParamValue::Int(0),
                    min: Some(0.0),
                    max: Some(3.0),
                    unit: String::new(),
                },
                ParamSpec {
                    name: "duration_ms".into(),
                    description: "how long the node stays cut off".into(),
                    kind: ParamKind::DurationMs,
                    default: ParamValue::Int(15_000),
                    min: Some(100.0),
                    max: Some(600_000.0),
                    unit: "ms".into(),
                },
            ],
            recovery: Recovery::SelfRecovering,
        },
        ChaosAction {
            id: REDIS_FREEZE.into(),
            name: "Freeze Redis".into(),
            kind: ChaosKind::Custom("process freeze".into()),
            description: "SIGSTOP the redis-server process (docker pause of its container in compose): Redis answers nothing until recovered (SIGCONT / docker unpause).".into(),
            params: vec![],
            recovery: Recovery::ExplicitRecover,
        },
    ]
}

fn diagnosis() -> DiagnosisContext {
    let mut components: Vec<ComponentInfo> = (1..=3)
        .map(|i| ComponentInfo {
            name: format!("node-{i}"),
            kind: ComponentKind::Member,
            description: "a rate limiter node: answers POST /check; in cached mode counts locally and flushes increments to Redis in batches".into(),
            depends_on: vec!["redis".into()],
        })
        .collect();
    components.push(ComponentInfo {
        name: "redis".into(),
        kind: ComponentKind::Dependency,
        description:
            "the store: holds the limits, the shared per-window counters and the node registry"
                .into(),
        depends_on: Vec::new(),
    });
    let term = |term: &str, meaning: &str, class: Option<AnomalyClass>| GlossaryEntry {
        term: term.into(),
        meaning: meaning.into(),
        class,
    };
    DiagnosisContext {
        system: "A distributed rate limiter: three nodes decide whether a request under a key is allowed within a per-key limit per window, sharing counts through Redis.".into(),
        components,
        glossary: vec![
            // Before `counter drift`, which shares its class: a cut-off node's
            // counts drift too, and the diagnosis should name the cause.
            term(NODE_CUT_OFF, "a node that answers its clients but cannot reach Redis while Redis answers the others; it decides on its local view, so its counts drift from the shared ones", Some(AnomalyClass::StateDivergence)),
            term(COUNTER_DRIFT, "the shared counter in Redis and the sum of the nodes' acknowledged increments disagree beyond a tolerance, because flushes to Redis fail or stall", Some(AnomalyClass::StateDivergence)),
            term(GHOST_ALLOWING, "the nodes together allowed more checks within one window than the key's limit, because each decided against a stale shared count", Some(AnomalyClass::BoundExceeded)),
            term(NODE_DOWN, "a rate limiter node does not answer", Some(AnomalyClass::NodeDown)),
            term(REDIS_DOWN, "Redis, the shared store of every node, does not answer", Some(AnomalyClass::DependencyDown)),
            term(REDIS_LATENCY, "the nodes' round trip to Redis (a PING each poll, median over the last five) is above its bound; on every node at once it is Redis or the way to it, on some nodes only their links", Some(AnomalyClass::LatencySpike)),
            term(CONSERVATION, "allowed + denied + errors reported by a node differ from the checks the client sent it", Some(AnomalyClass::Accounting)),
            term("partitioned", "a node whose last flush to Redis failed or timed out; it serves from its local counts", None),
            term("flush", "a node's batched write of pending increments to Redis (cached mode)", None),
            term("CLIENT PAUSE WRITE", "a Redis command that blocks every write command for a while but lets reads through", None),
            term("redis rtt", "a node's round trip to Redis: the median of its last five PINGs", None),
        ],
    }
}

fn prerequisite(binary: &str, why: &str, environment: &str, optional: bool) -> Prerequisite {
    Prerequisite {
        binary: binary.into(),
        why: why.into(),
        environments: vec![environment.into()],
        optional,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_the_host_relies_on() {
        let d = description();
        let action = |id: &str| d.chaos_actions.iter().find(|a| a.id == id).unwrap().clone();
        let pause = action(REDIS_PAUSE);
        assert_eq!(
            (pause.kind, pause.recovery),
            (ChaosKind::RedisPause, Recovery::SelfRecovering)
        );
        assert_eq!(
            (pause.params[0].min, pause.params[0].max),
            (Some(100.0), Some(60_000.0))
        );
        assert_eq!(pause.params[0].default, ParamValue::Int(5000));
        let burst = action(BURST);
        assert_eq!(
            (burst.kind, burst.recovery),
            (ChaosKind::BurstTraffic, Recovery::SelfRecovering)
        );
        assert_eq!(burst.params[0].default, ParamValue::Float(2.0));
        let kill = action(NODE_KILL);
        assert_eq!(
            (kill.kind, kill.recovery),
            (ChaosKind::ProcessKill, Recovery::ExplicitRecover)
        );
        assert_eq!(
            (kill.params[0].min, kill.params[0].max),
            (Some(0.0), Some(3.0))
        );
        let class = |t: &str| {
            d.diagnosis
                .glossary
                .iter()
                .find(|g| g.term == t)
                .and_then(|g| g.class)
        };
        assert_eq!(class(COUNTER_DRIFT), Some(AnomalyClass::StateDivergence));
        assert_eq!(class(GHOST_ALLOWING), Some(AnomalyClass::BoundExceeded));
        assert_eq!(class(NODE_DOWN), Some(AnomalyClass::NodeDown));
        assert_eq!(class(REDIS_DOWN), Some(AnomalyClass::DependencyDown));
        let expected: Vec<&str> = d
            .chapters
            .iter()
            .filter_map(|c| c.expect_violation.as_deref())
            .collect();
        assert_eq!(
            expected,
            vec![
                COUNTER_DRIFT,
                GHOST_ALLOWING,
                NODE_DOWN,
                REDIS_LATENCY,
                NODE_CUT_OFF,
                REDIS_DOWN
            ]
        );
        let diag: Vec<&ExpectedDiagnosis> = d
            .chapters
            .iter()
            .filter_map(|c| c.expect_diagnosis.as_ref())
            .collect();
        assert_eq!(diag[0].component, Component::Named("redis".into()));
        assert_eq!(diag[1].anomaly, GHOST_ALLOWING);
        assert_eq!(
            (diag[2].anomaly.as_str(), &diag[2].component),
            (NODE_DOWN, &Component::ChaosTarget)
        );
        assert_eq!(
            (diag[3].anomaly.as_str(), &diag[3].component),
            (REDIS_LATENCY, &Component::Named("redis".into()))
        );
        assert_eq!(
            (diag[4].anomaly.as_str(), &diag[4].component),
            (NODE_CUT_OFF, &Component::ChaosTarget)
        );
        assert_eq!(diag[5].component, Component::Named("redis".into()));
        let freeze = action(REDIS_FREEZE);
        assert_eq!(freeze.recovery, Recovery::ExplicitRecover);
        // Every invariant class has a glossary term, and each expected
        // anomaly is one: the diagnosis can only name glossary terms.
        assert_eq!(class(REDIS_LATENCY), Some(AnomalyClass::LatencySpike));
        assert_eq!(class(NODE_CUT_OFF), Some(AnomalyClass::StateDivergence));
        for d in &diag {
            assert!(
                class(&d.anomaly).is_some(),
                "{} is a glossary term",
                d.anomaly
            );
        }
        // A cut-off node's counts drift too: its term comes first of its class,
        // so that the diagnosis names the cause when both are violated.
        let divergence: Vec<&str> = d
            .diagnosis
            .glossary
            .iter()
            .filter(|g| g.class == Some(AnomalyClass::StateDivergence))
            .map(|g| g.term.as_str())
            .collect();
        assert_eq!(divergence, vec![NODE_CUT_OFF, COUNTER_DRIFT]);
        for (id, params) in [
            (
                REDIS_LATENCY_ACTION,
                vec!["delay_ms", "jitter_ms", "duration_ms", "nodes"],
            ),
            (PARTITION, vec!["node", "duration_ms"]),
        ] {
            let a = action(id);
            assert_eq!(a.recovery, Recovery::SelfRecovering, "{id}");
            let names: Vec<&str> = a.params.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names, params, "{id}");
        }
    }
}
