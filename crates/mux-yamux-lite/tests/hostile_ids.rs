//! Hostile peer, stream ids and stream state: unknown, refused, reset and
//! reused ids, wrong parity, id 0, data after FIN, FIN twice, frames around
//! GO_AWAY. Stream faults must reset only their stream; id faults end the
//! connection with the exact typed violation.
#![allow(clippy::arithmetic_side_effects)]

mod support;

use mux_core::{ConnError, MuxedStream, ShutdownOutcome, StreamError};
use mux_yamux_lite::frame::{go_away, reset_code, Flags, Frame};
use mux_yamux_lite::session::ProtocolError;
use mux_yamux_lite::{Connection, Role, Wire};
use support::{
    bounded, connect, data, encode_all, encode_on, expect_protocol_failure, handshake_with_window,
    on_each_wire, quiet_config, quiet_on, syn, RawPeer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The typed stream error inside an `io::Error`.
fn stream_err(e: &std::io::Error) -> StreamError {
    match StreamError::from_io(e) {
        Some(s) => s.clone(),
        None => panic!("not a StreamError: {e:?}"),
    }
}

/// Proves the connection still works: the peer opens `id`, sends a
/// message with FIN, and the application reads it back whole.
async fn fresh_stream_still_works(conn: &Connection, peer: &mut RawPeer, id: u32) {
    peer.send(data(id, Flags::SYN.with(Flags::FIN), b"still in sync"))
        .await;
    let mut s = match conn.accept_stream().await {
        Ok(s) => s,
        Err(e) => panic!("accept after the attack failed: {e:?}"),
    };
    assert_eq!(s.id().get(), id);
    let mut got = String::new();
    if let Err(e) = s.read_to_string(&mut got).await {
        panic!("read after the attack failed: {e:?}");
    }
    assert_eq!(got, "still in sync");
}

#[tokio::test]
async fn frames_for_a_never_opened_stream_are_unknown_stream() {
    // The lite wire only: docs/PROTOCOL.md §7 changes this rule on yamux
    // (yamux_wire.rs tests the yamux form).
    // transcript.rs `frames_for_a_never_opened_stream_are_a_protocol_error`
    // covers DATA's GO_AWAY code; this pins the variant for every stream
    // frame kind and for both parities.
    bounded(async {
        let frames = [
            data(5, Flags::NONE, b"?"),
            Frame::Window {
                id: 5,
                flags: Flags::NONE,
                delta: 10,
            },
            Frame::Reset { id: 5, code: 0 },
            // Our own parity (server: even), an id we never opened.
            data(2, Flags::NONE, b"?"),
            Frame::Reset { id: 2, code: 0 },
        ];
        for frame in frames {
            let (conn, mut peer) = connect(Role::Server, quiet_config());
            peer.handshake().await;
            let id = match &frame {
                Frame::Data { id, .. } | Frame::Window { id, .. } | Frame::Reset { id, .. } => *id,
                _ => unreachable!(),
            };
            peer.send(frame.clone()).await;
            let err = expect_protocol_failure(&conn, &mut peer).await;
            assert_eq!(err, ProtocolError::UnknownStream(id), "{frame:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn data_for_a_refused_stream_is_discarded_and_framing_stays_in_sync() {
    on_each_wire(|wire| {
        bounded(async move {
            let mut config = quiet_on(wire);
            config.max_inbound_streams = 0;
            let (conn, mut peer) = connect(Role::Server, config);
            peer.handshake().await;
            // The SYN and data the peer sent before learning of the refusal.
            peer.send(data(1, Flags::SYN, &[1u8; 1000])).await;
            peer.send(data(1, Flags::NONE, &[2u8; 60_000])).await;
            peer.send(data(1, Flags::FIN, &[3u8; 1000])).await;
            peer.send(Frame::Reset { id: 1, code: 0 }).await;
            assert_eq!(
                peer.recv_significant().await,
                Some(Frame::Reset {
                    id: 1,
                    code: reset_code::REFUSED
                })
            );
            let stats = conn.stats();
            assert_eq!((stats.streams, stats.streams_refused), (0, 1));
            assert!(!conn.is_closed());
            // A ping is answered: the frames after the discarded ones decode.
            peer.send(Frame::Ping {
                ack: false,
                opaque: 77,
            })
            .await;
            assert_eq!(
                peer.recv_significant().await,
                Some(Frame::Ping {
                    ack: true,
                    opaque: 77
                })
            );
            assert_eq!(conn.stats().streams, 0, "nothing buffered for stream 1");
            drop(conn);
        })
    })
    .await;
}

#[tokio::test]
async fn data_for_a_stream_we_reset_is_discarded_and_framing_stays_in_sync() {
    on_each_wire(|wire| {
        bounded(async move {
            let (conn, mut peer) = connect(Role::Server, quiet_on(wire));
            peer.handshake().await;
            peer.send(syn(1)).await;
            let mut s = conn.accept_stream().await.unwrap();
            assert_eq!(
                peer.recv_significant().await,
                Some(Frame::Window {
                    id: 1,
                    flags: Flags::ACK,
                    delta: 0
                })
            );
            s.reset_with(5);
            drop(s);
            assert_eq!(
                peer.recv_significant().await,
                Some(Frame::Reset { id: 1, code: 5 })
            );
            // In flight before the peer saw the reset: a full window, a FIN,
            // a window update and a reset of its own. All are dropped.
            peer.send(data(1, Flags::NONE, &[0u8; 64 * 1024])).await;
            peer.send(data(1, Flags::NONE, &[0u8; 64 * 1024])).await;
            peer.send(data(1, Flags::FIN, &[0u8; 64 * 1024])).await;
            peer.send(Frame::Window {
                id: 1,
                flags: Flags::NONE,
                delta: 1,
            })
            .await;
            peer.send(Frame::Reset { id: 1, code: 9 }).await;
            fresh_stream_still_works(&conn, &mut peer, 3).await;
            let stats = conn.stats();
            assert_eq!(stats.peer_error_resets, 0);
            assert!(stats.streams <= 1, "stream 1 was reclaimed: {stats:?}");
        })
    })
    .await;
}

#[tokio::test]
async fn syn_with_our_own_parity_is_wrong_parity() {
    on_each_wire(|wire| {
        bounded(async move {
            let (conn, mut peer) = connect(Role::Server, quiet_on(wire));
            peer.handshake().await;
            peer.send(syn(2)).await;
            let err = expect_protocol_failure(&conn, &mut peer).await;
            assert_eq!(err, ProtocolError::WrongParity(2));
            assert_eq!(conn.stats().streams, 0);
        })
    })
    .await;
}

#[tokio::test]
async fn stream_id_zero_in_any_stream_frame_is_stream_id_zero() {
    on_each_wire(|wire| {
        bounded(async move {
            let frames = [
                data(0, Flags::SYN, b"x"),
                syn(0),
                Frame::Window {
                    id: 0,
                    flags: Flags::NONE,
                    delta: 1,
                },
                Frame::Reset { id: 0, code: 0 },
            ];
            for frame in frames {
                let (conn, mut peer) = connect(Role::Server, quiet_on(wire));
                peer.handshake().await;
                peer.send(frame.clone()).await;
                let err = expect_protocol_failure(&conn, &mut peer).await;
                assert_eq!(err, ProtocolError::StreamIdZero, "{frame:?}");
                assert_eq!(conn.stats().streams, 0);
            }
        })
    })
    .await;
}

#[tokio::test]
async fn reused_or_lower_stream_id_is_stream_id_reused() {
    // The lite wire only: docs/PROTOCOL.md §7 changes this rule on yamux
    // (yamux_wire.rs tests the yamux form).
    bounded(async {
        // (ids opened in order, the id that must be rejected)
        for (opened, reused) in [(&[1u32][..], 1u32), (&[5][..], 3), (&[1, 3][..], 1)] {
            let (conn, mut peer) = connect(Role::Server, quiet_config());
            peer.handshake().await;
            for &id in opened {
                peer.send(data(id, Flags::SYN.with(Flags::FIN), b"")).await;
            }
            peer.send(syn(reused)).await;
            let err = expect_protocol_failure(&conn, &mut peer).await;
            assert_eq!(err, ProtocolError::StreamIdReused(reused), "{opened:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn ack_for_a_stream_the_peer_opened_is_unexpected_ack() {
    on_each_wire(|wire| {
        bounded(async move {
            let (conn, mut peer) = connect(Role::Server, quiet_on(wire));
            peer.handshake().await;
            peer.send(syn(1)).await;
            peer.send(Frame::Window {
                id: 1,
                flags: Flags::ACK,
                delta: 0,
            })
            .await;
            let err = expect_protocol_failure(&conn, &mut peer).await;
            assert_eq!(err, ProtocolError::UnexpectedAck(1));
        })
    })
    .await;
}

#[tokio::test]
async fn data_after_fin_resets_only_that_stream_with_stream_closed() {
    on_each_wire(|wire| {
        bounded(async move {
            let (conn, mut peer) = connect(Role::Server, quiet_on(wire));
            peer.handshake().await;
            peer.send(data(1, Flags::SYN.with(Flags::FIN), b"a")).await;
            peer.send(data(3, Flags::SYN, b"other ")).await;
            peer.send(data(1, Flags::NONE, b"after fin")).await;
            assert_eq!(
                peer.recv_significant().await,
                Some(Frame::Reset {
                    id: 1,
                    code: reset_code::STREAM_CLOSED
                })
            );
            let mut faulty = conn.accept_stream().await.unwrap();
            let mut other = conn.accept_stream().await.unwrap();
            assert_eq!((faulty.id().get(), other.id().get()), (1, 3));
            let e = faulty.read(&mut [0u8; 16]).await.unwrap_err();
            assert!(matches!(
                stream_err(&e),
                StreamError::Reset {
                    code: reset_code::STREAM_CLOSED,
                    remote: false
                }
            ));
            assert_eq!(conn.stats().peer_error_resets, 1);
            // The other stream is untouched: data both ways, then FIN.
            peer.send(data(3, Flags::FIN, b"stream")).await;
            let mut got = String::new();
            other.read_to_string(&mut got).await.unwrap();
            assert_eq!(got, "other stream");
            other.write_all(b"reply").await.unwrap();
            other.shutdown().await.unwrap();
            assert_eq!(peer.read_until_fin(3).await, b"reply");
            assert!(!conn.is_closed());
        })
    })
    .await;
}

#[tokio::test]
async fn second_fin_resets_that_stream_on_the_lite_wire_and_is_ignored_on_the_yamux_wire() {
    on_each_wire(|wire| {
        bounded(async move {
            let (conn, mut peer) = connect(Role::Server, quiet_on(wire));
            peer.handshake().await;
            peer.send(data(1, Flags::SYN.with(Flags::FIN), b"a")).await;
            peer.send(syn(3)).await;
            peer.send(Frame::Window {
                id: 1,
                flags: Flags::FIN,
                delta: 0,
            })
            .await;
            let mut faulty = conn.accept_stream().await.unwrap();
            let mut other = conn.accept_stream().await.unwrap();
            if wire == Wire::Lite {
                assert_eq!(
                    peer.recv_significant().await,
                    Some(Frame::Reset {
                        id: 1,
                        code: reset_code::STREAM_CLOSED
                    })
                );
                let e = faulty.read(&mut [0u8; 16]).await.unwrap_err();
                assert!(matches!(
                    stream_err(&e),
                    StreamError::Reset {
                        code: reset_code::STREAM_CLOSED,
                        remote: false
                    }
                ));
                assert_eq!(conn.stats().peer_error_resets, 1);
            } else {
                // rust-yamux closes twice with two FINs: the stream reads
                // whole and still answers.
                let mut got = Vec::new();
                faulty.read_to_end(&mut got).await.unwrap();
                assert_eq!(got, b"a");
                faulty.write_all(b"answer").await.unwrap();
                faulty.shutdown().await.unwrap();
                assert_eq!(peer.read_until_fin(1).await, b"answer");
                assert_eq!(conn.stats().peer_error_resets, 0);
            }
            peer.send(data(3, Flags::FIN, b"fine")).await;
            let mut got = String::new();
            other.read_to_string(&mut got).await.unwrap();
            assert_eq!(got, "fine");
            assert!(!conn.is_closed());
        })
    })
    .await;
}

#[tokio::test]
async fn syn_after_the_peers_go_away_is_refused_and_existing_streams_continue() {
    on_each_wire(|wire| {
        bounded(async move {
            let (conn, mut peer) = connect(Role::Server, quiet_on(wire));
            peer.handshake().await;
            peer.send(syn(1)).await;
            let mut s = conn.accept_stream().await.unwrap();
            peer.send(Frame::GoAway {
                code: go_away::NORMAL,
            })
            .await;
            // A peer that says "no new streams" and opens one anyway.
            peer.send(data(3, Flags::SYN, b"sneaky")).await;
            loop {
                match peer.recv_significant().await {
                    Some(Frame::Window { id: 1, .. }) => {} // the ACK
                    Some(f) => {
                        assert_eq!(
                            f,
                            Frame::Reset {
                                id: 3,
                                code: reset_code::REFUSED
                            }
                        );
                        break;
                    }
                    None => panic!("EOF"),
                }
            }
            assert_eq!(conn.stats().streams_refused, 1);
            let err = conn.accept_stream().await.unwrap_err();
            assert!(matches!(err, ConnError::GoAway { code: 0 }), "{err:?}");
            // Shutting down: a pool must not pick it for new streams.
            assert!(conn.is_closed());
            let err = conn.open_stream().await.unwrap_err();
            assert!(matches!(err, ConnError::GoAway { code: 0 }), "{err:?}");
            peer.send(data(1, Flags::FIN, b"old stream")).await;
            let mut got = String::new();
            s.read_to_string(&mut got).await.unwrap();
            assert_eq!(got, "old stream");
            s.write_all(b"still here").await.unwrap();
            s.shutdown().await.unwrap();
            assert_eq!(peer.read_until_fin(1).await, b"still here");
        })
    })
    .await;
}

#[tokio::test]
async fn syn_after_our_go_away_is_refused_while_open_streams_drain() {
    // The lite wire only: on yamux a shutdown's GO_AWAY waits for the
    // streams (docs/PROTOCOL.md §7; yamux_wire.rs tests that form).
    bounded(async {
        let (conn, mut peer) = connect(Role::Server, quiet_config());
        peer.handshake().await;
        peer.send(syn(1)).await;
        let mut s = conn.accept_stream().await.unwrap();
        let closing = {
            let conn = conn.clone();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
            tokio::spawn(async move { conn.shutdown(deadline).await })
        };
        loop {
            match peer.recv_significant().await {
                Some(Frame::GoAway { code }) => {
                    assert_eq!(code, go_away::NORMAL);
                    break;
                }
                Some(Frame::Window { id: 1, .. }) => {}
                other => panic!("expected GO_AWAY(0), got {other:?}"),
            }
        }
        peer.send(data(3, Flags::SYN, b"too late")).await;
        assert_eq!(
            peer.recv_significant().await,
            Some(Frame::Reset {
                id: 3,
                code: reset_code::REFUSED
            })
        );
        // Stream 1 drains normally in both directions.
        peer.send(data(1, Flags::FIN, b"last words")).await;
        let mut got = String::new();
        s.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "last words");
        s.write_all(b"bye").await.unwrap();
        s.shutdown().await.unwrap();
        assert_eq!(peer.read_until_fin(1).await, b"bye");
        assert_eq!(peer.recv().await, None, "transport closed once drained");
        drop(peer);
        assert_eq!(closing.await.unwrap().unwrap(), ShutdownOutcome::Drained);
        assert_eq!(conn.stats().streams_refused, 1);
    })
    .await;
}

#[tokio::test]
async fn nothing_follows_our_protocol_error_go_away() {
    on_each_wire(|wire| {
        bounded(async move {
            let (conn, mut peer) = connect(Role::Server, quiet_on(wire));
            peer.handshake().await;
            // One write: a fatal frame, then frames that would each get a reply.
            let burst = encode_on(
                wire,
                [
                    data(0, Flags::NONE, b"fatal"),
                    Frame::Ping {
                        ack: false,
                        opaque: 1234,
                    },
                    syn(1),
                    data(3, Flags::SYN, b"x"),
                ],
            );
            peer.send_raw(&burst).await;
            let frames = peer.recv_until_eof().await;
            assert_eq!(
                frames,
                [Frame::GoAway {
                    code: go_away::PROTOCOL_ERROR
                }],
                "no pong, ACK or RESET may follow the GO_AWAY"
            );
            let err = conn.accept_stream().await.unwrap_err();
            assert_eq!(
                support::protocol_error(&err),
                Some(ProtocolError::StreamIdZero)
            );
            assert_eq!(conn.stats().streams, 0);
        })
    })
    .await;
}

#[tokio::test]
async fn ids_the_peer_skipped_are_closed_and_their_frames_discarded() {
    // The lite wire only: docs/PROTOCOL.md §7 changes this rule on yamux
    // (yamux_wire.rs tests the yamux form).
    bounded(async {
        let (conn, mut peer) = connect(Role::Server, quiet_config());
        peer.handshake().await;
        // The peer opens 5, skipping 1 and 3: as in HTTP/2, they are closed.
        peer.send(data(5, Flags::SYN.with(Flags::FIN), b"five"))
            .await;
        let mut five = conn.accept_stream().await.unwrap();
        for frame in [
            data(3, Flags::NONE, b"late"),
            Frame::Window {
                id: 1,
                flags: Flags::NONE,
                delta: 10,
            },
            Frame::Reset { id: 3, code: 0 },
        ] {
            peer.send(frame).await;
        }
        let mut got = String::new();
        five.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "five");
        fresh_stream_still_works(&conn, &mut peer, 7).await;
        assert!(!conn.is_closed());
        // Above the highest id the peer opened, an id was never opened.
        peer.send(data(11, Flags::NONE, b"?")).await;
        let err = expect_protocol_failure(&conn, &mut peer).await;
        assert_eq!(err, ProtocolError::UnknownStream(11));
    })
    .await;
}

#[tokio::test]
async fn a_protocol_error_drops_every_queued_frame_but_the_go_away() {
    // The lite wire only: it needs a window of 0, which a yamux peer cannot
    // announce.
    bounded(async {
        let (conn, mut peer) = connect(Role::Client, quiet_config());
        // A window of 0: written bytes wait in the stream until credit comes.
        handshake_with_window(&mut peer, 0).await;
        let mut s = conn.open_stream().await.unwrap();
        s.write_all(b"queued, never framed").await.unwrap();
        assert_eq!(peer.recv_significant().await, Some(syn(1)));
        // One write: credit (the queued bytes could now be framed), then a
        // fatal frame, both decoded before any output is pulled.
        let burst = encode_all([
            Frame::Window {
                id: 1,
                flags: Flags::ACK,
                delta: 1 << 20,
            },
            data(0, Flags::NONE, b"fatal"),
        ]);
        peer.send_raw(&burst).await;
        let frames = peer.recv_until_eof().await;
        assert_eq!(
            frames,
            [Frame::GoAway {
                code: go_away::PROTOCOL_ERROR
            }],
            "the queued DATA may not follow or precede the GO_AWAY"
        );
        let e = s.flush().await.unwrap_err();
        match stream_err(&e) {
            StreamError::ConnectionClosed(ConnError::Protocol(_)) => {}
            other => panic!("the writer must learn of the protocol error: {other:?}"),
        }
    })
    .await;
}
