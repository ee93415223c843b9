//! Each fault over real loopback TCP: what it does to a connection, on which
//! direction, on open connections as well as new ones, and that removing it
//! (or `reset`) gives the connection back. Delays are checked as lower
//! bounds only; speed belongs in demo-bench.

mod common;

use common::*;
use fault_proxy::{Direction, Fault, RouteSpec};
use std::io::ErrorKind;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const MS: fn(u64) -> Duration = Duration::from_millis;

#[tokio::test]
async fn latency_delays_every_round_trip_by_at_least_the_delay() {
    let (echo, _echo) = plain_echo().await;
    let (proxy, addr) = proxy_to(echo).await;
    let mut s = connect(addr).await;
    round_trip(&mut s, b"warm").await;
    proxy
        .add_fault(
            "r",
            Fault::latency(80.0, 0.0).direction(Direction::Downstream),
        )
        .expect("fault");
    for i in 0..5u8 {
        let rtt = round_trip(&mut s, &[i; 10]).await;
        assert!(
            rtt >= MS(80),
            "round trip {i} took {rtt:?}, less than the 80 ms delay"
        );
    }
    // On both directions the delay counts twice.
    proxy.clear_faults("r").expect("clear");
    proxy
        .add_fault("r", Fault::latency(60.0, 0.0))
        .expect("fault");
    for i in 0..3u8 {
        let rtt = round_trip(&mut s, &[i; 10]).await;
        assert!(
            rtt >= MS(120),
            "round trip {i} took {rtt:?}, less than 2 × 60 ms"
        );
    }
}

#[tokio::test]
async fn jitter_spreads_delays_around_the_delay_and_keeps_order() {
    let (echo, _echo) = plain_echo().await;
    let (proxy, addr) = proxy_to(echo).await;
    proxy
        .add_fault(
            "r",
            Fault::latency(60.0, 40.0).direction(Direction::Upstream),
        )
        .expect("fault");
    let mut s = connect(addr).await;
    let mut rtts = Vec::new();
    for i in 0..20u8 {
        rtts.push(round_trip(&mut s, &[i; 16]).await);
    }
    rtts.sort();
    assert!(
        rtts[0] >= MS(20),
        "no round trip is shorter than delay − jitter: {rtts:?}"
    );
    assert!(
        rtts[19] - rtts[0] >= MS(5),
        "20 draws of ±40 ms are not all alike: {rtts:?}"
    );
    assert!(rtts[10] >= MS(40), "the median is near the delay: {rtts:?}");
    // Back-to-back writes, each drawn its own delay, still arrive in order.
    let msgs: Vec<Vec<u8>> = (0..200u64)
        .map(|i| bytes(i, 1 + (i as usize % 50)))
        .collect();
    let all: Vec<u8> = msgs.concat();
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        for m in msgs {
            w.write_all(&m).await.expect("write");
            tokio::task::yield_now().await;
        }
        w
    });
    let mut got = vec![0u8; all.len()];
    tokio::time::timeout(DEADLINE, r.read_exact(&mut got))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(got, all, "order and bytes kept under jitter");
    drop(writer.await);
}

#[tokio::test]
async fn a_blackhole_holds_the_open_connection_until_removed() {
    let mut up = Upstream::echo().await;
    let (proxy, addr) = proxy_to(up.addr).await;
    let mut s = connect(addr).await;
    round_trip(&mut s, b"before").await;
    up.forget_events();
    let name = proxy.add_fault("r", Fault::blackhole()).expect("fault");
    assert_eq!(name, "blackhole_both");
    s.write_all(b"during")
        .await
        .expect("the client can still send");
    up.assert_no_data("a blackhole forwards nothing").await;
    assert!(
        read_within(&mut s, QUIET).await.is_none(),
        "the connection stays open and silent"
    );
    assert_eq!(proxy.route("r").expect("route").connections, 1);
    proxy.remove_fault("r", &name).expect("remove");
    // What was held flows on the same connection.
    assert_eq!(read_n(&mut s, 6).await, b"during");
    round_trip(&mut s, b"after").await;
}

