//! Errors: refusing a request ([`AcceptError`]), failing to open a tunnel
//! ([`ConnectError`]), failures of tunnel I/O ([`TunnelError`]) and the error
//! the outgoing body carries to hyper on reset ([`BodyError`]).
//!
//! Tunnel I/O reports resets, lost connections and deadlines as
//! [`mux_core::StreamError`] inside an `io::Error`, like every transport of
//! this workspace, so `StreamError::from_io` works on them; only failures
//! with no `StreamError` counterpart use [`TunnelError`].
//!
//! ## How a tunnel's end reads, in every mode
//!
//! The same event gives the same error whatever carries the tunnel (HTTP/2
//! CONNECT, HTTP/2 POST, HTTP/1.1 upgrade), for reads and writes alike,
//! except where the table says otherwise:
//!
//! | event | error (`StreamError`) | `io::ErrorKind` |
//! |---|---|---|
//! | this side reset the tunnel ([`ResetHandle`](crate::ResetHandle)) | `Reset { code, remote: false }` | `ConnectionReset` |
//! | the peer reset the stream (`RST_STREAM`) | `Reset { code, remote: true }` | `ConnectionReset` |
//! | the peer sent `GOAWAY` | `ConnectionClosed(ConnError::GoAway { code })` | `ConnectionReset` |
//! | this side sent `GOAWAY` (for example hyper's flood guard, `ENHANCE_YOUR_CALM` = 11) | `ConnectionClosed(ConnError::GoAwaySent { code })` | `ConnectionReset` |
//! | a write after the peer is gone, with no reason known¹ | `Reset { code: 8 (CANCEL), remote: true }` | `ConnectionReset` |
//! | a write after this side's `poll_shutdown` | `WriteClosed` | `BrokenPipe` |
//! | a read after the peer's `END_STREAM` (or TCP FIN) | none: EOF | none |
//! | a deadline passed | `TimedOut` | `TimedOut` |
//!
//! hyper tells the reason (reset or go-away, its code and who sent it) to
//! the receiving side only, and a stream that the connection's end cuts off
//! (after a GOAWAY, say) first reads as a broken pipe; such a read waits
//! for the connection's end and reports its reason. A write learns the
//! reason from an earlier failed read of the same tunnel, or from the HTTP
//! connection's end when this crate runs the connection
//! ([`connect`](crate::connect), [`serve`](crate::serve)); the connection
//! may end a moment after the write fails, and until then the write reads
//! as the peer's reset. The server learns why its connection ended from
//! hyper; the client, whose connection hyper reports as ended cleanly
//! whatever happened, from the GOAWAY frames and I/O errors that pass
//! through the connection's I/O. Tunnels opened with
//! [`Connector::connect_with`](crate::Connector::connect_with) on a
//! connection of [`handshake`](crate::handshake) do not learn it: their
//! reads report the broken pipe. ¹ Also an HTTP/1.1 upgrade
//! whose peer closed or reset its TCP connection, which carries no code.
//! hyper reports a peer's reset with code 0 (`NO_ERROR`) as EOF, and in
//! CONNECT mode code 8 (`CANCEL`) too.

use std::{io, sync::Arc};

/// A boxed error of any body type.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

use http::{StatusCode, Version};
use mux_core::{ConnError, StreamError};

/// Why [`accept`](crate::accept) refused a request. The request cannot carry a
/// full-duplex tunnel; answer it with [`AcceptError::to_response`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// An HTTP/1.1 request without `Upgrade: mux-tunnel` and
    /// `Connection: upgrade`: HTTP/1.1 bodies are not reliably full duplex.
    #[error(
        "an HTTP/1.1 tunnel needs `Upgrade: {}` and `Connection: upgrade` (or use HTTP/2)",
        crate::UPGRADE_PROTOCOL
    )]
    UpgradeRequired,
    /// A protocol version that can carry no tunnel (HTTP/1.0 and older).
    #[error("{0:?} cannot carry a full-duplex tunnel; use HTTP/2 or an HTTP/1.1 upgrade")]
    VersionNotSupported(Version),
}

