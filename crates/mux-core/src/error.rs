//! Errors shared by every multiplexer: what a stream operation or a connection
//! operation can fail with, and how each maps onto [`std::io::ErrorKind`].

use std::{io, sync::Arc};

/// Why a single stream operation failed.
///
/// Stream I/O goes through tokio's `AsyncRead`/`AsyncWrite`, so these errors
/// travel inside an [`io::Error`]; [`StreamError::from_io`] gets them back.
///
/// | variant | `io::ErrorKind` |
/// |---|---|
/// | [`TimedOut`](Self::TimedOut) | `TimedOut` |
/// | [`Reset`](Self::Reset) | `ConnectionReset` |
/// | [`WriteClosed`](Self::WriteClosed) | `BrokenPipe` |
/// | [`ReadClosed`](Self::ReadClosed) | `NotConnected` (deliberately not EOF) |
/// | [`ConnectionClosed`](Self::ConnectionClosed) | `ConnectionReset` |
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The read or write deadline passed. Nothing was closed; move or clear the
    /// deadline and the stream is usable again.
    #[error("deadline exceeded")]
    TimedOut,
    /// The stream was reset, by this side or by the peer, with an error code.
    #[error("stream reset by the {} side (code {code})", if *.remote { "remote" } else { "local" })]
    Reset {
        /// The application error code carried by the reset (0 when none was given).
        code: u32,
        /// `true` when the peer sent the reset.
        remote: bool,
    },
    /// A write after close-write (`poll_shutdown`).
    #[error("stream is closed for writing")]
    WriteClosed,
    /// A read after `close_read`.
    #[error("stream is closed for reading")]
    ReadClosed,
    /// The connection carrying the stream went away before the stream ended.
    #[error("connection closed: {0}")]
    ConnectionClosed(#[source] ConnError),
}

impl StreamError {
    /// The `io::ErrorKind` this error maps to (see the table on the type).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Self::TimedOut => io::ErrorKind::TimedOut,
            Self::Reset { .. } | Self::ConnectionClosed(_) => io::ErrorKind::ConnectionReset,
            Self::WriteClosed => io::ErrorKind::BrokenPipe,
            Self::ReadClosed => io::ErrorKind::NotConnected,
        }
    }

    /// Recovers the `StreamError` carried inside an `io::Error`, if any.
    pub fn from_io(err: &io::Error) -> Option<&StreamError> {
        err.get_ref()?.downcast_ref::<StreamError>()
    }

    /// Whether a deadline caused this error.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::TimedOut)
    }

    /// Whether the stream was reset (by either side) or lost with its connection.
    pub fn is_reset(&self) -> bool {
        matches!(self, Self::Reset { .. } | Self::ConnectionClosed(_))
    }

    /// Whether the peer caused this error (a remote reset, or a go-away/loss
    /// reported by the connection as remote).
    pub fn is_remote(&self) -> bool {
        match self {
            Self::Reset { remote, .. } => *remote,
            Self::ConnectionClosed(e) => e.is_remote(),
            _ => false,
        }
    }

    /// The reset code, when this is a reset.
    pub fn reset_code(&self) -> Option<u32> {
        match self {
            Self::Reset { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> Self {
        io::Error::new(e.kind(), e)
    }
}

/// Why a connection-level operation (open, accept, close) failed, or why the
/// connection ended.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// This side closed the connection.
    #[error("connection closed locally")]
    Closed,
    /// The peer sent a go-away: existing streams may finish, new ones are refused.
    #[error("peer sent go-away (code {code})")]
    GoAway {
        /// The go-away code the peer sent.
        code: u32,
    },
    /// This side sent a go-away, so it opens no new streams.
    #[error("go-away sent (code {code})")]
    GoAwaySent {
        /// The go-away code this side sent.
        code: u32,
    },
    /// The peer broke the protocol; a go-away with a protocol-error code went out.
    #[error("protocol violation by peer: {0}")]
    Protocol(Arc<dyn std::error::Error + Send + Sync>),
    /// The transport failed.
    #[error("transport error: {0}")]
    Io(Arc<io::Error>),
    /// The peer stopped answering keepalive pings.
    #[error("keepalive timeout: peer stopped answering pings")]
    KeepaliveTimeout,
    /// Every stream id of this side's parity has been used; ids never wrap.
    #[error("stream ids exhausted")]
    StreamIdsExhausted,
    /// The peer did not acknowledge a new stream within the open timeout.
    #[error("stream open timed out")]
    OpenTimeout,
}

impl ConnError {
    /// Wraps a transport error.
    pub fn io(err: io::Error) -> Self {
        Self::Io(Arc::new(err))
    }

    /// Wraps a protocol violation.
    pub fn protocol(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Protocol(Arc::new(err))
    }

    /// Whether the peer (or the path to it) caused the failure.
    pub fn is_remote(&self) -> bool {
        matches!(
            self,
            Self::GoAway { .. } | Self::Protocol(_) | Self::Io(_) | Self::KeepaliveTimeout
        )
    }

    /// Whether this is a go-away, received or sent.
    pub fn is_go_away(&self) -> bool {
        matches!(self, Self::GoAway { .. } | Self::GoAwaySent { .. })
    }

    /// Whether the transport failed.
    pub fn is_io(&self) -> bool {
        matches!(self, Self::Io(_))
    }

    /// The `io::ErrorKind` this error maps to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Self::Io(e) => e.kind(),
            Self::KeepaliveTimeout | Self::OpenTimeout => io::ErrorKind::TimedOut,
            Self::Protocol(_) => io::ErrorKind::InvalidData,
            Self::StreamIdsExhausted => io::ErrorKind::AddrNotAvailable,
            Self::Closed | Self::GoAway { .. } | Self::GoAwaySent { .. } => {
                io::ErrorKind::ConnectionReset
            }
        }
    }
}

impl From<ConnError> for io::Error {
    fn from(e: ConnError) -> Self {
        io::Error::new(e.kind(), e)
    }
}