#[tokio::test]
async fn a_blackhole_on_one_direction_lets_the_other_through() {
    let mut up = Upstream::echo().await;
    let (proxy, addr) = proxy_to(up.addr).await;
    proxy
        .add_fault("r", Fault::blackhole().direction(Direction::Downstream))
        .expect("fault");
    let mut s = connect(addr).await;
    s.write_all(b"ping").await.expect("write");
    let e = up
        .wait_for("the request", |e| matches!(e, Event::Data(..)))
        .await;
    assert!(
        matches!(e, Event::Data(_, ref d, _) if d == b"ping"),
        "{e:?}"
    );
    assert!(
        read_within(&mut s, QUIET).await.is_none(),
        "the answer is held"
    );
    proxy.reset().await.expect("reset");
    assert_eq!(read_n(&mut s, 4).await, b"ping");
}

#[tokio::test]
async fn a_timeout_forwards_nothing_and_closes_after_its_delay() {
    let mut up = Upstream::echo().await;
    let (proxy, addr) = proxy_to(up.addr).await;
    let mut s = connect(addr).await;
    round_trip(&mut s, b"x").await;
    let added = Instant::now();
    proxy.add_fault("r", Fault::timeout(300.0)).expect("fault");
    s.write_all(b"lost").await.expect("write");
    let end = read_within(&mut s, DEADLINE).await;
    let closed_after = added.elapsed();
    assert!(
        matches!(end, Some(Ok(ref d)) if d.is_empty()),
        "the client sees a close (EOF), not data or a reset: {end:?}"
    );
    assert!(
        closed_after >= MS(300),
        "closed after {closed_after:?}, before 300 ms"
    );
    up.wait_for("the close upstream", |e| {
        assert!(!matches!(e, Event::Data(_, d, _) if d == b"lost"), "{e:?}");
        matches!(e, Event::Eof(_))
    })
    .await;
}

#[tokio::test]
async fn a_timeout_of_zero_holds_and_its_removal_cancels_the_close() {
    let (echo, _echo) = plain_echo().await;
    let (proxy, addr) = proxy_to(echo).await;
    let mut s = connect(addr).await;
    proxy
        .add_fault("r", Fault::timeout(0.0).named("hold"))
        .expect("fault");
    proxy
        .add_fault("r", Fault::timeout(500.0).named("close"))
        .expect("fault");
    s.write_all(b"abc").await.expect("write");
    assert!(read_within(&mut s, MS(100)).await.is_none(), "held");
    // Removed before it fires, a timeout does not close.
    proxy.remove_fault("r", "close").expect("remove");
    assert!(
        read_within(&mut s, MS(700)).await.is_none(),
        "still open and held"
    );
    proxy.remove_fault("r", "hold").expect("remove");
    assert_eq!(read_n(&mut s, 3).await, b"abc");
}

#[tokio::test]
async fn reset_peer_resets_the_client() {
    let (echo, _echo) = plain_echo().await;
    let (proxy, addr) = proxy_to(echo).await;
    // On a new connection, at once.
    proxy
        .add_fault(
            "r",
            Fault::reset_peer(0.0)
                .direction(Direction::Downstream)
                .named("rst"),
        )
        .expect("fault");
    let mut s = connect(addr).await;
    let got = read_within(&mut s, DEADLINE).await;
    assert!(
        matches!(got, Some(Err(ref e)) if e.kind() == ErrorKind::ConnectionReset),
        "ECONNRESET: {got:?}"
    );
    proxy.remove_fault("r", "rst").expect("remove");
    // On an open connection, after its delay.
    let mut s = connect(addr).await;
    round_trip(&mut s, b"fine").await;
    let added = Instant::now();
    proxy
        .add_fault("r", Fault::reset_peer(200.0))
        .expect("fault");
    let got = read_within(&mut s, DEADLINE).await;
    assert!(
        matches!(got, Some(Err(ref e)) if e.kind() == ErrorKind::ConnectionReset),
        "ECONNRESET: {got:?}"
    );
    assert!(
        added.elapsed() >= MS(200),
        "not before its delay: {:?}",
        added.elapsed()
    );
}

