//! One stream's state inside the session.
//!
//! A stream has two halves that move independently, plus a reset that ends
//! both. The transition table lives in docs/PROTOCOL.md ("Stream states");
//! every arm below corresponds to one row of it.
//!
//! ```text
//! send half:  Open --close_write--> FinQueued --FIN framed--> FinSent
//! recv half:  Open --FIN received--> FinReceived
//! either:     * --reset (local or remote)--> Reset (both halves, final)
//! ```

use std::time::Instant;

use super::chunks::Chunks;

/// The sending half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendState {
    /// Writes are accepted.
    Open,
    /// The application closed its write side; FIN goes out after the buffer.
    FinQueued,
    /// FIN has been framed; nothing more will be sent.
    FinSent,
}

/// The receiving half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvState {
    /// The peer may send more.
    Open,
    /// The peer sent FIN; buffered bytes remain readable, then EOF.
    FinReceived,
}

/// A stream reset: who did it and with which code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetInfo {
    /// The code carried by the RESET frame.
    pub code: u32,
    /// `true` when the peer reset the stream.
    pub remote: bool,
}

impl From<ResetInfo> for mux_core::StreamError {
    fn from(r: ResetInfo) -> Self {
        mux_core::StreamError::Reset {
            code: r.code,
            remote: r.remote,
        }
    }
}

/// Per-stream state. Field order keeps hot fields together; nothing here
/// allocates until data flows, so an idle stream stays small.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) send: SendState,
    pub(crate) recv: RecvState,
    pub(crate) reset: Option<ResetInfo>,
    /// Bytes written by the application and not yet framed.
    pub(crate) send_buf: Chunks,
    /// Credit the peer granted that this side has not used.
    pub(crate) send_window: u32,
    /// Received payloads not yet read by the application.
    pub(crate) recv_buf: Chunks,
    /// Total length of `recv_buf`.
    pub(crate) recv_buffered: u32,
    /// Bytes the peer may still send before more credit is granted.
    pub(crate) recv_credit: u32,
    /// The stream's current receive window (auto-tuned).
    pub(crate) recv_window: u32,
    /// Bytes consumed (read or discarded) since the last window update.
    pub(crate) recv_consumed: u32,
    /// When the last window update was framed, for auto-tuning.
    pub(crate) last_update: Option<Instant>,
    pub(crate) flags: StreamFlags,
}

/// Booleans packed apart from the state enums.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StreamFlags {
    /// This side opened the stream.
    pub(crate) outbound: bool,
    /// SYN not yet framed.
    pub(crate) syn_pending: bool,
    /// ACK owed to the peer (set on accept).
    pub(crate) ack_pending: bool,
    /// The peer acknowledged our SYN.
    pub(crate) acked: bool,
    /// A window update should be framed.
    pub(crate) window_pending: bool,
    /// The application closed its read side: incoming bytes are discarded.
    pub(crate) read_closed: bool,
    /// No application handle exists (dropped, or not yet accepted).
    pub(crate) detached: bool,
    /// Present in the session's control queue.
    pub(crate) in_ctrl_queue: bool,
    /// Present in the session's data queue.
    pub(crate) in_data_queue: bool,
    /// Waiting in the accept backlog.
    pub(crate) in_backlog: bool,
    /// Counted in the session's live-stream totals (not finished yet).
    pub(crate) live: bool,
    /// Reset by a peer that had already finished sending and then dropped
    /// its handle (`reset_code::DROPPED`): only our sending was cut off,
    /// so what arrived, up to the FIN, stays readable.
    pub(crate) reads_outlive_reset: bool,
}

impl Stream {
    pub(crate) fn new(outbound: bool, send_window: u32, recv_window: u32) -> Self {
        Self {
            send: SendState::Open,
            recv: RecvState::Open,
            reset: None,
            send_buf: Chunks::default(),
            send_window,
            recv_buf: Chunks::default(),
            recv_buffered: 0,
            recv_credit: recv_window,
            recv_window,
            recv_consumed: 0,
            last_update: None,
            flags: StreamFlags {
                outbound,
                syn_pending: outbound,
                detached: !outbound,
                in_backlog: !outbound,
                live: true,
                ..StreamFlags::default()
            },
        }
    }

    /// Whether this side has data (or a FIN) it may frame now.
    pub(crate) fn can_send(&self) -> bool {
        if self.reset.is_some() {
            return false;
        }
        match self.send {
            SendState::Open => !self.send_buf.is_empty() && self.send_window > 0,
            SendState::FinQueued => {
                self.send_buf.is_empty() || self.send_window > 0 // FIN, or data then FIN
            }
            SendState::FinSent => false,
        }
    }

    /// Whether everything buffered (and a queued FIN) fits the peer's
    /// window, so framing it needs nothing more from the peer. Before the
    /// peer's HELLO (`peer_known` false) its window is not known, so
    /// nothing is.
    pub(crate) fn send_committed(&self, peer_known: bool) -> bool {
        peer_known
            && self.reset.is_none()
            && usize::try_from(self.send_window).is_ok_and(|w| self.send_buf.len() <= w)
    }

    /// Takes the SYN and ACK this stream still owes, as flags for the next
    /// frame it sends (either kind may carry them).
    pub(crate) fn take_handshake_flags(&mut self) -> crate::frame::Flags {
        use crate::frame::Flags;
        let mut flags = Flags::NONE;
        if std::mem::take(&mut self.flags.syn_pending) {
            flags = flags.with(Flags::SYN);
        }
        if std::mem::take(&mut self.flags.ack_pending) {
            flags = flags.with(Flags::ACK);
        }
        flags
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

    /// The handle is gone, this side's bytes and FIN are out, and the peer,
    /// still sending, has used all its credit: none comes back to a dropped
    /// stream, so without a reset the peer would wait for `close_timeout`.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.flags.detached
            && self.flags.read_closed
            && self.reset.is_none()
            && self.send == SendState::FinSent
            && self.recv == RecvState::Open
            && self.recv_credit == 0
            && !self.flags.window_pending
    }

    /// The stream can leave the session's table: finished, no handle, and
    /// nothing owed to the wire.
    pub(crate) fn is_reclaimable(&self) -> bool {
        self.flags.detached && self.is_finished() && !self.needs_ctrl() && !self.flags.in_backlog
    }

    /// Whether reads fail: a reset ends them, unless it was a peer's
    /// [`DROPPED`](crate::frame::reset_code::DROPPED) after its FIN.
    pub(crate) fn read_reset(&self) -> Option<ResetInfo> {
        self.reset.filter(|_| !self.flags.reads_outlive_reset)
    }

    /// Drops everything buffered in both directions, returning how many
    /// received bytes were discarded.
    pub(crate) fn clear_buffers(&mut self) -> u32 {
        self.send_buf.clear();
        self.recv_buf.clear();
        std::mem::take(&mut self.recv_buffered)
    }
}
