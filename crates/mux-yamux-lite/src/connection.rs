//! The connection handle: cheap to clone, usable from any task.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;

use mux_core::{ConnError, Multiplexer, MuxedConn};

use crate::config::Config;
use crate::driver::{self, Link};
use crate::session::{Role, Stats};
use crate::state::now;
use crate::stream::Stream;

/// A multiplexed connection. Clone it freely; every clone drives the same
/// connection.
///
/// Dropping the last clone starts a graceful close (as [`close`](Self::close)
/// does, without waiting): streams still held keep working until they finish
/// or the close timeout passes.
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
        guard.session.close(now());
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

    /// Closes gracefully: GO_AWAY, refuse new streams, let open streams
    /// drain (at most the close timeout), then close the transport. Returns
    /// once the transport is closed; `Err` if the connection had already
    /// ended for another reason.
    pub async fn close(&self) -> Result<(), ConnError> {
        {
            let mut guard = self.link.lock();
            guard.session.close(now());
            guard.wake_driver();
            guard.wake_pending();
        }
        poll_fn(|cx| {
            let mut guard = self.link.lock();
            if guard.driver_done {
                return Poll::Ready(match guard.session.closed_reason() {
                    None | Some(ConnError::Closed) => Ok(()),
                    Some(e) => Err(e.clone()),
                });
            }
            guard.close_wakers.register(cx);
            Poll::Pending
        })
        .await
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

    fn close(&self) -> impl std::future::Future<Output = Result<(), ConnError>> + Send {
        Connection::close(self)
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
