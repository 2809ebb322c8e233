//! The driver's read buffer: fixed-size blocks that are reused once every
//! slice of them has been read.
//!
//! A received DATA payload of 16 KiB or more is handed to its stream as a
//! slice of the block it was read into, so a block stays allocated until
//! every stream has read its part. Allocating a new block whenever the
//! current one fills means asking the allocator for 256 KiB at a time,
//! which it serves from freshly mapped pages and unmaps again on free: the
//! page faults cost more than the copies (docs/DECISIONS.md).
//! So a full block is retired, not dropped: the buffer keeps a handle to
//! it, and once its last slice is gone, it becomes the next block.
//!
//! Limits: a retired block is tracked while slices keep it alive, and at
//! most `Config::read_blocks_kept` retired blocks are kept beyond those
//! that unread slices outweigh, so that the blocks a connection holds stay
//! within twice the unread bytes held as slices plus that many blocks and
//! the one being filled. Whenever a block is retired
//! ([`ReadBuffer::keep_within`]) free blocks beyond that are let go, and
//! if slices still pin more, the session copies every unread slice out
//! (`Session::copy_out_received`), which frees them all. A peer that
//! spreads payloads over many blocks, each held by one stream nobody reads,
//! thus costs a copy of those payloads instead of a block each; a bulk
//! stream whose reader keeps up pins a few blocks and is never copied.
//! Once nothing has been read for an idle spell ([`IDLE_TRIM`] to twice
//! that: the check runs on a timer, once per spell), every block is let go
//! (and unread slices copied out), so an idle connection holds no read
//! buffer at all. Trimming waits for that quiet spell because letting go of
//! blocks while traffic flows means faulting in fresh ones a moment later:
//! a single bulk stream keeps three or four blocks in rotation.

use bytes::BytesMut;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::session::Session;
use crate::wire::Layout;

/// The usual block size; also the most one read asks the transport for.
const BLOCK: usize = 256 * 1024;
/// Room a block keeps beyond its largest frame.
const MIN_ROOM: usize = 64 * 1024;
/// The least a read asks for, unless it finishes a frame exactly.
const MIN_READ: usize = 16 * 1024;
/// A read returning at least this much counts as large.
const LARGE_READ: usize = 16 * 1024;
/// Small reads in a row after which reads no longer count as large (one
/// small read often finishes what a large one began).
const SMALL_READS_TO_STOP: u8 = 4;
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
    /// `buf` is a frame's own buffer ([`ReadBuffer::hold_oversize`]).
    oversize: bool,
    /// Full blocks, oldest first: pinned by unread slices, or free for reuse.
    retired: VecDeque<BytesMut>,
    block: usize,
    /// Retired blocks kept whatever the unread slices weigh.
    kept: usize,
    /// A block was retired since [`ReadBuffer::keep_within`] last ran.
    retired_since_check: bool,
    /// The largest frame, header included.
    max_frame: usize,
    /// Bytes of partial frames copied to a new block (for tests).
    #[cfg(test)]
    carried: usize,
    /// A read returned data since the last `trim`.
    read_since_trim: bool,
    /// Reads in a row that returned less than [`LARGE_READ`] bytes.
    small_reads: u8,
    /// The last `trim` returned [`Trim::Later`]: the next one, an idle
    /// spell later, decides.
    trim_pending: bool,
}

