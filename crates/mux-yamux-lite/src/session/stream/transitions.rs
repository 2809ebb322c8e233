//! A stream's transitions: one method per row of the table in
//! docs/PROTOCOL.md ("Stream states"), each named after the event of its
//! row. Only these methods change a stream's state; the session calls them
//! and does the connection's part (frames, events, counts, queues).

use bytes::Bytes;
use std::time::Instant;

use mux_core::StreamError;

use super::super::chunks::{Chunks, Spares};
use super::flow_control::{RecvWindow, SendWindow, TuneInput};
use super::state::{CtrlTurn, PeerFault, RecvState, ResetInfo, SendState, StreamFlags};
use super::Stream;
use crate::frame::Flags;

/// Received payloads shorter than this are copied into the stream's
/// buffer instead of kept as slices of the driver's read buffer: a slice
/// keeps its whole read buffer alive, and each kept slice costs a queue
/// entry. Bulk transfers use larger frames, so they are not copied.
const COPY_PAYLOADS_BELOW: usize = 16 * 1024;

impl Stream {
    /// Row 1: the application opens a stream. Its SYN is owed; before the
    /// peer's HELLO `send_window` is 0.
    pub(crate) fn on_open(send_window: u32, recv_window: u32, advertised: u32) -> Self {
        Self::new(true, send_window, recv_window, advertised)
    }

    /// Row 5: the peer's SYN opens a stream; it waits in the accept
    /// backlog, without a handle.
    pub(crate) fn on_syn(send_window: u32, recv_window: u32, advertised: u32) -> Self {
        Self::new(false, send_window, recv_window, advertised)
    }

    /// A stream with a receive window of `recv_window`, of which the peer
    /// already assumes `advertised` (a yamux peer assumes 256 KiB); the
    /// rest goes out as the delta of its first window update, with its
    /// SYN or ACK.
    fn new(outbound: bool, send_window: u32, recv_window: u32, advertised: u32) -> Self {
        let recv_window = RecvWindow::with_advertised(recv_window, advertised);
        let window_pending = recv_window.consumed() > 0;
        Self {
            send: SendState::Open,
            recv: RecvState::Open,
            reset: None,
            send_buf: Chunks::default(),
            send_window: SendWindow::new(send_window),
            recv_buf: Chunks::default(),
            recv_window,
            flags: StreamFlags {
                outbound,
                syn_pending: outbound,
                window_pending,
                detached: !outbound,
                in_backlog: !outbound,
                live: true,
                ..StreamFlags::default()
            },
        }
    }

    /// Row 3: the stream's turn in the control pass. Takes the SYN and ACK
    /// owed and, if a window update is owed while the peer may still send,
    /// returns the consumed credit plus the growth that `growth` (the
    /// session's auto-tuning) picks from what the window reports
    /// ([`TuneInput`]).
    pub(crate) fn on_ctrl_turn(
        &mut self,
        can_send_data: bool,
        now: Instant,
        growth: impl FnOnce(TuneInput) -> u32,
    ) -> CtrlTurn {
        if !self.needs_ctrl() {
            return CtrlTurn::Nothing;
        }
        if !self.flags.window_pending && self.can_send() && can_send_data {
            return CtrlTurn::RideOnData;
        }
        let flags = self.take_handshake_flags();
        let mut delta = 0;
        let mut grown = 0;
        if std::mem::take(&mut self.flags.window_pending) && self.recv == RecvState::Open {
            let w = &mut self.recv_window;
            grown = growth(w.tune_input());
            delta = w.on_update_framed(grown, now);
        }
        CtrlTurn::Window {
            flags,
            delta,
            grown,
        }
    }

    /// Row 6: the application accepts the stream from the backlog; the
    /// ACK is owed.
    pub(crate) fn on_accept(&mut self) {
        debug_assert!(
            self.flags.in_backlog,
            "accepted a stream not in the backlog"
        );
        self.flags.in_backlog = false;
        self.flags.detached = false;
        self.flags.ack_pending = true;
    }

