//! The connection handle: cheap to clone, usable from any task.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use mux_core::{ConnError, Multiplexer, MuxedConn, ShutdownOutcome};

use crate::config::Config;
use crate::driver::{self, Link};
use crate::frame::go_away;
use crate::session::{Role, Session, Stats};
use crate::state::now;
use crate::stream::Stream;

/// A multiplexed connection. Clone it freely; every clone drives the same
/// connection.
///
/// Dropping the last clone starts a graceful [`shutdown`](Self::shutdown)
/// with `Config::close_timeout` (30 s by default) as its deadline, and
/// returns at once: streams still held keep working until they finish or
/// the deadline passes, and the driver task ends then.
#[derive(Debug, Clone)]
pub struct Connection {
    link: Arc<Link>,
    /// `Config::open_timeout`: the longest `open_stream` waits for a slot.
    open_timeout: Duration,
    _guard: Arc<HandleGuard>,
}

/// Closes the connection when the last `Connection` clone goes away.
#[derive(Debug)]
struct HandleGuard {
    link: Arc<Link>,
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        let mut guard = self.link.lock();
        let now = now();
        let deadline = now
            .checked_add(guard.session.config().close_timeout)
            .unwrap_or(now);
        guard.session.shutdown(deadline);
        guard.wake_driver();
        guard.wake_pending();
    }
}

