//! The yamux 1.0 layout (hashicorp/yamux `spec.md`, libp2p's `/yamux/1.0.0`):
//! every frame is a 12-byte header, and a DATA frame's payload follows it.
//!
//! ```text
//! version u8 (0) | type u8 | flags u16 | stream id u32 | length u32   (big-endian)
//! type 0 DATA           length = payload bytes that follow
//! type 1 WINDOW_UPDATE  length = credit delta; with RST: the reset code
//! type 2 PING           stream 0; length = opaque; SYN request, ACK reply
//! type 3 GO_AWAY        stream 0; length = code
//! flags SYN 0x1 | ACK 0x2 | FIN 0x4 | RST 0x8; other bits are ignored
//! ```
//!
//! A frame with RST becomes [`Frame::Reset`], whatever else it carries: on a
//! WINDOW_UPDATE its length is the code (the libp2p error-codes draft; older
//! peers read no code there), on DATA the code is 0 and the payload is
//! dropped. [`Frame::Hello`] has no yamux form: a session speaking this
//! layout neither sends nor expects one. docs/PROTOCOL.md, part two, maps
//! every rule of the native layout to this one.

use bytes::{BufMut, Bytes, BytesMut};

use super::{be_u32, DataHead, Layout, WireError};
use crate::frame::{Flags, Frame};
use crate::session::ProtocolError;

/// Bytes of every yamux header.
pub const HEADER_LEN: usize = 12;
/// The only version yamux defines.
pub const VERSION: u8 = 0;

/// Header type of DATA.
pub const TYPE_DATA: u8 = 0;
/// Header type of WINDOW_UPDATE.
pub const TYPE_WINDOW_UPDATE: u8 = 1;
/// Header type of PING.
pub const TYPE_PING: u8 = 2;
/// Header type of GO_AWAY.
pub const TYPE_GO_AWAY: u8 = 3;

/// The largest DATA payload yamux peers send unless a stream's credit
/// lets them send more: go-yamux splits writes at 64 KiB (rust-yamux at
/// 16 KiB); hashicorp/yamux sends up to the whole credit in one frame.
const USUAL_DATA: usize = 64 * 1024;

const FLAG_SYN: u16 = 0x1;
const FLAG_ACK: u16 = 0x2;
const FLAG_FIN: u16 = 0x4;
const FLAG_RST: u16 = 0x8;

/// The yamux 1.0 layout, accepting DATA payloads of up to `max_data` bytes.
#[derive(Debug, Clone)]
pub struct Yamux {
    max_data: u32,
}

impl Yamux {
    /// A layout that refuses, from the header, DATA longer than `max_data`:
    /// yamux does not negotiate frame sizes and some peers send a whole
    /// window in one frame, so this is the most credit this side grants a
    /// stream (`Config::max_window`).
    pub fn new(max_data: u32) -> Self {
        Self { max_data }
    }
}

/// The fields of a header.
#[derive(Debug, Clone, Copy)]
struct Header {
    kind: u8,
    flags: u16,
    id: u32,
    length: u32,
}

impl Header {
    /// Parses the header at the front of `buf`, once all 12 bytes are there.
    fn parse(buf: &[u8]) -> Option<Result<Header, ProtocolError>> {
        let head = buf.get(..HEADER_LEN)?;
        let (version, kind) = (head.first().copied()?, head.get(1).copied()?);
        if version != VERSION {
            return Some(Err(ProtocolError::UnsupportedVersion(version)));
        }
        if kind > TYPE_GO_AWAY {
            return Some(Err(WireError::UnknownKind(kind).into()));
        }
        let flags = u16::from_be_bytes([head.get(2).copied()?, head.get(3).copied()?]);
        Some(Ok(Header {
            kind,
            flags,
            id: be_u32(head, 4)?,
            length: be_u32(head, 8)?,
        }))
    }

    /// The whole frame's length on the wire.
    fn frame_len(&self) -> usize {
        let body = if self.kind == TYPE_DATA {
            usize::try_from(self.length).unwrap_or(usize::MAX)
        } else {
            0
        };
        HEADER_LEN.saturating_add(body)
    }

    /// SYN, ACK and FIN as the session's flags.
    fn stream_flags(&self) -> Flags {
        [
            (FLAG_SYN, Flags::SYN),
            (FLAG_ACK, Flags::ACK),
            (FLAG_FIN, Flags::FIN),
        ]
        .into_iter()
        .filter(|(bit, _)| self.flags & bit != 0)
        .fold(Flags::NONE, |acc, (_, f)| acc.with(f))
    }

    fn rst(&self) -> bool {
        self.flags & FLAG_RST != 0
    }
}

