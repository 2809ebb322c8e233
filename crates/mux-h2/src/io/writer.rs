//! The writing half, and what sends its queue: the outgoing body hyper
//! drains in body mode, or the pump task of an upgraded tunnel.

use std::{
    future::poll_fn,
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

use super::queue::{Popped, Refused, SendQueue};
use super::shared::{Shared, DROP_DRAIN_TIMEOUT};
use crate::error::BodyError;

/// The writing half of a tunnel. `poll_shutdown` ends the body (HTTP/2
/// `END_STREAM`) or half-closes the upgraded connection.
///
/// Writes go to a bounded queue of at most
/// [`SEND_QUEUE_CHUNKS`](super::SEND_QUEUE_CHUNKS) chunks of at most
/// [`MAX_CHUNK`](super::MAX_CHUNK) bytes, which hyper (body mode) or a pump
/// task (CONNECT and HTTP/1.1 upgrade) sends. A write that finds the last
/// queued chunk not yet taken joins it, so a burst of small writes leaves as
/// few large DATA frames: hyper's HTTP/2 flood guard answers many small
/// frames held unread with `GOAWAY(ENHANCE_YOUR_CALM)`. The sender takes a
/// chunk as soon as it is queued, so a lone write is never held back for
/// more, and no flush is needed.
///
/// Once `poll_shutdown` has returned `Ok`, the tunnel may be dropped at once
/// and every byte written before still reaches the peer, in order, followed
/// by EOF, as with a TCP socket: the dropped tunnel's receiving side keeps
/// draining in a background task for up to
/// [`DROP_DRAIN_TIMEOUT`](super::shared::DROP_DRAIN_TIMEOUT) (see there), so the
/// stream is not cancelled while data waits for the peer's window. Dropping
/// without a shutdown, or after a reset, gives no such guarantee.
///
/// `poll_flush` waits until hyper has taken every queued byte, which it does
/// only as the HTTP/2 send window allows.
pub struct TunnelWriter {
    pub(super) shared: Arc<Shared>,
    pub(super) queue: Arc<SendQueue>,
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

    fn refused(&self, why: Refused) -> io::Error {
        match why {
            Refused::Shut => StreamError::WriteClosed.into(),
            Refused::SenderGone(err) => self.shared.peer_gone_error(err),
        }
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
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match this.queue.push(buf) {
            Ok(Some(n)) => {
                this.shared.wakers.body.wake();
                Poll::Ready(Ok(n))
            }
            // The sender wakes `wakers.write` (registered in `start`) each
            // time it takes a chunk, and when it stops.
            Ok(None) => Poll::Pending,
            Err(why) => Poll::Ready(Err(this.refused(why))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.start(cx)?;
        match this.queue.drained() {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => Poll::Pending,
            Err(why) => Poll::Ready(Err(this.refused(why))),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.start(cx)?;
        if !this.queue.is_shut() {
            // Queued chunks still go out, then END_STREAM.
            this.queue.shut();
            this.shared.wakers.body.wake();
        }
        if this.shared.upgraded() {
            // Done once the pump has handed every chunk to hyper and turns
            // to the end of stream, as a flush would.
            match this.queue.is_end_sent() {
                Ok(true) => {}
                Ok(false) => return Poll::Pending,
                Err(why) => return Poll::Ready(Err(this.refused(why))),
            }
        }
        this.shared.write_shut.store(true, Ordering::Release);
        Poll::Ready(Ok(()))
    }
}

impl Drop for TunnelWriter {
    fn drop(&mut self) {
        self.queue.abandon();
        self.shared.wakers.body.wake();
    }
}

/// Drains a body-mode tunnel's queue for hyper; yields [`BodyError`] once
/// the tunnel is reset, which hyper turns into `RST_STREAM`.
pub(super) struct Outgoing {
    pub(super) queue: Arc<SendQueue>,
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
        match this.queue.pop() {
            Popped::Chunk(chunk) => {
                this.queue.chunk_sent();
                // A write or flush may be waiting for room in the queue.
                this.shared.wakers.write.wake();
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            // A writer dropped without a shutdown ends the body too, or the
            // stream would stay open while the peer waits.
            Popped::End | Popped::Abandoned => Poll::Ready(None),
            Popped::Empty => Poll::Pending,
        }
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        // hyper dropped the body (stream reset or connection gone): a
        // pending write or flush would otherwise wait for a drain that never
        // comes.
        self.queue.sender_gone(None);
        self.shared.wakers.write.wake();
    }
}

/// Sends an upgraded tunnel's queue into hyper's upgraded connection until
/// the writer shuts down (then half-closes it), is dropped, or the tunnel
/// fails or is reset.
pub(super) async fn pump(shared: Arc<Shared>, queue: Arc<SendQueue>) {
    loop {
        let popped = poll_fn(|cx| {
            shared.wakers.body.register(cx.waker());
            if shared.reset_code().is_some() {
                return Poll::Ready(Popped::Abandoned);
            }
            match queue.pop() {
                Popped::Empty => Poll::Pending,
                popped => Poll::Ready(popped),
            }
        })
        .await;
        let (result, done) = match popped {
            Popped::Chunk(chunk) => (send_chunk(&shared, &chunk).await, false),
            Popped::End => {
                // Every chunk is with hyper: the writer's shutdown is done.
                queue.end_sent();
                shared.wakers.write.wake();
                // hyper's shutdown waits until its send task has handed
                // END_STREAM to h2, which needs the peer's window for the
                // last chunk. The send task finishes on its own; waiting
                // here only keeps the tunnel alive meanwhile, bounded like
                // a dropped tunnel's drain.
                let shut = poll_fn(|cx| poll_io(&shared, cx, |io, cx| io.poll_shutdown(cx)));
                let shut = match tokio::time::timeout(DROP_DRAIN_TIMEOUT, shut).await {
                    Ok(shut) => shut,
                    Err(_) => Ok(()),
                };
                (shut, true)
            }
            Popped::Empty | Popped::Abandoned => return,
        };
        match result {
            Ok(()) => queue.chunk_sent(),
            Err(e) => {
                tracing::debug!(error = %e, kind = ?shared.kind, "mux-h2: tunnel send failed");
                queue.sender_gone(Some(e));
            }
        }
        shared.wakers.write.wake();
        if done {
            return;
        }
    }
}

/// Hands all of `chunk` to hyper and flushes: over HTTP/2 the flush waits
/// until hyper's send task has taken it, so that at most one chunk waits
/// inside hyper while the next one is coalescing here.
async fn send_chunk(shared: &Shared, chunk: &[u8]) -> io::Result<()> {
    let mut rest = chunk;
    while !rest.is_empty() {
        let n = poll_fn(|cx| poll_io(shared, cx, |io, cx| io.poll_write(cx, rest))).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        rest = rest.get(n..).unwrap_or_default();
    }
    poll_fn(|cx| poll_io(shared, cx, |io, cx| io.poll_flush(cx))).await
}

/// Polls the upgraded connection for the pump, which a reset also wakes.
fn poll_io<T>(
    shared: &Shared,
    cx: &mut Context<'_>,
    op: impl FnOnce(
        Pin<&mut hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>,
        &mut Context<'_>,
    ) -> Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    shared.wakers.body.register(cx.waker());
    let out = ready!(shared.poll_upgraded(cx, op));
    Poll::Ready(out)
}
