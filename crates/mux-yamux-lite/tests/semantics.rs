//! Stream and connection semantics of mux-yamux-lite, each proved with two
//! real `Connection`s joined by an in-memory duplex pipe (one pair per test).
#![allow(clippy::arithmetic_side_effects)]

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures::task::ArcWake;
use futures::{poll, FutureExt};
use mux_core::{ConnError, MuxedStream, StreamError};
use mux_yamux_lite::frame::{go_away, reset_code};
use mux_yamux_lite::{Config, Connection, Role, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Bound on every unpaused test, so a hang fails instead of blocking CI.
const LIMIT: Duration = Duration::from_secs(60);

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("the test hung (60 s bound)"))
}

/// A client and a server connection over one duplex pipe.
fn pair_with(client: Config, server: Config) -> (Connection, Connection) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (
        Connection::new(a, Role::Client, client),
        Connection::new(b, Role::Server, server),
    )
}

fn pair() -> (Connection, Connection) {
    pair_with(Config::default(), Config::default())
}

/// Default config without keepalive, for paused-clock tests: auto-advance
/// would otherwise fire keepalive pings.
fn quiet() -> Config {
    let mut c = Config::default();
    c.keepalive_interval = None;
    c
}

/// Opens a stream on `a` and accepts it on `b`.
async fn open_accept(a: &Connection, b: &Connection) -> (Stream, Stream) {
    let opened = match a.open_stream().await {
        Ok(s) => s,
        Err(e) => panic!("open_stream: {e:?}"),
    };
    let accepted = match b.accept_stream().await {
        Ok(s) => s,
        Err(e) => panic!("accept_stream: {e:?}"),
    };
    assert_eq!(opened.id(), accepted.id());
    (opened, accepted)
}

/// The typed stream error inside an `io::Error`.
fn stream_err(e: &io::Error) -> StreamError {
    StreamError::from_io(e)
        .unwrap_or_else(|| panic!("not a StreamError: {e:?}"))
        .clone()
}

fn assert_reset(e: &io::Error, want_code: u32, want_remote: bool) {
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
    match stream_err(e) {
        StreamError::Reset { code, remote } => {
            assert_eq!((code, remote), (want_code, want_remote), "{e:?}");
        }
        other => panic!("expected a reset, got {other:?}"),
    }
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(37))
        .collect()
}

async fn yield_many() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// A waker that records whether it was woken.
#[derive(Default)]
struct WakeFlag(AtomicBool);

impl ArcWake for WakeFlag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.store(true, Ordering::SeqCst);
    }
}

/// A transport that reports when the connection has shut it down.
struct Tracked {
    inner: DuplexStream,
    on_shutdown: Option<oneshot::Sender<()>>,
}

impl Tracked {
    fn new(inner: DuplexStream) -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (
            Self {
                inner,
                on_shutdown: Some(tx),
            },
            rx,
        )
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = ready!(Pin::new(&mut self.inner).poll_shutdown(cx));
        if let Some(tx) = self.on_shutdown.take() {
            let _ = tx.send(());
        }
        Poll::Ready(result)
    }
}

/// A client over a [`Tracked`] transport and a plain server.
fn tracked_pair() -> (Connection, Connection, oneshot::Receiver<()>) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (a, shut) = Tracked::new(a);
    (
        Connection::new(a, Role::Client, Config::default()),
        Connection::new(b, Role::Server, Config::default()),
        shut,
    )
}

// ----- half-close -----------------------------------------------------------

#[tokio::test]
async fn client_close_write_gives_server_eof_and_server_can_still_write_back() {
    bounded(async {
        let (client, server) = pair();
        let (mut c, mut s) = open_accept(&client, &server).await;

        c.write_all(b"request").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request");
        assert_eq!(s.read(&mut [0u8; 8]).await.unwrap(), 0, "EOF is sticky");

        let e = c.write(b"x").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(matches!(stream_err(&e), StreamError::WriteClosed), "{e:?}");

        s.write_all(b"response").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"response");
    })
    .await;
}