#[tokio::test]
async fn reset_peer_upstream_resets_the_server_and_closes_the_client() {
    let mut up = Upstream::echo().await;
    let (proxy, addr) = proxy_to(up.addr).await;
    let mut s = connect(addr).await;
    round_trip(&mut s, b"fine").await;
    proxy
        .add_fault("r", Fault::reset_peer(0.0).direction(Direction::Upstream))
        .expect("fault");
    up.wait_for("the server's reset", |e| {
        matches!(e, Event::Error(_, ErrorKind::ConnectionReset))
    })
    .await;
    let got = read_within(&mut s, DEADLINE).await;
    assert!(
        matches!(got, Some(Ok(ref d)) if d.is_empty()),
        "the client sees EOF: {got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_is_held_within_ten_percent() {
    const RATE: u64 = 1 << 20;
    const TOTAL: usize = 4 << 20;
    let mut up = Upstream::sink().await;
    let (proxy, addr) = proxy_to(up.addr).await;
    proxy
        .add_fault("r", Fault::bandwidth(RATE).direction(Direction::Upstream))
        .expect("fault");
    let s = connect(addr).await;
    let (_r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&bytes(3, TOTAL)).await.expect("write");
        w
    });
    let mut first: Option<(usize, Instant)> = None;
    let mut last = Instant::now();
    let mut got = 0usize;
    while got < TOTAL {
        match up.wait_for("data", |e| matches!(e, Event::Data(..))).await {
            Event::Data(_, d, at) => {
                got += d.len();
                first.get_or_insert((d.len(), at));
                last = at;
            }
            _ => unreachable!(),
        }
    }
    let (first_len, t0) = first.expect("data came");
    let rate = (got - first_len) as f64 / (last - t0).as_secs_f64();
    let ratio = rate / RATE as f64;
    assert!(
        (0.9..=1.1).contains(&ratio),
        "{rate:.0} B/s over {:?} is not within 10% of {RATE} B/s",
        last - t0
    );
    drop(writer.await);
}

#[tokio::test]
async fn faults_apply_to_open_connections_and_go_with_removal() {
    let (echo, _echo) = plain_echo().await;
    let (proxy, addr) = proxy_to(echo).await;
    let mut s = connect(addr).await;
    round_trip(&mut s, b"plain").await;
    // A long delay added to the open connection...
    proxy
        .add_fault("r", Fault::latency(30_000.0, 0.0).named("slow"))
        .expect("fault");
    s.write_all(b"late").await.expect("write");
    assert!(read_within(&mut s, QUIET).await.is_none(), "delayed");
    // ...and removed: what it held is due at once, long before 30 s.
    proxy.remove_fault("r", "slow").expect("remove");
    assert_eq!(read_n(&mut s, 4).await, b"late");
    round_trip(&mut s, b"plain again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toggling_faults_during_a_transfer_loses_no_byte() {
    let (echo, _echo) = plain_echo().await;
    let (proxy, addr) = proxy_to(echo).await;
    let s = connect(addr).await;
    let (mut r, mut w) = s.into_split();
    const N: usize = 8 << 20;
    let data = bytes(9, N);
    let mut sent = Checksum::default();
    sent.feed(&data);
    let writer = tokio::spawn(async move {
        for piece in data.chunks(100_000) {
            w.write_all(piece).await.expect("write");
        }
        w.shutdown().await.expect("shutdown");
    });
    let toggler = {
        let proxy = proxy.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let f = match i % 3 {
                    0 => Fault::latency(2.0, 1.0),
                    1 => Fault::bandwidth(20 << 20),
                    _ => Fault::blackhole(),
                };
                let name = proxy.add_fault("r", f).expect("add");
                tokio::time::sleep(MS(20)).await;
                proxy.remove_fault("r", &name).expect("remove");
                tokio::time::sleep(MS(20)).await;
            }
        })
    };
    let mut got = Checksum::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::time::timeout(DEADLINE, r.read(&mut buf))
            .await
            .expect("moving")
            .expect("read");
        if n == 0 {
            break;
        }
        got.feed(&buf[..n]);
    }
    toggler.abort();
    writer.await.expect("writer");
    assert_eq!(got, sent, "8 MiB byte-exact across fault changes");
}

