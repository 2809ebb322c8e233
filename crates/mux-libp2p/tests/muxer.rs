//! The properties rust-libp2p's muxer test harness checks, and the libp2p
//! semantics this crate promises, on both wires, over an in-memory pipe
//! with small buffers so that back-pressure is real.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

use std::future::poll_fn;
use std::io;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p_core::muxing::StreamMuxerExt;
use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use mux_core::compat::TokioAsyncReadCompatExt;
use mux_core::{ConnError, MuxedStream};
use mux_libp2p::{Config, Muxer, Protocol, Substream};

const BOTH: [Protocol; 2] = [Protocol::Lite, Protocol::Yamux];

/// A dialer and a listener muxer over a pipe buffering `buffer` bytes.
async fn pair(protocol: Protocol, buffer: usize, config: Config) -> (Muxer, Muxer) {
    let (a, b) = tokio::io::duplex(buffer);
    let dialer = config
        .clone()
        .upgrade_outbound(a.compat(), protocol)
        .await
        .unwrap();
    let listener = config.upgrade_inbound(b.compat(), protocol).await.unwrap();
    assert_eq!(dialer.protocol(), protocol);
    (dialer, listener)
}

async fn open(m: &mut Muxer) -> Result<Substream, ConnError> {
    poll_fn(|cx| m.poll_outbound_unpin(cx)).await
}

async fn accept(m: &mut Muxer) -> Result<Substream, ConnError> {
    poll_fn(|cx| m.poll_inbound_unpin(cx)).await
}

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as u8)
        .collect()
}

#[tokio::test]
async fn close_implies_flush() {
    for protocol in BOTH {
        let (mut d, mut l) = pair(protocol, 1024, Config::default()).await;
        let data = pattern(1, 1 << 20);
        let mut out = open(&mut d).await.unwrap();
        let writer = {
            let data = data.clone();
            tokio::spawn(async move {
                out.write_all(&data).await.unwrap();
                out.close().await.unwrap();
                // Dropped right after close: nothing written may be lost.
            })
        };
        let mut inc = accept(&mut l).await.unwrap();
        let mut got = Vec::new();
        inc.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert!(got == data, "{protocol:?}: bytes lost or reordered");
    }
}

