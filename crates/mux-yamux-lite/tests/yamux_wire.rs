//! The yamux wire against a hand-written peer: the rules of
//! docs/PROTOCOL.md §7 that only a peer writing raw frames can provoke
//! (frame sizes, credit checked from the header, ids, unknown streams).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

mod support;

use bytes::BytesMut;
use mux_core::ConnError;
use mux_yamux_lite::config::MAX_WINDOW;
use mux_yamux_lite::frame::{go_away, Flags, Frame};
use mux_yamux_lite::session::ProtocolError;
use mux_yamux_lite::wire::yamux::Yamux;
use mux_yamux_lite::wire::Layout;
use mux_yamux_lite::{Config, Connection, Role, Wire};
use support::{bounded, protocol_error};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// A yamux peer that writes and reads raw frames.
struct YamuxPeer {
    io: DuplexStream,
    layout: Yamux,
    buf: BytesMut,
}

impl YamuxPeer {
    async fn send(&mut self, frame: Frame) {
        let mut out = BytesMut::new();
        self.layout.encode(&frame, &mut out);
        self.send_raw(&out).await;
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        // The connection may have closed already; what it sent is checked.
        let _ = self.io.write_all(bytes).await;
    }

    /// The next frame, or `None` at EOF.
    async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self.layout.decode(&mut self.buf).expect("valid yamux") {
                return Some(f);
            }
            if self.io.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
    }

    /// Reads to EOF and returns the last GO_AWAY's code.
    async fn go_away_then_eof(&mut self) -> Option<u32> {
        let mut code = None;
        while let Some(f) = self.recv().await {
            if let Frame::GoAway { code: c } = f {
                code = Some(c);
            }
        }
        code
    }
}

fn config() -> Config {
    let mut c = Config::default();
    c.wire = Wire::Yamux;
    c.keepalive_interval = None;
    c
}

fn connect(config: Config) -> (Connection, YamuxPeer) {
    let (a, b) = tokio::io::duplex(8 << 20);
    let conn = Connection::new(a, Role::Server, config);
    let peer = YamuxPeer {
        io: b,
        layout: Yamux::new(MAX_WINDOW),
        buf: BytesMut::new(),
    };
    (conn, peer)
}

fn syn(id: u32) -> Frame {
    Frame::Window {
        id,
        flags: Flags::SYN,
        delta: 0,
    }
}

/// A DATA header announcing `len` payload bytes, without the payload.
fn data_header(id: u32, len: u32) -> Vec<u8> {
    let mut h = vec![0, 0, 0, 0];
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&len.to_be_bytes());
    h
}

async fn failure(conn: &Connection) -> ProtocolError {
    let err = conn.accept_stream().await.unwrap_err();
    protocol_error(&err).unwrap_or_else(|| panic!("not a protocol error: {err:?}"))
}

