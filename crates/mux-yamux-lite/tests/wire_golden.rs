//! Golden wire vectors: the hex in docs/PROTOCOL.md is parsed here and checked
//! against `wire::lite` (§6) and `wire::yamux` (§7), so the spec and the
//! encoders cannot drift apart.

use bytes::{Bytes, BytesMut};
use mux_frame::FrameCodec;
use mux_yamux_lite::config::MAX_WINDOW;
use mux_yamux_lite::frame::{Flags, Frame, Hello};
use mux_yamux_lite::wire::yamux::Yamux;
use mux_yamux_lite::wire::{lite, Layout, WireError};
use tokio_util::codec::Decoder;

/// The spec, read at compile time.
const PROTOCOL_MD: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/PROTOCOL.md"
));

/// One `<!-- golden: NAME [decode-only] [yamux] -->` marker and the hex
/// block after it.
struct Vector {
    name: String,
    decode_only: bool,
    /// A vector of the yamux layout (§7) rather than the lite one.
    yamux: bool,
    bytes: Vec<u8>,
}

/// Parses every golden vector out of the spec. A marker must be followed by
/// a fenced block whose lines are whitespace-separated hex bytes.
fn vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    let mut lines = PROTOCOL_MD.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim().strip_prefix("<!-- golden:") else {
            continue;
        };
        let rest = rest
            .strip_suffix("-->")
            .unwrap_or_else(|| panic!("unterminated golden marker: {line}"));
        let mut words = rest.split_whitespace();
        let name = words
            .next()
            .unwrap_or_else(|| panic!("golden marker without a name: {line}"))
            .to_owned();
        let (mut decode_only, mut yamux) = (false, false);
        for option in words {
            match option {
                "decode-only" => decode_only = true,
                "yamux" => yamux = true,
                other => panic!("{name}: unknown golden option {other}"),
            }
        }
        let fence = lines.next().unwrap_or_default().trim();
        assert!(
            fence.starts_with("```"),
            "{name}: no fenced block after the marker"
        );
        let mut bytes = Vec::new();
        for hex_line in lines.by_ref() {
            let hex_line = hex_line.trim();
            if hex_line.starts_with("```") {
                break;
            }
            for byte in hex_line.split_whitespace() {
                bytes.push(
                    u8::from_str_radix(byte, 16)
                        .unwrap_or_else(|_| panic!("{name}: bad hex byte {byte:?}")),
                );
            }
        }
        assert!(!bytes.is_empty(), "{name}: empty vector");
        out.push(Vector {
            name,
            decode_only,
            yamux,
            bytes,
        });
    }
    out
}

/// The frame each named vector encodes.
fn expected_frame(name: &str) -> Option<Frame> {
    let frame = match name {
        "hello_default" => Frame::Hello(Hello {
            version: 1,
            initial_window: 262_144,
            max_frame_payload: 65_536,
            max_inbound_streams: 1000,
        }),
        "hello_with_extension" => Frame::Hello(Hello {
            version: 1,
            initial_window: 262_144,
            max_frame_payload: 65_536,
            max_inbound_streams: 1000,
        }),
        "data_syn_hi" => Frame::Data {
            id: 1,
            flags: Flags::SYN,
            payload: Bytes::from_static(b"hi"),
        },
        "window_syn_open" => Frame::Window {
            id: 1,
            flags: Flags::SYN,
            delta: 0,
        },
        "window_ack_65536" => Frame::Window {
            id: 3,
            flags: Flags::ACK,
            delta: 65_536,
        },
        "reset_refused" => Frame::Reset {
            id: 5,
            code: 0xFFFF_FF01,
        },
        "ping_request_7" => Frame::Ping {
            ack: false,
            opaque: 7,
        },
        "ping_reply_7" => Frame::Ping {
            ack: true,
            opaque: 7,
        },
        "go_away_protocol_error" => Frame::GoAway { code: 1 },
        "data_fin_empty" => Frame::Data {
            id: 2,
            flags: Flags::FIN,
            payload: Bytes::new(),
        },
        "yamux_window_ack_768k" => Frame::Window {
            id: 2,
            flags: Flags::ACK,
            delta: 768 * 1024,
        },
        "yamux_data_rst" => Frame::Reset { id: 7, code: 0 },
        // The other yamux vectors carry the frame of the lite vector of
        // the same name.
        other => return other.strip_prefix("yamux_").and_then(expected_frame),
    };
    Some(frame)
}

