//! The driver's outgoing bytes.
//!
//! Control frames and small DATA frames are encoded into one scratch
//! buffer, reused for the connection's life; large DATA payloads are
//! queued by reference (they are already
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
use crate::payload_pool::MAX_POOLED;
use crate::wire::Layout;

/// Payloads shorter than this are copied: an iovec per tiny frame costs
/// more than the copy.
const COPY_BELOW: usize = 4 * 1024;
/// Slices handed to one vectored write (Linux's IOV_MAX is 1024; 64 is
/// plenty to cover the high-water mark with 64 KiB frames).
const MAX_SLICES: usize = 64;
/// Written bytes at the front of the scratch buffer are dropped once they
/// reach this much (the queue never emptied in between).
const COMPACT_FROM: usize = 64 * 1024;

/// A run of queued bytes: encoded in `scratch`, or a payload by reference.
#[derive(Debug)]
enum Piece {
    Scratch { start: usize, end: usize },
    Payload(Bytes),
}

/// The queue. `scratch` is never split into `Bytes` (that would allocate a
/// shared header per split, and a new buffer whenever the last one is still
/// queued); pieces refer to ranges of it, and it is cleared, keeping its
/// capacity, each time the queue empties. So steady traffic allocates
/// nothing here.
#[derive(Debug)]
pub(super) struct WriteQueue {
    scratch: BytesMut,
    /// Where the bytes of `scratch` not yet in a piece begin.
    sealed_to: usize,
    pieces: VecDeque<Piece>,
    /// Bytes queued in `scratch` and `pieces` together.
    len: usize,
    vectored: bool,
    /// Payloads written (or copied into `scratch`), for the driver to give
    /// back to the payload pool; at most [`MAX_POOLED`] are held.
    spent: Vec<Bytes>,
}

