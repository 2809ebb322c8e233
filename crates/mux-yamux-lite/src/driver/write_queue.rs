//! The driver's outgoing bytes.
//!
//! Control frames and small DATA frames are encoded into one scratch
//! buffer; large DATA payloads are queued by reference (they are already
//! `Bytes` split off the stream's send buffer), and everything goes out in
//! one vectored write. Payload bytes are therefore copied once on the way
//! out (application buffer into the stream's send buffer), not twice.
//! Transports without vectored writes get the payloads copied into the
//! scratch buffer instead, so they still see few, large writes.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncWrite;

use crate::frame::Frame;
use crate::wire::lite;

/// Payloads shorter than this are copied: an iovec per tiny frame costs
/// more than the copy.
const COPY_BELOW: usize = 4 * 1024;
/// Slices handed to one vectored write (Linux's IOV_MAX is 1024; 64 is
/// plenty to cover the high-water mark with 64 KiB frames).
const MAX_SLICES: usize = 64;

#[derive(Debug)]
pub(super) struct WriteQueue {
    scratch: BytesMut,
    chunks: VecDeque<Bytes>,
    /// Bytes queued in `scratch` and `chunks` together.
    len: usize,
    vectored: bool,
}

impl WriteQueue {
    pub(super) fn new(vectored: bool) -> Self {
        Self {
            scratch: BytesMut::new(),
            chunks: VecDeque::new(),
            len: 0,
            vectored,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the wire encoding of `frame`.
    pub(super) fn push(&mut self, frame: &Frame) {
        let before = self.scratch.len();
        let payload = lite::encode_head(frame, &mut self.scratch);
        let head = self.scratch.len().saturating_sub(before);
        let body = match payload {
            Some(p) if self.vectored && p.len() >= COPY_BELOW => {
                self.seal();
                self.chunks.push_back(p.clone());
                p.len()
            }
            Some(p) => {
                self.scratch.extend_from_slice(p);
                p.len()
            }
            None => 0,
        };
        self.len = self.len.saturating_add(head).saturating_add(body);
    }

    /// Moves what `scratch` holds into `chunks`, keeping the order.
    fn seal(&mut self) {
        if !self.scratch.is_empty() {
            self.chunks.push_back(self.scratch.split().freeze());
        }
    }

    /// Writes as much as the transport takes in one call. `Ok(0)` only
    /// when the queue is empty.
    pub(super) fn poll_write<T: AsyncWrite + ?Sized>(
        &mut self,
        io: Pin<&mut T>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        self.seal();
        // One chunk (the usual case for small frames, which share the
        // scratch buffer) needs no slice array.
        let n = if self.vectored && self.chunks.len() > 1 {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut used = 0usize;
            for (slot, chunk) in slices.iter_mut().zip(&self.chunks) {
                *slot = IoSlice::new(chunk);
                used = used.saturating_add(1);
            }
            let slices = slices.get(..used).unwrap_or_default();
            if slices.is_empty() {
                return Poll::Ready(Ok(0));
            }
            ready!(io.poll_write_vectored(cx, slices))?
        } else {
            let Some(first) = self.chunks.front() else {
                return Poll::Ready(Ok(0));
            };
            ready!(io.poll_write(cx, first))?
        };
        self.consume(n);
        Poll::Ready(Ok(n))
    }

    fn consume(&mut self, mut n: usize) {
        self.len = self.len.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if n < front.len() {
                front.advance(n);
                return;
            }
            n = n.saturating_sub(front.len());
            self.chunks.pop_front();
        }
    }
}