#[tokio::test]
async fn server_close_write_gives_client_eof_and_client_can_still_write_back() {
    bounded(async {
        let (client, server) = pair();
        // The server opens, and closes its write side before sending a byte.
        let (mut s, mut c) = open_accept(&server, &client).await;
        assert_eq!(s.id().get() % 2, 0, "server-opened ids are even");
        s.shutdown().await.unwrap();

        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty());

        // More than a window: the server still grants credit after its FIN.
        let data = pattern(1, 1 << 20);
        let mut back = Vec::new();
        let (w, r) = tokio::join!(
            async {
                c.write_all(&data).await?;
                c.shutdown().await
            },
            s.read_to_end(&mut back)
        );
        w.unwrap();
        r.unwrap();
        assert!(back == data, "bytes after the peer's FIN arrive intact");
    })
    .await;
}

// ----- close_read -----------------------------------------------------------

#[tokio::test]
async fn close_read_fails_pending_and_later_reads_with_read_closed_while_peer_writes_succeed() {
    bounded(async {
        let (client, server) = pair();
        let (mut c, mut s) = open_accept(&client, &server).await;

        // A read that is pending (nothing was sent yet) ...
        let flag = Arc::new(WakeFlag::default());
        let waker = futures::task::waker(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0u8; 64];
        let mut rb = ReadBuf::new(&mut buf);
        assert!(Pin::new(&mut c).poll_read(&mut cx, &mut rb).is_pending());

        // ... is woken by close_read and then fails, not with EOF.
        c.close_read().unwrap();
        assert!(
            flag.0.load(Ordering::SeqCst),
            "close_read wakes the pending read"
        );
        match Pin::new(&mut c).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Err(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::NotConnected);
                assert!(matches!(stream_err(&e), StreamError::ReadClosed), "{e:?}");
            }
            other => panic!("expected ReadClosed, got {other:?}"),
        }
        let e = c.read(&mut [0u8; 8]).await.unwrap_err();
        assert!(matches!(stream_err(&e), StreamError::ReadClosed), "{e:?}");

        // The peer may write far more than one window: the discarded bytes
        // return their credit, so its writes and its FIN complete.
        let data = pattern(2, 1 << 20);
        s.write_all(&data).await.unwrap();
        s.shutdown().await.unwrap();

        let e = c.read(&mut [0u8; 8]).await.unwrap_err();
        assert!(
            matches!(stream_err(&e), StreamError::ReadClosed),
            "still ReadClosed after the peer's FIN, not EOF: {e:?}"
        );

        // The write side is unaffected.
        c.write_all(b"still writable").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"still writable");
    })
    .await;
}

// ----- reset ----------------------------------------------------------------

#[tokio::test]
async fn reset_with_code_fails_both_sides_and_drops_the_peers_unread_data() {
    bounded(async {
        let (client, server) = pair();
        let (mut c, mut s) = open_accept(&client, &server).await;
        let (mut c_mark, mut s_mark) = open_accept(&client, &server).await;

        // The server gets 1000 bytes it does not read. A marker on another
        // stream, queued after them, arrives after them: once the server
        // reads it, the bytes are there, ahead of the RESET.
        c.write_all(&[1u8; 1000]).await.unwrap();
        c_mark.write_all(b"m").await.unwrap();
        s_mark.read_exact(&mut [0u8; 1]).await.unwrap();
        assert_eq!(server.stats().bytes_received, 1001);
        c.reset_with(42);
        // A second marker, framed after the RESET: once the server reads
        // it, the RESET has been handled too.
        c_mark.write_all(b"n").await.unwrap();
        s_mark.read_exact(&mut [0u8; 1]).await.unwrap();
        assert_eq!(server.stats().bytes_received, 1002);

        let e = s.read(&mut [0u8; 2000]).await.unwrap_err();
        assert_reset(&e, 42, true);
        let e = s.write(b"x").await.unwrap_err();
        assert_reset(&e, 42, true);
        let e = s.shutdown().await.unwrap_err();
        assert_reset(&e, 42, true);

        let e = c.read(&mut [0u8; 8]).await.unwrap_err();
        assert_reset(&e, 42, false);
        let e = c.write(b"x").await.unwrap_err();
        assert_reset(&e, 42, false);

        // Only that stream ended.
        s_mark.write_all(b"alive").await.unwrap();
        let mut back = [0u8; 5];
        c_mark.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"alive");
        assert!(!client.is_closed() && !server.is_closed());
    })
    .await;
}

