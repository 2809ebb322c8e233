//! A raw-frame test peer: it writes and reads exact frames, so tests read
//! like wire transcripts. It speaks the wire of the connection it is
//! connected to (`Config::wire`), so a test can run on both.
// `print_stderr`: the watchdog's last word before it aborts the binary.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr
)]

use bytes::BytesMut;
use mux_yamux_lite::frame::{Flags, Frame, Hello};
use mux_yamux_lite::session::{Session, YAMUX_PEER};
use mux_yamux_lite::wire::{self, Layout};
use mux_yamux_lite::{Config, Connection, Role, Wire};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

/// Both wires, for tests that run on each.
pub const WIRES: [Wire; 2] = [Wire::Lite, Wire::Yamux];

/// Frames read off the connection under test.
struct FrameReader {
    io: ReadHalf<DuplexStream>,
    layout: Box<dyn Layout>,
    buf: BytesMut,
}

impl FrameReader {
    /// The next frame, or `None` at EOF.
    async fn recv(&mut self) -> Option<Frame> {
        loop {
            match self.layout.decode(&mut self.buf) {
                Ok(Some(f)) => return Some(f),
                Ok(None) => {}
                Err(e) => panic!("the connection under test sent an invalid frame: {e}"),
            }
            if self.io.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
    }
}

/// The far end of a connection under test, speaking raw frames.
pub struct RawPeer {
    reader: FrameReader,
    writer: WriteHalf<DuplexStream>,
    wire: Wire,
    /// The window [`handshake_with_window`] meant to announce.
    announced: u32,
}

/// The frames the handshake delivers to the connection under test: the
/// peer's HELLO and its pong on the lite wire, the pong alone on yamux.
pub fn handshake_frames(wire: Wire) -> u64 {
    match wire {
        Wire::Yamux => 1,
        _ => 2,
    }
}

/// The encoding of every frame of `frames` on `wire`, back to back.
pub fn encode_on(wire: Wire, frames: impl IntoIterator<Item = Frame>) -> BytesMut {
    let layout = wire::unlimited(wire);
    let mut buf = BytesMut::new();
    for f in frames {
        layout.encode(&f, &mut buf);
    }
    buf
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

/// A connection under test (role `role`) wired to a raw peer speaking
/// `config.wire`.
pub fn connect(role: Role, config: Config) -> (Connection, RawPeer) {
    connect_with_capacity(role, config, 1 << 20)
}

impl RawPeer {
    /// A peer on the lite wire.
    pub fn new(io: DuplexStream) -> Self {
        Self::on_wire(io, Wire::Lite)
    }

    /// A peer speaking `wire`.
    pub fn on_wire(io: DuplexStream, wire: Wire) -> Self {
        let (r, w) = tokio::io::split(io);
        Self {
            reader: FrameReader {
                io: r,
                layout: wire::unlimited(wire),
                buf: BytesMut::new(),
            },
            writer: w,
            wire,
            announced: YAMUX_PEER.initial_window,
        }
    }

    /// On the yamux wire, which has no HELLO, grants stream `id` (just
    /// opened by the connection under test) the window that
    /// [`handshake_with_window`] meant to announce, beyond the 256 KiB a
    /// yamux peer starts with; on the lite wire the HELLO did that.
    pub async fn grant_announced(&mut self, id: u32) {
        let extra = self.announced.saturating_sub(YAMUX_PEER.initial_window);
        if self.wire == Wire::Yamux && extra > 0 {
            self.send(Frame::Window {
                id,
                flags: Flags::NONE,
                delta: extra,
            })
            .await;
        }
    }

    /// The wire this peer speaks.
    pub fn wire(&self) -> Wire {
        self.wire
    }

    pub async fn send(&mut self, frame: Frame) {
        let buf = encode_on(self.wire, [frame]);
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
        self.reader.recv().await
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

    /// Exchanges HELLOs and answers the first RTT ping. On the yamux wire,
    /// where nobody sends a HELLO, only answers the ping and returns the
    /// settings each side assumes of the other.
    pub async fn handshake(&mut self) -> Hello {
        let h = if self.wire == Wire::Yamux {
            YAMUX_PEER
        } else {
            self.send(hello()).await;
            let Some(Frame::Hello(h)) = self.recv().await else {
                panic!("expected HELLO first");
            };
            h
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

/// [`quiet_config`] on `wire`.
pub fn quiet_on(wire: Wire) -> Config {
    let mut c = quiet_config();
    c.wire = wire;
    c
}

/// Runs `case` once on each wire, one after the other.
pub async fn on_each_wire<F, Fut>(case: F)
where
    F: Fn(Wire) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for wire in WIRES {
        case(wire).await;
    }
}

// ----- hostile-peer helpers (tests/hostile_*.rs) -----------------------------

/// A connection under test wired to a raw peer over a duplex pipe of
/// `capacity` bytes per direction (small pipes make back-pressure visible).
pub fn connect_with_capacity(role: Role, config: Config, capacity: usize) -> (Connection, RawPeer) {
    let (a, b) = tokio::io::duplex(capacity);
    let wire = config.wire;
    let conn = Connection::new(a, role, config);
    (conn, RawPeer::on_wire(b, wire))
}

/// Bound on a hostile test's body. Under a paused clock this is virtual
/// time, so a deadlock fails at once instead of hanging the suite.
pub const HOSTILE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Real time a hostile test may take before the process is aborted.
pub const WALL_CLOCK_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs `f`, failing the test if it does not finish within [`HOSTILE_LIMIT`].
///
/// A task that never stops running (a busy loop) keeps a paused clock from
/// advancing, so that bound would never fire; a watchdog thread on the real
/// clock aborts the whole test binary after [`WALL_CLOCK_LIMIT`] instead of
/// letting it hang.
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            finished.recv_timeout(WALL_CLOCK_LIMIT)
        {
            eprintln!("a test ran {WALL_CLOCK_LIMIT:?} of real time: busy loop? aborting");
            std::process::abort();
        }
    });
    let out = match tokio::time::timeout(HOSTILE_LIMIT, f).await {
        Ok(out) => out,
        Err(_) => panic!("the test hung ({HOSTILE_LIMIT:?} bound)"),
    };
    drop(done);
    out
}

/// A SYN as `open` sends it: WINDOW_UPDATE with SYN and delta 0.
pub fn syn(id: u32) -> Frame {
    Frame::Window {
        id,
        flags: Flags::SYN,
        delta: 0,
    }
}

/// DATA on stream `id` with `flags` and `payload`.
pub fn data(id: u32, flags: Flags, payload: &[u8]) -> Frame {
    Frame::Data {
        id,
        flags,
        payload: bytes::Bytes::copy_from_slice(payload),
    }
}

/// The encoding of every frame of `frames` on the lite wire, back to back.
pub fn encode_all(frames: impl IntoIterator<Item = Frame>) -> BytesMut {
    encode_on(Wire::Lite, frames)
}

/// The exact protocol violation behind a connection error, if it is one.
pub fn protocol_error(e: &mux_core::ConnError) -> Option<mux_yamux_lite::session::ProtocolError> {
    match e {
        mux_core::ConnError::Protocol(inner) => inner
            .downcast_ref::<mux_yamux_lite::session::ProtocolError>()
            .cloned(),
        _ => None,
    }
}

/// The reading half of a split [`RawPeer`].
pub struct RawReader {
    reader: FrameReader,
}

/// The writing half of a split [`RawPeer`].
pub struct RawWriter {
    writer: WriteHalf<DuplexStream>,
    wire: Wire,
}

impl RawPeer {
    /// Splits the peer so a flood can be written while replies are read.
    pub fn split(self) -> (RawReader, RawWriter) {
        (
            RawReader {
                reader: self.reader,
            },
            RawWriter {
                writer: self.writer,
                wire: self.wire,
            },
        )
    }
}

impl RawReader {
    /// The next frame, or `None` at EOF (or on bytes that are not a frame).
    pub async fn recv(&mut self) -> Option<Frame> {
        self.reader.recv().await
    }

    /// Every frame until EOF.
    pub async fn recv_until_eof(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = self.recv().await {
            frames.push(f);
        }
        frames
    }
}

impl RawWriter {
    /// Writes one frame; `Err` once the connection under test is gone.
    pub async fn send(&mut self, frame: Frame) -> std::io::Result<()> {
        let buf = encode_on(self.wire, [frame]);
        self.send_raw(&buf).await
    }

    /// Writes raw bytes; `Err` once the connection under test is gone.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await
    }

    /// Half-closes the peer's direction (the connection under test reads EOF).
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.writer.shutdown().await
    }
}

