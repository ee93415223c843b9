//! Counter drift from a real CLIENT PAUSE WRITE in cached mode: it appears, the
//! plugin reports it against Redis, and it clears after recovery. Also the
//! node-kill action and the local environment's process hygiene.

mod common;
use common::subject::{alive, create, Running};
use plugin_api::*;
use std::time::{Duration, Instant};

#[test]
fn redis_pause_makes_counter_drift_appear_and_recovery_clears_it() {
    let s = Running::start("flush_ms=100 load_rps=50 limit=100000 window_ms=60000");
    s.0.run_step("set-limit").unwrap();
    s.wait(
        "counter drift",
        InvariantStatus::Ok,
        Duration::from_secs(10),
    );
    s.wait("conservation", InvariantStatus::Ok, Duration::from_secs(5));
    let fault = s
        .inject("redis-pause", &[("duration_ms", ParamValue::Int(20_000))])
        .unwrap();
    assert_eq!(fault.targets, vec!["redis"]);
    assert!(
        fault.undo.contains("CLIENT") || fault.undo.contains("redis-pause"),
        "{}",
        fault.undo
    );
    let drift = s.wait(
        "counter drift",
        InvariantStatus::Violated,
        Duration::from_secs(5),
    );
    assert_eq!(drift.class, AnomalyClass::StateDivergence);
    assert!(drift.components.contains(&"redis".to_string()), "{drift:?}");
    assert!(drift.observed.unwrap() > drift.bound.unwrap());
    // Redis still answers reads: it is paused, not down.
    assert_eq!(
        s.0.health()
            .unwrap()
            .invariant("redis down")
            .unwrap()
            .status,
        InvariantStatus::Ok
    );
    let snap = s.0.health().unwrap();
    assert!(
        snap.nodes.iter().any(|n| n.status == NodeStatus::Degraded),
        "partitioned nodes show as degraded"
    );
    s.0.recover(&fault.fault_id).unwrap();
    s.wait("counter drift", InvariantStatus::Ok, Duration::from_secs(5));
    s.wait("conservation", InvariantStatus::Ok, Duration::from_secs(5));
}

#[test]
fn strict_mode_shows_no_drift_under_the_same_pause() {
    let s = Running::start("mode=strict load_rps=50 limit=100000 window_ms=60000");
    s.0.run_step("set-limit").unwrap();
    s.wait(
        "counter drift",
        InvariantStatus::Ok,
        Duration::from_secs(10),
    );
    let redis_port = port_of(&s.0.shared().redis_url());
    assert_eq!(
        redis_write(redis_port).as_deref(),
        Some("+OK"),
        "writes go through before the pause"
    );
    let fault = s
        .inject("redis-pause", &[("duration_ms", ParamValue::Int(1500))])
        .unwrap();
    let end = Instant::now() + Duration::from_millis(1500);
    // The positive control: the pause took effect, a write waits behind it.
    assert_eq!(
        redis_write(redis_port),
        None,
        "a write went through during the pause"
    );
    while Instant::now() < end {
        let i =
            s.0.health()
                .unwrap()
                .invariant("counter drift")
                .cloned()
                .unwrap();
        assert_ne!(i.status, InvariantStatus::Violated, "{i:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.0.recover(&fault.fault_id).unwrap();
    assert_eq!(
        redis_write(redis_port).as_deref(),
        Some("+OK"),
        "writes go through after recovery"
    );
}

fn port_of(redis_url: &str) -> u16 {
    redis_url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {redis_url}"))
}

/// One `SET` on its own connection: the reply line, `None` when Redis does not
/// answer within 300 ms (what `CLIENT PAUSE WRITE` does to a write).
fn redis_write(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    c.write_all(b"SET test:probe 1\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).trim().to_string())
}

#[test]
fn node_kill_is_detected_and_recovered_and_no_process_is_left() {
    let s = Running::start("flush_ms=100 load_rps=30");
    s.0.run_step("set-limit").unwrap();
    s.wait("node down", InvariantStatus::Ok, Duration::from_secs(10));
    let pids = s.0.child_pids();
    assert_eq!(pids.len(), 5, "redis-server, its standby and three nodes");
    let fault = s
        .inject("node-kill", &[("node", ParamValue::Int(2))])
        .unwrap();
    assert_eq!(fault.targets, vec!["node-2"]);
    let down = s.wait(
        "node down",
        InvariantStatus::Violated,
        Duration::from_secs(5),
    );
    assert_eq!(down.components, vec!["node-2"]);
    // Health answers from the poller's observations: every call succeeds and
    // agrees while the node is down (how fast it answers is demo-bench's job).
    let snaps: Vec<HealthSnapshot> = (0..5).map(|_| s.0.health().unwrap()).collect();
    for snap in &snaps {
        assert_eq!(
            snap.nodes.iter().find(|n| n.id == "node-2").unwrap().status,
            NodeStatus::Down
        );
    }
    let snap = snaps.into_iter().next_back().unwrap();
    assert_eq!(
        snap.invariant("counter drift").unwrap().status,
        InvariantStatus::Unknown
    );
    let again = s
        .inject("node-kill", &[("node", ParamValue::Int(2))])
        .unwrap_err();
    assert!(again.to_string().contains("already killed"), "{again}");
    s.0.recover(&fault.fault_id).unwrap();
    s.wait("node down", InvariantStatus::Ok, Duration::from_secs(5));
    let new_pids = s.0.child_pids();
    s.0.teardown().unwrap();
    for pid in pids.iter().chain(&new_pids) {
        assert!(!alive(*pid), "process {pid} outlived teardown");
    }
}

#[test]
fn chaos_params_and_config_are_validated() {
    let s = Running::start("load_rps=0");
    let err = s
        .inject("burst", &[("multiplier", ParamValue::Float(20.0))])
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let err = s
        .inject("node-kill", &[("node", ParamValue::Int(7))])
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let err = s
        .inject("redis-pause", &[("duration_ms", ParamValue::Int(10))])
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let err =
        s.0.inject("flood", &plugin_api::Params::default())
            .unwrap_err();
    assert!(err.to_string().contains("unknown chaos action"), "{err}");
    let err = s.0.run_step("dance").unwrap_err();
    assert!(err.to_string().contains("set-limit"), "{err}");
    let e = create("redis_bin=/nonexistent/redis-server")
        .unwrap()
        .setup()
        .unwrap_err();
    assert!(
        e.to_string().contains("Debian package `redis-server`"),
        "{e}"
    );
    let e = create("node_bin=/nonexistent/ratelimiter-node")
        .unwrap()
        .setup()
        .unwrap_err();
    assert!(
        e.to_string().contains("cargo build -p ratelimiter-node"),
        "{e}"
    );
    let e = create("mode=fast").err().unwrap();
    assert!(e.to_string().contains("mode=strict"), "{e}");
}

#[test]
fn leftover_pause_is_undone_from_its_record_and_local_kills_say_why_not() {
    let s = Running::start("load_rps=0");
    let fault = s
        .inject("redis-pause", &[("duration_ms", ParamValue::Int(30_000))])
        .unwrap();
    let other = create("").unwrap();
    other.recover_leftover(&fault.undo).unwrap();
    let kill = s
        .inject("node-kill", &[("node", ParamValue::Int(1))])
        .unwrap();
    let err = other.recover_leftover(&kill.undo).unwrap_err();
    assert!(err.to_string().contains("cannot be restarted"), "{err}");
    let err = other.recover_leftover("garbage").unwrap_err();
    assert!(err.to_string().contains("undo record"), "{err}");
    other.teardown().unwrap();
    s.0.recover(&kill.fault_id).unwrap();
}
