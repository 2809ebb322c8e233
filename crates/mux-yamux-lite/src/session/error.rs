//! What a peer can do wrong. Every variant ends the connection with
//! GO_AWAY(protocol error); stream-level faults are answered with a RESET
//! instead and never appear here.

use crate::frame::WireError;

/// A protocol violation by the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Bytes that are not a frame of this protocol.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A frame longer than this side accepts (checked before buffering it).
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// The first frame was not HELLO.
    #[error("the first frame was not HELLO")]
    MissingHello,
    /// A second HELLO.
    #[error("HELLO sent twice")]
    DuplicateHello,
    /// A protocol version this side does not speak.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// A HELLO field outside its allowed range.
    #[error("invalid HELLO: {0}")]
    BadHello(&'static str),
    /// A stream frame for id 0.
    #[error("stream frame with id 0")]
    StreamIdZero,
    /// A SYN with an id of this side's parity.
    #[error("SYN for stream {0} has the wrong parity")]
    WrongParity(u32),
    /// A SYN for an id at or below one the peer already used.
    #[error("SYN reuses stream id {0}")]
    StreamIdReused(u32),
    /// A frame for a stream that was never opened.
    #[error("frame for stream {0}, which was never opened")]
    UnknownStream(u32),
    /// An ACK for a stream the peer opened itself.
    #[error("ACK for stream {0}, which the peer opened")]
    UnexpectedAck(u32),
    /// DATA beyond the window this side granted.
    #[error("stream {id}: {len} bytes sent against a window of {credit}")]
    WindowExceeded {
        /// Stream id.
        id: u32,
        /// Payload length.
        len: usize,
        /// Credit the peer had.
        credit: u32,
    },
    /// A window update that pushes the send window past 2^31 - 1.
    #[error("stream {0}: window update overflows the maximum window")]
    WindowOverflow(u32),
    /// A DATA payload larger than this side's announced maximum.
    #[error("DATA payload of {len} bytes exceeds the announced maximum {max}")]
    PayloadTooLarge {
        /// Payload length.
        len: usize,
        /// Announced maximum.
        max: u32,
    },
    /// More empty or zero-delta frames than the budget allows.
    #[error("too many empty frames")]
    TooManyEmptyFrames,
    /// The peer caused more stream resets than the lifetime limit allows.
    #[error("too many streams reset because of peer errors")]
    TooManyResets,
    /// The transport ended in the middle of a frame.
    #[error("transport ended mid-frame ({buffered} of {expected} bytes)")]
    Truncated {
        /// Bytes received of the frame.
        buffered: usize,
        /// Bytes the frame needed.
        expected: usize,
    },
}