#[tokio::test]
async fn reset_without_code_reaches_the_peer_as_code_zero() {
    bounded(async {
        let (client, server) = pair();
        let (mut c, mut s) = open_accept(&client, &server).await;
        s.reset();
        let e = c.read(&mut [0u8; 8]).await.unwrap_err();
        assert_reset(&e, reset_code::CANCEL, true);
        assert!(stream_err(&e).is_remote());
    })
    .await;
}

// ----- deadlines ------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn read_deadline_set_while_a_read_is_pending_times_out_and_clearing_it_loses_no_byte() {
    let (client, server) = pair_with(quiet(), quiet());
    let (c, mut s) = open_accept(&client, &server).await;
    let deadlines = c.deadlines();
    let reader = tokio::spawn(async move {
        let mut c = c;
        let result = c.read(&mut [0u8; 16]).await;
        (c, result)
    });
    yield_many().await;
    assert!(!reader.is_finished(), "nothing to read yet");

    // Set from this task while the other one is blocked in the read.
    let start = Instant::now();
    deadlines.set_read(Some(start + Duration::from_secs(5)));
    tokio::time::advance(Duration::from_secs(4)).await;
    yield_many().await;
    assert!(!reader.is_finished(), "the deadline has not passed yet");
    tokio::time::advance(Duration::from_secs(1)).await;
    let (mut c, result) = reader.await.unwrap();
    let e = result.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(matches!(stream_err(&e), StreamError::TimedOut), "{e:?}");
    assert_eq!(Instant::now() - start, Duration::from_secs(5));

    // The deadline closed nothing: clear it, and later data arrives in full.
    c.set_read_deadline(None);
    let data = pattern(3, 100_000);
    s.write_all(&data).await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert!(got == data, "every byte written after the timeout is read");
}

#[tokio::test(start_paused = true)]
async fn write_deadline_on_an_exhausted_window_times_out_and_after_clearing_every_byte_arrives() {
    const WINDOW: usize = 1024;
    const SEND_BUFFER: usize = 4096;
    let mut client_cfg = quiet();
    client_cfg.send_buffer = SEND_BUFFER;
    let mut server_cfg = quiet();
    server_cfg.initial_window = WINDOW as u32; // what the server grants the client
    let (client, server) = pair_with(client_cfg, server_cfg);
    let (mut c, mut s) = open_accept(&client, &server).await;

    let data = Arc::new(pattern(4, 64 * 1024));
    let start = Instant::now();
    c.set_write_deadline(Some(start + Duration::from_secs(10)));
    let writer = {
        let data = data.clone();
        tokio::spawn(async move {
            let mut off = 0;
            let err = loop {
                if off == data.len() {
                    break None;
                }
                match c.write(&data[off..]).await {
                    Ok(n) => off += n,
                    Err(e) => break Some(e),
                }
            };
            (c, off, err)
        })
    };
    tokio::time::advance(Duration::from_secs(9)).await;
    yield_many().await;
    assert!(
        !writer.is_finished(),
        "blocked on the window, deadline not reached"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    let (mut c, off, err) = writer.await.unwrap();
    let e = err.expect("the write must time out, not complete");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(matches!(stream_err(&e), StreamError::TimedOut), "{e:?}");
    assert_eq!(
        off,
        WINDOW + SEND_BUFFER,
        "one window sent plus a full send buffer"
    );

    c.set_write_deadline(None);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.map(|_| got)
    });
    c.write_all(&data[off..]).await.unwrap();
    c.shutdown().await.unwrap();
    let got = reader.await.unwrap().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(
        got == *data,
        "nothing was lost or duplicated by the timeout"
    );
}

