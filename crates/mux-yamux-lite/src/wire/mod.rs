//! Byte layouts for [`Frame`]s.
//!
//! The session is written against semantic frames only; the driver, which
//! owns the transport, is the one place that turns them into bytes and
//! back, through a [`Layout`]. [`lite::Lite`] is the native layout
//! (mux-frame TLV frames) and [`yamux::Yamux`] the yamux 1.0 one;
//! [`layout`] picks by `Config::wire`. Sans-IO users (simulators, fuzzers) drive
//! a [`Session`](crate::session::Session) through the same codec.

pub mod lite;
pub mod yamux;

use bytes::{Bytes, BytesMut};
use std::fmt;

use crate::config::Wire;
use crate::frame::{Flags, Frame};
use crate::session::ProtocolError;

pub use crate::frame::WireError;

/// The most bytes any layout puts in front of a DATA payload.
pub const MAX_DATA_HEAD: usize = 16;

/// The bytes that precede one DATA payload on the wire.
#[derive(Debug, Clone, Copy)]
pub struct DataHead {
    bytes: [u8; MAX_DATA_HEAD],
    len: usize,
}

impl DataHead {
    /// The encoded head.
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// How frames look on the wire: what the driver uses to read frames off
/// the transport and to write them.
pub trait Layout: fmt::Debug + Send + Sync + 'static {
    /// Splits the next whole frame off the front of `buf` and decodes it;
    /// `Ok(None)` while more bytes are needed. A frame longer than the
    /// layout admits is refused from its header, before it is buffered.
    fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError>;

    /// The length of the frame at the front of `buf`, header included, once
    /// its header is complete: the read buffer sizes its reads by it.
    fn frame_len(&self, buf: &[u8]) -> Option<usize>;

    /// Why the bytes left in `buf` when the transport ended are not a frame.
    fn truncated(&self, buf: &[u8]) -> ProtocolError;

    /// Appends the encoding of `frame` to `dst`, except a DATA payload,
    /// which is returned so that the caller can copy it or write it by
    /// reference (vectored I/O) right after what was appended.
    fn encode_head<'f>(&self, frame: &'f Frame, dst: &mut BytesMut) -> Option<&'f Bytes>;

    /// The bytes in front of a DATA payload of `len` bytes.
    fn data_head(&self, id: u32, flags: Flags, len: usize) -> DataHead;

    /// The longest frame this side accepts, header included: a read
    /// buffer must hold one whole.
    fn max_frame_len(&self) -> usize;

    /// The longest frame a peer usually sends, header included: read
    /// blocks are sized for it, and a longer frame (up to
    /// [`max_frame_len`](Self::max_frame_len)) gets a buffer of its own.
    fn usual_frame_len(&self) -> usize {
        self.max_frame_len()
    }

    /// The stream id and payload length of the DATA frame whose header is
    /// complete at the front of `buf`; `None` for any other frame. A DATA
    /// frame longer than a read block is checked against its stream's
    /// credit from this, before its payload is buffered.
    fn data_header(&self, buf: &[u8]) -> Option<(u32, usize)>;

    /// Appends the whole encoding of `frame`, payload included, to `dst`.
    fn encode(&self, frame: &Frame, dst: &mut BytesMut) {
        if let Some(payload) = self.encode_head(frame, dst) {
            dst.extend_from_slice(payload);
        }
    }
}

/// The layout a connection with `config` speaks, with the limits the
/// connection applies (after clamping `config` as it does).
pub fn layout(config: &crate::config::Config) -> Box<dyn Layout> {
    let config = config.clone().normalized();
    match config.wire {
        Wire::Lite => Box::new(lite::Lite::new(config.max_frame_payload)),
        Wire::Yamux => Box::new(yamux::Yamux::new(config.max_window)),
    }
}

/// A layout for `wire` with no size limit of its own: for checking what a
/// connection writes (tests, fuzzers), whatever the sizes it may send.
pub fn unlimited(wire: Wire) -> Box<dyn Layout> {
    match wire {
        Wire::Lite => Box::new(lite::Lite::new(u32::MAX)),
        Wire::Yamux => Box::new(yamux::Yamux::new(u32::MAX)),
    }
}

/// Reads a big-endian `u32` at `at`, or `None` past the end.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let raw: [u8; 4] = bytes.get(at..end)?.try_into().ok()?;
    Some(u32::from_be_bytes(raw))
}
