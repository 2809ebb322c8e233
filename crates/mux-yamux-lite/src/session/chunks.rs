//! A byte queue made of chunks, used for both directions of a stream.
//!
//! Small pieces are copied into a growing tail; large ones are kept as the
//! `Bytes` they arrived as. Sending: many tiny writes still leave as a few
//! frames, while a large write (copied by the stream handle before it takes
//! the connection lock) is framed without another copy. Receiving: a large
//! DATA payload is kept as sliced from the read buffer, while tiny payloads
//! are copied, so a flood of 1-byte frames costs bytes, not a queue entry
//! each, and cannot pin read buffers. A slice keeps its whole read buffer
//! alive, so the queue counts the bytes it holds by reference, and the
//! driver has them copied out when the buffers they keep outweigh them
//! (`driver/read_buffer.rs`). Storage of the queue's own holds at most
//! twice its bytes.
//!
//! An emptied queue gives its storage to the session's [`Spares`] rather
//! than to the allocator: an idle stream holds no storage, yet a stream
//! carrying small messages reuses the same few buffers instead of
//! allocating per message.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// A queue emptied by taking at least this many bytes at once keeps its
/// storage for the next chunk.
const KEEP_STORAGE_FROM: usize = 16 * 1024;
/// Storage kept in [`Spares`] per session.
const MAX_SPARES: usize = 16;
/// Storage whose tail grew past this many bytes goes back to the allocator,
/// so spares cost a session at most `MAX_SPARES` times this.
const MAX_SPARE_TAIL: usize = 4 * 1024;

/// The queue. An idle stream has two of these, so the storage is boxed and
/// allocated on first use: an unused queue is one pointer.
#[derive(Debug, Default)]
pub(crate) struct Chunks(Option<Box<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    /// Sealed chunks, oldest first; they come before `tail`.
    chunks: VecDeque<Chunk>,
    /// The newest bytes, still growing.
    tail: BytesMut,
    len: usize,
    /// Bytes of `chunks` kept as pushed, whose storage may be shared.
    by_reference: usize,
    /// The largest the tail's storage was seen to be.
    tail_size: usize,
}

/// A sealed chunk, and whether it is kept as pushed (its storage may be a
/// larger buffer it shares) or is storage of its own, at most twice its
/// length.
#[derive(Debug)]
struct Chunk {
    bytes: Bytes,
    by_reference: bool,
}

/// Emptied queue storage, kept by the session for its streams' next use.
// Boxed because queues hold their storage boxed: unboxing it here and
// boxing it again on reuse would allocate, which is what this avoids.
#[allow(clippy::vec_box)]
#[derive(Debug, Default)]
pub(crate) struct Spares(Vec<Box<Inner>>);

impl Spares {
    /// Lets go of every spare, for an idle connection.
    pub(crate) fn clear(&mut self) {
        self.0 = Vec::new();
    }

    fn take(&mut self) -> Box<Inner> {
        self.0.pop().unwrap_or_default()
    }

    fn give(&mut self, inner: Box<Inner>) {
        // The tail may still be shared with the bytes just taken; the next
        // extend reclaims it in place once they are dropped.
        if self.0.len() < MAX_SPARES && inner.tail_size <= MAX_SPARE_TAIL && inner.chunks.is_empty()
        {
            self.0.push(inner);
        }
    }
}

impl Chunks {
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.len)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn inner(&mut self, spares: &mut Spares) -> &mut Inner {
        self.0.get_or_insert_with(|| spares.take())
    }

    /// Copies `data` onto the end.
    pub(crate) fn extend_from_slice(&mut self, data: &[u8], spares: &mut Spares) {
        if data.is_empty() {
            return;
        }
        let q = self.inner(spares);
        crate::copy::extend(&mut q.tail, data);
        q.len = q.len.saturating_add(data.len());
        q.tail_size = q
            .tail_size
            .max(q.tail.len().saturating_add(q.tail.capacity()));
    }

    /// Bytes kept as pushed, not copied: they may keep a larger buffer
    /// alive.
    pub(crate) fn by_reference(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.by_reference)
    }

    /// Appends `chunk`, a buffer of its own, without copying it.
    pub(crate) fn push(&mut self, chunk: Bytes, spares: &mut Spares) {
        if chunk.is_empty() {
            return;
        }
        let q = self.inner(spares);
        if !q.tail.is_empty() {
            // The sealed bytes share the tail's storage, which the next
            // bytes keep filling: many small writes around large ones
            // allocate nothing more.
            let bytes = q.tail.split().freeze();
            q.chunks.push_back(Chunk::own(bytes));
        }
        q.len = q.len.saturating_add(chunk.len());
        q.chunks.push_back(Chunk::own(chunk));
    }

    /// Appends `chunk`, a slice of a larger buffer, without copying it, and
    /// counts it as held by reference. Whatever the peer sends, storage of
    /// the queue's own stays within twice its bytes.
    pub(crate) fn push_by_reference(&mut self, chunk: Bytes, spares: &mut Spares) {
        if chunk.is_empty() {
            return;
        }
        let q = self.inner(spares);
        q.seal_tail();
        q.len = q.len.saturating_add(chunk.len());
        q.by_reference = q.by_reference.saturating_add(chunk.len());
        q.chunks.push_back(Chunk {
            bytes: chunk,
            by_reference: true,
        });
    }

    /// Replaces every chunk kept as pushed with a copy of its own, so the
    /// buffers it was a slice of can be freed.
    pub(crate) fn copy_out_references(&mut self) {
        let Some(q) = self.0.as_mut().filter(|q| q.by_reference > 0) else {
            return;
        };
        for chunk in q.chunks.iter_mut().filter(|c| c.by_reference) {
            chunk.bytes = exact_copy(&chunk.bytes);
            chunk.by_reference = false;
        }
        q.by_reference = 0;
    }

    /// Takes up to `max` bytes from the front, without copying; the result
    /// may be shorter than `max` where a chunk ends.
    pub(crate) fn take(&mut self, max: usize, spares: &mut Spares) -> Bytes {
        let Some(q) = self.0.as_mut() else {
            return Bytes::new();
        };
        let (taken, by_reference) = match q.chunks.front_mut() {
            Some(front) if front.bytes.len() > max => {
                (front.bytes.split_to(max), front.by_reference)
            }
            Some(_) => q
                .chunks
                .pop_front()
                .map_or((Bytes::new(), false), |c| (c.bytes, c.by_reference)),
            None => {
                let n = max.min(q.tail.len());
                (q.tail.split_to(n).freeze(), false)
            }
        };
        q.len = q.len.saturating_sub(taken.len());
        if by_reference {
            q.by_reference = q.by_reference.saturating_sub(taken.len());
        }
        // An idle stream should hold no storage, but a bulk flow, which
        // empties the queue after every large chunk, should not allocate it
        // again for every frame.
        if q.len == 0 && taken.len() < KEEP_STORAGE_FROM {
            if let Some(inner) = self.0.take() {
                spares.give(inner);
            }
        }
        taken
    }

    /// Drops everything and releases the memory.
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
}

