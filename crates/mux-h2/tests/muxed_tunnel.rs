//! mux-yamux-lite inside a tunnel, end to end over a real hyper server on
//! 127.0.0.1:0, in every tunnel mode (HTTP/2 CONNECT, HTTP/2 POST, HTTP/1.1
//! upgrade): many muxed streams share one `H2Conn`, stream semantics
//! (half-close, reset codes) cross it intact, a stalled stream pushes back
//! on its writer alone, and a peer that vanishes mid-transfer fails every
//! stream on the other side promptly with a typed error.
//!
//! Each scenario is an `async fn(Mode)`; [`in_every_mode!`] turns it into a
//! module of three tests, `h2_connect`, `h2_post` and `http1_upgrade`.
// Test helpers outside `#[test]` fns panic on failure by design, and size
// arithmetic in tests cannot overflow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

mod common;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{open, random_bytes, start};
use mux_core::{ConnError, MuxedStream, StreamError};
use mux_h2::{H2Conn, Mode};
use mux_yamux_lite::{Config, Connection, Role, Stream};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Every test must finish within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `test` under [`TEST_TIMEOUT`].
async fn bounded(name: &str, test: impl Future<Output = ()>) {
    if tokio::time::timeout(TEST_TIMEOUT, test).await.is_err() {
        panic!("{name}: did not finish within {TEST_TIMEOUT:?}");
    }
}

/// For each `async fn name(mode: Mode)` listed, a module `name` holding one
/// `#[tokio::test]` per tunnel mode, each bounded by [`TEST_TIMEOUT`].
macro_rules! in_every_mode {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::{bounded, Mode};

            #[tokio::test]
            async fn h2_connect() {
                bounded(concat!(stringify!($name), " over CONNECT"), super::$name(Mode::Connect)).await;
            }

            #[tokio::test]
            async fn h2_post() {
                bounded(concat!(stringify!($name), " over POST"), super::$name(Mode::Post)).await;
            }

            #[tokio::test]
            async fn http1_upgrade() {
                bounded(concat!(stringify!($name), " over HTTP/1.1 upgrade"), super::$name(Mode::Http1Upgrade)).await;
            }
        }
    )*};
}

in_every_mode!(
    muxed_100_streams_echo_64kib_each,
    json_messages_through_one_muxed_stream,
    half_close_and_reset_cross_the_tunnel,
    stalled_stream_pushes_back_and_others_flow,
    client_vanishing_mid_transfer_fails_server_streams,
    server_vanishing_mid_transfer_fails_client_streams,
);

/// A tunnel handler that runs a mux-yamux-lite server (with `config`) over
/// the tunnel and spawns `on_stream` for every stream the client opens.
fn mux_server_with<F, Fut>(
    config: Config,
    on_stream: F,
) -> impl Fn(H2Conn) -> std::future::Ready<()> + Clone
where
    F: Fn(Stream) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    move |conn: H2Conn| {
        let on_stream = on_stream.clone();
        let config = config.clone();
        tokio::spawn(async move {
            let mux = Connection::new(conn, Role::Server, config);
            while let Ok(stream) = mux.accept_stream().await {
                tokio::spawn(on_stream(stream));
            }
        });
        std::future::ready(())
    }
}

/// Echoes a stream until EOF, then closes its write side.
async fn echo_stream(stream: Stream) {
    let (mut r, mut w) = tokio::io::split(stream);
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
}

/// Starts a server whose tunnels run `on_stream` on every muxed stream,
/// opens one tunnel in `mode` and runs a mux-yamux-lite client over it.
/// Both ends use `config`.
async fn muxed_client_with<F, Fut>(mode: Mode, config: Config, on_stream: F) -> Connection
where
    F: Fn(Stream) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (url, _) = start(mux_server_with(config.clone(), on_stream)).await;
    let tunnel = open(&url, mode).await;
    Connection::new(tunnel, Role::Client, config)
}

/// [`muxed_client_with`] the default configuration.
async fn muxed_client<F, Fut>(mode: Mode, on_stream: F) -> Connection
where
    F: Fn(Stream) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    muxed_client_with(mode, Config::default(), on_stream).await
}