/// The 12 header bytes.
fn header(kind: u8, flags: u16, id: u32, length: u32) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    let mut dst = out.as_mut_slice();
    dst.put_u8(VERSION);
    dst.put_u8(kind);
    dst.put_u16(flags);
    dst.put_u32(id);
    dst.put_u32(length);
    out
}

fn wire_flags(flags: Flags) -> u16 {
    [
        (Flags::SYN, FLAG_SYN),
        (Flags::ACK, FLAG_ACK),
        (Flags::FIN, FLAG_FIN),
    ]
    .into_iter()
    .filter(|(f, _)| flags.contains(*f))
    .fold(0, |acc, (_, bit)| acc | bit)
}

impl Layout for Yamux {
    fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let Some(head) = Header::parse(buf) else {
            return Ok(None);
        };
        let head = head?;
        if head.kind == TYPE_DATA && head.length > self.max_data {
            return Err(ProtocolError::FrameTooLarge {
                len: u64::from(head.length),
                max: self.max_data,
            });
        }
        let len = head.frame_len();
        if buf.len() < len {
            return Ok(None);
        }
        let frame = buf.split_to(len).freeze();
        let (id, flags) = (head.id, head.stream_flags());
        Ok(Some(match head.kind {
            TYPE_DATA if head.rst() => Frame::Reset { id, code: 0 },
            TYPE_DATA => Frame::Data {
                id,
                flags,
                payload: frame.slice(HEADER_LEN..),
            },
            TYPE_WINDOW_UPDATE if head.rst() => Frame::Reset {
                id,
                code: head.length,
            },
            TYPE_WINDOW_UPDATE => Frame::Window {
                id,
                flags,
                delta: head.length,
            },
            // A reply needs no flag check: an unmatched one is ignored.
            TYPE_PING => Frame::Ping {
                ack: head.flags & FLAG_SYN == 0,
                opaque: head.length,
            },
            _ => Frame::GoAway { code: head.length },
        }))
    }

    fn frame_len(&self, buf: &[u8]) -> Option<usize> {
        match Header::parse(buf)? {
            Ok(head) => Some(head.frame_len()),
            // The next decode reports the error; reading on is pointless.
            Err(_) => Some(HEADER_LEN),
        }
    }

    fn truncated(&self, buf: &[u8]) -> ProtocolError {
        let expected = match Header::parse(buf) {
            Some(Ok(head)) => head.frame_len(),
            _ => HEADER_LEN,
        };
        ProtocolError::Truncated {
            buffered: buf.len(),
            expected,
        }
    }

    fn encode_head<'f>(&self, frame: &'f Frame, dst: &mut BytesMut) -> Option<&'f Bytes> {
        let head = match frame {
            Frame::Data { id, flags, payload } => {
                dst.put_slice(self.data_head(*id, *flags, payload.len()).as_slice());
                return Some(payload);
            }
            Frame::Window { id, flags, delta } => {
                header(TYPE_WINDOW_UPDATE, wire_flags(*flags), *id, *delta)
            }
            Frame::Reset { id, code } => header(TYPE_WINDOW_UPDATE, FLAG_RST, *id, *code),
            Frame::Ping { ack, opaque } => {
                let flags = if *ack { FLAG_ACK } else { FLAG_SYN };
                header(TYPE_PING, flags, 0, *opaque)
            }
            Frame::GoAway { code } => header(TYPE_GO_AWAY, 0, 0, *code),
            // yamux has no settings frame: a yamux session never makes one.
            Frame::Hello(_) => return None,
        };
        dst.put_slice(&head);
        None
    }

    fn data_head(&self, id: u32, flags: Flags, len: usize) -> DataHead {
        // Payloads are bounded by the session's frame size, far below
        // u32::MAX, so the saturation never triggers in practice.
        let length = u32::try_from(len).unwrap_or(u32::MAX);
        let mut bytes = [0u8; super::MAX_DATA_HEAD];
        if let Some(dst) = bytes.get_mut(..HEADER_LEN) {
            dst.copy_from_slice(&header(TYPE_DATA, wire_flags(flags), id, length));
        }
        DataHead {
            bytes,
            len: HEADER_LEN,
        }
    }

    fn usual_frame_len(&self) -> usize {
        HEADER_LEN.saturating_add(USUAL_DATA)
    }

    fn data_header(&self, buf: &[u8]) -> Option<(u32, usize)> {
        let head = Header::parse(buf)?.ok()?;
        (head.kind == TYPE_DATA).then(|| (head.id, head.frame_len().saturating_sub(HEADER_LEN)))
    }

    fn max_frame_len(&self) -> usize {
        usize::try_from(self.max_data)
            .unwrap_or(usize::MAX)
            .saturating_add(HEADER_LEN)
    }
}

