//! Forwarding with no fault: byte-exact for one large transfer and for many
//! small concurrent ones, half-close propagated, over real loopback TCP.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LARGE: usize = 64 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_transfer_arrives_byte_exact() {
    let (echo, _echo) = plain_echo().await;
    let (_proxy, addr) = proxy_to(echo).await;
    let s = connect(addr).await;
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let mut sum = Checksum::default();
        // Pieces of varied sizes, so reads and writes do not line up.
        let mut seed = 1;
        let mut left = LARGE;
        while left > 0 {
            let piece = bytes(seed, left.min(1 + (seed as usize * 7919) % (256 * 1024)));
            seed += 1;
            sum.feed(&piece);
            w.write_all(&piece).await.expect("write");
            left -= piece.len();
        }
        w.shutdown().await.expect("shutdown");
        sum
    });
    let mut got = Checksum::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = tokio::time::timeout(DEADLINE, r.read(&mut buf))
            .await
            .expect("the transfer keeps moving")
            .expect("read");
        if n == 0 {
            break;
        }
        got.feed(&buf[..n]);
    }
    let sent = writer.await.expect("writer");
    assert_eq!(sent.1, LARGE);
    assert_eq!(
        got, sent,
        "the echo of 64 MiB came back byte-exact, then EOF"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_concurrent_transfers_arrive_byte_exact() {
    let (echo, _echo) = plain_echo().await;
    let (proxy, addr) = proxy_to(echo).await;
    let clients: Vec<_> = (0..64u64)
        .map(|c| {
            tokio::spawn(async move {
                let mut s = connect(addr).await;
                for i in 0..100u64 {
                    let msg = bytes(c * 1000 + i, 1 + ((c * 31 + i * 17) % 700) as usize);
                    round_trip(&mut s, &msg).await;
                }
            })
        })
        .collect();
    for c in clients {
        c.await.expect("client");
    }
    eventually("every connection closed", || {
        proxy.route("r").expect("route").connections == 0
    })
    .await;
}

#[tokio::test]
async fn half_close_propagates_both_ways() {
    let mut up = Upstream::echo().await;
    let (_proxy, addr) = proxy_to(up.addr).await;
    let mut s = connect(addr).await;
    s.write_all(b"request").await.expect("write");
    s.shutdown().await.expect("shutdown");
    // The upstream sees the request, then the end of the client's sending side...
    let data = up
        .wait_for("the request", |e| matches!(e, Event::Data(..)))
        .await;
    assert!(
        matches!(data, Event::Data(_, ref d, _) if d == b"request"),
        "{data:?}"
    );
    up.wait_for("the client's EOF", |e| matches!(e, Event::Eof(_)))
        .await;
    // ...while its answer still flows back, then its own EOF.
    assert_eq!(read_n(&mut s, 7).await, b"request");
    let end = read_within(&mut s, DEADLINE).await;
    assert!(
        matches!(end, Some(Ok(ref d)) if d.is_empty()),
        "EOF after the answer: {end:?}"
    );
}
