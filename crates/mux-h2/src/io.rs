//! The two halves of a tunnel, [`TunnelReader`] and [`TunnelWriter`], over
//! either an HTTP/2 body pair or an upgraded connection.
//!
//! **Body mode** (HTTP/2 POST and other non-CONNECT methods): the reader
//! polls the incoming body (hyper's [`Incoming`](hyper::body::Incoming),
//! or a framework's); the writer feeds a channel of at most
//! [`SEND_QUEUE_CHUNKS`] chunks of at most [`MAX_CHUNK`] bytes, drained by the
//! outgoing [`TunnelBody`] that hyper sends. hyper takes a chunk only when the
//! HTTP/2 stream has send window, and gives window back only as the peer's
//! reader consumes, so a stalled reader stops this writer after the peer's
//! receive window plus this queue.
//!
//! **Upgraded mode** (HTTP/2 CONNECT, HTTP/1.1 upgrade): both halves share
//! hyper's [`Upgraded`] connection behind a mutex, which the server side
//! fills in lazily once its response has gone out.

use std::{
    fmt,
    future::Future,
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    task::{ready, Context, Poll, Wake, Waker},
    time::Duration,
};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{task::AtomicWaker, Stream};
use http_body_util::{
    combinators::{BoxBody, UnsyncBoxBody},
    BodyExt, Empty, Full, StreamBody,
};
use hyper::{
    body::{Body, Frame},
    upgrade::{OnUpgrade, Upgraded},
};
use hyper_util::rt::TokioIo;
use mux_core::StreamError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use crate::error::{incoming_error, upgraded_io_error, BodyError, BoxError, TunnelError};

/// How many chunks the outgoing body queue of a body-mode tunnel holds.
///
/// With [`MAX_CHUNK`] this bounds what a writer can queue ahead of hyper to
/// `8 × 16 KiB = 128 KiB`; hyper itself holds at most one more chunk while it
/// waits for HTTP/2 send window.
pub const SEND_QUEUE_CHUNKS: usize = 8;

/// The most bytes one `poll_write` accepts (a write of more is partial).
///
/// 16 KiB is HTTP/2's default maximum DATA frame, so a chunk maps onto one
/// frame. It also caps each copy hyper's upgraded I/O makes per write.
pub const MAX_CHUNK: usize = 16 * 1024;

/// The HTTP/2 receive window of each tunnel stream, on both sides (hyper's
/// server default; its client default is 2 MiB).
///
/// This bounds how far a peer's writer can run ahead of this side's reader.
pub const STREAM_WINDOW: u32 = 1024 * 1024;

/// The HTTP/2 receive window of a whole connection, on both sides.
///
/// A stalled tunnel keeps up to [`STREAM_WINDOW`] of it; at hyper's server
/// default (1 MiB, equal to the stream window) one stalled tunnel would
/// stall every other tunnel sharing the connection. 8 MiB lets eight stall
/// before the rest are blocked, at the cost of up to 8 MiB of unread data
/// held per connection.
pub const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// How long a tunnel dropped after a successful `poll_shutdown` keeps its
/// HTTP/2 stream open, at most, so that what it wrote still goes out.
///
/// Once both halves of a tunnel (an [`H2Conn`](crate::H2Conn)) are dropped,
/// its receiving side moves to a background task that reads and discards
/// whatever the peer still sends, until the peer ends its side, resets the
/// stream or the connection goes, or this long has passed. Without that,
/// an HTTP/2 client would cancel the stream on drop (`RST_STREAM(CANCEL)`)
/// and h2 would discard the DATA still queued behind the peer's flow-control
/// window, although `poll_shutdown` had returned `Ok`. Like a TCP socket's
/// orphan timeout (Linux's `tcp_fin_timeout`), it bounds what a peer that
/// never ends its side can hold; data the peer has not taken by then is
/// lost. A writer that must know everything arrived reads to EOF (or an
/// application-level acknowledgement) before dropping.
///
/// Needs a tokio runtime with timers; a tunnel dropped outside a runtime,
/// without a shutdown, or after a reset is released at once.
pub const DROP_LINGER: Duration = Duration::from_secs(60);

