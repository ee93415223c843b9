//! The rate limiter in its compose environment on this machine's Docker
//! engine: the local images (docker/build-images.sh), the compose project,
//! container chaos through the Docker API (docker-chaos, bollard), the
//! headless demo against the containers, and a `down` that leaves nothing.
//! Where no Docker engine answers, each test says so in one line and passes.

use demo_host::leftovers::Leftover;
use demo_host::plugin::loader::Loader;
use demo_host::plugin::session::{Session, Timeouts};
use docker_chaos::{Engine, Selector, Undo};
use e2e_tests::docker::{
    build_local_images, engine_answers, http_get, redis_command, ComposeProject,
};
use e2e_tests::procs::{free_port, wait_until, ChildGuard};
use e2e_tests::*;
use plugin_api::ParamValue;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One compose project at a time: the demo's timing should not compete with another cluster.
use e2e_tests::ALONE as SERIAL;

const NODES: [&str; 3] = [
    "ratelimiter-node-1",
    "ratelimiter-node-2",
    "ratelimiter-node-3",
];
const PROBE: Duration = Duration::from_millis(800);

/// The rate limiter project on free loopback ports, with the local images.
struct Cluster {
    project: ComposeProject,
    redis_port: u16,
    node_ports: Vec<u16>,
    /// The fault proxy's HTTP API.
    proxy_port: u16,
    /// The standby Redis (failover-redis).
    standby_port: u16,
}

impl Cluster {
    fn up() -> Cluster {
        build_local_images();
        let redis_port = free_port();
        let node_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let proxy_port = free_port();
        let standby_port = free_port();
        let file = workspace_root().join("compose/ratelimiter/docker-compose.yml");
        let mut env = vec![
            (
                "REDIS_IMAGE".to_string(),
                "demo-host/redis:local".to_string(),
            ),
            (
                "RATELIMITER_IMAGE".to_string(),
                "demo-host/ratelimiter-node:local".to_string(),
            ),
            (
                "FAULT_PROXY_IMAGE".to_string(),
                "demo-host/fault-proxy:local".to_string(),
            ),
            ("RL_REDIS_PORT".to_string(), redis_port.to_string()),
            ("RL_PROXY_PORT".to_string(), proxy_port.to_string()),
            ("RL_STANDBY_PORT".to_string(), standby_port.to_string()),
        ];
        for (i, port) in node_ports.iter().enumerate() {
            env.push((format!("RL_NODE{}_PORT", i + 1), port.to_string()));
        }
        let mut project = ComposeProject::new("rltest", &file, env);
        project
            .env
            .push(("RL_CONTAINER_PREFIX".to_string(), project.name.clone()));
        let started = Instant::now();
        project
            .compose(&["up", "-d", "--no-build"])
            .unwrap_or_else(|e| panic!("{e}"));
        let cluster = Cluster {
            project,
            redis_port,
            node_ports,
            proxy_port,
            standby_port,
        };
        cluster.assert_healthy(Duration::from_secs(60), "after up");
        assert!(
            wait_until(Duration::from_secs(30), || {
                ratelimiter_node::cluster::replica_synced(cluster.standby_port)
            }),
            "the standby redis did not sync from redis:\n{}",
            cluster.logs(20)
        );
        eprintln!(
            "compose project {} up and healthy in {:?}",
            cluster.project.name,
            started.elapsed()
        );
        cluster
    }