impl AcceptError {
    /// The status to answer with: `426 Upgrade Required` or
    /// `505 HTTP Version Not Supported`.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            Self::VersionNotSupported(_) => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
        }
    }

    /// The `io::ErrorKind` this maps to (`Unsupported`).
    pub fn kind(&self) -> io::ErrorKind {
        io::ErrorKind::Unsupported
    }
}

impl From<AcceptError> for io::Error {
    fn from(e: AcceptError) -> Self {
        io::Error::new(e.kind(), e)
    }
}

/// Why [`connect`](crate::connect) (or a [`Connector`](crate::Connector)) failed
/// to open a tunnel.
///
/// | variant | `io::ErrorKind` |
/// |---|---|
/// | [`InvalidUrl`](Self::InvalidUrl), [`UnsupportedScheme`](Self::UnsupportedScheme), [`InvalidRequest`](Self::InvalidRequest), [`NeedsOwnConnection`](Self::NeedsOwnConnection) | `InvalidInput` |
/// | [`TlsNotEnabled`](Self::TlsNotEnabled) | `Unsupported` |
/// | [`Connect`](Self::Connect), [`Tls`](Self::Tls) | the socket error's kind |
/// | [`Handshake`](Self::Handshake), [`Request`](Self::Request) | from the HTTP error (often `ConnectionReset`) |
/// | [`Status`](Self::Status) | `ConnectionRefused` |
/// | [`Upgrade`](Self::Upgrade) | `ConnectionAborted` |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL does not parse, or lacks a host.
    #[error("invalid tunnel URL: {0}")]
    InvalidUrl(String),
    /// Only `http` (and `https` with the `tls` feature) are supported.
    #[error("unsupported URL scheme {0:?} (expected http or https)")]
    UnsupportedScheme(String),
    /// An `https` URL, but the crate was built without the `tls` feature.
    #[error("https needs mux-h2's `tls` feature")]
    TlsNotEnabled,
    /// The request could not be built (for example a bad extra header).
    #[error("invalid tunnel request: {0}")]
    InvalidRequest(#[source] http::Error),
    /// Opening the TCP connection failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The `host:port` dialled.
        addr: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] io::Error),
    /// The HTTP/2 (or HTTP/1.1) connection handshake failed.
    #[error("HTTP handshake failed: {0}")]
    Handshake(#[source] hyper::Error),
    /// Sending the request or receiving the response head failed.
    #[error("tunnel request failed: {0}")]
    Request(#[source] hyper::Error),
    /// The server answered with a status other than 200 (101 for an upgrade).
    #[error("tunnel refused with status {status}")]
    Status {
        /// The status the server sent.
        status: StatusCode,
        /// The response headers, for diagnostics.
        headers: Box<http::HeaderMap>,
    },
    /// The server accepted, but taking over the connection failed.
    #[error("taking over the connection failed: {0}")]
    Upgrade(#[source] hyper::Error),
    /// [`Mode::Http1Upgrade`](crate::Mode::Http1Upgrade) takes over a whole
    /// HTTP/1.1 connection, so it cannot share an HTTP/2 `SendRequest`.
    #[error("HTTP/1.1 upgrade mode needs its own connection; it cannot share an HTTP/2 one")]
    NeedsOwnConnection,
}

impl ConnectError {
    /// The refusing status, for [`Status`](Self::Status).
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The `io::ErrorKind` this maps to (see the table on the type).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Self::InvalidUrl(_)
            | Self::UnsupportedScheme(_)
            | Self::InvalidRequest(_)
            | Self::NeedsOwnConnection => io::ErrorKind::InvalidInput,
            Self::TlsNotEnabled => io::ErrorKind::Unsupported,
            Self::Connect { source, .. } | Self::Tls(source) => source.kind(),
            Self::Handshake(e) | Self::Request(e) => hyper_error_kind(e),
            Self::Status { .. } => io::ErrorKind::ConnectionRefused,
            Self::Upgrade(_) => io::ErrorKind::ConnectionAborted,
        }
    }
}