/// The RST_STREAM code of [`ResetHandle::reset`]: `INTERNAL_ERROR` (2).
///
/// Not `NO_ERROR` or `CANCEL`: hyper reports `NO_ERROR` to a body reader,
/// and both to an upgraded reader, as a clean end of stream, which would
/// hide the reset.
pub const DEFAULT_RESET_CODE: u32 = 0x2;

/// The body type of every response [`accept`](crate::accept) builds and of
/// every request this crate sends.
pub type TunnelBody = BoxBody<Bytes, BodyError>;

/// Which HTTP mechanism carries a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TunnelKind {
    /// An HTTP/2 request body and response body (POST or any non-CONNECT
    /// method). Resets carry their code to the peer.
    H2Body,
    /// An HTTP/2 CONNECT stream, through hyper's upgrade API. hyper offers
    /// no reset there: a reset ends the stream, see [`ResetHandle::reset`].
    H2Connect,
    /// An HTTP/1.1 connection taken over with `101 Switching Protocols`.
    Http1Upgrade,
}

/// Wakers of the three parties that may wait on a tunnel.
#[derive(Debug, Default)]
struct Wakers {
    read: AtomicWaker,
    write: AtomicWaker,
    // The outgoing body, polled by hyper's connection task.
    body: AtomicWaker,
}

impl Wake for Wakers {
    // Used only to poll a pending upgrade, which both halves may wait on
    // while the future keeps a single waker: wake both.
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.read.wake();
        self.write.wake();
    }
}

enum UpState {
    /// The server-side upgrade completes once the response has gone out.
    Pending(OnUpgrade),
    Ready(TokioIo<Upgraded>),
    Failed(Arc<hyper::Error>),
    /// Dropped by a reset.
    Gone,
}

const RESET_FLAG: u64 = 1 << 32;

/// State shared by the reader, the writer, the outgoing body and every
/// [`ResetHandle`] of one tunnel.
pub(crate) struct Shared {
    kind: TunnelKind,
    wakers: Arc<Wakers>,
    upgrade_waker: Waker,
    // 0 until reset, then `RESET_FLAG | code`: one atomic, so the first
    // reset's code is the one everybody sees.
    reset: AtomicU64,
    // Set once `poll_shutdown` has succeeded: dropping then lingers.
    write_shut: AtomicBool,
    upgraded: Option<Mutex<UpState>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("kind", &self.kind)
            .field("reset", &self.reset_code())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn new(kind: TunnelKind, upgraded: Option<UpState>) -> Arc<Self> {
        let wakers = Arc::new(Wakers::default());
        Arc::new(Self {
            kind,
            upgrade_waker: Waker::from(wakers.clone()),
            wakers,
            reset: AtomicU64::new(0),
            write_shut: AtomicBool::new(false),
            upgraded: upgraded.map(Mutex::new),
        })
    }

    fn reset_code(&self) -> Option<u32> {
        let state = self.reset.load(Ordering::Acquire);
        if state & RESET_FLAG == 0 {
            return None;
        }
        u32::try_from(state & u64::from(u32::MAX)).ok()
    }

    fn reset_error(&self) -> Option<io::Error> {
        self.reset_code().map(|code| {
            StreamError::Reset {
                code,
                remote: false,
            }
            .into()
        })
    }

    /// Whether the receiving side must outlive the tunnel: the writer shut
    /// down cleanly and nothing reset the tunnel since.
    fn lingers(&self) -> bool {
        self.write_shut.load(Ordering::Acquire) && self.reset_code().is_none()
    }

