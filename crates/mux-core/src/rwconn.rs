//! [`RwConn`]: a connection made of any reader plus any writer, with Go
//! `net.Conn` semantics (deadlines, `Close`, a done signal and addresses).
//!
//! This is how an HTTP request body and a response body, a hijacked
//! connection, or two pipes become a transport for the multiplexer.
//!
//! ## Deadlines
//! Read and write deadlines are absolute instants held in a shared
//! [`Deadlines`] handle, so another task may set them while an operation is
//! pending; setting one wakes that operation. Once a direction's deadline has
//! passed, its operations fail with
//! [`StreamError::TimedOut`] (`io::ErrorKind::TimedOut`),
//! even when data is ready, as in Go. Nothing is closed: move or clear the
//! deadline and the direction works again. No byte is lost, because an
//! interrupted poll has left the inner reader and writer untouched.
//!
//! The write deadline covers `poll_write`, `poll_flush` and `poll_shutdown`.
//! A `poll_write` that fails with `TimedOut` wrote **zero bytes of that call**:
//! it only times out after the inner writer returned `Pending`, which by the
//! `AsyncWrite` contract accepted nothing. Bytes of earlier successful calls
//! were accepted by the inner writer (they may still sit in its buffer; only
//! a successful flush says they went further). `AsyncWriteExt::write_all`
//! discards how much it wrote before the error, so a caller that must know
//! exactly what went out should loop over `write` and count.
//!
//! ## Closing
//! [`RwConn::close`] closes **both directions**, like Go's `Close`: it flushes
//! and shuts down the writer (bounded by the optional
//! [drain timeout](RwConn::with_drain_timeout)), then marks the connection
//! closed. From then on reads fail with [`StreamError::ReadClosed`]
//! (`NotConnected`, deliberately not EOF) and writes, flushes and shutdowns
//! with [`StreamError::WriteClosed`]
//! (`BrokenPipe`). `poll_shutdown` on its own is only close-write, as for a
//! TCP half-close: reads keep working.
//!
//! The connection *ends* when it is closed, dropped or taken apart with
//! [`into_inner`](RwConn::into_inner), whichever comes first. Then the
//! [`on_close`](RwConn::on_close) hook runs, exactly once, and afterwards
//! every [`Done`] handle fires.
//!
//! ## Example
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> std::io::Result<()> {
//! use mux_core::{RwConn, StreamError};
//! use std::io::ErrorKind;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::time::{Duration, Instant};
//!
//! let (conn_rx, mut peer_tx) = tokio::io::simplex(64);
//! let (mut peer_rx, conn_tx) = tokio::io::simplex(64);
//! let mut conn = RwConn::new(conn_rx, conn_tx).with_drain_timeout(Duration::from_secs(5));
//! conn.on_close(|| tracing::debug!("connection ended"));
//! let done = conn.done();
//!
//! // Nothing to read yet: the read deadline interrupts the read...
//! conn.set_read_deadline(Some(Instant::now() + Duration::from_secs(1)));
//! let mut buf = [0u8; 5];
//! let err = conn.read(&mut buf).await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::TimedOut);
//! assert!(matches!(StreamError::from_io(&err), Some(StreamError::TimedOut)));
//!
//! // ...and clearing it lets reads go on, with nothing lost.
//! conn.set_read_deadline(None);
//! peer_tx.write_all(b"hello").await?;
//! conn.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"hello");
//!
//! // Close flushes and shuts down the writer; the peer sees the data then EOF.
//! conn.write_all(b"bye").await?;
//! conn.close().await?;
//! done.wait().await;
//! let mut got = Vec::new();
//! peer_rx.read_to_end(&mut got).await?;
//! assert_eq!(got, b"bye");
//! # Ok(())
//! # }
//! ```

use std::{
    fmt,
    future::poll_fn,
    io::{self, IoSlice},
    net::SocketAddr,
    pin::Pin,
    sync::{Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{DeadlineTimer, Deadlines, Direction, StreamError};

type Hook = Box<dyn FnOnce() + Send + 'static>;

pin_project! {
    /// A connection made of a reader `R` and a writer `W`, with Go `net.Conn`
    /// deadlines, close, done signal and addresses (see the [module docs](self)).
    ///
    /// It is `Unpin` when `R` and `W` are, and `Send`/`Sync` when they are.
    pub struct RwConn<R, W> {
        #[pin]
        reader: R,
        #[pin]
        writer: W,
        deadlines: Deadlines,
        read_timer: DeadlineTimer,
        write_timer: DeadlineTimer,
        closed: bool,
        drain_timeout: Option<Duration>,
        local_addr: Option<SocketAddr>,
        remote_addr: Option<SocketAddr>,
        // A field with its own `Drop`, rather than a `PinnedDrop` on the
        // struct, so that `into_inner` can still move the halves out.
        ender: Ender,
    }
}

/// Runs the close hook and fires [`Done`] when the connection ends.
struct Ender {
    done: CancellationToken,
    // Only ever touched through `&mut`, so never contended; the mutex is
    // there so that a `Send`-only hook still leaves `RwConn` `Sync`.
    hook: Mutex<Option<Hook>>,
}

impl Ender {
    fn new() -> Self {
        Self {
            done: CancellationToken::new(),
            hook: Mutex::new(None),
        }
    }

    fn slot(&mut self) -> &mut Option<Hook> {
        // A panicking hook has already been taken out, so a poisoned slot
        // holds nothing half-done.
        self.hook.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&mut self, hook: Hook) {
        if self.done.is_cancelled() {
            // Already ended: run now, so every hook still runs exactly once.
            hook();
            return;
        }
        let slot = self.slot();
        *slot = Some(match slot.take() {
            None => hook,
            Some(prev) => Box::new(move || {
                prev();
                hook();
            }),
        });
    }

    fn end(&mut self) {
        // Fire `done` only after the hook, so a waiter sees its effects;
        // the guard fires it even if the hook panics.
        let _fire_done = self.done.clone().drop_guard();
        if let Some(hook) = self.slot().take() {
            hook();
        }
    }
}

impl Drop for Ender {
    fn drop(&mut self) {
        self.end();
    }
}

/// A cloneable handle that fires once its [`RwConn`] has ended (closed,
/// dropped or taken apart), like Go's `Done()` channel.
#[derive(Debug, Clone)]
pub struct Done {
    token: CancellationToken,
}

impl Done {
    /// Waits until the connection has ended; returns at once if it has.
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// Whether the connection has ended.
    pub fn is_done(&self) -> bool {
        self.token.is_cancelled()
    }
}

impl<R, W> RwConn<R, W> {
    /// Joins `reader` and `writer` into one connection, with no deadline, no
    /// drain timeout (close waits for the writer as long as it takes) and no
    /// address.
    pub fn new(reader: R, writer: W) -> Self {
        Self {
            reader,
            writer,
            deadlines: Deadlines::new(),
            read_timer: DeadlineTimer::new(),
            write_timer: DeadlineTimer::new(),
            closed: false,
            drain_timeout: None,
            local_addr: None,
            remote_addr: None,
            ender: Ender::new(),
        }
    }

    /// Bounds how long [`close`](Self::close) waits for the writer to drain
    /// (flush, then shut down) before it gives up with `TimedOut`.
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = Some(timeout);
        self
    }

    /// Sets or (with `None`) removes the bound on how long
    /// [`close`](Self::close) waits for the writer to drain.
    pub fn set_drain_timeout(&mut self, timeout: Option<Duration>) {
        self.drain_timeout = timeout;
    }

    /// How long [`close`](Self::close) waits for the writer to drain, at
    /// most, if bounded.
    pub fn drain_timeout(&self) -> Option<Duration> {
        self.drain_timeout
    }

    /// Attaches address metadata, reported by [`local_addr`](Self::local_addr)
    /// and [`remote_addr`](Self::remote_addr); nothing else uses it.
    pub fn with_addrs(mut self, local: Option<SocketAddr>, remote: Option<SocketAddr>) -> Self {
        self.local_addr = local;
        self.remote_addr = remote;
        self
    }

    /// The local address given to [`with_addrs`](Self::with_addrs).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The remote address given to [`with_addrs`](Self::with_addrs).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// A cloneable handle on the deadlines; other tasks may set them while an
    /// operation is pending.
    pub fn deadlines(&self) -> Deadlines {
        self.deadlines.clone()
    }

    /// Sets or clears the read deadline.
    pub fn set_read_deadline(&self, at: Option<Instant>) {
        self.deadlines.set_read(at);
    }

    /// Sets or clears the write deadline (writes, flushes and shutdowns).
    pub fn set_write_deadline(&self, at: Option<Instant>) {
        self.deadlines.set_write(at);
    }

    /// Sets or clears both deadlines.
    pub fn set_deadline(&self, at: Option<Instant>) {
        self.deadlines.set(at);
    }

    /// Adds a hook to run once when the connection ends (closed, dropped or
    /// taken apart). Hooks run in the order added; one added after the end
    /// runs at once.
    pub fn on_close(&mut self, hook: impl FnOnce() + Send + 'static) {
        self.ender.add(Box::new(hook));
    }

    /// A handle that fires once the connection has ended, after the hooks ran.
    pub fn done(&self) -> Done {
        Done {
            token: self.ender.done.clone(),
        }
    }

    /// Whether [`close`](Self::close) has completed (successfully or not).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The reader and the writer. Using them directly bypasses deadlines and
    /// the closed state.
    pub fn get_ref(&self) -> (&R, &W) {
        (&self.reader, &self.writer)
    }

    /// The reader and the writer, mutably. Using them directly bypasses
    /// deadlines and the closed state.
    pub fn get_mut(&mut self) -> (&mut R, &mut W) {
        (&mut self.reader, &mut self.writer)
    }

    /// The pinned reader and writer, for `!Unpin` halves.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> (Pin<&mut R>, Pin<&mut W>) {
        let this = self.project();
        (this.reader, this.writer)
    }

    /// Takes the connection apart. This ends it: the close hook runs and
    /// [`Done`] fires, but the writer is neither flushed nor shut down.
    pub fn into_inner(self) -> (R, W) {
        let Self { reader, writer, .. } = self;
        (reader, writer)
    }
}

impl<R, W: AsyncWrite> RwConn<R, W> {
    /// Closes both directions, like Go's `Close` (see the [module docs](self)).
    ///
    /// Flushes then shuts down the writer, ignoring the write deadline; if a
    /// [drain timeout](Self::with_drain_timeout) is set and draining takes
    /// longer, gives up with `TimedOut`. Either way the connection is then
    /// closed, the hooks have run and [`Done`] has fired; the first error of
    /// the drain is returned. Closing a closed connection returns `Ok(())`.
    ///
    /// Dropping the future before it completes leaves the connection open.
    pub async fn close(&mut self) -> io::Result<()>
    where
        R: Unpin,
        W: Unpin,
    {
        Pin::new(self).close_pinned().await
    }

    /// [`close`](Self::close) for a pinned, possibly `!Unpin`, connection.
    pub async fn close_pinned(mut self: Pin<&mut Self>) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let drain_timeout = self.drain_timeout;
        let result = {
            let mut writer = self.as_mut().project().writer;
            let drain = async move {
                poll_fn(|cx| writer.as_mut().poll_flush(cx)).await?;
                poll_fn(|cx| writer.as_mut().poll_shutdown(cx)).await
            };
            match drain_timeout {
                None => drain.await,
                Some(timeout) => match tokio::time::timeout(timeout, drain).await {
                    Ok(result) => result,
                    Err(_elapsed) => {
                        tracing::debug!(
                            ?timeout,
                            "rwconn: writer did not drain within the drain timeout"
                        );
                        Err(StreamError::TimedOut.into())
                    }
                },
            }
        };
        if let Err(e) = &result {
            tracing::debug!(error = %e, "rwconn: close did not drain the writer");
        }
        let this = self.project();
        *this.closed = true;
        this.ender.end();
        result
    }
}

