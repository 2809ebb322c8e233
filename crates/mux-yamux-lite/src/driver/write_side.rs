//! The transport's write side, with the layout that encodes frames for it.
//!
//! The driver writes what the session frames, through the write queue. A
//! short answer may instead leave from the task that wrote it
//! ([`Link::try_send_now`](super::Link::try_send_now)), when nothing else
//! waits to be written ([`WriteSide::write_direct`]). Both paths hold this
//! lock while writing, and the session frames nothing while a direct frame
//! is written, so the bytes on the wire keep the session's order.
//!
//! Lock order: this lock, then the state's. Handles only `try_lock` it, so
//! a writer never waits behind the driver's syscall; it queues instead.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncWrite, WriteHalf};

use super::write_queue::WriteQueue;
use crate::wire::Layout;

/// What became of a direct write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirectWrite {
    /// The frame is on the transport, flushed.
    Written,
    /// The transport took part of it, or none: the rest is queued (copied)
    /// for the driver, which must be woken to write and flush it.
    Queued,
}

/// The write half of the transport and the driver's output queue.
pub(crate) struct WriteSide {
    /// `None` once the driver has ended: the transport is dropped with the
    /// driver's read half, whatever handles still hold this.
    io: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    pub(super) out: WriteQueue,
    /// Bytes went to the transport since its last completed flush. An idle
    /// turn skips the flush otherwise: through `tokio::io::split` even a
    /// no-op flush takes a lock.
    flush_owed: bool,
    layout: Box<dyn Layout>,
}

impl std::fmt::Debug for WriteSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteSide")
            .field("queued", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl WriteSide {
    pub(crate) fn new<T: AsyncWrite + Send + 'static>(
        io: WriteHalf<T>,
        layout: Box<dyn Layout>,
    ) -> Self {
        let vectored = io.is_write_vectored();
        Self {
            io: Some(Box::pin(io)),
            out: WriteQueue::new(vectored),
            flush_owed: false,
            layout,
        }
    }

    /// How frames are encoded for this transport.
    pub(super) fn layout(&self) -> &dyn Layout {
        &*self.layout
    }

    /// Queues the encoding of `frame`.
    pub(super) fn push(&mut self, frame: crate::frame::Frame) {
        self.out.push(frame, &*self.layout);
    }

    /// The transport, while the driver runs.
    fn io(&mut self) -> io::Result<Pin<&mut (dyn AsyncWrite + Send)>> {
        match &mut self.io {
            Some(io) => Ok(io.as_mut()),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Drops the write half; the driver calls it as it ends.
    pub(super) fn close(&mut self) {
        self.io = None;
        self.out = WriteQueue::new(false);
    }

    /// Whether a frame written now would be the next bytes on the wire:
    /// nothing is queued ahead of it.
    pub(super) fn is_idle(&self) -> bool {
        self.out.is_empty()
    }

    /// Writes one DATA frame, `head` then `payload`, from the caller's
    /// buffers; whatever the transport does not take at once is copied into
    /// the queue. The caller has framed it with `Session::frame_now`
    /// after checking [`is_idle`](Self::is_idle) under this lock, so it is
    /// the next frame in the session's order. The transport may register
    /// the caller's waker; on [`DirectWrite::Queued`] the driver must be woken
    /// to register its own.
    pub(super) fn write_direct(
        &mut self,
        cx: &mut Context<'_>,
        head: &[u8],
        payload: &[u8],
    ) -> io::Result<DirectWrite> {
        let total = head.len().saturating_add(payload.len());
        let mut sent = 0usize;
        while sent < total {
            let (h, p) = unsent(head, payload, sent);
            let slices = [IoSlice::new(h), IoSlice::new(p)];
            match self.io()?.poll_write_vectored(cx, &slices) {
                Poll::Ready(Ok(0)) => return Err(write_zero()),
                Poll::Ready(Ok(n)) => sent = sent.saturating_add(n),
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        self.flush_owed |= sent > 0;
        if sent < total {
            let (h, p) = unsent(head, payload, sent);
            self.out.push_bytes(h);
            self.out.push_bytes(p);
            return Ok(DirectWrite::Queued);
        }
        match self.io()?.poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.flush_owed = false;
                Ok(DirectWrite::Written)
            }
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(DirectWrite::Queued),
        }
    }

    /// Writes queued output until the transport stops taking it, then
    /// flushes. Returns how many bytes were written.
    pub(super) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> io::Result<usize> {
        let Some(io) = &mut self.io else {
            return Ok(0);
        };
        let mut written = 0usize;
        while !self.out.is_empty() {
            match self.out.poll_write(io.as_mut(), cx) {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) => return Err(write_zero()),
                Poll::Ready(Ok(n)) => written = written.saturating_add(n),
                Poll::Ready(Err(e)) => return Err(e),
            }
        }
        self.flush_owed |= written > 0;
        if self.flush_owed {
            // A flush that is pending is retried on the next turn.
            match io.as_mut().poll_flush(cx) {
                Poll::Ready(Ok(())) => self.flush_owed = false,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {}
            }
        }
        Ok(written)
    }

    pub(super) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

fn write_zero() -> io::Error {
    io::Error::new(io::ErrorKind::WriteZero, "transport accepted no bytes")
}

/// The parts of `head` and `payload` after the first `sent` bytes.
fn unsent<'a>(head: &'a [u8], payload: &'a [u8], sent: usize) -> (&'a [u8], &'a [u8]) {
    let h = head.get(sent..).unwrap_or_default();
    let p = payload
        .get(sent.saturating_sub(head.len())..)
        .unwrap_or_default();
    (h, p)
}