// ----- graceful close -------------------------------------------------------

#[tokio::test]
async fn close_sends_go_away_refuses_new_streams_drains_open_ones_then_shuts_the_transport() {
    bounded(async {
        let (client, server, mut shut) = tracked_pair();
        let (mut c, mut s) = open_accept(&client, &server).await;
        c.write_all(b"before close, ").await.unwrap();

        let mut closing = pin!(client.close());
        assert!(
            poll!(closing.as_mut()).is_pending(),
            "a stream is still open"
        );
        assert!(client.is_closed(), "closing counts as closed");
        let e = client.open_stream().await.unwrap_err();
        assert!(
            matches!(
                e,
                ConnError::GoAwaySent {
                    code: go_away::NORMAL
                }
            ),
            "{e:?}"
        );

        // The open stream drains: bytes written after close() started arrive.
        c.write_all(b"after close").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"before close, after close");

        // GO_AWAY preceded those bytes, so the server knows.
        let e = server.open_stream().await.unwrap_err();
        assert!(
            matches!(
                e,
                ConnError::GoAway {
                    code: go_away::NORMAL
                }
            ),
            "{e:?}"
        );
        assert!(e.is_go_away());

        assert!(
            poll!(closing.as_mut()).is_pending(),
            "server's half still open"
        );
        assert!(
            shut.try_recv().is_err(),
            "transport still up while draining"
        );

        s.write_all(b"reply").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"reply");

        closing.await.unwrap();
        assert!(
            shut.try_recv().is_ok(),
            "the transport is shut down by the time close() returns"
        );
        assert!(server.accept_stream().await.is_err());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn close_resets_a_stream_that_never_finishes_once_close_timeout_passes() {
    let mut cfg = quiet();
    cfg.close_timeout = Duration::from_secs(5);
    let (client, server) = pair_with(cfg, quiet());
    let (mut c, mut s) = open_accept(&client, &server).await;

    let start = Instant::now();
    let mut closing = pin!(client.close());
    assert!(
        poll!(closing.as_mut()).is_pending(),
        "close() started, draining"
    );
    tokio::time::advance(Duration::from_secs(4)).await;
    yield_many().await;
    assert!(
        poll!(closing.as_mut()).is_pending(),
        "still draining before the close timeout"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    closing.await.unwrap();
    assert_eq!(Instant::now() - start, Duration::from_secs(5));

    let e = c.read(&mut [0u8; 8]).await.unwrap_err();
    assert_reset(&e, reset_code::CLOSE_TIMEOUT, false);
    let e = s.read(&mut [0u8; 8]).await.unwrap_err();
    assert_reset(&e, reset_code::CLOSE_TIMEOUT, true);
}

#[tokio::test]
async fn received_go_away_refuses_new_opens_but_existing_streams_carry_data_both_ways() {
    bounded(async {
        let (client, server) = pair();
        let (mut c, mut s) = open_accept(&client, &server).await;

        let mut closing = pin!(server.close());
        assert!(poll!(closing.as_mut()).is_pending());
        // Written after close() started, so it follows the GO_AWAY.
        s.write_all(b"go-away sent").await.unwrap();
        let mut first = [0u8; 12];
        c.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"go-away sent");

        let e = client.open_stream().await.unwrap_err();
        assert!(
            matches!(
                e,
                ConnError::GoAway {
                    code: go_away::NORMAL
                }
            ),
            "{e:?}"
        );
        assert!(client.accept_stream().await.is_err());

        // More than a window in each direction, so flow control keeps working.
        let up = pattern(5, 1 << 20);
        let mut got = Vec::new();
        let (w, r) = tokio::join!(
            async {
                c.write_all(&up).await?;
                c.shutdown().await
            },
            s.read_to_end(&mut got)
        );
        w.unwrap();
        r.unwrap();
        assert!(got == up);

        let down = pattern(6, 1 << 20);
        let mut back = Vec::new();
        let (w, r) = tokio::join!(
            async {
                s.write_all(&down).await?;
                s.shutdown().await
            },
            c.read_to_end(&mut back)
        );
        w.unwrap();
        r.unwrap();
        assert!(back == down);

        closing.await.unwrap();
    })
    .await;
}

// ----- transport failure ----------------------------------------------------

#[tokio::test]
async fn transport_loss_fails_pending_reads_writes_and_accepts_promptly() {
    bounded(async {
        // client <-> proxy <-> server; aborting the proxy drops both raw ends.
        let (a, mut a_raw) = tokio::io::duplex(1 << 16);
        let (mut b_raw, b) = tokio::io::duplex(1 << 16);
        let proxy = tokio::spawn(async move {
            let _ = tokio::io::copy_bidirectional(&mut a_raw, &mut b_raw).await;
        });
        let client = Connection::new(a, Role::Client, Config::default());
        let server = Connection::new(b, Role::Server, Config::default());
        let (mut c_read, mut s_read) = open_accept(&client, &server).await;
        let (mut c_write, _s_write) = open_accept(&client, &server).await;

        let reader = tokio::spawn(async move { c_read.read(&mut [0u8; 16]).await });
        let writer = tokio::spawn(async move {
            // Far beyond window plus send buffer: blocks, the server never reads.
            c_write.write_all(&vec![0u8; 4 << 20]).await
        });
        let acceptor = {
            let client = client.clone();
            tokio::spawn(async move { client.accept_stream().await })
        };
        yield_many().await;
        assert!(!reader.is_finished() && !writer.is_finished() && !acceptor.is_finished());

        proxy.abort();

        let e = reader.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
        assert!(
            matches!(stream_err(&e), StreamError::ConnectionClosed(_)),
            "{e:?}"
        );
        let e = writer.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
        assert!(
            matches!(stream_err(&e), StreamError::ConnectionClosed(_)),
            "{e:?}"
        );
        let e = acceptor.await.unwrap().unwrap_err();
        assert!(e.is_io(), "{e:?}");

        let e = s_read.read(&mut [0u8; 16]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
        assert!(server.accept_stream().await.unwrap_err().is_io());
        assert!(client.open_stream().await.is_err());
        assert!(client.is_closed() && server.is_closed());
        // close() reports why the connection had already ended.
        assert!(client.close().await.unwrap_err().is_io());
    })
    .await;
}

#[tokio::test]
async fn dropped_raw_peer_fails_streams_opened_before_any_handshake() {
    bounded(async {
        let (a, raw) = tokio::io::duplex(1 << 16);
        let client = Connection::new(a, Role::Client, Config::default());
        let mut c = client.open_stream().await.unwrap();
        let queued = c.write(b"queued, never sent").await.unwrap();
        assert!(queued > 0, "writes are buffered before the handshake");
        let acceptor = {
            let client = client.clone();
            tokio::spawn(async move { client.accept_stream().await })
        };
        {
            let mut buf = [0u8; 8];
            let mut read = pin!(c.read(&mut buf));
            assert!(poll!(read.as_mut()).is_pending());

            drop(raw);

            let e = read.await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
        }
        let e = c.write(b"more").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
        assert!(acceptor.await.unwrap().is_err());
        assert!(client.is_closed());
    })
    .await;
}

// ----- dropping handles -----------------------------------------------------

#[tokio::test]
async fn dropping_a_stream_after_writing_delivers_every_byte_then_eof_and_reclaims_it() {
    bounded(async {
        let (client, server) = pair();
        let (mut c, mut s) = open_accept(&client, &server).await;
        let (mut c_mark, mut s_mark) = open_accept(&client, &server).await;

        // More than one window, so bytes are still buffered at the drop.
        let data = pattern(7, 400_000);
        c.write_all(&data).await.unwrap();
        drop(c);

        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data);

        // What the peer sends to the dropped handle within the credit it
        // held is discarded, and the stream leaves the table once done
        // (more would get it reset: `stress.rs`, `transcript.rs`).
        s.write_all(&pattern(8, 100_000)).await.unwrap();
        s.shutdown().await.unwrap();
        // Marker framed after the FIN: once it is read, the FIN was handled.
        s_mark.write_all(b"m").await.unwrap();
        c_mark.read_exact(&mut [0u8; 1]).await.unwrap();
        assert_eq!(client.stats().streams, 1, "only the marker stream is left");
    })
    .await;
}

#[tokio::test]
async fn dropping_every_connection_handle_closes_gracefully_once_streams_finish() {
    bounded(async {
        let (client, server, mut shut) = tracked_pair();
        let (mut c, mut s) = open_accept(&client, &server).await;

        // Dropping one clone closes nothing.
        let last = client.clone();
        drop(client);
        let (mut c2, mut s2) = open_accept(&last, &server).await;
        c2.write_all(b"x").await.unwrap();
        s2.read_exact(&mut [0u8; 1]).await.unwrap();
        drop((c2, s2));

        drop(last);
        // The stream still held keeps working in both directions.
        c.write_all(b"after the last handle").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"after the last handle");
        assert!(server.open_stream().await.unwrap_err().is_go_away());
        assert!(
            shut.try_recv().is_err(),
            "transport stays up until streams finish"
        );

        s.write_all(b"bye").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"bye");

        shut.await
            .expect("the transport is shut down once streams finished");
        assert!(server.accept_stream().await.is_err());
    })
    .await;
}

