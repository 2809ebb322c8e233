//! Two real `Connection`s joined by an in-memory duplex pipe, and the helpers
//! the semantics tests share (`semantics.rs`, `connection_lifecycle.rs`).
#![allow(dead_code, unreachable_pub, clippy::arithmetic_side_effects)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures::task::ArcWake;
use mux_core::{MuxedStream, StreamError};
use mux_yamux_lite::{Config, Connection, Role, Stream};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::oneshot;

/// Bound on every unpaused test, so a hang fails instead of blocking CI.
pub const LIMIT: Duration = Duration::from_secs(60);

pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("the test hung (60 s bound)"))
}

/// A client and a server connection over one duplex pipe.
pub fn pair_with(client: Config, server: Config) -> (Connection, Connection) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (
        Connection::new(a, Role::Client, client),
        Connection::new(b, Role::Server, server),
    )
}

pub fn pair() -> (Connection, Connection) {
    pair_with(Config::default(), Config::default())
}

/// Default config without keepalive, for paused-clock tests: auto-advance
/// would otherwise fire keepalive pings.
pub fn quiet() -> Config {
    let mut c = Config::default();
    c.keepalive_interval = None;
    c
}

/// Opens a stream on `a` and accepts it on `b`.
pub async fn open_accept(a: &Connection, b: &Connection) -> (Stream, Stream) {
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
pub fn stream_err(e: &io::Error) -> StreamError {
    StreamError::from_io(e)
        .unwrap_or_else(|| panic!("not a StreamError: {e:?}"))
        .clone()
}

pub fn assert_reset(e: &io::Error, want_code: u32, want_remote: bool) {
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
    match stream_err(e) {
        StreamError::Reset { code, remote } => {
            assert_eq!((code, remote), (want_code, want_remote), "{e:?}");
        }
        other => panic!("expected a reset, got {other:?}"),
    }
}

pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(37))
        .collect()
}

pub async fn yield_many() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// A waker that records whether it was woken.
#[derive(Default)]
pub struct WakeFlag(pub AtomicBool);

impl ArcWake for WakeFlag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.store(true, Ordering::SeqCst);
    }
}

/// A transport that reports when the connection has shut it down.
pub struct Tracked {
    inner: DuplexStream,
    on_shutdown: Option<oneshot::Sender<()>>,
}

impl Tracked {
    /// `inner`, and what fires once the connection shuts it down.
    pub fn new(inner: DuplexStream) -> (Self, oneshot::Receiver<()>) {
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
pub fn tracked_pair() -> (Connection, Connection, oneshot::Receiver<()>) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (a, shut) = Tracked::new(a);
    (
        Connection::new(a, Role::Client, Config::default()),
        Connection::new(b, Role::Server, Config::default()),
        shut,
    )
}