    /// Row 7: `close()` refuses the stream still in the backlog; the
    /// session resets it next ([`on_local_reset`](Self::on_local_reset)).
    pub(crate) fn on_refused(&mut self) {
        self.flags.in_backlog = false;
    }

    /// Rows 8 and 9: the peer's ACK. `Ok(true)` when it answers an open
    /// still awaiting it, so its pending-open slot frees.
    pub(crate) fn on_ack(&mut self) -> Result<bool, PeerFault> {
        if !self.flags.outbound {
            return Err(PeerFault::UnexpectedAck);
        }
        Ok(!std::mem::replace(&mut self.flags.acked, true))
    }

    /// Row 36: an open that ended (finished or reset) before its ACK
    /// counts as answered. `true` when that frees its pending-open slot.
    pub(crate) fn on_open_ended(&mut self) -> bool {
        if self.flags.outbound && !self.flags.acked && self.is_finished() {
            self.flags.acked = true;
            return true;
        }
        false
    }

    /// Row 37: the stream finished and leaves the live-stream totals.
    /// `Some(outbound)` the first time, for the count to release.
    pub(crate) fn on_finished(&mut self) -> Option<bool> {
        if self.is_finished() && std::mem::take(&mut self.flags.live) {
            return Some(self.flags.outbound);
        }
        None
    }

    /// Rows 7, 10, 20, 24, 24a, 27, 29, 34: this side resets the stream.
    /// Both buffers and the owed SYN, ACK and update go. `None` if it was
    /// already reset; otherwise whether the peer knows the stream, so
    /// that a RESET goes out (a stream whose SYN never left just ends).
    pub(crate) fn on_local_reset(&mut self, code: u32) -> Option<bool> {
        if self.reset.is_some() {
            return None;
        }
        self.reset = Some(ResetInfo {
            code,
            remote: false,
        });
        self.clear_buffers();
        let peer_knows = !std::mem::take(&mut self.flags.syn_pending);
        self.flags.ack_pending = false;
        self.flags.window_pending = false;
        Some(peer_knows)
    }

    /// Rows 31, 31a and 32: the peer's RESET. `None` if the stream was
    /// already reset (the frame is dropped); otherwise `Some(true)` when
    /// the stream was still in the accept backlog, which it leaves.
    pub(crate) fn on_reset_received(&mut self, code: u32) -> Option<bool> {
        if self.reset.is_some() {
            return None;
        }
        self.reset = Some(ResetInfo { code, remote: true });
        if code == crate::frame::reset_code::DROPPED && self.recv == RecvState::FinReceived {
            // The peer sent everything, FIN included, before it dropped its
            // handle; the reset stops our sending only, as a TCP half-close
            // would not lose what already arrived.
            self.flags.reads_outlive_reset = true;
            self.send_buf.clear();
        } else {
            self.clear_buffers();
        }
        self.flags.syn_pending = false;
        self.flags.ack_pending = false;
        self.flags.window_pending = false;
        Some(std::mem::take(&mut self.flags.in_backlog))
    }

    /// Row 11: the application's bytes join the send buffer; the caller
    /// has checked [`write_room`](Self::write_room).
    pub(crate) fn on_write(&mut self, data: &[u8], spares: &mut Spares) {
        self.send_buf.extend_from_slice(data, spares);
    }

    /// Row 11, for bytes handed over without a copy.
    pub(crate) fn on_write_chunk(&mut self, chunk: Bytes, spares: &mut Spares) {
        self.send_buf.push(chunk, spares);
    }

    /// Row 11a: frames up to `max` of the caller's bytes at once, when the
    /// write side is open, nothing is buffered and the window has room.
    /// Returns the flags the frame carries and its payload length.
    pub(crate) fn on_frame_now(&mut self, max: usize, max_payload: u32) -> Option<(Flags, usize)> {
        if self.reset.is_some()
            || self.send != SendState::Open
            || self.send_window.is_empty()
            || !self.send_buf.is_empty()
        {
            return None;
        }
        let len = self.send_window.frame_len(max, max_payload);
        let flags = self.take_handshake_flags();
        self.send_window.on_sent(len);
        Some((flags, len))
    }

