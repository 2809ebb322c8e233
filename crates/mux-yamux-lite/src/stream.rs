//! The stream handle: tokio `AsyncRead + AsyncWrite` over one stream.

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use mux_core::{DeadlineTimer, Deadlines, Direction, MuxedStream, StreamError, StreamId};

use crate::answer_cost::Answer;
use crate::driver::DirectWrite;
use crate::session::{DirectSend, ReadChunk};
use crate::shared::{lock, now, Shared, SharedRef};
use crate::wire::lite;

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
/// - A short write (under 8 KiB) that follows a read is written to the
///   transport by the writing task when nothing else waits to be sent and
///   the transport's writes have been cheap (an in-memory pipe, not a
///   socket), without waiting for the driver's turn. Later short writes
///   are queued until the stream reads again, so streamed writes stay
///   batched.
/// - With `Config::direct_writes`, a write of 8 KiB or more goes straight
///   from the caller's buffer to the transport when nothing else waits to
///   be sent, and waits while the peer's window is closed rather than
///   being copied into the send buffer; short answers go through whatever
///   they cost, and so does a stream's first short write.
#[derive(Debug)]
pub struct Stream {
    id: u32,
    shared: SharedRef,
    /// Created on first use: most streams never set a deadline, and an
    /// idle stream should cost as little as possible.
    deadlines: OnceLock<Deadlines>,
    read_timer: DeadlineTimer,
    write_timer: DeadlineTimer,
    /// Whether a short write (under [`SHORT_WRITE`]) may be written
    /// by this task when nothing is queued: once a read delivers bytes,
    /// until one such write goes (and, with `Config::direct_writes`, from
    /// the start). A write that answers what was read is latency-bound, so
    /// saving the driver's turn pays; a writer streaming short writes would
    /// instead make one transport write per message (1 KiB writes over TCP
    /// ran at a fifth of the queued path's rate) where the driver batches
    /// them, and a stream's first write would leave apart from its FIN.
    /// Without the option, only while the transport's writes are cheap
    /// (`answer_cost`).
    short_direct: bool,
    /// The last write went direct and the transport took and flushed all
    /// of it, so nothing of this stream waits in the send buffer: a flush
    /// has nothing to do and takes no lock (a request or answer that is
    /// written and then flushed would otherwise pay one per message).
    flushed: bool,
}