/// Vectors the brief requires the spec to carry.
const REQUIRED: &[&str] = &[
    "hello_default",
    "data_syn_hi",
    "window_ack_65536",
    "reset_refused",
    "ping_request_7",
    "ping_reply_7",
    "go_away_protocol_error",
    "data_fin_empty",
];

/// The vectors of the lite layout (§6).
fn lite_vectors() -> impl Iterator<Item = Vector> {
    vectors().into_iter().filter(|v| !v.yamux)
}

#[test]
fn yamux_vectors_encode_and_decode_exactly() {
    let layout = Yamux::new(MAX_WINDOW);
    let yamux: Vec<Vector> = vectors().into_iter().filter(|v| v.yamux).collect();
    assert!(yamux.len() >= 8, "docs/PROTOCOL.md §7 lost its vectors");
    for v in yamux {
        let frame = expected_frame(&v.name).unwrap();
        if !v.decode_only {
            let mut buf = BytesMut::new();
            layout.encode(&frame, &mut buf);
            assert_eq!(buf.to_vec(), v.bytes, "encoding of {}", v.name);
        }
        let mut buf = BytesMut::from(&v.bytes[..]);
        assert_eq!(
            layout.decode(&mut buf),
            Ok(Some(frame)),
            "decoding of {}",
            v.name
        );
        assert!(buf.is_empty(), "{}: trailing bytes after one frame", v.name);
    }
}

fn encode(frame: &Frame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    lite::encode(frame, &mut buf);
    buf.to_vec()
}

/// Runs `bytes` through the TLV codec and the lite layout, requiring that
/// they hold exactly one frame.
fn decode(bytes: &[u8]) -> Result<Frame, WireError> {
    let mut codec = FrameCodec::new();
    let mut src = BytesMut::from(bytes);
    let tlv = match codec.decode(&mut src) {
        Ok(Some(tlv)) => tlv,
        Ok(None) => panic!("incomplete TLV frame"),
        Err(e) => panic!("TLV decode failed: {e}"),
    };
    assert!(src.is_empty(), "trailing bytes after one frame");
    lite::decode(tlv)
}

fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let len = u32::try_from(value.len())
        .unwrap_or_else(|_| panic!("value too long"))
        .to_be_bytes();
    let mut out = vec![kind];
    out.extend_from_slice(&len);
    out.extend_from_slice(value);
    out
}

#[test]
fn spec_carries_every_required_vector() {
    let names: Vec<String> = vectors().into_iter().map(|v| v.name).collect();
    for required in REQUIRED {
        assert!(
            names.iter().any(|n| n == required),
            "docs/PROTOCOL.md lacks golden vector {required}"
        );
    }
    for (i, name) in names.iter().enumerate() {
        assert!(
            !names.iter().skip(i + 1).any(|n| n == name),
            "golden vector {name} appears twice"
        );
    }
}

#[test]
fn every_vector_has_a_known_frame() {
    for v in vectors() {
        assert!(
            expected_frame(&v.name).is_some(),
            "docs/PROTOCOL.md has golden vector {} that this test does not know",
            v.name
        );
    }
}

#[test]
fn golden_vectors_encode_exactly() {
    for v in lite_vectors().filter(|v| !v.decode_only) {
        let frame = expected_frame(&v.name).unwrap();
        assert_eq!(encode(&frame), v.bytes, "encoding of {}", v.name);
    }
}

#[test]
fn golden_vectors_decode_to_their_frame() {
    for v in lite_vectors() {
        let frame = expected_frame(&v.name).unwrap();
        assert_eq!(decode(&v.bytes), Ok(frame), "decoding of {}", v.name);
    }
}