    fn lock_upgraded(&self) -> Option<MutexGuard<'_, UpState>> {
        // Every state transition is a single assignment, so a poisoned lock
        // still holds a consistent state.
        self.upgraded
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn reset(&self, code: u32) {
        let state = RESET_FLAG | u64::from(code);
        if self
            .reset
            .compare_exchange(0, state, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        tracing::debug!(kind = ?self.kind, code, "mux-h2: tunnel reset");
        let io = self
            .lock_upgraded()
            .map(|mut state| std::mem::replace(&mut *state, UpState::Gone));
        // Dropped outside the lock: hyper may wake other tasks on drop.
        if let Some(UpState::Ready(io)) = io {
            abort_upgraded(io.into_inner());
        }
        self.wakers.read.wake();
        self.wakers.write.wake();
        self.wakers.body.wake();
    }

    /// Runs `op` on the upgraded connection, first driving a pending upgrade.
    fn poll_upgraded<T>(
        &self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut TokioIo<Upgraded>>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let Some(mut state) = self.lock_upgraded() else {
            return Poll::Ready(Err(io::Error::other("mux-h2: tunnel has no upgraded I/O")));
        };
        loop {
            match &mut *state {
                UpState::Pending(on_upgrade) => {
                    let mut up_cx = Context::from_waker(&self.upgrade_waker);
                    match ready!(Pin::new(on_upgrade).poll(&mut up_cx)) {
                        Ok(upgraded) => {
                            tracing::trace!(kind = ?self.kind, "mux-h2: upgrade complete");
                            *state = UpState::Ready(TokioIo::new(upgraded));
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "mux-h2: upgrade failed");
                            *state = UpState::Failed(Arc::new(e));
                        }
                    }
                }
                UpState::Ready(io) => {
                    return op(Pin::new(io), cx).map_err(upgraded_io_error);
                }
                UpState::Failed(e) => {
                    return Poll::Ready(Err(TunnelError::Upgrade(e.clone()).into()));
                }
                UpState::Gone => {
                    return Poll::Ready(Err(self.reset_error().unwrap_or_else(|| {
                        StreamError::Reset {
                            code: DEFAULT_RESET_CODE,
                            remote: false,
                        }
                        .into()
                    })));
                }
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last reference to an upgraded tunnel: its reader, writer and
        // every `ResetHandle` are gone.
        if !self.lingers() {
            return;
        }
        let Some(state) = self.upgraded.as_mut() else {
            return;
        };
        let state = std::mem::replace(
            state.get_mut().unwrap_or_else(PoisonError::into_inner),
            UpState::Gone,
        );
        if let UpState::Ready(mut io) = state {
            linger(self.kind, async move {
                let _ = tokio::io::copy(&mut io, &mut tokio::io::sink()).await;
            });
        }
    }
}

/// Keeps a dropped tunnel's receiving side alive in a task that runs `drain`
/// for at most [`DROP_LINGER`]: while an HTTP/2 stream has a receiving
/// handle, h2 neither cancels it nor discards the DATA it still has to send.
/// `drain` ends when the peer ends its side (the stream is then closed, and
/// queued DATA still goes out), resets it, or the connection goes.
fn linger(kind: TunnelKind, drain: impl Future<Output = ()> + Send + 'static) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!(?kind, "mux-h2: tunnel dropped outside a runtime; no linger");
        return;
    };
    runtime.spawn(async move {
        if tokio::time::timeout(DROP_LINGER, drain).await.is_err() {
            tracing::debug!(
                ?kind,
                "mux-h2: dropped tunnel's peer kept its side open past DROP_LINGER"
            );
        }
    });
}

/// Drops an upgraded connection as abruptly as hyper allows: a plain TCP
/// connection is closed with RST (zero linger) so the peer sees a reset
/// rather than EOF; anything else is just dropped.
fn abort_upgraded(upgraded: Upgraded) {
    match upgraded.downcast::<TokioIo<tokio::net::TcpStream>>() {
        Ok(parts) => {
            if let Err(e) = parts.io.inner().set_zero_linger() {
                tracing::debug!(error = %e, "mux-h2: cannot set zero linger for reset");
            }
        }
        Err(upgraded) => drop(upgraded),
    }
}

/// A cloneable handle that resets its tunnel from any task, even while
/// another task is blocked reading or writing it.
///
/// After a reset, this side's reads and writes fail at once with
/// [`StreamError::Reset`] (`remote: false`, `ConnectionReset`), and data
/// still in flight may be discarded. What the peer sees depends on the
/// [`TunnelKind`], because hyper exposes a stream reset only for bodies:
///
/// | kind | on the wire | the peer's reads | the peer's writes |
/// |---|---|---|---|
/// | `H2Body` | `RST_STREAM(code)` | fail, `ConnectionReset`, with the code¹ | fail |
/// | `H2Connect` | the stream ends, then `RST_STREAM(CANCEL)` | EOF | fail, `ConnectionReset` |
/// | `Http1Upgrade` | client: TCP RST; server: TCP FIN² | `ConnectionReset` / EOF | fail |
///
/// ¹ Except code 0 (`NO_ERROR`), which hyper reports as a clean end of
/// stream. The `RST_STREAM` leaves once hyper next polls the outgoing body:
/// while it holds a chunk waiting for send window (the peer has stopped
/// reading), the reset waits for that window too.
/// ² hyper-util wraps the server's connection in a type that cannot be
/// reached to set a zero linger.
#[derive(Debug, Clone)]
pub struct ResetHandle {
    shared: Arc<Shared>,
}

impl ResetHandle {
    /// Resets with [`DEFAULT_RESET_CODE`].
    pub fn reset(&self) {
        self.shared.reset(DEFAULT_RESET_CODE);
    }

