//! The driver's read buffer: fixed-size blocks that are reused once every
//! slice of them has been read.
//!
//! A received DATA payload of 16 KiB or more is handed to its stream as a
//! slice of the block it was read into, so a block stays allocated until
//! every stream has read its part. Allocating a new block whenever the
//! current one fills means asking the allocator for 256 KiB at a time,
//! which it serves from freshly mapped pages and unmaps again on free: the
//! page faults cost more than the copies (at 100 concurrent streams over an
//! in-memory pipe, a third of the CPU time; see `docs/BENCHMARKS.md`).
//! So a full block is retired, not dropped: the buffer keeps a handle to
//! it, and once its last slice is gone, it becomes the next block.
//!
//! Limits: at most [`MAX_RETIRED`] handles are kept (older ones are let
//! go; their memory is then freed by whoever drops the last slice), and
//! once nothing has been read for an idle spell ([`IDLE_TRIM`] to twice
//! that: the check runs on a timer, once per spell), every block is let go, so
//! an idle connection holds no read buffer at all. Trimming waits for that
//! quiet spell because letting go of blocks while traffic flows means
//! faulting in fresh ones a moment later: a single bulk stream keeps three
//! or four blocks in rotation.

use bytes::{Buf, BufMut, BytesMut};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The usual block size; also the most one read asks the transport for.
const BLOCK: usize = 256 * 1024;
/// A read is not started with less room than this; the block is swapped.
const MIN_ROOM: usize = 64 * 1024;
/// Reads that hold no partial frame start at a multiple of this.
const PAGE: usize = 4096;
/// Retired blocks tracked, waiting for their slices to be read.
pub(crate) const MAX_RETIRED: usize = 64;
/// How long nothing must have been read before the blocks are let go.
pub(crate) const IDLE_TRIM: Duration = Duration::from_millis(500);

/// What [`ReadBuffer::trim`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Trim {
    /// The buffer holds no block.
    Nothing,
    /// Blocks are kept because data arrived recently; call again then.
    Later(Instant),
    /// The buffer had been quiet and let go of its blocks.
    Done,
}

#[derive(Debug)]
pub(crate) struct ReadBuffer {
    buf: BytesMut,
    /// `buf` is still the empty initial value, not a block.
    unallocated: bool,
    retired: VecDeque<BytesMut>,
    block: usize,
    /// A read returned data since the last `trim`.
    read_since_trim: bool,
    /// The last `trim` returned [`Trim::Later`]: the next one, an idle
    /// spell later, decides.
    trim_pending: bool,
}