const _: () = assert!(HEADER_LEN <= super::MAX_DATA_HEAD);

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(layout: &Yamux, bytes: &[u8]) -> Result<Vec<Frame>, ProtocolError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = layout.decode(&mut buf)? {
            out.push(f);
        }
        assert!(buf.is_empty(), "a whole number of frames");
        Ok(out)
    }

    #[test]
    fn every_frame_the_session_sends_round_trips() {
        let layout = Yamux::new(1 << 20);
        let frames = [
            Frame::Data {
                id: 1,
                flags: Flags::SYN.with(Flags::FIN),
                payload: Bytes::from_static(b"hello"),
            },
            Frame::Window {
                id: 2,
                flags: Flags::ACK,
                delta: 7 << 16,
            },
            Frame::Reset {
                id: 3,
                code: 0x1005,
            },
            Frame::Ping {
                ack: false,
                opaque: 9,
            },
            Frame::Ping {
                ack: true,
                opaque: 9,
            },
            Frame::GoAway { code: 2 },
        ];
        let mut buf = BytesMut::new();
        for f in &frames {
            layout.encode(f, &mut buf);
        }
        assert_eq!(decode_all(&layout, &buf).unwrap(), frames);
    }

    #[test]
    fn the_header_is_the_specs_byte_for_byte() {
        let layout = Yamux::new(1 << 20);
        let mut buf = BytesMut::new();
        layout.encode(
            &Frame::Window {
                id: 1,
                flags: Flags::SYN,
                delta: 0,
            },
            &mut buf,
        );
        layout.encode(&Frame::Reset { id: 5, code: 3 }, &mut buf);
        assert_eq!(
            &buf[..],
            [
                0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, // WINDOW_UPDATE SYN on 1, delta 0
                0, 1, 0, 8, 0, 0, 0, 5, 0, 0, 0, 3, // WINDOW_UPDATE RST on 5, code 3
            ]
        );
    }

    #[test]
    fn rst_on_data_is_a_reset_with_code_zero_and_its_payload_is_consumed() {
        let layout = Yamux::new(1 << 20);
        let mut bytes = header(TYPE_DATA, FLAG_RST | FLAG_ACK, 7, 3).to_vec();
        bytes.extend_from_slice(b"abc");
        bytes.extend_from_slice(&header(TYPE_GO_AWAY, 0, 0, 0));
        assert_eq!(
            decode_all(&layout, &bytes).unwrap(),
            [Frame::Reset { id: 7, code: 0 }, Frame::GoAway { code: 0 }]
        );
    }

    #[test]
    fn unknown_flag_bits_are_ignored() {
        let layout = Yamux::new(1 << 20);
        let bytes = header(TYPE_WINDOW_UPDATE, 0xFFF0 | FLAG_ACK, 2, 5);
        assert_eq!(
            decode_all(&layout, &bytes).unwrap(),
            [Frame::Window {
                id: 2,
                flags: Flags::ACK,
                delta: 5
            }]
        );
    }

    #[test]
    fn a_bad_version_or_type_and_an_oversized_length_are_refused_from_the_header() {
        let layout = Yamux::new(1 << 20);
        let mut bad_version = header(TYPE_PING, FLAG_SYN, 0, 1);
        bad_version[0] = 1;
        assert_eq!(
            decode_all(&layout, &bad_version),
            Err(ProtocolError::UnsupportedVersion(1))
        );
        let bad_type = header(4, 0, 0, 0);
        assert_eq!(
            decode_all(&layout, &bad_type),
            Err(ProtocolError::Wire(WireError::UnknownKind(4)))
        );
        // A 4 GiB length: refused with nothing but the header buffered.
        let mut buf = BytesMut::from(&header(TYPE_DATA, 0, 1, u32::MAX)[..]);
        assert_eq!(
            layout.decode(&mut buf),
            Err(ProtocolError::FrameTooLarge {
                len: u64::from(u32::MAX),
                max: 1 << 20
            })
        );
    }

    #[test]
    fn a_frame_is_decoded_only_once_whole() {
        let layout = Yamux::new(1 << 20);
        let mut bytes = header(TYPE_DATA, 0, 1, 4).to_vec();
        bytes.extend_from_slice(b"data");
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(layout.decode(&mut buf), Ok(None), "{cut} bytes");
            assert_eq!(buf.len(), cut, "nothing consumed");
        }
        assert_eq!(layout.frame_len(&bytes), Some(16));
        assert_eq!(layout.frame_len(&bytes[..11]), None);
    }
}