#[tokio::test]
async fn no_hello_goes_out_and_the_first_frame_is_the_rtt_ping() {
    bounded(async {
        let mut c = config();
        c.keepalive_interval = Some(std::time::Duration::from_secs(30));
        let (_conn, mut peer) = connect(c);
        assert!(matches!(
            peer.recv().await,
            Some(Frame::Ping { ack: false, .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn a_large_data_frame_beyond_the_credit_is_refused_from_its_header() {
    bounded(async {
        let (conn, mut peer) = connect(config());
        peer.send(syn(1)).await;
        // 1 MiB announced on a stream holding 256 KiB of credit; the
        // payload never comes, so only the header can have decided.
        peer.send_raw(&data_header(1, 1 << 20)).await;
        assert_eq!(peer.go_away_then_eof().await, Some(go_away::PROTOCOL_ERROR));
        assert_eq!(
            failure(&conn).await,
            ProtocolError::WindowExceeded {
                id: 1,
                len: 1 << 20,
                credit: 256 * 1024
            }
        );
    })
    .await;
}

#[tokio::test]
async fn a_four_gib_length_ends_the_connection_from_the_header() {
    bounded(async {
        let (conn, mut peer) = connect(config());
        peer.send(syn(1)).await;
        peer.send_raw(&data_header(1, u32::MAX)).await;
        assert_eq!(peer.go_away_then_eof().await, Some(go_away::PROTOCOL_ERROR));
        assert!(matches!(
            failure(&conn).await,
            ProtocolError::FrameTooLarge { .. }
        ));
    })
    .await;
}

#[tokio::test]
async fn a_window_of_data_in_one_frame_arrives_whole_and_extra_window_rides_on_the_ack() {
    bounded(async {
        let mut c = config();
        c.initial_window = 4 << 20;
        let (conn, mut peer) = connect(c);
        peer.send(syn(1)).await;
        let mut s = conn.accept_stream().await.unwrap();
        // The ACK grants what the peer does not assume: 4 MiB - 256 KiB.
        loop {
            match peer.recv().await {
                Some(Frame::Window {
                    id: 1,
                    flags,
                    delta,
                }) if flags.contains(Flags::ACK) => {
                    assert_eq!(delta, (4 << 20) - 256 * 1024);
                    break;
                }
                Some(_) => {}
                None => panic!("EOF before the ACK"),
            }
        }
        // As hashicorp/yamux sends it: 3 MiB in a single DATA frame.
        let payload: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
        peer.send(Frame::Data {
            id: 1,
            flags: Flags::FIN,
            payload: payload.clone().into(),
        })
        .await;
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert!(got == payload, "the large frame arrived changed");
        assert!(!conn.is_closed());
    })
    .await;
}

#[tokio::test]
async fn frames_for_never_opened_streams_are_drained_within_the_budget() {
    bounded(async {
        let mut c = config();
        c.max_empty_frames = 10;
        let (conn, mut peer) = connect(c);
        for id in (101..).step_by(2).take(10) {
            peer.send(Frame::Data {
                id,
                flags: Flags::NONE,
                payload: "?".into(),
            })
            .await;
        }
        // Still alive: a stream opens and carries data.
        peer.send(Frame::Data {
            id: 1,
            flags: Flags::SYN.with(Flags::FIN),
            payload: "alive".into(),
        })
        .await;
        let mut s = conn.accept_stream().await.unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "alive");
        // One more is past the budget.
        peer.send(Frame::Reset { id: 999, code: 0 }).await;
        assert_eq!(peer.go_away_then_eof().await, Some(go_away::PROTOCOL_ERROR));
        assert_eq!(failure(&conn).await, ProtocolError::UnknownStream(999));
    })
    .await;
}

#[tokio::test]
async fn a_repeated_syn_is_a_reuse_even_out_of_order() {
    bounded(async {
        let (conn, mut peer) = connect(config());
        for id in [5, 1, 3] {
            peer.send(syn(id)).await;
        }
        for _ in 0..3 {
            conn.accept_stream().await.unwrap();
        }
        peer.send(syn(3)).await;
        assert_eq!(peer.go_away_then_eof().await, Some(go_away::PROTOCOL_ERROR));
        assert_eq!(failure(&conn).await, ProtocolError::StreamIdReused(3));
    })
    .await;
}

#[tokio::test]
async fn shutdown_sends_its_go_away_only_after_the_streams_finish() {
    bounded(async {
        let (conn, mut peer) = connect(config());
        peer.send(syn(1)).await;
        let mut s = conn.accept_stream().await.unwrap();
        let closing = {
            let conn = conn.clone();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
            tokio::spawn(async move { conn.shutdown(deadline).await })
        };
        // The stream finishes both ways while the shutdown waits.
        s.write_all(b"bye").await.unwrap();
        s.shutdown().await.unwrap();
        let mut frames = Vec::new();
        loop {
            let f = peer.recv().await.expect("frames before EOF");
            let fin = matches!(&f, Frame::Data { id: 1, flags, .. } if flags.contains(Flags::FIN));
            frames.push(f);
            if fin {
                break;
            }
        }
        assert!(
            !frames.iter().any(|f| matches!(f, Frame::GoAway { .. })),
            "GO_AWAY before the streams finished: {frames:?}"
        );
        peer.send(Frame::Data {
            id: 1,
            flags: Flags::FIN,
            payload: "".into(),
        })
        .await;
        assert_eq!(peer.go_away_then_eof().await, Some(go_away::NORMAL));
        drop(peer);
        let outcome = closing.await.unwrap().unwrap();
        assert_eq!(outcome, mux_core::ShutdownOutcome::Drained);
        assert!(matches!(conn.open_stream().await, Err(ConnError::Closed)));
    })
    .await;
}