    /// Row 13: the stream's data turn. One DATA frame's flags and payload,
    /// within the window and `max_payload`; it carries an owed SYN or ACK,
    /// and the FIN once the buffer empties under `FinQueued` (row 17).
    pub(crate) fn on_data_turn(
        &mut self,
        max_payload: u32,
        spares: &mut Spares,
    ) -> Option<(Flags, Bytes)> {
        if !self.can_send() {
            return None;
        }
        let mut flags = self.take_handshake_flags();
        let n = self.send_window.frame_len(self.send_buf.len(), max_payload);
        let payload = self.send_buf.take(n, spares);
        self.send_window.on_sent(payload.len());
        if self.send == SendState::FinQueued && self.send_buf.is_empty() {
            self.on_fin_framed();
            flags = flags.with(Flags::FIN);
        }
        Some((flags, payload))
    }

    /// Row 17: the FIN is framed, on the last DATA frame.
    fn on_fin_framed(&mut self) {
        debug_assert_eq!(self.send, SendState::FinQueued);
        self.send = SendState::FinSent;
    }

    /// Rows 14, 15 and 16: the application closes its write side.
    /// `Ok(true)` when the FIN was already framed; `Ok(false)` when it is
    /// queued behind the buffer.
    pub(crate) fn on_close_write(&mut self) -> Result<bool, StreamError> {
        if let Some(r) = self.reset {
            return Err(r.into());
        }
        match self.send {
            SendState::FinSent => return Ok(true),
            SendState::Open => self.send = SendState::FinQueued,
            SendState::FinQueued => {}
        }
        Ok(false)
    }

