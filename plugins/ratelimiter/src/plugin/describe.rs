//! What `demo-host inspect` shows: chapters, chaos actions and vocabulary.

use super::invariants::{CONSERVATION, COUNTER_DRIFT, GHOST_ALLOWING, NODE_DOWN, REDIS_DOWN};
use plugin_api::*;

pub const REDIS_PAUSE: &str = "redis-pause";
pub const BURST: &str = "burst";
pub const NODE_KILL: &str = "node-kill";
pub const REDIS_FREEZE: &str = "redis-freeze";
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
            term(COUNTER_DRIFT, "the shared counter in Redis and the sum of the nodes' acknowledged increments disagree beyond a tolerance, because flushes to Redis fail or stall", Some(AnomalyClass::StateDivergence)),
            term(GHOST_ALLOWING, "the nodes together allowed more checks within one window than the key's limit, because each decided against a stale shared count", Some(AnomalyClass::BoundExceeded)),
            term(NODE_DOWN, "a rate limiter node does not answer", Some(AnomalyClass::NodeDown)),
            term(REDIS_DOWN, "Redis, the shared store of every node, does not answer", Some(AnomalyClass::DependencyDown)),
            term(CONSERVATION, "allowed + denied + errors reported by a node differ from the checks the client sent it", Some(AnomalyClass::Accounting)),
            term("partitioned", "a node whose last flush to Redis failed or timed out; it serves from its local counts", None),
            term("flush", "a node's batched write of pending increments to Redis (cached mode)", None),
            term("CLIENT PAUSE WRITE", "a Redis command that blocks every write command for a while but lets reads through", None),
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
            vec![COUNTER_DRIFT, GHOST_ALLOWING, NODE_DOWN, REDIS_DOWN]
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
        assert_eq!(diag[3].component, Component::Named("redis".into()));
        let freeze = action(REDIS_FREEZE);
        assert_eq!(freeze.recovery, Recovery::ExplicitRecover);
    }
}