impl Stream {
    pub(crate) fn new(id: u32, shared: SharedRef) -> Self {
        let short_direct = shared.direct_writes;
        Self {
            id,
            shared,
            deadlines: OnceLock::new(),
            read_timer: DeadlineTimer::new(),
            write_timer: DeadlineTimer::new(),
            short_direct,
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
        op: fn(&mut crate::session::Session, u32) -> Result<bool, StreamError>,
    ) -> Poll<io::Result<()>> {
        self.check_deadline(Direction::Write)?;
        {
            let mut guard = lock(&self.shared);
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

/// Writes at least this long are copied before the connection lock is
/// taken, so a large copy never makes the driver wait for the lock; their
/// buffers come from the payload pool.
pub(crate) const COPY_OUTSIDE_LOCK: usize = 8 * 1024;

/// Writes under this are short: the direct path takes them for messages
/// (requests, answers), to be sent as soon as possible, and longer ones
/// for bulk, which waits for the peer's window. The same bound as
/// [`COPY_OUTSIDE_LOCK`], so that a short write the direct path declines
/// is queued under the lock that path took, with no copy outside it.
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
                let mut guard = lock(&this.shared);
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
            mux_core::copy::put(buf, &chunk);
            this.short_direct |= !chunk.is_empty();
            if chunk.is_empty() || buf.remaining() == 0 || !more {
                return Poll::Ready(Ok(()));
            }
        }
        this.park(Direction::Read, cx)
    }
}

impl Stream {
    /// Writes `data` as one DATA frame straight to the transport, from the
    /// caller's buffer, when that frame would be the next one on the wire
    /// anyway (nothing queued, window open). A large write parks while the
    /// window is closed; a short one is buffered then, since its copy is
    /// cheap and the window may open before the driver's next turn.
    /// `None`: take the usual path. Never waits for the write side: if the
    /// driver is writing, queuing is as good. A `timed` write's cost goes
    /// into the connection's `answer_cost`.
    fn try_write_direct(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        short: bool,
        timed: bool,
    ) -> Option<Poll<io::Result<usize>>> {
        let egress = self.shared.egress.try_lock().filter(|e| e.is_idle());
        let direct = {
            let mut guard = lock(&self.shared);
            match guard
                .session
                .send_direct(self.id, data.len(), egress.is_some())
            {
                DirectSend::Framed(direct) => {
                    self.short_direct &= !short;
                    direct
                }
                // Queued under this lock rather than the next one.
                DirectSend::AwaitWindow | DirectSend::Declined if short => {
                    drop(egress);
                    let written = guard.session.write(self.id, data);
                    return Some(match finish_write(&mut guard, self.id, cx, written) {
                        Some(result) => Poll::Ready(result),
                        None => Poll::Pending,
                    });
                }
                DirectSend::AwaitWindow => {
                    guard.register_write(self.id, cx);
                    return Some(Poll::Pending);
                }
                DirectSend::Declined => return None,
            }
        };
        // Framed only with the write side held.
        let mut egress = egress?;
        let payload = data.get(..direct.len).unwrap_or(data);
        let head = lite::data_head(direct.id, direct.flags, direct.len);
        let started = timed.then(now);
        let result = egress.write_direct(cx, &head, payload);
        drop(egress);
        if let Some(started) = started {
            self.shared
                .answers
                .record(now().saturating_duration_since(started));
        }
        Some(Poll::Ready(match result {
            // The common case takes no second lock.
            Ok(DirectWrite::Written) => {
                self.flushed = true;
                Ok(direct.len)
            }
            Ok(DirectWrite::Queued) => {
                lock(&self.shared).wake_driver();
                Ok(direct.len)
            }
            Err(e) => {
                // The frame is lost with the transport: this writer learns
                // it now, everyone else as the connection closes.
                tracing::debug!(error = %e, "transport write failed");
                let mut guard = lock(&self.shared);
                guard.session.transport_closed(Some(e));
                guard.wake_driver();
                guard.wake_pending();
                let err = guard.session.write_room(self.id).err();
                Err(err.map_or_else(|| io::ErrorKind::BrokenPipe.into(), Into::into))
            }
        }))
    }

    /// Queues `data`, copying it under the lock when it is short and
    /// before taking the lock when it is long.
    fn try_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Option<io::Result<usize>> {
        let mut guard = lock(&self.shared);
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
                mux_core::copy::extend(&mut chunk, data);
                guard = lock(&self.shared);
                guard.session.write_chunk(self.id, chunk.freeze())
            }
        };
        finish_write(&mut guard, self.id, cx, written)
    }
}

/// What a write that went to the send buffer returns: the bytes taken
/// (the driver told), or `None` with the writer registered to wait.
fn finish_write<E: Into<io::Error>>(
    guard: &mut Shared,
    id: u32,
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
        let short = data.len() < SHORT_WRITE;
        let direct = if !short {
            this.shared
                .direct_writes
                .then_some(Answer::Write { timed: false })
        } else if !this.short_direct {
            None
        } else if this.shared.direct_writes {
            // The option writes answers through whatever they cost.
            Some(Answer::Write { timed: false })
        } else {
            Some(this.shared.answers.decide())
        };
        if let Some(Answer::Write { timed }) = direct {
            match this.try_write_direct(cx, data, short, timed) {
                Some(Poll::Ready(result)) => return Poll::Ready(result),
                Some(Poll::Pending) => return this.park_write(cx),
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
        StreamId(self.id)
    }

    fn close_read(&mut self) -> io::Result<()> {
        let mut guard = lock(&self.shared);
        let result = guard.session.close_read(self.id);
        guard.notify_driver();
        guard.wake_pending();
        result.map_err(Into::into)
    }

    fn reset_with(&mut self, code: u32) {
        let mut guard = lock(&self.shared);
        guard.session.reset(self.id, code);
        guard.notify_driver();
        guard.wake_pending();
    }

    fn deadlines(&self) -> Deadlines {
        self.deadlines
            .get_or_init(|| {
                // A read or write already pending registered with no
                // deadline; wake it so it registers with this one.
                lock(&self.shared).wake_stream(self.id);
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
        let mut guard = lock(&self.shared);
        guard.forget_stream(self.id);
        guard.session.detach(self.id, now);
        guard.notify_driver();
        guard.wake_pending();
    }
}
