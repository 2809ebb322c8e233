//! The tokio task that owns the transport.
//!
//! Each turn it reads what the transport has into one buffer, decodes and
//! feeds whole frames to the session, runs due timers, pulls frames to send
//! into one write buffer (so many small frames leave in one write), wakes the
//! tasks the session's events concern, and writes. It never holds the
//! session's lock while doing I/O. It is the only code that maps frames to
//! bytes, through the connection's [`Layout`]. The handles reach the
//! connection through its [`Link`]; the one write they may start
//! themselves, a short answer, goes through the write side here
//! ([`Link::try_send_now`]).

use bytes::BufMut;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf};
use tokio::time::Sleep;
use tracing::Instrument;

use mux_core::ConnError;

use crate::config::Config;
use crate::session::{Role, Session};
use crate::state::{now, ConnState};
use crate::wire::{self, Layout};
pub(crate) use link::{Link, SentNow};
use read_buffer::{ReadBuffer, Trim};
use write_side::WriteSide;

mod answer_cost;
mod link;
mod read_buffer;
mod write_queue;
mod write_side;

/// Stop pulling frames once this much waits to be written, while the
/// transport takes whole batches: over TCP, fewer and larger writes carry
/// a few streams faster than batches of half the size (docs/DECISIONS.md).
const WRITE_HIGH_WATER: usize = 512 * 1024;
/// The same from the start and once the transport pushes back: a queue it
/// does not drain only delays the control frames behind it (a pong, a
/// window update), so it is kept shorter.
const WRITE_HIGH_WATER_BACKED_UP: usize = 256 * 1024;
/// Stop reading while this much undecoded input is buffered.
const READ_HIGH_WATER: usize = 256 * 1024;
/// Turns of the loop before yielding to the scheduler, for fairness.
const TURNS_PER_POLL: usize = 32;
/// What one read takes while input is discarded at the close.
const DISCARD_CHUNK: usize = 8 * 1024;

/// What one turn learned about the session while holding the lock.
struct Turn {
    /// Decoding stopped with bytes buffered because the session took no
    /// more input.
    decode_held: bool,
    /// The session wants input, as of the end of processing.
    wants_read: bool,
    /// The session has ended.
    closed: bool,
    /// The session has ended and every frame it wanted to send was pulled.
    session_done: bool,
    /// This side ended the session (not the peer, nor a fault of its), so
    /// input is read to its end before the transport is dropped.
    ended_here: bool,
    /// Frames are still waiting to be pulled (the write queue was full).
    more_to_send: bool,
    /// When the session next wants `handle_timeout`.
    next_timeout: Option<Instant>,
}

/// Starts a connection over `io`: builds its session and write side, and
/// spawns the task that drives it. Must be called inside a tokio runtime.
pub(crate) fn spawn<T>(io: T, role: Role, config: Config) -> Arc<Link>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let config = config.normalized();
    let (read_half, write_half) = tokio::io::split(io);
    let write = WriteSide::new(write_half, wire::layout(&config));
    let session = Session::new(role, config.clone(), now());
    let link = Arc::new(Link::new(ConnState::new(session), write));
    let driver = Driver::new(read_half, link.clone(), wire::layout(&config), &config);
    let span = tracing::debug_span!("mux", role = ?role);
    tokio::spawn(driver.instrument(span));
    link
}

struct Driver<T> {
    io: ReadHalf<T>,
    link: Arc<Link>,
    layout: Box<dyn Layout>,
    read: ReadBuffer,
    timer: Pin<Box<Sleep>>,
    read_closed: bool,
    /// Set once the session has ended: after this, unsent output is
    /// dropped so a peer that stopped reading cannot keep the task alive.
    flush_deadline: Option<Instant>,
    /// The transport's write side was shut down after the last frames.
    write_shut: bool,
    /// The timer was polled at its current deadline and registered.
    timer_armed: bool,
    /// When the read buffer may let go of the blocks it keeps for now.
    trim_at: Option<Instant>,
    /// How much the write queue may hold before frames stop being pulled.
    write_limit: usize,
    wakers: Vec<Waker>,
}