    /// Row 18: the application reads up to `max` bytes: `Ok(None)` when
    /// none are buffered. The caller follows a read of more than 0 bytes
    /// with [`on_consumed`](Self::on_consumed).
    pub(crate) fn on_read(
        &mut self,
        max: usize,
        spares: &mut Spares,
    ) -> Result<Option<Bytes>, StreamError> {
        if let Some(r) = self.read_reset() {
            return Err(r.into());
        }
        if self.flags.read_closed {
            return Err(StreamError::ReadClosed);
        }
        if self.recv_buf.is_empty() {
            return Ok(None);
        }
        if max == 0 {
            // Taking nothing would still make the buffer's tail shared.
            return Ok(Some(Bytes::new()));
        }
        let chunk = self.recv_buf.take(max, spares);
        // `take` returns at most what is buffered, which `buffered` counts.
        self.recv_window
            .on_read(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
        self.debug_check_buffered();
        Ok(Some(chunk))
    }

    /// Rows 18, 19, 22 and 25: bytes were consumed (read, or discarded
    /// unread). `true` when a window update is now owed: half the window
    /// consumed while the peer may still send to a stream with a handle.
    /// A dropped stream returns no credit: a peer that keeps sending to it
    /// runs dry and is reset (row 24a) rather than fed until
    /// `close_timeout`.
    pub(crate) fn on_consumed(&mut self) -> bool {
        if self.recv == RecvState::Open
            && !self.flags.detached
            && self.reset.is_none()
            && self.recv_window.update_due()
        {
            self.flags.window_pending = true;
            return true;
        }
        false
    }

    /// Row 19: the application closes its read side; what is buffered is
    /// dropped and counted as consumed. `false` if it was closed already.
    pub(crate) fn on_close_read(&mut self) -> bool {
        if std::mem::replace(&mut self.flags.read_closed, true) {
            return false;
        }
        self.recv_buf.clear();
        self.recv_window.on_buffer_dropped();
        true
    }

    /// Rows 22 and 23: the application dropped its handle. `None` if the
    /// stream is finished; otherwise it waits for the peer, closing both sides next:
    /// `Some(true)` when this queued its FIN (the read side is the
    /// caller's to close, [`on_close_read`](Self::on_close_read)).
    pub(crate) fn on_detach(&mut self) -> Option<bool> {
        self.flags.detached = true;
        if self.is_finished() {
            return None;
        }
        let fin_queued = self.send == SendState::Open;
        if fin_queued {
            self.send = SendState::FinQueued;
        }
        Some(fin_queued)
    }

    /// Rows 25, 26 and 27: the peer's DATA payload (not empty). `Ok(true)`
    /// when it was buffered for reading; `Ok(false)` when discarded
    /// because the read side is closed (follow with
    /// [`on_consumed`](Self::on_consumed)).
    /// A DATA frame for the stream arrived at `now` (before
    /// [`on_data_received`](Self::on_data_received) checks it): auto-tuning
    /// measures the delivery rate from the first.
    pub(crate) fn on_data_arrival(&mut self, now: Instant) {
        self.recv_window.on_arrival(now);
    }

    pub(crate) fn on_data_received(
        &mut self,
        payload: Bytes,
        spares: &mut Spares,
    ) -> Result<bool, PeerFault> {
        let len = payload.len();
        let n = self
            .recv_window
            .admit(len)
            .map_err(|credit| PeerFault::WindowExceeded { len, credit })?;
        if self.recv == RecvState::FinReceived {
            return Err(PeerFault::DataAfterFin);
        }
        let kept = !self.flags.read_closed;
        self.recv_window.on_received(n, kept);
        if kept {
            if len < COPY_PAYLOADS_BELOW {
                self.recv_buf.extend_from_slice(&payload, spares);
            } else {
                self.recv_buf.push_by_reference(payload, spares);
            }
            self.debug_check_buffered();
        }
        Ok(kept)
    }

    /// Rows 28 and 29: the peer's FIN.
    pub(crate) fn on_fin_received(&mut self) -> Result<(), PeerFault> {
        if self.recv == RecvState::FinReceived {
            return Err(PeerFault::SecondFin);
        }
        self.recv = RecvState::FinReceived;
        // No more data can come, so credit owed for it is moot.
        self.flags.window_pending = false;
        Ok(())
    }

    /// Row 30: the peer's WINDOW_UPDATE granted `delta` more. `Ok(true)`
    /// when the window was empty, so a writer may be waiting on it.
    pub(crate) fn on_window_update(&mut self, delta: u32) -> Result<bool, PeerFault> {
        self.send_window
            .on_update(delta)
            .map_err(|_| PeerFault::WindowOverflow)
    }

    /// Row 30a: the peer's HELLO gives a stream opened before it its send
    /// window.
    pub(crate) fn on_peer_hello(&mut self, initial_window: u32) {
        self.send_window.on_peer_hello(initial_window);
    }

    /// Row 35: the connection aborted. Bytes to send are dropped (they can
    /// no longer leave) and the stream leaves the session's queues, which
    /// are cleared; received bytes stay readable. `false` when nobody can
    /// read them (no handle, or still in the backlog): drop the stream.
    pub(crate) fn on_abort(&mut self) -> bool {
        self.flags.unsent_dropped = !self.send_buf.is_empty();
        self.send_buf.clear();
        self.flags.in_ctrl_queue = false;
        self.flags.in_data_queue = false;
        !(self.flags.detached || self.flags.in_backlog)
    }

    /// Takes the SYN and ACK this stream still owes, as flags for the next
    /// frame it sends (either kind may carry them).
    fn take_handshake_flags(&mut self) -> Flags {
        let mut flags = Flags::NONE;
        if std::mem::take(&mut self.flags.syn_pending) {
            flags = flags.with(Flags::SYN);
        }
        if std::mem::take(&mut self.flags.ack_pending) {
            flags = flags.with(Flags::ACK);
        }
        flags
    }

    /// Drops everything buffered in both directions; the received bytes
    /// count as consumed, so the receive window still adds up.
    fn clear_buffers(&mut self) {
        self.send_buf.clear();
        self.recv_buf.clear();
        self.recv_window.on_buffer_dropped();
    }
}
