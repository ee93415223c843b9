//! The cluster launcher with a real redis-server and real nodes.

use ratelimiter_node::cluster::{http_ok, redis_ping, Cluster, ClusterError, Logs, NodeArgs};
use ratelimiter_node::wire::Mode;
use std::path::Path;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_ratelimiter-node");

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn nodes_crash_and_restart_redis_restarts_on_its_port_and_stop_leaves_nothing() {
    let args = NodeArgs::new(Mode::Strict).redis_timeout_ms(2000);
    let c = Cluster::start("redis-server", Path::new(NODE_BIN), Logs::TempDir, 2, args).unwrap();
    let ports = c.node_ports();
    assert_eq!(ports.len(), 2);
    assert!(ports.iter().all(|p| http_ok(*p, "/health")));
    assert!(redis_ping(c.redis_port()));
    let dir = c.log_dir().unwrap().to_path_buf();
    assert!(dir.join("redis.log").is_file() && dir.join("node-2.log").is_file());
    let pids = c.pids();
    assert_eq!(pids.len(), 3, "redis and two nodes");

    c.kill_node(1).unwrap();
    assert!(!c.node_running(1) && c.node_running(0));
    assert!(!http_ok(ports[1], "/health"));
    c.start_node(1).unwrap();
    assert!(c.node_running(1));
    assert_eq!(c.node_ports(), ports, "a restarted node keeps its port");

    let port = c.redis_port();
    let old = c.redis_pid().unwrap();
    c.kill_redis().unwrap();
    assert!(!redis_ping(port) && c.redis_pid().is_none());
    c.restart_redis().unwrap();
    assert!(redis_ping(port));
    assert_ne!(c.redis_pid(), Some(old));

    let all = c.pids();
    c.stop();
    assert!(c.pids().is_empty());
    for pid in pids.iter().chain(&all) {
        assert!(!alive(*pid), "{pid} outlived stop");
    }
    assert!(!dir.exists(), "stop removes the log directory");
}

#[test]
fn what_is_missing_or_does_not_start_is_named() {
    let e = Cluster::redis("/nonexistent/redis-server", Logs::Discard)
        .err()
        .unwrap();
    assert!(matches!(e, ClusterError::Missing(_)), "{e}");
    assert!(
        e.to_string().contains("Debian package `redis-server`"),
        "{e}"
    );
    let args = NodeArgs::new(Mode::Cached);
    let e = Cluster::start(
        "redis-server",
        Path::new("/nonexistent/node"),
        Logs::Discard,
        1,
        args,
    )
    .err()
    .unwrap();
    assert!(
        e.to_string().contains("cargo build -p ratelimiter-node"),
        "{e}"
    );

    // A node that exits at once (a flag it does not know) is reported with its log.
    let c = Cluster::redis("redis-server", Logs::TempDir).unwrap();
    let mut bad = NodeArgs::new(Mode::Cached);
    bad.extra = vec!["--no-such-flag".into()];
    let e = c
        .add_node(Path::new(NODE_BIN), "node-1", bad)
        .err()
        .unwrap();
    assert!(matches!(e, ClusterError::NotReady(_)), "{e}");
    assert!(e.to_string().contains("node-1.log"), "{e}");
    assert_eq!(c.pids().len(), 1, "only redis runs");
}
