//! The header that opens every stream, and its answer.
//!
//! The side that opens a stream first writes a request, at most 260 bytes:
//!
//! ```text
//! version (1) | kind (1) | host length N (1, 1-255) | host (N, UTF-8) | port (2, big-endian)
//! ```
//!
//! The other side answers with one status byte ([`Status`]); for
//! [`Kind::Listen`] an `Ok` is followed by the address the server bound,
//! as `N | host | port`. Data flows only after an `Ok`; any other status is
//! followed by the end of the stream, so a refused target ends that stream
//! only. Reading never allocates more than 255 bytes and rejects an unknown
//! version, kind or status, and an empty or non-UTF-8 host.

use std::{io, time::Duration};

use mux_yamux_lite::{Connection, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::remote::HostPort;

/// How long a side waits for a header or a status.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The version byte this build speaks.
pub(crate) const VERSION: u8 = 1;

/// What a stream is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Client → server: connect to the target (a forward remote or stdio).
    Connect = 1,
    /// Client → server: connect to the target for a SOCKS5 client (the
    /// server needs `--socks`).
    Socks = 2,
    /// Client → server: listen on the address (a reverse remote; the server
    /// needs `--reverse`). The stream stays open as long as the listener.
    Listen = 3,
    /// Server → client: a connection arrived on a reverse listener; connect
    /// to the target, which the client registered.
    Reverse = 4,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Connect),
            2 => Some(Self::Socks),
            3 => Some(Self::Listen),
            4 => Some(Self::Reverse),
            _ => None,
        }
    }
}

/// The answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Connected (or listening): data flows.
    Ok = 0,
    /// The target refused the connection, or connecting failed.
    Refused = 1,
    /// This side's configuration does not allow it (`--socks`, `--reverse`,
    /// a reverse target the client did not register).
    Denied = 2,
    /// The host did not resolve, or connecting timed out.
    Unreachable = 3,
    /// The request did not parse.
    BadRequest = 4,
}

impl Status {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Ok),
            1 => Some(Self::Refused),
            2 => Some(Self::Denied),
            3 => Some(Self::Unreachable),
            4 => Some(Self::BadRequest),
            _ => None,
        }
    }

    /// The status for a failed connect.
    pub(crate) fn of_connect_error(e: &io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Self::Refused,
            _ => Self::Unreachable,
        }
    }
}

/// A stream's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// What the stream is for.
    pub(crate) kind: Kind,
    /// The target to connect to, or the address to listen on.
    pub(crate) addr: HostPort,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Appends `N | host | port` to `out`.
fn encode_addr(addr: &HostPort, out: &mut Vec<u8>) -> io::Result<()> {
    let host = addr.host.as_bytes();
    let len = u8::try_from(host.len())
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "host must be 1-255 bytes"))?;
    out.push(len);
    out.extend_from_slice(host);
    out.extend_from_slice(&addr.port.to_be_bytes());
    Ok(())
}

async fn read_addr<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<HostPort> {
    let len = usize::from(r.read_u8().await?);
    if len == 0 {
        return Err(invalid("empty host in stream header"));
    }
    let mut host = vec![0; len];
    r.read_exact(&mut host).await?;
    let host = String::from_utf8(host).map_err(|_| invalid("host is not UTF-8"))?;
    let port = r.read_u16().await?;
    Ok(HostPort::new(host, port))
}

/// Writes `request` in one write.
pub(crate) async fn write_request<W: AsyncWrite + Unpin>(
    w: &mut W,
    request: &Request,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(request.addr.host.len().saturating_add(5));
    out.push(VERSION);
    out.push(request.kind as u8);
    encode_addr(&request.addr, &mut out)?;
    w.write_all(&out).await?;
    w.flush().await
}

/// Reads a request. Errors with `InvalidData` on anything malformed.
pub(crate) async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Request> {
    let version = r.read_u8().await?;
    if version != VERSION {
        return Err(invalid("unknown stream header version"));
    }
    let kind = Kind::from_byte(r.read_u8().await?).ok_or_else(|| invalid("unknown stream kind"))?;
    let addr = read_addr(r).await?;
    Ok(Request { kind, addr })
}