impl Connection {
    /// Starts a connection over `io` and spawns the task that drives it.
    ///
    /// Must be called inside a tokio runtime.
    pub fn new<T>(io: T, role: Role, config: Config) -> Self
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let open_timeout = config.open_timeout;
        let link = driver::spawn(io, role, config);
        Self {
            open_timeout,
            _guard: Arc::new(HandleGuard { link: link.clone() }),
            link,
        }
    }

    /// Opens a stream. The peer sees it at once, before any data. Waits
    /// while too many opens await the peer's ACK or the peer's stream limit
    /// is reached, for at most `Config::open_timeout`
    /// ([`ConnError::OpenTimeout`]). Cancel-safe.
    pub async fn open_stream(&self) -> Result<Stream, ConnError> {
        // Armed only once an open has to wait: most opens succeed at once,
        // and a timer per open would cost churn a clock read and more.
        let mut timer = pin!(None::<Sleep>);
        poll_fn(|cx| {
            // Read before locking, as in `Stream::drop`.
            let now = now();
            {
                let mut guard = self.link.lock();
                match guard.session.open(now) {
                    Ok(Some(id)) => {
                        guard.notify_driver();
                        return Poll::Ready(Ok(Stream::new(id, self.link.clone())));
                    }
                    Ok(None) => guard.open_wakers.register(cx),
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            if timer.is_none() {
                timer.set(Some(tokio::time::sleep(self.open_timeout)));
            }
            match timer.as_mut().as_pin_mut().map(|t| t.poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Err(ConnError::OpenTimeout)),
                _ => Poll::Pending,
            }
        })
        .await
    }

    /// Waits for the next stream the peer opens.
    pub async fn accept_stream(&self) -> Result<Stream, ConnError> {
        poll_fn(|cx| {
            let mut guard = self.link.lock();
            match guard.session.accept() {
                Ok(Some(id)) => {
                    guard.notify_driver();
                    Poll::Ready(Ok(Stream::new(id, self.link.clone())))
                }
                Ok(None) => {
                    guard.accept_wakers.register(cx);
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await
    }

    /// Closes now with GO_AWAY code 0; see [`close_with`](Self::close_with).
    pub async fn close(&self) -> Result<(), ConnError> {
        self.close_with(go_away::NORMAL).await
    }

    /// Closes now: GO_AWAY(`code`) goes out, and every stream of this side
    /// fails at once with [`ConnError::Closed`] (pending reads, writes,
    /// opens and accepts wake; bytes already received stay readable, bytes
    /// not yet framed are dropped). The transport then gets at most
    /// `Config::close_flush_timeout` (250 ms by default) to take the frames
    /// already queued and for the peer to end its side, and is closed. The
    /// peer's pending operations fail with [`ConnError::GoAway`] carrying
    /// `code` (codes from [`go_away::APPLICATION_MIN`] up are the
    /// application's). To let streams finish, use
    /// [`shutdown`](Self::shutdown).
    ///
    /// `Err` only when the connection had already ended for another
    /// reason, which it returns.
    pub async fn close_with(&self, code: u32) -> Result<(), ConnError> {
        let ended = self.start_end(|session| session.close(code));
        self.driver_done().await;
        match ended {
            None | Some(ConnError::Closed) => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Ends gracefully: GO_AWAY, refuse new streams, let open streams
    /// finish until `deadline`, then reset what is left and close as
    /// [`close`](Self::close) does. Returns once the transport is closed,
    /// with how it ended. `Err` when something else ended the connection
    /// first (the peer vanished, the transport failed, it was closed
    /// already), with that reason.
    pub async fn shutdown(&self, deadline: Instant) -> Result<ShutdownOutcome, ConnError> {
        self.start_end(|session| session.shutdown(deadline.into_std()));
        self.driver_done().await;
        let guard = self.link.lock();
        match guard.session.closed_reason() {
            None | Some(ConnError::Closed) => Ok(match guard.session.streams_cut() {
                None | Some(0) => ShutdownOutcome::Drained,
                Some(streams) => ShutdownOutcome::Cut { streams },
            }),
            Some(e) => Err(e.clone()),
        }
    }

    /// Applies `end` to the session and wakes everyone it concerns;
    /// returns why the connection had ended before, if it had.
    fn start_end(&self, end: impl FnOnce(&mut Session)) -> Option<ConnError> {
        let mut guard = self.link.lock();
        let before = guard.session.closed_reason().cloned();
        end(&mut guard.session);
        guard.wake_driver();
        guard.wake_pending();
        before
    }

    /// Waits until the driver task has ended and the transport is gone.
    async fn driver_done(&self) {
        poll_fn(|cx| {
            let mut guard = self.link.lock();
            if guard.driver_done {
                return Poll::Ready(());
            }
            guard.close_wakers.register(cx);
            Poll::Pending
        })
        .await
    }

    /// Waits until the connection has ended (the driver task is gone) and
    /// returns why: [`ConnError::Closed`] after this side's `close` or
    /// `shutdown`, the peer's [`ConnError::GoAway`], or the transport's
    /// failure. Starts nothing itself, so a task may hold it for the
    /// connection's whole life.
    pub async fn closed(&self) -> ConnError {
        self.driver_done().await;
        let guard = self.link.lock();
        guard
            .session
            .closed_reason()
            .cloned()
            .unwrap_or(ConnError::Closed)
    }

    /// Whether the connection is closed or shutting down: it has ended, or
    /// either side sent GO_AWAY, so no new stream can open on it (streams
    /// already open may still be running).
    pub fn is_closed(&self) -> bool {
        let guard = self.link.lock();
        guard.driver_done || guard.session.refuses_new_streams()
    }

    /// The latest round-trip time measured by ping.
    pub fn rtt(&self) -> Option<Duration> {
        self.link.lock().session.rtt()
    }

    /// Traffic and stream counters.
    pub fn stats(&self) -> Stats {
        self.link.lock().session.stats()
    }
}

impl MuxedConn for Connection {
    type Stream = Stream;

    fn open_stream(&self) -> impl std::future::Future<Output = Result<Stream, ConnError>> + Send {
        Connection::open_stream(self)
    }

    fn accept_stream(&self) -> impl std::future::Future<Output = Result<Stream, ConnError>> + Send {
        Connection::accept_stream(self)
    }

    fn close_with(
        &self,
        code: u32,
    ) -> impl std::future::Future<Output = Result<(), ConnError>> + Send {
        Connection::close_with(self, code)
    }

    fn shutdown(
        &self,
        deadline: Instant,
    ) -> impl std::future::Future<Output = Result<ShutdownOutcome, ConnError>> + Send {
        Connection::shutdown(self, deadline)
    }

    fn is_closed(&self) -> bool {
        Connection::is_closed(self)
    }
}

/// The [`Multiplexer`] of this crate: builds [`Connection`]s with one config.
#[derive(Debug, Clone, Default)]
pub struct YamuxLite {
    config: Config,
}

impl YamuxLite {
    /// A multiplexer using `config` for every connection.
    pub fn new(config: Config) -> Self {
        Self { config }
    }
}

impl Multiplexer for YamuxLite {
    type Conn = Connection;

    fn new_conn<T>(&self, io: T, is_server: bool) -> Result<Connection, ConnError>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let role = if is_server {
            Role::Server
        } else {
            Role::Client
        };
        Ok(Connection::new(io, role, self.config.clone()))
    }
}