impl<T: AsyncRead + AsyncWrite> Driver<T> {
    /// A driver reading `io` with `layout`; `config` is the connection's,
    /// already normalized.
    fn new(io: ReadHalf<T>, link: Arc<Link>, layout: Box<dyn Layout>, config: &Config) -> Self {
        Self {
            io,
            link,
            read: ReadBuffer::new(layout.usual_frame_len(), config.read_blocks_kept),
            layout,
            timer: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            read_closed: false,
            flush_deadline: None,
            write_shut: false,
            timer_armed: false,
            trim_at: None,
            write_limit: WRITE_HIGH_WATER_BACKED_UP,
            wakers: Vec::new(),
        }
    }

    /// Reads from the transport while the session wants input, until the
    /// transport has nothing more (its waker is then registered), the
    /// buffer is full, or it ended. Returns whether the read is armed: a
    /// later turn need not read again until the transport wakes the task.
    fn poll_read_transport(&mut self, cx: &mut Context<'_>, wants_read: bool) -> bool {
        loop {
            if self.read_closed {
                return true;
            }
            // A frame in a buffer of its own is read whole, however long.
            let full = self.read.bytes().len() >= READ_HIGH_WATER && !self.read.holds_oversize();
            if !wants_read || full {
                return false;
            }
            if self.read.oversize_frame(&*self.layout).is_some() {
                let mut guard = self.link.lock();
                if !admit_oversize(&mut self.read, &*self.layout, &mut guard.session) {
                    // The session has failed; the next turn sends GO_AWAY.
                    return false;
                }
            }
            let Some(limit) = self.read.make_room(&*self.layout) else {
                return false;
            };
            let mut dst = self.read.bytes().limit(limit);
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut dst) {
                Poll::Pending => return true,
                Poll::Ready(Ok(0)) => self.read_closed = true,
                Poll::Ready(Ok(n)) => self.read.note_read(n),
                Poll::Ready(Err(e)) => {
                    self.read_closed = true;
                    self.link.lock().session.transport_closed(Some(e));
                }
            }
        }
    }

    /// Decodes buffered input into the session, frames pending output, and
    /// collects the wakers to call; reads, under the same lock, what the
    /// rest of the turn needs to know about the session.
    fn process(&mut self, now: Instant) -> Turn {
        let mut write = self.link.write.lock();
        let mut guard = self.link.lock();
        let state = &mut *guard;
        let session = &mut state.session;
        let mut decode_held = false;
        let read_buf = self.read.bytes();
        loop {
            if !session.wants_read() {
                // Frames may still wait in the buffer (a pong is owed, or
                // replies pile up): decode them once the session can take
                // them, without waiting for the transport.
                decode_held = !read_buf.is_empty();
                break;
            }
            match self.layout.decode(read_buf) {
                Ok(Some(frame)) => session.handle_frame(frame, now),
                Ok(None) => {
                    if self.read_closed && session.closed_reason().is_none() {
                        if read_buf.is_empty() {
                            session.transport_closed(None);
                        } else {
                            session.fail(self.layout.truncated(read_buf));
                        }
                    }
                    break;
                }
                Err(e) => {
                    session.fail(e);
                    break;
                }
            }
        }
        self.read.keep_within(session);
        if !decode_held && session.closed_reason().is_none() {
            // Decoding stopped at a partial frame: one too long for a
            // block must be admitted before the next read.
            admit_oversize(&mut self.read, &*self.layout, session);
        }
        if session.poll_timeout().is_some_and(|t| t <= now) {
            session.handle_timeout(now);
        }
        while write.out.len() < self.write_limit {
            let Some(frame) = session.poll_frame(now) else {
                break;
            };
            write.push(frame);
        }
        state.collect_wakers(&mut self.wakers);
        if !write.out.spent().is_empty() {
            state.payloads.give_back(write.out.spent());
        }
        let session = &state.session;
        let closed = session.closed_reason().is_some();
        if closed && self.flush_deadline.is_none() {
            self.flush_deadline = Some(session.flush_deadline(now));
        }
        Turn {
            decode_held,
            wants_read: session.wants_read(),
            closed,
            session_done: session.is_done(),
            ended_here: matches!(session.closed_reason(), Some(ConnError::Closed)),
            more_to_send: session.wants_transmit(),
            next_timeout: session.poll_timeout(),
        }
    }

    fn wake_collected(&mut self) {
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }

    /// Writes buffered output. Returns whether bytes were written. The
    /// larger write limit applies only after the transport took a batch of
    /// at least the smaller one whole, until it next pushes back.
    fn poll_write_transport(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut write = self.link.write.lock();
        let written = write.poll_write_out(cx)?;
        if !write.is_idle() {
            self.write_limit = WRITE_HIGH_WATER_BACKED_UP;
        } else if written >= WRITE_HIGH_WATER_BACKED_UP {
            self.write_limit = WRITE_HIGH_WATER;
        }
        Ok(written > 0)
    }

    /// Ends the task once the session is done: after its last frames are
    /// written and the transport shut down, or at the flush deadline,
    /// whichever comes first. A closed session may still hold frames it
    /// could not pull (a full write queue stops the pulling), so a peer that
    /// stopped reading cannot keep the task alive past the deadline.
    fn poll_finish(&mut self, cx: &mut Context<'_>, turn: &Turn, now: Instant) -> Option<Poll<()>> {
        if !turn.closed {
            return None;
        }
        let mut write = self.link.write.lock();
        let flushed = turn.session_done && write.is_idle();
        if self.flush_deadline.is_some_and(|d| d <= now) {
            if !flushed {
                tracing::debug!(
                    unsent = write.out.len(),
                    "transport stopped taking bytes; dropping the connection's last frames"
                );
            }
            // One try: a transport that stopped reading may never finish.
            let _ = write.poll_shutdown(cx);
            drop(write);
            self.finish(None);
            return Some(Poll::Ready(()));
        }
        if !flushed {
            return None;
        }
        if !self.write_shut {
            // Best effort: the peer learns of the close from EOF.
            if write.poll_shutdown(cx).is_pending() {
                // The timer (armed for the flush deadline) ends the wait.
                return None;
            }
            self.write_shut = true;
        }
        drop(write);
        if turn.ended_here && !self.discard_input(cx) {
            return None;
        }
        self.finish(None);
        Some(Poll::Ready(()))
    }

    /// Once the last frames of a close this side started are out and the
    /// write side is shut down: reads and discards what the peer still
    /// sends until it ends its side. A TCP socket closed with unread input
    /// sends RST instead of FIN, and a peer that gets RST may lose the
    /// GO_AWAY still waiting in its receive buffer; the flush deadline
    /// bounds the wait. A peer that broke the protocol or stopped
    /// answering gets no such courtesy: its input is not read any more.
    /// Returns whether the input has ended.
    fn discard_input(&mut self, cx: &mut Context<'_>) -> bool {
        let mut scratch = [0u8; DISCARD_CHUNK];
        for _ in 0..TURNS_PER_POLL {
            if self.read_closed {
                return true;
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Pending => return false,
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
                Poll::Ready(_) => self.read_closed = true,
            }
        }
        // A peer still sending at full speed: give other tasks a turn.
        cx.waker().wake_by_ref();
        false
    }

    /// Arms the timer for the next deadline. The `Sleep` is polled only
    /// when its deadline moved (to register it) or has passed: a registered
    /// `Sleep` keeps the task's waker, so polling it every turn is waste.
    fn poll_timer(&mut self, cx: &mut Context<'_>, next: Option<Instant>, now: Instant) -> bool {
        // A trim that came due on a turn that had not caught up waits for
        // one that has; the timer must not fire for it again meanwhile.
        let trim_at = self.trim_at.filter(|&at| at > now);
        let Some(next) = [next, self.flush_deadline, trim_at]
            .into_iter()
            .flatten()
            .min()
        else {
            return false;
        };
        let at = tokio::time::Instant::from_std(next);
        let armed_at = self.timer.deadline();
        if self.timer_armed && armed_at <= at && armed_at.into_std() > now {
            // Armed no later than needed. Deadlines that only move later
            // (keepalive, after every frame received) then cost one early
            // turn when the timer fires instead of a timer reset per turn.
            return false;
        }
        if armed_at != at {
            self.timer.as_mut().reset(at);
        }
        let fired = self.timer.as_mut().poll(cx).is_ready();
        self.timer_armed = !fired;
        fired
    }

    fn finish(&mut self, err: Option<ConnError>) {
        self.link.write.lock().close();
        let mut guard = self.link.lock();
        if let Some(err) = err {
            guard.session.abort(err);
        } else if guard.session.closed_reason().is_none() {
            guard.session.abort(ConnError::Closed);
        }
        guard.driver_done = true;
        guard.wake_all_into(&mut self.wakers);
        guard.collect_wakers(&mut self.wakers);
        drop(guard);
        self.wake_collected();
    }
}