#[tokio::test]
async fn fractions_zero_and_one_and_between() {
    let (echo, _echo) = plain_echo().await;
    let (proxy, addr) = proxy_to(echo).await;
    proxy
        .add_fault("r", Fault::blackhole().fraction(0.0).named("never"))
        .expect("fault");
    let mut s = connect(addr).await;
    round_trip(&mut s, b"fraction 0 applies to no connection").await;
    proxy
        .add_fault("r", Fault::blackhole().fraction(1.0))
        .expect("fault");
    s.write_all(b"held").await.expect("write");
    assert!(
        read_within(&mut s, QUIET).await.is_none(),
        "fraction 1: held"
    );
    proxy.clear_faults("r").expect("clear");
    assert_eq!(read_n(&mut s, 4).await, b"held");

    // A half: some connections, not all, and the same ones for the same seed.
    let picked = |seed| async move {
        let (echo, _echo) = plain_echo().await;
        let proxy = fault_proxy::Proxy::with_seed(seed);
        let addr = proxy
            .add_route(RouteSpec::loopback("half", echo.to_string()))
            .await
            .expect("route")
            .listen;
        proxy
            .add_fault("half", Fault::blackhole().fraction(0.5))
            .expect("fault");
        let mut conns = Vec::new();
        for _ in 0..24 {
            let mut s = connect(addr).await;
            s.write_all(b"?").await.expect("write");
            conns.push(s);
        }
        let answered = futures_of(conns).await;
        drop(proxy);
        answered
    };
    let a = picked(5).await;
    let n = a.iter().filter(|x| **x).count();
    assert!(
        0 < n && n < 24,
        "fraction 0.5 held some connections, not all: {a:?}"
    );
    assert_eq!(
        a,
        picked(5).await,
        "the same seed picks the same connections"
    );
}

/// Whether each connection got its byte back within [`QUIET`], all watched at once.
async fn futures_of(conns: Vec<tokio::net::TcpStream>) -> Vec<bool> {
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                matches!(read_within(&mut s, QUIET * 2).await, Some(Ok(d)) if d == b"?")
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn a_disabled_route_refuses_and_closes_until_enabled() {
    let (echo, _echo) = plain_echo().await;
    let (proxy, addr) = proxy_to(echo).await;
    let mut open = connect(addr).await;
    round_trip(&mut open, b"up").await;
    proxy.set_enabled("r", false).await.expect("disable");
    let got = read_within(&mut open, DEADLINE).await;
    assert!(
        matches!(got, Some(Ok(ref d)) if d.is_empty()),
        "open connection closed: {got:?}"
    );
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(
        matches!(refused, Err(ref e) if e.kind() == ErrorKind::ConnectionRefused),
        "new connections refused: {refused:?}"
    );
    assert!(!proxy.route("r").expect("route").enabled);
    proxy.set_enabled("r", true).await.expect("enable");
    let mut s = connect(addr).await;
    round_trip(&mut s, b"back on the same port").await;
}

#[tokio::test]
async fn reset_removes_every_fault_and_enables_every_route() {
    let (echo, _echo) = plain_echo().await;
    let (proxy, a) = proxy_to(echo).await;
    let b = proxy
        .add_route(RouteSpec::loopback("r2", echo.to_string()))
        .await
        .expect("route")
        .listen;
    let mut held = connect(a).await;
    proxy.add_fault("r", Fault::blackhole()).expect("fault");
    proxy
        .add_fault("r", Fault::latency(10.0, 1.0))
        .expect("fault");
    proxy
        .add_fault("r2", Fault::bandwidth(1000))
        .expect("fault");
    proxy.set_enabled("r2", false).await.expect("disable");
    held.write_all(b"wait").await.expect("write");
    assert!(read_within(&mut held, QUIET).await.is_none(), "held");
    proxy.reset().await.expect("reset");
    for r in proxy.routes() {
        assert!(r.faults.is_empty() && r.enabled, "{r:?}");
    }
    assert_eq!(read_n(&mut held, 4).await, b"wait");
    let mut s = connect(b).await;
    round_trip(&mut s, b"r2 is back").await;
}

#[tokio::test]
async fn removing_a_route_closes_its_connections_and_its_port() {
    let (echo, _echo) = plain_echo().await;
    let (proxy, addr) = proxy_to(echo).await;
    let mut s = connect(addr).await;
    round_trip(&mut s, b"x").await;
    proxy.remove_route("r").expect("remove");
    let got = read_within(&mut s, DEADLINE).await;
    assert!(
        matches!(got, Some(Ok(ref d)) if d.is_empty()),
        "closed: {got:?}"
    );
    eventually("the port is closed", || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;
    assert!(matches!(
        proxy.remove_route("r"),
        Err(fault_proxy::Error::UnknownRoute(_))
    ));
}
