//! Property: whatever the bytes and however the client chunks them, they
//! arrive byte-exact, on the fast path (no fault) and on the shaped path
//! (latency with jitter and a bandwidth limit, which queue and re-chunk).

mod common;

use common::*;
use fault_proxy::{Fault, Proxy, RouteSpec};
use proptest::prelude::*;
use std::net::SocketAddr;
use std::sync::OnceLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One runtime, echo server and proxy for all cases (a case is one connection per route).
struct World {
    rt: tokio::runtime::Runtime,
    clear: SocketAddr,
    shaped: SocketAddr,
    _keep: (Proxy, AbortOnDrop),
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (proxy, clear, shaped, echo) = rt.block_on(async {
            let (echo, guard) = plain_echo().await;
            let proxy = Proxy::with_seed(3);
            let mut addrs = Vec::new();
            for name in ["clear", "shaped"] {
                let r = proxy
                    .add_route(RouteSpec::loopback(name, echo.to_string()))
                    .await
                    .expect("route");
                addrs.push(r.listen);
            }
            proxy
                .add_fault("shaped", Fault::latency(0.5, 0.5))
                .expect("latency");
            proxy
                .add_fault("shaped", Fault::bandwidth(64 << 20))
                .expect("bandwidth");
            (proxy, addrs[0], addrs[1], guard)
        });
        World {
            rt,
            clear,
            shaped,
            _keep: (proxy, echo),
        }
    })
}

/// Writes `data` in pieces of the given sizes (cycled), then half-closes;
/// returns everything read back until EOF.
async fn through(addr: SocketAddr, data: Vec<u8>, pieces: Vec<usize>) -> Vec<u8> {
    let s = connect(addr).await;
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        for size in pieces.iter().cycle() {
            if at >= data.len() {
                break;
            }
            let end = (at + size).min(data.len());
            w.write_all(&data[at..end]).await.expect("write");
            w.flush().await.expect("flush");
            at = end;
        }
        w.shutdown().await.expect("shutdown");
    });
    let mut back = Vec::new();
    tokio::time::timeout(DEADLINE, r.read_to_end(&mut back))
        .await
        .expect("the echo ends within the deadline")
        .expect("read");
    writer.await.expect("writer");
    back
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn arbitrary_chunkings_arrive_byte_exact(
        data in proptest::collection::vec(any::<u8>(), 0..200_000),
        pieces in proptest::collection::vec(1usize..70_000, 1..20),
    ) {
        let w = world();
        for addr in [w.clear, w.shaped] {
            let back = w.rt.block_on(through(addr, data.clone(), pieces.clone()));
            prop_assert_eq!(back.len(), data.len());
            prop_assert!(back == data, "bytes differ through {}", addr);
        }
    }
}
