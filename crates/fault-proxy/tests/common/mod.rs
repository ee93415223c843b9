//! What the tests run against: a real echo server on a loopback port that
//! reports what it saw (each connection, chunk, end and error, with the
//! time), and small client helpers. Every wait has a deadline.
#![allow(dead_code)]

use fault_proxy::{Proxy, RouteSpec};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Long enough that a busy 2-core machine never trips it; only a broken proxy does.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// How long "nothing arrives" is watched for.
pub const QUIET: Duration = Duration::from_millis(400);

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Accepted(u64),
    Data(u64, Vec<u8>, Instant),
    Eof(u64),
    Error(u64, io::ErrorKind),
}

/// An echo server that reports what it saw. Aborted when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<Event>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// Echoes every byte back; on EOF shuts its sending side (so half-close shows).
    pub async fn echo() -> Upstream {
        Upstream::start(true).await
    }

    /// Reads and reports, never answers.
    pub async fn sink() -> Upstream {
        Upstream::start(false).await
    }

    async fn start(echo: bool) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut id = 0;
            while let Ok((mut s, _)) = listener.accept().await {
                let tx = tx.clone();
                let me = id;
                id += 1;
                let _ = tx.send(Event::Accepted(me));
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) => {
                                let _ = tx.send(Event::Eof(me));
                                let _ = s.shutdown().await;
                                return;
                            }
                            Ok(n) => {
                                let _ = tx.send(Event::Data(me, buf[..n].to_vec(), Instant::now()));
                                if echo && s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                let _ = tx.send(Event::Error(me, e.kind()));
                                return;
                            }
                        }
                    }
                });
            }
        });
        Upstream { addr, events, task }
    }

    /// The next event, or `None` when none comes within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Option<Event> {
        tokio::time::timeout(limit, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for an event `want` accepts, skipping others; panics at the deadline.
    pub async fn wait_for(&mut self, what: &str, mut want: impl FnMut(&Event) -> bool) -> Event {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if want(&e) => return e,
                Ok(Some(_)) => {}
                Ok(None) => panic!("the upstream stopped before {what}"),
                Err(_) => panic!("no {what} within {DEADLINE:?}"),
            }
        }
    }

    /// Forgets the events reported so far.
    pub fn forget_events(&mut self) {
        while self.events.try_recv().is_ok() {}
    }

    /// Asserts that no byte reaches the upstream for [`QUIET`].
    pub async fn assert_no_data(&mut self, why: &str) {
        let until = Instant::now() + QUIET;
        while let Ok(Some(e)) = tokio::time::timeout_at(until, self.events.recv()).await {
            assert!(!matches!(e, Event::Data(..)), "{why}: data arrived: {e:?}");
        }
    }
}

/// A proxy with one route `r` in front of `upstream`.
pub async fn proxy_to(upstream: SocketAddr) -> (Proxy, SocketAddr) {
    let proxy = Proxy::with_seed(17);
    let route = proxy
        .add_route(RouteSpec::loopback("r", upstream.to_string()))
        .await
        .expect("route");
    (proxy, route.listen)
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    let s = tokio::time::timeout(DEADLINE, TcpStream::connect(addr))
        .await
        .expect("connect within the deadline")
        .expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Reads exactly `n` bytes within the deadline.
pub async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut buf))
        .await
        .expect("the bytes arrive within the deadline")
        .expect("read");
    buf
}

/// Sends `msg` and waits for its echo; returns the round trip.
pub async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Duration {
    let start = Instant::now();
    s.write_all(msg).await.expect("write");
    let back = read_n(s, msg.len()).await;
    assert_eq!(back, msg, "the echo is byte-exact");
    start.elapsed()
}

/// What a read gets within `limit`: `None` if it is still waiting (the connection is open and quiet).
pub async fn read_within(s: &mut TcpStream, limit: Duration) -> Option<io::Result<Vec<u8>>> {
    let mut buf = vec![0u8; 64 * 1024];
    match tokio::time::timeout(limit, s.read(&mut buf)).await {
        Ok(Ok(n)) => Some(Ok(buf[..n].to_vec())),
        Ok(Err(e)) => Some(Err(e)),
        Err(_) => None,
    }
}

/// Deterministic pseudo-random bytes (xorshift), so a transfer needs no stored copy.
pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// FNV-1a over a byte stream, fed in pieces.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Checksum(pub u64, pub usize);

impl Default for Checksum {
    fn default() -> Checksum {
        Checksum(0xcbf2_9ce4_8422_2325, 0)
    }
}

impl Checksum {
    pub fn feed(&mut self, data: &[u8]) {
        for b in data {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
        self.1 += data.len();
    }
}

/// Polls `cond` until it holds; panics at the deadline.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Aborts a task when dropped (a server a test started).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A plain echo server (no reports: for bulk transfers); half-close shown as in [`Upstream::echo`].
pub async fn plain_echo() -> (SocketAddr, AbortOnDrop) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                if tokio::io::copy(&mut r, &mut w).await.is_ok() {
                    let _ = w.shutdown().await;
                }
            });
        }
    });
    (addr, AbortOnDrop(task))
}