impl ReadBuffer {
    /// A buffer for frames of usually at most `max_frame` bytes, header
    /// included, that keeps at most `kept` retired blocks for reuse.
    /// A block always holds such a frame plus [`MIN_ROOM`], so a frame
    /// moved to a fresh block never needs another move; a longer one gets
    /// a buffer of its own ([`hold_oversize`](Self::hold_oversize)).
    pub(crate) fn new(max_frame: usize, kept: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            unallocated: true,
            oversize: false,
            retired: VecDeque::new(),
            block: BLOCK.max(max_frame.saturating_add(MIN_ROOM)),
            kept,
            retired_since_check: false,
            max_frame,
            #[cfg(test)]
            carried: 0,
            read_since_trim: false,
            small_reads: SMALL_READS_TO_STOP,
            trim_pending: false,
        }
    }

    /// The buffered bytes, for decoding.
    pub(crate) fn bytes(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Makes room for the next read and says how much it may take, or
    /// `None`, doing nothing, while a whole frame waits to be decoded and
    /// either the block is short of room (carrying whole frames would copy
    /// up to a block) or reads are large (one of the last
    /// [`SMALL_READS_TO_STOP`] returned at least [`LARGE_READ`] bytes), so
    /// bulk frames reach their streams a read sooner. Small reads go on
    /// back to back: a turn per read would cost a chatty connection half
    /// as many instructions again.
    ///
    /// Reads stop a whole frame short of the block's end, so the frame a
    /// read leaves unfinished can be finished in place by a read of exactly
    /// its rest; then the block ends on a frame boundary and the next one
    /// starts empty. Reading to the end instead left a partial frame there
    /// to be copied to the next block, on average half a frame per block
    /// (5% of the CPU in bulk transfer). A block short of that room is
    /// swapped for a reused or new one, carrying over only a frame whose
    /// header is not complete yet (at most 4 bytes).
    #[inline]
    pub(crate) fn make_room(&mut self, layout: &dyn Layout) -> Option<usize> {
        let bulk = self.small_reads < SMALL_READS_TO_STOP;
        let room = self.room();
        let short = room < self.max_frame.saturating_add(MIN_READ);
        if (short || bulk) && self.holds_frame(layout) {
            return None;
        }
        if short {
            match self.rest_of_frame(layout) {
                Some(rest) if rest <= room => return Some(rest),
                _ => self.swap(),
            }
        }
        let room = self.room();
        Some(room.saturating_sub(self.max_frame).max(MIN_READ).min(room))
    }

    fn room(&self) -> usize {
        self.buf.capacity().saturating_sub(self.buf.len())
    }

    /// The bytes still missing from the partial frame at the end, once its
    /// header is buffered.
    fn rest_of_frame(&self, layout: &dyn Layout) -> Option<usize> {
        let total = layout.frame_len(&self.buf)?;
        total.checked_sub(self.buf.len()).filter(|&rest| rest > 0)
    }

    fn swap(&mut self) {
        if std::mem::take(&mut self.unallocated) {
            self.buf = BytesMut::with_capacity(self.block);
            return;
        }
        if std::mem::take(&mut self.oversize) {
            // The frame's own buffer is not a block: what is left of it
            // belongs to the stream holding its payload.
            let next = self
                .reusable_block()
                .unwrap_or_else(|| BytesMut::with_capacity(self.block));
            self.buf = next;
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
        #[cfg(test)]
        {
            self.carried = self.carried.saturating_add(self.buf.len());
        }
        crate::copy::extend(&mut next, &self.buf);
        let mut old = std::mem::replace(&mut self.buf, next);
        old.clear();
        self.retired.push_back(old);
        self.retired_since_check = true;
        self.let_go_of_free_blocks(self.kept);
    }

    /// Lets go of free retired blocks, oldest first, until at most `most`
    /// blocks are retired or none is free.
    fn let_go_of_free_blocks(&mut self, most: usize) {
        let block = self.block;
        let mut excess = self.retired.len().saturating_sub(most);
        if excess > 0 {
            self.retired.retain_mut(|b| {
                let drop = excess > 0 && b.try_reclaim(block);
                excess = excess.saturating_sub(usize::from(drop));
                !drop
            });
        }
    }

    /// Keeps the retired blocks within `read_blocks_kept` plus twice the
    /// unread bytes `session` holds as slices, once a block was retired
    /// since the last call: lets go of free blocks beyond that and, if
    /// slices still pin more, has the session copy them out. The driver
    /// calls this every turn, under the session's lock.
    pub(crate) fn keep_within(&mut self, session: &mut Session) {
        if !std::mem::take(&mut self.retired_since_check) || self.retired.len() <= self.kept {
            return;
        }
        let by_reference = usize::try_from(session.received_by_reference()).unwrap_or(usize::MAX);
        let most = self.kept.max(
            by_reference
                .saturating_mul(2)
                .checked_div(self.block)
                .unwrap_or(0),
        );
        self.let_go_of_free_blocks(most);
        if self.retired.len() > most {
            tracing::debug!(
                blocks = self.retired.len(),
                by_reference,
                "unread slices pin more read blocks than they weigh; copying them out"
            );
            session.copy_out_received();
            self.let_go_of_free_blocks(self.kept);
        }
    }

    /// The length of the frame at the front, once its header is buffered,
    /// if it is longer than a block can hold and not yet in a buffer of its
    /// own ([`hold_oversize`](Self::hold_oversize)).
    pub(crate) fn oversize_frame(&self, layout: &dyn Layout) -> Option<usize> {
        let total = layout.frame_len(&self.buf)?;
        (!self.oversize && total > self.block && self.buf.len() < total).then_some(total)
    }

    /// Whether the buffer is a frame's own ([`hold_oversize`](Self::hold_oversize)).
    pub(crate) fn holds_oversize(&self) -> bool {
        self.oversize
    }

    /// Moves the partial frame at the front, `total` bytes once whole, into
    /// a buffer of exactly that size: the yamux wire admits DATA as large
    /// as a stream's credit, far beyond the usual frame the blocks are
    /// sized for. Its payload then costs what it weighs.
    pub(crate) fn hold_oversize(&mut self, total: usize) {
        let mut own = BytesMut::with_capacity(total);
        crate::copy::extend(&mut own, &self.buf);
        let mut old = std::mem::replace(&mut self.buf, own);
        self.oversize = true;
        if std::mem::take(&mut self.unallocated) {
            return;
        }
        old.clear();
        self.retired.push_back(old);
        self.retired_since_check = true;
    }

    /// Whether a whole frame is buffered, undecoded.
    fn holds_frame(&self, layout: &dyn Layout) -> bool {
        layout
            .frame_len(&self.buf)
            .is_some_and(|total| self.buf.len() >= total)
    }

    /// Records that a read returned data.
    pub(crate) fn note_read(&mut self, len: usize) {
        self.read_since_trim = true;
        self.small_reads = if len >= LARGE_READ {
            0
        } else {
            self.small_reads.saturating_add(1)
        };
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
    use crate::wire::lite::Lite;

    /// A layout whose frames may be as long as any test here makes them.
    static LITE: std::sync::LazyLock<Lite> = std::sync::LazyLock::new(|| Lite::new(16 << 20));

    /// The default of `Config::read_blocks_kept`.
    const KEPT: usize = 64;

    fn fill(rb: &mut ReadBuffer, n: usize) {
        rb.make_room(&*LITE);
        let room = rb.buf.capacity() - rb.buf.len();
        rb.buf.extend_from_slice(&vec![7u8; n.min(room)]);
    }

    /// Whether two addresses lie in the same block (within its first page).
    fn same_block(a: *const u8, b: *const u8) -> bool {
        (a as usize).abs_diff(b as usize) < 4096
    }

    /// Feeds `frames` frames of `frame_len` bytes (header included) as a
    /// transport with plenty buffered would, honouring each read's limit,
    /// and decodes whole frames after every read; returns the bytes carried
    /// to new blocks.
    fn carried_in_bulk(frame_len: usize, frames: usize) -> usize {
        let mut rb = ReadBuffer::new(64 * 1024 + 10, KEPT);
        let value = u32::try_from(frame_len - 5).unwrap().to_be_bytes();
        let mut one = vec![0u8, value[0], value[1], value[2], value[3]];
        one.resize(frame_len, 0xAB);
        let wire: Vec<u8> = one
            .iter()
            .copied()
            .cycle()
            .take(frame_len * frames)
            .collect();
        let (mut fed, mut decoded, mut pins) = (0, 0, Vec::new());
        while decoded < frames {
            let Some(limit) = rb.make_room(&*LITE) else {
                panic!("nothing to decode, yet no room");
            };
            let n = limit.min(wire.len() - fed);
            rb.buf.extend_from_slice(&wire[fed..fed + n]);
            rb.note_read(n);
            fed += n;
            while rb.holds_frame(&*LITE) {
                // Streams have not read yet: every frame pins its block.
                pins.push(rb.buf.split_to(frame_len).freeze());
                decoded += 1;
            }
        }
        assert_eq!(fed, wire.len());
        assert!(pins
            .iter()
            .all(|p| p.len() == frame_len && p[5..] == one[5..]));
        rb.carried
    }

    #[test]
    fn reads_end_on_frame_boundaries_so_no_partial_frame_is_carried() {
        // 64 KiB DATA frames with their 10-byte header, as in bulk transfer,
        // and odd sizes that do not divide a block.
        for frame_len in [64 * 1024 + 10, 40_000, 4_099, 65_536 + 15] {
            assert_eq!(carried_in_bulk(frame_len, 200), 0, "frames of {frame_len}");
        }
    }

    #[test]
    fn a_whole_undecoded_frame_is_not_carried_to_a_new_block() {
        let mut rb = ReadBuffer::new(64 * 1024 + 5, KEPT);
        assert!(rb.make_room(&*LITE).is_some());
        assert!(!rb.holds_frame(&*LITE));
        rb.buf.extend_from_slice(&[0, 0, 0, 0, 3, 1, 2]);
        assert!(!rb.holds_frame(&*LITE), "one byte short");
        rb.buf.extend_from_slice(&[3]);
        assert!(rb.holds_frame(&*LITE));
        // Fill the block with the rest of a large frame: it is whole, so
        // no room is made until it has been decoded.
        drop(rb.buf.split());
        let room = rb.buf.capacity() - 10;
        let len = u32::try_from(room - 5).unwrap_or(0).to_be_bytes();
        rb.buf
            .extend_from_slice(&[0, len[0], len[1], len[2], len[3]]);
        rb.buf.extend_from_slice(&vec![0u8; room - 5]);
        assert!(rb.make_room(&*LITE).is_none());
        assert_eq!(rb.buf.len(), room, "nothing moved");
        drop(rb.buf.split());
        assert!(rb.make_room(&*LITE).is_some());
    }

    #[test]
    fn a_block_nothing_refers_to_is_reused_in_place() {
        let mut rb = ReadBuffer::new(64 * 1024 + 5, KEPT);
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
        let mut rb = ReadBuffer::new(64 * 1024 + 5, KEPT);
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
        let mut rb = ReadBuffer::new(1024, KEPT);
        let mut pins = Vec::new();
        for _ in 0..KEPT + 5 {
            fill(&mut rb, BLOCK);
            pins.push(rb.buf.split().freeze());
        }
        fill(&mut rb, 0);
        assert_eq!(rb.retired(), KEPT + 5, "pinned blocks stay tracked");
        pins.clear();
        rb.buf.clear();
        // The next block retired lets go of the free ones beyond `KEPT`.
        fill(&mut rb, BLOCK);
        let pin = rb.buf.split().freeze();
        fill(&mut rb, 0);
        assert_eq!(rb.retired(), KEPT);
        drop(pin);
        rb.buf.clear();
        let t0 = Instant::now();
        rb.note_read(1);
        assert_eq!(
            rb.trim(t0),
            Trim::Later(t0 + IDLE_TRIM),
            "read a moment ago"
        );
        rb.note_read(1);
        let t1 = t0 + IDLE_TRIM;
        assert_eq!(rb.trim(t1), Trim::Later(t1 + IDLE_TRIM), "read since");
        assert_eq!(rb.retired(), KEPT, "nothing let go while busy");
        let t2 = t1 + IDLE_TRIM;
        assert_eq!(rb.trim(t2), Trim::Done, "a whole spell without reads");
        assert_eq!(rb.retired(), 0);
        assert_eq!(rb.buf.capacity(), 0, "an idle buffer holds no block");
        assert_eq!(rb.trim(t2 + IDLE_TRIM), Trim::Nothing);
    }

    #[test]
    fn the_kept_blocks_follow_the_configured_bound() {
        for kept in [0, 2] {
            let mut rb = ReadBuffer::new(1024, kept);
            let mut pins = Vec::new();
            for _ in 0..5 {
                fill(&mut rb, BLOCK);
                pins.push(rb.buf.split().freeze());
            }
            fill(&mut rb, 0);
            assert_eq!(rb.retired(), 5, "pinned blocks stay tracked");
            assert!(rb.buf.capacity() >= BLOCK, "a fresh block all the same");
            // One retired block stays pinned, and the current one too.
            pins.truncate(1);
            fill(&mut rb, BLOCK);
            pins.push(rb.buf.split().freeze());
            fill(&mut rb, 0);
            assert_eq!(rb.retired(), 2, "free blocks beyond {kept} let go");
        }
    }

    #[test]
    fn a_frame_larger_than_the_usual_block_fits_after_one_move() {
        let max = 1024 * 1024 + 5;
        let mut rb = ReadBuffer::new(max, KEPT);
        let block = rb.block;
        fill(&mut rb, block - 10);
        // Earlier frames are still being read; a new frame has begun.
        let _pin = rb.buf.split_to(rb.buf.len() - 10).freeze();
        fill(&mut rb, max - 10);
        assert_eq!(rb.retired(), 1);
        assert_eq!(rb.buf.len(), max);
    }
}
