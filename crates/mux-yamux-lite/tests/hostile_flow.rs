//! Hostile peer, flow control: data beyond the granted credit, an oversized
//! first SYN frame, window updates that would overflow 2^31 - 1 or u32, and
//! zero-delta updates. Overruns must end the connection with the exact typed
//! violation before anything is buffered; a zero update must grant nothing.
#![allow(clippy::arithmetic_side_effects)]

mod support;

use mux_core::{MuxedStream, StreamError};
use mux_yamux_lite::config::MAX_WINDOW;
use mux_yamux_lite::frame::{Flags, Frame};
use mux_yamux_lite::session::ProtocolError;
use mux_yamux_lite::{Connection, Role, Wire};
use support::{
    bounded, connect, data, expect_protocol_failure, handshake_with_window, on_each_wire,
    quiet_config, quiet_on, syn, RawPeer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ack(id: u32, delta: u32) -> Frame {
    Frame::Window {
        id,
        flags: Flags::ACK,
        delta,
    }
}

fn window(id: u32, delta: u32) -> Frame {
    Frame::Window {
        id,
        flags: Flags::NONE,
        delta,
    }
}

/// A server connection, after the handshake, whose streams start with the
/// smallest window `wire` allows (yamux peers assume 256 KiB), and that
/// window.
async fn server_with_least_window(wire: Wire) -> (Connection, RawPeer, u32) {
    let w = match wire {
        Wire::Yamux => 256 * 1024,
        _ => 1024,
    };
    let mut config = quiet_on(wire);
    config.initial_window = w;
    let (conn, mut peer) = connect(Role::Server, config);
    peer.handshake().await;
    (conn, peer, w)
}

#[tokio::test]
async fn data_beyond_the_returned_credit_is_window_exceeded() {
    on_each_wire(|wire| {
        bounded(async move {
            let (conn, mut peer, w) = server_with_least_window(wire).await;
            peer.send(data(1, Flags::SYN, &vec![1u8; w as usize])).await;
            let mut s = conn.accept_stream().await.unwrap();
            let read = w / 2 + w / 8;
            let mut buf = vec![0u8; read as usize];
            s.read_exact(&mut buf).await.unwrap();
            // Reading past half the window returns what was read, plus
            // whatever auto-tuning grows the window by (the update may
            // carry the ACK if it was not framed yet).
            let credit = loop {
                match peer.recv().await {
                    Some(Frame::Window {
                        id: 1, delta: 0, ..
                    }) => {} // the bare ACK
                    Some(Frame::Window { id: 1, delta, .. }) => {
                        assert!(delta >= read, "{delta} returned of {read} read");
                        break delta;
                    }
                    other => panic!("expected the window update, got {other:?}"),
                }
            };
            // The peer now has that much credit and sends one byte more.
            peer.send(data(1, Flags::NONE, &vec![2u8; credit as usize + 1]))
                .await;
            let err = expect_protocol_failure(&conn, &mut peer).await;
            assert_eq!(
                err,
                ProtocolError::WindowExceeded {
                    id: 1,
                    len: credit as usize + 1,
                    credit
                }
            );
            // Nothing of the overrun was buffered: the unread bytes remain,
            // then the stream fails with the connection.
            let mut rest = Vec::new();
            let e = s.read_to_end(&mut rest).await.unwrap_err();
            assert!(rest == vec![1u8; (w - read) as usize]);
            assert!(matches!(
                StreamError::from_io(&e),
                Some(StreamError::ConnectionClosed(_))
            ));
        })
    })
    .await;
}

#[tokio::test]
async fn first_syn_frame_larger_than_the_initial_window_is_window_exceeded() {
    // GHSA-vxx9-2994-q338 (an oversized DATA|SYN reached an `expect`).
    // transcript.rs `data_beyond_the_window_is_a_protocol_error` checks the
    // GO_AWAY code; this pins the variant and that no stream survives.
    on_each_wire(|wire| {
        bounded(async move {
            let (conn, mut peer, w) = server_with_least_window(wire).await;
            peer.send(data(
                1,
                Flags::SYN.with(Flags::FIN),
                &vec![0u8; w as usize + 1],
            ))
            .await;
            let err = expect_protocol_failure(&conn, &mut peer).await;
            assert_eq!(
                err,
                ProtocolError::WindowExceeded {
                    id: 1,
                    len: w as usize + 1,
                    credit: w
                }
            );
            assert_eq!(conn.stats().streams, 0, "the half-opened stream is dropped");
        })
    })
    .await;
}

#[tokio::test]
async fn window_update_to_exactly_the_maximum_is_accepted_and_one_more_is_window_overflow() {
    on_each_wire(|wire| {
        bounded(async move {
            let (conn, mut peer) = connect(Role::Client, quiet_on(wire));
            handshake_with_window(&mut peer, 256 * 1024).await;
            let mut s = conn.open_stream().await.unwrap();
            assert_eq!(peer.recv_significant().await, Some(syn(1)));
            // 256 KiB + this = 2^31 - 1 exactly: legal.
            peer.send(ack(1, MAX_WINDOW - 256 * 1024)).await;
            s.write_all(b"at the maximum").await.unwrap();
            s.flush().await.unwrap();
            assert_eq!(
                peer.recv_significant().await,
                Some(data(1, Flags::NONE, b"at the maximum"))
            );
            // 14 bytes used, so 14 more fit; 15 do not.
            peer.send(window(1, 14)).await;
            peer.send(window(1, 1)).await;
            let err = expect_protocol_failure(&conn, &mut peer).await;
            assert_eq!(err, ProtocolError::WindowOverflow(1));
        })
    })
    .await;
}

#[tokio::test]
async fn window_updates_past_u32_from_an_empty_window_are_window_overflow() {
    // GHSA-4w32-2493-32g7: 0xFFFF0000 twice overflowed a u32 and panicked.
    // transcript.rs covers one 0xFFFF0000 on a 256 KiB window; here the
    // window starts at 0 and the deltas alone reach or pass u32::MAX.
    bounded(async {
        for deltas in [
            &[0xFFFF_0000u32, 0xFFFF_0000][..],
            &[u32::MAX],
            &[MAX_WINDOW, 1],
        ] {
            let (conn, mut peer) = connect(Role::Client, quiet_config());
            handshake_with_window(&mut peer, 0).await;
            let _s = conn.open_stream().await.unwrap();
            assert_eq!(peer.recv_significant().await, Some(syn(1)));
            peer.send(ack(1, 0)).await;
            for &d in deltas {
                peer.send(window(1, d)).await;
            }
            let err = expect_protocol_failure(&conn, &mut peer).await;
            assert_eq!(err, ProtocolError::WindowOverflow(1), "{deltas:x?}");
        }
    })
    .await;
}

#[tokio::test]
async fn zero_delta_window_update_grants_nothing() {
    bounded(async {
        let (conn, mut peer) = connect(Role::Client, quiet_config());
        handshake_with_window(&mut peer, 0).await;
        let mut s = conn.open_stream().await.unwrap();
        assert_eq!(peer.recv_significant().await, Some(syn(1)));
        s.write_all(&[9u8; 100]).await.unwrap(); // buffered: window 0
        peer.send(ack(1, 0)).await;
        for _ in 0..3 {
            peer.send(window(1, 0)).await;
        }
        // A ping round trip proves the updates were processed.
        peer.send(Frame::Ping {
            ack: false,
            opaque: 5,
        })
        .await;
        assert_eq!(
            peer.recv().await,
            Some(Frame::Ping {
                ack: true,
                opaque: 5
            })
        );
        assert_eq!(conn.stats().bytes_sent, 0, "a zero update granted credit");
        assert!(!conn.is_closed());
        // Real credit of 40 releases exactly 40 bytes.
        peer.send(window(1, 40)).await;
        assert_eq!(
            peer.recv_significant().await,
            Some(data(1, Flags::NONE, &[9u8; 40]))
        );
        peer.send(window(1, 60)).await;
        assert_eq!(
            peer.recv_significant().await,
            Some(data(1, Flags::NONE, &[9u8; 60]))
        );
        assert_eq!(conn.stats().bytes_sent, 100);
        s.reset();
    })
    .await;
}
