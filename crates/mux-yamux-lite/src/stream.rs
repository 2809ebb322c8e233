//! The stream handle: tokio `AsyncRead + AsyncWrite` over one stream.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use mux_core::{DeadlineTimer, Deadlines, Direction, MuxedStream, StreamError, StreamId};

use crate::driver::{Link, SentNow};
use crate::payload_pool::COPY_OUTSIDE_LOCK;
use crate::session::ReadChunk;
use crate::state::{now, ConnState};

/// One multiplexed stream.
///
/// - `poll_shutdown` is close-write: it completes once FIN is committed
///   behind every written byte (see `poll_flush`).
/// - `poll_flush` completes once every written byte is committed: framed,
///   or buffered within the peer's window, so the connection sends it
///   without waiting for the peer. It waits while the window is closed.
/// - Dropping the handle closes both directions: written bytes are still
///   delivered, then FIN; bytes that arrive later are discarded, and a peer
///   that keeps sending past the credit it held is reset with
///   [`DROPPED`](crate::frame::reset_code::DROPPED); what it was sent stays
///   readable to it.
/// - A short write (under 8 KiB) that follows a read is an answer: it is
///   written to the transport by the writing task when nothing else waits
///   to be sent and the transport's writes have been cheap (an in-memory
///   pipe, not a socket), without waiting for the driver's turn. Later
///   short writes are queued until the stream reads again, so streamed
///   writes stay batched.
#[derive(Debug)]
pub struct Stream {
    id: StreamId,
    link: Arc<Link>,
    /// Created on first use: most streams never set a deadline, and an
    /// idle stream should cost as little as possible.
    deadlines: OnceLock<Deadlines>,
    read_timer: DeadlineTimer,
    write_timer: DeadlineTimer,
    /// Whether a short write (under [`SHORT_WRITE`]) is an answer, to be
    /// offered to [`Link::try_send_now`]: once a read delivers bytes, until
    /// one such write goes. A write that answers what was read is
    /// latency-bound, so saving the driver's turn pays; a writer streaming
    /// short writes would instead make one transport write per message
    /// where the driver batches them, and a stream's first write would
    /// leave apart from its FIN.
    answering: bool,
    /// The last write went direct and the transport took and flushed all
    /// of it, so nothing of this stream waits in the send buffer: a flush
    /// has nothing to do and takes no lock (a request or answer that is
    /// written and then flushed would otherwise pay one per message).
    flushed: bool,
}

impl Stream {
    pub(crate) fn new(id: StreamId, link: Arc<Link>) -> Self {
        Self {
            id,
            link,
            deadlines: OnceLock::new(),
            read_timer: DeadlineTimer::new(),
            write_timer: DeadlineTimer::new(),
            answering: false,
            flushed: false,
        }
    }

