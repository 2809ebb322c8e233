//! The three contracts every multiplexer in this workspace implements.

use std::{fmt, future::Future, io};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::{ConnError, Deadlines};

/// Identifies a stream within one connection.
///
/// The client (dialer) uses odd ids, the server (listener) even ids, and id 0
/// is the connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u32);

impl StreamId {
    /// The connection-level id.
    pub const SESSION: StreamId = StreamId(0);

    /// The raw value.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One bidirectional, flow-controlled byte stream of a multiplexed connection.
///
/// Semantics (following go-libp2p's `MuxedStream`):
/// - `poll_shutdown` is **close-write**: a FIN goes out after every byte
///   already written. The stream can still be read.
/// - [`close_read`](Self::close_read) makes pending and future reads fail
///   with [`StreamError::ReadClosed`](crate::StreamError::ReadClosed), which
///   is not EOF.
/// - [`reset_with`](Self::reset_with) abandons both directions; the peer's
///   reads and writes fail as a remote reset carrying the code.
/// - Deadlines interrupt a pending operation with `TimedOut` and close
///   nothing; see [`Deadlines`].
/// - Dropping a stream is an implicit close of both directions: what was
///   written is still delivered, then FIN; unread inbound data is discarded,
///   and an implementation may reset a peer that keeps sending to it.
pub trait MuxedStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// The stream's id within its connection.
    fn id(&self) -> StreamId;

    /// Stops reading: pending and future reads fail with a non-EOF error,
    /// and data the peer sends from now on is discarded.
    fn close_read(&mut self) -> io::Result<()>;

    /// Resets the stream with error code 0.
    fn reset(&mut self) {
        self.reset_with(0);
    }

    /// Resets the stream, sending `code` to the peer best-effort.
    fn reset_with(&mut self, code: u32);

    /// A cloneable handle on this stream's deadlines; other tasks may set them
    /// while an operation is pending.
    fn deadlines(&self) -> Deadlines;

    /// Sets or clears the read deadline.
    fn set_read_deadline(&self, at: Option<Instant>) {
        self.deadlines().set_read(at);
    }

    /// Sets or clears the write deadline.
    fn set_write_deadline(&self, at: Option<Instant>) {
        self.deadlines().set_write(at);
    }

    /// Sets or clears both deadlines.
    fn set_deadline(&self, at: Option<Instant>) {
        self.deadlines().set(at);
    }
}

/// A multiplexed connection: a cheap, cloneable handle that opens and accepts
/// streams from any task.
///
/// Two ways end it, both bounded in time:
/// - [`close`](Self::close) / [`close_with`](Self::close_with) end it now,
///   as go-libp2p's `MuxedConn.Close` and `CloseWithError` do: every
///   pending and later operation on this side fails with a reset-class
///   error ([`ConnError::Closed`] inside
///   [`StreamError::ConnectionClosed`](crate::StreamError::ConnectionClosed)),
///   and the peer's fail with [`ConnError::GoAway`] carrying the code.
/// - [`shutdown`](Self::shutdown) lets open streams finish first.
///
/// What dropping the last handle does is the implementation's to say; it
/// must neither block nor leave a task running unbounded.
pub trait MuxedConn: Clone + Send + Sync + 'static {
    /// The stream type.
    type Stream: MuxedStream;

    /// Opens a new outbound stream; the peer sees it at once, before any data.
    ///
    /// Waits (rather than failing) while too many opens await the peer's
    /// acknowledgement. Cancel-safe: dropping the future leaks nothing.
    fn open_stream(&self) -> impl Future<Output = Result<Self::Stream, ConnError>> + Send;

    /// Waits for the next inbound stream.
    fn accept_stream(&self) -> impl Future<Output = Result<Self::Stream, ConnError>> + Send;

    /// Closes now with go-away code 0: see [`close_with`](Self::close_with).
    fn close(&self) -> impl Future<Output = Result<(), ConnError>> + Send {
        self.close_with(0)
    }

    /// Closes now: sends a go-away carrying `code`, fails every stream and
    /// every pending open and accept at once, gives the transport a short,
    /// documented bound to take what is queued, and closes it. Waits on
    /// neither the application nor the peer beyond that bound. `Err` only
    /// when the connection had already ended for another reason.
    fn close_with(&self, code: u32) -> impl Future<Output = Result<(), ConnError>> + Send;

    /// Ends the connection gracefully: sends go-away, refuses new streams,
    /// lets open streams finish until `deadline`, then does what
    /// [`close`](Self::close) does to the rest. Returns how it ended; `Err`
    /// when something else (the peer, the transport) ended it first.
    fn shutdown(
        &self,
        deadline: Instant,
    ) -> impl Future<Output = Result<ShutdownOutcome, ConnError>> + Send;

    /// Whether the connection has ended or is shutting down.
    fn is_closed(&self) -> bool;
}

/// How a graceful [`MuxedConn::shutdown`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownOutcome {
    /// Every stream finished before the deadline.
    Drained,
    /// The deadline passed with this many streams unfinished; they were
    /// reset.
    Cut {
        /// Streams that had not finished.
        streams: usize,
    },
}

/// Builds multiplexed connections over any byte transport.
pub trait Multiplexer: Send + Sync {
    /// The connection type.
    type Conn: MuxedConn;

    /// Starts a connection over `io`. Must be called within a tokio runtime:
    /// the implementation spawns the task that drives the transport.
    fn new_conn<T>(&self, io: T, is_server: bool) -> Result<Self::Conn, ConnError>
    where
        T: AsyncRead + AsyncWrite + Send + 'static;
}
