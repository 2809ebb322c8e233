//! Application commands: open and accept streams, read, write, flush,
//! close either side, reset, and let go of a handle. Each checks the
//! stream's state first, and none blocks: `Ok(None)` or `Ok(false)` means
//! "try again after the matching [`Event`]".

use bytes::Bytes;
use std::time::Instant;

use mux_core::{ConnError, StreamError, StreamId};

use super::stream::Stream;
use super::{
    queue_ctrl, queue_data, stream_in, Event, Lifecycle, ReadChunk, ReadOutcome, Session,
    MIN_SEND_SHARE,
};
use crate::frame::go_away;

impl Session {
    /// Opens an outbound stream. `Ok(None)` means "wait for
    /// [`Event::OpenReady`]": too many opens await ACK, or the peer's
    /// stream limit is reached.
    pub fn open(&mut self, now: Instant) -> Result<Option<StreamId>, ConnError> {
        self.check_can_open()?;
        let peer_limit = self.peer.map_or(usize::MAX, |h| {
            usize::try_from(h.max_inbound_streams).unwrap_or(usize::MAX)
        });
        if !self.counts.may_open(&self.config, peer_limit) {
            return Ok(None);
        }
        let id = self.next_local_id.ok_or(ConnError::StreamIdsExhausted)?;
        self.next_local_id = id.checked_add(2);
        let send_window = self.peer.map_or(0, |h| h.initial_window);
        let stream = Stream::on_open(
            send_window,
            self.config.initial_window,
            self.advertised_window(),
        );
        self.counts.on_opened(stream.recv_window());
        self.streams.insert(id, stream);
        self.open_deadlines
            .push_back((now.checked_add(self.config.open_timeout).unwrap_or(now), id));
        self.enqueue_ctrl(id);
        tracing::trace!(stream = id, "open");
        Ok(Some(StreamId(id)))
    }

    fn check_can_open(&self) -> Result<(), ConnError> {
        match &self.lifecycle {
            Lifecycle::Closed(e) => return Err(e.clone()),
            Lifecycle::Draining { .. } => {
                return Err(ConnError::GoAwaySent {
                    code: go_away::NORMAL,
                })
            }
            Lifecycle::Active => {}
        }
        if let Some(code) = self.go_away_received {
            return Err(ConnError::GoAway { code });
        }
        Ok(())
    }

    /// Takes the next inbound stream from the backlog (and owes it an ACK).
    /// `Ok(None)` means "wait for [`Event::Incoming`]".
    pub fn accept(&mut self) -> Result<Option<StreamId>, ConnError> {
        while let Some(id) = self.accept_queue.pop_front() {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            s.on_accept();
            queue_ctrl(&mut self.ctrl_queue, id, s);
            self.accepted = self.accepted.saturating_add(1);
            return Ok(Some(StreamId(id)));
        }
        match &self.lifecycle {
            Lifecycle::Closed(e) => Err(e.clone()),
            Lifecycle::Draining { .. } => Err(ConnError::GoAwaySent {
                code: go_away::NORMAL,
            }),
            Lifecycle::Active => match self.go_away_received {
                Some(code) => Err(ConnError::GoAway { code }),
                None => Ok(None),
            },
        }
    }

    fn closed_error(&self) -> Option<StreamError> {
        match &self.lifecycle {
            Lifecycle::Closed(e) => Some(StreamError::ConnectionClosed(e.clone())),
            _ => None,
        }
    }

    /// Copies received bytes of stream `id` into `dst`.
    pub fn read(&mut self, id: StreamId, dst: &mut [u8]) -> Result<ReadOutcome, StreamError> {
        let id = id.get();
        let mut copied = 0usize;
        loop {
            let room = dst.len().saturating_sub(copied);
            let chunk = match self.read_chunk(StreamId(id), room) {
                Ok(ReadChunk::Data(chunk)) if !chunk.is_empty() => chunk,
                Ok(_) | Err(_) if copied > 0 => return Ok(ReadOutcome::Data(copied)),
                Ok(ReadChunk::Data(_)) => return Ok(ReadOutcome::Data(0)),
                Ok(ReadChunk::Eof) => return Ok(ReadOutcome::Eof),
                Ok(ReadChunk::Blocked) => return Ok(ReadOutcome::Blocked),
                Err(e) => return Err(e),
            };
            let end = copied.saturating_add(chunk.len());
            if let Some(out) = dst.get_mut(copied..end) {
                crate::copy::copy(out, &chunk);
            }
            copied = end;
        }
    }

    /// Takes up to `max` received bytes of stream `id` without copying
    /// them, so the caller can copy after releasing any lock. The chunk
    /// may be shorter than `max` where a received frame ends.
    pub fn read_chunk(&mut self, id: StreamId, max: usize) -> Result<ReadChunk, StreamError> {
        let id = id.get();
        self.read_chunk_and_rest(StreamId(id), max)
            .map(|(chunk, _)| chunk)
    }

    /// [`read_chunk`](Self::read_chunk), and whether received bytes remain
    /// after it, so a reader that emptied the buffer returns what it has
    /// without asking again only to find nothing.
    pub(crate) fn read_chunk_and_rest(
        &mut self,
        id: StreamId,
        max: usize,
    ) -> Result<(ReadChunk, bool), StreamError> {
        let id = id.get();
        let closed = self.closed_error();
        let s = stream_in(&mut self.streams, &self.lifecycle, id)?;
        let Some(chunk) = s.on_read(max, &mut self.spares)? else {
            return match (max, s.is_fin_received(), closed) {
                (0, ..) => Ok((ReadChunk::Data(Bytes::new()), false)),
                (_, true, _) => Ok((ReadChunk::Eof, false)),
                (_, _, Some(e)) => Err(e),
                _ => Ok((ReadChunk::Blocked, false)),
            };
        };
        if !chunk.is_empty() {
            Self::maybe_window_update(&mut self.ctrl_queue, id, s);
        }
        Ok((ReadChunk::Data(chunk), s.has_unread()))
    }

