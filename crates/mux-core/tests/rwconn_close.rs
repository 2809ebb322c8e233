//! `RwConn` close, close hook, done signal, drain timeout, addresses and the state
//! after close. Time-dependent tests run on tokio's paused clock.
#![allow(clippy::arithmetic_side_effects)] // Instant/Duration sums in test setup.

use futures::poll;
use mux_core::{RwConn, StreamError};
use pin_project_lite::pin_project;
use std::io::{self, ErrorKind};
use std::marker::PhantomPinned;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf, ReadHalf,
    SimplexStream, WriteHalf,
};
use tokio::time::{timeout, Duration, Instant};

type Buffered = RwConn<ReadHalf<SimplexStream>, BufWriter<WriteHalf<SimplexStream>>>;

/// A connection whose writes sit in a `BufWriter` until flushed, plus the
/// peer's ends. The outgoing pipe holds at most `out_cap` bytes.
fn setup(out_cap: usize) -> (Buffered, WriteHalf<SimplexStream>, ReadHalf<SimplexStream>) {
    let (conn_rx, peer_tx) = tokio::io::simplex(64);
    let (peer_rx, conn_tx) = tokio::io::simplex(out_cap);
    (
        RwConn::new(conn_rx, BufWriter::new(conn_tx)),
        peer_tx,
        peer_rx,
    )
}

fn counting_hook(conn: &mut Buffered) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    conn.on_close(move || {
        c.fetch_add(1, Ordering::SeqCst);
    });
    count
}

fn stream_error(err: &io::Error) -> &StreamError {
    StreamError::from_io(err).unwrap_or_else(|| panic!("not a StreamError: {err:?}"))
}

#[tokio::test]
async fn close_flushes_shuts_down_runs_hook_once_and_fires_done() {
    let (mut conn, _peer_tx, mut peer_rx) = setup(64);
    let count = counting_hook(&mut conn);
    let done = conn.done();

    conn.write_all(b"last words").await.unwrap();
    let mut probe = [0u8; 1];
    assert!(
        poll!(pin!(peer_rx.read(&mut probe))).is_pending(),
        "the BufWriter must still hold the data, or this test proves nothing"
    );
    assert!(!done.is_done());
    assert!(poll!(pin!(done.wait())).is_pending());

    conn.close().await.unwrap();
    assert!(conn.is_closed());
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(done.is_done());
    timeout(Duration::from_secs(1), done.wait()).await.unwrap();

    let mut got = Vec::new();
    peer_rx.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"last words");

    conn.close().await.unwrap();
    drop(conn);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dropping_without_close_runs_hook_once_before_done_fires() {
    let (mut conn, _peer_tx, _peer_rx) = setup(64);
    let count = counting_hook(&mut conn);
    let done = conn.done();
    let seen = Arc::clone(&count);
    let waiter = tokio::spawn(async move {
        done.wait().await;
        seen.load(Ordering::SeqCst)
    });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    assert_eq!(count.load(Ordering::SeqCst), 0);

    drop(conn);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let seen_by_waiter = timeout(Duration::from_secs(1), waiter)
        .await
        .expect("drop must fire done")
        .unwrap();
    assert_eq!(seen_by_waiter, 1, "the hook must have run when done fires");
}

#[tokio::test(start_paused = true)]
async fn close_with_stuck_writer_gives_up_after_the_drain_timeout() {
    // The peer never reads and its pipe holds 4 bytes, so the flush blocks.
    let (conn, _peer_tx, _peer_rx) = setup(4);
    let mut conn = conn.with_drain_timeout(Duration::from_secs(5));
    assert_eq!(conn.drain_timeout(), Some(Duration::from_secs(5)));
    let count = counting_hook(&mut conn);
    let done = conn.done();
    conn.write_all(&[7u8; 64]).await.unwrap();

    let start = Instant::now();
    let err = timeout(Duration::from_secs(60), conn.close())
        .await
        .expect("the drain timeout must bound close")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(stream_error(&err).is_timeout());
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5) && elapsed <= Duration::from_millis(5002),
        "{elapsed:?}"
    );
    assert!(conn.is_closed());
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(done.is_done());

    drop(conn);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

/// A writer that accepts everything and records which calls it got.
#[derive(Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<&'static str>>>,
}

