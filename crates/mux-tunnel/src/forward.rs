//! Copying one forwarded connection both ways, with its ends propagated.
//!
//! - **Half-close**: EOF read on one side becomes close-write on the other
//!   (a TCP FIN becomes the stream's FIN and back), and the other direction
//!   goes on until it ends too.
//! - **Reset**: an error on either side aborts both: the stream is reset
//!   (the peer's stream fails, and its side aborts its own connection) and
//!   a TCP connection is closed with `SO_LINGER` 0, which sends an RST.

use std::{fmt::Display, io, time::Duration};

use mux_core::MuxedStream;
use mux_yamux_lite::Stream;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

use crate::{
    header::{self, Status},
    remote::HostPort,
};

/// How long connecting to a target may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The copy buffer in each direction: large enough that a bulk transfer
/// moves a whole mux frame (64 KiB) per read.
const COPY_BUFFER: usize = 64 * 1024;

/// What a forwarded connection is spliced with: something that can be
/// aborted so that its peer sees a reset rather than a clean end.
pub(crate) trait Abort {
    /// Makes dropping `self` a reset rather than a close.
    fn abort(&self);
}

impl Abort for TcpStream {
    fn abort(&self) {
        if let Err(e) = socket2::SockRef::from(self).set_linger(Some(Duration::ZERO)) {
            tracing::debug!(error = %e, "cannot set SO_LINGER 0; the close is a FIN");
        }
    }
}

/// stdin and stdout: nothing to reset; dropping them is all there is.
impl<R, W> Abort for tokio::io::Join<R, W> {
    fn abort(&self) {}
}

/// Copies `local` to `stream` and back until both directions end, then
/// returns the bytes sent and received. On an error in either direction,
/// resets `stream`, aborts `local` and returns the error.
pub(crate) async fn splice<L>(mut local: L, mut stream: Stream) -> io::Result<(u64, u64)>
where
    L: AsyncRead + AsyncWrite + Unpin + Abort,
{
    match tokio::io::copy_bidirectional_with_sizes(
        &mut local,
        &mut stream,
        COPY_BUFFER,
        COPY_BUFFER,
    )
    .await
    {
        Ok(counts) => Ok(counts),
        Err(e) => {
            stream.reset();
            local.abort();
            Err(e)
        }
    }
}

/// Connects to `target` within [`CONNECT_TIMEOUT`], with `TCP_NODELAY`.
pub(crate) async fn dial(target: &HostPort) -> io::Result<TcpStream> {
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// The side that dials: connects to `target`, answers the stream's
/// request with the outcome and, once connected, splices. `peer` names the
/// other end of the tunnel in logs.
pub(crate) async fn connect_and_splice(mut stream: Stream, target: HostPort, peer: impl Display) {
    let tcp = match dial(&target).await {
        Ok(tcp) => tcp,
        Err(e) => {
            tracing::info!(%peer, %target, error = %e, "target unreachable");
            let _ = header::write_status(&mut stream, Status::of_connect_error(&e), None).await;
            return;
        }
    };
    if header::write_status(&mut stream, Status::Ok, None)
        .await
        .is_err()
    {
        refuse(tcp);
        return;
    }
    splice_logged(tcp, stream, &peer, &target).await;
}

/// [`splice`], with a log line at its end.
pub(crate) async fn splice_logged(
    tcp: TcpStream,
    stream: Stream,
    peer: &impl Display,
    target: &HostPort,
) {
    tracing::debug!(%peer, %target, "forwarding");
    match splice(tcp, stream).await {
        Ok((sent, received)) => tracing::debug!(%peer, %target, sent, received, "forward done"),
        Err(e) => tracing::debug!(%peer, %target, error = %e, "forward reset"),
    }
}

/// Refuses a local connection whose stream was not accepted: a reset, so
/// that the application sees the failure rather than an empty answer.
pub(crate) fn refuse(local: TcpStream) {
    local.abort();
    drop(local);
}