impl WriteQueue {
    pub(super) fn new(vectored: bool) -> Self {
        Self {
            scratch: BytesMut::new(),
            sealed_to: 0,
            pieces: VecDeque::new(),
            len: 0,
            vectored,
            spent: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the wire encoding of `frame`; a large DATA payload is queued
    /// as the `Bytes` it is, moved rather than cloned.
    pub(super) fn push(&mut self, frame: Frame, layout: &dyn Layout) {
        let before = self.scratch.len();
        let payload_len = layout
            .encode_head(&frame, &mut self.scratch)
            .map(Bytes::len);
        let head = self.scratch.len().saturating_sub(before);
        let body = match (frame, payload_len) {
            (Frame::Data { payload, .. }, Some(n)) if self.vectored && n >= COPY_BELOW => {
                self.seal();
                self.pieces.push_back(Piece::Payload(payload));
                n
            }
            (Frame::Data { payload, .. }, Some(n)) => {
                crate::copy::extend(&mut self.scratch, &payload);
                if n >= COPY_BELOW {
                    self.spend(payload);
                }
                n
            }
            _ => 0,
        };
        self.len = self.len.saturating_add(head).saturating_add(body);
    }

    /// Appends bytes as they are: the unsent rest of a frame a stream
    /// began writing itself (`WriteSide::write_direct`).
    pub(super) fn push_bytes(&mut self, bytes: &[u8]) {
        crate::copy::extend(&mut self.scratch, bytes);
        self.len = self.len.saturating_add(bytes.len());
    }

    /// Keeps a large payload that has left the queue for the pool (a
    /// written one is empty by now; its buffer is what counts).
    fn spend(&mut self, payload: Bytes) {
        if self.spent.len() < MAX_POOLED {
            self.spent.push(payload);
        }
    }

    /// The written payloads, to give back to the pool.
    pub(super) fn spent(&mut self) -> &mut Vec<Bytes> {
        &mut self.spent
    }

    /// Gives back the storage an empty queue keeps for reuse (a burst of
    /// frames leaves its scratch buffer and piece list large).
    pub(super) fn release_idle_storage(&mut self) {
        self.spent = Vec::new();
        if self.is_empty() {
            self.scratch = BytesMut::new();
            self.sealed_to = 0;
            self.pieces = VecDeque::new();
        }
    }

    /// Turns the unsealed end of `scratch` into a piece, keeping the order.
    fn seal(&mut self) {
        let end = self.scratch.len();
        if end > self.sealed_to {
            self.pieces.push_back(Piece::Scratch {
                start: self.sealed_to,
                end,
            });
            self.sealed_to = end;
        }
    }

    fn bytes_of<'a>(scratch: &'a [u8], piece: &'a Piece) -> &'a [u8] {
        match piece {
            Piece::Scratch { start, end } => scratch.get(*start..*end).unwrap_or_default(),
            Piece::Payload(p) => p,
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
        // One piece (the usual case for small frames, which share the
        // scratch buffer) needs no slice array.
        let n = if self.vectored && self.pieces.len() > 1 {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut used = 0usize;
            for (slot, piece) in slices.iter_mut().zip(&self.pieces) {
                *slot = IoSlice::new(Self::bytes_of(&self.scratch, piece));
                used = used.saturating_add(1);
            }
            let slices = slices.get(..used).unwrap_or_default();
            if slices.is_empty() {
                return Poll::Ready(Ok(0));
            }
            ready!(io.poll_write_vectored(cx, slices))?
        } else {
            let Some(first) = self.pieces.front() else {
                return Poll::Ready(Ok(0));
            };
            ready!(io.poll_write(cx, Self::bytes_of(&self.scratch, first)))?
        };
        self.consume(n);
        Poll::Ready(Ok(n))
    }

    fn consume(&mut self, mut n: usize) {
        self.len = self.len.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.pieces.front_mut() else {
                break;
            };
            let left = match front {
                Piece::Scratch { start, end } => {
                    let take = n.min(end.saturating_sub(*start));
                    *start = start.saturating_add(take);
                    n = n.saturating_sub(take);
                    end.saturating_sub(*start)
                }
                Piece::Payload(p) => {
                    let take = n.min(p.len());
                    p.advance(take);
                    n = n.saturating_sub(take);
                    p.len()
                }
            };
            if left > 0 {
                break;
            }
            if let Some(Piece::Payload(p)) = self.pieces.pop_front() {
                self.spend(p);
            }
        }
        if self.pieces.is_empty() && self.sealed_to == self.scratch.len() {
            self.scratch.clear();
            self.sealed_to = 0;
        } else {
            self.compact();
        }
    }

    /// Drops the written front of `scratch` once it is large, so a
    /// transport that never drains the queue completely cannot make
    /// `scratch` grow without bound.
    fn compact(&mut self) {
        let in_use = self
            .pieces
            .iter()
            .find_map(|p| match p {
                Piece::Scratch { start, .. } => Some(*start),
                Piece::Payload(_) => None,
            })
            .unwrap_or(self.sealed_to);
        if in_use < COMPACT_FROM {
            return;
        }
        self.scratch.advance(in_use);
        self.sealed_to = self.sealed_to.saturating_sub(in_use);
        for piece in &mut self.pieces {
            if let Piece::Scratch { start, end } = piece {
                *start = start.saturating_sub(in_use);
                *end = end.saturating_sub(in_use);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::frame::Flags;
    use crate::wire::lite::{self, Lite};
    use std::task::Waker;

    /// A transport taking at most `per_call` bytes per write.
    struct Trickle {
        out: Vec<u8>,
        per_call: usize,
        vectored: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.per_call);
            self.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut left = self.per_call;
            for b in bufs {
                let n = b.len().min(left);
                self.out.extend_from_slice(&b[..n]);
                left -= n;
            }
            Poll::Ready(Ok(self.per_call - left))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn frame(i: u32) -> Frame {
        match i % 3 {
            0 => Frame::Ping {
                ack: false,
                opaque: i,
            },
            1 => Frame::Data {
                id: i,
                flags: Flags::NONE,
                payload: Bytes::from(vec![i as u8; 10]),
            },
            _ => Frame::Data {
                id: i,
                flags: Flags::NONE,
                payload: Bytes::from(vec![i as u8; 5000]),
            },
        }
    }

    #[test]
    fn bytes_leave_in_order_and_scratch_stays_bounded_when_never_drained() {
        for vectored in [true, false] {
            let mut q = WriteQueue::new(vectored);
            let mut io = Trickle {
                out: Vec::new(),
                per_call: 777,
                vectored,
            };
            let mut cx = Context::from_waker(Waker::noop());
            let mut expected = BytesMut::new();
            let mut max_capacity = 0;
            for i in 0..20_000 {
                // Like the driver: pull while under the high-water mark,
                // and write a little each time, so the queue never empties.
                let f = frame(i);
                lite::encode(&f, &mut expected);
                q.push(f, &Lite::new(64 * 1024));
                while q.len() >= 256 * 1024 {
                    let _ = q.poll_write(Pin::new(&mut io), &mut cx);
                    max_capacity = max_capacity.max(q.scratch.capacity());
                }
                assert!(!q.is_empty());
            }
            while !q.is_empty() {
                let _ = q.poll_write(Pin::new(&mut io), &mut cx);
            }
            assert!(io.out == expected[..], "bytes reordered or lost");
            // About 35 MiB went through; without compaction the scratch
            // buffer would hold all of what was copied into it.
            assert!(
                max_capacity <= 1 << 20,
                "scratch grew to {max_capacity} bytes"
            );
        }
    }
}