#[tokio::test]
async fn a_substream_reads_after_its_own_close() {
    for protocol in BOTH {
        let (mut d, mut l) = pair(protocol, 1024, Config::default()).await;
        let mut out = open(&mut d).await.unwrap();
        out.write_all(b"question").await.unwrap();
        out.close().await.unwrap();
        let mut inc = accept(&mut l).await.unwrap();
        let mut q = Vec::new();
        inc.read_to_end(&mut q).await.unwrap();
        assert_eq!(q, b"question");
        inc.write_all(b"answer").await.unwrap();
        inc.close().await.unwrap();
        let mut a = Vec::new();
        out.read_to_end(&mut a).await.unwrap();
        assert_eq!(a, b"answer", "{protocol:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_substreams_over_small_buffers_echo_every_byte() {
    const STREAMS: u32 = 100;
    const LEN: usize = 64 * 1024;
    for protocol in BOTH {
        let (mut d, mut l) = pair(protocol, 512, Config::default()).await;
        let echo = tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..STREAMS {
                let s = accept(&mut l).await.unwrap();
                tasks.spawn(async move {
                    let (mut r, mut w) = s.split();
                    futures::io::copy(&mut r, &mut w).await?;
                    w.close().await
                });
            }
            while let Some(r) = tasks.join_next().await {
                r.unwrap().unwrap();
            }
            l
        });
        let mut tasks = tokio::task::JoinSet::new();
        for seed in 0..STREAMS {
            let s = open(&mut d).await.unwrap();
            tasks.spawn(async move {
                let data = pattern(seed, LEN);
                let (mut r, mut w) = s.split();
                let send = async {
                    w.write_all(&data).await?;
                    w.close().await
                };
                let mut back = Vec::new();
                let (sent, got) = futures::join!(send, r.read_to_end(&mut back));
                sent?;
                got?;
                assert!(back == data, "stream {seed}: the echo differs");
                Ok::<_, io::Error>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        let _l = tokio::time::timeout(Duration::from_secs(60), echo)
            .await
            .expect("the echo side hung")
            .unwrap();
    }
}

#[tokio::test]
async fn a_reset_with_a_code_reaches_the_peer_as_connection_reset() {
    for protocol in BOTH {
        let (mut d, mut l) = pair(protocol, 64 * 1024, Config::default()).await;
        let mut out = open(&mut d).await.unwrap();
        out.write_all(b"x").await.unwrap();
        let mut inc = accept(&mut l).await.unwrap();
        let mut one = [0u8; 1];
        inc.read_exact(&mut one).await.unwrap();
        out.get_mut().reset_with(0x1005);
        let mut rest = Vec::new();
        let err = inc.read_to_end(&mut rest).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{protocol:?}");
    }
}

#[tokio::test]
async fn unpolled_inbound_streams_beyond_the_backlog_are_reset_and_the_connection_lives() {
    for protocol in BOTH {
        let mut conn = mux_yamux_lite::Config::default();
        conn.accept_backlog = 8;
        let config = Config::default().with_connection(conn);
        let (mut d, mut l) = pair(protocol, 64 * 1024, config).await;
        // The listener applies back-pressure by not polling poll_inbound.
        let mut opened = Vec::new();
        for i in 0..12u8 {
            let mut s = open(&mut d).await.unwrap();
            s.write_all(&[i]).await.unwrap();
            s.flush().await.unwrap();
            opened.push(s);
        }
        // The four beyond the backlog are refused: their reads fail.
        for (i, s) in opened.iter_mut().enumerate().skip(8) {
            let mut buf = [0u8; 1];
            let err = s.read(&mut buf).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "stream {i}");
        }
        // The first eight wait, whole, for the listener's accept.
        for i in 0..8u8 {
            let mut s = accept(&mut l).await.unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.unwrap();
            assert_eq!(b[0], i, "{protocol:?}");
        }
        assert!(!d.connection().is_closed() && !l.connection().is_closed());
        assert_eq!(l.connection().stats().streams_refused, 4, "{protocol:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn close_is_bounded_even_when_the_peer_holds_a_stream_open() {
    for protocol in BOTH {
        let (mut d, mut l) = pair(protocol, 64 * 1024, Config::default()).await;
        let _out = open(&mut d).await.unwrap();
        let _held = accept(&mut l).await.unwrap();
        let start = tokio::time::Instant::now();
        poll_fn(|cx| d.poll_close_unpin(cx)).await.unwrap();
        // The default close grace (1 s) plus the flush bound (250 ms).
        let took = start.elapsed();
        assert!(
            took <= Duration::from_millis(1250),
            "{protocol:?}: {took:?}"
        );
        // The peer's muxer reports the end.
        let end = poll_fn(|cx| l.poll_unpin(cx)).await.unwrap_err();
        assert!(
            matches!(end, ConnError::GoAway { .. }),
            "{protocol:?}: {end:?}"
        );
    }
}

#[tokio::test]
async fn close_with_no_stream_open_is_immediate_and_poll_reports_it() {
    for protocol in BOTH {
        let (mut d, mut l) = pair(protocol, 64 * 1024, Config::default()).await;
        let start = std::time::Instant::now();
        poll_fn(|cx| d.poll_close_unpin(cx)).await.unwrap();
        assert!(start.elapsed() < Duration::from_millis(900), "{protocol:?}");
        // Polled again after the end, each poll says the same.
        for _ in 0..2 {
            let end = poll_fn(|cx| d.poll_unpin(cx)).await.unwrap_err();
            assert!(matches!(end, ConnError::Closed), "{protocol:?}: {end:?}");
        }
        let end = poll_fn(|cx| l.poll_unpin(cx)).await.unwrap_err();
        assert!(matches!(end, ConnError::GoAway { code: 0 }), "{end:?}");
        assert!(open(&mut l).await.is_err());
    }
}

#[test]
fn the_upgrade_fails_outside_a_tokio_runtime_instead_of_panicking() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (a, _b) = rt.block_on(async { tokio::io::duplex(1024) });
    let err = futures::executor::block_on(
        Config::default().upgrade_outbound(a.compat(), Protocol::Yamux),
    )
    .unwrap_err();
    assert!(err.to_string().contains("tokio"), "{err}");
}