/// Sends `data` on a new stream while reading the echo; returns the echo.
async fn echo_one(mux: Connection, data: Vec<u8>) -> Vec<u8> {
    let stream = mux.open_stream().await.unwrap();
    let (mut r, mut w) = tokio::io::split(stream);
    let writer = async move {
        for chunk in data.chunks(16 * 1024) {
            w.write_all(chunk).await.unwrap();
        }
        w.shutdown().await.unwrap();
    };
    let mut got = Vec::new();
    let ((), read) = tokio::join!(writer, r.read_to_end(&mut got));
    read.unwrap();
    got
}

/// 100 concurrent muxed streams of 64 KiB random bytes each through one
/// tunnel, every echo checked byte for byte, every byte counted once.
async fn muxed_100_streams_echo_64kib_each(mode: Mode) {
    const STREAMS: u64 = 100;
    const LEN: usize = 64 * 1024;
    let mux = muxed_client(mode, echo_stream).await;
    let mut tasks = JoinSet::new();
    for seed in 0..STREAMS {
        let mux = mux.clone();
        tasks.spawn(async move {
            let data = random_bytes(LEN, seed);
            let got = echo_one(mux, data.clone()).await;
            assert_eq!(got.len(), data.len(), "{mode:?} stream {seed}: length");
            assert!(got == data, "{mode:?} stream {seed}: echoed bytes differ");
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
        done += 1;
    }
    assert_eq!(done, STREAMS);
    // Every byte crossed the one tunnel, in both directions.
    let total = STREAMS * LEN as u64;
    let stats = mux.stats();
    assert_eq!(stats.bytes_sent, total, "{mode:?}: {stats:?}");
    assert_eq!(stats.bytes_received, total, "{mode:?}: {stats:?}");
    mux.close().await.unwrap();
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Request {
    id: u64,
    values: Vec<i64>,
    note: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Reply {
    id: u64,
    sum: i64,
    note: String,
}

/// Answers each newline-delimited JSON [`Request`] with a [`Reply`].
async fn json_service(stream: Stream) {
    let (r, mut w) = tokio::io::split(stream);
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let request: Request = serde_json::from_str(&line).unwrap();
        let reply = Reply {
            id: request.id,
            sum: request.values.iter().sum(),
            note: request.note.to_uppercase(),
        };
        let mut out = serde_json::to_vec(&reply).unwrap();
        out.push(b'\n');
        w.write_all(&out).await.unwrap();
    }
    w.shutdown().await.unwrap();
}

/// 200 pipelined JSON requests and their replies through one muxed stream,
/// as in h2conn's examples.
async fn json_messages_through_one_muxed_stream(mode: Mode) {
    let mux = muxed_client(mode, json_service).await;
    let stream = mux.open_stream().await.unwrap();
    let (r, mut w) = tokio::io::split(stream);
    const MESSAGES: u64 = 200;
    let requests: Vec<Request> = (0..MESSAGES)
        .map(|id| Request {
            id,
            values: (0..=(id as i64 % 17)).map(|v| v * 3 - 7).collect(),
            note: format!("message {id}: héllo, \"quoted\"\nnewline inside"),
        })
        .collect();
    let expected: Vec<Reply> = requests
        .iter()
        .map(|r| Reply {
            id: r.id,
            sum: r.values.iter().sum(),
            note: r.note.to_uppercase(),
        })
        .collect();
    // Write every request while reading replies, as a pipelined client.
    let writer = async move {
        for request in &requests {
            let mut line = serde_json::to_vec(request).unwrap();
            line.push(b'\n');
            w.write_all(&line).await.unwrap();
        }
        w.shutdown().await.unwrap();
    };
    let reader = async move {
        let mut lines = BufReader::new(r).lines();
        let mut replies = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            replies.push(serde_json::from_str::<Reply>(&line).unwrap());
        }
        replies
    };
    let ((), replies) = tokio::join!(writer, reader);
    assert_eq!(replies, expected, "{mode:?}");
    mux.close().await.unwrap();
}

/// What the server observed on a stream, reported to the test.
#[derive(Debug, PartialEq)]
enum Seen {
    /// Read this many bytes, then EOF.
    Eof(usize),
    /// A read failed with a stream reset.
    Reset { code: u32, remote: bool },
    /// A read failed otherwise.
    Other(String),
}

impl Seen {
    fn from_error(e: &std::io::Error) -> Self {
        match StreamError::from_io(e) {
            Some(&StreamError::Reset { code, remote }) => Self::Reset { code, remote },
            _ => Self::Other(e.to_string()),
        }
    }
}

/// Reset code the server sends in the `R` command.
const SERVER_RESET_CODE: u32 = 0xBEEF;
/// Reset code the client sends while the server waits in the `W` command.
const CLIENT_RESET_CODE: u32 = 0x1234_5678;

/// Runs the command named by a stream's first byte:
/// - `H`: read to EOF, reply with the byte count, then close-write;
/// - `R`: reset with [`SERVER_RESET_CODE`];
/// - `W`: read until an error and report it;
/// - `E`: echo.
async fn command_service(mut stream: Stream, seen: mpsc::UnboundedSender<Seen>) {
    let mut command = [0u8; 1];
    if stream.read_exact(&mut command).await.is_err() {
        return;
    }
    match &command {
        b"H" => {
            let mut rest = Vec::new();
            match stream.read_to_end(&mut rest).await {
                Ok(n) => {
                    let _ = seen.send(Seen::Eof(n));
                    // The read side has ended; the write side still works.
                    let reply = format!("got {n} bytes after half-close");
                    stream.write_all(reply.as_bytes()).await.unwrap();
                    stream.shutdown().await.unwrap();
                }
                Err(e) => {
                    let _ = seen.send(Seen::from_error(&e));
                }
            }
        }
        b"R" => {
            stream.write_all(b"about to reset").await.unwrap();
            stream.flush().await.unwrap();
            stream.reset_with(SERVER_RESET_CODE);
        }
        b"W" => {
            stream.write_all(b"waiting").await.unwrap();
            let mut sink = Vec::new();
            let report = match stream.read_to_end(&mut sink).await {
                Ok(n) => Seen::Eof(n),
                Err(e) => Seen::from_error(&e),
            };
            let _ = seen.send(report);
        }
        _ => echo_stream(stream).await,
    }
}

/// Half-close, a server reset and a client reset each cross the tunnel
/// with their meaning (EOF, reset codes, who reset) intact, and touch only
/// their own stream.
async fn half_close_and_reset_cross_the_tunnel(mode: Mode) {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let mux = muxed_client(mode, move |stream| command_service(stream, seen_tx.clone())).await;

    // Half-close: the server sees EOF after our bytes, and can still
    // answer on its own write side, which we read to its EOF.
    let mut stream = mux.open_stream().await.unwrap();
    let payload = random_bytes(100_000, 7);
    stream.write_all(b"H").await.unwrap();
    stream.write_all(&payload).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert_eq!(reply, "got 100000 bytes after half-close", "{mode:?}");
    assert_eq!(seen.recv().await.unwrap(), Seen::Eof(100_000), "{mode:?}");
    // Writing after close-write fails locally.
    let err = stream.write_all(b"late").await.unwrap_err();
    assert!(
        matches!(StreamError::from_io(&err), Some(StreamError::WriteClosed)),
        "{mode:?}: {err}"
    );
    drop(stream);

    // Server reset: our read fails with the server's code, as remote.
    let mut stream = mux.open_stream().await.unwrap();
    stream.write_all(b"R").await.unwrap();
    let mut got = Vec::new();
    let err = stream.read_to_end(&mut got).await.unwrap_err();
    assert_eq!(
        Seen::from_error(&err),
        Seen::Reset {
            code: SERVER_RESET_CODE,
            remote: true
        },
        "{mode:?}"
    );
    assert!(
        b"about to reset".starts_with(&got),
        "{mode:?}: data before the reset, if delivered, is intact: {got:?}"
    );
    drop(stream);

    // Client reset: the server's pending read fails with our code.
    let mut stream = mux.open_stream().await.unwrap();
    stream.write_all(b"W").await.unwrap();
    let mut waiting = [0u8; 7];
    stream.read_exact(&mut waiting).await.unwrap();
    assert_eq!(&waiting, b"waiting");
    stream.reset_with(CLIENT_RESET_CODE);
    assert_eq!(
        seen.recv().await.unwrap(),
        Seen::Reset {
            code: CLIENT_RESET_CODE,
            remote: true
        },
        "{mode:?}"
    );
    // Locally the stream is reset too.
    let err = stream.write_all(b"after reset").await.unwrap_err();
    assert!(
        StreamError::from_io(&err).is_some_and(StreamError::is_reset),
        "{mode:?}: {err}"
    );
    drop(stream);

    // The resets touched only their streams: the tunnel still carries
    // new ones.
    let data = random_bytes(50_000, 8);
    let mut echoed = b"E".to_vec();
    echoed.extend_from_slice(&data);
    let got = echo_one(mux.clone(), echoed.clone()).await;
    assert!(got == data, "{mode:?}: echo after resets");
    assert!(!mux.is_closed(), "{mode:?}");
    mux.close().await.unwrap();
}

/// A configuration without keepalive pings, so that only the tunnel itself
/// can tell a stream that its peer is gone.
fn quiet_config() -> Config {
    let mut config = Config::default();
    config.keepalive_interval = None;
    config
}

/// The stalled stream's receive window in the backpressure test, set
/// explicitly so the bound does not move with the defaults.
const STALL_WINDOW: usize = 256 * 1024;
/// The stalled stream's send buffer in the backpressure test.
const STALL_SEND_BUFFER: usize = 128 * 1024;

/// Writes `chunk` on `stream` until a write makes no progress for a while,
/// adding the bytes written to `written`, and fails once `written` passes
/// `limit`. Real TCP cannot run on a paused clock, so "blocked by flow
/// control" is observed as a write deadline passing.
async fn write_until_stalled(stream: &mut Stream, chunk: &[u8], written: &mut usize, limit: usize) {
    let stall = Duration::from_millis(300);
    loop {
        stream.set_write_deadline(Some(Instant::now() + stall));
        match stream.write(chunk).await {
            Ok(n) => *written += n,
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
                stream.set_write_deadline(None);
                return;
            }
        }
        assert!(
            *written <= limit,
            "no backpressure: {written} bytes accepted, limit {limit}"
        );
    }
}

/// A stream whose reader never reads stops its writer once the peer's
/// window and the local send buffer are full, with nothing else buffered
/// in between; another stream on the same tunnel keeps moving meanwhile;
/// once the reader reads, everything written arrives.
async fn stalled_stream_pushes_back_and_others_flow(mode: Mode) {
    let mut config = quiet_config();
    config.initial_window = u32::try_from(STALL_WINDOW).unwrap();
    config.max_window = config.initial_window;
    config.send_buffer = STALL_SEND_BUFFER;
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release_rx = Arc::new(Mutex::new(Some(release_rx)));
    let (count_tx, mut count_rx) = mpsc::unbounded_channel::<io::Result<usize>>();
    // First byte `S`: stall until released, then count to EOF; otherwise
    // echo the rest.
    let mux = muxed_client_with(mode, config, move |mut stream: Stream| {
        let release_rx = release_rx.clone();
        let count_tx = count_tx.clone();
        async move {
            let mut command = [0u8; 1];
            if stream.read_exact(&mut command).await.is_err() {
                return;
            }
            if &command == b"S" {
                if let Some(rx) = release_rx.lock().await.take() {
                    let _ = rx.await;
                }
                let mut sink = Vec::new();
                let _ = count_tx.send(stream.read_to_end(&mut sink).await);
            } else {
                echo_stream(stream).await;
            }
        }
    })
    .await;

    let mut stalled = mux.open_stream().await.unwrap();
    stalled.write_all(b"S").await.unwrap();
    let chunk = vec![7u8; 16 * 1024];
    // The peer's window, this side's send buffer, and the write in hand.
    let limit = STALL_WINDOW + STALL_SEND_BUFFER + chunk.len();
    let mut written = 0;
    // A busy machine can pause a write past the stall time early; keep
    // going until the writer has at least filled the peer's window.
    for _ in 0..50 {
        write_until_stalled(&mut stalled, &chunk, &mut written, limit).await;
        if written >= STALL_WINDOW {
            break;
        }
    }
    assert!(
        written >= STALL_WINDOW,
        "{mode:?}: stalled after only {written} bytes"
    );

    // The tunnel is not clogged: another stream echoes 1 MiB meanwhile.
    let data = random_bytes(1024 * 1024, 21);
    let mut sent = b"E".to_vec();
    sent.extend_from_slice(&data);
    let echoed = tokio::time::timeout(Duration::from_secs(20), echo_one(mux.clone(), sent))
        .await
        .unwrap_or_else(|_| panic!("{mode:?}: the other stream is blocked"));
    assert!(echoed == data, "{mode:?}: echo beside the stalled stream");

    // That traffic opened no window for the stalled stream: still blocked.
    let before = written;
    write_until_stalled(&mut stalled, &chunk, &mut written, limit).await;
    assert!(
        written <= limit,
        "{mode:?}: {written} bytes accepted (was {before}), limit {limit}"
    );

    // Once the reader reads, the writer moves again and nothing is lost.
    release_tx.send(()).unwrap();
    stalled.write_all(&chunk).await.unwrap();
    written += chunk.len();
    stalled.shutdown().await.unwrap();
    let count = count_rx.recv().await.unwrap().unwrap();
    assert_eq!(count, written, "{mode:?}: bytes the stalled reader got");
    mux.close().await.unwrap();
}

/// Which end of the relayed path vanishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vanishing {
    Client,
    Server,
}