// ----- limits ---------------------------------------------------------------

#[tokio::test]
async fn open_stream_waits_while_max_pending_opens_are_unacknowledged_and_resumes_on_accept() {
    bounded(async {
        let mut cfg = Config::default();
        cfg.max_pending_opens = 2;
        let (client, server) = pair_with(cfg, Config::default());
        let _a = client.open_stream().await.unwrap();
        let _b = client.open_stream().await.unwrap();
        let mut third = pin!(client.open_stream());
        assert!(poll!(third.as_mut()).is_pending(), "waits, does not fail");

        // A round trip on a server-opened stream, framed after both SYNs:
        // the server has them, and would have ACKed had it accepted.
        let (mut s_x, mut c_x) = open_accept(&server, &client).await;
        c_x.write_all(b"?").await.unwrap();
        s_x.read_exact(&mut [0u8; 1]).await.unwrap();
        s_x.write_all(b"!").await.unwrap();
        c_x.read_exact(&mut [0u8; 1]).await.unwrap();
        assert!(
            poll!(third.as_mut()).is_pending(),
            "still waiting for an ACK"
        );

        let accepted = server.accept_stream().await.unwrap();
        assert_eq!(accepted.id().get(), 1);
        let third = third.await.unwrap();
        assert_eq!(third.id().get(), 5);
    })
    .await;
}