impl Inner {
    /// Moves the tail's bytes into a chunk of their own, keeping every
    /// sealed chunk's storage within twice its length: a half-empty tail
    /// is copied out and keeps its storage for what comes next; a fuller
    /// one is split off whole, and the next bytes start new storage (a
    /// split tail would grow into storage as large as the old one, however
    /// few bytes it then holds).
    fn seal_tail(&mut self) {
        if self.tail.is_empty() {
            return;
        }
        let bytes = if self.tail.capacity() > self.tail.len().saturating_mul(2) {
            let copy = exact_copy(&self.tail);
            self.tail.clear();
            copy
        } else {
            std::mem::take(&mut self.tail).freeze()
        };
        self.chunks.push_back(Chunk::own(bytes));
    }
}

impl Chunk {
    fn own(bytes: Bytes) -> Self {
        Self {
            bytes,
            by_reference: false,
        }
    }
}

/// `src` in storage of exactly its length.
fn exact_copy(src: &[u8]) -> Bytes {
    let mut copy = BytesMut::with_capacity(src.len());
    crate::copy::extend(&mut copy, src);
    copy.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_leave_in_the_order_they_came_whatever_the_chunking() {
        let mut spares = Spares::default();
        let mut buf = Chunks::default();
        buf.extend_from_slice(b"ab", &mut spares);
        buf.push(Bytes::from_static(b"cdef"), &mut spares);
        buf.extend_from_slice(b"g", &mut spares);
        buf.push(Bytes::new(), &mut spares);
        assert_eq!(buf.len(), 7);
        let mut out = Vec::new();
        while !buf.is_empty() {
            out.extend_from_slice(&buf.take(3, &mut spares));
        }
        assert_eq!(out, b"abcdefg");
        assert_eq!(buf.len(), 0);
    }

    #[test]
    fn a_large_chunk_is_sliced_not_copied() {
        let chunk = Bytes::from(vec![1u8; 100]);
        let ptr = chunk.as_ptr();
        let mut spares = Spares::default();
        let mut buf = Chunks::default();
        buf.push(chunk, &mut spares);
        let first = buf.take(60, &mut spares);
        assert_eq!(first.as_ptr(), ptr);
        assert_eq!(buf.take(60, &mut spares).len(), 40);
        assert!(buf.is_empty());
    }

    #[test]
    fn small_messages_reuse_spare_storage_and_idle_queues_hold_none() {
        let mut spares = Spares::default();
        let mut a = Chunks::default();
        a.extend_from_slice(b"hello", &mut spares);
        let tail = a.0.as_ref().map(|q| q.tail.as_ptr());
        drop(a.take(100, &mut spares));
        assert!(a.0.is_none(), "an idle queue holds storage");
        assert_eq!(spares.0.len(), 1);
        // Another stream's next message lands in the same buffer.
        let mut b = Chunks::default();
        b.extend_from_slice(b"world", &mut spares);
        assert_eq!(b.0.as_ref().map(|q| q.tail.as_ptr()), tail);
        assert!(spares.0.is_empty());
        // Storage that grew large is not kept.
        b.extend_from_slice(&[0u8; 2 * MAX_SPARE_TAIL], &mut spares);
        while !b.is_empty() {
            drop(b.take(1000, &mut spares));
        }
        assert!(spares.0.is_empty());
    }
}
