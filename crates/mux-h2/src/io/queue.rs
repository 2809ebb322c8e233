//! The send queue between a tunnel's writer and whatever sends its bytes:
//! hyper draining the outgoing body (body mode), or the pump task of an
//! upgraded tunnel (see `writer`).
//!
//! The queue coalesces: a write lands in the last queued chunk while that
//! chunk has room, so a burst of small writes becomes few chunks, hence few
//! HTTP/2 DATA frames. The sender takes a chunk as soon as it is queued, so
//! a write the sender is already waiting for leaves at once; only writes
//! that arrive while earlier data still waits to be taken are merged.

use std::{
    collections::VecDeque,
    io,
    sync::{Mutex, MutexGuard, PoisonError},
};

use bytes::{Bytes, BytesMut};

/// The most bytes one `poll_write` accepts (a write of more is partial),
/// and the most one queued chunk holds.
///
/// 64 KiB is the [`MAX_FRAME_SIZE`](super::MAX_FRAME_SIZE) both sides of
/// this crate advertise, so a chunk maps onto one DATA frame (a peer at
/// HTTP/2's default of 16 KiB gets four). It also caps each copy hyper's
/// upgraded I/O makes per write. Larger chunks mean fewer hand-overs
/// between the writer and the task that sends: a forwarded bulk transfer
/// through mux-tunnel runs about a third faster than with 16 KiB chunks
/// (docs/BENCHMARKS.md, "The mux-tunnel command").
pub const MAX_CHUNK: usize = 64 * 1024;

/// How many chunks the send queue of a tunnel holds.
///
/// With [`MAX_CHUNK`] this bounds what a writer can queue ahead of hyper to
/// `2 × 64 KiB = 128 KiB`; hyper itself holds at most one more chunk while it
/// waits for HTTP/2 send window (three over an upgraded tunnel).
pub const SEND_QUEUE_CHUNKS: usize = 2;

/// What the sender gets from [`SendQueue::pop`].
pub(super) enum Popped {
    Chunk(Bytes),
    /// Nothing queued yet.
    Empty,
    /// The writer shut down and everything queued has been taken.
    End,
    /// The writer was dropped without a shutdown.
    Abandoned,
}

/// Why the queue takes no more writes.
pub(super) enum Refused {
    /// The writer shut down.
    Shut,
    /// The sender is gone; with its error when it had one.
    SenderGone(Option<io::Error>),
}

#[derive(Default)]
struct State {
    chunks: VecDeque<BytesMut>,
    // The writer shut down: after the queued chunks comes the end of stream.
    shut: bool,
    // The writer was dropped without a shutdown.
    abandoned: bool,
    // The sender stopped taking chunks (hyper dropped the body, or the pump
    // failed), with the pump's error.
    sender_gone: bool,
    failure: Option<io::Error>,
    // A chunk the pump has taken but not yet handed to hyper.
    in_flight: bool,
    // The pump has handed every chunk to hyper and taken the end of stream
    // (upgraded tunnels).
    end_sent: bool,
}

/// The bounded, coalescing queue of one tunnel's outgoing bytes.
#[derive(Default)]
pub(super) struct SendQueue {
    state: Mutex<State>,
}

impl SendQueue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a few plain assignments that cannot panic midway,
        // so a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues up to [`MAX_CHUNK`] bytes of `buf`; `Ok(None)` when the queue
    /// is full (the caller waits for the sender to take a chunk).
    pub(super) fn push(&self, buf: &[u8]) -> Result<Option<usize>, Refused> {
        let mut state = self.lock();
        if state.shut {
            return Err(Refused::Shut);
        }
        if state.sender_gone {
            return Err(Refused::SenderGone(state.failure.as_ref().map(duplicate)));
        }
        if let Some(tail) = state.chunks.back_mut() {
            let room = MAX_CHUNK.saturating_sub(tail.len());
            if room > 0 {
                let n = buf.len().min(room);
                if tail.capacity() < tail.len().saturating_add(n) {
                    // Grow once to a whole chunk: a burst of small writes
                    // fills it without reallocating on every write.
                    let mut grown = BytesMut::with_capacity(MAX_CHUNK);
                    grown.extend_from_slice(tail);
                    *tail = grown;
                }
                tail.extend_from_slice(buf.get(..n).unwrap_or(buf));
                return Ok(Some(n));
            }
        }
        if state.chunks.len() >= SEND_QUEUE_CHUNKS {
            return Ok(None);
        }
        let n = buf.len().min(MAX_CHUNK);
        state
            .chunks
            .push_back(BytesMut::from(buf.get(..n).unwrap_or(buf)));
        Ok(Some(n))
    }

    /// Takes the oldest chunk for sending.
    pub(super) fn pop(&self) -> Popped {
        let mut state = self.lock();
        match state.chunks.pop_front() {
            Some(chunk) => {
                state.in_flight = true;
                Popped::Chunk(chunk.freeze())
            }
            None if state.shut => Popped::End,
            None if state.abandoned => Popped::Abandoned,
            None => Popped::Empty,
        }
    }

    /// The pump handed the chunk it took to hyper.
    pub(super) fn chunk_sent(&self) {
        self.lock().in_flight = false;
    }

    /// Whether every queued byte has been handed to hyper: `Ok(true)` when
    /// so, `Err` when the sender is gone with bytes left.
    pub(super) fn drained(&self) -> Result<bool, Refused> {
        let state = self.lock();
        if state.chunks.is_empty() && !state.in_flight {
            return Ok(true);
        }
        if state.sender_gone {
            return Err(Refused::SenderGone(state.failure.as_ref().map(duplicate)));
        }
        Ok(false)
    }

    /// The writer shut down: the sender ends the stream once it has taken
    /// what is queued.
    pub(super) fn shut(&self) {
        self.lock().shut = true;
    }

    pub(super) fn is_shut(&self) -> bool {
        self.lock().shut
    }

    /// The writer was dropped; a pump stops once the queue is empty.
    pub(super) fn abandon(&self) {
        self.lock().abandoned = true;
    }

    /// The sender stopped, with its error if it had one. Queued chunks are
    /// dropped: nobody will send them.
    pub(super) fn sender_gone(&self, failure: Option<io::Error>) {
        let mut state = self.lock();
        state.sender_gone = true;
        state.in_flight = false;
        state.chunks.clear();
        if state.failure.is_none() {
            state.failure = failure;
        }
    }

    /// The pump took the end of stream, after every chunk.
    pub(super) fn end_sent(&self) {
        self.lock().end_sent = true;
    }

    /// Whether the pump has taken the end of stream: `Ok(true)` when so,
    /// `Err` when the sender failed first.
    pub(super) fn is_end_sent(&self) -> Result<bool, Refused> {
        let state = self.lock();
        if state.end_sent {
            return Ok(true);
        }
        if state.sender_gone {
            return Err(Refused::SenderGone(state.failure.as_ref().map(duplicate)));
        }
        Ok(false)
    }
}

/// A copy of `err` for each caller that asks after the sender failed.
fn duplicate(err: &io::Error) -> io::Error {
    if let Some(se) = mux_core::StreamError::from_io(err) {
        return se.clone().into();
    }
    if let Some(te) = crate::error::TunnelError::from_io(err) {
        return te.clone().into();
    }
    io::Error::new(err.kind(), err.to_string())
}