#[tokio::test]
async fn inbound_streams_beyond_max_inbound_streams_are_refused_and_the_rest_keep_working() {
    bounded(async {
        let mut server_cfg = Config::default();
        server_cfg.max_inbound_streams = 2;
        let (client, server) = pair_with(Config::default(), server_cfg);
        // Opened before the client can have read the server's HELLO (the
        // test runtime is single-threaded and nothing yields), so the client
        // cannot hold the third back; the server must refuse it.
        let open_now = || {
            client
                .open_stream()
                .now_or_never()
                .expect("opens at once: the peer's limit is not known yet")
                .unwrap()
        };
        let mut c1 = open_now();
        let mut c2 = open_now();
        let mut c3 = open_now();

        let e = c3.read(&mut [0u8; 1]).await.unwrap_err();
        assert_reset(&e, reset_code::REFUSED, true);
        let e = c3.write(b"x").await.unwrap_err();
        assert_reset(&e, reset_code::REFUSED, true);
        assert_eq!(server.stats().streams_refused, 1);

        for c in [&mut c1, &mut c2] {
            let mut s = server.accept_stream().await.unwrap();
            assert_eq!(s.id(), c.id());
            c.write_all(b"ping").await.unwrap();
            c.shutdown().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(&got).await.unwrap();
            s.shutdown().await.unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back).await.unwrap();
            assert_eq!(back, b"ping");
        }
        assert!(!client.is_closed() && !server.is_closed());

        // With both finished, a new stream fits under the limit again.
        let (mut c4, mut s4) = open_accept(&client, &server).await;
        c4.write_all(b"4").await.unwrap();
        s4.read_exact(&mut [0u8; 1]).await.unwrap();
        assert_eq!(server.stats().streams_refused, 1);
    })
    .await;
}