/// When the frame at the front of `read` is longer than a block: asks
/// `session` whether its stream's credit admits it (from the header, before
/// the payload is read) and, if so, gives it a buffer of its own. `false`
/// when the session refused it (and failed).
fn admit_oversize(read: &mut ReadBuffer, layout: &dyn Layout, session: &mut Session) -> bool {
    let Some(total) = read.oversize_frame(layout) else {
        return true;
    };
    let admitted = layout
        .data_header(read.bytes())
        .is_some_and(|(id, len)| session.admit_large_data(id, len));
    if admitted {
        read.hold_oversize(total);
    }
    admitted
}

impl<T: AsyncRead + AsyncWrite> Future for Driver<T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..TURNS_PER_POLL {
            let wants_read = {
                let mut guard = this.link.lock();
                guard.set_driver_waker(cx);
                guard.session.wants_read()
            };
            let read_armed = this.poll_read_transport(cx, wants_read);
            let now = now();
            let turn = this.process(now);
            this.wake_collected();
            // Caught up with the transport: a good moment to let go of
            // buffers, once the connection has gone quiet (checked when
            // the trim timer is due; a turn that did not catch up leaves it
            // to the next one that does).
            if read_armed && this.read.bytes().is_empty() && this.trim_at.is_none_or(|at| at <= now)
            {
                this.trim_at = None;
                match this.read.trim(now) {
                    Trim::Nothing => {}
                    Trim::Later(at) => this.trim_at = Some(at),
                    Trim::Done => {
                        this.link.write.lock().out.release_idle_storage();
                        this.link.lock().release_idle_storage();
                        this.wakers = Vec::new();
                    }
                }
            }
            let wrote = match this.poll_write_transport(cx) {
                Ok(wrote) => wrote,
                Err(e) => {
                    tracing::debug!(error = %e, "transport write failed");
                    this.finish(Some(ConnError::io(e)));
                    return Poll::Ready(());
                }
            };
            if let Some(out) = this.poll_finish(cx, &turn, now) {
                return out;
            }
            let fired = this.poll_timer(cx, turn.next_timeout, now);
            // Another turn is needed only for work nothing will wake the
            // task for: a read that is not armed while the session now
            // wants input (it did not before, or the buffer was full),
            // frames held in the buffer, or frames the full write queue
            // left in the session. Output still queued means the transport
            // returned Pending and will wake the task.
            let read_again = turn.wants_read && (!read_armed || turn.decode_held);
            let more_output = wrote && turn.more_to_send;
            if !(read_again || more_output || fired) {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T> Drop for Driver<T> {
    fn drop(&mut self) {
        // The runtime may drop the task before it finished (shutdown);
        // nobody may wait forever on a transport that no longer exists.
        self.link.write.lock().close();
        let mut guard = self.link.lock();
        if !guard.driver_done {
            guard.session.abort(ConnError::Closed);
            guard.driver_done = true;
            let mut wakers = Vec::new();
            guard.wake_all_into(&mut wakers);
            guard.collect_wakers(&mut wakers);
            drop(guard);
            for w in wakers {
                w.wake();
            }
        }
    }
}