impl From<ConnectError> for io::Error {
    fn from(e: ConnectError) -> Self {
        io::Error::new(e.kind(), e)
    }
}

/// A tunnel I/O failure with no [`StreamError`] counterpart.
///
/// | variant | `io::ErrorKind` |
/// |---|---|
/// | [`SendClosed`](Self::SendClosed) | `BrokenPipe` |
/// | [`Body`](Self::Body) | from the HTTP error (`ConnectionReset` when the connection was lost) |
/// | [`OtherBody`](Self::OtherBody) | from the HTTP or I/O error inside, else `Other` |
/// | [`Upgrade`](Self::Upgrade) | `ConnectionAborted` |
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelError {
    /// hyper stopped taking the outgoing body: the peer reset the stream or
    /// the connection closed.
    #[error("the tunnel's outgoing stream is gone (peer reset or connection closed)")]
    SendClosed,
    /// Receiving the incoming body failed.
    #[error("tunnel body error: {0}")]
    Body(#[source] Arc<hyper::Error>),
    /// Receiving the incoming body failed, where [`accept`](crate::accept)
    /// was given a body type other than hyper's `Incoming` (for example
    /// axum's `Body`, whose error wraps hyper's).
    #[error("tunnel body error: {0}")]
    OtherBody(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// The server-side CONNECT or HTTP/1.1 upgrade never completed (for
    /// example the connection closed before the response went out).
    #[error("taking over the connection failed: {0}")]
    Upgrade(#[source] Arc<hyper::Error>),
}

impl TunnelError {
    /// The `io::ErrorKind` this maps to (see the table on the type).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Self::SendClosed => io::ErrorKind::BrokenPipe,
            Self::Body(e) => hyper_error_kind(e),
            Self::OtherBody(e) => {
                let e: &(dyn std::error::Error + 'static) = &**e;
                if let Some(hyper) = find_source::<hyper::Error>(e) {
                    hyper_error_kind(hyper)
                } else if let Some(io) = find_source::<io::Error>(e) {
                    io.kind()
                } else {
                    io::ErrorKind::Other
                }
            }
            Self::Upgrade(_) => io::ErrorKind::ConnectionAborted,
        }
    }

    /// Recovers the `TunnelError` carried inside an `io::Error`, if any.
    pub fn from_io(err: &io::Error) -> Option<&TunnelError> {
        err.get_ref()?.downcast_ref::<TunnelError>()
    }
}

impl From<TunnelError> for io::Error {
    fn from(e: TunnelError) -> Self {
        io::Error::new(e.kind(), e)
    }
}

/// The error the outgoing body of a body-mode tunnel yields once the tunnel
/// is reset, which makes hyper send `RST_STREAM` with [`code`](Self::code).
#[derive(Debug, thiserror::Error)]
#[error("tunnel reset locally (code {code})")]
pub struct BodyError {
    code: u32,
    // hyper looks for an `h2::Error` among the sources to pick the
    // RST_STREAM code; without one it always sends INTERNAL_ERROR.
    #[source]
    reason: h2::Error,
}

impl BodyError {
    pub(crate) fn reset(code: u32) -> Self {
        Self {
            code,
            reason: h2::Reason::from(code).into(),
        }
    }

    /// The RST_STREAM error code sent to the peer.
    pub fn code(&self) -> u32 {
        self.code
    }
}

/// Walks the source chain of `err` for an error of type `E`.
pub(crate) fn find_source<'a, E: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

/// The `io::ErrorKind` that best describes a hyper error.
pub(crate) fn hyper_error_kind(e: &hyper::Error) -> io::ErrorKind {
    if e.is_timeout() {
        return io::ErrorKind::TimedOut;
    }
    if let Some(io) = find_source::<io::Error>(e) {
        return io.kind();
    }
    if let Some(h2) = find_source::<h2::Error>(e) {
        if let Some(io) = h2.get_io() {
            return io.kind();
        }
        if h2.is_reset() || h2.is_go_away() {
            return io::ErrorKind::ConnectionReset;
        }
        return io::ErrorKind::InvalidData;
    }
    if e.is_canceled() || e.is_closed() || e.is_incomplete_message() {
        return io::ErrorKind::ConnectionReset;
    }
    if e.is_parse() || e.is_parse_status() {
        return io::ErrorKind::InvalidData;
    }
    io::ErrorKind::Other
}

/// The [`StreamError`] an `h2` error stands for, if it is a reset or a
/// go-away: those mean the same thing on every transport of this workspace.
///
/// hyper reports a RST_STREAM received while writing upgraded I/O as a bare
/// reason (neither "reset" nor "go-away" to h2); `bare_reason_is_reset`
/// says to read it as the peer's reset.
pub(crate) fn h2_stream_error(h2: &h2::Error, bare_reason_is_reset: bool) -> Option<StreamError> {
    let code = u32::from(h2.reason()?);
    if h2.is_reset() || (bare_reason_is_reset && !h2.is_go_away() && !h2.is_io()) {
        let remote = h2.is_remote() || !h2.is_reset();
        return Some(StreamError::Reset { code, remote });
    }
    if h2.is_go_away() {
        let conn = if h2.is_remote() {
            ConnError::GoAway { code }
        } else {
            ConnError::GoAwaySent { code }
        };
        return Some(StreamError::ConnectionClosed(conn));
    }
    None
}

/// What ended an HTTP connection, from the error its task returned
/// (hyper's, or hyper-util's boxed one).
pub(crate) fn conn_end_error(e: &(dyn std::error::Error + 'static)) -> ConnError {
    if let Some(h2) = find_source::<h2::Error>(e) {
        if let (true, Some(reason)) = (h2.is_go_away(), h2.reason()) {
            let code = u32::from(reason);
            return if h2.is_remote() {
                ConnError::GoAway { code }
            } else {
                ConnError::GoAwaySent { code }
            };
        }
    }
    let kind = if let Some(hyper) = find_source::<hyper::Error>(e) {
        hyper_error_kind(hyper)
    } else if let Some(io) = find_source::<io::Error>(e) {
        io.kind()
    } else {
        io::ErrorKind::Other
    };
    ConnError::io(io::Error::new(kind, e.to_string()))
}

/// Maps an error of the incoming body.
pub(crate) fn body_error(e: hyper::Error) -> io::Error {
    if let Some(se) = find_source::<h2::Error>(&e).and_then(|h2| h2_stream_error(h2, false)) {
        tracing::debug!(error = %e, "mux-h2: tunnel stream ended abnormally");
        return se.into();
    }
    tracing::debug!(error = %e, "mux-h2: tunnel body error");
    TunnelError::Body(Arc::new(e)).into()
}

/// Maps an error of the incoming body, of whatever body type: hyper's own
/// errors as [`body_error`] does, others by the `h2::Error` (a reset or a
/// go-away) they may wrap.
pub(crate) fn incoming_error(e: BoxError) -> io::Error {
    match e.downcast::<hyper::Error>() {
        Ok(hyper) => body_error(*hyper),
        Err(e) => {
            if let Some(se) =
                find_source::<h2::Error>(&*e).and_then(|h2| h2_stream_error(h2, false))
            {
                tracing::debug!(error = %e, "mux-h2: tunnel stream ended abnormally");
                return se.into();
            }
            tracing::debug!(error = %e, "mux-h2: tunnel body error");
            TunnelError::OtherBody(Arc::from(e)).into()
        }
    }
}

/// Maps an error of hyper's upgraded I/O, which carries resets as an
/// `h2::Error` inside an `io::Error` of kind `Other`.
pub(crate) fn upgraded_io_error(e: io::Error) -> io::Error {
    let se = e
        .get_ref()
        .and_then(|inner| find_source::<h2::Error>(inner))
        .and_then(|h2| h2_stream_error(h2, true));
    match se {
        Some(se) => {
            tracing::debug!(error = %e, "mux-h2: tunnel stream ended abnormally");
            se.into()
        }
        None => e,
    }
}
