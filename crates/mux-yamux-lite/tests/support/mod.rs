//! A raw-frame test peer: it writes and reads exact frames, so tests read
//! like wire transcripts.
#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)]

use bytes::BytesMut;
use futures::StreamExt;
use mux_frame::FrameCodec;
use mux_yamux_lite::frame::{Flags, Frame, Hello};
use mux_yamux_lite::wire::lite;
use mux_yamux_lite::{Config, Connection, Role};
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio_util::codec::FramedRead;

/// The far end of a connection under test, speaking raw frames.
pub struct RawPeer {
    reader: FramedRead<ReadHalf<DuplexStream>, FrameCodec>,
    writer: WriteHalf<DuplexStream>,
}

/// The HELLO a default peer announces.
pub fn hello() -> Frame {
    Frame::Hello(Hello {
        version: Hello::VERSION,
        initial_window: 256 * 1024,
        max_frame_payload: 64 * 1024,
        max_inbound_streams: 1000,
    })
}

/// A connection under test (role `role`) wired to a raw peer.
pub fn connect(role: Role, config: Config) -> (Connection, RawPeer) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let conn = Connection::new(a, role, config);
    (conn, RawPeer::new(b))
}

impl RawPeer {
    pub fn new(io: DuplexStream) -> Self {
        let (r, w) = tokio::io::split(io);
        Self {
            reader: FramedRead::new(r, FrameCodec::with_max_value_len(16 << 20)),
            writer: w,
        }
    }

    pub async fn send(&mut self, frame: Frame) {
        let mut buf = BytesMut::new();
        lite::encode(&frame, &mut buf);
        self.send_raw(&buf).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        // The connection under test may already have closed the transport;
        // transcripts then check what it sent, so a failed write is fine.
        let _ = self.writer.write_all(bytes).await;
        let _ = self.writer.flush().await;
    }

    /// The next frame, or `None` at EOF.
    pub async fn recv(&mut self) -> Option<Frame> {
        let tlv = self.reader.next().await?.ok()?;
        Some(lite::decode(tlv).expect("connection under test sent an invalid frame"))
    }

    /// The next frame that is not a ping request or a window update
    /// without flags (traffic that timing makes unpredictable).
    pub async fn recv_significant(&mut self) -> Option<Frame> {
        loop {
            match self.recv().await? {
                Frame::Ping { ack: false, opaque } => {
                    self.send(Frame::Ping { ack: true, opaque }).await;
                }
                Frame::Window { flags, .. } if flags == Flags::NONE => {}
                f => return Some(f),
            }
        }
    }

    /// Exchanges HELLOs and answers the first RTT ping.
    pub async fn handshake(&mut self) -> Hello {
        self.send(hello()).await;
        let Some(Frame::Hello(h)) = self.recv().await else {
            panic!("expected HELLO first");
        };
        match self.recv().await {
            Some(Frame::Ping { ack: false, opaque }) => {
                self.send(Frame::Ping { ack: true, opaque }).await;
            }
            other => panic!("expected the RTT ping, got {other:?}"),
        }
        h
    }

    /// Reads until EOF, returning the GO_AWAY code seen on the way, if any.
    pub async fn go_away_then_eof(&mut self) -> Option<u32> {
        let mut code = None;
        while let Some(f) = self.recv().await {
            if let Frame::GoAway { code: c } = f {
                code = Some(c);
            }
        }
        code
    }

    /// Collects DATA payloads of stream `id` until its FIN.
    pub async fn read_until_fin(&mut self, id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            match self.recv_significant().await {
                Some(Frame::Data {
                    id: got,
                    flags,
                    payload,
                }) if got == id => {
                    out.extend_from_slice(&payload);
                    if flags.contains(Flags::FIN) {
                        return out;
                    }
                }
                Some(Frame::Window { id: got, flags, .. })
                    if got == id && flags.contains(Flags::FIN) =>
                {
                    return out;
                }
                Some(_) => {}
                None => panic!("EOF before FIN on stream {id}"),
            }
        }
    }
}

/// A config without keepalive, for tests on a paused clock.
pub fn quiet_config() -> Config {
    let mut c = Config::default();
    c.keepalive_interval = None;
    c
}
