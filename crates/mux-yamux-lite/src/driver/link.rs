//! What the driver task and the handles of one connection share: the
//! connection's state under its lock, and the transport's write side.
//!
//! Handles change state under [`Link::lock`] and wake the driver; the
//! driver alone reads the transport and turns frames into bytes. The one
//! write a handle may start itself is a short answer
//! ([`Link::try_send_now`]), encoded and written here, on the driver's side
//! of the seam.
//!
//! Lock order: `write` first, then `state`.

use mux_core::StreamId;
use parking_lot::{Mutex, MutexGuard};
use std::io;
use std::task::Context;

use super::answer_cost::{Answer, AnswerCost};
use super::write_side::{DirectWrite, WriteSide};
use crate::state::{now, ConnState};

/// The shared part of one connection.
#[derive(Debug)]
pub(crate) struct Link {
    state: Mutex<ConnState>,
    pub(super) write: Mutex<WriteSide>,
    /// Whether short answers pay to be written by the task that wrote them.
    answers: AnswerCost,
}

/// What became of a write handed to [`Link::try_send_now`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SentNow {
    /// This many bytes are on the transport, flushed.
    Written(usize),
    /// This many bytes are framed; the transport took part of the frame or
    /// none, and the driver writes the rest.
    Handed(usize),
}

impl Link {
    pub(crate) fn new(state: ConnState, write: WriteSide) -> Self {
        Self {
            state: Mutex::new(state),
            write: Mutex::new(write),
            answers: AnswerCost::default(),
        }
    }

    /// Locks the connection's state. `parking_lot`'s mutex: it does not
    /// poison, since every critical section leaves the session consistent
    /// between statements that can panic (none should), and refusing
    /// service forever after a panic would be worse. No critical section
    /// does I/O.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock()
    }

    /// Writes `data`, a short answer on stream `id`, to the transport from
    /// the caller's task when that frame would be the next bytes on the
    /// wire anyway (nothing queued, the peer's window open) and the
    /// transport's writes have been cheap. Saves the driver's turn before
    /// an answer leaves. `None`: not now; queue it as usual. Never waits
    /// for the write side: if the driver is writing, queuing is as good.
    pub(crate) fn try_send_now(
        &self,
        id: StreamId,
        data: &[u8],
        cx: &mut Context<'_>,
    ) -> Option<io::Result<SentNow>> {
        let Answer::Write { timed } = self.answers.decide() else {
            return None;
        };
        let mut write = self.write.try_lock().filter(|w| w.is_idle())?;
        let framed = self.lock().session.frame_now(id, data.len())?;
        let payload = data.get(..framed.len).unwrap_or(data);
        let head = write
            .layout()
            .data_head(framed.id, framed.flags, framed.len);
        let started = timed.then(now);
        let result = write.write_direct(cx, head.as_slice(), payload);
        drop(write);
        if let Some(started) = started {
            self.answers
                .record(now().saturating_duration_since(started));
        }
        Some(match result {
            // The common case takes no second lock.
            Ok(DirectWrite::Written) => Ok(SentNow::Written(framed.len)),
            Ok(DirectWrite::Queued) => {
                self.lock().wake_driver();
                Ok(SentNow::Handed(framed.len))
            }
            Err(e) => {
                // The frame is lost with the transport: this writer learns
                // it now, everyone else as the connection closes.
                tracing::debug!(error = %e, "transport write failed");
                let mut state = self.lock();
                state.session.transport_closed(Some(e));
                state.wake_driver();
                state.wake_pending();
                let err = state.session.write_room(id).err();
                Err(err.map_or_else(|| io::ErrorKind::BrokenPipe.into(), Into::into))
            }
        })
    }
}