    /// Parks the task until the session or the deadline wakes it. Returns
    /// `TimedOut` if the deadline already passed.
    fn park(&mut self, dir: Direction, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let timer = match dir {
            Direction::Read => &mut self.read_timer,
            Direction::Write => &mut self.write_timer,
        };
        let Some(deadlines) = self.deadlines.get() else {
            return Poll::Pending;
        };
        match deadlines.poll_expired(dir, timer, cx) {
            Poll::Ready(()) => Poll::Ready(Err(StreamError::TimedOut.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn check_deadline(&self, dir: Direction) -> io::Result<()> {
        if self.deadlines.get().is_some_and(|d| d.is_expired(dir)) {
            return Err(StreamError::TimedOut.into());
        }
        Ok(())
    }

    /// Runs a write-side command that completes when it returns `Ok(true)`.
    fn poll_write_side(
        &mut self,
        cx: &mut Context<'_>,
        op: fn(&mut crate::session::Session, StreamId) -> Result<bool, StreamError>,
    ) -> Poll<io::Result<()>> {
        self.check_deadline(Direction::Write)?;
        {
            let mut guard = self.link.lock();
            let done = op(&mut guard.session, self.id);
            guard.notify_driver();
            guard.wake_pending();
            match done {
                Err(e) => return Poll::Ready(Err(e.into())),
                Ok(true) => return Poll::Ready(Ok(())),
                Ok(false) => guard.register_write(self.id, cx),
            }
        }
        self.park(Direction::Write, cx)
    }
}

impl Stream {
    /// Parks a write that found no room, until woken or its deadline.
    fn park_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        match self.park(Direction::Write, cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Pending,
        }
    }
}

/// Writes under this are short: messages (requests, answers), which may be
/// sent as soon as possible. The same bound as [`COPY_OUTSIDE_LOCK`], so
/// that a short write is copied under the lock, a long one before it.
const SHORT_WRITE: usize = COPY_OUTSIDE_LOCK;

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.check_deadline(Direction::Read)?;
        let start = buf.filled().len();
        loop {
            let progressed = buf.filled().len() > start;
            // Take a chunk under the lock, copy it after releasing it.
            let (chunk, more) = {
                let mut guard = this.link.lock();
                // A read that empties the buffer returns without taking the
                // lock again only to find it empty (EOF or an error shows on
                // the next call).
                match guard.session.read_chunk_and_rest(this.id, buf.remaining()) {
                    Ok((ReadChunk::Data(chunk), more)) => {
                        guard.notify_driver();
                        (chunk, more)
                    }
                    Ok((ReadChunk::Eof, _)) => return Poll::Ready(Ok(())),
                    Ok((ReadChunk::Blocked, _)) if !progressed => {
                        guard.register_read(this.id, cx);
                        break;
                    }
                    Ok((ReadChunk::Blocked, _)) => return Poll::Ready(Ok(())),
                    // Bytes already copied are returned; the error comes next call.
                    Err(_) if progressed => return Poll::Ready(Ok(())),
                    Err(e) => return Poll::Ready(Err(e.into())),
                }
            };
            crate::copy::put(buf, &chunk);
            this.answering |= !chunk.is_empty();
            if chunk.is_empty() || buf.remaining() == 0 || !more {
                return Poll::Ready(Ok(()));
            }
        }
        this.park(Direction::Read, cx)
    }
}

impl Stream {
    /// Queues `data`, copying it under the lock when it is short and
    /// before taking the lock when it is long.
    fn try_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Option<io::Result<usize>> {
        let mut guard = self.link.lock();
        let written = if data.len() < COPY_OUTSIDE_LOCK {
            guard.session.write(self.id, data)
        } else {
            let room = match guard.session.write_room(self.id) {
                Ok(room) => room,
                Err(e) => return Some(Err(e.into())),
            };
            if room == 0 {
                Ok(None)
            } else {
                let data = data.get(..room).unwrap_or(data);
                let mut chunk = guard.payloads.take(data.len());
                drop(guard);
                crate::copy::extend(&mut chunk, data);
                guard = self.link.lock();
                guard.session.write_chunk(self.id, chunk.freeze())
            }
        };
        finish_write(&mut guard, self.id, cx, written)
    }
}

/// What a write that went to the send buffer returns: the bytes taken
/// (the driver told), or `None` with the writer registered to wait.
fn finish_write<E: Into<io::Error>>(
    guard: &mut ConnState,
    id: StreamId,
    cx: &mut Context<'_>,
    written: Result<Option<usize>, E>,
) -> Option<io::Result<usize>> {
    match written {
        Ok(Some(n)) => {
            guard.notify_driver();
            Some(Ok(n))
        }
        Ok(None) => {
            guard.register_write(id, cx);
            None
        }
        Err(e) => Some(Err(e.into())),
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check_deadline(Direction::Write)?;
        // Whatever path this write takes but a whole direct one may buffer.
        this.flushed = false;
        if this.answering && data.len() < SHORT_WRITE {
            match this.link.try_send_now(this.id, data, cx) {
                Some(Ok(SentNow::Written(n))) => {
                    this.answering = false;
                    this.flushed = true;
                    return Poll::Ready(Ok(n));
                }
                Some(Ok(SentNow::Handed(n))) => {
                    this.answering = false;
                    return Poll::Ready(Ok(n));
                }
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => {}
            }
        }
        if let Some(result) = this.try_write(cx, data) {
            return Poll::Ready(result);
        }
        this.park_write(cx)
    }

    /// Done once everything written is committed: framed, or buffered
    /// within the peer's window. After a write that went straight to the
    /// transport, done at once, without asking the session (so a stream
    /// reset since then reports it on its next write, not here).
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.flushed {
            self.check_deadline(Direction::Write)?;
            return Poll::Ready(Ok(()));
        }
        self.poll_write_side(cx, |s, id| s.flush(id))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_write_side(cx, |s, id| s.close_write(id))
    }
}

impl MuxedStream for Stream {
    fn id(&self) -> StreamId {
        self.id
    }

    fn close_read(&mut self) -> io::Result<()> {
        let mut guard = self.link.lock();
        let result = guard.session.close_read(self.id);
        guard.notify_driver();
        guard.wake_pending();
        result.map_err(Into::into)
    }

    fn reset_with(&mut self, code: u32) {
        let mut guard = self.link.lock();
        guard.session.reset(self.id, code);
        guard.notify_driver();
        guard.wake_pending();
    }

    fn deadlines(&self) -> Deadlines {
        self.deadlines
            .get_or_init(|| {
                // A read or write already pending registered with no
                // deadline; wake it so it registers with this one.
                self.link.lock().wake_stream(self.id);
                Deadlines::new()
            })
            .clone()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Read before locking: the clock is slow on some virtual machines,
        // and every handle and the driver queue for this lock.
        let now = now();
        let mut guard = self.link.lock();
        guard.forget_stream(self.id);
        guard.session.detach(self.id, now);
        guard.notify_driver();
        guard.wake_pending();
    }
}