/// How the vanished end's TCP connection ends, as the survivor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// A FIN: the survivor reads EOF, and its writes are swallowed.
    Fin,
    /// A RST: the survivor's reads and writes fail.
    Rst,
}

/// A TCP relay on 127.0.0.1 in front of a server. [`Relay::cut`] makes one
/// end vanish: the socket to the other end (the survivor) closes with a
/// FIN or a RST, as a crashed host's kernel or a dropped NAT entry would,
/// while the vanished end's socket stays open and silent.
struct Relay {
    addr: SocketAddr,
    cut: watch::Sender<Option<(Vanishing, Close)>>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = watch::channel(None);
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let up = TcpStream::connect(upstream).await.unwrap();
                tokio::spawn(relay_one(down, up, cut_rx.clone()));
            }
        });
        Self { addr, cut }
    }

    fn url(&self) -> String {
        format!("http://{}/tunnel", self.addr)
    }

    fn cut(&self, vanishing: Vanishing, close: Close) {
        self.cut.send_replace(Some((vanishing, close)));
    }
}

/// Relays one connection until the cut, then plays it out.
async fn relay_one(
    mut down: TcpStream,
    mut up: TcpStream,
    mut cut_rx: watch::Receiver<Option<(Vanishing, Close)>>,
) {
    let cut = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => return,
        cut = cut_rx.wait_for(Option::is_some) => match cut {
            Ok(cut) => *cut,
            Err(_) => return,
        },
    };
    let Some((vanishing, close)) = cut else {
        return;
    };
    let (to_survivor, _to_vanished) = match vanishing {
        Vanishing::Client => (up, down),
        Vanishing::Server => (down, up),
    };
    match close {
        Close::Rst => {
            to_survivor.set_zero_linger().unwrap();
            drop(to_survivor);
        }
        Close::Fin => {
            let (mut rd, mut wr) = to_survivor.into_split();
            let _ = wr.shutdown().await;
            // Swallow what the survivor still sends, so that unread data
            // does not turn the close into a RST.
            let _ = tokio::io::copy(&mut rd, &mut tokio::io::sink()).await;
        }
    }
    // The vanished end never hears anything again.
    std::future::pending::<()>().await;
}

