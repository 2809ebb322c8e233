//! One stream's state inside the session.
//!
//! A stream has two halves that move independently, plus a reset that ends
//! both. The transition table lives in docs/PROTOCOL.md ("Stream states");
//! `transitions` has one method per row, named after its event, and
//! nothing else changes a stream's state; `state` holds the states and
//! flags they change, `flow_control` the window arithmetic. The fields are
//! private to this module.
//!
//! ```text
//! send half:  Open --close_write--> FinQueued --FIN framed--> FinSent
//! recv half:  Open --FIN received--> FinReceived
//! either:     * --reset (local or remote)--> Reset (both halves, final)
//! ```

mod flow_control;
mod state;
mod transitions;

use mux_core::StreamError;

use super::chunks::Chunks;
pub(crate) use flow_control::TuneInput;
use flow_control::{RecvWindow, SendWindow};
use state::StreamFlags;
pub(crate) use state::{CtrlTurn, PeerFault};
pub(crate) use state::{RecvState, ResetInfo, SendState};

/// Per-stream state. Nothing here allocates until data flows, so an idle
/// stream stays small.
#[derive(Debug)]
pub(crate) struct Stream {
    send: SendState,
    recv: RecvState,
    reset: Option<ResetInfo>,
    /// Bytes written by the application and not yet framed.
    send_buf: Chunks,
    send_window: SendWindow,
    /// Received payloads not yet read by the application.
    recv_buf: Chunks,
    recv_window: RecvWindow,
    flags: StreamFlags,
}

impl Stream {
    /// Whether the peer's credit covers `len` more bytes of DATA; the
    /// credit when it does not.
    pub(crate) fn admits(&self, len: usize) -> Result<(), u32> {
        self.recv_window.admit(len).map(|_| ())
    }

    pub(crate) fn is_reset(&self) -> bool {
        self.reset.is_some()
    }

    /// The stream's receive window, which the connection's receive budget
    /// counts.
    pub(crate) fn recv_window(&self) -> u32 {
        self.recv_window.window()
    }

    /// An open this side made that the peer has not answered (ACK) and
    /// that has not ended otherwise: one of the session's pending opens.
    pub(crate) fn is_unanswered_open(&self) -> bool {
        self.flags.outbound && !self.flags.acked
    }

    /// Whether received bytes wait to be read.
    pub(crate) fn has_unread(&self) -> bool {
        !self.recv_buf.is_empty()
    }

    /// Unread received bytes kept as slices of the buffers they were
    /// read into.
    pub(crate) fn received_by_reference(&self) -> usize {
        self.recv_buf.by_reference()
    }

    /// Copies the unread received bytes that are slices into storage of
    /// their own.
    pub(crate) fn copy_out_received(&mut self) {
        self.recv_buf.copy_out_references();
    }

    /// Whether the peer's FIN arrived.
    pub(crate) fn is_fin_received(&self) -> bool {
        self.recv == RecvState::FinReceived
    }

    /// Whether this side has data (or a FIN) it may frame now.
    pub(crate) fn can_send(&self) -> bool {
        if self.reset.is_some() {
            return false;
        }
        match self.send {
            SendState::Open => !self.send_buf.is_empty() && !self.send_window.is_empty(),
            SendState::FinQueued => {
                self.send_buf.is_empty() || !self.send_window.is_empty() // FIN, or data then FIN
            }
            SendState::FinSent => false,
        }
    }

    /// Whether everything buffered (and a queued FIN) fits the peer's
    /// window, so framing it needs nothing more from the peer. Before the
    /// peer's HELLO (`peer_known` false) its window is not known, so
    /// nothing is.
    pub(crate) fn send_committed(&self, peer_known: bool) -> bool {
        peer_known && self.reset.is_none() && self.send_window.covers(self.send_buf.len())
    }

    /// Rows 11 and 12: how many bytes a write may queue within `limit`
    /// (`closed`: why the connection ended, if it has), or why it cannot
    /// write at all.
    pub(crate) fn write_room(
        &self,
        limit: usize,
        closed: Option<StreamError>,
    ) -> Result<usize, StreamError> {
        if let Some(r) = self.reset {
            return Err(r.into());
        }
        if self.send != SendState::Open {
            return Err(StreamError::WriteClosed);
        }
        if let Some(e) = closed {
            return Err(e);
        }
        // The limit shrinks as more streams send, so the buffer may hold
        // more than it allows now: then there is no room.
        Ok(limit.saturating_sub(self.send_buf.len()))
    }

    /// Row 13a: whether every byte written is committed (see
    /// [`send_committed`](Self::send_committed)).
    pub(crate) fn flush(
        &self,
        peer_known: bool,
        closed: Option<StreamError>,
    ) -> Result<bool, StreamError> {
        if let Some(r) = self.reset {
            return Err(r.into());
        }
        if self.send_buf.is_empty() && !self.flags.unsent_dropped {
            return Ok(true);
        }
        if let Some(e) = closed {
            return Err(e);
        }
        Ok(self.send_committed(peer_known))
    }

    /// Whether a control frame (SYN, ACK or window update) is owed.
    pub(crate) fn needs_ctrl(&self) -> bool {
        self.reset.is_none()
            && (self.flags.syn_pending || self.flags.ack_pending || self.flags.window_pending)
    }