    /// Resets, sending `code` as the HTTP/2 error code where the
    /// [`TunnelKind`] allows. Only the first reset counts.
    pub fn reset_with(&self, code: u32) {
        self.shared.reset(code);
    }

    /// Whether the tunnel has been reset by this side.
    pub fn is_reset(&self) -> bool {
        self.shared.reset_code().is_some()
    }

    /// Which HTTP mechanism carries the tunnel.
    pub fn kind(&self) -> TunnelKind {
        self.shared.kind
    }
}

/// The incoming body of a body-mode tunnel, whatever its type: hyper's
/// [`Incoming`](hyper::body::Incoming) on the client and under a plain hyper server, a framework's
/// body type (axum's `Body`) under a framework.
type InBody = UnsyncBoxBody<Bytes, BoxError>;

enum ReadInner {
    Body {
        // A mutex only to make the reader `Sync` whatever the body type;
        // it is reached with `get_mut`, never locked.
        body: Mutex<InBody>,
        chunk: Bytes,
    },
    Upgraded,
    /// After a reset, so the incoming body is released at once.
    Released,
}

/// The reading half of a tunnel: the incoming body's DATA frames (trailers
/// are ignored), or the upgraded connection.
///
/// A peer's `RST_STREAM` fails reads with [`StreamError::Reset`]
/// (`remote: true`, `ConnectionReset`) and a lost connection with
/// [`StreamError::ConnectionClosed`].
pub struct TunnelReader {
    shared: Arc<Shared>,
    inner: ReadInner,
}

impl fmt::Debug for TunnelReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunnelReader")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl TunnelReader {
    /// A handle that resets this reader's tunnel.
    pub fn reset_handle(&self) -> ResetHandle {
        ResetHandle {
            shared: self.shared.clone(),
        }
    }

    /// Which HTTP mechanism carries the tunnel.
    pub fn kind(&self) -> TunnelKind {
        self.shared.kind
    }
}

impl AsyncRead for TunnelReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.shared.wakers.read.register(cx.waker());
        if let Some(err) = this.shared.reset_error() {
            this.inner = ReadInner::Released;
            return Poll::Ready(Err(err));
        }
        match &mut this.inner {
            ReadInner::Body { body, chunk } => {
                let body = body.get_mut().unwrap_or_else(PoisonError::into_inner);
                poll_read_body(body, chunk, cx, buf)
            }
            ReadInner::Upgraded => this
                .shared
                .poll_upgraded(cx, |io, cx| io.poll_read(cx, buf)),
            // Only entered together with a reset, handled above.
            ReadInner::Released => Poll::Ready(Ok(())),
        }
    }
}

impl Drop for TunnelReader {
    fn drop(&mut self) {
        // In body mode this side's stream lives while the incoming body
        // does (hyper's pipe task releases its sending handle once it has
        // queued END_STREAM); an upgraded tunnel lingers in `Shared`'s drop.
        if !self.shared.lingers() {
            return;
        }
        if let ReadInner::Body { body, .. } =
            std::mem::replace(&mut self.inner, ReadInner::Released)
        {
            let mut body = body.into_inner().unwrap_or_else(PoisonError::into_inner);
            linger(self.shared.kind, async move {
                while let Some(Ok(_)) = body.frame().await {}
            });
        }
    }
}

