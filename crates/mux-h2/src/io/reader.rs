//! The reading half: DATA frames of the incoming body, or the upgraded
//! connection.

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{ready, Context, Poll},
};

use bytes::{Buf, Bytes};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt};
use hyper::body::Body;
use tokio::io::{AsyncRead, ReadBuf};

use super::shared::{drain_in_background, Shared};
use crate::error::{incoming_error, BoxError};

/// The incoming body of a body-mode tunnel, whatever its type: hyper's
/// [`Incoming`](hyper::body::Incoming) on the client and under a plain hyper server, a framework's
/// body type (axum's `Body`) under a framework.
type InBody = UnsyncBoxBody<Bytes, BoxError>;

pub(super) enum ReadInner {
    Body {
        // A mutex only to make the reader `Sync` whatever the body type;
        // it is reached with `get_mut`, never locked.
        body: Mutex<InBody>,
        chunk: Bytes,
        // The body has ended; it is not polled again.
        ended: bool,
    },
    Upgraded,
    /// After a reset, so the incoming body is released at once.
    Released,
}

/// The reading half of a tunnel: the incoming body's DATA frames (trailers
/// are ignored), or the upgraded connection.
///
/// A read takes every DATA frame already received, as far as the buffer
/// allows, rather than one frame: hyper counts small frames held unread
/// against its flood guard, and an echo of one frame per read would send
/// as many small frames back.
///
/// A peer's `RST_STREAM` fails reads with [`StreamError::Reset`](mux_core::StreamError::Reset)
/// (`remote: true`, `ConnectionReset`) and a lost connection with
/// [`StreamError::ConnectionClosed`](mux_core::StreamError::ConnectionClosed).
pub struct TunnelReader {
    pub(super) shared: Arc<Shared>,
    inner: ReadInner,
    // An error met after a read had already filled part of the buffer, or
    // one waiting for the connection's end to explain it: the next read
    // returns it.
    deferred: Option<io::Error>,
}

tunnel_half!(TunnelReader, "reader");

impl TunnelReader {
    pub(super) fn new(shared: Arc<Shared>, inner: ReadInner) -> Self {
        Self {
            shared,
            inner,
            deferred: None,
        }
    }
}

impl AsyncRead for TunnelReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.shared.wakers.read.register(cx.waker());
        if let Some(err) = this.shared.reset_error() {
            this.inner = ReadInner::Released;
            return Poll::Ready(Err(err));
        }
        if this.deferred.is_some() {
            let err = ready!(this.shared.poll_read_failed(cx, &mut this.deferred));
            return Poll::Ready(Err(err));
        }
        let start = buf.filled().len();
        let polled = match &mut this.inner {
            ReadInner::Body { body, chunk, ended } => {
                let body = body.get_mut().unwrap_or_else(PoisonError::into_inner);
                poll_read_body(body, chunk, ended, cx, buf)
            }
            ReadInner::Upgraded => poll_read_upgraded(&this.shared, cx, buf),
            // Only entered together with a reset, handled above.
            ReadInner::Released => Poll::Ready(Ok(())),
        };
        match polled {
            Poll::Ready(Err(err)) => {
                this.deferred = Some(err);
                if buf.filled().len() == start {
                    let err = ready!(this.shared.poll_read_failed(cx, &mut this.deferred));
                    return Poll::Ready(Err(err));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl Drop for TunnelReader {
    fn drop(&mut self) {
        // In body mode this side's stream lives while the incoming body
        // does (hyper's pipe task releases its sending handle once it has
        // queued END_STREAM); an upgraded tunnel drains from `Shared`'s drop.
        if !self.shared.drains_on_drop() {
            return;
        }
        if let ReadInner::Body { body, .. } =
            std::mem::replace(&mut self.inner, ReadInner::Released)
        {
            let mut body = body.into_inner().unwrap_or_else(PoisonError::into_inner);
            drain_in_background(self.shared.kind, async move {
                while let Some(Ok(_)) = body.frame().await {}
            });
        }
    }
}

/// Fills `buf` from the frames already received; `Pending` only when there
/// was none. On an error, `buf` may hold what came before it.
fn poll_read_body(
    body: &mut InBody,
    chunk: &mut Bytes,
    ended: &mut bool,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let start = buf.filled().len();
    while buf.remaining() > 0 {
        if !chunk.is_empty() {
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(chunk.get(..n).unwrap_or_default());
            chunk.advance(n);
            continue;
        }
        if *ended {
            break;
        }
        // hyper releases flow-control window as each frame is polled, so at
        // most one DATA frame waits here in `chunk`.
        match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Pending if buf.filled().len() == start => return Poll::Pending,
            Poll::Pending => break,
            Poll::Ready(None) => *ended = true,
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    *chunk = data;
                }
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(incoming_error(e))),
        }
    }
    Poll::Ready(Ok(()))
}

/// Fills `buf` from what the upgraded connection has already received;
/// `Pending` only when there was nothing. On an error, `buf` may hold what
/// came before it.
fn poll_read_upgraded(
    shared: &Shared,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let start = buf.filled().len();
    while buf.remaining() > 0 {
        let before = buf.filled().len();
        match shared.poll_upgraded(cx, |io, cx| io.poll_read(cx, buf)) {
            Poll::Pending if buf.filled().len() == start => return Poll::Pending,
            Poll::Pending => break,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            // End of stream: nothing more will come.
            Poll::Ready(Ok(())) if buf.filled().len() == before => break,
            Poll::Ready(Ok(())) => {}
        }
    }
    Poll::Ready(Ok(()))
}
