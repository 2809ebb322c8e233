//! The state shared by a tunnel's reader, writer, outgoing body and reset
//! handles: the reset code (one atomic, first reset wins), the wakers, and
//! an upgraded connection behind a mutex. A reset or the last drop decides
//! here whether the receiving side keeps draining in the background (see
//! [`DROP_DRAIN_TIMEOUT`]). Also the tunnel's [`TunnelKind`] and the reset
//! and drop constants.

use std::{
    fmt,
    future::Future,
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, OnceLock, PoisonError,
    },
    task::{ready, Context, Poll, Wake, Waker},
    time::Duration,
};

use futures_util::task::AtomicWaker;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use mux_core::{ConnError, StreamError};

use crate::error::{upgraded_io_error, TunnelError};

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

/// How long a tunnel dropped after a successful `poll_shutdown` keeps
/// draining its receiving side, at most, so that its HTTP/2 stream stays
/// open and what it wrote still goes out.
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
pub const DROP_DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The RST_STREAM code of [`ResetHandle::reset`]: `INTERNAL_ERROR` (2).
///
/// Not `NO_ERROR` or `CANCEL`: hyper reports `NO_ERROR` to a body reader,
/// and both to an upgraded reader, as a clean end of stream, which would
/// hide the reset.
pub const DEFAULT_RESET_CODE: u32 = 0x2;

/// Wakers of the three parties that may wait on a tunnel.
#[derive(Debug, Default)]
pub(super) struct Wakers {
    pub(super) read: AtomicWaker,
    pub(super) write: AtomicWaker,
    // What sends the writer's queue: the outgoing body hyper polls, or the
    // pump of an upgraded tunnel.
    pub(super) body: AtomicWaker,
}

impl Wake for Wakers {
    // Used only to poll a pending upgrade, which both halves and the pump
    // may wait on while the future keeps a single waker: wake all.
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.read.wake();
        self.write.wake();
        self.body.wake();
    }
}

pub(super) enum UpState {
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
    pub(super) kind: TunnelKind,
    pub(super) wakers: Arc<Wakers>,
    upgrade_waker: Waker,
    // 0 until reset, then `RESET_FLAG | code`: one atomic, so the first
    // reset's code is the one everybody sees.
    reset: AtomicU64,
    // Set once `poll_shutdown` has succeeded: dropping then drains the
    // receiving side in the background.
    pub(super) write_shut: AtomicBool,
    upgraded: Option<Mutex<UpState>>,
    // Why the stream ended abnormally, as the reader learned it: hyper tells
    // only the receiving side whether a reset or a go-away ended a stream,
    // and by whom.
    ended: OnceLock<StreamError>,
    // Why the HTTP connection ended, once it has, when this crate runs it.
    conn_end: Option<ConnEnd>,
}

/// Why an HTTP connection ended (`None`: cleanly, or it was handed over by
/// an HTTP/1.1 upgrade), filled in by what sees it end (the task that
/// runs it, or on an HTTP/2 client the connection's I/O, which hyper drops
/// when the connection ends) and read by its tunnels to explain errors that
/// carry no reason.
pub(crate) type ConnEnd = Arc<ConnEndSlot>;

#[derive(Default)]
pub(crate) struct ConnEndSlot {
    cause: OnceLock<Option<ConnError>>,
    waiting: Mutex<Vec<Waker>>,
}

impl ConnEndSlot {
    /// Records how the connection ended and wakes the tunnels waiting.
    pub(crate) fn finish(&self, cause: Option<ConnError>) {
        let _ = self.cause.set(cause);
        let waiting =
            std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        waiting.into_iter().for_each(Waker::wake);
    }

    fn poll_end(&self, cx: &mut Context<'_>) -> Poll<Option<ConnError>> {
        if let Some(cause) = self.cause.get() {
            return Poll::Ready(cause.clone());
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
            waiting.push(cx.waker().clone());
        }
        drop(waiting);
        // `finish` may have run between the check and the registration.
        match self.cause.get() {
            Some(cause) => Poll::Ready(cause.clone()),
            None => Poll::Pending,
        }
    }
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
    pub(super) fn new(
        kind: TunnelKind,
        upgraded: Option<UpState>,
        conn_end: Option<ConnEnd>,
    ) -> Arc<Self> {
        let wakers = Arc::new(Wakers::default());
        Arc::new(Self {
            kind,
            upgrade_waker: Waker::from(wakers.clone()),
            wakers,
            reset: AtomicU64::new(0),
            write_shut: AtomicBool::new(false),
            upgraded: upgraded.map(Mutex::new),
            ended: OnceLock::new(),
            conn_end,
        })
    }

