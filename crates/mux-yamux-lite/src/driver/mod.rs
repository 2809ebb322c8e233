//! The tokio task that owns the transport.
//!
//! Each turn it reads what the transport has into one buffer, decodes and
//! feeds whole frames to the session, runs due timers, pulls frames to send
//! into one write buffer (so many small frames leave in one write), wakes the
//! tasks the session's events concern, and writes. It never holds the lock
//! while doing I/O.

use bytes::BytesMut;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;
use tokio_util::codec::Decoder;

use mux_core::ConnError;
use mux_frame::{FrameCodec, FrameError};

use crate::session::ProtocolError;
use crate::shared::{lock, now, SharedRef};
use crate::wire::lite;
use write_queue::WriteQueue;

mod write_queue;

/// Stop pulling frames once this much waits to be written.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Stop reading while this much undecoded input is buffered.
const READ_HIGH_WATER: usize = 256 * 1024;
/// Read in chunks of at least this size.
const READ_CHUNK: usize = 256 * 1024;
/// Turns of the loop before yielding to the scheduler, for fairness.
const TURNS_PER_POLL: usize = 32;

pub(crate) struct Driver<T> {
    io: Pin<Box<T>>,
    shared: SharedRef,
    codec: FrameCodec,
    read_buf: BytesMut,
    out: WriteQueue,
    timer: Pin<Box<Sleep>>,
    read_closed: bool,
    /// Set once the session has ended: after this, unsent output is
    /// dropped so a peer that stopped reading cannot keep the task alive.
    flush_deadline: Option<std::time::Instant>,
    wakers: Vec<Waker>,
}

impl<T: AsyncRead + AsyncWrite> Driver<T> {
    pub(crate) fn new(io: T, shared: SharedRef) -> Self {
        let max = lock(&shared).session.max_frame_value();
        let vectored = io.is_write_vectored();
        Self {
            io: Box::pin(io),
            shared,
            codec: FrameCodec::with_max_value_len(max),
            read_buf: BytesMut::new(),
            out: WriteQueue::new(vectored),
            timer: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            read_closed: false,
            flush_deadline: None,
            wakers: Vec::new(),
        }
    }

    /// Reads from the transport if the session wants input. Returns whether
    /// anything happened.
    fn poll_read_transport(&mut self, cx: &mut Context<'_>, wants_read: bool) -> bool {
        if self.read_closed || !wants_read || self.read_buf.len() >= READ_HIGH_WATER {
            return false;
        }
        if self.read_buf.capacity().saturating_sub(self.read_buf.len()) < READ_CHUNK / 4 {
            self.read_buf.reserve(READ_CHUNK);
        }
        match tokio_util::io::poll_read_buf(self.io.as_mut(), cx, &mut self.read_buf) {
            Poll::Pending => false,
            Poll::Ready(Ok(0)) => {
                self.read_closed = true;
                true
            }
            Poll::Ready(Ok(_)) => true,
            Poll::Ready(Err(e)) => {
                self.read_closed = true;
                lock(&self.shared).session.transport_closed(Some(e));
                true
            }
        }
    }

    /// Decodes buffered input into the session, frames pending output, and
    /// collects the wakers to call. Returns whether any frame was decoded.
    fn process(&mut self) -> bool {
        let mut guard = lock(&self.shared);
        let shared = &mut *guard;
        let session = &mut shared.session;
        let now = now();
        let mut decoded = false;
        while session.wants_read() {
            match self.codec.decode(&mut self.read_buf) {
                Ok(Some(tlv)) => {
                    decoded = true;
                    match lite::decode(tlv) {
                        Ok(frame) => session.handle_frame(frame, now),
                        Err(e) => session.fail(e.into()),
                    }
                }
                Ok(None) => {
                    if self.read_closed && session.closed_reason().is_none() {
                        if self.read_buf.is_empty() {
                            session.transport_closed(None);
                        } else {
                            let expected = mux_frame::Header::parse(&self.read_buf).map_or(
                                mux_frame::HEADER_LEN,
                                |h| {
                                    usize::try_from(h.len)
                                        .unwrap_or(usize::MAX)
                                        .saturating_add(mux_frame::HEADER_LEN)
                                },
                            );
                            session.fail(ProtocolError::Truncated {
                                buffered: self.read_buf.len(),
                                expected,
                            });
                        }
                    }
                    break;
                }
                Err(FrameError::TooLarge { len, max }) => {
                    session.fail(ProtocolError::FrameTooLarge { len, max });
                    break;
                }
                Err(e) => {
                    session.transport_closed(Some(e.into()));
                    break;
                }
            }
        }
        if session.poll_timeout().is_some_and(|t| t <= now) {
            session.handle_timeout(now);
        }
        while self.out.len() < WRITE_HIGH_WATER {
            let Some(frame) = session.poll_frame(now) else {
                break;
            };
            self.out.push(&frame);
        }
        shared.collect_wakers(&mut self.wakers);
        decoded
    }