impl ReadBuffer {
    /// A buffer for frames of at most `max_frame` bytes, header included.
    /// A block always holds a whole frame plus [`MIN_ROOM`], so a frame
    /// moved to a fresh block never needs another move.
    pub(crate) fn new(max_frame: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            unallocated: true,
            retired: VecDeque::new(),
            block: BLOCK.max(max_frame.saturating_add(MIN_ROOM)),
            read_since_trim: false,
            trim_pending: false,
        }
    }

    /// The buffered bytes, for decoding.
    pub(crate) fn bytes(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Makes room for the next read: swaps in a reused or new block when
    /// the current one has less than [`MIN_ROOM`] left, carrying over the
    /// bytes of a partly received frame.
    pub(crate) fn make_room(&mut self) {
        self.swap_if_full();
        self.align_start();
    }

    fn swap_if_full(&mut self) {
        if self.buf.capacity().saturating_sub(self.buf.len()) >= MIN_ROOM {
            return;
        }
        if std::mem::take(&mut self.unallocated) {
            self.buf = BytesMut::with_capacity(self.block);
            return;
        }
        // The current block itself, if nothing else refers to it any more
        // (the partial frame is moved to its front).
        if self
            .buf
            .try_reclaim(self.block.saturating_sub(self.buf.len()))
        {
            return;
        }
        let mut next = self
            .reusable_block()
            .unwrap_or_else(|| BytesMut::with_capacity(self.block));
        crate::copy::extend(&mut next, &self.buf);
        let mut old = std::mem::replace(&mut self.buf, next);
        old.clear();
        if self.retired.len() >= MAX_RETIRED {
            self.retired.pop_front();
        }
        self.retired.push_back(old);
    }

    /// Starts a read that holds no partial frame at a page boundary.
    ///
    /// The transport copies into the block, and on AMD CPUs that copy
    /// stalls when the block lies 1–63 bytes past the transport's own
    /// buffer, modulo the page (see `crate::copy`). Transport buffers mostly
    /// start at or just after a page boundary, and frames that are 5 bytes
    /// longer than a multiple of the page would otherwise walk each read's
    /// start into that window. Page-aligned starts cost at most a page of
    /// each block per read and made bulk transfer over an in-memory pipe
    /// several times faster.
    fn align_start(&mut self) {
        if !self.buf.is_empty() {
            return;
        }
        let pad = (self.buf.as_ptr() as usize).wrapping_neg() & (PAGE - 1);
        if pad > 0 && self.buf.capacity() >= pad.saturating_add(MIN_ROOM) {
            self.buf.put_bytes(0, pad);
            self.buf.advance(pad);
        }
    }

    /// Whether a whole frame is buffered, undecoded (the session refused
    /// it for a while). It is decoded before anything more is read: a read
    /// now could move it to a fresh block, a copy of up to a block.
    pub(crate) fn holds_frame(&self) -> bool {
        mux_frame::Header::parse(&self.buf).is_some_and(|h| {
            usize::try_from(h.len)
                .is_ok_and(|len| self.buf.len().saturating_sub(mux_frame::HEADER_LEN) >= len)
        })
    }

    /// Records that a read returned data.
    pub(crate) fn note_read(&mut self) {
        self.read_since_trim = true;
    }

    /// Takes the oldest retired block whose slices were all dropped.
    fn reusable_block(&mut self) -> Option<BytesMut> {
        let block = self.block;
        let at = self.retired.iter_mut().position(|b| b.try_reclaim(block))?;
        self.retired.remove(at)
    }

    /// Lets go of every block once nothing has been read for an idle
    /// spell. The driver calls this when it has caught up with the
    /// transport, the buffer is empty and the time it was told
    /// ([`Trim::Later`]) has come, so a busy connection pays for one call
    /// per [`IDLE_TRIM`], not per turn: blocks go once no read returned data
    /// between two calls at least that far apart. Blocks that unread data
    /// still refers to are freed by whoever drops the last slice.
    pub(crate) fn trim(&mut self, now: Instant) -> Trim {
        if self.unallocated && self.retired.is_empty() {
            self.trim_pending = false;
            return Trim::Nothing;
        }
        let busy = std::mem::take(&mut self.read_since_trim);
        let first = !std::mem::replace(&mut self.trim_pending, true);
        if busy || first || !self.buf.is_empty() {
            return Trim::Later(now.checked_add(IDLE_TRIM).unwrap_or(now));
        }
        self.trim_pending = false;
        self.retired.clear();
        self.buf = BytesMut::new();
        self.unallocated = true;
        Trim::Done
    }

    /// Retired blocks tracked (for tests).
    #[cfg(test)]
    fn retired(&self) -> usize {
        self.retired.len()
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn fill(rb: &mut ReadBuffer, n: usize) {
        rb.make_room();
        let room = rb.buf.capacity() - rb.buf.len();
        rb.buf.extend_from_slice(&vec![7u8; n.min(room)]);
    }

    /// Whether two addresses lie in the same block (reads start up to a
    /// page into it).
    fn same_block(a: *const u8, b: *const u8) -> bool {
        (a as usize).abs_diff(b as usize) < PAGE
    }

    #[test]
    fn a_read_with_no_partial_frame_starts_on_a_page_boundary() {
        let mut rb = ReadBuffer::new(64 * 1024 + 5);
        rb.make_room();
        assert_eq!(rb.buf.as_ptr() as usize % PAGE, 0);
        assert!(rb.buf.capacity() >= BLOCK - PAGE);
        rb.buf.extend_from_slice(&[1u8; 1000]);
        drop(rb.buf.split_to(990));
        rb.make_room();
        assert_ne!(
            rb.buf.as_ptr() as usize % PAGE,
            0,
            "a partial frame stays put"
        );
        drop(rb.buf.split_to(10));
        rb.make_room();
        assert_eq!(rb.buf.as_ptr() as usize % PAGE, 0);
    }

    #[test]
    fn a_whole_buffered_frame_is_noticed() {
        let mut rb = ReadBuffer::new(64 * 1024 + 5);
        rb.make_room();
        assert!(!rb.holds_frame());
        rb.buf.extend_from_slice(&[0, 0, 0, 0, 3, 1, 2]);
        assert!(!rb.holds_frame(), "one byte short");
        rb.buf.extend_from_slice(&[3]);
        assert!(rb.holds_frame());
    }

    #[test]
    fn a_block_nothing_refers_to_is_reused_in_place() {
        let mut rb = ReadBuffer::new(64 * 1024 + 5);
        fill(&mut rb, BLOCK);
        let first = rb.buf.as_ptr();
        drop(rb.buf.split_to(rb.buf.len() - 3));
        fill(&mut rb, 0);
        assert!(same_block(rb.buf.as_ptr(), first));
        assert_eq!(rb.buf.len(), 3);
        assert_eq!(rb.retired(), 0);
    }

    #[test]
    fn a_retired_block_comes_back_once_its_slices_are_dropped() {
        let mut rb = ReadBuffer::new(64 * 1024 + 5);
        fill(&mut rb, BLOCK);
        let first = rb.buf.as_ptr();
        // Frames no stream has read yet pin the block; 10 bytes of the
        // next frame remain.
        let unread = rb.buf.split_to(rb.buf.len() - 10).freeze();
        fill(&mut rb, 0);
        assert!(
            !same_block(rb.buf.as_ptr(), first),
            "a pinned block is not reused"
        );
        assert_eq!(&rb.buf[..], &[7u8; 10]);
        assert_eq!(rb.retired(), 1);
        // The second block fills up too, pinned by its first 5 bytes.
        let pin = rb.buf.split_to(5).freeze();
        fill(&mut rb, BLOCK);
        drop(rb.buf.split_to(rb.buf.len() - 3));
        drop(unread);
        fill(&mut rb, 0);
        assert!(
            same_block(rb.buf.as_ptr(), first),
            "the first block came back"
        );
        assert_eq!(rb.buf.len(), 3);
        assert_eq!(rb.retired(), 1);
        drop(pin);
    }

    #[test]
    fn retired_handles_and_free_blocks_are_bounded() {
        let mut rb = ReadBuffer::new(1024);
        let mut pins = Vec::new();
        for _ in 0..MAX_RETIRED + 5 {
            fill(&mut rb, BLOCK);
            pins.push(rb.buf.split().freeze());
        }
        fill(&mut rb, 0);
        assert_eq!(rb.retired(), MAX_RETIRED);
        pins.clear();
        rb.buf.clear();
        let t0 = Instant::now();
        rb.note_read();
        assert_eq!(
            rb.trim(t0),
            Trim::Later(t0 + IDLE_TRIM),
            "read a moment ago"
        );
        rb.note_read();
        let t1 = t0 + IDLE_TRIM;
        assert_eq!(rb.trim(t1), Trim::Later(t1 + IDLE_TRIM), "read since");
        assert_eq!(rb.retired(), MAX_RETIRED, "nothing let go while busy");
        let t2 = t1 + IDLE_TRIM;
        assert_eq!(rb.trim(t2), Trim::Done, "a whole spell without reads");
        assert_eq!(rb.retired(), 0);
        assert_eq!(rb.buf.capacity(), 0, "an idle buffer holds no block");
        assert_eq!(rb.trim(t2 + IDLE_TRIM), Trim::Nothing);
    }

    #[test]
    fn a_frame_larger_than_the_usual_block_fits_after_one_move() {
        let max = 1024 * 1024 + 5;
        let mut rb = ReadBuffer::new(max);
        let block = rb.block;
        fill(&mut rb, block - 10);
        // Earlier frames are still being read; a new frame has begun.
        let _pin = rb.buf.split_to(rb.buf.len() - 10).freeze();
        fill(&mut rb, max - 10);
        assert_eq!(rb.retired(), 1);
        assert_eq!(rb.buf.len(), max);
    }
}
