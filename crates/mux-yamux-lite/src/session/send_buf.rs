//! A stream's unsent bytes: a queue of chunks.
//!
//! Small writes are copied into a growing tail, so many tiny writes still
//! leave as a few frames. Large writes arrive as their own `Bytes` (the
//! stream handle copies them before taking the connection lock), and a
//! DATA frame then carries such a chunk, or a slice of it, without another
//! copy.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

#[derive(Debug, Default)]
pub(crate) struct SendBuf {
    /// Sealed chunks, oldest first; they come before `tail`.
    chunks: VecDeque<Bytes>,
    /// The newest bytes, still growing.
    tail: BytesMut,
    len: usize,
}

impl SendBuf {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `data` onto the end.
    pub(crate) fn extend_from_slice(&mut self, data: &[u8]) {
        self.tail.extend_from_slice(data);
        self.len = self.len.saturating_add(data.len());
    }

    /// Appends `chunk` without copying it.
    pub(crate) fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
        self.len = self.len.saturating_add(chunk.len());
        self.chunks.push_back(chunk);
    }

    /// Takes up to `max` bytes from the front, without copying; the result
    /// may be shorter than `max` where a chunk ends.
    pub(crate) fn take(&mut self, max: usize) -> Bytes {
        let taken = match self.chunks.front_mut() {
            Some(front) if front.len() > max => front.split_to(max),
            Some(_) => self.chunks.pop_front().unwrap_or_default(),
            None => {
                let n = max.min(self.tail.len());
                self.tail.split_to(n).freeze()
            }
        };
        self.len = self.len.saturating_sub(taken.len());
        taken
    }

    /// Drops everything and releases the memory.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_leave_in_the_order_they_came_whatever_the_chunking() {
        let mut buf = SendBuf::default();
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
        let mut buf = SendBuf::default();
        buf.push(chunk);
        let first = buf.take(60);
        assert_eq!(first.as_ptr(), ptr);
        assert_eq!(buf.take(60).len(), 40);
        assert!(buf.is_empty());
    }
}