/// Writes a status, and for a listener the address it bound.
pub(crate) async fn write_status<W: AsyncWrite + Unpin>(
    w: &mut W,
    status: Status,
    bound: Option<&HostPort>,
) -> io::Result<()> {
    let mut out = vec![status as u8];
    if let Some(bound) = bound {
        encode_addr(bound, &mut out)?;
    }
    w.write_all(&out).await?;
    w.flush().await
}

/// Reads a status byte.
pub(crate) async fn read_status<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Status> {
    Status::from_byte(r.read_u8().await?).ok_or_else(|| invalid("unknown status"))
}

/// Reads the address that follows a listener's `Ok`.
pub(crate) async fn read_bound<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<HostPort> {
    read_addr(r).await
}

/// Why a stream could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// Writing the request or reading the answer failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The tunnel would not open a stream.
    #[error("cannot open a stream: {0}")]
    Mux(#[from] mux_core::ConnError),
    /// The other side answered something else than `Ok`.
    #[error("the other side answered {0:?}")]
    Status(Status),
    /// No answer in time.
    #[error("no answer within {HEADER_TIMEOUT:?}")]
    Timeout,
}

/// Opens a stream on `mux`, sends the request for `kind` and `target`,
/// and waits for an `Ok`.
pub(crate) async fn open(
    mux: &Connection,
    kind: Kind,
    target: &HostPort,
) -> Result<Stream, OpenError> {
    let mut stream = mux.open_stream().await?;
    let request = Request {
        kind,
        addr: target.clone(),
    };
    write_request(&mut stream, &request).await?;
    match tokio::time::timeout(HEADER_TIMEOUT, read_status(&mut stream)).await {
        Ok(Ok(Status::Ok)) => Ok(stream),
        Ok(Ok(status)) => Err(OpenError::Status(status)),
        Ok(Err(e)) => Err(e.into()),
        Err(_elapsed) => Err(OpenError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn request_round_trip() {
        let request = Request {
            kind: Kind::Socks,
            addr: HostPort::new("example.com", 443),
        };
        let mut buf = Vec::new();
        write_request(&mut buf, &request).await.unwrap();
        assert_eq!(buf.first(), Some(&VERSION));
        assert_eq!(buf.len(), 2 + 1 + 11 + 2);
        assert_eq!(read_request(&mut buf.as_slice()).await.unwrap(), request);
    }

    #[tokio::test]
    async fn status_round_trip_with_bound_address() {
        let mut buf = Vec::new();
        let bound = HostPort::new("127.0.0.1", 4000);
        write_status(&mut buf, Status::Ok, Some(&bound))
            .await
            .unwrap();
        let mut r = buf.as_slice();
        assert_eq!(read_status(&mut r).await.unwrap(), Status::Ok);
        assert_eq!(read_bound(&mut r).await.unwrap(), bound);
    }

    #[tokio::test]
    async fn malformed_requests_are_refused() {
        for bad in [
            &[2u8, 1, 1, b'a', 0, 80][..], // version
            &[1, 9, 1, b'a', 0, 80][..],   // kind
            &[1, 1, 0, 0, 80][..],         // empty host
            &[1, 1, 1, 0xff, 0, 80][..],   // not UTF-8
            &[1, 1, 5, b'a', b'b'][..],    // truncated
        ] {
            let err = read_request(&mut &bad[..]).await.unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ),
                "{bad:?}: {err}"
            );
        }
        assert!(read_status(&mut &[7u8][..]).await.is_err());
    }

    #[tokio::test]
    async fn an_oversized_host_is_not_encoded() {
        let request = Request {
            kind: Kind::Connect,
            addr: HostPort::new("a".repeat(256), 1),
        };
        let mut buf = Vec::new();
        assert!(write_request(&mut buf, &request).await.is_err());
        assert!(buf.is_empty());
    }
}