#[test]
fn encode_head_leaves_only_the_data_payload() {
    for v in lite_vectors().filter(|v| !v.decode_only) {
        let frame = expected_frame(&v.name).unwrap();
        let mut head = BytesMut::new();
        let payload = lite::encode_head(&frame, &mut head);
        let mut joined = head.to_vec();
        if let Some(p) = payload {
            joined.extend_from_slice(p);
        }
        assert_eq!(joined, v.bytes, "encode_head of {}", v.name);
        match &frame {
            Frame::Data { .. } => assert_eq!(head.len(), lite::DATA_OVERHEAD),
            _ => assert!(payload.is_none()),
        }
    }
}

#[test]
fn data_overhead_is_ten_bytes() {
    assert_eq!(lite::DATA_OVERHEAD, 10);
    let frame = Frame::Data {
        id: 9,
        flags: Flags::NONE,
        payload: Bytes::from_static(b"abc"),
    };
    assert_eq!(encode(&frame).len(), 10 + 3);
}

#[test]
fn longest_control_frame_is_hello() {
    let hello = expected_frame("hello_default").unwrap();
    assert_eq!(encode(&hello).len(), lite::MAX_CONTROL_LEN);
}

#[test]
fn rejects_unknown_kind() {
    assert_eq!(
        decode(&tlv(0x06, &[0, 0, 0, 0])),
        Err(WireError::UnknownKind(0x06))
    );
}

#[test]
fn rejects_unknown_flag_bits_on_data() {
    assert_eq!(
        decode(&tlv(0x00, &[0, 0, 0, 1, 0x08, b'x'])),
        Err(WireError::UnknownFlags(0x08))
    );
    // An RST-like bit mixed with a known flag is refused as well.
    assert_eq!(
        decode(&tlv(0x00, &[0, 0, 0, 1, 0x09])),
        Err(WireError::UnknownFlags(0x09))
    );
}

#[test]
fn rejects_unknown_flag_bits_on_window_update() {
    assert_eq!(
        decode(&tlv(0x01, &[0, 0, 0, 1, 0x10, 0, 0, 0, 1])),
        Err(WireError::UnknownFlags(0x10))
    );
}

#[test]
fn rejects_window_update_of_wrong_length() {
    for len in [0usize, 8, 10] {
        let value = vec![0u8; len];
        assert!(
            matches!(
                decode(&tlv(0x01, &value)),
                Err(WireError::BadLength { kind: 0x01, len: l, .. }) if l == len
            ),
            "WINDOW_UPDATE with a {len}-byte value"
        );
    }
}

#[test]
fn rejects_ping_with_flag_byte_3() {
    assert_eq!(
        decode(&tlv(0x02, &[0x03, 0, 0, 0, 7])),
        Err(WireError::UnknownFlags(0x03))
    );
    assert_eq!(
        decode(&tlv(0x02, &[0x00, 0, 0, 0, 7])),
        Err(WireError::UnknownFlags(0x00))
    );
}

#[test]
fn rejects_short_fixed_size_frames() {
    let cases: &[(u8, usize)] = &[(0x00, 4), (0x02, 4), (0x03, 3), (0x04, 12), (0x05, 7)];
    for &(kind, len) in cases {
        let value = vec![0x01u8; len];
        assert!(
            matches!(decode(&tlv(kind, &value)), Err(WireError::BadLength { kind: k, .. }) if k == kind),
            "kind {kind:#04x} with a {len}-byte value"
        );
    }
}

#[test]
fn rejects_long_fixed_size_frames() {
    // Only DATA (payload) and HELLO (extensions) may be longer than their fields.
    let cases: &[(u8, usize)] = &[(0x01, 10), (0x02, 6), (0x03, 5), (0x05, 9)];
    for &(kind, len) in cases {
        let value = vec![0x01u8; len];
        assert!(
            matches!(decode(&tlv(kind, &value)), Err(WireError::BadLength { kind: k, .. }) if k == kind),
            "kind {kind:#04x} with a {len}-byte value"
        );
    }
}
