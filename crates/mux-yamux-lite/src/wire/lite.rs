//! The native layout: every frame is one mux-frame TLV frame.
//!
//! ```text
//! TLV header (mux-frame): kind u8 | length u32 BE | value
//! DATA          (0x00): id u32 | flags u8 | payload...          overhead 10 B
//! WINDOW_UPDATE (0x01): id u32 | flags u8 | delta u32
//! PING          (0x02): flags u8 (0x01 request, 0x02 reply) | opaque u32
//! GO_AWAY       (0x03): code u32
//! HELLO         (0x04): version u8 | initial_window u32 | max_frame_payload u32
//!                       | max_inbound_streams u32 | (extensions, ignored)
//! RESET         (0x05): id u32 | code u32
//! ```
//! All integers are big-endian. docs/PROTOCOL.md has the diagrams and the
//! golden vectors that `tests/wire_golden.rs` checks.

use bytes::{BufMut, Bytes, BytesMut};
use mux_frame::{FrameCodec, FrameError, Header};

use super::{be_u32, DataHead, Layout, WireError};
use crate::frame::{Flags, Frame, Hello};
use crate::session::ProtocolError;

/// TLV kind of DATA.
pub const KIND_DATA: u8 = 0x00;
/// TLV kind of WINDOW_UPDATE.
pub const KIND_WINDOW: u8 = 0x01;
/// TLV kind of PING.
pub const KIND_PING: u8 = 0x02;
/// TLV kind of GO_AWAY.
pub const KIND_GO_AWAY: u8 = 0x03;
/// TLV kind of HELLO.
pub const KIND_HELLO: u8 = 0x04;
/// TLV kind of RESET.
pub const KIND_RESET: u8 = 0x05;

/// Bytes a DATA frame adds to its payload: the 5-byte TLV header plus id and flags.
pub const DATA_OVERHEAD: usize = mux_frame::HEADER_LEN + 5;
/// The longest non-DATA frame on the wire (a HELLO without extensions).
pub const MAX_CONTROL_LEN: usize = mux_frame::HEADER_LEN + 13;

const PING_REQUEST: u8 = 0x01;
const PING_REPLY: u8 = 0x02;

/// The TLV value limit that admits DATA payloads of up to `max_payload` bytes.
pub fn max_value_len(max_payload: u32) -> u32 {
    max_payload.saturating_add(5).max(64)
}

/// Appends the encoding of `frame` to `dst`, except a DATA payload, which is
/// returned so the caller can either copy it or send it by reference
/// (vectored I/O) right after what was appended.
pub fn encode_head<'f>(frame: &'f Frame, dst: &mut BytesMut) -> Option<&'f Bytes> {
    match frame {
        Frame::Data { id, flags, payload } => {
            dst.put_slice(&data_head(*id, *flags, payload.len()));
            return Some(payload);
        }
        Frame::Window { id, flags, delta } => {
            Header::new(KIND_WINDOW, 9).put(dst);
            dst.put_u32(*id);
            dst.put_u8(flags.bits());
            dst.put_u32(*delta);
        }
        Frame::Reset { id, code } => {
            Header::new(KIND_RESET, 8).put(dst);
            dst.put_u32(*id);
            dst.put_u32(*code);
        }
        Frame::Ping { ack, opaque } => {
            Header::new(KIND_PING, 5).put(dst);
            dst.put_u8(if *ack { PING_REPLY } else { PING_REQUEST });
            dst.put_u32(*opaque);
        }
        Frame::GoAway { code } => {
            Header::new(KIND_GO_AWAY, 4).put(dst);
            dst.put_u32(*code);
        }
        Frame::Hello(h) => {
            Header::new(KIND_HELLO, 13).put(dst);
            dst.put_u8(h.version);
            dst.put_u32(h.initial_window);
            dst.put_u32(h.max_frame_payload);
            dst.put_u32(h.max_inbound_streams);
        }
    }
    None
}

/// The bytes that precede a DATA payload of `len` bytes on the wire.
pub fn data_head(id: u32, flags: Flags, len: usize) -> [u8; DATA_OVERHEAD] {
    // Payloads are bounded by the session's frame size (far below
    // u32::MAX), so the saturation never triggers in practice.
    let value_len = u32::try_from(len).unwrap_or(u32::MAX).saturating_add(5);
    let mut head = [0u8; DATA_OVERHEAD];
    let mut dst = head.as_mut_slice();
    Header::new(KIND_DATA, value_len).put(&mut dst);
    dst.put_u32(id);
    dst.put_u8(flags.bits());
    head
}

/// Appends the whole encoding of `frame`, payload included, to `dst`.
pub fn encode(frame: &Frame, dst: &mut BytesMut) {
    if let Some(payload) = encode_head(frame, dst) {
        dst.extend_from_slice(payload);
    }
}