#[tokio::test]
async fn open_stream_waits_at_the_peers_announced_stream_limit_instead_of_being_refused() {
    bounded(async {
        let mut server_cfg = Config::default();
        server_cfg.max_inbound_streams = 2;
        let (client, server) = pair_with(Config::default(), server_cfg);
        let (mut c1, mut s1) = open_accept(&client, &server).await;
        // A round trip: the client has the server's HELLO now.
        c1.write_all(b"?").await.unwrap();
        s1.read_exact(&mut [0u8; 1]).await.unwrap();
        s1.write_all(b"!").await.unwrap();
        c1.read_exact(&mut [0u8; 1]).await.unwrap();
        let (_c2, _s2) = open_accept(&client, &server).await;

        let mut third = pin!(client.open_stream());
        assert!(poll!(third.as_mut()).is_pending(), "at the peer's limit");

        // Finishing stream 1 on both sides frees a slot.
        c1.shutdown().await.unwrap();
        s1.shutdown().await.unwrap();
        c1.read_to_end(&mut Vec::new()).await.unwrap();
        let mut c3 = third.await.unwrap();
        let mut s3 = server.accept_stream().await.unwrap();
        c3.write_all(b"3").await.unwrap();
        s3.read_exact(&mut [0u8; 1]).await.unwrap();
        assert_eq!(server.stats().streams_refused, 0);
    })
    .await;
}

// ----- measurements ---------------------------------------------------------

#[tokio::test]
async fn rtt_is_measured_by_the_handshake_ping_and_stats_count_payload_bytes() {
    bounded(async {
        let (client, server) = pair();
        assert!(client.rtt().is_none() && server.rtt().is_none());
        let (mut c, mut s) = open_accept(&client, &server).await;

        c.write_all(&[1u8; 10_000]).await.unwrap();
        s.read_exact(&mut [0u8; 10_000]).await.unwrap();
        s.write_all(&[2u8; 20_000]).await.unwrap();
        c.read_exact(&mut [0u8; 20_000]).await.unwrap();
        // The server's PONG preceded its data.
        assert!(client.rtt().is_some(), "client rtt after a round trip");
        c.write_all(&[3u8; 5]).await.unwrap();
        s.read_exact(&mut [0u8; 5]).await.unwrap();
        // The client's PONG preceded these 5 bytes.
        assert!(server.rtt().is_some(), "server rtt after a round trip");

        let cs = client.stats();
        let ss = server.stats();
        assert_eq!((cs.bytes_sent, cs.bytes_received), (10_005, 20_000));
        assert_eq!((ss.bytes_sent, ss.bytes_received), (20_000, 10_005));
        assert!(cs.frames_sent >= 4 && cs.frames_received >= 4, "{cs:?}");
        assert!(ss.frames_sent >= 4 && ss.frames_received >= 4, "{ss:?}");
        assert_eq!((cs.streams, ss.streams), (1, 1));
        assert_eq!(cs.streams_refused + ss.streams_refused, 0);
    })
    .await;
}
