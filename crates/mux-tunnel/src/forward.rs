//! Copying one forwarded connection both ways, with its ends propagated.
//!
//! - **Half-close**: EOF read on one side becomes close-write on the other
//!   (a TCP FIN becomes the stream's FIN and back), and the other direction
//!   goes on until it ends too.
//! - **Reset**: an error on either side aborts both: the stream is reset
//!   (the peer's stream fails, and its side aborts its own connection) and
//!   a TCP connection is closed with `SO_LINGER` 0, which sends an RST.

use std::{io, time::Duration};

use mux_core::MuxedStream;
use mux_yamux_lite::Stream;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

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

/// Refuses a local connection whose stream was not accepted: a reset, so
/// that the application sees the failure rather than an empty answer.
pub(crate) fn refuse(local: TcpStream) {
    local.abort();
    drop(local);
}