/// Runs `op` under the deadline of `dir`: fails at once if it has passed,
/// and fails when it passes while `op` is pending.
fn with_deadline<T>(
    deadlines: &Deadlines,
    dir: Direction,
    timer: &mut DeadlineTimer,
    cx: &mut Context<'_>,
    op: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    if deadlines.is_expired(dir) {
        return Poll::Ready(Err(timed_out(dir)));
    }
    if let Poll::Ready(result) = op(cx) {
        return Poll::Ready(result);
    }
    // `op` returned Pending, so it did nothing: failing now loses no byte.
    match deadlines.poll_expired(dir, timer, cx) {
        Poll::Ready(()) => Poll::Ready(Err(timed_out(dir))),
        Poll::Pending => Poll::Pending,
    }
}

fn timed_out(dir: Direction) -> io::Error {
    tracing::trace!(?dir, "rwconn: deadline exceeded");
    StreamError::TimedOut.into()
}

fn write_closed() -> io::Error {
    StreamError::WriteClosed.into()
}

impl<R: AsyncRead, W> AsyncRead for RwConn<R, W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if *this.closed {
            return Poll::Ready(Err(StreamError::ReadClosed.into()));
        }
        let reader = this.reader;
        with_deadline(this.deadlines, Direction::Read, this.read_timer, cx, |cx| {
            reader.poll_read(cx, buf)
        })
    }
}