    fn wake_collected(&mut self) {
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }

    /// Writes buffered output. Returns whether bytes were written.
    fn poll_write_transport(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut wrote = false;
        while !self.out.is_empty() {
            match self.out.poll_write(self.io.as_mut(), cx) {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "transport accepted no bytes",
                    ))
                }
                Poll::Ready(Ok(_)) => wrote = true,
                Poll::Ready(Err(e)) => return Err(e),
            }
        }
        if wrote || self.out.is_empty() {
            // A flush that is pending is retried on the next turn.
            if let Poll::Ready(Err(e)) = self.io.as_mut().poll_flush(cx) {
                return Err(e);
            }
        }
        Ok(wrote)
    }

    /// Ends the task once the session is done: after its last frames are
    /// written and the transport shut down, or at the flush deadline,
    /// whichever comes first.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Option<Poll<()>> {
        let now = now();
        let (deadline, flushed) = {
            let guard = lock(&self.shared);
            // Closed, though frames may still wait to be pulled: a full
            // write queue stops the pulling, so `is_done` alone could wait
            // forever on a peer that stopped reading.
            guard.session.closed_reason()?;
            let deadline = *self
                .flush_deadline
                .get_or_insert_with(|| guard.session.flush_deadline(now));
            (deadline, guard.session.is_done() && self.out.is_empty())
        };
        if deadline <= now {
            if !flushed {
                tracing::debug!(
                    unsent = self.out.len(),
                    "transport stopped taking bytes; dropping the connection's last frames"
                );
            }
            // One try: a transport that stopped reading may never finish.
            let _ = self.io.as_mut().poll_shutdown(cx);
            self.finish(None);
            return Some(Poll::Ready(()));
        }
        if !flushed {
            return None;
        }
        // Best effort: the peer learns of the close from EOF.
        match self.io.as_mut().poll_shutdown(cx) {
            Poll::Ready(_) => {
                self.finish(None);
                Some(Poll::Ready(()))
            }
            // The timer (armed for the flush deadline) ends the wait.
            Poll::Pending => None,
        }
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let next = lock(&self.shared).session.poll_timeout();
        let next = match (next, self.flush_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(next) = next else {
            return false;
        };
        let at = tokio::time::Instant::from_std(next);
        if self.timer.deadline() != at {
            self.timer.as_mut().reset(at);
        }
        self.timer.as_mut().poll(cx).is_ready()
    }

    fn finish(&mut self, err: Option<ConnError>) {
        let mut guard = lock(&self.shared);
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

impl<T: AsyncRead + AsyncWrite> Future for Driver<T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..TURNS_PER_POLL {
            let wants_read = {
                let mut guard = lock(&this.shared);
                guard.set_driver_waker(cx);
                guard.session.wants_read()
            };
            let read = this.poll_read_transport(cx, wants_read);
            let decoded = this.process();
            this.wake_collected();
            let wrote = match this.poll_write_transport(cx) {
                Ok(wrote) => wrote,
                Err(e) => {
                    tracing::debug!(error = %e, "transport write failed");
                    this.finish(Some(ConnError::io(e)));
                    return Poll::Ready(());
                }
            };
            if let Some(out) = this.poll_finish(cx) {
                return out;
            }
            let fired = this.poll_timer(cx);
            if !(read || decoded || wrote || fired) {
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
        let mut guard = lock(&self.shared);
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
