//! Reused buffers for the payloads of large writes.
//!
//! A write of 8 KiB or more is copied into a buffer of its own, outside the
//! lock, and the driver drops that buffer once the frame is on the wire.
//! Asking the allocator for a fresh 64 KiB per write and freeing it moments
//! later on another thread makes it hand out freshly mapped pages again
//! and again. So the driver gives written payloads back here, under the
//! lock it takes anyway, and the next large write takes one.
//!
//! Limits: at most [`MAX_POOLED`] buffers of at most [`MAX_CAPACITY`] bytes
//! each, [`MAX_POOLED_BYTES`] in all, and the driver empties the pool once
//! the connection has been quiet for the read buffer's idle spell.
//!
//! The bounds are sized for the connection's send budget
//! (`Config::connection_send_buffer`, 1 MiB by default), which many
//! concurrent writers keep full of payloads of many sizes; what the pool
//! saves is in docs/DECISIONS.md and `tests/allocations.rs` holds it.

use bytes::{Bytes, BytesMut};

/// Buffers kept for reuse.
pub(crate) const MAX_POOLED: usize = 32;
/// Bytes kept for reuse, counted by capacity.
pub(crate) const MAX_POOLED_BYTES: usize = 2 * 1024 * 1024;
/// Larger buffers are not kept: they would pin memory for rare writes.
pub(crate) const MAX_CAPACITY: usize = 256 * 1024;
/// Writes at least this long are copied before the connection lock is
/// taken, into a buffer from this pool, so a large copy never makes the
/// driver wait for the lock.
pub(crate) const COPY_OUTSIDE_LOCK: usize = 8 * 1024;
/// Smaller buffers are not kept: they cannot serve a write large enough to
/// take one.
const MIN_CAPACITY: usize = COPY_OUTSIDE_LOCK;

#[derive(Debug, Default)]
pub(crate) struct PayloadPool {
    free: Vec<BytesMut>,
}

impl PayloadPool {
    /// An empty buffer with room for `len` bytes, reused if one fits.
    pub(crate) fn take(&mut self, len: usize) -> BytesMut {
        while let Some(mut buf) = self.free.pop() {
            if buf.try_reclaim(len) {
                return buf;
            }
        }
        BytesMut::with_capacity(len)
    }

    /// Keeps the written payloads nothing else refers to, up to the limits;
    /// `spent` is left empty either way.
    pub(crate) fn give_back(&mut self, spent: &mut Vec<Bytes>) {
        let mut kept = self.bytes();
        for payload in spent.drain(..) {
            if self.free.len() >= MAX_POOLED {
                continue;
            }
            let Ok(mut buf) = payload.try_into_mut() else {
                continue;
            };
            buf.clear();
            // `try_reclaim` succeeds exactly when the whole allocation is
            // at least that large (nothing else refers to it).
            let fits = buf.try_reclaim(MIN_CAPACITY)
                && !buf.try_reclaim(MAX_CAPACITY.saturating_add(1))
                && kept.saturating_add(buf.capacity()) <= MAX_POOLED_BYTES;
            if fits {
                kept = kept.saturating_add(buf.capacity());
                self.free.push(buf);
            }
        }
    }

    /// Lets go of every kept buffer.
    pub(crate) fn clear(&mut self) {
        self.free = Vec::new();
    }

    /// The capacity kept, in bytes.
    fn bytes(&self) -> usize {
        self.free.iter().map(BytesMut::capacity).sum()
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn payload(len: usize) -> Bytes {
        let mut buf = BytesMut::with_capacity(len);
        buf.extend_from_slice(&vec![1u8; len]);
        buf.freeze()
    }

    #[test]
    fn a_written_payload_comes_back_for_the_next_write() {
        let mut pool = PayloadPool::default();
        let sent = payload(64 * 1024);
        let addr = sent.as_ptr();
        pool.give_back(&mut vec![sent]);
        let buf = pool.take(64 * 1024);
        assert_eq!(buf.as_ptr(), addr);
        assert!(buf.is_empty());
        assert!(buf.capacity() >= 64 * 1024);
    }

    #[test]
    fn shared_tiny_or_huge_payloads_are_not_kept() {
        let mut pool = PayloadPool::default();
        let shared = payload(64 * 1024);
        let clone = shared.clone();
        pool.give_back(&mut vec![shared, payload(100), payload(MAX_CAPACITY + 1)]);
        assert!(pool.free.is_empty());
        drop(clone);
    }

    #[test]
    fn the_pool_is_bounded_and_can_be_emptied() {
        let mut pool = PayloadPool::default();
        let mut spent: Vec<Bytes> = (0..MAX_POOLED + 3).map(|_| payload(MIN_CAPACITY)).collect();
        pool.give_back(&mut spent);
        assert!(spent.is_empty());
        assert_eq!(pool.free.len(), MAX_POOLED);
        pool.clear();
        assert!(pool.free.is_empty());
    }

    #[test]
    fn the_pool_is_bounded_in_bytes() {
        let mut pool = PayloadPool::default();
        let mut spent: Vec<Bytes> = (0..MAX_POOLED).map(|_| payload(MAX_CAPACITY)).collect();
        pool.give_back(&mut spent);
        let most = MAX_POOLED_BYTES / MAX_CAPACITY;
        assert_eq!(pool.free.len(), most);
        assert!(pool.bytes() <= MAX_POOLED_BYTES);
        let _ = pool.take(MAX_CAPACITY);
        assert_eq!(pool.free.len(), most - 1);
        pool.give_back(&mut vec![payload(MAX_CAPACITY)]);
        assert_eq!(pool.free.len(), most);
    }

    #[test]
    fn a_buffer_too_small_for_the_write_is_replaced() {
        let mut pool = PayloadPool::default();
        pool.give_back(&mut vec![payload(MIN_CAPACITY)]);
        let buf = pool.take(64 * 1024);
        assert!(buf.capacity() >= 64 * 1024);
        assert!(pool.free.is_empty());
        assert_eq!(pool.bytes(), 0);
    }
}