    /// Whether the tunnel runs over an upgraded connection.
    pub(super) fn upgraded(&self) -> bool {
        self.upgraded.is_some()
    }

    /// Explains an error the reader got and records it as why the stream
    /// ended. h2 reports a stream cut off by the connection's end (after a
    /// GOAWAY, say) as a broken pipe, before the connection's end is
    /// recorded; such an error waits for that record, when this crate runs
    /// the connection, and becomes its reason.
    pub(super) fn poll_read_failed(
        &self,
        cx: &mut Context<'_>,
        err: &mut Option<io::Error>,
    ) -> Poll<io::Error> {
        let cut_off = err
            .as_ref()
            .is_some_and(|e| StreamError::from_io(e).is_none() && peer_gone(e));
        let conn = match (&self.conn_end, cut_off) {
            (Some(end), true) => ready!(end.poll_end(cx)),
            _ => None,
        };
        let err = match conn {
            Some(conn) => StreamError::ConnectionClosed(conn).into(),
            None => err
                .take()
                .unwrap_or_else(|| io::Error::other("mux-h2: read error taken twice")),
        };
        if let Some(se) = StreamError::from_io(&err) {
            if self.ended.set(se.clone()).is_ok() {
                tracing::debug!(kind = ?self.kind, error = %se, "mux-h2: tunnel ended");
            }
        }
        Poll::Ready(err)
    }

    fn conn_end(&self) -> Option<ConnError> {
        self.conn_end
            .as_ref()
            .and_then(|end| end.cause.get().cloned().flatten())
    }

    /// The error for a write once the sender is gone: why the stream ended
    /// if the reader or the connection's end knows, else what the sender
    /// saw, read as the peer's reset when it says only that the peer is gone
    /// (see the table in [`crate::error`]).
    pub(super) fn peer_gone_error(&self, err: Option<io::Error>) -> io::Error {
        if let Some(se) = self.ended.get() {
            return se.clone().into();
        }
        if let Some(conn) = self.conn_end() {
            return StreamError::ConnectionClosed(conn).into();
        }
        match err {
            Some(err) if StreamError::from_io(&err).is_some() || !peer_gone(&err) => err,
            _ => StreamError::Reset {
                code: u32::from(h2::Reason::CANCEL),
                remote: true,
            }
            .into(),
        }
    }

    pub(super) fn reset_code(&self) -> Option<u32> {
        let state = self.reset.load(Ordering::Acquire);
        if state & RESET_FLAG == 0 {
            return None;
        }
        u32::try_from(state & u64::from(u32::MAX)).ok()
    }

    pub(super) fn reset_error(&self) -> Option<io::Error> {
        self.reset_code().map(|code| {
            StreamError::Reset {
                code,
                remote: false,
            }
            .into()
        })
    }

    /// Whether the receiving side must outlive the tunnel, draining in the
    /// background: the writer shut down cleanly and nothing reset the
    /// tunnel since.
    pub(super) fn drains_on_drop(&self) -> bool {
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
    pub(super) fn poll_upgraded<T>(
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
        if !self.drains_on_drop() {
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
            drain_in_background(self.kind, async move {
                let _ = tokio::io::copy(&mut io, &mut tokio::io::sink()).await;
            });
        }
    }
}

/// Whether a transport error says only that the peer went away.
fn peer_gone(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof
    )
}

/// Keeps a dropped tunnel's receiving side alive in a task that runs `drain`
/// for at most [`DROP_DRAIN_TIMEOUT`]: while an HTTP/2 stream has a receiving
/// handle, h2 neither cancels it nor discards the DATA it still has to send.
/// `drain` ends when the peer ends its side (the stream is then closed, and
/// queued DATA still goes out), resets it, or the connection goes.
pub(super) fn drain_in_background(
    kind: TunnelKind,
    drain: impl Future<Output = ()> + Send + 'static,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!(
            ?kind,
            "mux-h2: tunnel dropped outside a runtime; not drained"
        );
        return;
    };
    runtime.spawn(async move {
        if tokio::time::timeout(DROP_DRAIN_TIMEOUT, drain)
            .await
            .is_err()
        {
            tracing::debug!(
                ?kind,
                "mux-h2: dropped tunnel's peer kept its side open past DROP_DRAIN_TIMEOUT"
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
    pub(super) shared: Arc<Shared>,
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
