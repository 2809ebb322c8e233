//! Wire transcripts: a raw-frame peer sends and expects exact frames.

mod support;

use mux_core::{ConnError, MuxedStream, StreamError};
use mux_yamux_lite::frame::{go_away, reset_code, Flags, Frame, Hello};
use mux_yamux_lite::{Config, Role};
use support::{bounded, connect, data, hello, quiet_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn syn(id: u32) -> Frame {
    Frame::Window {
        id,
        flags: Flags::SYN,
        delta: 0,
    }
}

#[tokio::test]
async fn hello_then_rtt_ping_are_the_first_frames() {
    let (conn, mut peer) = connect(Role::Client, Config::default());
    let h = peer.handshake().await;
    assert_eq!(h.version, Hello::VERSION);
    assert_eq!(h.initial_window, 256 * 1024);
    assert_eq!(h.max_frame_payload, 64 * 1024);
    assert_eq!(h.max_inbound_streams, 1000);
    drop(conn);
}

#[tokio::test]
async fn open_is_visible_before_any_data() {
    let (conn, mut peer) = connect(Role::Client, Config::default());
    peer.handshake().await;
    let stream = conn.open_stream().await.unwrap();
    assert_eq!(stream.id().get(), 1);
    assert_eq!(peer.recv_significant().await, Some(syn(1)));
    let second = conn.open_stream().await.unwrap();
    assert_eq!(second.id().get(), 3, "client ids are odd and increase by 2");
    assert_eq!(peer.recv_significant().await, Some(syn(3)));
}

#[tokio::test]
async fn accepting_a_stream_sends_ack_then_data_and_fin() {
    let (conn, mut peer) = connect(Role::Client, Config::default());
    peer.handshake().await;
    peer.send(Frame::Data {
        id: 2,
        flags: Flags::SYN,
        payload: "hi".into(),
    })
    .await;
    let mut s = conn.accept_stream().await.unwrap();
    assert_eq!(s.id().get(), 2);
    assert_eq!(
        peer.recv_significant().await,
        Some(Frame::Window {
            id: 2,
            flags: Flags::ACK,
            delta: 0
        })
    );
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hi");
    s.write_all(b"hello").await.unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(peer.read_until_fin(2).await, b"hello");
    peer.send(Frame::Window {
        id: 2,
        flags: Flags::FIN,
        delta: 0,
    })
    .await;
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn reset_with_code_reaches_the_peer() {
    let (conn, mut peer) = connect(Role::Client, Config::default());
    peer.handshake().await;
    let mut s = conn.open_stream().await.unwrap();
    assert_eq!(peer.recv_significant().await, Some(syn(1)));
    s.reset_with(42);
    assert_eq!(
        peer.recv_significant().await,
        Some(Frame::Reset { id: 1, code: 42 })
    );
    let err = s.write_all(b"x").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    let typed = StreamError::from_io(&err).unwrap();
    assert_eq!(typed.reset_code(), Some(42));
    assert!(!typed.is_remote());
}

#[tokio::test]
async fn reset_from_peer_fails_reads_and_writes_as_remote() {
    let (conn, mut peer) = connect(Role::Client, Config::default());
    peer.handshake().await;
    let mut s = conn.open_stream().await.unwrap();
    assert_eq!(peer.recv_significant().await, Some(syn(1)));
    peer.send(Frame::Data {
        id: 1,
        flags: Flags::ACK,
        payload: "unread".into(),
    })
    .await;
    peer.send(Frame::Reset { id: 1, code: 7 }).await;
    let mut buf = [0u8; 16];
    // Unread data is dropped by the reset; the read may race the frames
    // only up to the data arriving, so retry until the reset shows.
    let err = loop {
        match s.read(&mut buf).await {
            Ok(n) => assert!(n > 0, "a reset stream must not report EOF"),
            Err(e) => break e,
        }
    };
    let typed = StreamError::from_io(&err).unwrap();
    assert!(typed.is_reset() && typed.is_remote());
    assert_eq!(typed.reset_code(), Some(7));
    assert!(s.write_all(b"x").await.is_err());
}

#[tokio::test]
async fn unknown_version_gets_go_away_protocol_error() {
    let (conn, mut peer) = connect(Role::Server, Config::default());
    peer.send(Frame::Hello(Hello {
        version: 9,
        initial_window: 1,
        max_frame_payload: 1,
        max_inbound_streams: 1,
    }))
    .await;
    assert_eq!(peer.go_away_then_eof().await, Some(go_away::PROTOCOL_ERROR));
    let err = conn.accept_stream().await.unwrap_err();
    assert!(matches!(err, ConnError::Protocol(_)), "{err}");
}

#[tokio::test]
async fn a_first_frame_other_than_hello_is_a_protocol_error() {
    let (_conn, mut peer) = connect(Role::Server, Config::default());
    peer.send(syn(1)).await;
    assert_eq!(peer.go_away_then_eof().await, Some(go_away::PROTOCOL_ERROR));
}

#[tokio::test]
async fn data_beyond_the_window_is_a_protocol_error() {
    let mut config = Config::default();
    config.initial_window = 1024;
    let (_conn, mut peer) = connect(Role::Server, config);
    peer.handshake().await;
    peer.send(Frame::Data {
        id: 1,
        flags: Flags::SYN,
        payload: vec![0u8; 1025].into(),
    })
    .await;
    assert_eq!(peer.go_away_then_eof().await, Some(go_away::PROTOCOL_ERROR));
}

#[tokio::test]
async fn excess_inbound_stream_is_refused_alone() {
    let mut config = Config::default();
    config.max_inbound_streams = 2;
    let (conn, mut peer) = connect(Role::Server, config);
    peer.handshake().await;
    for id in [1, 3, 5] {
        peer.send(syn(id)).await;
    }
    assert_eq!(
        peer.recv_significant().await,
        Some(Frame::Reset {
            id: 5,
            code: reset_code::REFUSED
        })
    );
    let mut a = conn.accept_stream().await.unwrap();
    let b = conn.accept_stream().await.unwrap();
    assert_eq!((a.id().get(), b.id().get()), (1, 3));
    peer.send(Frame::Data {
        id: 1,
        flags: Flags::FIN,
        payload: "still alive".into(),
    })
    .await;
    let mut got = String::new();
    a.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "still alive");
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn ping_is_answered_with_the_same_opaque() {
    let (_conn, mut peer) = connect(Role::Server, Config::default());
    peer.handshake().await;
    peer.send(Frame::Ping {
        ack: false,
        opaque: 0xDEAD_BEEF,
    })
    .await;
    assert_eq!(
        peer.recv().await,
        Some(Frame::Ping {
            ack: true,
            opaque: 0xDEAD_BEEF
        })
    );
}

#[tokio::test(start_paused = true)]
async fn keepalive_timeout_fails_every_stream() {
    let mut config = Config::default();
    config.keepalive_interval = Some(std::time::Duration::from_secs(10));
    config.keepalive_timeout = std::time::Duration::from_secs(5);
    let (conn, mut peer) = connect(Role::Client, config);
    peer.send(hello()).await;
    assert!(matches!(peer.recv().await, Some(Frame::Hello(_))));
    // The RTT ping goes unanswered: the peer has gone silent.
    assert!(matches!(
        peer.recv().await,
        Some(Frame::Ping { ack: false, .. })
    ));
    let mut s = conn.open_stream().await.unwrap();
    let mut buf = [0u8; 1];
    let err = s.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(matches!(
        StreamError::from_io(&err),
        Some(StreamError::ConnectionClosed(ConnError::KeepaliveTimeout))
    ));
    let mut code = None;
    while let Some(f) = peer.recv().await {
        if let Frame::GoAway { code: c } = f {
            code = Some(c);
        }
    }
    assert_eq!(code, Some(go_away::KEEPALIVE_TIMEOUT));
}

#[tokio::test]
async fn window_update_past_the_maximum_is_a_protocol_error() {
    let (conn, mut peer) = connect(Role::Client, Config::default());
    peer.handshake().await;
    let _s = conn.open_stream().await.unwrap();
    assert_eq!(peer.recv_significant().await, Some(syn(1)));
    peer.send(Frame::Window {
        id: 1,
        flags: Flags::ACK,
        delta: 0xFFFF_0000,
    })
    .await;
    assert_eq!(peer.go_away_then_eof().await, Some(go_away::PROTOCOL_ERROR));
}

#[tokio::test]
async fn frames_for_a_never_opened_stream_are_a_protocol_error() {
    let (_conn, mut peer) = connect(Role::Client, Config::default());
    peer.handshake().await;
    peer.send(Frame::Data {
        id: 4,
        flags: Flags::NONE,
        payload: "?".into(),
    })
    .await;
    assert_eq!(peer.go_away_then_eof().await, Some(go_away::PROTOCOL_ERROR));
}

#[tokio::test]
async fn late_data_for_a_finished_stream_is_discarded() {
    let (conn, mut peer) = connect(Role::Server, quiet_config());
    peer.handshake().await;
    peer.send(Frame::Data {
        id: 1,
        flags: Flags::SYN.with(Flags::FIN),
        payload: "a".into(),
    })
    .await;
    let mut s = conn.accept_stream().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    s.shutdown().await.unwrap();
    drop(s);
    assert_eq!(peer.read_until_fin(1).await, b"");
    // Stream 1 is gone; a straggler for it is dropped, framing stays in sync.
    peer.send(Frame::Window {
        id: 1,
        flags: Flags::NONE,
        delta: 5,
    })
    .await;
    peer.send(Frame::Data {
        id: 3,
        flags: Flags::SYN.with(Flags::FIN),
        payload: "b".into(),
    })
    .await;
    let mut s = conn.accept_stream().await.unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "b");
}

#[tokio::test]
async fn received_go_away_refuses_new_streams_but_keeps_old_ones() {
    let (conn, mut peer) = connect(Role::Client, Config::default());
    peer.handshake().await;
    let mut s = conn.open_stream().await.unwrap();
    assert_eq!(peer.recv_significant().await, Some(syn(1)));
    peer.send(Frame::GoAway {
        code: go_away::NORMAL,
    })
    .await;
    peer.send(Frame::Data {
        id: 1,
        flags: Flags::ACK.with(Flags::FIN),
        payload: "bye".into(),
    })
    .await;
    let mut got = String::new();
    s.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "bye");
    let err = conn.open_stream().await.unwrap_err();
    assert!(matches!(err, ConnError::GoAway { code: 0 }), "{err}");
    s.write_all(b"still writable").await.unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(peer.read_until_fin(1).await, b"still writable");
}