    /// How many bytes a write to `id` may queue now (0: wait for
    /// [`Event::Writable`]), or why it cannot write at all.
    pub fn write_room(&mut self, id: StreamId) -> Result<usize, StreamError> {
        let id = id.get();
        let closed = self.closed_error();
        let limit = self.send_limit();
        self.stream_mut(id)?.write_room(limit, closed)
    }

    /// The most a stream may hold in its send buffer now: its share of
    /// `connection_send_buffer` among the streams waiting to send, within
    /// [`MIN_SEND_SHARE`] and `send_buffer`. A stream never waits on
    /// another's bytes: with an empty buffer it always has room.
    fn send_limit(&self) -> usize {
        let max = self.config.send_buffer;
        let share = self
            .config
            .connection_send_buffer
            .checked_div(self.data_queue.len())
            .unwrap_or(max);
        share.max(MIN_SEND_SHARE.min(max)).min(max)
    }

    /// Queues bytes on stream `id`. `Ok(None)` means the send buffer is full:
    /// wait for [`Event::Writable`].
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<Option<usize>, StreamError> {
        let id = id.get();
        let n = self.write_room(StreamId(id))?.min(data.len());
        if n == 0 && !data.is_empty() {
            return Ok(None);
        }
        if let Some(s) = self.streams.get_mut(&id) {
            s.on_write(data.get(..n).unwrap_or_default(), &mut self.spares);
            queue_data(&mut self.data_queue, id, s);
        }
        Ok(Some(n))
    }

    /// Like [`write`](Self::write), but takes ownership of the bytes so they
    /// are framed without another copy. Bytes beyond the room are dropped
    /// and not counted.
    pub fn write_chunk(
        &mut self,
        id: StreamId,
        mut chunk: Bytes,
    ) -> Result<Option<usize>, StreamError> {
        let id = id.get();
        let n = self.write_room(StreamId(id))?.min(chunk.len());
        if n == 0 && !chunk.is_empty() {
            return Ok(None);
        }
        chunk.truncate(n);
        if let Some(s) = self.streams.get_mut(&id) {
            s.on_write_chunk(chunk, &mut self.spares);
            queue_data(&mut self.data_queue, id, s);
        }
        Ok(Some(n))
    }

    /// Whether every byte written to `id` is committed: framed, or
    /// buffered within the peer's window, so that the driver frames it
    /// without waiting for anything from the peer. `Ok(false)` means wait
    /// for [`Event::Writable`].
    ///
    /// Committed is as far as the session can promise (a framed byte may
    /// still sit in the write queue), and waiting for the framing itself
    /// would cost the writer a wakeup per flush for nothing more.
    pub fn flush(&mut self, id: StreamId) -> Result<bool, StreamError> {
        let id = id.get();
        let closed = self.closed_error();
        let peer_known = self.peer.is_some();
        self.stream_mut(id)?.flush(peer_known, closed)
    }

    /// Closes the write side of `id`: FIN follows the buffered bytes.
    /// `Ok(true)` once the FIN is committed (framed, or queued behind bytes
    /// the peer's window already admits, as in [`flush`](Self::flush));
    /// `Ok(false)` means wait for [`Event::Writable`].
    pub fn close_write(&mut self, id: StreamId) -> Result<bool, StreamError> {
        let id = id.get();
        let closed = self.closed_error();
        let peer_known = self.peer.is_some();
        let s = stream_in(&mut self.streams, &self.lifecycle, id)?;
        if s.on_close_write()? {
            return Ok(true);
        }
        if let Some(e) = closed {
            return Err(e);
        }
        let committed = s.send_committed(peer_known);
        queue_data(&mut self.data_queue, id, s);
        Ok(committed)
    }

    /// Closes the read side of `id`: buffered bytes are dropped (and their
    /// credit returned), later ones discarded, reads fail with `ReadClosed`.
    pub fn close_read(&mut self, id: StreamId) -> Result<(), StreamError> {
        let id = id.get();
        let s = stream_in(&mut self.streams, &self.lifecycle, id)?;
        if !s.on_close_read() {
            return Ok(());
        }
        Self::maybe_window_update(&mut self.ctrl_queue, id, s);
        self.events.push_back(Event::Readable(StreamId(id)));
        Ok(())
    }

    /// Resets `id` with `code`. A no-op on a finished or already reset stream.
    pub fn reset(&mut self, id: StreamId, code: u32) {
        let id = id.get();
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.is_finished() {
            return;
        }
        self.reset_local(id, code);
    }

    /// The application dropped its handle on `id`. Unfinished streams close
    /// both sides (written bytes still go out, then FIN) and get
    /// `close_timeout` to finish before they are reset; they return no more
    /// credit, so a peer that spends what it holds is reset with
    /// [`DROPPED`](crate::frame::reset_code::DROPPED) at once.
    pub fn detach(&mut self, id: StreamId, now: Instant) {
        let id = id.get();
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if let Some(fin_queued) = s.on_detach() {
            if fin_queued {
                queue_data(&mut self.data_queue, id, s);
            }
            let _ = self.close_read(StreamId(id));
            let deadline = now.checked_add(self.config.close_timeout).unwrap_or(now);
            self.detached_deadlines.push_back((deadline, id));
        }
        self.after_change(id);
    }
}