fn poll_read_body(
    body: &mut InBody,
    chunk: &mut Bytes,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    if buf.remaining() == 0 {
        return Poll::Ready(Ok(()));
    }
    loop {
        if !chunk.is_empty() {
            let n = chunk.len().min(buf.remaining());
            mux_core::copy::put(buf, chunk.get(..n).unwrap_or_default());
            chunk.advance(n);
            return Poll::Ready(Ok(()));
        }
        // hyper releases flow-control window as each frame is polled, so at
        // most one DATA frame waits here in `chunk`.
        match ready!(Pin::new(&mut *body).poll_frame(cx)) {
            None => return Poll::Ready(Ok(())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    *chunk = data;
                }
            }
            Some(Err(e)) => return Poll::Ready(Err(incoming_error(e))),
        }
    }
}

enum WriteInner {
    Body { tx: PollSender<Bytes>, shut: bool },
    Upgraded,
}

/// The writing half of a tunnel: the outgoing body's queue, or the upgraded
/// connection. `poll_shutdown` ends the body (HTTP/2 `END_STREAM`) or
/// half-closes the upgraded connection.
///
/// Once `poll_shutdown` has returned `Ok`, the tunnel may be dropped at once
/// and every byte written before still reaches the peer, in order, followed
/// by EOF, as with a TCP socket: the dropped tunnel's receiving side lingers
/// in a background task for up to [`DROP_LINGER`] (see there), so the
/// stream is not cancelled while data waits for the peer's window. Dropping
/// without a shutdown, or after a reset, gives no such guarantee.
///
/// A write accepts at most [`MAX_CHUNK`] bytes. `poll_flush` waits until
/// hyper has taken every queued chunk, which it does only as the HTTP/2 send
/// window allows.
pub struct TunnelWriter {
    shared: Arc<Shared>,
    inner: WriteInner,
}