    fn node_ok(&self, i: usize) -> bool {
        http_get(self.node_ports[i], "/health", PROBE)
            .is_some_and(|(status, body)| status == 200 && body.contains(r#""status":"ok""#))
    }

    fn redis_ok(&self) -> bool {
        redis_command(self.redis_port, "PING", PROBE).is_some_and(|r| r == "+PONG")
    }

    /// Waits until Redis answers and every node reports `ok` (it reached Redis by its service name).
    fn assert_healthy(&self, limit: Duration, when: &str) {
        let healthy = wait_until(limit, || self.redis_ok() && (0..3).all(|i| self.node_ok(i)));
        if !healthy {
            panic!(
                "cluster {} not healthy {when} within {limit:?}: redis {} nodes {:?}\n{}",
                self.project.name,
                self.redis_ok(),
                (0..3).map(|i| self.node_ok(i)).collect::<Vec<_>>(),
                self.logs(20)
            );
        }
    }

    /// The last `lines` of each container's log, for a failure message.
    fn logs(&self, lines: u32) -> String {
        self.project
            .compose(&["logs", "--no-color", "--tail", &lines.to_string()])
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_else(|e| e)
    }

    /// The plugin's `env=compose` config for this project.
    fn plugin_config(&self) -> String {
        let nodes: Vec<String> = self
            .node_ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        let containers: Vec<String> = (1..=3)
            .map(|i| format!("{}-node-{i}", self.project.name))
            .collect();
        format!(
            "env=compose,redis=redis://127.0.0.1:{},nodes={},containers={},proxy_api=http://127.0.0.1:{},standby=redis://127.0.0.1:{}",
            self.redis_port,
            nodes.join("+"),
            containers.join("+"),
            self.proxy_port,
            self.standby_port
        )
    }

    /// Brings the project down and asserts that no container, network or volume of it remains.
    fn down_leaving_nothing(self) {
        let started = Instant::now();
        self.project.down().unwrap_or_else(|e| panic!("{e}"));
        let left = self.project.leftovers();
        assert!(left.is_empty(), "left behind by down: {left:?}");
        eprintln!(
            "compose project {} down in {:?}",
            self.project.name,
            started.elapsed()
        );
    }
}

/// True (after one loud line) when no Docker engine answers. The line goes to the
/// real stderr, past the test harness's capture, so a skip is seen in every run.
fn skip_without_engine(test: &str) -> bool {
    match engine_answers() {
        Ok(()) => false,
        Err(why) => {
            docker_chaos::standin::skip(test, format!("no Docker engine answers: {why}"));
            true
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn container_chaos_through_the_docker_api_is_undone_from_its_record() {
    if skip_without_engine("container_chaos_through_the_docker_api_is_undone_from_its_record") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let cluster = Cluster::up();
    let name = cluster.project.name.clone();
    let rt = runtime();
    let engine = rt
        .block_on(Engine::connect())
        .expect("the engine answers the Docker API");
    let running = rt
        .block_on(engine.find_running(&Selector::project(&name)))
        .unwrap();
    assert_eq!(
        running.len(),
        6,
        "redis, its standby, three nodes and the fault proxy run: {running:?}"
    );

    // SIGKILL node-2; the record alone (as a later process would read it) restarts it.
    let node2 = rt
        .block_on(engine.find_running(&Selector::service(&name, NODES[1])))
        .unwrap()
        .remove(0);
    let record = rt.block_on(engine.kill(&node2)).unwrap().to_json();
    assert!(
        wait_until(Duration::from_secs(20), || !cluster.node_ok(1)),
        "node-2 stops answering after SIGKILL"
    );
    assert!(
        cluster.node_ok(0) && cluster.node_ok(2),
        "the other nodes keep serving"
    );
    let stopped = rt.block_on(engine.inspect(&node2.id)).unwrap();
    assert!(
        !stopped.running,
        "node-2's container is not running: {}",
        stopped.state
    );
    let later = rt.block_on(Engine::connect()).unwrap();
    rt.block_on(later.undo(&Undo::from_json(&record).unwrap(), Duration::from_secs(30)))
        .unwrap();
    cluster.assert_healthy(Duration::from_secs(30), "after node-2 was restarted");

    // Freeze Redis: it stops answering and the nodes report it; unpausing from the record heals both.
    let redis = rt
        .block_on(engine.find_running(&Selector::service(&name, "redis")))
        .unwrap()
        .remove(0);
    let record = rt.block_on(engine.pause(&redis)).unwrap().to_json();
    assert!(
        rt.block_on(engine.inspect(&redis.id)).unwrap().paused,
        "redis is paused"
    );
    assert!(!cluster.redis_ok(), "a paused redis does not answer PING");
    assert!(
        wait_until(Duration::from_secs(20), || !cluster.node_ok(0)),
        "node-1 reports redis unreachable while it is paused"
    );
    rt.block_on(later.undo(&Undo::from_json(&record).unwrap(), Duration::from_secs(30)))
        .unwrap();
    cluster.assert_healthy(Duration::from_secs(30), "after redis was unpaused");

    cluster.down_leaving_nothing();
}

#[test]
fn the_headless_demo_passes_against_the_compose_cluster_with_every_fix_and_leaves_it_healthy() {
    if skip_without_engine(
        "the_headless_demo_passes_against_the_compose_cluster_with_every_fix_and_leaves_it_healthy",
    ) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let lib = plugin_library("ratelimiter");
    let cluster = Cluster::up();
    let config = cluster.plugin_config();
    let state = tempfile::tempdir().unwrap();
    let journal_path = state.path().join("journal.json");
    let started = Instant::now();
    let out = demo_host(state.path())
        .args([
            "run",
            "--headless",
            "--no-build",
            "--countdown",
            "0",
            "--remediate",
            "auto",
            "--plugin",
        ])
        .arg(&lib)
        .args(["--config", &config, "--journal"])
        .arg(&journal_path)
        .stdin(Stdio::null())
        .output()
        .expect("demo-host runs");
    let tail = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        out.status.success(),
        "demo-host exit {}:\n{}\n{}\ncontainer logs:\n{}",
        out.status,
        tail(&out.stdout),
        tail(&out.stderr),
        cluster.logs(40)
    );
    eprintln!(
        "headless demo against compose passed in {:?}",
        started.elapsed()
    );

    let journal: Value = serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    assert_eq!(journal["outcome"], "passed", "{:#}", journal["failures"]);
    // CLIENT PAUSE WRITE, the burst, a node container killed, a slow Redis and
    // a node cut off through the proxy container, the Redis container paused.
    let actions: Vec<&str> = journal["chaos_windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["action_id"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "redis-pause",
            "burst",
            "node-kill",
            "redis-latency",
            "partition",
            "redis-freeze"
        ]
    );
    for anomaly in [
        "counter drift",
        "ghost allowing",
        "node down",
        "redis latency",
        "node cut off",
        "redis down",
    ] {
        let detected = journal["detections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["invariant"] == anomaly && d["detected_ms"].is_u64());
        assert!(detected, "{anomaly} detected: {:#}", journal["detections"]);
    }
    assert!(
        journal["chaos_windows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["ended_ms"].is_u64()),
        "every fault ended"
    );
    // With --remediate auto, every anomaly got a fix that resolved it while
    // its fault was in effect (the standby container for Redis, a restarted
    // container for the node), and was put back after.
    let unfixed = unfixed_anomalies(&journal);
    assert!(
        unfixed.is_empty(),
        "no resolved fix for {unfixed:?}: {:#}",
        journal["remedies"]
    );
    assert_eq!(
        role(cluster.standby_port),
        "slave",
        "the standby replicates redis again after the demo"
    );

    // The cluster is healthy again: Redis takes writes (no CLIENT PAUSE left), every container runs.
    assert!(
        redis_command(cluster.redis_port, "SET e2e:probe 1", PROBE).is_some_and(|r| r == "+OK"),
        "redis accepts writes"
    );
    cluster.assert_healthy(Duration::from_secs(30), "after the demo");
    let rt = runtime();
    let engine = rt.block_on(Engine::connect()).unwrap();
    let live = rt
        .block_on(engine.find(&Selector::project(&cluster.project.name)))
        .unwrap();
    assert!(
        live.len() == 6 && live.iter().all(|c| c.is_live()),
        "all six containers run: {live:?}"
    );
    // No fault is left on the proxy container's routes.
    let routes = http_get(cluster.proxy_port, "/routes", PROBE).expect("the proxy answers");
    assert!(
        routes.0 == 200 && !routes.1.contains(r#""kind""#),
        "no fault left on the proxy: {routes:?}"
    );

    cluster.down_leaving_nothing();
}

#[test]
fn a_node_container_killed_under_a_dead_host_is_restarted_by_the_next_start() {
    if skip_without_engine(
        "a_node_container_killed_under_a_dead_host_is_restarted_by_the_next_start",
    ) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let lib = plugin_library("ratelimiter");
    let host = profile_dir().join("demo-host");
    if !host.exists() {
        cargo_build(&workspace_root(), &["-p", "demo-host"], &target_dir(), &[]);
    }
    let cluster = Cluster::up();
    let config = cluster.plugin_config();
    let state = tempfile::tempdir().unwrap();

    // The plugin kills node-2's container; its host then dies before recovering:
    // the record on disk holds the plugin's own undo and a pid that is gone.
    let rt = runtime();
    // The session stays alive until the end: dropping it would let the plugin clean up as a live host does.
    let loader = Loader::new();
    let plugin = loader.load(&lib).expect("the rate limiter plugin loads");
    let (session, fault) = rt.block_on(async {
        let session = Session::create(plugin, &config, Timeouts::default(), |_, _| {})
            .await
            .unwrap();
        session.setup().await.unwrap();
        let fault = session
            .inject("node-kill", vec![("node".into(), ParamValue::Int(2))])
            .await
            .unwrap();
        (session, fault)
    });
    assert!(
        wait_until(Duration::from_secs(20), || !cluster.node_ok(1)),
        "node-kill took node-2 down"
    );
    let record_path = recovered_by_the_next_start(&host, &lib, &config, state.path(), fault);
    let engine = rt.block_on(Engine::connect()).unwrap();
    let node2 = rt
        .block_on(engine.find(&Selector::service(&cluster.project.name, NODES[1])))
        .unwrap()
        .remove(0);
    assert!(
        node2.is_live(),
        "node-2's container runs again: {}",
        node2.state
    );
    cluster.assert_healthy(Duration::from_secs(30), "after leftover recovery");
    let left = std::fs::read_to_string(&record_path).unwrap();
    assert!(!left.contains("node-kill"), "the record is cleared: {left}");

    drop(session);
    cluster.down_leaving_nothing();
}

#[test]
fn a_node_cut_off_under_a_dead_host_is_healed_by_the_next_start_through_the_proxy_api() {
    if skip_without_engine(
        "a_node_cut_off_under_a_dead_host_is_healed_by_the_next_start_through_the_proxy_api",
    ) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let lib = plugin_library("ratelimiter");
    let host = demo_host_binary();
    let cluster = Cluster::up();
    let config = cluster.plugin_config();
    let state = tempfile::tempdir().unwrap();
    let faults_on_proxy = || {
        http_get(cluster.proxy_port, "/routes", PROBE)
            .map(|(_, body)| body.matches(r#""kind""#).count())
            .unwrap_or(usize::MAX)
    };
    let node3_reaches_redis = || {
        http_get(cluster.node_ports[2], "/health", PROBE)
            .is_some_and(|(_, b)| b.contains(r#""redis_reachable":true"#))
    };

    // The plugin cuts node-3 off through the proxy container; its host then
    // dies before recovering: the container keeps the fault.
    let rt = runtime();
    let loader = Loader::new();
    let plugin = loader.load(&lib).expect("the rate limiter plugin loads");
    let (session, fault) = rt.block_on(async {
        let session = Session::create(plugin, &config, Timeouts::default(), |_, _| {})
            .await
            .unwrap();
        session.setup().await.unwrap();
        let fault = session
            .inject(
                "partition",
                vec![
                    ("node".into(), ParamValue::Int(3)),
                    ("duration_ms".into(), ParamValue::Int(600_000)),
                ],
            )
            .await
            .unwrap();
        (session, fault)
    });
    assert_eq!(faults_on_proxy(), 1, "the cut is on the proxy container");
    assert!(
        wait_until(Duration::from_secs(10), || !node3_reaches_redis()),
        "node-3 loses redis"
    );
    let record_path = recovered_by_the_next_start(&host, &lib, &config, state.path(), fault);
    assert_eq!(faults_on_proxy(), 0, "the fault is off the proxy container");
    assert!(
        wait_until(Duration::from_secs(10), node3_reaches_redis),
        "node-3 reaches redis again"
    );
    let left = std::fs::read_to_string(&record_path).unwrap();
    assert!(!left.contains("partition"), "the record is cleared: {left}");

    drop(session);
    cluster.down_leaving_nothing();
}

#[test]
fn demo_host_up_and_down_manage_the_compose_project() {
    if skip_without_engine("demo_host_up_and_down_manage_the_compose_project") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    build_local_images();
    let lib = plugin_library("ratelimiter");
    let file = workspace_root().join("compose/ratelimiter/docker-compose.yml");
    // The guard brings the project down if the test fails half way; demo-host does the real work.
    let guard = ComposeProject::new("rlup", &file, Vec::new());
    let (redis_port, node_ports) = (free_port(), [free_port(), free_port(), free_port()]);
    let (proxy_port, standby_port) = (free_port(), free_port());
    let nodes: Vec<String> = node_ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let containers: Vec<String> = (1..=3)
        .map(|i| format!("{}-node-{i}", guard.name))
        .collect();
    let config = format!(
        "env=compose,project={},redis=redis://127.0.0.1:{redis_port},nodes={},containers={},proxy_api=http://127.0.0.1:{proxy_port},standby=redis://127.0.0.1:{standby_port}",
        guard.name,
        nodes.join("+"),
        containers.join("+")
    );
    let state = tempfile::tempdir().unwrap();
    let run = |verb: &str| {
        demo_host(state.path())
            .args([verb, "--no-build", "--plugin"])
            .arg(&lib)
            .args(["--config", &config])
            .stdin(Stdio::null())
            .output()
            .expect("demo-host runs")
    };

    let up = run("up");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&up.stdout),
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(up.status.success(), "demo-host up failed:\n{said}");
    assert!(said.contains("is up"), "{said}");
    for (i, port) in node_ports.iter().enumerate() {
        let health = http_get(*port, "/health", PROBE);
        assert!(
            health
                .as_ref()
                .is_some_and(|(s, b)| *s == 200 && b.contains(r#""status":"ok""#)),
            "node-{} answers healthy after up: {health:?}",
            i + 1
        );
    }
    let names = guard
        .compose(&["ps", "-q"])
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count());
    assert_eq!(
        names,
        Ok(6),
        "redis, its standby, three nodes and the fault proxy run in the project"
    );

    let down = run("down");
    assert!(
        down.status.success(),
        "demo-host down failed:\n{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let left = guard.leftovers();
    assert!(left.is_empty(), "left behind by demo-host down: {left:?}");
}

/// What a SIGKILLed host leaves: `fault` recorded under a pid that is gone.
/// The next start (headless, `--recover-leftovers`) must say it recovered it;
/// it is killed then, since the demo it would go on to play is not the test's.
/// Returns the leftovers file, for the caller to check it was cleared.
fn recovered_by_the_next_start(
    host: &Path,
    lib: &Path,
    config: &str,
    state: &Path,
    fault: plugin_api::ActiveFault,
) -> std::path::PathBuf {
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let record = vec![Leftover {
        subject: "ratelimiter".into(),
        config: config.to_string(),
        fault,
        host_pid: dead_pid,
    }];
    let record_path = state.join("leftover-faults.json");
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();

    let spawned = Command::new(host)
        .args([
            "run",
            "--headless",
            "--no-build",
            "--countdown",
            "0",
            "--recover-leftovers",
            "--plugin",
        ])
        .arg(lib)
        .args(["--config", config, "--journal"])
        .arg(state.join("journal.json"))
        .env("DEMO_HOST_STATE_DIR", state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("demo-host runs");
    // Killed once it has recovered (or on failure): the demo it would go on to play is not this test's.
    let mut next = ChildGuard(spawned);
    let mut said = Vec::new();
    for l in BufReader::new(next.0.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        let done = l.contains("recovered") || l.contains("could not recover");
        said.push(l);
        if done {
            break;
        }
    }
    drop(next);
    assert!(
        said.iter()
            .any(|l| l.contains("recovered") && !l.contains("could not")),
        "the next start recovered the leftover: {said:?}"
    );
    record_path
}

// ---------------------------------------------------------------------------
// Remedies in compose (issue 15): failover-redis promotes the standby
// container and fails back, restart-node restarts a killed node container.
// Each runs while its fault is still in effect, and the invariant it
// addresses must come back to ok.
// ---------------------------------------------------------------------------

/// The rate limiter plugin loaded and set up against the project (the
/// loader is returned to outlive the session).
fn set_up(rt: &tokio::runtime::Runtime, lib: &Path, config: &str) -> (Loader, Session) {
    let loader = Loader::new();
    let plugin = loader.load(lib).expect("the rate limiter plugin loads");
    let session = rt
        .block_on(Session::create(
            plugin,
            config,
            Timeouts::default(),
            |_, _| {},
        ))
        .unwrap();
    rt.block_on(session.setup()).unwrap();
    (loader, session)
}

/// Polls the plugin's health until `invariant` has `status`, or fails the test.
fn wait_invariant(
    rt: &tokio::runtime::Runtime,
    session: &Session,
    invariant: &str,
    status: plugin_api::InvariantStatus,
    limit: Duration,
) {
    let mut last = None;
    let reached = wait_until(limit, || {
        let snap = rt.block_on(session.health()).expect("health answers");
        let i = snap.invariant(invariant).cloned();
        let hit = i.as_ref().is_some_and(|i| i.status == status);
        last = i;
        hit
    });
    assert!(
        reached,
        "{invariant} is not {status:?} within {limit:?}; last: {last:#?}"
    );
}

/// The Redis each node uses, from its admin endpoint.
fn nodes_redis(cluster: &Cluster) -> Vec<String> {
    cluster
        .node_ports
        .iter()
        .map(|p| {
            let (_, body) = http_get(*p, "/admin", PROBE).expect("the node's admin answers");
            let v: Value = serde_json::from_str(&body).expect("the admin view is JSON");
            v["redis"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

/// `master` or `slave`, from `ROLE` on a published Redis port (the first
/// element of its answer, whose first line `redis_command` does not show).
fn role(port: u16) -> &'static str {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("redis answers");
    s.set_read_timeout(Some(PROBE)).unwrap();
    s.write_all(b"ROLE\r\n").unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).expect("ROLE answers");
    let reply = String::from_utf8_lossy(&buf[..n]);
    match reply.lines().nth(2) {
        Some("slave") => "slave",
        Some("master") => "master",
        _ => panic!("ROLE on port {port}: {reply:?}"),
    }
}

#[test]
fn failover_redis_promotes_the_standby_container_while_redis_is_frozen_and_a_dead_hosts_record_fails_back(
) {
    let test =
        "failover_redis_promotes_the_standby_container_while_redis_is_frozen_and_a_dead_hosts_record_fails_back";
    if skip_without_engine(test) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let lib = plugin_library("ratelimiter");
    let host = demo_host_binary();
    let cluster = Cluster::up();
    let config = cluster.plugin_config();
    let state = tempfile::tempdir().unwrap();
    let rt = runtime();
    let routes = nodes_redis(&cluster);
    assert_eq!(
        routes,
        [
            "redis://fault-proxy:7001",
            "redis://fault-proxy:7002",
            "redis://fault-proxy:7003"
        ],
        "each node reaches redis through its own proxy route"
    );
    assert_eq!(
        role(cluster.standby_port),
        "slave",
        "the standby replicates"
    );

    let (_loader, session) = set_up(&rt, &lib, &config);
    rt.block_on(session.run_step("set-limit")).unwrap();
    use plugin_api::InvariantStatus::{Ok as Fine, Violated};
    wait_invariant(&rt, &session, "redis down", Fine, Duration::from_secs(20));
    wait_invariant(
        &rt,
        &session,
        "counter drift",
        Fine,
        Duration::from_secs(20),
    );
    // Replication is asynchronous: the limit must be on the standby before the freeze.
    assert!(
        wait_until(Duration::from_secs(10), || redis_command(
            cluster.standby_port,
            "HGET rl:limit:demo limit",
            PROBE
        )
        .is_some_and(|r| r.starts_with('$') && !r.starts_with("$-1"))),
        "the limit reached the standby"
    );

    let freeze = rt.block_on(session.inject("redis-freeze", vec![])).unwrap();
    wait_invariant(
        &rt,
        &session,
        "redis down",
        Violated,
        Duration::from_secs(20),
    );
    let fix = rt
        .block_on(session.remediate("failover-redis", vec![], ""))
        .unwrap_or_else(|e| panic!("failover-redis runs in compose: {e}"));
    assert!(
        fix.summary.contains("3 of 3 nodes repointed"),
        "{}",
        fix.summary
    );
    assert_eq!(
        nodes_redis(&cluster),
        vec!["redis://redis-standby:6379".to_string(); 3],
        "every node uses the standby by its service name"
    );
    assert_eq!(
        role(cluster.standby_port),
        "master",
        "the standby was promoted"
    );
    // The remedy's own deadline (verify_within_ms of failover-redis).
    wait_invariant(&rt, &session, "redis down", Fine, Duration::from_secs(10));
    wait_invariant(
        &rt,
        &session,
        "counter drift",
        Fine,
        Duration::from_secs(10),
    );
    let engine = rt.block_on(Engine::connect()).unwrap();
    let redis = rt
        .block_on(engine.find(&Selector::service(&cluster.project.name, "redis")))
        .unwrap()
        .remove(0);
    assert!(
        rt.block_on(engine.inspect(&redis.id)).unwrap().paused,
        "the fault is still in effect: the fix did not thaw redis"
    );

    // The host dies: the freeze is thawed (its own record), then the next
    // start fails back from the remedy's record alone.
    rt.block_on(session.recover(&freeze.fault_id)).unwrap();
    let record = plugin_api::ActiveFault {
        fault_id: format!("remedy:failover-redis-{}", freeze.started_ms),
        action_id: "remedy:failover-redis".into(),
        targets: vec![],
        summary: fix.summary.clone(),
        started_ms: freeze.started_ms,
        expires_ms: None,
        undo: fix.undo.clone(),
    };
    let record_path = recovered_by_the_next_start(&host, &lib, &config, state.path(), record);
    assert_eq!(
        nodes_redis(&cluster),
        routes,
        "each node is back on its own route"
    );
    assert_eq!(role(cluster.redis_port), "master");
    assert!(
        wait_until(Duration::from_secs(20), || {
            ratelimiter_node::cluster::replica_synced(cluster.standby_port)
        }),
        "the standby replicates redis again"
    );
    let left = std::fs::read_to_string(&record_path).unwrap();
    assert!(!left.contains("failover"), "the record is cleared: {left}");
    // This host's teardown finds the pair failed back already and leaves it so.
    rt.block_on(session.teardown()).unwrap();
    assert_eq!(nodes_redis(&cluster), routes);
    assert_eq!(role(cluster.standby_port), "slave");
    cluster.assert_healthy(Duration::from_secs(30), "after the fail-back");

    drop(session);
    cluster.down_leaving_nothing();
}

#[test]
fn restart_node_restarts_a_killed_node_container_while_the_kill_is_in_effect() {
    if skip_without_engine(
        "restart_node_restarts_a_killed_node_container_while_the_kill_is_in_effect",
    ) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let lib = plugin_library("ratelimiter");
    let cluster = Cluster::up();
    let config = cluster.plugin_config();
    let rt = runtime();
    let (_loader, session) = set_up(&rt, &lib, &config);
    use plugin_api::InvariantStatus::{Ok as Fine, Violated};
    wait_invariant(&rt, &session, "node down", Fine, Duration::from_secs(20));

    let kill = rt
        .block_on(session.inject("node-kill", vec![("node".into(), ParamValue::Int(2))]))
        .unwrap();
    wait_invariant(
        &rt,
        &session,
        "node down",
        Violated,
        Duration::from_secs(20),
    );
    assert!(!cluster.node_ok(1), "node-2's container is down");
    let fix = rt
        .block_on(session.remediate("restart-node", vec![], "node-2"))
        .unwrap_or_else(|e| panic!("restart-node runs in compose: {e}"));
    assert!(fix.summary.contains("container"), "{}", fix.summary);
    assert!(fix.undo.is_empty(), "a restart leaves nothing to put back");
    // The remedy's own deadline (verify_within_ms of restart-node).
    wait_invariant(&rt, &session, "node down", Fine, Duration::from_secs(10));
    assert!(cluster.node_ok(1), "node-2 answers healthy again");
    // The fault's own recovery finds the container running and has nothing to do.
    rt.block_on(session.recover(&kill.fault_id)).unwrap();
    rt.block_on(session.teardown()).unwrap();
    cluster.assert_healthy(Duration::from_secs(30), "after the demo's recovery");

    drop(session);
    cluster.down_leaving_nothing();
}
