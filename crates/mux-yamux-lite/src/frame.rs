//! Semantic frames: what the session speaks, independent of any byte layout.
//!
//! The session only ever sees these values. A wire module (today
//! [`wire::lite`](crate::wire::lite), later a yamux 1.0 layout) turns them into
//! bytes and back, so the protocol's semantics never depend on the encoding.

use bytes::Bytes;
use std::fmt;

/// Stream flags carried by [`Frame::Data`] and [`Frame::Window`].
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags(u8);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);
    /// Opens a stream.
    pub const SYN: Flags = Flags(0x01);
    /// Acknowledges a stream opened by the peer.
    pub const ACK: Flags = Flags(0x02);
    /// Half-closes the sender's direction.
    pub const FIN: Flags = Flags(0x04);
    /// All flag bits a stream frame may carry (RST travels as [`Frame::Reset`]).
    pub const ALL: Flags = Flags(0x07);

    /// Builds flags from raw bits, refusing unknown bits.
    pub fn from_bits(bits: u8) -> Option<Flags> {
        (bits & !Self::ALL.0 == 0).then_some(Flags(bits))
    }

    /// The raw bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Union of two flag sets.
    #[must_use]
    pub fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        for (flag, name) in [(Self::SYN, "SYN"), (Self::ACK, "ACK"), (Self::FIN, "FIN")] {
            if self.contains(flag) {
                names.push(name);
            }
        }
        if names.is_empty() {
            f.write_str("-")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

/// Go-away codes. Codes at or above [`go_away::APPLICATION_MIN`] belong to
/// applications.
pub mod go_away {
    /// Normal shutdown.
    pub const NORMAL: u32 = 0;
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// This side failed internally.
    pub const INTERNAL_ERROR: u32 = 2;
    /// The peer stopped answering pings.
    pub const KEEPALIVE_TIMEOUT: u32 = 3;
    /// First code of the range left to applications.
    pub const APPLICATION_MIN: u32 = 0x1000;
}

/// Reset codes the muxer itself uses. Applications may use any other value;
/// the muxer's own codes sit at the top of the `u32` range.
pub mod reset_code {
    /// The stream was cancelled (the default for `reset()`).
    pub const CANCEL: u32 = 0;
    /// Refused: too many inbound streams, a full accept backlog, or go-away sent.
    pub const REFUSED: u32 = 0xFFFF_FF01;
    /// The peer sent a frame the stream's state does not allow.
    pub const STREAM_CLOSED: u32 = 0xFFFF_FF02;
    /// The peer did not acknowledge the stream within the open timeout.
    pub const OPEN_TIMEOUT: u32 = 0xFFFF_FF03;
    /// The stream did not finish within the close timeout of a closing connection.
    pub const CLOSE_TIMEOUT: u32 = 0xFFFF_FF04;
    /// The stream's handle was dropped while the peer kept sending, and the
    /// peer used up the credit it held (TCP's reset for data nobody reads).
    pub const DROPPED: u32 = 0xFFFF_FF05;
}

/// The settings each side announces first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version; this crate speaks [`Hello::VERSION`].
    pub version: u8,
    /// Receive window the sender grants each new stream.
    pub initial_window: u32,
    /// Largest DATA payload the sender accepts.
    pub max_frame_payload: u32,
    /// How many concurrent streams the sender accepts from its peer.
    pub max_inbound_streams: u32,
}

impl Hello {
    /// The protocol version of this implementation.
    pub const VERSION: u8 = 1;
}

/// One protocol frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Settings; the first frame each side sends.
    Hello(Hello),
    /// Stream bytes, possibly with SYN/ACK/FIN.
    Data {
        /// Stream id (never 0).
        id: u32,
        /// Flags.
        flags: Flags,
        /// The bytes; counts against the stream's window.
        payload: Bytes,
    },
    /// Window credit, possibly with SYN/ACK/FIN.
    Window {
        /// Stream id (never 0).
        id: u32,
        /// Flags.
        flags: Flags,
        /// Extra bytes the receiver may now send.
        delta: u32,
    },
    /// Abandons a stream in both directions.
    Reset {
        /// Stream id (never 0).
        id: u32,
        /// Error code.
        code: u32,
    },
    /// Liveness and RTT probe.
    Ping {
        /// `false` for a request, `true` for the reply.
        ack: bool,
        /// Echoed back unchanged.
        opaque: u32,
    },
    /// No new streams; existing ones may finish.
    GoAway {
        /// Why (see [`go_away`]).
        code: u32,
    },
}

/// Why bytes from the peer are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A TLV type byte this protocol does not define.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// A value whose length does not fit its kind.
    #[error("frame kind {kind:#04x} with a {len}-byte value (expected {expected})")]
    BadLength {
        /// The TLV type byte.
        kind: u8,
        /// The value's length.
        len: usize,
        /// What the kind requires, in words.
        expected: &'static str,
    },
    /// Flag bits this protocol does not define.
    #[error("unknown flag bits {0:#04x}")]
    UnknownFlags(u8),
}