/// Streams per tunnel in the vanishing tests.
const CHURN_STREAMS: usize = 8;
/// Bytes a stream must receive before the transfer counts as under way.
const CHURN_PROGRESS: usize = 64 * 1024;
/// How soon after the cut every surviving stream must have failed. No
/// keepalive runs ([`quiet_config`]) and hyper's own is off, so only the
/// tunnel's reaction to its transport counts; without one they would hang.
const PROMPT: Duration = Duration::from_secs(5);

/// What a stream running [`churn`] reports.
#[derive(Debug)]
enum Churn {
    /// It has received [`CHURN_PROGRESS`] bytes.
    Flowing,
    /// Its transfer ended: the first failure (a clean EOF counts as one),
    /// then what a later read to the end and a later write did.
    Ended {
        first: io::Error,
        read_after: io::Result<usize>,
        write_after: io::Result<()>,
    },
}

/// Reads and writes `stream` at once, without end, until something fails.
async fn churn(stream: Stream, events: mpsc::UnboundedSender<Churn>) {
    let (mut r, mut w) = tokio::io::split(stream);
    let reading = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0;
        loop {
            match r.read(&mut buf).await {
                Ok(0) => {
                    return io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "clean EOF: the vanished peer passed for a graceful close",
                    )
                }
                Ok(n) => {
                    if total < CHURN_PROGRESS && total + n >= CHURN_PROGRESS {
                        let _ = events.send(Churn::Flowing);
                    }
                    total += n;
                }
                Err(e) => return e,
            }
        }
    };
    let writing = async {
        let chunk = vec![0x5a_u8; 16 * 1024];
        loop {
            if let Err(e) = w.write_all(&chunk).await {
                return e;
            }
        }
    };
    let first = tokio::select! {
        e = reading => e,
        e = writing => e,
    };
    let mut stream = r.unsplit(w);
    let hung = || io::Error::new(io::ErrorKind::TimedOut, "hung after the first failure");
    let mut rest = Vec::new();
    let read_after = tokio::time::timeout(PROMPT, stream.read_to_end(&mut rest))
        .await
        .unwrap_or_else(|_| Err(hung()));
    let write_after = tokio::time::timeout(PROMPT, stream.write_all(b"x"))
        .await
        .unwrap_or_else(|_| Err(hung()));
    let _ = events.send(Churn::Ended {
        first,
        read_after,
        write_after,
    });
}