impl fmt::Debug for TunnelWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunnelWriter")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl TunnelWriter {
    /// A handle that resets this writer's tunnel.
    pub fn reset_handle(&self) -> ResetHandle {
        ResetHandle {
            shared: self.shared.clone(),
        }
    }

    /// Which HTTP mechanism carries the tunnel.
    pub fn kind(&self) -> TunnelKind {
        self.shared.kind
    }

    fn start(&self, cx: &mut Context<'_>) -> Result<(), io::Error> {
        self.shared.wakers.write.register(cx.waker());
        match self.shared.reset_error() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

fn send_closed(shut: bool) -> io::Error {
    if shut {
        StreamError::WriteClosed.into()
    } else {
        TunnelError::SendClosed.into()
    }
}

impl AsyncWrite for TunnelWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.start(cx)?;
        let n = buf.len().min(MAX_CHUNK);
        let part = buf.get(..n).unwrap_or(buf);
        match &mut this.inner {
            WriteInner::Body { tx, shut } => {
                if *shut {
                    return Poll::Ready(Err(StreamError::WriteClosed.into()));
                }
                if part.is_empty() {
                    return Poll::Ready(Ok(0));
                }
                if ready!(tx.poll_reserve(cx)).is_err() {
                    return Poll::Ready(Err(send_closed(*shut)));
                }
                // Through `mux_core::copy`: a muxer's payloads sit 5 bytes off
                // their buffer's alignment, which stalls a plain copy on AMD.
                let mut chunk = BytesMut::with_capacity(part.len());
                mux_core::copy::extend(&mut chunk, part);
                match tx.send_item(chunk.freeze()) {
                    Ok(()) => Poll::Ready(Ok(part.len())),
                    Err(_) => Poll::Ready(Err(send_closed(*shut))),
                }
            }
            WriteInner::Upgraded => this
                .shared
                .poll_upgraded(cx, |io, cx| io.poll_write(cx, part)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.start(cx)?;
        match &mut this.inner {
            WriteInner::Body { tx, shut } => {
                let Some(sender) = tx.get_ref() else {
                    // Shut down: the channel delivers what it holds anyway.
                    return Poll::Ready(Ok(()));
                };
                if sender.capacity() == sender.max_capacity() {
                    Poll::Ready(Ok(()))
                } else if sender.is_closed() {
                    Poll::Ready(Err(send_closed(*shut)))
                } else {
                    // The body wakes `wakers.write` (registered in `start`)
                    // each time hyper takes a chunk, and when it is dropped.
                    Poll::Pending
                }
            }
            WriteInner::Upgraded => this.shared.poll_upgraded(cx, |io, cx| io.poll_flush(cx)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.start(cx)?;
        match &mut this.inner {
            WriteInner::Body { tx, shut } => {
                // Queued chunks still go out, then END_STREAM.
                tx.close();
                *shut = true;
            }
            WriteInner::Upgraded => {
                // hyper's HTTP/2 upgrade returns once its send task has
                // queued END_STREAM behind the data in h2.
                ready!(this.shared.poll_upgraded(cx, |io, cx| io.poll_shutdown(cx)))?;
            }
        }
        this.shared.write_shut.store(true, Ordering::Release);
        Poll::Ready(Ok(()))
    }
}

/// Drains a body-mode tunnel's queue for hyper; yields [`BodyError`] once
/// the tunnel is reset, which hyper turns into `RST_STREAM`.
struct Outgoing {
    rx: mpsc::Receiver<Bytes>,
    shared: Arc<Shared>,
    reset_sent: bool,
}

impl Stream for Outgoing {
    type Item = Result<Frame<Bytes>, BodyError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.shared.wakers.body.register(cx.waker());
        if let Some(code) = this.shared.reset_code() {
            if this.reset_sent {
                return Poll::Ready(None);
            }
            this.reset_sent = true;
            return Poll::Ready(Some(Err(BodyError::reset(code))));
        }
        let item = ready!(this.rx.poll_recv(cx));
        // A flush may be waiting for the queue to drain.
        this.shared.wakers.write.wake();
        Poll::Ready(item.map(|chunk| Ok(Frame::data(chunk))))
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        // hyper dropped the body (stream reset or connection gone): a
        // pending flush would otherwise wait for a drain that never comes.
        self.shared.wakers.write.wake();
    }
}

/// The sending side of a body-mode tunnel, made before the incoming body
/// exists: a client sends its request body before it has the response's.
pub(crate) struct PendingBody {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Bytes>,
}

/// Starts a body-mode tunnel: the body hyper must send, and what
/// [`PendingBody::finish`] completes once the incoming body is known.
pub(crate) fn body_tunnel() -> (PendingBody, TunnelBody) {
    let shared = Shared::new(TunnelKind::H2Body, None);
    let (tx, rx) = mpsc::channel(SEND_QUEUE_CHUNKS);
    let outgoing = Outgoing {
        rx,
        shared: shared.clone(),
        reset_sent: false,
    };
    (
        PendingBody { shared, tx },
        StreamBody::new(outgoing).boxed(),
    )
}

impl PendingBody {
    /// The two halves, reading `incoming` (hyper's [`Incoming`](hyper::body::Incoming) or any
    /// other body, such as a framework's).
    pub(crate) fn finish<B>(self, incoming: B) -> (TunnelReader, TunnelWriter)
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let reader = TunnelReader {
            shared: self.shared.clone(),
            inner: ReadInner::Body {
                body: Mutex::new(incoming.map_err(Into::into).boxed_unsync()),
                chunk: Bytes::new(),
            },
        };
        let writer = TunnelWriter {
            shared: self.shared,
            inner: WriteInner::Body {
                tx: PollSender::new(self.tx),
                shut: false,
            },
        };
        (reader, writer)
    }
}

/// How an upgraded tunnel gets its connection.
pub(crate) enum UpgradeSource {
    /// Already upgraded (client side).
    Ready(Upgraded),
    /// Completes once the response has gone out (server side).
    Pending(OnUpgrade),
}

/// Builds an upgraded tunnel over one connection.
pub(crate) fn upgraded_tunnel(
    kind: TunnelKind,
    source: UpgradeSource,
) -> (TunnelReader, TunnelWriter) {
    let state = match source {
        UpgradeSource::Ready(up) => UpState::Ready(TokioIo::new(up)),
        UpgradeSource::Pending(on) => UpState::Pending(on),
    };
    let shared = Shared::new(kind, Some(state));
    let reader = TunnelReader {
        shared: shared.clone(),
        inner: ReadInner::Upgraded,
    };
    let writer = TunnelWriter {
        shared,
        inner: WriteInner::Upgraded,
    };
    (reader, writer)
}

/// An empty [`TunnelBody`].
pub(crate) fn empty_body() -> TunnelBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A [`TunnelBody`] holding `text`.
pub(crate) fn full_body(text: String) -> TunnelBody {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed()
}