impl<R, W: AsyncWrite> AsyncWrite for RwConn<R, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        if *this.closed {
            return Poll::Ready(Err(write_closed()));
        }
        let writer = this.writer;
        with_deadline(
            this.deadlines,
            Direction::Write,
            this.write_timer,
            cx,
            |cx| writer.poll_write(cx, buf),
        )
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        if *this.closed {
            return Poll::Ready(Err(write_closed()));
        }
        let writer = this.writer;
        with_deadline(
            this.deadlines,
            Direction::Write,
            this.write_timer,
            cx,
            |cx| writer.poll_write_vectored(cx, bufs),
        )
    }

    fn is_write_vectored(&self) -> bool {
        self.writer.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        if *this.closed {
            return Poll::Ready(Err(write_closed()));
        }
        let writer = this.writer;
        with_deadline(
            this.deadlines,
            Direction::Write,
            this.write_timer,
            cx,
            |cx| writer.poll_flush(cx),
        )
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        if *this.closed {
            return Poll::Ready(Err(write_closed()));
        }
        let writer = this.writer;
        with_deadline(
            this.deadlines,
            Direction::Write,
            this.write_timer,
            cx,
            |cx| writer.poll_shutdown(cx),
        )
    }
}

impl<R: fmt::Debug, W: fmt::Debug> fmt::Debug for RwConn<R, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwConn")
            .field("reader", &self.reader)
            .field("writer", &self.writer)
            .field("deadlines", &self.deadlines)
            .field("closed", &self.closed)
            .field("drain_timeout", &self.drain_timeout)
            .field("local_addr", &self.local_addr)
            .field("remote_addr", &self.remote_addr)
            .finish_non_exhaustive()
    }
}