/// Asserts `err` says the stream's connection is gone, as a typed
/// [`StreamError::ConnectionClosed`].
fn assert_lost(err: &io::Error, what: &str) {
    assert_eq!(
        err.kind(),
        io::ErrorKind::ConnectionReset,
        "{what}: {err:?}"
    );
    assert!(
        matches!(
            StreamError::from_io(err),
            Some(StreamError::ConnectionClosed(_))
        ),
        "{what}: not a typed connection loss: {err:?}"
    );
}

/// Receives the next [`Churn::Flowing`] from `events`.
async fn next_flowing(events: &mut mpsc::UnboundedReceiver<Churn>, what: &str) {
    match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
        Ok(Some(Churn::Flowing)) => {}
        Ok(other) => panic!("{what}: before the cut: {other:?}"),
        Err(_) => panic!("{what}: the transfer never got under way"),
    }
}

/// [`CHURN_STREAMS`] streams move data both ways through a tunnel that runs
/// through a [`Relay`]; then `vanishing`'s end vanishes (`close`). Every
/// stream of the survivor must fail within [`PROMPT`] with a typed error,
/// reads and writes alike, and its connection must report closed.
async fn vanish_mid_transfer(mode: Mode, vanishing: Vanishing, close: Close) {
    let what = format!("{mode:?}, {vanishing:?} vanishes with a {close:?}");
    let config = quiet_config();
    let (server_events_tx, mut server_events) = mpsc::unbounded_channel();
    let (server_mux_tx, mut server_mux_rx) = mpsc::unbounded_channel();
    let server_config = config.clone();
    let handler = move |conn: H2Conn| {
        let events = server_events_tx.clone();
        let muxes = server_mux_tx.clone();
        let config = server_config.clone();
        async move {
            let mux = Connection::new(conn, Role::Server, config);
            let (ended_tx, ended_rx) = oneshot::channel::<ConnError>();
            let _ = muxes.send((mux.clone(), ended_rx));
            let ended = loop {
                match mux.accept_stream().await {
                    Ok(stream) => drop(tokio::spawn(churn(stream, events.clone()))),
                    Err(e) => break e,
                }
            };
            let _ = ended_tx.send(ended);
        }
    };
    let (_, server_addr) = start(handler).await;
    let relay = Relay::start(server_addr).await;
    let client_mux = Connection::new(open(&relay.url(), mode).await, Role::Client, config);
    let (client_events_tx, mut client_events) = mpsc::unbounded_channel();
    for _ in 0..CHURN_STREAMS {
        let stream = client_mux.open_stream().await.unwrap();
        tokio::spawn(churn(stream, client_events_tx.clone()));
    }
    let (server_mux, server_accept_ended) = server_mux_rx.recv().await.unwrap();
    // Mid-transfer: every stream has data moving both ways.
    for _ in 0..CHURN_STREAMS {
        next_flowing(&mut client_events, &what).await;
        next_flowing(&mut server_events, &what).await;
    }

    relay.cut(vanishing, close);
    let cut_at = Instant::now();
    let (survivor_events, survivor_mux) = match vanishing {
        Vanishing::Client => (&mut server_events, &server_mux),
        Vanishing::Server => (&mut client_events, &client_mux),
    };
    for stream in 0..CHURN_STREAMS {
        let event = tokio::time::timeout(PROMPT.saturating_sub(cut_at.elapsed()), survivor_events.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("{what}: only {stream} of {CHURN_STREAMS} surviving streams failed within {PROMPT:?}")
            });
        let Some(Churn::Ended {
            first,
            read_after,
            write_after,
        }) = event
        else {
            panic!("{what}: expected the end of a stream, got {event:?}");
        };
        assert_lost(&first, &format!("{what}: first failure"));
        assert_lost(
            &read_after
                .map(|n| format!("read {n} more bytes then EOF"))
                .unwrap_err(),
            &format!("{what}: read after"),
        );
        assert_lost(&write_after.unwrap_err(), &format!("{what}: write after"));
    }
    let elapsed = cut_at.elapsed();
    assert!(survivor_mux.is_closed(), "{what}: connection still open");
    let err = survivor_mux.open_stream().await.map(|_| ()).unwrap_err();
    assert!(lost_transport(&err), "{what}: open after the loss: {err:?}");
    if vanishing == Vanishing::Client {
        // The server's accept loop ended with the transport's failure.
        let ended = tokio::time::timeout(PROMPT, server_accept_ended)
            .await
            .unwrap_or_else(|_| panic!("{what}: accept_stream still pending"))
            .unwrap();
        assert!(
            lost_transport(&ended),
            "{what}: accept ended with {ended:?}"
        );
    }
    report(&what, elapsed);
}

/// Whether `err` is how a connection ends when its transport is lost: an
/// I/O error (including EOF), or, when the transport ended in the middle of
/// a frame, the truncated frame.
fn lost_transport(err: &ConnError) -> bool {
    matches!(err, ConnError::Io(_) | ConnError::Protocol(_))
}

/// Keeps the measured reaction time visible with `--nocapture`.
fn report(what: &str, elapsed: Duration) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{what}: every surviving stream failed {elapsed:?} after the cut");
    }
}

/// The client's connection drops mid-transfer (FIN, then RST): every
/// server-side stream fails promptly and the server's mux reports closed.
async fn client_vanishing_mid_transfer_fails_server_streams(mode: Mode) {
    for close in [Close::Fin, Close::Rst] {
        vanish_mid_transfer(mode, Vanishing::Client, close).await;
    }
}

/// The server's connection drops mid-transfer (FIN, then RST): every
/// client-side stream fails promptly and the client's mux reports closed.
async fn server_vanishing_mid_transfer_fails_client_streams(mode: Mode) {
    for close in [Close::Fin, Close::Rst] {
        vanish_mid_transfer(mode, Vanishing::Server, close).await;
    }
}