#[tokio::test]
async fn reset_before_the_syn_left_sends_nothing_and_keeps_the_connection() {
    let (conn, mut peer) = connect(Role::Client, Config::default());
    // The peer's HELLO has not arrived, so the SYN cannot have left yet.
    let mut s = conn.open_stream().await.unwrap();
    s.reset_with(9);
    drop(s);
    peer.handshake().await;
    let second = conn.open_stream().await.unwrap();
    assert_eq!(second.id().get(), 3);
    // The first frame about any stream is stream 3's SYN: no RESET for 1.
    assert_eq!(peer.recv_significant().await, Some(syn(3)));
}

/// Sends `len` zero bytes on stream `id` in frames of at most 64 KiB.
async fn send_zeros(peer: &mut support::RawPeer, id: u32, mut len: usize) {
    while len > 0 {
        let n = len.min(64 * 1024);
        peer.send(data(id, Flags::NONE, &vec![0; n])).await;
        len = len.saturating_sub(n);
    }
}

/// A config whose close_timeout never ends a test: only the dropped-stream rule can.
fn long_close_timeout() -> Config {
    let mut c = quiet_config();
    c.close_timeout = std::time::Duration::from_secs(3600);
    c
}

/// The server accepts stream 1 (whose request the peer sent), answers and
/// drops it; the answer and FIN go out first, as for any dropped stream.
#[allow(clippy::unwrap_used)]
async fn answer_and_drop() -> (mux_yamux_lite::Connection, support::RawPeer, Hello) {
    let (conn, mut peer) = connect(Role::Server, long_close_timeout());
    let h = peer.handshake().await;
    peer.send(data(1, Flags::SYN, b"request")).await;
    let mut s = conn.accept_stream().await.unwrap();
    s.write_all(b"answer").await.unwrap();
    drop(s);
    assert_eq!(peer.read_until_fin(1).await, b"answer");
    (conn, peer, h)
}

