//! The writing half, and the outgoing body hyper drains in body mode.

use std::{
    io,
    pin::Pin,
    sync::{atomic::Ordering, Arc},
    task::{ready, Context, Poll},
};

use bytes::Bytes;
use futures_util::Stream;
use hyper::body::Frame;
use mux_core::StreamError;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use super::shared::Shared;
use crate::error::{BodyError, TunnelError};

/// The most bytes one `poll_write` accepts (a write of more is partial).
///
/// 16 KiB is HTTP/2's default maximum DATA frame, so a chunk maps onto one
/// frame. It also caps each copy hyper's upgraded I/O makes per write.
pub const MAX_CHUNK: usize = 16 * 1024;

pub(super) enum WriteInner {
    Body { tx: PollSender<Bytes>, shut: bool },
    Upgraded,
}

/// The writing half of a tunnel: the outgoing body's queue, or the upgraded
/// connection. `poll_shutdown` ends the body (HTTP/2 `END_STREAM`) or
/// half-closes the upgraded connection.
///
/// Once `poll_shutdown` has returned `Ok`, the tunnel may be dropped at once
/// and every byte written before still reaches the peer, in order, followed
/// by EOF, as with a TCP socket: the dropped tunnel's receiving side keeps
/// draining in a background task for up to
/// [`DROP_DRAIN_TIMEOUT`](super::shared::DROP_DRAIN_TIMEOUT) (see there), so the
/// stream is not cancelled while data waits for the peer's window. Dropping
/// without a shutdown, or after a reset, gives no such guarantee.
///
/// A write accepts at most [`MAX_CHUNK`] bytes. `poll_flush` waits until
/// hyper has taken every queued chunk, which it does only as the HTTP/2 send
/// window allows.
pub struct TunnelWriter {
    pub(super) shared: Arc<Shared>,
    pub(super) inner: WriteInner,
}

tunnel_half!(TunnelWriter, "writer");

impl TunnelWriter {
    fn start(&self, cx: &mut Context<'_>) -> Result<(), io::Error> {
        self.shared.wakers.write.register(cx.waker());
        match self.shared.reset_error() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

fn send_closed(shut: bool) -> io::Error {
    if shut {
        StreamError::WriteClosed.into()
    } else {
        TunnelError::SendClosed.into()
    }
}

impl AsyncWrite for TunnelWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.start(cx)?;
        let n = buf.len().min(MAX_CHUNK);
        let part = buf.get(..n).unwrap_or(buf);
        match &mut this.inner {
            WriteInner::Body { tx, shut } => {
                if *shut {
                    return Poll::Ready(Err(StreamError::WriteClosed.into()));
                }
                if part.is_empty() {
                    return Poll::Ready(Ok(0));
                }
                if ready!(tx.poll_reserve(cx)).is_err() {
                    return Poll::Ready(Err(send_closed(*shut)));
                }
                match tx.send_item(Bytes::copy_from_slice(part)) {
                    Ok(()) => Poll::Ready(Ok(part.len())),
                    Err(_) => Poll::Ready(Err(send_closed(*shut))),
                }
            }
            WriteInner::Upgraded => this
                .shared
                .poll_upgraded(cx, |io, cx| io.poll_write(cx, part)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.start(cx)?;
        match &mut this.inner {
            WriteInner::Body { tx, shut } => {
                let Some(sender) = tx.get_ref() else {
                    // Shut down: the channel delivers what it holds anyway.
                    return Poll::Ready(Ok(()));
                };
                if sender.capacity() == sender.max_capacity() {
                    Poll::Ready(Ok(()))
                } else if sender.is_closed() {
                    Poll::Ready(Err(send_closed(*shut)))
                } else {
                    // The body wakes `wakers.write` (registered in `start`)
                    // each time hyper takes a chunk, and when it is dropped.
                    Poll::Pending
                }
            }
            WriteInner::Upgraded => this.shared.poll_upgraded(cx, |io, cx| io.poll_flush(cx)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.start(cx)?;
        match &mut this.inner {
            WriteInner::Body { tx, shut } => {
                // Queued chunks still go out, then END_STREAM.
                tx.close();
                *shut = true;
            }
            WriteInner::Upgraded => {
                // hyper's HTTP/2 upgrade returns once its send task has
                // queued END_STREAM behind the data in h2.
                ready!(this.shared.poll_upgraded(cx, |io, cx| io.poll_shutdown(cx)))?;
            }
        }
        this.shared.write_shut.store(true, Ordering::Release);
        Poll::Ready(Ok(()))
    }
}

/// Drains a body-mode tunnel's queue for hyper; yields [`BodyError`] once
/// the tunnel is reset, which hyper turns into `RST_STREAM`.
pub(super) struct Outgoing {
    pub(super) rx: mpsc::Receiver<Bytes>,
    pub(super) shared: Arc<Shared>,
    pub(super) reset_sent: bool,
}

impl Stream for Outgoing {
    type Item = Result<Frame<Bytes>, BodyError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.shared.wakers.body.register(cx.waker());
        if let Some(code) = this.shared.reset_code() {
            if this.reset_sent {
                return Poll::Ready(None);
            }
            this.reset_sent = true;
            return Poll::Ready(Some(Err(BodyError::reset(code))));
        }
        let item = ready!(this.rx.poll_recv(cx));
        // A flush may be waiting for the queue to drain.
        this.shared.wakers.write.wake();
        Poll::Ready(item.map(|chunk| Ok(Frame::data(chunk))))
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        // hyper dropped the body (stream reset or connection gone): a
        // pending flush would otherwise wait for a drain that never comes.
        self.shared.wakers.write.wake();
    }
}