/// Parses one TLV frame. DATA payloads are sliced, not copied.
pub fn decode(tlv: mux_frame::Frame) -> Result<Frame, WireError> {
    let v = &tlv.value;
    let bad = |expected| WireError::BadLength {
        kind: tlv.kind,
        len: v.len(),
        expected,
    };
    let flags_at = |at: usize| {
        let bits = v.get(at).copied().unwrap_or(0);
        Flags::from_bits(bits).ok_or(WireError::UnknownFlags(bits))
    };
    match tlv.kind {
        KIND_DATA => {
            let id = be_u32(v, 0).ok_or_else(|| bad("at least 5"))?;
            let flags = flags_at(4)?;
            if v.len() < 5 {
                return Err(bad("at least 5"));
            }
            Ok(Frame::Data {
                id,
                flags,
                payload: tlv.value.slice(5..),
            })
        }
        KIND_WINDOW => {
            if v.len() != 9 {
                return Err(bad("9"));
            }
            let id = be_u32(v, 0).ok_or_else(|| bad("9"))?;
            let flags = flags_at(4)?;
            let delta = be_u32(v, 5).ok_or_else(|| bad("9"))?;
            Ok(Frame::Window { id, flags, delta })
        }
        KIND_RESET => {
            if v.len() != 8 {
                return Err(bad("8"));
            }
            let id = be_u32(v, 0).ok_or_else(|| bad("8"))?;
            let code = be_u32(v, 4).ok_or_else(|| bad("8"))?;
            Ok(Frame::Reset { id, code })
        }
        KIND_PING => {
            if v.len() != 5 {
                return Err(bad("5"));
            }
            let ack = match v.first().copied() {
                Some(PING_REQUEST) => false,
                Some(PING_REPLY) => true,
                other => return Err(WireError::UnknownFlags(other.unwrap_or(0))),
            };
            let opaque = be_u32(v, 1).ok_or_else(|| bad("5"))?;
            Ok(Frame::Ping { ack, opaque })
        }
        KIND_GO_AWAY => {
            if v.len() != 4 {
                return Err(bad("4"));
            }
            let code = be_u32(v, 0).ok_or_else(|| bad("4"))?;
            Ok(Frame::GoAway { code })
        }
        KIND_HELLO => {
            // Trailing bytes are extensions a later version may define; a
            // version-1 reader skips them so such peers still interoperate.
            let version = v.first().copied().ok_or_else(|| bad("at least 13"))?;
            let field = |at| be_u32(v, at).ok_or_else(|| bad("at least 13"));
            Ok(Frame::Hello(Hello {
                version,
                initial_window: field(1)?,
                max_frame_payload: field(5)?,
                max_inbound_streams: field(9)?,
            }))
        }
        other => Err(WireError::UnknownKind(other)),
    }
}

const _: () = assert!(DATA_OVERHEAD <= super::MAX_DATA_HEAD);

/// The lite layout as a [`Layout`]: TLV frames whose values carry at most
/// `max_frame_payload` bytes of DATA payload.
#[derive(Debug, Clone)]
pub struct Lite {
    codec: FrameCodec,
}

impl Lite {
    /// A codec accepting DATA payloads of up to `max_frame_payload` bytes
    /// (`Config::max_frame_payload`).
    pub fn new(max_frame_payload: u32) -> Self {
        Self {
            codec: FrameCodec::with_max_value_len(max_value_len(max_frame_payload)),
        }
    }
}

impl Layout for Lite {
    fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        match self.codec.split_frame(buf) {
            Ok(Some(tlv)) => decode(tlv).map(Some).map_err(ProtocolError::from),
            Ok(None) => Ok(None),
            Err(FrameError::TooLarge { len, max }) => {
                Err(ProtocolError::FrameTooLarge { len, max })
            }
            // `split_frame` reports nothing else; a layout error is the
            // closest description if a later mux-frame does.
            Err(_) => Err(self.truncated(buf)),
        }
    }

    fn frame_len(&self, buf: &[u8]) -> Option<usize> {
        Header::parse(buf)?.frame_len()
    }

    fn truncated(&self, buf: &[u8]) -> ProtocolError {
        let expected = Header::parse(buf).map_or(mux_frame::HEADER_LEN, |h| {
            h.frame_len().unwrap_or(usize::MAX)
        });
        ProtocolError::Truncated {
            buffered: buf.len(),
            expected,
        }
    }

    fn encode_head<'f>(&self, frame: &'f Frame, dst: &mut BytesMut) -> Option<&'f Bytes> {
        encode_head(frame, dst)
    }

    fn data_head(&self, id: u32, flags: Flags, len: usize) -> DataHead {
        let mut bytes = [0u8; super::MAX_DATA_HEAD];
        if let Some(dst) = bytes.get_mut(..DATA_OVERHEAD) {
            dst.copy_from_slice(&data_head(id, flags, len));
        }
        DataHead {
            bytes,
            len: DATA_OVERHEAD,
        }
    }

    fn data_header(&self, buf: &[u8]) -> Option<(u32, usize)> {
        let head = Header::parse(buf)?;
        if head.kind != KIND_DATA {
            return None;
        }
        let id = be_u32(buf, mux_frame::HEADER_LEN)?;
        let value = usize::try_from(head.len).ok()?;
        Some((id, value.saturating_sub(5)))
    }

    fn max_frame_len(&self) -> usize {
        usize::try_from(self.codec.max_value_len())
            .unwrap_or(usize::MAX)
            .saturating_add(mux_frame::HEADER_LEN)
    }
}
