//! Hostile peer, malformed input: bad lengths, kinds, flags, handshakes and
//! frames cut short. Each test asserts the exact typed violation, that
//! GO_AWAY(1) is the last frame sent, and that nothing was buffered for it.
#![allow(clippy::arithmetic_side_effects)]

mod support;

use mux_core::StreamError;
use mux_yamux_lite::frame::{Flags, Frame, Hello};
use mux_yamux_lite::session::ProtocolError;
use mux_yamux_lite::wire::lite;
use mux_yamux_lite::wire::WireError;
use mux_yamux_lite::{Config, Role};
use support::{
    bounded, connect, data, expect_protocol_failure, hello, protocol_error, quiet_config, syn,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn length_u32_max_is_frame_too_large_without_waiting_for_the_body() {
    bounded(async {
        let (conn, mut peer) = connect(Role::Server, quiet_config());
        peer.handshake().await;
        // Only the 5-byte header: the reaction must not wait for 4 GiB.
        peer.send_raw(&[lite::KIND_DATA, 0xFF, 0xFF, 0xFF, 0xFF])
            .await;
        let err = expect_protocol_failure(&conn, &mut peer).await;
        assert_eq!(
            err,
            ProtocolError::FrameTooLarge {
                len: u64::from(u32::MAX),
                max: 64 * 1024 + 5,
            }
        );
        assert_eq!(conn.stats().streams, 0);
    })
    .await;
}

#[tokio::test]
async fn length_one_over_the_limit_is_frame_too_large_and_the_limit_itself_is_accepted() {
    bounded(async {
        let mut config = quiet_config();
        config.max_frame_payload = 1024;
        let (conn, mut peer) = connect(Role::Server, config);
        peer.handshake().await;
        // Exactly the limit: a 1024-byte payload (value 1029) is fine.
        peer.send(data(1, Flags::SYN, &[7u8; 1024])).await;
        let mut s = conn.accept_stream().await.unwrap();
        let mut buf = vec![0u8; 1024];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [7u8; 1024]);
        // One byte more is rejected from the header alone.
        peer.send_raw(&[lite::KIND_DATA, 0, 0, 0x04, 0x06]).await;
        let err = expect_protocol_failure(&conn, &mut peer).await;
        assert_eq!(
            err,
            ProtocolError::FrameTooLarge {
                len: 1030,
                max: 1029
            }
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_frame_kind_is_a_protocol_error() {
    bounded(async {
        let (conn, mut peer) = connect(Role::Server, quiet_config());
        peer.handshake().await;
        peer.send_raw(&[0x06, 0, 0, 0, 1, 0xAA]).await;
        let err = expect_protocol_failure(&conn, &mut peer).await;
        assert_eq!(err, ProtocolError::Wire(WireError::UnknownKind(0x06)));
    })
    .await;
}

#[tokio::test]
async fn unknown_flag_bits_on_data_are_a_protocol_error() {
    bounded(async {
        let (conn, mut peer) = connect(Role::Server, quiet_config());
        peer.handshake().await;
        // DATA id 1, flags SYN | 0x08 (yamux 1.0's RST bit), payload "x".
        peer.send_raw(&[lite::KIND_DATA, 0, 0, 0, 6, 0, 0, 0, 1, 0x09, b'x'])
            .await;
        let err = expect_protocol_failure(&conn, &mut peer).await;
        assert_eq!(err, ProtocolError::Wire(WireError::UnknownFlags(0x09)));
        assert_eq!(conn.stats().streams, 0, "the SYN must not open a stream");
    })
    .await;
}

#[tokio::test]
async fn unknown_ping_type_is_a_protocol_error_and_gets_no_pong() {
    bounded(async {
        let (conn, mut peer) = connect(Role::Server, quiet_config());
        peer.handshake().await;
        // PING with type 0 (neither request nor reply).
        peer.send_raw(&[lite::KIND_PING, 0, 0, 0, 5, 0, 0, 0, 0, 9])
            .await;
        let frames = peer.recv_until_eof().await;
        assert!(
            !frames
                .iter()
                .any(|f| matches!(f, Frame::Ping { ack: true, .. })),
            "{frames:?}"
        );
        assert_eq!(frames.last(), Some(&Frame::GoAway { code: 1 }));
        let err = conn.accept_stream().await.unwrap_err();
        assert_eq!(
            protocol_error(&err),
            Some(ProtocolError::Wire(WireError::UnknownFlags(0)))
        );
    })
    .await;
}

#[tokio::test]
async fn control_frame_of_the_wrong_length_is_a_protocol_error() {
    bounded(async {
        let (conn, mut peer) = connect(Role::Server, quiet_config());
        peer.handshake().await;
        // WINDOW_UPDATE with an 8-byte value (must be 9).
        peer.send_raw(&[lite::KIND_WINDOW, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1])
            .await;
        let err = expect_protocol_failure(&conn, &mut peer).await;
        assert_eq!(
            err,
            ProtocolError::Wire(WireError::BadLength {
                kind: lite::KIND_WINDOW,
                len: 8,
                expected: "9",
            })
        );
    })
    .await;
}

#[tokio::test]
async fn stream_frame_before_hello_is_missing_hello_and_opens_nothing() {
    // transcript.rs `a_first_frame_other_than_hello_is_a_protocol_error`
    // checks the GO_AWAY code; this checks the typed error and that the SYN
    // carried by the first frame was not acted on.
    bounded(async {
        let (conn, mut peer) = connect(Role::Server, quiet_config());
        peer.send(data(1, Flags::SYN, b"early")).await;
        let frames = peer.recv_until_eof().await;
        assert!(
            matches!(frames.first(), Some(Frame::Hello(_))),
            "{frames:?}"
        );
        assert!(
            !frames
                .iter()
                .any(|f| matches!(f, Frame::Window { .. } | Frame::Data { .. })),
            "no stream frame may answer a peer without HELLO: {frames:?}"
        );
        assert_eq!(frames.last(), Some(&Frame::GoAway { code: 1 }));
        let err = conn.accept_stream().await.unwrap_err();
        assert_eq!(protocol_error(&err), Some(ProtocolError::MissingHello));
        assert_eq!(conn.stats().streams, 0);
    })
    .await;
}

#[tokio::test]
async fn second_hello_is_duplicate_hello() {
    bounded(async {
        let (conn, mut peer) = connect(Role::Server, quiet_config());
        peer.handshake().await;
        peer.send(hello()).await;
        let err = expect_protocol_failure(&conn, &mut peer).await;
        assert_eq!(err, ProtocolError::DuplicateHello);
    })
    .await;
}

#[tokio::test]
async fn hello_with_another_version_is_unsupported_version() {
    // transcript.rs `unknown_version_gets_go_away_protocol_error` checks the
    // GO_AWAY code and `ConnError::Protocol(_)`; this pins the variant and
    // the version byte it reports.
    bounded(async {
        let (conn, mut peer) = connect(Role::Server, quiet_config());
        peer.send(Frame::Hello(Hello {
            version: 0,
            initial_window: 256 * 1024,
            max_frame_payload: 64 * 1024,
            max_inbound_streams: 1000,
        }))
        .await;
        let err = expect_protocol_failure(&conn, &mut peer).await;
        assert_eq!(err, ProtocolError::UnsupportedVersion(0));
    })
    .await;
}

#[tokio::test]
async fn hello_with_out_of_range_fields_is_bad_hello() {
    bounded(async {
        for (initial_window, max_frame_payload) in [(1u32 << 31, 1024u32), (1024, 0)] {
            let (conn, mut peer) = connect(Role::Server, quiet_config());
            peer.send(Frame::Hello(Hello {
                version: Hello::VERSION,
                initial_window,
                max_frame_payload,
                max_inbound_streams: 1000,
            }))
            .await;
            let err = expect_protocol_failure(&conn, &mut peer).await;
            assert!(
                matches!(err, ProtocolError::BadHello(_)),
                "window {initial_window}, payload {max_frame_payload}: {err:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn truncated_frame_then_eof_is_truncated_and_streams_see_it() {
    bounded(async {
        let (conn, peer) = connect(Role::Server, quiet_config());
        let (mut reader, mut writer) = peer.split();
        writer.send(hello()).await.unwrap();
        assert!(matches!(reader.recv().await, Some(Frame::Hello(_))));
        writer.send(syn(1)).await.unwrap();
        let mut s = conn.accept_stream().await.unwrap();
        // 7 of the 15 bytes of a DATA frame with a 5-byte payload, then EOF.
        let mut frame = support::encode_all([data(1, Flags::NONE, b"hello")]);
        frame.truncate(7);
        writer.send_raw(&frame).await.unwrap();
        writer.shutdown().await.unwrap();

        let mut buf = [0u8; 8];
        let e = s.read(&mut buf).await.unwrap_err();
        let Some(StreamError::ConnectionClosed(reason)) = StreamError::from_io(&e) else {
            panic!("expected ConnectionClosed, got {e:?}");
        };
        assert_eq!(
            protocol_error(reason),
            Some(ProtocolError::Truncated {
                buffered: 7,
                expected: 15,
            })
        );
        // The peer's read side is still open: it learns why.
        let frames = reader.recv_until_eof().await;
        assert_eq!(
            frames.last(),
            Some(&Frame::GoAway { code: 1 }),
            "{frames:?}"
        );
        assert!(s.write_all(b"x").await.is_err());
    })
    .await;
}

#[tokio::test]
async fn peer_vanishing_mid_frame_fails_every_pending_operation() {
    bounded(async {
        let (conn, peer) = connect(Role::Server, quiet_config());
        let (mut reader, mut writer) = peer.split();
        writer
            .send(Frame::Hello(Hello {
                version: Hello::VERSION,
                initial_window: 1024,
                max_frame_payload: 64 * 1024,
                max_inbound_streams: 1000,
            }))
            .await
            .unwrap();
        // HELLO, then the RTT ping (left unanswered).
        assert!(matches!(reader.recv().await, Some(Frame::Hello(_))));
        assert!(matches!(reader.recv().await, Some(Frame::Ping { .. })));
        writer.send(syn(1)).await.unwrap();
        writer.send(syn(3)).await.unwrap();
        let mut reading = conn.accept_stream().await.unwrap();
        let mut writing = conn.accept_stream().await.unwrap();
        let read_task = tokio::spawn(async move { reading.read(&mut [0u8; 8]).await });
        // More than the peer's 1 KiB window plus our send buffer: blocks.
        let write_task = tokio::spawn(async move {
            let r = writing.write_all(&vec![1u8; 1 << 20]).await;
            (r, writing)
        });
        let accept_task = {
            let conn = conn.clone();
            tokio::spawn(async move { conn.accept_stream().await })
        };
        // Drain what the connection sent so far (ACKs, the first 1 KiB).
        let mut seen = 0usize;
        while seen < 1024 {
            match reader.recv().await {
                Some(Frame::Data { id: 3, payload, .. }) => seen += payload.len(),
                Some(_) => {}
                None => panic!("EOF before the window was used"),
            }
        }
        assert!(!read_task.is_finished() && !write_task.is_finished());

        // Half a frame header, then the peer disappears entirely.
        writer.send_raw(&[lite::KIND_DATA, 0, 0]).await.unwrap();
        drop(writer);
        drop(reader);

        let e = read_task.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e:?}");
        assert!(
            matches!(
                StreamError::from_io(&e),
                Some(StreamError::ConnectionClosed(_))
            ),
            "{e:?}"
        );
        let (r, _writing) = write_task.await.unwrap();
        let e = r.unwrap_err();
        assert!(
            matches!(
                StreamError::from_io(&e),
                Some(StreamError::ConnectionClosed(_))
            ),
            "{e:?}"
        );
        let reason = accept_task.await.unwrap().unwrap_err();
        assert_eq!(
            protocol_error(&reason),
            Some(ProtocolError::Truncated {
                buffered: 3,
                expected: 5
            }),
            "{reason:?}"
        );
        let closed = conn.close().await.unwrap_err();
        assert!(
            protocol_error(&closed).is_some(),
            "close reports the failure"
        );
    })
    .await;
}

#[tokio::test]
async fn huge_hello_extension_is_bounded_by_the_frame_limit() {
    bounded(async {
        let mut config = Config::default();
        config.keepalive_interval = None;
        config.max_frame_payload = 1024;
        let (conn, mut peer) = connect(Role::Server, config);
        // A HELLO announcing 1 MiB of "extensions": over the TLV limit.
        let mut raw = vec![lite::KIND_HELLO, 0, 0x10, 0, 13];
        raw.extend_from_slice(&[1, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 3, 0xe8]);
        peer.send_raw(&raw).await;
        let err = expect_protocol_failure(&conn, &mut peer).await;
        assert_eq!(
            err,
            ProtocolError::FrameTooLarge {
                len: (1 << 20) + 13,
                max: 1029
            }
        );
    })
    .await;
}
