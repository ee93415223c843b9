//! One direction of one connection: bytes from `src` to `dst`, shaped by the
//! route's faults. With no fault on the direction it is a plain copy loop (a
//! 64 KiB buffer, a read and a write per chunk, the fault set looked at only
//! when the watch says it changed); with latency or bandwidth it schedules
//! each chunk; with a blackhole or timeout it stops reading, so the kernel's
//! buffers and the sender's flow control do what a dead link would.

use crate::fault::Direction;
use crate::state::{ConnCtx, Effect, RouteState};
use rand::Rng;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

/// Copy buffer per direction: large enough that a bulk transfer costs few
/// syscalls, small enough for many connections.
pub(crate) const BUF: usize = 64 * 1024;
/// Bytes a delaying pump holds at most; beyond it, it stops reading (backpressure).
const QUEUE_CAP: usize = 8 << 20;
/// How far a bandwidth-limited pump may catch up after it was held up (a
/// busy machine), so the long-run rate stays the configured one.
const CATCH_UP: Duration = Duration::from_millis(50);
/// Bandwidth is paced in chunks of this share of a second's bytes.
const PACE_PER_SEC: u64 = 50;

/// Why a pump left its current mode.
enum Step {
    /// The fault set changed: look again.
    Changed,
    /// The source shut its sending side down and everything was forwarded.
    Eof,
    /// The route is gone; the connection's terminator closes it.
    Gone,
}

fn step_of(changed: Result<(), watch::error::RecvError>) -> Step {
    if changed.is_ok() {
        Step::Changed
    } else {
        Step::Gone
    }
}

/// Forwards `src` to `dst` until `src` ends (then shuts `dst`'s sending side,
/// so half-close propagates) or an I/O error.
pub(crate) async fn pump<R, W>(
    dir: Direction,
    mut src: R,
    mut dst: W,
    mut rx: watch::Receiver<Arc<RouteState>>,
    conn: ConnCtx,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    let mut shaped = Shaped::new(conn.rng(u64::MAX - dir as u64));
    loop {
        let effect = Effect::of(&rx.borrow_and_update(), dir, &conn);
        let step = if effect.hold {
            step_of(rx.changed().await)
        } else if effect.is_clear() && shaped.queue.is_empty() {
            fast(&mut src, &mut dst, &mut buf, &mut rx).await?
        } else {
            shaped
                .run(effect, &mut src, &mut dst, &mut buf, &mut rx)
                .await?
        };
        match step {
            Step::Changed => {}
            Step::Eof => return dst.shutdown().await,
            Step::Gone => std::future::pending::<()>().await,
        }
    }
}

/// The fast path: read, write, repeat. The watch is polled only when a read
/// would wait, and its version checked (one atomic load) after each chunk, so
/// a fault added during a bulk transfer takes effect at the next chunk.
async fn fast<R, W>(
    src: &mut R,
    dst: &mut W,
    buf: &mut [u8],
    rx: &mut watch::Receiver<Arc<RouteState>>,
) -> io::Result<Step>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        match rx.has_changed() {
            Ok(false) => {}
            Ok(true) => return Ok(Step::Changed),
            Err(_) => return Ok(Step::Gone),
        }
        let n = tokio::select! {
            biased;
            n = src.read(buf) => n?,
            r = rx.changed() => return Ok(step_of(r)),
        };
        if n == 0 {
            return Ok(Step::Eof);
        }
        dst.write_all(&buf[..n]).await?;
    }
}

/// The slow path's state, kept across fault changes so that held chunks keep
/// their order and nothing read is lost.
struct Shaped {
    /// Chunks read but not yet due, with when each is due.
    queue: VecDeque<(Instant, Vec<u8>)>,
    queued: usize,
    /// No chunk leaves before the one read before it.
    last_release: Option<Instant>,
    /// When the bandwidth limit lets the next chunk be read.
    bw_next: Option<Instant>,
    eof: bool,
    jitter: rand::rngs::StdRng,
}

impl Shaped {
    fn new(jitter: rand::rngs::StdRng) -> Shaped {
        Shaped {
            queue: VecDeque::new(),
            queued: 0,
            last_release: None,
            bw_next: None,
            eof: false,
            jitter,
        }
    }

    async fn run<R, W>(
        &mut self,
        e: Effect,
        src: &mut R,
        dst: &mut W,
        buf: &mut [u8],
        rx: &mut watch::Receiver<Arc<RouteState>>,
    ) -> io::Result<Step>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let draining = e.latency.is_none() && e.bandwidth.is_none();
        if draining {
            // The delay was removed: what it still held is due now.
            let now = Instant::now();
            for (at, _) in &mut self.queue {
                *at = (*at).min(now);
            }
            self.last_release = None;
        }
        if e.bandwidth.is_none() {
            self.bw_next = None;
        }
        let chunk = e.bandwidth.map_or(buf.len(), |b| {
            (b / PACE_PER_SEC).clamp(1, buf.len() as u64) as usize
        });
        loop {
            if self.queue.is_empty() && (self.eof || draining) {
                return Ok(if self.eof { Step::Eof } else { Step::Changed });
            }
            let due = self.queue.front().map(|(at, _)| *at);
            let can_read = !self.eof && !draining && self.queued < QUEUE_CAP;
            let gate = self.bw_next;
            tokio::select! {
                biased;
                r = rx.changed() => return Ok(step_of(r)),
                () = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    if let Some((_, data)) = self.queue.pop_front() {
                        self.queued -= data.len();
                        dst.write_all(&data).await?;
                    }
                }
                n = gated_read(src, &mut buf[..chunk], gate), if can_read => {
                    let n = n?;
                    if n == 0 {
                        self.eof = true;
                    } else {
                        self.schedule(&e, &buf[..n]);
                    }
                }
            }
        }
    }

    /// Queues a chunk read now, due after the latency (with jitter) and no
    /// earlier than the chunk before it; charges it to the bandwidth.
    fn schedule(&mut self, e: &Effect, data: &[u8]) {
        let now = Instant::now();
        if let Some(rate) = e.bandwidth {
            let start = self
                .bw_next
                .map_or(now, |t| t.max(now.checked_sub(CATCH_UP).unwrap_or(now)));
            self.bw_next = Some(start + Duration::from_secs_f64(data.len() as f64 / rate as f64));
        }
        let mut at = now;
        if let Some((delay, jitter)) = e.latency {
            let d = delay.as_secs_f64();
            let j = jitter.as_secs_f64();
            let sample = if j > 0.0 {
                d + self.jitter.random_range(-j..=j)
            } else {
                d
            };
            at += Duration::from_secs_f64(sample.max(0.0));
        }
        if let Some(last) = self.last_release {
            at = at.max(last);
        }
        self.last_release = Some(at);
        self.queued += data.len();
        self.queue.push_back((at, data.to_vec()));
    }
}

/// Reads once `gate` (the bandwidth limit's next slot) has passed. Cancel
/// safe: nothing is read until the read completes.
async fn gated_read<R: AsyncRead + Unpin>(
    src: &mut R,
    buf: &mut [u8],
    gate: Option<Instant>,
) -> io::Result<usize> {
    if let Some(at) = gate {
        sleep_until(at).await;
    }
    src.read(buf).await
}
