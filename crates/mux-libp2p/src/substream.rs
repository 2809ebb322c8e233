//! [`Substream`]: a stream as the futures-io type libp2p expects.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{AsyncRead, AsyncWrite};
use mux_core::compat::{Compat, TokioAsyncReadCompatExt};
use mux_yamux_lite::Stream;

/// A stream as futures-io `AsyncRead + AsyncWrite`.
///
/// `poll_close` ends this side's writing (FIN) once every byte written
/// before it is queued; dropping the substream afterwards loses none of
/// them. A reset by the peer fails reads and writes with
/// `io::ErrorKind::ConnectionReset`. [`get_ref`](Self::get_ref) reaches the
/// stream's own API: `reset_with(code)`, `close_read`, deadlines.
#[derive(Debug)]
pub struct Substream {
    inner: Compat<Stream>,
}

impl Substream {
    pub(crate) fn new(stream: Stream) -> Self {
        Self {
            inner: stream.compat(),
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &Stream {
        self.inner.get_ref()
    }

    /// The stream underneath, mutably.
    pub fn get_mut(&mut self) -> &mut Stream {
        self.inner.get_mut()
    }

    /// Unwraps the tokio stream.
    pub fn into_inner(self) -> Stream {
        self.inner.into_inner()
    }
}

impl AsyncRead for Substream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Substream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