    /// Both halves are final: FIN both ways, or reset.
    pub(crate) fn is_finished(&self) -> bool {
        self.reset.is_some()
            || (self.send == SendState::FinSent && self.recv == RecvState::FinReceived)
    }

    /// Row 24a: the handle is gone, this side's bytes and FIN are out, and
    /// the peer, still sending, has used all its credit: none comes back
    /// to a dropped stream, so without a reset the peer would wait for
    /// `close_timeout`.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.flags.detached
            && self.flags.read_closed
            && self.reset.is_none()
            && self.send == SendState::FinSent
            && self.recv == RecvState::Open
            && self.recv_window.credit() == 0
            && !self.flags.window_pending
    }

    /// Row 38: the stream can leave the session's table: finished, no
    /// handle, and nothing owed to the wire.
    pub(crate) fn is_reclaimable(&self) -> bool {
        self.flags.detached && self.is_finished() && !self.needs_ctrl() && !self.flags.in_backlog
    }

    /// Whether reads fail: a reset ends them, unless it was a peer's
    /// [`DROPPED`](crate::frame::reset_code::DROPPED) after its FIN.
    pub(crate) fn read_reset(&self) -> Option<ResetInfo> {
        self.reset.filter(|_| !self.flags.reads_outlive_reset)
    }

    // ----- the session's queues -----------------------------------------

    /// Marks the stream as queued for a control turn if it owes a control
    /// frame and is not queued yet; `true` when the caller must queue it.
    pub(crate) fn enter_ctrl_queue(&mut self) -> bool {
        if !self.flags.in_ctrl_queue && self.needs_ctrl() {
            self.flags.in_ctrl_queue = true;
            return true;
        }
        false
    }

    /// The stream's control-queue entry was taken.
    pub(crate) fn leave_ctrl_queue(&mut self) {
        self.flags.in_ctrl_queue = false;
    }

    /// Marks the stream as queued for a data turn if it can send and is
    /// not queued yet; `true` when the caller must queue it.
    pub(crate) fn enter_data_queue(&mut self) -> bool {
        if !self.flags.in_data_queue && self.can_send() {
            self.flags.in_data_queue = true;
            return true;
        }
        false
    }

    /// The stream's data-queue entry was taken.
    pub(crate) fn leave_data_queue(&mut self) {
        self.flags.in_data_queue = false;
    }

    /// The stream's entry in the data queue stands after its DATA went
    /// out of turn, in the control pass.
    pub(crate) fn mark_in_data_queue(&mut self) {
        self.flags.in_data_queue = true;
    }

    pub(crate) fn in_data_queue(&self) -> bool {
        self.flags.in_data_queue
    }

    pub(crate) fn in_ctrl_queue(&self) -> bool {
        self.flags.in_ctrl_queue
    }

    /// Whether the live-stream totals count this stream, and which way.
    pub(crate) fn counted_live(&self) -> Option<bool> {
        self.flags.live.then_some(self.flags.outbound)
    }

    // ----- invariants ---------------------------------------------------

    /// The stream's part of
    /// [`Session::check_invariants`](super::Session::check_invariants):
    /// a description of the first violation.
    pub(crate) fn check_invariants(
        &self,
        id: u32,
        send_buffer: usize,
        max_window: u32,
    ) -> Result<(), String> {
        if self.send_buf.len() > send_buffer {
            return Err(format!("stream {id}: send buffer over its limit"));
        }
        if self.send_window.get() > crate::config::MAX_WINDOW {
            return Err(format!("stream {id}: send window over the maximum"));
        }
        let w = &self.recv_window;
        if w.window() > max_window {
            return Err(format!("stream {id}: receive window over the maximum"));
        }
        let buffered = self.recv_buf.len();
        if u64::try_from(buffered).unwrap_or(u64::MAX) != u64::from(w.buffered()) {
            return Err(format!("stream {id}: receive buffer miscounted"));
        }
        let total = [w.credit(), w.buffered(), w.consumed()]
            .iter()
            .map(|&n| u64::from(n))
            .sum::<u64>();
        if total != u64::from(w.window()) {
            return Err(format!(
                "stream {id}: credit {} + buffered {} + consumed {} != window {}",
                w.credit(),
                w.buffered(),
                w.consumed(),
                w.window()
            ));
        }
        if self.reset.is_some() && !self.send_buf.is_empty() {
            return Err(format!(
                "stream {id}: reset stream still buffers data to send"
            ));
        }
        if self.read_reset().is_some() && w.buffered() != 0 {
            return Err(format!("stream {id}: reset stream still buffers data"));
        }
        Ok(())
    }

    /// The receive window counts exactly the bytes of the receive buffer.
    fn debug_check_buffered(&self) {
        debug_assert_eq!(
            u64::try_from(self.recv_buf.len()).ok(),
            Some(u64::from(self.recv_window.buffered())),
            "receive buffer miscounted"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_no_larger_than_its_parts() {
        // Idle memory per stream is a tested budget (tests/allocations.rs).
        assert!(std::mem::size_of::<Stream>() <= 80);
    }
}