impl RawPeer {
    /// Every frame until EOF.
    pub async fn recv_until_eof(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = self.recv().await {
            frames.push(f);
        }
        frames
    }
}

/// Reads the connection's output until EOF, checks that it ended with
/// exactly one GO_AWAY(PROTOCOL_ERROR) as its last frame, and returns the
/// typed violation the connection reports (through `accept_stream`).
pub async fn expect_protocol_failure(
    conn: &Connection,
    peer: &mut RawPeer,
) -> mux_yamux_lite::session::ProtocolError {
    let frames = peer.recv_until_eof().await;
    let go_aways: Vec<&Frame> = frames
        .iter()
        .filter(|f| matches!(f, Frame::GoAway { .. }))
        .collect();
    assert_eq!(
        go_aways,
        [&Frame::GoAway {
            code: mux_yamux_lite::frame::go_away::PROTOCOL_ERROR
        }],
        "exactly one GO_AWAY(1) expected, got {frames:?}"
    );
    assert_eq!(
        frames.last(),
        Some(&Frame::GoAway {
            code: mux_yamux_lite::frame::go_away::PROTOCOL_ERROR
        }),
        "GO_AWAY(1) must be the last frame"
    );
    let err = conn
        .accept_stream()
        .await
        .expect_err("the connection must have failed");
    assert!(conn.is_closed());
    protocol_error(&err).unwrap_or_else(|| panic!("not a protocol error: {err:?}"))
}

