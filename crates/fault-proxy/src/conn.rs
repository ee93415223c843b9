//! One proxied connection: connect upstream, run both pumps in one task, and
//! end it the way the faults say: a normal close when both sides are done, a
//! close after a timeout, a reset (SO_LINGER 0) after a reset_peer, a close
//! when the route is disabled or removed, a reset of both sides when either
//! side fails.

use crate::fault::{ms, Direction, FaultKind};
use crate::pump::pump;
use crate::state::{ConnCtx, RouteState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

/// How long the proxy waits for the upstream to accept before it gives the client up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a connection ends, when not by both sides finishing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    /// Both pumps finished (each side shut down its sending side).
    Done,
    /// Close both sides (FIN).
    Close,
    /// Reset these sides (RST), close the others.
    Reset { client: bool, server: bool },
}

/// Counts a route's open connections for as long as it lives.
pub(crate) struct OpenGuard(Arc<AtomicUsize>);

impl OpenGuard {
    pub fn new(open: &Arc<AtomicUsize>) -> OpenGuard {
        open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(Arc::clone(open))
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one accepted client until the connection ends.
pub(crate) async fn serve(
    mut client: TcpStream,
    upstream: Arc<str>,
    rx: watch::Receiver<Arc<RouteState>>,
    ctx: ConnCtx,
    _open: OpenGuard,
) {
    let mut server =
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&*upstream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!("connection {}: upstream {upstream}: {e}", ctx.id);
                return;
            }
            Err(_) => {
                tracing::debug!("connection {}: upstream {upstream} did not accept", ctx.id);
                return;
            }
        };
    // Requests and answers are small: never hold a segment back for more.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let ending = {
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        let up = pump(Direction::Upstream, cr, sw, rx.clone(), ctx);
        let down = pump(Direction::Downstream, sr, cw, rx.clone(), ctx);
        tokio::select! {
            r = async { tokio::try_join!(up, down) } => match r {
                Ok(_) => Ending::Done,
                Err(e) => {
                    tracing::debug!("connection {}: {e}", ctx.id);
                    Ending::Reset { client: true, server: true }
                }
            },
            e = terminator(rx, ctx) => e,
        }
    };
    match ending {
        Ending::Done => {}
        Ending::Close => {
            // Unread bytes at close make the kernel send RST instead of FIN:
            // a timeout closes, it does not reset.
            drain(&client);
            drain(&server);
        }
        Ending::Reset {
            client: c,
            server: s,
        } => {
            for (reset, stream) in [(c, &client), (s, &server)] {
                if reset {
                    let _ = stream.set_zero_linger();
                } else {
                    drain(stream);
                }
            }
        }
    }
    // Dropping the streams closes them.
}

/// Reads away what is buffered (up to a bound), without waiting.
fn drain(s: &TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    for _ in 0..512 {
        match s.try_read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

/// Resolves when the route says this connection must end: disabled or
/// removed, or a timeout or reset_peer fault's delay has passed since it
/// began to apply to this connection (removing the fault first cancels it).
async fn terminator(mut rx: watch::Receiver<Arc<RouteState>>, ctx: ConnCtx) -> Ending {
    let mut since: HashMap<u64, Instant> = HashMap::new();
    loop {
        let next = {
            let state = rx.borrow_and_update();
            if !state.enabled {
                return Ending::Close;
            }
            let now = Instant::now();
            since.retain(|serial, _| state.faults.iter().any(|a| a.serial == *serial));
            let mut next: Option<(Instant, Ending)> = None;
            for a in ctx.applying(&state) {
                let (after, ending) = match a.fault.kind {
                    FaultKind::Timeout { after_ms } if after_ms > 0.0 => (after_ms, Ending::Close),
                    FaultKind::ResetPeer { after_ms } => (
                        after_ms,
                        Ending::Reset {
                            client: a.fault.direction.covers(Direction::Downstream),
                            server: a.fault.direction.covers(Direction::Upstream),
                        },
                    ),
                    _ => continue,
                };
                let at = *since.entry(a.serial).or_insert(now) + ms(after);
                if next.is_none_or(|(t, _)| at < t) {
                    next = Some((at, ending));
                }
            }
            next
        };
        let at = next.map(|(t, _)| t);
        tokio::select! {
            r = rx.changed() => if r.is_err() { return Ending::Close },
            () = sleep_until(at.unwrap_or_else(Instant::now)), if at.is_some() => {
                if let Some((_, ending)) = next {
                    return ending;
                }
            }
        }
    }
}