impl Recorder {
    fn record(&self, call: &'static str) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.record("write");
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.record("flush");
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.record("shutdown");
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn close_flushes_before_shutting_down() {
    let writer = Recorder::default();
    let calls = Arc::clone(&writer.calls);
    let mut conn = RwConn::new(tokio::io::empty(), writer);
    conn.write_all(b"x").await.unwrap();
    conn.close().await.unwrap();
    assert_eq!(*calls.lock().unwrap(), ["write", "flush", "shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn close_ignores_an_expired_write_deadline() {
    let (mut conn, _peer_tx, mut peer_rx) = setup(64);
    conn.write_all(b"queued").await.unwrap();
    conn.set_write_deadline(Some(Instant::now()));
    conn.close().await.unwrap();
    let mut got = Vec::new();
    peer_rx.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"queued");
}

#[tokio::test]
async fn hooks_run_in_order_and_one_added_after_the_end_runs_at_once() {
    let (mut conn, _peer_tx, _peer_rx) = setup(64);
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 1..=2 {
        let log = Arc::clone(&log);
        conn.on_close(move || log.lock().unwrap().push(i));
    }
    assert!(log.lock().unwrap().is_empty());
    conn.close().await.unwrap();
    assert_eq!(*log.lock().unwrap(), [1, 2]);

    let late = Arc::clone(&log);
    conn.on_close(move || late.lock().unwrap().push(3));
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
    drop(conn);
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
}

#[tokio::test]
async fn reads_and_writes_after_close_fail_as_documented() {
    let (mut conn, mut peer_tx, _peer_rx) = setup(64);
    peer_tx.write_all(b"unread").await.unwrap();
    conn.close().await.unwrap();

    let mut buf = [0u8; 16];
    let err = conn.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    assert!(matches!(stream_error(&err), StreamError::ReadClosed));

    let err = conn.write(b"late").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    assert!(matches!(stream_error(&err), StreamError::WriteClosed));
    for err in [
        conn.flush().await.unwrap_err(),
        conn.shutdown().await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    }
}

#[tokio::test]
async fn shutdown_alone_is_close_write_and_reads_go_on() {
    let (mut conn, mut peer_tx, mut peer_rx) = setup(64);
    let done = conn.done();
    conn.write_all(b"req").await.unwrap();
    conn.shutdown().await.unwrap();
    let mut got = Vec::new();
    peer_rx.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"req");

    peer_tx.write_all(b"resp").await.unwrap();
    peer_tx.shutdown().await.unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"resp");
    assert!(!conn.is_closed());
    assert!(!done.is_done());
}

#[tokio::test]
async fn into_inner_ends_the_conn_and_returns_working_halves() {
    let (mut conn, mut peer_tx, mut peer_rx) = setup(64);
    let count = counting_hook(&mut conn);
    let done = conn.done();
    let (mut reader, mut writer) = conn.into_inner();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(done.is_done());

    writer.write_all(b"raw").await.unwrap();
    writer.shutdown().await.unwrap();
    let mut got = Vec::new();
    peer_rx.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"raw");

    peer_tx.write_all(b"in").await.unwrap();
    let mut got = [0u8; 2];
    reader.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"in");
}

#[test]
fn address_metadata_round_trips() {
    let (conn, _peer_tx, _peer_rx) = setup(64);
    assert_eq!(conn.local_addr(), None);
    assert_eq!(conn.remote_addr(), None);

    let local: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let remote: SocketAddr = "[::1]:443".parse().unwrap();
    let conn = conn.with_addrs(Some(local), Some(remote));
    assert_eq!(conn.local_addr(), Some(local));
    assert_eq!(conn.remote_addr(), Some(remote));

    let conn = conn.with_addrs(None, Some(local));
    assert_eq!(conn.local_addr(), None);
    assert_eq!(conn.remote_addr(), Some(local));
}

pin_project! {
    /// Wraps an I/O object and makes it `!Unpin`.
    struct NotUnpin<T> {
        #[pin]
        inner: T,
        #[pin]
        _pinned: PhantomPinned,
    }
}

impl<T> NotUnpin<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            _pinned: PhantomPinned,
        }
    }
}

impl<T: AsyncRead> AsyncRead for NotUnpin<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for NotUnpin<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[tokio::test]
async fn not_unpin_halves_work_and_close_pinned_drains() {
    let (conn_rx, mut peer_tx) = tokio::io::simplex(64);
    let (mut peer_rx, conn_tx) = tokio::io::simplex(64);
    let mut conn = pin!(RwConn::new(
        NotUnpin::new(conn_rx),
        NotUnpin::new(BufWriter::new(conn_tx)),
    ));

    peer_tx.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    conn.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");

    conn.write_all(b"pong").await.unwrap();
    conn.as_mut().close_pinned().await.unwrap();
    assert!(conn.is_closed());
    let mut got = Vec::new();
    peer_rx.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"pong");
}