/// Handshake as a peer announcing `initial_window`, answering the RTT ping.
/// The yamux wire announces nothing: there the window must be the 256 KiB
/// every yamux peer assumes.
pub async fn handshake_with_window(peer: &mut RawPeer, initial_window: u32) {
    if peer.wire() == Wire::Yamux {
        // No HELLO to announce it in: `grant_announced` gives each stream
        // the rest once it opens.
        peer.announced = initial_window;
        peer.handshake().await;
        return;
    }
    peer.send(Frame::Hello(Hello {
        version: Hello::VERSION,
        initial_window,
        max_frame_payload: 64 * 1024,
        max_inbound_streams: 1000,
    }))
    .await;
    match peer.recv().await {
        Some(Frame::Hello(_)) => {}
        other => panic!("expected HELLO, got {other:?}"),
    }
    match peer.recv().await {
        Some(Frame::Ping { ack: false, opaque }) => {
            peer.send(Frame::Ping { ack: true, opaque }).await;
        }
        other => panic!("expected the RTT ping, got {other:?}"),
    }
}

/// Sans-IO: delivers every frame `from` has to send to `to`.
pub fn deliver(from: &mut Session, to: &mut Session, now: std::time::Instant) {
    while let Some(frame) = from.poll_frame(now) {
        to.handle_frame(frame, now);
    }
}

/// Sans-IO: one delivery each way, `a` first. On fresh sessions that is the
/// HELLO exchange: until the peer's HELLO arrives, a session sends nothing
/// else, so `a`'s stream frames wait for a later delivery.
pub fn exchange_hellos(a: &mut Session, b: &mut Session, now: std::time::Instant) {
    deliver(a, b, now);
    deliver(b, a, now);
}
