//! mux-yamux-lite inside a tunnel, end to end over a real hyper HTTP/2
//! server on 127.0.0.1:0: many muxed streams share one `H2Conn`, and stream
//! semantics (half-close, reset codes) cross it intact.
// Test helpers outside `#[test]` fns panic on failure by design, and size
// arithmetic in tests cannot overflow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

mod common;

use std::future::Future;
use std::time::Duration;

use common::{open, random_bytes, start};
use mux_core::{MuxedStream, StreamError};
use mux_h2::{H2Conn, Mode};
use mux_yamux_lite::{Config, Connection, Role, Stream};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Every test must finish within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `test` under [`TEST_TIMEOUT`].
async fn bounded(name: &str, test: impl Future<Output = ()>) {
    if tokio::time::timeout(TEST_TIMEOUT, test).await.is_err() {
        panic!("{name}: did not finish within {TEST_TIMEOUT:?}");
    }
}

/// A tunnel handler that runs a mux-yamux-lite server over the tunnel and
/// spawns `on_stream` for every stream the client opens.
fn mux_server<F, Fut>(on_stream: F) -> impl Fn(H2Conn) -> std::future::Ready<()> + Clone
where
    F: Fn(Stream) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    move |conn: H2Conn| {
        let on_stream = on_stream.clone();
        tokio::spawn(async move {
            let mux = Connection::new(conn, Role::Server, Config::default());
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

/// Starts a server whose tunnels echo every muxed stream, opens one tunnel
/// in `mode` and runs a mux-yamux-lite client over it.
async fn muxed_client<F, Fut>(mode: Mode, on_stream: F) -> Connection
where
    F: Fn(Stream) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (url, _) = start(mux_server(on_stream)).await;
    let tunnel = open(&url, mode).await;
    Connection::new(tunnel, Role::Client, Config::default())
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

/// `streams` concurrent muxed streams of `len` random bytes each through one
/// tunnel in `mode`, every echo checked byte for byte.
async fn many_streams(mode: Mode, streams: u64, len: usize) {
    let mux = muxed_client(mode, echo_stream).await;
    let mut tasks = JoinSet::new();
    for seed in 0..streams {
        let mux = mux.clone();
        tasks.spawn(async move {
            let data = random_bytes(len, seed);
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
    assert_eq!(done, streams);
    // Every byte crossed the one tunnel, in both directions.
    let total = streams * len as u64;
    let stats = mux.stats();
    assert_eq!(stats.bytes_sent, total, "{mode:?}: {stats:?}");
    assert_eq!(stats.bytes_received, total, "{mode:?}: {stats:?}");
    mux.close().await.unwrap();
}

#[tokio::test]
async fn connect_100_muxed_streams_echo_64kib_each() {
    bounded(
        "connect_100_muxed_streams_echo_64kib_each",
        many_streams(Mode::Connect, 100, 64 * 1024),
    )
    .await;
}

#[tokio::test]
async fn post_20_muxed_streams_echo_32kib_each() {
    bounded(
        "post_20_muxed_streams_echo_32kib_each",
        many_streams(Mode::Post, 20, 32 * 1024),
    )
    .await;
}

#[tokio::test]
async fn http1_upgrade_10_muxed_streams_echo_32kib_each() {
    bounded(
        "http1_upgrade_10_muxed_streams_echo_32kib_each",
        many_streams(Mode::Http1Upgrade, 10, 32 * 1024),
    )
    .await;
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

#[tokio::test]
async fn json_messages_through_one_muxed_stream() {
    bounded("json_messages_through_one_muxed_stream", async {
        let mux = muxed_client(Mode::Connect, json_service).await;
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
        assert_eq!(replies, expected);
        mux.close().await.unwrap();
    })
    .await;
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

#[tokio::test]
async fn half_close_and_reset_cross_the_tunnel() {
    bounded("half_close_and_reset_cross_the_tunnel", async {
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        let mux = muxed_client(Mode::Connect, move |stream| {
            command_service(stream, seen_tx.clone())
        })
        .await;

        // Half-close: the server sees EOF after our bytes, and can still
        // answer on its own write side, which we read to its EOF.
        let mut stream = mux.open_stream().await.unwrap();
        let payload = random_bytes(100_000, 7);
        stream.write_all(b"H").await.unwrap();
        stream.write_all(&payload).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        assert_eq!(reply, "got 100000 bytes after half-close");
        assert_eq!(seen.recv().await.unwrap(), Seen::Eof(100_000));
        // Writing after close-write fails locally.
        let err = stream.write_all(b"late").await.unwrap_err();
        assert!(
            matches!(StreamError::from_io(&err), Some(StreamError::WriteClosed)),
            "{err}"
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
        );
        assert!(
            b"about to reset".starts_with(&got),
            "data before the reset, if delivered, is intact: {got:?}"
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
            }
        );
        // Locally the stream is reset too.
        let err = stream.write_all(b"after reset").await.unwrap_err();
        assert!(
            StreamError::from_io(&err).is_some_and(StreamError::is_reset),
            "{err}"
        );
        drop(stream);

        // The resets touched only their streams: the tunnel still carries
        // new ones.
        let data = random_bytes(50_000, 8);
        let mut echoed = b"E".to_vec();
        echoed.extend_from_slice(&data);
        let got = echo_one(mux.clone(), echoed.clone()).await;
        assert!(got == data, "echo after resets");
        assert!(!mux.is_closed());
        mux.close().await.unwrap();
    })
    .await;
}
