//! A byte queue made of chunks, used for both directions of a stream.
//!
//! Small pieces are copied into a growing tail; large ones are kept as the
//! `Bytes` they arrived as. Sending: many tiny writes still leave as a few
//! frames, while a large write (copied by the stream handle before it takes
//! the connection lock) is framed without another copy. Receiving: a large
//! DATA payload is kept as sliced from the read buffer, while tiny payloads
//! are copied, so a flood of 1-byte frames costs bytes, not a queue entry
//! each, and cannot pin read buffers.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// A queue emptied by taking at least this many bytes at once keeps its
/// storage for the next chunk.
const KEEP_STORAGE_FROM: usize = 16 * 1024;

/// The queue. An idle stream has two of these, so the storage is boxed and
/// allocated on first use: an unused queue is one pointer.
#[derive(Debug, Default)]
pub(crate) struct Chunks(Option<Box<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    /// Sealed chunks, oldest first; they come before `tail`.
    chunks: VecDeque<Bytes>,
    /// The newest bytes, still growing.
    tail: BytesMut,
    len: usize,
}

impl Chunks {
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.len)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn inner(&mut self) -> &mut Inner {
        self.0.get_or_insert_with(Box::default)
    }

    /// Copies `data` onto the end.
    pub(crate) fn extend_from_slice(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let q = self.inner();
        q.tail.extend_from_slice(data);
        q.len = q.len.saturating_add(data.len());
    }

    /// Appends `chunk` without copying it.
    pub(crate) fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let q = self.inner();
        if !q.tail.is_empty() {
            q.chunks.push_back(q.tail.split().freeze());
        }
        q.len = q.len.saturating_add(chunk.len());
        q.chunks.push_back(chunk);
    }

    /// Takes up to `max` bytes from the front, without copying; the result
    /// may be shorter than `max` where a chunk ends.
    pub(crate) fn take(&mut self, max: usize) -> Bytes {
        let Some(q) = self.0.as_mut() else {
            return Bytes::new();
        };
        let taken = match q.chunks.front_mut() {
            Some(front) if front.len() > max => front.split_to(max),
            Some(_) => q.chunks.pop_front().unwrap_or_default(),
            None => {
                let n = max.min(q.tail.len());
                q.tail.split_to(n).freeze()
            }
        };
        q.len = q.len.saturating_sub(taken.len());
        // An idle stream should hold no storage, but a bulk flow, which
        // empties the queue after every large chunk, should not allocate it
        // again for every frame.
        if q.len == 0 && taken.len() < KEEP_STORAGE_FROM {
            self.0 = None;
        }
        taken
    }

    /// Drops everything and releases the memory.
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_leave_in_the_order_they_came_whatever_the_chunking() {
        let mut buf = Chunks::default();
        buf.extend_from_slice(b"ab");
        buf.push(Bytes::from_static(b"cdef"));
        buf.extend_from_slice(b"g");
        buf.push(Bytes::new());
        assert_eq!(buf.len(), 7);
        let mut out = Vec::new();
        while !buf.is_empty() {
            out.extend_from_slice(&buf.take(3));
        }
        assert_eq!(out, b"abcdefg");
        assert_eq!(buf.len(), 0);
    }

    #[test]
    fn a_large_chunk_is_sliced_not_copied() {
        let chunk = Bytes::from(vec![1u8; 100]);
        let ptr = chunk.as_ptr();
        let mut buf = Chunks::default();
        buf.push(chunk);
        let first = buf.take(60);
        assert_eq!(first.as_ptr(), ptr);
        assert_eq!(buf.take(60).len(), 40);
        assert!(buf.is_empty());
    }
}