#[tokio::test(start_paused = true)]
async fn a_dropped_stream_grants_no_credit_and_is_reset_once_its_peer_spends_it() {
    bounded(async {
        let (conn, mut peer, h) = answer_and_drop().await;
        send_zeros(&mut peer, 1, h.initial_window as usize - b"request".len()).await;
        loop {
            match peer.recv().await {
                Some(Frame::Reset { id: 1, code }) => {
                    assert_eq!(code, reset_code::DROPPED);
                    break;
                }
                Some(Frame::Window { id: 1, delta, .. }) => {
                    assert_eq!(delta, 0, "credit granted to a dropped stream");
                }
                Some(other) => panic!("unexpected {other:?}"),
                None => panic!("EOF before the reset"),
            }
        }
        // Stragglers for stream 1 are discarded; the connection goes on.
        peer.send(data(1, Flags::NONE, b"late")).await;
        peer.send(data(3, Flags::SYN.with(Flags::FIN), b"b")).await;
        let mut s = conn.accept_stream().await.unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "b");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_dropped_stream_whose_peer_finishes_within_its_credit_is_not_reset() {
    bounded(async {
        let (conn, mut peer, h) = answer_and_drop().await;
        // All but one byte of the credit, then FIN: the peer never waited.
        send_zeros(
            &mut peer,
            1,
            h.initial_window as usize - b"request".len() - 1,
        )
        .await;
        peer.send(data(1, Flags::FIN, b"")).await;
        peer.send(data(3, Flags::SYN, b"c")).await;
        let mut s = conn.accept_stream().await.unwrap();
        s.shutdown().await.unwrap();
        loop {
            match peer.recv().await {
                Some(Frame::Reset { id, code }) => panic!("stream {id} reset with {code:#x}"),
                Some(Frame::Window { id: 1, delta, .. }) => {
                    assert_eq!(delta, 0, "credit granted to a dropped stream");
                }
                Some(Frame::Window { id: 3, flags, .. } | Frame::Data { id: 3, flags, .. }) => {
                    if flags.contains(Flags::FIN) {
                        break;
                    }
                }
                Some(other) => panic!("unexpected {other:?}"),
                None => panic!("EOF before stream 3's FIN"),
            }
        }
        assert_eq!(
            conn.stats().streams,
            1,
            "stream 1 finished and was reclaimed"
        );
    })
    .await;
}

/// A peer answers, FINs, then resets with `code` the stream we keep writing
/// to; returns what our read to EOF gives and the error our writes get.
#[allow(clippy::unwrap_used)]
async fn reset_after_the_peers_fin(code: u32) -> (std::io::Result<Vec<u8>>, std::io::Error) {
    let (conn, mut peer) = connect(Role::Client, quiet_config());
    peer.handshake().await;
    let mut s = conn.open_stream().await.unwrap();
    s.write_all(b"upload").await.unwrap();
    assert_eq!(
        peer.recv_significant().await,
        Some(data(1, Flags::SYN, b"upload"))
    );
    peer.send(data(1, Flags::ACK, b"too large")).await;
    peer.send(data(1, Flags::FIN, b"")).await;
    peer.send(Frame::Reset { id: 1, code }).await;
    // The write fails once the reset is in; the reset frame came last, so a
    // later write sees it.
    let write_err = loop {
        match s.write_all(b"more").await.and(s.flush().await) {
            Ok(()) => tokio::task::yield_now().await,
            Err(e) => break e,
        }
    };
    let mut answer = Vec::new();
    let read = s.read_to_end(&mut answer).await.map(|_| answer);
    (read, write_err)
}

#[tokio::test(start_paused = true)]
async fn a_reset_for_a_dropped_stream_after_its_fin_keeps_what_arrived_readable() {
    let (read, write_err) = bounded(reset_after_the_peers_fin(reset_code::DROPPED)).await;
    assert_eq!(read.expect("answer then EOF"), b"too large");
    assert_eq!(write_err.kind(), std::io::ErrorKind::ConnectionReset);
    let typed = StreamError::from_io(&write_err).expect("typed");
    assert_eq!(typed.reset_code(), Some(reset_code::DROPPED));
    assert!(typed.is_remote());
}

#[tokio::test(start_paused = true)]
async fn any_other_reset_after_the_peers_fin_discards_what_arrived() {
    let (read, write_err) = bounded(reset_after_the_peers_fin(reset_code::CANCEL)).await;
    let err = read.expect_err("a cancel abandons both directions");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(write_err.kind(), std::io::ErrorKind::ConnectionReset);
}

// A peer that allows no stream at all: `open_stream` waits for the limit
// to allow one, but no longer than `open_timeout`, and the connection
// stays up.
#[tokio::test(start_paused = true)]
async fn open_stream_against_a_peer_that_allows_no_streams_fails_after_open_timeout() {
    bounded(async {
        let mut config = quiet_config();
        config.open_timeout = std::time::Duration::from_secs(5);
        let (conn, mut peer) = connect(Role::Client, config);
        peer.send(Frame::Hello(Hello {
            version: Hello::VERSION,
            initial_window: 256 * 1024,
            max_frame_payload: 64 * 1024,
            max_inbound_streams: 0,
        }))
        .await;
        assert!(matches!(peer.recv().await, Some(Frame::Hello(_))));
        match peer.recv().await {
            Some(Frame::Ping { ack: false, opaque }) => {
                peer.send(Frame::Ping { ack: true, opaque }).await;
            }
            other => panic!("expected the RTT ping, got {other:?}"),
        }

        let started = tokio::time::Instant::now();
        let err = conn
            .open_stream()
            .await
            .expect_err("the peer allows no stream");
        assert!(matches!(err, ConnError::OpenTimeout), "{err:?}");
        let waited = started.elapsed();
        assert!(
            waited >= std::time::Duration::from_secs(5)
                && waited < std::time::Duration::from_secs(6),
            "waited {waited:?}"
        );
        assert!(!conn.is_closed(), "a refused open leaves the connection up");
    })
    .await;
}
