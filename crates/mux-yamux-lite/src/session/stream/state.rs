//! A stream's states: the two halves, the reset, the flags beside them,
//! and what the transitions report to the session.

use crate::frame::Flags;

/// The sending half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendState {
    /// Writes are accepted.
    Open,
    /// The application closed its write side; FIN goes out after the buffer.
    FinQueued,
    /// FIN has been framed; nothing more will be sent.
    FinSent,
}

/// The receiving half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvState {
    /// The peer may send more.
    Open,
    /// The peer sent FIN; buffered bytes remain readable, then EOF.
    FinReceived,
}

/// A stream reset: who did it and with which code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResetInfo {
    /// The code carried by the RESET frame.
    pub(crate) code: u32,
    /// `true` when the peer reset the stream.
    pub(crate) remote: bool,
}

impl From<ResetInfo> for mux_core::StreamError {
    fn from(r: ResetInfo) -> Self {
        mux_core::StreamError::Reset {
            code: r.code,
            remote: r.remote,
        }
    }
}

/// Booleans kept apart from the state enums.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct StreamFlags {
    /// This side opened the stream.
    pub(super) outbound: bool,
    /// SYN not yet framed.
    pub(super) syn_pending: bool,
    /// ACK owed to the peer (set on accept).
    pub(super) ack_pending: bool,
    /// The peer acknowledged our SYN, or the open ended unanswered.
    pub(super) acked: bool,
    /// A window update should be framed.
    pub(super) window_pending: bool,
    /// The application closed its read side: incoming bytes are discarded.
    pub(super) read_closed: bool,
    /// No application handle exists (dropped, or not yet accepted).
    pub(super) detached: bool,
    /// Present in the session's control queue.
    pub(super) in_ctrl_queue: bool,
    /// Present in the session's data queue.
    pub(super) in_data_queue: bool,
    /// Waiting in the accept backlog.
    pub(super) in_backlog: bool,
    /// Counted in the session's live-stream totals (not finished yet).
    pub(super) live: bool,
    /// Reset by a peer that had already finished sending and then dropped
    /// its handle (`reset_code::DROPPED`): only our sending was cut off,
    /// so what arrived, up to the FIN, stays readable.
    pub(super) reads_outlive_reset: bool,
    /// The connection ended with written bytes not yet framed; they are
    /// gone, so a flush must fail rather than report them committed.
    pub(super) unsent_dropped: bool,
}

/// A frame from the peer that breaks a rule of its stream. The session
/// decides what it costs: the connection (a `ProtocolError`) or the
/// stream (a reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerFault {
    /// ACK on a stream the peer opened (row 9).
    UnexpectedAck,
    /// DATA beyond the credit granted (row 26).
    WindowExceeded {
        /// The payload's length.
        len: usize,
        /// The credit the peer had.
        credit: u32,
    },
    /// DATA after the peer's FIN (row 27).
    DataAfterFin,
    /// A second FIN (row 29).
    SecondFin,
    /// A WINDOW_UPDATE past 2^31 − 1 (row 30).
    WindowOverflow,
}

/// What a stream's control turn yields (row 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CtrlTurn {
    /// Nothing is owed any more.
    Nothing,
    /// Only a SYN or ACK is owed and DATA can carry it: frame the stream's
    /// DATA now instead.
    RideOnData,
    /// A WINDOW_UPDATE with these flags and delta; the window grew by
    /// `grown`.
    Window {
        /// SYN and ACK still owed.
        flags: Flags,
        /// Credit returned plus growth.
        delta: u32,
        /// What auto-tuning added to the window.
        grown: u32,
    },
}
