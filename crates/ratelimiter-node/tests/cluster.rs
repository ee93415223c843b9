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

/// `GET /health` of a node, read whole (HTTP/1.0 closes after the answer).
fn health(port: u16) -> Option<ratelimiter_node::wire::HealthView> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split("\r\n\r\n").nth(1)?).ok()
}

#[test]
fn a_proxied_cluster_gives_each_node_its_own_route_to_redis() {
    use fault_proxy::Fault;
    use ratelimiter_node::cluster::{wait_until, RedisPath};
    use std::time::Duration;

    let direct = Cluster::redis("redis-server", Logs::Discard).unwrap();
    assert_eq!(direct.redis_path(), RedisPath::Direct);
    assert!(direct.fault_proxy().is_none());

    let args = NodeArgs::new(Mode::Cached).redis_timeout_ms(250);
    let c = Cluster::start_with(
        "redis-server",
        Path::new(NODE_BIN),
        Logs::Discard,
        3,
        args,
        RedisPath::Proxied,
    )
    .unwrap();
    let proxy = c.fault_proxy().expect("a proxied cluster has a proxy");
    let routes: Vec<String> = (0..3).map(|i| c.redis_route(i).unwrap().unwrap()).collect();
    assert_eq!(routes, ["redis-node-1", "redis-node-2", "redis-node-3"]);
    for (i, r) in routes.iter().enumerate() {
        let info = proxy.route(r).unwrap();
        assert_eq!(info.upstream, format!("127.0.0.1:{}", c.redis_port()));
        assert_eq!(
            c.node_redis_url(i).unwrap(),
            format!("redis://{}", info.listen),
            "node-{} is started against its route",
            i + 1
        );
        assert!(
            redis_ping(info.listen.port()),
            "the route forwards to redis"
        );
    }
    let ports = c.node_ports();
    let reaches = |i: usize| health(ports[i]).is_some_and(|h| h.redis_reachable);
    assert!(wait_until(Duration::from_secs(10), || (0..3).all(reaches)));
    // The node's own connections go through its route.
    assert!(proxy.route(&routes[1]).unwrap().connections > 0);

    // A blackhole on node-2's route cuts node-2 alone off from Redis.
    proxy
        .add_fault(&routes[1], Fault::blackhole().named("cut"))
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || health(ports[1])
            .is_some_and(|h| !h.redis_reachable)),
        "node-2 reports redis unreachable"
    );
    assert!(
        reaches(0) && reaches(2),
        "the other nodes still reach redis"
    );
    proxy.remove_fault(&routes[1], "cut").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || reaches(1)),
        "node-2 reaches redis again once the fault is removed"
    );

    // A restarted node keeps its route.
    c.kill_node(2).unwrap();
    c.start_node(2).unwrap();
    assert_eq!(
        c.node_redis_url(2).unwrap(),
        format!("redis://{}", proxy.route(&routes[2]).unwrap().listen)
    );

    let listen = proxy.route(&routes[0]).unwrap().listen;
    let pids = c.pids();
    c.stop();
    assert!(proxy.routes().is_empty(), "stop closes the routes");
    assert!(
        wait_until(Duration::from_secs(5), || std::net::TcpStream::connect(
            listen
        )
        .is_err()),
        "nothing listens on a closed route"
    );
    for pid in pids {
        assert!(!alive(pid), "{pid} outlived stop");
    }
}
